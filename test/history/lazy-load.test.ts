// A checkpoint's records are opened when first read (mem-projection.ts,
// `stored`): what a loaded state gives must not depend on which records
// were read, changed or never touched, and a record that does not open
// must fail the read that reaches it, not pass as some other state.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContentStore } from '../../src/cas/content-store.js';
import { deriveVolumeKeys } from '../../src/crypto/volume-keys.js';
import { CheckpointStore } from '../../src/history/checkpoints.js';
import { History } from '../../src/history/history.js';
import { MemProjection } from '../../src/history/mem-projection.js';
import { ProjectionCipher } from '../../src/projection/cipher.js';
import { SealingCodec } from '../../src/projection/record-codec.js';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { bytesOf, VOLUME } from '../log/helpers.js';
import { ALICE, openPeer, withTempDir, type Peer } from '../projection/helpers.js';
import { listProjection } from './helpers.js';

const KEYS = deriveVolumeKeys(bytesOf('test secret'), VOLUME);

/** Appends 2 + 4 × `files` + 2 events (returns how many): files in the root and in a directory, with xattrs, chmods, a rename and an unlink. */
function fill(p: Peer, files: number): number {
  let n = 0;
  const append = (body: Parameters<Peer['append']>[0]): ReturnType<Peer['append']> => {
    n++;
    return p.append(body);
  };
  const root = append({ type: 'create-volume', label: 'lazy', mode: 0o755, uid: 0, gid: 0 });
  const sub = append({ type: 'mkdir', parent: root.id, name: 'sub', mode: 0o755, uid: 0, gid: 0 });
  for (let i = 0; i < files; i++) {
    const parent = i % 2 === 0 ? root.id : sub.id;
    const ev = append({ type: 'create', parent, name: `f${i}`, mode: 0o644, uid: 1, gid: 1 });
    append({ type: 'setxattr', inode: ev.id, name: `user.n${i}`, value: bytesOf(`v${i}`) });
    append({ type: 'chmod', inode: ev.id, mode: 0o600 });
    if (i === 3) append({ type: 'rename', inode: ev.id, parent, name: `f${i}`, newParent: root.id, newName: 'moved' });
    if (i === 5) append({ type: 'unlink', inode: ev.id, parent, name: `f${i}` });
    append({ type: 'utimens', inode: ev.id, atime: 5n, mtime: 6n });
  }
  return n;
}

async function withPeer(work: (dir: string, p: Peer, content: ContentStore) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const p = await openPeer(dir, ALICE);
    const content = new ContentStore(p.arenas, { keys: KEYS });
    try {
      await work(dir, p, content);
    } finally {
      await content.close();
      await p.close();
    }
  });
}

/** The same changes made through FsTx, on any projection: an inode rewritten, an entry gone, one added, an xattr set. */
async function change(proj: MemProjection): Promise<void> {
  const root = (await proj.rootId())!;
  const sub = (await proj.lookup(root, 'sub'))!;
  const f1 = (await proj.lookup(sub, 'f1'))!;
  proj.putInode(f1, { ...(await proj.inode(f1))!, mode: 0o640 });
  const f2 = (await proj.lookup(root, 'f2'))!;
  proj.deleteEntry(root, 'f2');
  proj.putEntry(sub, 'again', { child: f2, placed: (await proj.entry(root, 'f0'))!.placed });
  proj.putXattr(f1, 'user.added', bytesOf('x'));
}

