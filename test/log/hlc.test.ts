import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { now, receive, packHlc, hlcMs, hlcCounter, hlcToNanoseconds, checkDrift, MAX_HLC_MS, MAX_HLC } from '../../src/log/hlc.js';

const wall = fc.integer({ min: 0, max: 2 ** 44 });
const hlc = fc.tuple(fc.integer({ min: 0, max: 2 ** 44 }), fc.integer({ min: 0, max: 0xffff })).map(([ms, c]) => packHlc(ms, c));

test('packing is exact and orders as (ms, counter)', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: MAX_HLC_MS }), fc.integer({ min: 0, max: 0xffff }), (ms, c) => {
    const h = packHlc(ms, c);
    assert.equal(hlcMs(h), ms);
    assert.equal(hlcCounter(h), c);
    assert.ok(h <= MAX_HLC);
  }));
  assert.ok(packHlc(5, 0xffff) < packHlc(6, 0));
  assert.equal(hlcToNanoseconds(packHlc(1_700_000_000_123, 7)), 1_700_000_000_123_000_007n);
});

test('now is strictly monotonic, never behind the wall clock, and carries the counter into ms', () => {
  fc.assert(fc.property(hlc, fc.array(wall, { maxLength: 50 }), (start, walls) => {
    let h = start;
    for (const w of walls) {
      const next = now(h, w);
      assert.ok(next > h);
      assert.ok(hlcMs(next) >= w);
      h = next;
    }
  }));
  assert.equal(now(packHlc(10, 0xffff), 3), packHlc(11, 0));
  assert.equal(now(packHlc(10, 4), 10), packHlc(10, 5));
  assert.equal(now(packHlc(10, 4), 12), packHlc(12, 0));
});

test('receive exceeds both clocks and is not behind the wall clock', () => {
  fc.assert(fc.property(hlc, hlc, wall, (local, remote, w) => {
    const r = receive(local, remote, w);
    assert.ok(r > local && r > remote);
    assert.ok(hlcMs(r) >= w);
    // The smallest such clock: one past the larger, or the wall clock.
    const floor = (local > remote ? local : remote) + 1n;
    assert.equal(r, floor > packHlc(w, 0) ? floor : packHlc(w, 0));
  }));
});

test('a remote clock too far ahead is refused; bad wall clocks and overflow are errors', () => {
  const w = 1_000_000;
  assert.doesNotThrow(() => receive(0n, packHlc(w + 1000, 0), w, 1000));
  assert.throws(() => receive(0n, packHlc(w + 1001, 0), w, 1000), (e) => isBazilError(e, ErrorCodes.CLOCK_SKEW));
  assert.throws(() => checkDrift(packHlc(w + 5000, 0), w, 10), (e) => isBazilError(e, ErrorCodes.CLOCK_SKEW));
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 48, Number.MAX_SAFE_INTEGER + 1]) {
    assert.throws(() => now(0n, bad), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT), String(bad));
  }
  assert.throws(() => now(MAX_HLC, 0), (e) => isBazilError(e, ErrorCodes.CLOCK_SKEW));
  assert.throws(() => packHlc(0, 0x10000), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
});
