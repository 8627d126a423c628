import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Envelope } from '../../src/log/codec.js';
import { Model, arbOp, type OpSeed } from './model.js';
import { ALICE, BOB, CAROL, WALL_MS, deliver, listTree, openPeer, withTempDir, type Peer } from './helpers.js';

const ROOT_ATTRS = { mode: 0o755, uid: 0, gid: 0 };

async function startVolume(p: Peer): Promise<Model> {
  const ev = p.append({ type: 'create-volume', label: 'prop', ...ROOT_ATTRS });
  return Model.volume(ev.id, ev.hlc, ROOT_ATTRS.mode, ROOT_ATTRS.uid, ROOT_ATTRS.gid);
}

/** Plans `op` against `model`, appends it as `p`'s event and commits it to the model; false when POSIX refuses it. */
function perform(p: Peer, model: Model, op: OpSeed): boolean {
  const planned = model.plan(op);
  if (planned === null) return false;
  const ev = p.append(planned.body);
  planned.commit(ev.id, ev.hlc);
  return true;
}

test('property: one writer\'s random operations project exactly as the model tree, and rebuild is byte-identical', async () => {
  await fc.assert(fc.asyncProperty(fc.array(arbOp(), { minLength: 15, maxLength: 60 }), fc.integer({ min: 1, max: 8 }), async (ops, batch) => {
    await withTempDir(async (dir) => {
      const p = await openPeer(dir, ALICE, batch);
      try {
        const model = await startVolume(p);
        await p.projector.catchUp();
        for (const op of ops) {
          if (!perform(p, model, op)) continue;
          await p.projector.catchUp();
          assert.deepEqual(await listTree(p.store), model.list());
        }
        const dump = await p.store.dump();
        await p.projector.rebuild();
        assert.deepEqual(await p.store.dump(), dump);
      } finally {
        await p.close();
      }
    });
  }), { numRuns: 40 });
});

/** Splits `list` into consecutive chunks at the cut points drawn from `cuts`. */
function chunks<T>(list: T[], cuts: number[]): T[][] {
  const out: T[][] = [];
  let start = 0;
  for (const c of cuts) {
    const end = Math.min(list.length, start + 1 + (c % 4));
    if (end > start) out.push(list.slice(start, end));
    start = end;
  }
  if (start < list.length) out.push(list.slice(start));
  return out;
}

test('property: two writers\' concurrent events converge to one dump whatever the delivery order', async () => {
  const arbRun = fc.record({
    shared: fc.array(arbOp(), { minLength: 5, maxLength: 20 }),
    alice: fc.array(arbOp(), { minLength: 3, maxLength: 20 }),
    bob: fc.array(arbOp(), { minLength: 3, maxLength: 20 }),
    cuts: fc.array(fc.nat(), { maxLength: 12 }),
    order: fc.array(fc.boolean(), { maxLength: 30 }),
  });
  await fc.assert(fc.asyncProperty(arbRun, async (run) => {
    await withTempDir(async (dir) => {
      const a = await openPeer(join(dir, 'a'), ALICE, 4);
      const b = await openPeer(join(dir, 'b'), BOB, 4);
      const c = await openPeer(join(dir, 'c'), CAROL, 4);
      try {
        const modelA = await startVolume(a);
        for (const op of run.shared) perform(a, modelA, op);
        const sharedCount = a.log.versionVector().get(ALICE.writer);
        deliver(a, b);
        const modelB = modelA.clone();
        for (const op of run.alice) perform(a, modelA, op);
        for (const op of run.bob) perform(b, modelB, op);

        // Carol gets the shared prefix, then both writers' streams in chunks, interleaved, projecting after each.
        const aliceEvents = [...a.log.read(ALICE.writer)];
        c.log.ingest(aliceEvents.slice(0, Number(sharedCount)).map((e) => e.bytes), { wallMs: WALL_MS });
        await c.projector.catchUp();
        const queues: Envelope[][][] = [chunks(aliceEvents.slice(Number(sharedCount)), run.cuts), chunks([...b.log.read(BOB.writer)], [...run.cuts].reverse())];
        let i = 0;
        while (queues[0].length + queues[1].length > 0) {
          const pickFirst = queues[1].length === 0 || (queues[0].length > 0 && (run.order[i++] ?? true));
          const chunk = queues[pickFirst ? 0 : 1].shift()!;
          c.log.ingest(chunk.map((e) => e.bytes), { wallMs: WALL_MS });
          await c.projector.catchUp();
        }

        deliver(a, b);
        deliver(b, a);
        await a.projector.catchUp();
        await b.projector.catchUp();
        const dump = await a.store.dump();
        assert.deepEqual(await b.store.dump(), dump);
        assert.deepEqual(await c.store.dump(), dump);
        await c.projector.rebuild();
        assert.deepEqual(await c.store.dump(), dump);
      } finally {
        await a.close();
        await b.close();
        await c.close();
      }
    });
  }), { numRuns: 30 });
});
