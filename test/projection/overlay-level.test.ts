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

test('remembered reads stay exact: misses, writes, deletes, large values, copies handed out, a get racing a batch', async () => {
  await withTempDir(async (dir) => {
    const raw = await openRaw(dir);
    const db = new OverlayLevel(raw, codec);
    const a = inodeKey(randomBytes(32));
    const b = inodeKey(randomBytes(32));
    const c = inodeKey(randomBytes(32));
    try {
      // A miss is remembered as a miss, and a write replaces it.
      assert.equal(db.getSync(a), undefined);
      assert.equal(await db.get(a), undefined);
      await db.batch([{ type: 'put', key: a, value: Buffer.from('one') }]);
      assert.equal(db.getSync(a)?.toString(), 'one');
      await db.flush();
      assert.equal(db.getSync(a)?.toString(), 'one');
      // A buffer handed out may be written into without changing what is read next.
      const got = db.getSync(a)!;
      got.fill(0x78);
      assert.equal(db.getSync(a)?.toString(), 'one');
      assert.equal((await db.getMany([a]))[0]?.toString(), 'one');
      // So may the buffer a batch was given.
      const given = Buffer.from('two');
      await db.batch([{ type: 'put', key: a, value: given }]);
      await db.flush();
      given.fill(0x79);
      assert.equal(db.getSync(a)?.toString(), 'two');
      await db.batch([{ type: 'del', key: a }]);
      await db.flush();
      assert.equal(db.getSync(a), undefined);
      // A value too large to be kept must not leave an older one behind, nor must a small one after it.
      await db.batch([{ type: 'put', key: b, value: Buffer.from('small') }]);
      assert.equal(db.getSync(b)?.toString(), 'small');
      const big = randomBytes(4096);
      await db.batch([{ type: 'put', key: b, value: big }]);
      await db.flush();
      assert.deepEqual(db.getSync(b), big);
      assert.deepEqual(await db.get(b), big);
      await db.batch([{ type: 'put', key: b, value: Buffer.from('small again') }]);
      await db.flush();
      assert.equal(db.getSync(b)?.toString(), 'small again');
      // A get that reached LevelDB before a batch of the same key must not remember its older answer.
      await db.batch([{ type: 'put', key: c, value: Buffer.from('old') }]);
      await db.flush();
      db.forgetReads();
      const racing = db.get(c);
      await db.batch([{ type: 'put', key: c, value: Buffer.from('new') }]);
      assert.equal((await racing)?.toString(), 'old');
      await db.flush();
      assert.equal(db.getSync(c)?.toString(), 'new');
      assert.equal((await db.get(c))?.toString(), 'new');
      // Many keys, more than two generations: all still read right.
      const ids = Array.from({ length: 40_000 }, (_, i) => inodeKey(Buffer.from(i.toString().padStart(32, '0'))));
      for (let i = 0; i < ids.length; i += 4000) {
        await db.batch(ids.slice(i, i + 4000).map((key, j) => ({ type: 'put' as const, key, value: Buffer.from(`v${i + j}`) })));
      }
      await db.flush();
      for (let i = 0; i < ids.length; i += 997) assert.equal(db.getSync(ids[i]!)?.toString(), `v${i}`);
    } finally {
      await raw.close();
    }
  });
});

test('a change beside the overlay shows once its reads are forgotten; staged batches reach LevelDB without a flush', async () => {
  await withTempDir(async (dir) => {
    const raw = await openRaw(dir);
    const db = new OverlayLevel(raw, codec);
    const plain = new SealedLevel(raw, codec);
    const a = inodeKey(randomBytes(32));
    try {
      await db.batch([{ type: 'put', key: a, value: Buffer.from('through') }]);
      await db.flush();
      assert.equal(db.getSync(a)?.toString(), 'through');
      // ProjectionStore.clear empties LevelDB directly and then calls forgetReads.
      await raw.clear();
      assert.equal(plain.getSync(a), undefined);
      db.forgetReads();
      assert.equal(db.getSync(a), undefined);
      // Batches gathered for a few milliseconds are written by themselves, the last value of each key.
      for (let i = 0; i < 10; i++) await db.batch([{ type: 'put', key: a, value: Buffer.from(`w${i}`) }]);
      const deadline = Date.now() + 10_000;
      while (plain.getSync(a)?.toString() !== 'w9') {
        assert.ok(Date.now() < deadline, 'the staged batches were never written');
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      await db.flush();
      await raw.close();
    }
  });
});