test('a loaded checkpoint gives the replayed state byte for byte, untouched, after reads, after changes and after more events', async () => {
  await withPeer(async (dir, p, content) => {
    const total = fill(p, 12);
    const src = { name: 'lazy', dir, log: p.log, content, cipher: p.store.cipher };
    // No checkpoint at these spacings: the views are replays from the first event, every record decoded.
    const scratch = await History.open(src, { every: 100_000n });
    const at20 = (await scratch.at({ kind: 'position', count: 20n })).projection;
    const atEnd = (await scratch.at({ kind: 'position', count: BigInt(total) })).projection;
    const wanted20 = await at20.dump();

    const h = await History.open(src, { every: 10n });
    await h.update();
    const ref = h.checkpoints().find((r) => r.count === 20n)!;
    assert.ok(ref.base !== null, '@20 is a delta: the load merges a chain');
    const store = CheckpointStore.forVolume(dir);
    const codec = new SealingCodec(p.store.cipher);

    const untouched = await store.load(ref, codec, h.checkpoints());
    assert.ok((await untouched.dump()).equals(wanted20), 'records never opened pass through as stored');

    const read = await store.load(ref, codec, h.checkpoints());
    assert.deepEqual(await listProjection(read), await listProjection(at20));
    assert.ok((await read.dump()).equals(wanted20), 'records opened by reads seal back to the same bytes');

    const changed = await store.load(ref, codec, h.checkpoints());
    await change(changed);
    await change(at20);
    assert.ok((await changed.dump()).equals(await at20.dump()), 'changes to records never read land as on a decoded state');

    // From the checkpoint on to the end: events applied over records opened on demand.
    const view = await h.at({ kind: 'position', count: BigInt(total) });
    assert.equal(view.from, BigInt(total - (total % 10)));
    assert.ok((await view.projection.dump()).equals(await atEnd.dump()));
    assert.deepEqual(await listProjection(view.projection), await listProjection(atEnd));
  });
});

test('a record sealed with another key or altered loads, fails the read that opens it with CORRUPT_METADATA, and is caught by verify', async () => {
  await withPeer(async (dir, p, content) => {
    fill(p, 6);
    const src = { name: 'lazy', dir, log: p.log, content, cipher: p.store.cipher };
    const h = await History.open(src, { every: 10n });
    await h.update();
    const store = CheckpointStore.forVolume(dir);
    const codec = new SealingCodec(p.store.cipher);
    const ref = h.checkpoints()[0]!; // @10, full
    const good = await store.load(ref, codec, h.checkpoints());
    const root = (await good.rootId())!;
    const f0 = (await good.lookup(root, 'f0'))!;

    // The same file opened with another volume's key: its meta records are clear, every sealed one fails when reached.
    const other = new SealingCodec(new ProjectionCipher(Buffer.alloc(32, 7)));
    const foreign = await store.load(ref, other, h.checkpoints());
    assert.deepEqual(await foreign.rootId(), root);
    await assert.rejects(foreign.getattr(root), (err: unknown) => isBazilError(err, ErrorCodes.CORRUPT_METADATA));
    await assert.rejects(foreign.readdir(root), (err: unknown) => isBazilError(err, ErrorCodes.CORRUPT_METADATA));

    // A well-formed checkpoint (its hash matches its name) with one inode's sealed value altered.
    const records = good.records().map(([k, v]): [Buffer, Buffer] => {
      if (k[0] !== 0x02 || !k.subarray(1).equals(f0)) return [k, v];
      const bad = Buffer.from(v);
      bad[bad.length - 1] ^= 1;
      return [k, bad];
    });
    const forged = MemProjection.fromRecords(records, good.count, codec);
    const fake = await store.write(forged, ref.snapshots);
    await store.remove(ref.path);
    const h2 = await History.open(src, { every: 10n });
    const view = await h2.at({ kind: 'position', count: 10n });
    assert.equal(view.from, 10n);
    await assert.rejects(view.projection.getattr(f0), (err: unknown) => isBazilError(err, ErrorCodes.CORRUPT_METADATA));
    assert.ok((await view.projection.lookup(root, 'sub')) !== undefined, 'the other records still open');
    const report = await h2.verify();
    assert.deepEqual(report.replaced, [fake.path]);
    const fixed = await History.open(src, { every: 10n });
    assert.equal((await (await fixed.at({ kind: 'position', count: 10n })).projection.getattr(f0))!.mode, 0o600);
  });
});
