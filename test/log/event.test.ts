import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { decodeBody, encodeBody, EVENT_TYPES, type EventBody } from '../../src/log/event.js';
import { encodeCanonical, type EncodableValue } from '../../src/log/canonical-cbor.js';
import { checkText, textProblem } from '../../src/log/names.js';
import { arbBody, bytesOf, sampleBodies } from './helpers.js';

test('every event type round-trips, deterministically', () => {
  const samples = sampleBodies();
  assert.deepEqual(new Set(samples.map((b) => b.type)), new Set(EVENT_TYPES));
  for (const body of samples) {
    const bytes = encodeBody(body);
    assert.deepEqual(decodeBody(bytes), body, body.type);
    assert.deepEqual(encodeBody(decodeBody(bytes)), bytes, body.type);
    assert.deepEqual(encodeBody(structuredClone(body)), bytes, body.type);
  }
  fc.assert(fc.property(arbBody(), (body) => {
    const bytes = encodeBody(body);
    assert.deepEqual(decodeBody(bytes), body);
  }), { numRuns: 400 });
});

test('the first key is the type and fields follow the schema order', () => {
  const bytes = encodeBody({ type: 'chmod', inode: bytesOf('i'), mode: 0o644 });
  assert.equal(bytes.subarray(0, 12).toString('hex'), 'a3647479706565' + Buffer.from('chmod').toString('hex'));
});

test('name rules', () => {
  const ok = ['a', 'é'.repeat(127), 'x'.repeat(255), '...', ' ', 'a\\b', '\u{1F600}'];
  const bad = ['', '.', '..', 'a/b', '/', 'a\0b', 'x'.repeat(256), 'é'.repeat(128), '\uD800', 'a\uDC00b'];
  for (const n of ok) assert.equal(textProblem('name', n), null, n);
  for (const n of bad) assert.notEqual(textProblem('name', n), null, n);
  assert.throws(() => checkText('name', 'x'.repeat(256)), (e) => isBazilError(e, ErrorCodes.NAME_TOO_LONG));
  assert.throws(() => checkText('name', 'a/b'), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
  assert.equal(textProblem('symlink-target', '../a/b'), null);
  assert.notEqual(textProblem('symlink-target', 'a'.repeat(4096)), null);
  assert.equal(textProblem('label', ''), null);
  assert.notEqual(textProblem('xattr-name', ''), null);
});

test('invalid bodies are refused before encoding', () => {
  const id = bytesOf('i');
  const cases: [unknown, string][] = [
    [{ type: 'mkdir', parent: id, name: 'a/b', mode: 0o755, uid: 0, gid: 0 }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'mkdir', parent: id, name: 'x'.repeat(256), mode: 0o755, uid: 0, gid: 0 }, ErrorCodes.NAME_TOO_LONG],
    [{ type: 'mkdir', parent: id, name: 'a', mode: 0o10000, uid: 0, gid: 0 }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'mkdir', parent: id.subarray(1), name: 'a', mode: 0, uid: 0, gid: 0 }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'mkdir', parent: id, name: 'a', mode: 0, uid: -1, gid: 0 }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'mkdir', parent: id, name: 'a', mode: 0, uid: 0, gid: 0, extra: 1 }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'create', parent: id, name: 'a', mode: 0, uid: 0, gid: 0, mtime: 1n << 63n }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'create-volume', label: 'v', mode: 0o755, uid: 0, gid: 0, content: 3 }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'create-volume', label: 'v', mode: 0o755, uid: 0, gid: 0, content: '2' }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'truncate', inode: id, size: 1.5 }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'truncate', inode: id, size: Number.MAX_SAFE_INTEGER + 1 }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'set-content', inode: id, size: 1, manifest: Buffer.alloc(0) }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'chown', inode: id, uid: null, gid: null }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'utimens', inode: id, atime: null, mtime: null }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'utimens', inode: id, atime: 'later', mtime: null }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'mknod', parent: id, name: 'a', kind: 'block', mode: 0, uid: 0, gid: 0 }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'setxattr', inode: id, name: 'user.a', value: Buffer.alloc(64 * 1024 + 1) }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'placement', inode: id, stores: ['b', 'a'] }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'placement', inode: id, stores: ['a', 'a'] }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'frobnicate' }, ErrorCodes.BAD_ARGUMENT],
    [{ type: 'toString' }, ErrorCodes.BAD_ARGUMENT],
    [null, ErrorCodes.BAD_ARGUMENT],
  ];
  for (const [body, code] of cases) {
    assert.throws(() => encodeBody(body as EventBody), (e) => isBazilError(e, code as never), JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
  }
});

test('malformed decoded bodies are CORRUPT_EVENT; unknown types UNSUPPORTED_FORMAT', () => {
  const id = bytesOf('i');
  const corrupt: EncodableValue[] = [
    [1, 2],
    {},
    { kind: 'chmod', type: 'chmod' },
    { type: 7 },
    { type: 'chmod', mode: 0o644, inode: id }, // out of order
    { type: 'chmod', inode: id }, // missing
    { type: 'chmod', inode: id, mode: 0o644, extra: 1 },
    { type: 'chmod', inode: id, mode: -1 },
    { type: 'chmod', inode: id, mode: '644' },
    { type: 'chmod', inode: Buffer.alloc(31), mode: 1 },
    { type: 'unlink', inode: id, parent: id, name: '..' },
    { type: 'unlink', inode: id, parent: id, name: 'a\0' },
    { type: 'unlink', inode: id, parent: id, name: 'x'.repeat(256) },
    { type: 'chown', inode: id, uid: null, gid: null },
    { type: 'create', parent: id, name: 'a', mode: 0, uid: 0, gid: 0, mtime: null },
    { type: 'utimens', inode: id, atime: 'then', mtime: null },
    { type: 'set-content', inode: id, size: -1, manifest: null },
    { type: 'placement', inode: id, stores: ['b', 'a'] },
  ];
  for (const v of corrupt) {
    assert.throws(() => decodeBody(encodeCanonical(v)), (e) => isBazilError(e, ErrorCodes.CORRUPT_EVENT), JSON.stringify(v));
  }
  assert.throws(() => decodeBody(Buffer.from('ff', 'hex')), (e) => isBazilError(e, ErrorCodes.CORRUPT_EVENT));
  for (const type of ['move-to-trash', '__proto__', 'constructor']) {
    assert.throws(() => decodeBody(encodeCanonical({ type, anything: 1 })), (e) => isBazilError(e, ErrorCodes.UNSUPPORTED_FORMAT), type);
  }
});

test('hostile body bytes never crash the decoder', () => {
  const seeds = sampleBodies().map(encodeBody);
  fc.assert(fc.property(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (seed, flips) => {
    const b = Buffer.from(seed);
    for (const [at, v] of flips) b[at % b.length] = v;
    try {
      const body = decodeBody(b);
      assert.deepEqual(encodeBody(body), b);
    } catch (err) {
      assert.ok(isBazilError(err, ErrorCodes.CORRUPT_EVENT) || isBazilError(err, ErrorCodes.UNSUPPORTED_FORMAT), String(err));
    }
  }), { numRuns: 3000 });
});
