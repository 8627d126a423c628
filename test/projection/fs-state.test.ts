import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ArenaSet } from '../../arena/arena-set.js';
import { nodeFileSystem } from '../../arena/node-fs.js';
import { LogStore } from '../../src/log/stream.js';
import { hlcToNanoseconds } from '../../src/log/hlc.js';
import type { LogEvent } from '../../src/log/codec.js';
import { conflictName } from '../../src/projection/conflict-name.js';
import { LOST_FOUND_NAME } from '../../src/projection/fs-state.js';
import { OTHER_KEY, VOLUME } from '../log/helpers.js';
import { ALICE, BOB, WALL_MS, deliver, listTree, openPeer, withTempDir, type Peer } from './helpers.js';

const attrs = { mode: 0o755, uid: 1000, gid: 100 };

async function volume(p: Peer): Promise<Buffer> {
  const ev = p.append({ type: 'create-volume', label: 'v', ...attrs });
  await p.projector.catchUp();
  return ev.id;
}

async function paths(p: Peer): Promise<string[]> {
  return (await listTree(p.store)).map((l) => l.path);
}

async function noteOf(p: Peer, ev: LogEvent): Promise<string | undefined> {
  return (await p.store.note(ev))?.outcome;
}

test('each node type, content and attribute event lands in the projection', async () => {
  await withTempDir(async (dir) => {
    const p = await openPeer(dir, ALICE);
    try {
      const root = await volume(p);
      const d = p.append({ type: 'mkdir', parent: root, name: 'd', ...attrs, mtime: 42n });
      const f = p.append({ type: 'create', parent: d.id, name: 'f', mode: 0o644, uid: 1, gid: 2 });
      const w = p.append({ type: 'set-content', inode: f.id, size: 10, manifest: Buffer.from('m1') });
      p.append({ type: 'truncate', inode: f.id, size: 4 });
      const s = p.append({ type: 'symlink', parent: root, name: 's', target: 'd/f', uid: 0, gid: 0 });
      p.append({ type: 'mknod', parent: root, name: 'p', kind: 'fifo', mode: 0o600, uid: 0, gid: 0 });
      p.append({ type: 'link', inode: f.id, parent: root, name: 'hard' });
      p.append({ type: 'chmod', inode: f.id, mode: 0o4711 });
      p.append({ type: 'chown', inode: f.id, uid: null, gid: 9 });
      p.append({ type: 'utimens', inode: f.id, atime: 5n, mtime: null });
      p.append({ type: 'setxattr', inode: f.id, name: 'user.a', value: Buffer.from('x') });
      p.append({ type: 'setxattr', inode: f.id, name: 'user.b', value: Buffer.from('y') });
      const last = p.append({ type: 'removexattr', inode: f.id, name: 'user.a' });
      const snap = p.append({ type: 'snapshot', name: 'snap' });
      assert.deepEqual(await p.projector.catchUp(), { applied: 14, rebuilt: false });

      assert.deepEqual(await paths(p), ['', '/d', '/d/f', '/hard', '/p', '/s']);
      const fa = (await p.store.getattr(f.id))!;
      assert.equal(fa.kind, 'file');
      assert.equal(fa.mode, 0o4711);
      assert.equal(fa.uid, 1);
      assert.equal(fa.gid, 9);
      assert.equal(fa.size, 4);
      assert.equal(fa.nlink, 2);
      assert.deepEqual(fa.manifest, Buffer.from('m1'));
      assert.equal(fa.mtime, hlcToNanoseconds(w.hlc + 1n));
      assert.equal(fa.atime, 5n);
      assert.equal(fa.ctime, hlcToNanoseconds(last.hlc));
      assert.deepEqual(await p.store.listxattr(f.id), ['user.b']);
      assert.deepEqual(await p.store.getxattr(f.id, 'user.b'), Buffer.from('y'));
      assert.equal(await p.store.readlink(s.id), 'd/f');
      assert.equal((await p.store.getattr(s.id))!.size, 3);
      const da = (await p.store.getattr(d.id))!;
      assert.equal(da.mtime, hlcToNanoseconds(f.hlc));
      assert.equal((await p.store.getattr(root))!.nlink, 3);
      assert.deepEqual(await p.store.lookup(root, 'hard'), f.id);
      assert.equal(await noteOf(p, snap), 'ignored');
      assert.deepEqual(p.store.versionVector().get(ALICE.writer), snap.seq);
    } finally {
      await p.close();
    }
  });
});

