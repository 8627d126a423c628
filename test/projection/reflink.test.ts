// Copy-on-write directory copies in the projection (docs/reflink.md): the
// LevelDB projection materialises a copied tree lazily, level by level,
// while the in-memory one (as-of views) copies it whole at the clone event.
// Both must always hold the same tree. Checked on random event sequences
// whose writer reads only the paths it works on (as a user does, so copies
// stay partly pending), against an eager in-memory replay and a lazy replay
// that reads nothing; with the aggregates of pending copies against a walk;
// and across two peers, one of which never materialised what the other's
// events name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { boundedShrink } from '../lib/property.js';
import type { EventBody } from '../../src/log/event.js';
import { MemProjection } from '../../src/history/mem-projection.js';
import type { ProjectionStore } from '../../src/projection/store.js';
import { SealingCodec } from '../../src/projection/record-codec.js';
import { ALICE, BOB, PROJECTION_CIPHER, deliver, listTree, openPeer, walkFigures, withTempDir, type Peer } from './helpers.js';

const attrs = { mode: 0o755, uid: 1, gid: 2 };
const NAMES = ['a', 'b', 'c'];

/** The projection of the peer's whole log replayed in memory (eager copies). */
async function memReplay(p: Peer): Promise<MemProjection> {
  const m = new MemProjection(new SealingCodec(PROJECTION_CIPHER));
  for (const env of p.log.merged()) await m.apply(env, p.log.open(env));
  return m;
}


interface Picked {
  parent: Buffer | null;
  name: string;
  id: Buffer;
  kind: string;
}

/** A node reached from the root by random steps down: only the directories on the way are read. */
async function pick(store: ProjectionStore, root: Buffer, r: () => number): Promise<Picked> {
  let cur: Picked = { parent: null, name: '', id: root, kind: 'dir' };
  while (cur.kind === 'dir' && r() < 0.7) {
    const entries = await store.readdir(cur.id);
    if (entries.length === 0) break;
    const e = entries[Math.floor(r() * entries.length)]!;
    cur = { parent: cur.id, name: e.name, id: e.id, kind: (await store.getattr(e.id))!.kind };
  }
  return cur;
}

/** One random event against what the writer can see (a bad one is fine: every projection must note it alike). */
async function randomEvent(store: ProjectionStore, root: Buffer, r: () => number, step: number): Promise<EventBody> {
  const x = await pick(store, root, r);
  const y = await pick(store, root, r);
  const dir = y.kind === 'dir' ? y.id : y.parent ?? root;
  const name = `${NAMES[Math.floor(r() * NAMES.length)]}${step % 3}`;
  const k = Math.floor(r() * 12);
  switch (k) {
    case 0: case 1: return { type: 'mkdir', parent: dir, name, ...attrs };
    case 2: return { type: 'create', parent: dir, name, ...attrs, size: step * 7, manifest: Buffer.from(`m${step}`) };
    case 3: return x.kind === 'file' ? { type: 'set-content', inode: x.id, size: step, manifest: Buffer.from(`w${step}`) } : { type: 'chmod', inode: x.id, mode: step & 0o777 };
    case 4: return { type: 'setxattr', inode: x.id, name: `user.${name}`, value: Buffer.from(String(step)) };
    case 5: return x.parent === null ? { type: 'chmod', inode: x.id, mode: 0o700 }
      : x.kind === 'dir' ? { type: 'rmdir', inode: x.id, parent: x.parent, name: x.name } : { type: 'unlink', inode: x.id, parent: x.parent, name: x.name };
    case 6: case 7: return x.parent === null ? { type: 'mkdir', parent: dir, name, ...attrs } : { type: 'rename', inode: x.id, parent: x.parent, name: x.name, newParent: dir, newName: name };
    case 8: return x.kind === 'file' ? { type: 'link', inode: x.id, parent: dir, name } : { type: 'symlink', parent: dir, name, target: 't', uid: 0, gid: 0 };
    default: return { type: 'clone', inode: x.id, parent: dir, name };
  }
}

