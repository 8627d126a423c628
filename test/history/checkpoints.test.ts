import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ContentStore } from '../../src/cas/content-store.js';
import { deriveVolumeKeys } from '../../src/crypto/volume-keys.js';
import { CheckpointStore, CHECKPOINTS_DIR, checkpointBytes, deltaBytes, stateOf } from '../../src/history/checkpoints.js';
import { History } from '../../src/history/history.js';
import { SealingCodec } from '../../src/projection/record-codec.js';
import { bytesOf, VOLUME } from '../log/helpers.js';
import { ALICE, BOB, WALL_MS, openPeer, withTempDir, type Peer } from '../projection/helpers.js';
import { listProjection } from './helpers.js';

const KEYS = deriveVolumeKeys(bytesOf('test secret'), VOLUME);

/** A volume of 1 + 2 × `files` events: each file created, then chmodded. */
function fill(p: Peer, files: number): void {
  const root = p.append({ type: 'create-volume', label: 'ck', mode: 0o755, uid: 0, gid: 0 });
  for (let i = 0; i < files; i++) {
    const ev = p.append({ type: 'create', parent: root.id, name: `f${i}`, mode: 0o644, uid: 1, gid: 1 });
    p.append({ type: 'chmod', inode: ev.id, mode: 0o600 });
  }
}