test('rename follows POSIX: move, overwrite a file, overwrite an empty dir, refuse cycles and stale names', async () => {
  await withTempDir(async (dir) => {
    const p = await openPeer(dir, ALICE);
    try {
      const root = await volume(p);
      const a = p.append({ type: 'mkdir', parent: root, name: 'a', ...attrs });
      const b = p.append({ type: 'mkdir', parent: a.id, name: 'b', ...attrs });
      const f = p.append({ type: 'create', parent: root, name: 'f', ...attrs });
      const g = p.append({ type: 'create', parent: a.id, name: 'g', ...attrs });
      p.append({ type: 'rename', inode: f.id, parent: root, name: 'f', newParent: a.id, newName: 'g' });
      const e = p.append({ type: 'mkdir', parent: root, name: 'e', ...attrs });
      p.append({ type: 'rename', inode: e.id, parent: root, name: 'e', newParent: a.id, newName: 'b' });
      const cycle = p.append({ type: 'rename', inode: a.id, parent: root, name: 'a', newParent: e.id, newName: 'x' });
      const stale = p.append({ type: 'rename', inode: g.id, parent: a.id, name: 'g', newParent: root, newName: 'z' });
      await p.projector.catchUp();
      assert.deepEqual(await paths(p), ['', '/a', '/a/b', '/a/g']);
      assert.deepEqual(await p.store.lookup(a.id, 'g'), f.id);
      assert.deepEqual(await p.store.lookup(a.id, 'b'), e.id);
      assert.equal((await p.store.getattr(g.id))!.nlink, 0);
      assert.equal((await p.store.getattr(b.id))!.nlink, 0);
      assert.equal((await p.store.getattr(a.id))!.nlink, 3);
      assert.equal(await noteOf(p, cycle), 'skipped');
      assert.equal(await noteOf(p, stale), 'skipped');

      // A non-empty directory target is not overwritten: the moved one takes a conflict name beside it.
      p.append({ type: 'create', parent: e.id, name: 'inside', ...attrs });
      const c = p.append({ type: 'mkdir', parent: root, name: 'c', ...attrs });
      const over = p.append({ type: 'rename', inode: c.id, parent: root, name: 'c', newParent: a.id, newName: 'b' });
      await p.projector.catchUp();
      assert.equal(await noteOf(p, over), 'conflict');
      assert.deepEqual(await p.store.lookup(a.id, conflictName('b', ALICE.writer, over.hlc, 1)), c.id);
    } finally {
      await p.close();
    }
  });
});

test('unlink and rmdir apply only to the inode they name; rmdir of a non-empty dir is skipped', async () => {
  await withTempDir(async (dir) => {
    const p = await openPeer(dir, ALICE);
    try {
      const root = await volume(p);
      const d = p.append({ type: 'mkdir', parent: root, name: 'd', ...attrs });
      const f = p.append({ type: 'create', parent: d.id, name: 'f', ...attrs });
      const wrong = p.append({ type: 'unlink', inode: d.id, parent: d.id, name: 'f' });
      const full = p.append({ type: 'rmdir', inode: d.id, parent: root, name: 'd' });
      p.append({ type: 'unlink', inode: f.id, parent: d.id, name: 'f' });
      p.append({ type: 'rmdir', inode: d.id, parent: root, name: 'd' });
      const second = p.append({ type: 'create-volume', label: 'again', ...attrs });
      await p.projector.catchUp();
      assert.deepEqual(await paths(p), ['']);
      assert.equal(await noteOf(p, wrong), 'skipped');
      assert.equal(await noteOf(p, full), 'skipped');
      assert.equal(await noteOf(p, second), 'skipped');
      assert.equal((await p.store.getattr(root))!.nlink, 2);
    } finally {
      await p.close();
    }
  });
});

/** Alice makes the volume and Bob gets it; then each writes without seeing the other. */
async function twoWriters(dir: string, fn: (a: Peer, b: Peer, root: Buffer) => Promise<void>): Promise<void> {
  const a = await openPeer(join(dir, 'a'), ALICE);
  const b = await openPeer(join(dir, 'b'), BOB);
  try {
    const root = await volume(a);
    deliver(a, b);
    await fn(a, b, root);
  } finally {
    await a.close();
    await b.close();
  }
}

async function exchange(a: Peer, b: Peer): Promise<void> {
  deliver(a, b);
  deliver(b, a);
  await a.projector.catchUp();
  await b.projector.catchUp();
  assert.deepEqual(await a.store.dump(), await b.store.dump());
}

test('concurrent creates of one name: the later event gets the conflict name, the same on both peers', async () => {
  await withTempDir((dir) => twoWriters(dir, async (a, b, root) => {
    const fa = a.append({ type: 'create', parent: root, name: 'n', ...attrs });
    const fb = b.append({ type: 'create', parent: root, name: 'n', ...attrs });
    await a.projector.catchUp();
    await exchange(a, b);
    const [first, later, laterWriter] = fa.hlc < fb.hlc || (fa.hlc === fb.hlc && Buffer.compare(ALICE.writer, BOB.writer) < 0) ? [fa, fb, BOB] : [fb, fa, ALICE];
    assert.deepEqual(await a.store.lookup(root, 'n'), first.id);
    assert.deepEqual(await a.store.lookup(root, conflictName('n', laterWriter.writer, later.hlc, 1)), later.id);
    assert.equal(conflictName('n', laterWriter.writer, later.hlc, 1), `n.conflict-${laterWriter.writer.subarray(0, 4).toString('hex')}-${later.hlc}`);
  }));
});

