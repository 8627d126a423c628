import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ContentStore } from '../../src/cas/content-store.js';
import { deriveVolumeKeys } from '../../src/crypto/volume-keys.js';
import { History } from '../../src/history/history.js';
import { bytesOf, VOLUME } from '../log/helpers.js';
import { ALICE, BOB, WALL_MS, openPeer, withTempDir, type Peer } from '../projection/helpers.js';
import { listProjection } from './helpers.js';

const KEYS = deriveVolumeKeys(bytesOf('test secret'), VOLUME);

function deliver(from: Peer, to: Peer): void {
  to.log.ingest([...from.log.merged()].map((e) => e.bytes), { wallMs: WALL_MS });
}

test('a snapshot names what its writer had seen, even when concurrent events sort before it', async () => {
  await withTempDir(async (dir) => {
    const a = await openPeer(join(dir, 'a'), ALICE);
    const b = await openPeer(join(dir, 'b'), BOB);
    const content = new ContentStore(a.arenas, { keys: KEYS });
    try {
      const root = a.append({ type: 'create-volume', label: 's', mode: 0o755, uid: 0, gid: 0 });
      a.append({ type: 'mkdir', parent: root.id, name: 'shared', mode: 0o755, uid: 0, gid: 0 });
      deliver(a, b);
      // Concurrently: Alice makes many entries (her clock runs ahead), Bob a few, then Bob names his state.
      for (let i = 0; i < 6; i++) a.append({ type: 'mkdir', parent: root.id, name: `a${i}`, mode: 0o755, uid: 0, gid: 0 });
      for (let i = 0; i < 3; i++) b.append({ type: 'create', parent: root.id, name: `b${i}`, mode: 0o644, uid: 0, gid: 0 });
      b.append({ type: 'snapshot', name: 'bobs-view' });
      b.append({ type: 'snapshot', name: 'taken' });
      await b.projector.catchUp();
      const bobSaw = await listProjection(b.store);
      deliver(b, a);
      a.append({ type: 'snapshot', name: 'taken' });
      a.append({ type: 'snapshot', name: 'alices-view' });
      await a.projector.catchUp();

      const h = await History.open({ name: 's', dir: join(dir, 'a'), log: a.log, content, cipher: a.store.cipher }, { every: 3n });
      await h.update();
      const view = await h.at({ kind: 'snapshot', name: 'bobs-view' });
      assert.deepEqual(await listProjection(view.projection), bobSaw);
      assert.deepEqual([view.vector.get(ALICE.writer), view.vector.get(BOB.writer)], [2n, 4n]);
      assert.equal(view.count, 2n + 3n + 1n, "Alice's concurrent mkdirs are not in Bob's snapshot");
      const names = (await listProjection(view.projection)).map((n) => n.path);
      assert.ok(!names.some((p) => p.startsWith('/a')), names.join(' '));
      // The name 'taken' went to whichever snapshot event came first in merge order, on every peer alike.
      const table = await h.snapshots();
      assert.deepEqual(table.map((s) => s.name), ['alices-view', 'bobs-view', 'taken']);
      const taken = table.find((s) => s.name === 'taken')!;
      assert.ok(taken.writer.equals(BOB.writer), "Bob's 'taken' sorts first (his clock was behind)");
      const now = await h.at({ kind: 'snapshot', name: 'alices-view' });
      assert.deepEqual(await listProjection(now.projection), await listProjection(a.store));
    } finally {
      await content.close();
      await a.close();
      await b.close();
    }
  });
});
