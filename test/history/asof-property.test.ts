import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { boundedShrink } from '../lib/property.js';
import { ContentStore } from '../../src/cas/content-store.js';
import { deriveVolumeKeys } from '../../src/crypto/volume-keys.js';
import { History } from '../../src/history/history.js';
import { bytesOf, VOLUME } from '../log/helpers.js';
import { Model, arbOp } from '../projection/model.js';
import { ALICE, openPeer, withTempDir, type Listed } from '../projection/helpers.js';
import { dumpTables, listProjection } from './helpers.js';

const ROOT_ATTRS = { mode: 0o755, uid: 0, gid: 0 };
const KEYS = deriveVolumeKeys(bytesOf('test secret'), VOLUME);

test('property: the as-of view at every prefix of the log equals the model at that prefix, from any checkpoint spacing and any share of delta checkpoints', async () => {
  const arbRun = fc.record({
    ops: fc.array(arbOp(), { minLength: 10, maxLength: 45 }),
    snaps: fc.array(fc.boolean(), { maxLength: 45 }),
    every: fc.integer({ min: 1, max: 9 }),
    fullEvery: fc.integer({ min: 1, max: 5 }),
  });
  await fc.assert(fc.asyncProperty(boundedShrink(arbRun), async (run) => {
    await withTempDir(async (dir) => {
      const p = await openPeer(dir, ALICE);
      const content = new ContentStore(p.arenas, { keys: KEYS });
      try {
        const first = p.append({ type: 'create-volume', label: 'asof', ...ROOT_ATTRS });
        const model = Model.volume(first.id, first.hlc, ROOT_ATTRS.mode, ROOT_ATTRS.uid, ROOT_ATTRS.gid);
        // expected[k - 1] is the tree after the first k events; snapshots name the tree at their event.
        const expected: Listed[][] = [model.list()];
        const snapshots = new Map<string, number>();
        run.ops.forEach((op, i) => {
          const planned = model.plan(op);
          if (planned !== null) {
            const ev = p.append(planned.body);
            planned.commit(ev.id, ev.hlc);
            expected.push(model.list());
          }
          if (run.snaps[i] === true) {
            p.append({ type: 'snapshot', name: `s${i}` });
            expected.push(model.list());
            snapshots.set(`s${i}`, expected.length);
          }
        });
        await p.projector.catchUp();

        const h = await History.open({ name: 'asof', dir, log: p.log, content, cipher: p.store.cipher }, { every: BigInt(run.every), fullEvery: BigInt(run.fullEvery) });
        const written = await h.update();
        assert.equal(written, Math.floor(expected.length / run.every));
        for (let k = 1; k <= expected.length; k++) {
          const view = await h.at({ kind: 'position', count: BigInt(k) });
          assert.equal(view.count, BigInt(k));
          assert.ok(view.replayed < run.every, `replayed ${view.replayed} events from the nearest checkpoint`);
          assert.deepEqual(await listProjection(view.projection), expected[k - 1], `state at @${k}`);
        }
        for (const [name, k] of snapshots) {
          const view = await h.at({ kind: 'snapshot', name });
          assert.equal(view.count, BigInt(k));
          assert.deepEqual(await listProjection(view.projection), expected[k - 1], `state at snapshot ${name}`);
        }
        assert.deepEqual((await h.snapshots()).map((s) => s.name).sort(), [...snapshots.keys()].sort());
        // The state now, replayed in memory, is the live LevelDB projection byte for byte (tables of the original schema).
        const now = await h.at({ kind: 'now' });
        assert.deepEqual(dumpTables(await now.projection.dump()), dumpTables(await p.store.dump()));
        // A fresh History over the same checkpoints agrees, and a full replay confirms every checkpoint.
        const again = await History.open({ name: 'asof', dir, log: p.log, content, cipher: p.store.cipher }, { every: BigInt(run.every), fullEvery: BigInt(run.fullEvery) });
        assert.equal(again.checkpoints().length, Math.floor(expected.length / run.every));
        const verified = await again.verify();
        assert.deepEqual(verified, { checked: again.checkpoints().length, replaced: [], findings: [] });
      } finally {
        await content.close();
        await p.close();
      }
    });
  }), { numRuns: process.env.BAZIL_SLOW === '1' ? 200 : 25 });
});
