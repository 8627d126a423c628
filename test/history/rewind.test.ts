// The live projection's rewind (issue 3, DESIGN.md invariant 4): an event
// that arrives late from another writer and sorts before events already
// applied rewinds the LevelDB projection to the newest history checkpoint
// before it and replays only the events after that checkpoint, instead of
// the whole log. Two writers with real arenas, logs and projections; the
// second writer's events are delivered after the first has applied (and
// checkpointed) events that sort after them. Each time the projection must
// equal a rebuild from the log byte for byte (back-links included), its
// aggregates must settle to the same figures, and fewer events must have
// been replayed than a rebuild replays.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { boundedShrink } from '../lib/property.js';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ContentStore } from '../../src/cas/content-store.js';
import { deriveVolumeKeys } from '../../src/crypto/volume-keys.js';
import { CHECKPOINTS_DIR } from '../../src/history/checkpoints.js';
import { History } from '../../src/history/history.js';
import { checkpointRewinder } from '../../src/history/rewind.js';
import { compareCausal } from '../../src/log/causal-merge.js';
import type { LogEvent } from '../../src/log/codec.js';
import { Projector } from '../../src/projection/projector.js';
import { ProjectionStore } from '../../src/projection/store.js';
import { bytesOf, VOLUME } from '../log/helpers.js';
import { ALICE, BOB, WALL_MS, deliver, openPeer, withTempDir, type Peer } from '../projection/helpers.js';
import { Model, arbOp, type OpSeed } from '../projection/model.js';

const KEYS = deriveVolumeKeys(bytesOf('test secret'), VOLUME);
const ATTRS = { mode: 0o644, uid: 1, gid: 1 };

interface Scene {
  alice: Peer;
  bob: Peer;
  /** Bob's events, not yet delivered to Alice. */
  late: LogEvent[];
  history: History;
}

/**
 * Alice makes a tree, Bob receives it; then both work on it at once (Bob's
 * clock continues from what he received, so his events sort among Alice's
 * second round), and Alice takes checkpoints every 8 events (a full one
 * every 3) before she hears of Bob's.
 */
async function scene(dir: string, content: (p: Peer) => ContentStore, work: (s: Scene) => Promise<void>): Promise<void> {
  const alice = await openPeer(join(dir, 'alice'), ALICE);
  const bob = await openPeer(join(dir, 'bob'), BOB);
  const store = content(alice);
  try {
    const root = alice.append({ type: 'create-volume', label: 'rw', mode: 0o755, uid: 0, gid: 0 }).id;
    const dirs = [root];
    for (let i = 0; i < 4; i++) dirs.push(alice.append({ type: 'mkdir', parent: dirs[i % dirs.length]!, name: `d${i}`, mode: 0o755, uid: 0, gid: 0 }).id);
    const files: { id: Buffer; parent: Buffer; name: string }[] = [];
    for (let i = 0; i < 20; i++) {
      const parent = dirs[i % dirs.length]!;
      files.push({ id: alice.append({ type: 'create', parent, name: `f${i}`, ...ATTRS }).id, parent, name: `f${i}` });
      if (i % 3 === 0) alice.append({ type: 'truncate', inode: files[i]!.id, size: 1000 * i });
    }
    bob.log.ingest([...alice.log.merged()].map((e) => e.bytes), { wallMs: WALL_MS });
    await alice.projector.catchUp();

    // The second round: Alice moves, removes, rewrites and adds; Bob clashes with her.
    const late: LogEvent[] = [
      bob.append({ type: 'create', parent: root, name: 'g0', ...ATTRS }),
      bob.append({ type: 'unlink', inode: files[3]!.id, parent: files[3]!.parent, name: files[3]!.name }),
      bob.append({ type: 'rename', inode: files[5]!.id, parent: files[5]!.parent, name: files[5]!.name, newParent: root, newName: 'b5' }),
      bob.append({ type: 'mkdir', parent: dirs[2]!, name: 'bdir', mode: 0o700, uid: 0, gid: 0 }),
      bob.append({ type: 'chmod', inode: files[7]!.id, mode: 0o600 }),
      bob.append({ type: 'setxattr', inode: files[8]!.id, name: 'user.who', value: Buffer.from('bob') }),
    ];
    for (let i = 0; i < 40; i++) {
      const f = files[i % files.length]!;
      const r = i % 5;
      if (r === 0) {
        const to = dirs[(i + 1) % dirs.length]!;
        alice.append({ type: 'rename', inode: f.id, parent: f.parent, name: f.name, newParent: to, newName: `${f.name}.${i}` });
        f.parent = to;
        f.name = `${f.name}.${i}`;
      } else if (r === 1) {
        alice.append({ type: 'truncate', inode: f.id, size: i * 7 });
      } else if (r === 2) {
        alice.append({ type: 'create', parent: dirs[i % dirs.length]!, name: `g${i % 3}`, ...ATTRS });
      } else if (r === 3) {
        alice.append({ type: 'setxattr', inode: f.id, name: 'user.n', value: Buffer.from(`${i}`) });
      } else {
        alice.append({ type: 'chmod', inode: f.id, mode: 0o640 + (i % 8) });
      }
    }
    await alice.projector.catchUp();
    const history = await History.open({ name: 'rw', dir: join(dir, 'alice'), log: alice.log, content: store, cipher: alice.store.cipher }, { every: 8n, fullEvery: 3n });
    await history.update();
    await work({ alice, bob, late, history });
  } finally {
    await store.close();
    await alice.close();
    await bob.close();
  }
}

