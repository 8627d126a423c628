import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareCausal, mergeCausal, type CausallyOrdered } from '../../src/log/causal-merge.js';
import { bytesOf } from './helpers.js';

const writers = [0, 1, 2, 3].map((i) => bytesOf(`merge writer ${i}`));

/** Streams as writers make them: per writer, seq 1.. with clocks that rise. */
const streams = fc.array(fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 30 }), { minLength: 1, maxLength: 4 }).map((steps) =>
  steps.map((s, w) => {
    let hlc = 0n;
    return s.map((step, i): CausallyOrdered => {
      hlc += BigInt(step);
      return { hlc, writer: writers[w], seq: BigInt(i + 1) };
    });
  }));

test('the merge is sorted, complete, and the same whatever order the streams come in', () => {
  fc.assert(fc.property(streams, fc.nat(), (ss, seed) => {
    const merged = [...mergeCausal(ss)];
    assert.equal(merged.length, ss.reduce((n, s) => n + s.length, 0));
    for (let i = 1; i < merged.length; i++) assert.ok(compareCausal(merged[i - 1], merged[i]) < 0);
    assert.deepEqual(merged, ss.flat().sort(compareCausal));
    const shuffled = [...ss];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = (seed + i * 7) % (i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    assert.deepEqual([...mergeCausal(shuffled)], merged);
    assert.deepEqual([...mergeCausal([...ss].reverse())], merged);
  }));
});

test('ties on the clock break by writer bytes, then seq', () => {
  const [lo, hi] = [...writers].sort(Buffer.compare);
  const a = { hlc: 5n, writer: hi, seq: 1n };
  const b = { hlc: 5n, writer: lo, seq: 9n };
  assert.deepEqual([...mergeCausal([[a], [b]])], [b, a]);
  assert.ok(compareCausal({ hlc: 5n, writer: lo, seq: 1n }, b) < 0);
});

test('stopping early closes the streams', () => {
  let closed = 0;
  function* stream(w: Uint8Array): Generator<CausallyOrdered> {
    try {
      for (let i = 1n; i < 100n; i++) yield { hlc: i, writer: w, seq: i };
    } finally {
      closed++;
    }
  }
  const merged = mergeCausal([stream(writers[0]), stream(writers[1])]);
  merged.next();
  merged.return(undefined);
  assert.equal(closed, 2);
});