test('property: a lazily copied projection, read here and there, equals an eager in-memory replay and a lazy replay that reads nothing', async () => {
  await fc.assert(fc.asyncProperty(boundedShrink(fc.integer({ min: 1, max: 2 ** 30 })), fc.integer({ min: 1, max: 5 }), async (seed, batch) => {
    let s = seed;
    const r = (): number => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    await withTempDir(async (dir) => {
      const alice = await openPeer(join(dir, 'a'), ALICE, batch);
      const bob = await openPeer(join(dir, 'b'), BOB, batch);
      try {
        const root = alice.append({ type: 'create-volume', label: 'v', ...attrs }).id;
        await alice.projector.catchUp();
        for (let step = 0; step < 60; step++) {
          alice.append(await randomEvent(alice.store, root, r, step));
          if (r() < 0.6) await alice.projector.catchUp();
          if (r() < 0.2) await alice.store.settleAggregates(r() < 0.5 ? 0 : undefined);
        }
        await alice.projector.catchUp();
        // Bob replays without reading anything: every copy Alice never read is still pending there.
        deliver(alice, bob);
        await bob.projector.catchUp();
        const mem = await memReplay(alice);
        assert.equal(await bob.store.settleAggregates(), 0);
        // Every directory the unread replay holds (the rest are still inside pending copies) is exact and equals a walk.
        const dirs: Buffer[] = [];
        const collect = async (d: Buffer): Promise<void> => {
          dirs.push(d);
          for (const e of await mem.readdir(d)) if ((await mem.getattr(e.id))!.kind === 'dir') await collect(e.id);
        };
        await collect(root);
        let checked = 0;
        for (const d of dirs) {
          if ((await bob.store.getattr(d)) === undefined) continue;
          const stored = await bob.store.aggregate(d);
          assert.ok(stored.exact, 'exact after settling');
          assert.deepEqual(stored.value, await walkFigures(mem, d), `the aggregate of ${d.toString('hex')} in the unread lazy replay`);
          checked++;
        }
        assert.ok(checked >= 1);
        const dump = await mem.dump();
        assert.ok((await alice.store.dump()).equals(dump), 'the writer\'s projection differs from the eager replay');
        assert.ok((await bob.store.dump()).equals(dump), 'the unread lazy replay differs from the eager replay');
        assert.equal(bob.store.pendingClones(), 0, 'a dump materialises every copy');
        await alice.projector.rebuild();
        assert.ok((await alice.store.dump({ links: true })).equals(await bob.store.dump({ links: true })), 'back-links after materialisation');
      } finally {
        await alice.close();
        await bob.close();
      }
    });
  }), { numRuns: process.env.BAZIL_SLOW === '1' ? 150 : 20 });
});

test('a copy stays pending until its source changes or a reader looks in it, and its aggregates are its source\'s', async () => {
  await withTempDir(async (dir) => {
    const p = await openPeer(dir, ALICE);
    try {
      const root = p.append({ type: 'create-volume', label: 'v', ...attrs }).id;
      const src = p.append({ type: 'mkdir', parent: root, name: 'src', ...attrs }).id;
      const sub = p.append({ type: 'mkdir', parent: src, name: 'sub', ...attrs }).id;
      const other = p.append({ type: 'mkdir', parent: src, name: 'other', ...attrs }).id;
      p.append({ type: 'create', parent: other, name: 'o', ...attrs, size: 3, manifest: Buffer.from('o') });
      const f = p.append({ type: 'create', parent: sub, name: 'f', ...attrs, size: 100, manifest: Buffer.from('f') }).id;
      await p.projector.catchUp();
      const copy = p.append({ type: 'clone', inode: src, parent: root, name: 'copy' }).id;
      await p.projector.catchUp();
      assert.equal(p.store.pendingClones(), 1);
      assert.equal(await p.store.settleAggregates(), 0);
      const agg = await p.store.aggregate(copy);
      assert.deepEqual([agg.exact, agg.value?.rbytes, agg.value?.rfiles, agg.value?.rsubdirs], [true, 103, 2, 2]);
      // A write deep in the source materialises the copies on its path only: /copy, then /copy/sub; /copy/other stays pending.
      p.append({ type: 'set-content', inode: f, size: 5, manifest: Buffer.from('g') });
      await p.projector.catchUp();
      assert.equal(p.store.pendingClones(), 1, 'only /copy/other is pending');
      const copySub = await p.store.lookup(copy, 'sub');
      assert.equal((await p.store.getattr((await p.store.lookup(copySub!, 'f'))!))!.size, 100);
      assert.equal(await p.store.settleAggregates(), 0);
      assert.deepEqual((await p.store.aggregate(copy)).value?.rbytes, 103);
      assert.deepEqual((await p.store.aggregate(root)).value?.rbytes, 103 + 8);
      // Reading the pending copy materialises it.
      await p.store.readdir((await p.store.lookup(copy, 'other'))!);
      assert.equal(p.store.pendingClones(), 0);
      assert.deepEqual((await listTree(p.store)).filter((l) => l.path.startsWith('/copy')).map((l) => `${l.path} ${l.size}`),
        ['/copy 0', '/copy/other 0', '/copy/other/o 3', '/copy/sub 0', '/copy/sub/f 100']);
    } finally {
      await p.close();
    }
  });
});