/** Hands Bob's late events to Alice and catches her projection up through a projector that rewinds to her checkpoints. */
async function deliverLate(dir: string, s: Scene): Promise<Awaited<ReturnType<Projector['catchUp']>>> {
  s.alice.log.ingest([...s.bob.log.read(BOB.writer)].map((e) => e.bytes), { wallMs: WALL_MS });
  return new Projector(s.alice.store, s.alice.log, undefined, checkpointRewinder(join(dir, 'alice'), s.alice.log)).catchUp();
}

/** Alice's projection equals a rebuild of her log, back-links included, and both settle to the same aggregates. */
async function equalsRebuild(dir: string, p: Peer, minDirs = 1): Promise<void> {
  const scratch = await ProjectionStore.open(join(dir, `scratch-${Date.now()}`), p.store.cipher);
  try {
    await new Projector(scratch, p.log).rebuild();
    assert.ok((await p.store.dump({ links: true })).equals(await scratch.dump({ links: true })), 'the projection equals a rebuild');
    assert.equal(await p.store.settleAggregates(), 0);
    await scratch.settleAggregates();
    const dirs: Buffer[] = [(await scratch.rootId())!];
    for (let i = 0; i < dirs.length; i++) {
      const got = await p.store.aggregate(dirs[i]!);
      assert.ok(got.exact);
      assert.deepEqual(got, await scratch.aggregate(dirs[i]!));
      for (const e of await scratch.readdir(dirs[i]!)) if ((await scratch.getattr(e.id))!.kind === 'dir') dirs.push(e.id);
    }
    assert.ok(dirs.length >= minDirs, `${dirs.length} directories compared`);
  } finally {
    await scratch.close();
  }
}

const newContent = (p: Peer): ContentStore => new ContentStore(p.arenas, { keys: KEYS });

/** The newest checkpoint that ends before the first late event: where the rewind should land. */
function landing(s: Scene): { count: bigint; path: string } {
  const first = s.late[0]!;
  const before = s.history.checkpoints().filter((r) => compareCausal(r.position, first) < 0);
  assert.ok(before.length >= 2, 'the scene has checkpoints before the late events');
  return before.at(-1)!;
}

test('a late event rewinds the live projection to the newest checkpoint before it and replays only what follows', async () => {
  await withTempDir(async (dir) => {
    await scene(dir, newContent, async (s) => {
      // Aggregates settled before the late events arrive: the rewind must mark what it changes dirty again.
      await s.alice.store.settleAggregates();
      const land = landing(s);
      const result = await deliverLate(dir, s);
      const total = s.alice.log.versionVector().pairs().reduce((sum, [, seq]) => sum + seq, 0n);
      assert.equal(result.rebuilt, false);
      assert.equal(result.rewoundTo, land.count);
      assert.equal(BigInt(result.applied), total - land.count);
      assert.ok(BigInt(result.applied) < total, `replayed ${result.applied} of ${total} events`);
      await equalsRebuild(dir, s.alice, 5);
      // Bob, given everything, shows the same tree (delivered in the other order: no rewind there).
      s.bob.log.ingest([...s.alice.log.merged()].map((e) => e.bytes), { wallMs: WALL_MS });
      await s.bob.projector.catchUp();
      assert.ok((await s.alice.store.dump()).equals(await s.bob.store.dump()));
    });
  });
});

