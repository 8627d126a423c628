// ArenaSet.payloadSpan: where a record's payload lies in its arena file, for
// the content read-ahead's worker, which preads it on another thread. The
// span must name exactly the payload get() returns, in an active arena's
// file and in a sealed arena, and nothing (null) where another thread must
// not read: the active write buffer, a punched record, a file layer that
// wants to see every read (the fault-injecting one).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync } from 'node:fs';
import { FaultFileSystem } from '../../arena/fault-fs.js';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { keyOf, openSet, payloadOf, withTempDir } from './helpers.js';

const SIZES = [0, 1, 100, 4096, 70_000];

/** The bytes a span names, read as the worker does: a plain pread of its path. */
function preadSpan(span: { path: string; position: number; length: number }): Buffer {
  const fd = openSync(span.path, 'r');
  try {
    const out = Buffer.alloc(span.length);
    assert.equal(readSync(fd, out, 0, span.length, span.position), span.length);
    return out;
  } finally {
    closeSync(fd);
  }
}

test('payloadSpan names exactly the payload get() gives, in an active file and a sealed arena; none while buffered', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    const n = 20;
    for (let i = 0; i < n; i++) set.append('content', 1, keyOf(i), payloadOf(i, SIZES[i % SIZES.length]));
    // Still in the write buffer: no other thread may read it from the file.
    for (let i = 0; i < n; i++) assert.equal(set.payloadSpan(keyOf(i)), null, `record ${i} while buffered`);
    await set.sync();
    const active = new Set<string>();
    for (let i = 0; i < n; i++) {
      const span = set.payloadSpan(keyOf(i));
      assert.ok(span !== null, `record ${i} in the active file`);
      assert.deepEqual(preadSpan(span), payloadOf(i, SIZES[i % SIZES.length]), `record ${i} in the active file`);
      active.add(span.path);
    }
    await set.sealNow();
    for (let i = 0; i < n; i++) {
      const span = set.payloadSpan(keyOf(i));
      assert.ok(span !== null, `record ${i} sealed`);
      assert.deepEqual(preadSpan(span), Buffer.from(set.get(keyOf(i))!.payload), `record ${i} sealed`);
    }
    assert.equal(set.payloadSpan(keyOf(999)), null, 'an absent key');
    await set.punch([keyOf(3)]);
    assert.equal(set.payloadSpan(keyOf(3)), null, 'a punched key');
    assert.notEqual(set.payloadSpan(keyOf(4)), null, 'its neighbour');
    assert.throws(() => set.payloadSpan(Buffer.alloc(5)), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
    await set.close();
    assert.throws(() => set.payloadSpan(keyOf(4)), (e) => isBazilError(e, ErrorCodes.CLOSED));
  });
});

test('payloadSpan is null on a file layer that names no local path (the fault-injecting one)', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir, { fs: new FaultFileSystem() });
    for (let i = 0; i < 5; i++) set.append('content', 1, keyOf(i), payloadOf(i, 5000));
    await set.sync();
    for (let i = 0; i < 5; i++) assert.equal(set.payloadSpan(keyOf(i)), null);
    await set.sealNow();
    for (let i = 0; i < 5; i++) {
      assert.equal(set.payloadSpan(keyOf(i)), null);
      assert.deepEqual(Buffer.from(set.get(keyOf(i))!.payload), payloadOf(i, 5000));
    }
    await set.close();
  });
});