test('events naming copies their writer materialised by reading apply on a peer that never read them', async () => {
  await withTempDir(async (dir) => {
    const alice = await openPeer(join(dir, 'a'), ALICE);
    const bob = await openPeer(join(dir, 'b'), BOB);
    try {
      const root = alice.append({ type: 'create-volume', label: 'v', ...attrs }).id;
      const src = alice.append({ type: 'mkdir', parent: root, name: 'src', ...attrs }).id;
      const d = alice.append({ type: 'mkdir', parent: src, name: 'd', ...attrs }).id;
      alice.append({ type: 'create', parent: d, name: 'f', ...attrs, size: 1, manifest: Buffer.from('f') });
      const copy = alice.append({ type: 'clone', inode: src, parent: root, name: 'copy' }).id;
      await alice.projector.catchUp();
      // Alice reads down the copy, then works on what she found there.
      const copyD = (await alice.store.lookup(copy, 'd'))!;
      const copyF = (await alice.store.lookup(copyD, 'f'))!;
      alice.append({ type: 'chmod', inode: copyF, mode: 0o600 });
      alice.append({ type: 'create', parent: copyD, name: 'new', ...attrs });
      alice.append({ type: 'clone', inode: copyD, parent: root, name: 'second' });
      await alice.projector.catchUp();
      deliver(alice, bob);
      await bob.projector.catchUp();
      assert.equal((await bob.store.getattr(copyF))?.mode, 0o600, 'the chmod found the copy on the peer that never read it');
      assert.deepEqual(await listTree(bob.store), await listTree(alice.store));
      assert.ok((await bob.store.dump()).equals(await alice.store.dump()));
      assert.ok((await (await memReplay(alice)).dump()).equals(await alice.store.dump()));
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});

test('a copy into its own tree is skipped, also when a concurrent rename puts the target below the source', async () => {
  await withTempDir(async (dir) => {
    const alice = await openPeer(join(dir, 'a'), ALICE);
    const bob = await openPeer(join(dir, 'b'), BOB);
    try {
      const root = alice.append({ type: 'create-volume', label: 'v', ...attrs }).id;
      const src = alice.append({ type: 'mkdir', parent: root, name: 'src', ...attrs }).id;
      alice.append({ type: 'create', parent: src, name: 'f', ...attrs });
      const target = alice.append({ type: 'mkdir', parent: root, name: 'target', ...attrs }).id;
      const own = alice.append({ type: 'clone', inode: src, parent: src, name: 'inside' });
      const self = alice.append({ type: 'clone', inode: root, parent: target, name: 'everything' });
      // Into a directory that is gone, a copy goes to lost+found, which is below the root: the root cannot be copied there either.
      const gone = alice.append({ type: 'mkdir', parent: root, name: 'gone', ...attrs }).id;
      alice.append({ type: 'rmdir', inode: gone, parent: root, name: 'gone' });
      const lost = alice.append({ type: 'clone', inode: root, parent: gone, name: 'everything' });
      const lostSrc = alice.append({ type: 'clone', inode: src, parent: gone, name: 'src-copy' });
      await alice.projector.catchUp();
      assert.equal((await alice.store.note(own))?.outcome, 'skipped');
      assert.equal((await alice.store.note(self))?.outcome, 'skipped');
      assert.equal((await alice.store.note(lost))?.outcome, 'skipped');
      assert.equal((await alice.store.note(lostSrc))?.outcome, 'lost+found');
      deliver(alice, bob);
      await bob.projector.catchUp();
      // Concurrently: Alice copies /src into /target, Bob moves /target into /src.
      alice.append({ type: 'clone', inode: src, parent: target, name: 'c' });
      bob.append({ type: 'rename', inode: target, parent: root, name: 'target', newParent: src, newName: 'target' });
      deliver(alice, bob);
      deliver(bob, alice);
      await alice.projector.catchUp();
      await bob.projector.catchUp();
      const tree = await listTree(alice.store);
      assert.deepEqual(tree, await listTree(bob.store));
      assert.ok((await alice.store.dump()).equals(await bob.store.dump()));
      assert.ok(tree.length < 12, 'no endless tree');
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