async function checkpointFiles(dir: string): Promise<string[]> {
  return (await readdir(join(dir, CHECKPOINTS_DIR))).filter((n) => n.endsWith('.ckpt')).sort();
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

test('a checkpoint with a flipped byte is detected on load, skipped, and rebuilt with the same canonical id', async () => {
  await withPeer(async (dir, p, content) => {
    fill(p, 30); // 61 events
    const src = { name: 'ck', dir, log: p.log, content, cipher: p.store.cipher };
    const h = await History.open(src, { every: 10n });
    assert.equal(await h.update(), 6);
    const files = await checkpointFiles(dir);
    assert.equal(files.length, 6);
    const expected = await listProjection((await h.at({ kind: 'position', count: 35n })).projection);

    const victim = files[2]!; // @30
    const bytes = await readFile(join(dir, CHECKPOINTS_DIR, victim));
    bytes[bytes.length - 3] ^= 0x40;
    await writeFile(join(dir, CHECKPOINTS_DIR, victim), bytes);

    const h2 = await History.open(src, { every: 10n });
    const view = await h2.at({ kind: 'position', count: 35n });
    assert.equal(view.from, 20n, 'the damaged @30 was skipped for @20');
    assert.deepEqual(await listProjection(view.projection), expected);
    // The replay from @20 passed @30 and wrote it again: same state, same bytes, same name.
    assert.deepEqual(await checkpointFiles(dir), files);
    assert.ok((await readFile(join(dir, CHECKPOINTS_DIR, victim))).equals(bytes.map((b, i) => (i === bytes.length - 3 ? b ^ 0x40 : b))));
  });
});

/** The records of a plain payload: (offset, length) of each u32 BE length ‖ key, u32 BE length ‖ value pair. */
function recordSpans(payload: Buffer): [number, number][] {
  const out: [number, number][] = [];
  for (let p = 0; p < payload.length;) {
    const ke = p + 4 + payload.readUInt32BE(p);
    const end = ke + 4 + payload.readUInt32BE(ke);
    out.push([p, end - p]);
    p = end;
  }
  return out;
}

test('a plain checkpoint whose records are out of key order, or which holds a removed key, is unusable even with a matching name', async () => {
  await withPeer(async (dir, p, content) => {
    fill(p, 30); // 61 events
    const src = { name: 'ck', dir, log: p.log, content, cipher: p.store.cipher };
    const h = await History.open(src, { every: 20n, fullEvery: 1n });
    assert.equal(await h.update(), 3);
    const expected = await listProjection((await h.at({ kind: 'position', count: 45n })).projection);
    const victim = h.checkpoints().find((r) => r.count === 40n)!;
    assert.equal(victim.version, 1, 'sealed records are stored plain');
    const bytes = await readFile(victim.path);
    const payloadAt = 12 + bytes.readUInt32BE(8);
    const spans = recordSpans(bytes.subarray(payloadAt));
    // Forgeries that hash to their names, as only someone writing the directory could make.
    const forge = async (payload: Buffer): Promise<string> => {
      const head = bytes.subarray(7, payloadAt);
      const id = createHash('sha256').update(head).update(payload).digest('hex');
      const path = join(dir, CHECKPOINTS_DIR, `${'40'.padStart(20, '0')}-${id}.ckpt`);
      await writeFile(path, Buffer.concat([bytes.subarray(0, payloadAt), payload]));
      return path;
    };
    const [a, b] = [spans[5]!, spans[6]!];
    const body = bytes.subarray(payloadAt);
    const swapped = Buffer.concat([body.subarray(0, a[0]), body.subarray(b[0], b[0] + b[1]), body.subarray(a[0], a[0] + a[1]), body.subarray(b[0] + b[1])]);
    const removed = Buffer.from(body);
    removed.writeUInt32BE(0xffffffff, a[0] + 4 + removed.readUInt32BE(a[0]));
    for (const [what, payload] of [['out of order', swapped], ['a removed key', removed.subarray(0, a[0] + 4 + removed.readUInt32BE(a[0]) + 4)]] as const) {
      await unlink(victim.path);
      const forged = await forge(payload);
      const h2 = await History.open(src, { every: 20n, fullEvery: 1n });
      const view = await h2.at({ kind: 'position', count: 45n });
      assert.equal(view.from, 20n, `${what}: the forged @40 was dropped for @20`);
      assert.deepEqual(await listProjection(view.projection), expected, what);
      assert.ok(!(await checkpointFiles(dir)).includes(forged.split('/').at(-1)!), `${what}: deleted`);
      // The replay from @20 passed @40 and wrote the real one again.
      assert.ok((await checkpointFiles(dir)).includes(victim.path.split('/').at(-1)!), `${what}: rewritten`);
    }
  });
});

test('a truncated checkpoint or one with a garbage header is dropped at open and rebuilt by update', async () => {
  await withPeer(async (dir, p, content) => {
    fill(p, 20); // 41 events
    const src = { name: 'ck', dir, log: p.log, content, cipher: p.store.cipher };
    await (await History.open(src, { every: 8n })).update();
    const files = await checkpointFiles(dir);
    assert.equal(files.length, 5);
    await truncate(join(dir, CHECKPOINTS_DIR, files[1]!), 20);
    await writeFile(join(dir, CHECKPOINTS_DIR, files[3]!), Buffer.from('BZCKPT\n\x01\xff\xff\xff\xffnonsense', 'latin1'));
    await writeFile(join(dir, CHECKPOINTS_DIR, 'unrelated.txt'), 'left alone');
    const h = await History.open(src, { every: 8n });
    assert.deepEqual(h.checkpoints().map((r) => r.count), [8n, 24n, 40n]);
    assert.equal(await h.update(), 2);
    assert.deepEqual(h.checkpoints().map((r) => r.count), [8n, 16n, 24n, 32n, 40n]);
    assert.deepEqual(await checkpointFiles(dir), files);
    assert.ok((await readdir(join(dir, CHECKPOINTS_DIR))).includes('unrelated.txt'));
  });
});

test('a forged checkpoint whose hash matches its name but not the log is caught by verify and replaced', async () => {
  await withPeer(async (dir, p, content) => {
    fill(p, 15); // 31 events
    const src = { name: 'ck', dir, log: p.log, content, cipher: p.store.cipher };
    const h = await History.open(src, { every: 10n });
    await h.update();
    const original = await checkpointFiles(dir);
    const store = CheckpointStore.forVolume(dir);
    const ref = h.checkpoints()[1]!; // @20
    // A state that is not the log's at @20: one file's mode changed, saved as a well-formed checkpoint.
    const forged = await store.load(ref, new SealingCodec(p.store.cipher), h.checkpoints());
    const root = (await forged.rootId())!;
    const f0 = (await forged.lookup(root, 'f0'))!;
    forged.putInode(f0, { ...(await forged.inode(f0))!, mode: 0o777 });
    const fake = await store.write(forged, ref.snapshots);
    await store.remove(ref.path);
    assert.notEqual(fake.id, ref.id);

    const h2 = await History.open(src, { every: 10n });
    assert.equal((await listProjection((await h2.at({ kind: 'position', count: 21n })).projection)).find((n) => n.path === '/f0')!.mode, 0o777, 'a forged checkpoint is only caught by a replay');
    // And one whose bytes no longer hash to its name.
    const flipped = h2.checkpoints()[0]!;
    const bytes = await readFile(flipped.path);
    bytes[bytes.length - 1] ^= 1;
    await writeFile(flipped.path, bytes);
    const report = await h2.verify();
    assert.equal(report.checked, 3);
    assert.deepEqual(report.replaced, [flipped.path, fake.path]);
    assert.deepEqual(report.findings.map((f) => [f.path, f.count]), [[flipped.path, 10n], [fake.path, 20n]]);
    assert.deepEqual(await checkpointFiles(dir), original);
    assert.equal((await listProjection((await h2.at({ kind: 'position', count: 21n })).projection)).find((n) => n.path === '/f0')!.mode, 0o600);
  });
});

test('checkpoints made stale by a late event from another writer are dropped; views follow the new merge order', async () => {
  await withTempDir(async (dir) => {
    const a = await openPeer(join(dir, 'a'), ALICE);
    const b = await openPeer(join(dir, 'b'), BOB);
    const content = new ContentStore(a.arenas, { keys: KEYS });
    try {
      const root = a.append({ type: 'create-volume', label: 'ck', mode: 0o755, uid: 0, gid: 0 });
      b.log.ingest([...a.log.merged()].map((e) => e.bytes), { wallMs: WALL_MS });
      // Bob writes first (his clock runs behind Alice's); Alice's events then reach higher clocks.
      for (let i = 0; i < 5; i++) b.append({ type: 'mkdir', parent: root.id, name: `b${i}`, mode: 0o755, uid: 0, gid: 0 });
      for (let i = 0; i < 12; i++) a.append({ type: 'mkdir', parent: root.id, name: `a${i}`, mode: 0o755, uid: 0, gid: 0 });
      const src = { name: 'ck', dir: join(dir, 'a'), log: a.log, content, cipher: a.store.cipher };
      const h = await History.open(src, { every: 4n });
      await h.update();
      assert.deepEqual(h.checkpoints().map((r) => r.count), [4n, 8n, 12n]);
      a.log.ingest([...b.log.read(BOB.writer)].map((e) => e.bytes), { wallMs: WALL_MS });
      const h2 = await History.open(src, { every: 4n });
      // Bob's events sort among Alice's early ones: every checkpoint past the first of his is stale.
      const kept = h2.checkpoints().map((r) => r.count);
      assert.ok(kept.length < 3, `kept ${kept.join(',')}`);
      await h2.update();
      await a.projector.catchUp();
      const now = await h2.at({ kind: 'now' });
      assert.equal(now.count, 18n);
      assert.deepEqual(await listProjection(now.projection), await listProjection(a.store));
      for (const r of h2.checkpoints()) {
        const view = await h2.at({ kind: 'position', count: r.count });
        assert.ok(view.vector.equals(r.vector));
      }
    } finally {
      await content.close();
      await a.close();
      await b.close();
    }
  });
});

test('deflated checkpoints (versions 3 and 2, written before plain ones were) load, verify, and new deltas chain onto them', async () => {
  await withPeer(async (dir, p, content) => {
    fill(p, 20); // 41 events
    const src = { name: 'ck', dir, log: p.log, content, cipher: p.store.cipher };
    const bare = await History.open(src, { every: 1000n });
    const at8 = (await bare.at({ kind: 'position', count: 8n })).projection;
    const at16 = (await bare.at({ kind: 'position', count: 16n })).projection;
    const store = CheckpointStore.forVolume(dir);
    const full = await store.writeBytes(at8, checkpointBytes(at8, [], 0x03), null);
    const delta = await store.writeBytes(at16, deltaBytes(at16, [], { count: 8n, id: full.id }, stateOf(at8), 0x02), { count: 8n, id: full.id });
    for (const [ref, version] of [[full, 3], [delta, 2]] as const) {
      const bytes = await readFile(ref.path);
      assert.equal(bytes[7], version);
      assert.ok(!bytes.includes((await at8.dump()).subarray(0, 64)), 'the payload is deflated');
    }
    // Another form of the same state is another file: the version byte is hashed into the name.
    assert.notEqual(checkpointBytes(at8, [], 0x01).id, full.id);
    assert.throws(() => deltaBytes(at16, [], { count: 8n, id: full.id }, stateOf(at8), 0x03), /no delta checkpoint has version 3/);

    const h = await History.open(src, { every: 8n, fullEvery: 4n });
    assert.deepEqual(h.checkpoints().map((r) => [r.count, r.version]), [[8n, 3], [16n, 2]]);
    assert.equal(await h.update(), 3);
    assert.deepEqual(h.checkpoints().map((r) => [r.count, r.version, r.base?.count ?? null]), [[8n, 3, null], [16n, 2, 8n], [24n, 4, 16n], [32n, 4, 24n], [40n, 1, null]]);
    for (const at of [16n, 20n, 30n]) {
      const view = await h.at({ kind: 'position', count: at });
      assert.deepEqual(await view.projection.dump(), await (await bare.at({ kind: 'position', count: at })).projection.dump(), `@${at}`);
    }
    const report = await (await History.open(src, { every: 8n, fullEvery: 4n })).verify();
    assert.deepEqual([report.checked, report.findings], [5, []]);
  });
});

test('a full checkpoint of the first format (version 1, not deflated) still loads, verifies and is the base of new deltas', async () => {
  await withPeer(async (dir, p, content) => {
    fill(p, 20); // 41 events
    const src = { name: 'ck', dir, log: p.log, content, cipher: p.store.cipher };
    // A History that never reaches a checkpoint position: views replay from the first event.
    const bare = await History.open(src, { every: 1000n });
    const at8 = (await bare.at({ kind: 'position', count: 8n })).projection;
    const store = CheckpointStore.forVolume(dir);
    const old = await store.writeBytes(at8, checkpointBytes(at8, [], 0x01), null);
    const bytes = await readFile(old.path);
    assert.ok(bytes.subarray(0, 8).equals(Buffer.from('BZCKPT\n\x01', 'latin1')));
    // Its state is stored as is: the dump follows the header.
    assert.ok(bytes.includes(await at8.dump()), 'a plain dump after the header');

    const h = await History.open(src, { every: 8n, fullEvery: 4n });
    assert.deepEqual(h.checkpoints().map((r) => [r.count, r.version]), [[8n, 1]]);
    assert.equal(await h.update(), 4);
    // Sealed records do not deflate by a quarter: the new ones are plain too (full 0x01, deltas 0x04).
    assert.deepEqual(h.checkpoints().map((r) => [r.count, r.version, r.base?.count ?? null]), [[8n, 1, null], [16n, 4, 8n], [24n, 4, 16n], [32n, 4, 24n], [40n, 1, null]]);
    const view = await h.at({ kind: 'position', count: 30n });
    assert.equal(view.from, 24n);
    assert.deepEqual(await listProjection(view.projection), await listProjection((await bare.at({ kind: 'position', count: 30n })).projection));
    const report = await (await History.open(src, { every: 8n, fullEvery: 4n })).verify();
    assert.deepEqual([report.checked, report.findings], [5, []]);
    // A file of an unknown future version is not read: deleted as unusable, like any damage.
    const future = join(dir, CHECKPOINTS_DIR, `${'48'.padStart(20, '0')}-${'ab'.repeat(32)}.ckpt`);
    await writeFile(future, Buffer.concat([Buffer.from('BZCKPT\n\x09', 'latin1'), Buffer.alloc(8)]));
    const damaged: string[] = [];
    await History.open(src, { every: 8n, onDamaged: (err) => damaged.push(err.message) });
    assert.equal(damaged.length, 1);
    assert.match(damaged[0]!, /format version 9/);
  });
});