test('a damaged checkpoint at the rewind point is deleted and the rewind lands on an older one; none at all means a rebuild', async () => {
  await withTempDir(async (dir) => {
    await scene(dir, newContent, async (s) => {
      const land = landing(s);
      const bytes = await readFile(land.path);
      bytes[bytes.length - 8] ^= 0x10;
      await writeFile(land.path, bytes);
      const result = await deliverLate(dir, s);
      assert.equal(result.rebuilt, false);
      assert.ok(result.rewoundTo !== undefined && result.rewoundTo < land.count, `rewound to @${result.rewoundTo}`);
      await assert.rejects(readFile(land.path), { code: 'ENOENT' });
      await equalsRebuild(dir, s.alice, 5);
    });
  });
  await withTempDir(async (dir) => {
    await scene(dir, newContent, async (s) => {
      await rm(join(dir, 'alice', CHECKPOINTS_DIR), { recursive: true });
      const result = await deliverLate(dir, s);
      assert.equal(result.rebuilt, true);
      assert.equal(result.rewoundTo, undefined);
      await equalsRebuild(dir, s.alice, 5);
    });
  });
});

function perform(p: Peer, model: Model, op: OpSeed): void {
  const planned = model.plan(op);
  if (planned === null) return;
  const ev = p.append(planned.body);
  planned.commit(ev.id, ev.hlc);
}

test('property: after concurrent work of two writers, the rewound projection equals a rebuild, from any checkpoint spacing and share of deltas', async () => {
  const arbRun = fc.record({
    shared: fc.array(arbOp(), { minLength: 5, maxLength: 25 }),
    alice: fc.array(arbOp(), { minLength: 3, maxLength: 25 }),
    bob: fc.array(arbOp(), { minLength: 3, maxLength: 25 }),
    every: fc.integer({ min: 1, max: 6 }),
    fullEvery: fc.integer({ min: 1, max: 4 }),
    settle: fc.constantFrom('none', 'slice', 'all'),
  });
  let rewinds = 0;
  await fc.assert(fc.asyncProperty(boundedShrink(arbRun), async (run) => {
    await withTempDir(async (dir) => {
      const a = await openPeer(join(dir, 'a'), ALICE);
      const b = await openPeer(join(dir, 'b'), BOB, 3);
      const content = newContent(b);
      try {
        const first = a.append({ type: 'create-volume', label: 'rw', mode: 0o755, uid: 0, gid: 0 });
        const modelA = Model.volume(first.id, first.hlc, 0o755, 0, 0);
        for (const op of run.shared) perform(a, modelA, op);
        deliver(a, b);
        const modelB = modelA.clone();
        for (const op of run.alice) perform(a, modelA, op);
        for (const op of run.bob) perform(b, modelB, op);
        await b.projector.catchUp();
        if (run.settle === 'slice') await b.store.settleAggregates(0);
        if (run.settle === 'all') await b.store.settleAggregates();
        const h = await History.open({ name: 'rw', dir: join(dir, 'b'), log: b.log, content, cipher: b.store.cipher }, { every: BigInt(run.every), fullEvery: BigInt(run.fullEvery) });
        await h.update();
        // Alice's events interleave with Bob's in the merge order: some sort before events Bob has applied.
        deliver(a, b);
        const result = await new Projector(b.store, b.log, 3, checkpointRewinder(join(dir, 'b'), b.log)).catchUp();
        if (result.rewoundTo !== undefined) rewinds++;
        await equalsRebuild(dir, b);
        deliver(b, a);
        await a.projector.catchUp();
        assert.ok((await a.store.dump()).equals(await b.store.dump()), 'both writers show the same state');
      } finally {
        await content.close();
        await a.close();
        await b.close();
      }
    });
  }), { numRuns: process.env.BAZIL_SLOW === '1' ? 100 : 12 });
  assert.ok(rewinds > 0, 'some runs rewound to a checkpoint');
});
