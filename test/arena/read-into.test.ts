// ArenaSet.frameLength / readFrameInto: records read into the caller's
// buffer (export's slabs) from active and sealed arenas, checked like get().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FRAME_PAYLOAD_OFFSET } from '../../arena/arena-set.js';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { keyOf, openSet, payloadOf, withTempDir } from './helpers.js';

/** Sizes on both sides of the 4 KiB below which get() reads through the map. */
const SIZES = [0, 1, 100, 4000, 4096, 5000, 70_000];

function readOne(set: Awaited<ReturnType<typeof openSet>>, i: number, at: number): Buffer {
  const room = set.frameLength(keyOf(i));
  assert.ok(room >= FRAME_PAYLOAD_OFFSET + SIZES[i % SIZES.length]!, `room ${room} for record ${i}`);
  // Guard bytes around the frame's room must survive the read.
  const dest = Buffer.alloc(at + room + 16, 0xa5);
  const len = set.readFrameInto(keyOf(i), dest, at);
  assert.equal(len, SIZES[i % SIZES.length]);
  assert.ok(dest.subarray(0, at).every((b) => b === 0xa5), 'bytes before the room are untouched');
  assert.ok(dest.subarray(at + room).every((b) => b === 0xa5), 'bytes after the room are untouched');
  return dest.subarray(at + FRAME_PAYLOAD_OFFSET, at + FRAME_PAYLOAD_OFFSET + len);
}

test('readFrameInto gives what get() gives, from the active buffer, the active file and a sealed arena', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    const n = 40;
    for (let i = 0; i < n; i++) set.append('content', 1, keyOf(i), payloadOf(i, SIZES[i % SIZES.length]));
    // Not yet synced: from the pending buffer.
    for (let i = 0; i < n; i++) assert.deepEqual(readOne(set, i, i % 7), payloadOf(i, SIZES[i % SIZES.length]));
    await set.sync();
    for (let i = 0; i < n; i++) assert.deepEqual(readOne(set, i, 3), payloadOf(i, SIZES[i % SIZES.length]));
    await set.sealNow();
    for (let i = 0; i < n; i++) {
      assert.deepEqual(readOne(set, i, 11), Buffer.from(set.get(keyOf(i))!.payload));
      assert.deepEqual(readOne(set, i, 0), payloadOf(i, SIZES[i % SIZES.length]));
    }
    await set.close();
  });
});

test('readFrameInto: an absent key is -1, a buffer too small or a bad offset a RangeError, a punched key BAZIL_DELETED', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    for (let i = 0; i < 8; i++) set.append('content', 1, keyOf(i), payloadOf(i, 5000));
    for (const sealed of [false, true]) {
      if (sealed) await set.sealNow();
      assert.equal(set.frameLength(keyOf(99)), -1);
      assert.equal(set.readFrameInto(keyOf(99), Buffer.alloc(10), 0), -1);
      const room = set.frameLength(keyOf(1));
      assert.throws(() => set.readFrameInto(keyOf(1), Buffer.alloc(room - 9), 0), RangeError);
      assert.throws(() => set.readFrameInto(keyOf(1), Buffer.alloc(room + 10), 11), RangeError);
      assert.throws(() => set.readFrameInto(keyOf(1), Buffer.alloc(room), -1), RangeError);
      assert.throws(() => set.readFrameInto(Buffer.alloc(5), Buffer.alloc(room), 0), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
    }
    await set.punch([keyOf(2)]);
    assert.throws(() => set.frameLength(keyOf(2)), (e) => isBazilError(e, ErrorCodes.DELETED));
    assert.throws(() => set.readFrameInto(keyOf(2), Buffer.alloc(6000), 0), (e) => isBazilError(e, ErrorCodes.DELETED));
    assert.equal(set.readFrameInto(keyOf(3), Buffer.alloc(6000), 0), 5000);
    await set.close();
  });
});

test('readFrameInto of a sealed record with a flipped byte is BAZIL_CORRUPT_RECORD, small or large', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    // Record 3 holds 200 bytes (read through the map by get()), record 4 holds 9000 (read with pread).
    const sizes = [200, 200, 200, 200, 9000, 200];
    for (let i = 0; i < sizes.length; i++) set.append('content', 1, keyOf(i), payloadOf(i, sizes[i]));
    await set.sealNow();
    await set.close();
    const [name] = readdirSync(dir).filter((n) => n.endsWith('.arena'));
    const path = join(dir, name!);
    const frame = (i: number): number => 128 + sizes.slice(0, i).reduce((a, s) => a + 45 + s, 0);
    const fd = openSync(path, 'r+');
    for (const i of [3, 4]) {
      const pos = frame(i) + 45 + 17;
      writeSync(fd, Buffer.from([readFileSync(path)[pos]! ^ 0x10]), 0, 1, pos);
    }
    closeSync(fd);
    const s = await openSet(dir);
    for (const i of [3, 4]) {
      assert.throws(() => s.readFrameInto(keyOf(i), Buffer.alloc(10_000), 0), (e) => isBazilError(e, ErrorCodes.CORRUPT_RECORD) && e.data.offset === frame(i));
    }
    assert.equal(s.readFrameInto(keyOf(5), Buffer.alloc(10_000), 0), 200);
    await s.close();
  });
});