test('a mkdir into a directory removed concurrently goes to lost+found', async () => {
  await withTempDir((dir) => twoWriters(dir, async (a, b, root) => {
    const d = a.append({ type: 'mkdir', parent: root, name: 'd', ...attrs });
    deliver(a, b);
    b.append({ type: 'rmdir', inode: d.id, parent: root, name: 'd' });
    const sub = a.append({ type: 'mkdir', parent: d.id, name: 'sub', ...attrs });
    const f = a.append({ type: 'create', parent: sub.id, name: 'f', ...attrs });
    await exchange(a, b);
    // Whichever order: the data stays visible somewhere, identically on both.
    const listed = await paths(a);
    assert.ok(listed.some((p) => p.endsWith('/sub/f')), listed.join(' '));
    if (!listed.includes('/d/sub/f')) assert.ok(listed.includes(`/${LOST_FOUND_NAME}/sub/f`), listed.join(' '));
    assert.equal((await a.store.getattr(f.id))!.nlink, 1);
  }));
});

test('a write racing an unlink keeps the file, in /lost+found, whichever sorts first', async () => {
  await withTempDir((dir) => twoWriters(dir, async (a, b, root) => {
    const f = a.append({ type: 'create', parent: root, name: 'f', ...attrs });
    const g = a.append({ type: 'create', parent: root, name: 'g', ...attrs });
    deliver(a, b);
    // f: the unlink sorts first (Bob's clock is behind); g: the write sorts first.
    b.append({ type: 'unlink', inode: f.id, parent: root, name: 'f' });
    a.append({ type: 'set-content', inode: f.id, size: 3, manifest: Buffer.from('new') });
    a.append({ type: 'set-content', inode: g.id, size: 3, manifest: Buffer.from('new') });
    b.append({ type: 'unlink', inode: g.id, parent: root, name: 'g' });
    await exchange(a, b);
    for (const id of [f.id, g.id]) {
      const at = (await a.store.getattr(id))!;
      assert.equal(at.nlink, 1);
      assert.deepEqual(at.manifest, Buffer.from('new'));
    }
    assert.equal((await paths(a)).filter((p) => p.startsWith(`/${LOST_FOUND_NAME}/`)).length, 2);
  }));
});

test('a signed event whose body does not open is noted as rejected, and the position moves past it', async () => {
  await withTempDir(async (dir) => {
    const a = await openPeer(join(dir, 'a'), ALICE);
    const arenas = await ArenaSet.open(join(dir, 'm'), { fs: nodeFileSystem, writer: BOB.writer });
    try {
      const wrongKey = LogStore.open({ arenas, volume: VOLUME, eventKey: OTHER_KEY, signer: BOB });
      const bad = wrongKey.append({ type: 'snapshot', name: 'x' }, { wallMs: WALL_MS });
      a.log.ingest([...wrongKey.merged()].map((e) => e.bytes), { wallMs: WALL_MS });
      await a.projector.catchUp();
      const note = await a.store.note(bad);
      assert.equal(note?.outcome, 'rejected');
      assert.match(note!.detail, /BAZIL_DECRYPT_FAILED/);
      assert.equal(a.store.versionVector().get(BOB.writer), 1n);
    } finally {
      await arenas.close();
      await a.close();
    }
  });
});

test('reopen rolls forward from the recorded vector; a late event rebuilds; rebuild gives the same dump', async () => {
  await withTempDir(async (dir) => {
    let a = await openPeer(join(dir, 'a'), ALICE, 3);
    const b = await openPeer(join(dir, 'b'), BOB);
    try {
      const root = await volume(a);
      deliver(a, b);
      b.append({ type: 'create', parent: root, name: 'early', ...attrs });
      for (let i = 0; i < 10; i++) a.append({ type: 'mkdir', parent: root, name: `d${i}`, ...attrs });
      await a.projector.catchUp();
      await a.log.sync();
      a.append({ type: 'create', parent: root, name: 'unprojected', ...attrs });
      await a.log.sync();
      await a.close();
      a = await openPeer(join(dir, 'a'), ALICE, 3);
      assert.deepEqual(await a.projector.catchUp(), { applied: 1, rebuilt: false });
      deliver(b, a);
      assert.deepEqual(await a.projector.catchUp(), { applied: 13, rebuilt: true });
      assert.ok((await paths(a)).includes('/early'));
      const before = await a.store.dump();
      assert.equal(await a.projector.rebuild(), 13);
      assert.deepEqual(await a.store.dump(), before);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

test('a conflict name stays within 255 bytes and never splits a character', () => {
  const long = 'é'.repeat(127);
  const n = conflictName(long, ALICE.writer, 123n, 2);
  assert.ok(Buffer.byteLength(n) <= 255);
  assert.ok(n.endsWith(`.conflict-${ALICE.writer.subarray(0, 4).toString('hex')}-123-2`));
  assert.ok(!n.includes('\ufffd'));
  assert.equal(conflictName('x', ALICE.writer, 7n, 1), `x.conflict-${ALICE.writer.subarray(0, 4).toString('hex')}-7`);
});
