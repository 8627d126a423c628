// Subtree aggregates in the projection (docs/aggregates.md), checked against
// a full walk of the tree: after random operations of one writer (renames
// across directories and removals included) with settling interleaved at
// random points, after two writers' concurrent events (conflicts,
// lost+found), and for every prefix of a log replayed into a fresh
// projection (what as-of views are).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { VersionVector } from '../../src/log/version-vector.js';
import { ProjectionStore } from '../../src/projection/store.js';
import { Model, arbOp, type OpSeed } from './model.js';
import { ALICE, BOB, deliver, openPeer, walkFigures, withTempDir, type Peer, type WalkedFigures } from './helpers.js';

/** Every live directory's figures by brute force, keyed by id hex. */
async function walkAll(store: ProjectionStore): Promise<Map<string, WalkedFigures>> {
  const out = new Map<string, WalkedFigures>();
  const root = await store.rootId();
  if (root !== undefined) await walkFigures(store, root, (id, f) => out.set(id.toString('hex'), f));
  return out;
}

/** Stored aggregates that claim to be exact must equal the walk; after a full settle, all must. */
async function checkAggregates(store: ProjectionStore, settled: boolean): Promise<void> {
  const truth = await walkAll(store);
  for (const [hex, want] of truth) {
    const got = await store.aggregate(Buffer.from(hex, 'hex'));
    if (settled) assert.ok(got.exact, `directory ${hex} is exact after settling`);
    if (got.exact) assert.deepEqual(got.value, want, `aggregate of ${hex}`);
  }
}

async function startVolume(p: Peer): Promise<Model> {
  const ev = p.append({ type: 'create-volume', label: 'agg', mode: 0o755, uid: 0, gid: 0 });
  return Model.volume(ev.id, ev.hlc, 0o755, 0, 0);
}

function perform(p: Peer, model: Model, op: OpSeed): boolean {
  const planned = model.plan(op);
  if (planned === null) return false;
  const ev = p.append(planned.body);
  planned.commit(ev.id, ev.hlc);
  return true;
}

test('property: aggregates equal a full walk after random operations, with settling interleaved anywhere', async () => {
  const arbRun = fc.record({
    ops: fc.array(arbOp(), { minLength: 20, maxLength: 80 }),
    // Per operation: 0 no settle, 1 settle one slice (partial), 2 settle fully.
    settles: fc.array(fc.constantFrom(0, 0, 1, 2), { minLength: 80, maxLength: 80 }),
    batch: fc.integer({ min: 1, max: 6 }),
  });
  await fc.assert(fc.asyncProperty(arbRun, async ({ ops, settles, batch }) => {
    await withTempDir(async (dir) => {
      const p = await openPeer(dir, ALICE, batch);
      try {
        const model = await startVolume(p);
        await p.projector.catchUp();
        for (const [i, op] of ops.entries()) {
          if (!perform(p, model, op)) continue;
          if (i % 3 === 0) await p.projector.catchUp();
          if (settles[i] === 1) await p.store.settleAggregates(0);
          if (settles[i] === 2) await p.store.settleAggregates();
          await checkAggregates(p.store, false);
        }
        await p.projector.catchUp();
        assert.equal(await p.store.settleAggregates(), 0);
        await checkAggregates(p.store, true);
        // A rebuild starts the caches over; settled again they agree.
        await p.projector.rebuild();
        await p.store.settleAggregates();
        await checkAggregates(p.store, true);
      } finally {
        await p.close();
      }
    });
  }), { numRuns: process.env.BAZIL_SLOW === '1' ? 200 : 25 });
});

test('property: two writers\' concurrent events (conflicts, lost+found) settle to the walk', async () => {
  const arbRun = fc.record({
    shared: fc.array(arbOp(), { minLength: 5, maxLength: 20 }),
    alice: fc.array(arbOp(), { minLength: 3, maxLength: 20 }),
    bob: fc.array(arbOp(), { minLength: 3, maxLength: 20 }),
  });
  await fc.assert(fc.asyncProperty(arbRun, async (run) => {
    await withTempDir(async (dir) => {
      const a = await openPeer(join(dir, 'a'), ALICE, 3);
      const b = await openPeer(join(dir, 'b'), BOB, 3);
      try {
        const modelA = await startVolume(a);
        for (const op of run.shared) perform(a, modelA, op);
        deliver(a, b);
        await b.projector.catchUp();
        await b.store.settleAggregates();
        const modelB = modelA.clone();
        for (const op of run.alice) perform(a, modelA, op);
        for (const op of run.bob) perform(b, modelB, op);
        await b.projector.catchUp();
        await b.store.settleAggregates(0);
        deliver(a, b);
        // Alice's events sort before some of Bob's: the projector rewinds (a rebuild), the caches follow.
        await b.projector.catchUp();
        await checkAggregates(b.store, false);
        await b.store.settleAggregates();
        await checkAggregates(b.store, true);
      } finally {
        await a.close();
        await b.close();
      }
    });
  }), { numRuns: process.env.BAZIL_SLOW === '1' ? 100 : 15 });
});

test('aggregates are exact at every prefix of the log replayed into a fresh projection (as-of views)', async () => {
  await withTempDir(async (dir) => {
    const p = await openPeer(join(dir, 'live'), ALICE, 4);
    try {
      const model = await startVolume(p);
      const ops = fc.sample(arbOp(), { numRuns: 120, seed: 7 });
      for (const op of ops) perform(p, model, op);
      const events = [...p.log.merged(VersionVector.EMPTY)];
      assert.ok(events.length > 60);
      for (let k = 1; k <= events.length; k += Math.max(1, Math.floor(events.length / 15))) {
        const view = await ProjectionStore.open(join(dir, `asof-${k}`), p.store.cipher);
        try {
          const batch = view.batch();
          for (const env of events.slice(0, k)) await batch.apply(env, p.log.open(env));
          await batch.commit();
          await view.settleAggregates();
          await checkAggregates(view, true);
        } finally {
          await view.close();
        }
      }
    } finally {
      await p.close();
    }
  });
});

test('a directory the projection does not know reads as inexact with no figures', async () => {
  await withTempDir(async (dir) => {
    const p = await openPeer(dir, ALICE, 2);
    try {
      const model = await startVolume(p);
      for (const op of fc.sample(arbOp(), { numRuns: 60, seed: 3 })) perform(p, model, op);
      await p.projector.catchUp();
      const unknown = await p.store.aggregate(Buffer.alloc(32, 7));
      assert.deepEqual(unknown, { value: undefined, exact: false });
      await p.store.settleAggregates();
      await checkAggregates(p.store, true);
    } finally {
      await p.close();
    }
  });
});
