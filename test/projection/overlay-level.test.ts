// OverlayLevel (src/projection/overlay-level.ts): batches answered before
// LevelDB has them must read back at once through every read, land in
// LevelDB in order (the last write of a key wins), survive a close and
// reopen, and a failed LevelDB write must fail what follows instead of
// losing it silently.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ClassicLevel } from 'classic-level';
import { OverlayLevel } from '../../src/projection/overlay-level.js';
import { SealingCodec } from '../../src/projection/record-codec.js';
import { SealedLevel } from '../../src/projection/sealed-level.js';
import { entryKey, entryPrefix, inodeKey, prefixEnd } from '../../src/projection/schema.js';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { PROJECTION_CIPHER, withTempDir } from './helpers.js';

type Raw = ClassicLevel<Buffer, Buffer>;

async function openRaw(dir: string): Promise<Raw> {
  const raw: Raw = new ClassicLevel<Buffer, Buffer>(join(dir, 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await raw.open();
  return raw;
}

const codec = new SealingCodec(PROJECTION_CIPHER);

test('a staged batch reads back at once by getSync, get, getMany and ranges, and persists in order', async () => {
  await withTempDir(async (dir) => {
    const raw = await openRaw(dir);
    const db = new OverlayLevel(raw, codec);
    const ids = Array.from({ length: 50 }, () => randomBytes(32));
    const parent = randomBytes(32);
    try {
      // Many batches without waiting: each rewrites every key, so only the last may survive.
      const writes: Promise<void>[] = [];
      for (let round = 0; round < 20; round++) {
        writes.push(db.batch(ids.map((id) => ({ type: 'put' as const, key: inodeKey(id), value: Buffer.from(`r${round}`) }))));
        writes.push(db.batch([{ type: 'put', key: entryKey(parent, `n${round}`), value: Buffer.from(`e${round}`) }]));
        assert.equal(db.getSync(inodeKey(ids[7]!))?.toString(), `r${round}`);
        assert.equal((await db.get(inodeKey(ids[3]!)))?.toString(), `r${round}`);
      }
      writes.push(db.batch([{ type: 'del', key: inodeKey(ids[0]!) }, { type: 'del', key: entryKey(parent, 'n0') }]));
      await Promise.all(writes);
      assert.equal(db.getSync(inodeKey(ids[0]!)), undefined);
      const many = await db.getMany([inodeKey(ids[1]!), inodeKey(ids[0]!), inodeKey(randomBytes(32))]);
      assert.deepEqual(many.map((v) => v?.toString()), ['r19', undefined, undefined]);
      // A range waits for the staged writes: it sees 19 entries (n0 was deleted).
      const names: string[] = [];
      for await (const [, v] of db.iterator({ gte: entryPrefix(parent), lt: prefixEnd(entryPrefix(parent)) })) names.push(v.toString());
      assert.equal(names.length, 19);
      assert.ok(!names.includes('e0'));
      await db.flush();
    } finally {
      await raw.close();
    }
    // What LevelDB holds, read without the overlay: the last write of each key.
    const again = await openRaw(dir);
    try {
      const plain = new SealedLevel(again, codec);
      assert.equal(plain.getSync(inodeKey(ids[0]!)), undefined);
      for (const id of ids.slice(1)) assert.equal(plain.getSync(inodeKey(id))?.toString(), 'r19');
      assert.equal(plain.getSync(entryKey(parent, 'n19'))?.toString(), 'e19');
    } finally {
      await again.close();
    }
  });
});

test('a LevelDB write that fails fails the next batch and the flush, and staged values stay readable', async () => {
  await withTempDir(async (dir) => {
    const raw = await openRaw(dir);
    const db = new OverlayLevel(raw, codec);
    const id = randomBytes(32);
    await db.batch([{ type: 'put', key: inodeKey(id), value: Buffer.from('first') }]);
    await db.flush();
    // The database goes away under the overlay: the next write to LevelDB fails.
    await raw.close();
    await db.batch([{ type: 'put', key: inodeKey(id), value: Buffer.from('second') }]);
    await assert.rejects(db.flush(), (err: unknown) => isBazilError(err, ErrorCodes.IO));
    await assert.rejects(db.batch([{ type: 'put', key: inodeKey(id), value: Buffer.from('third') }]), (err: unknown) => isBazilError(err, ErrorCodes.IO));
    assert.equal(db.getSync(inodeKey(id))?.toString(), 'second');
  });
});
