// Two writers of one volume at the volume level (issue 3: "events of two
// writers delivered in shuffled orders give identical projections"): two
// homes, two peer identities, one volume (the second home joins it with the
// volume's secret). Both write through Volume at the same time, with
// clashing names, renames, removals and writes to shared files, in two
// rounds with an exchange between them, so the second round depends on
// both. There is no sync yet, so events move the way sync will hand them
// over: read from one home's log, ingested into another's (LogStore.ingest,
// which checks them), then the projection catches up as Volume.open does.
//
// Then observers (more homes joined to the volume) receive all events in
// shuffled orders (each writer's events in order, each event after what it
// depends on, in chunks, the projection catching up after each chunk, so
// late events force replays), with deliveries that skip an event thrown in
// (refused whole with LOG_GAP, nothing stored). Every home must end with a
// byte-identical projection, equal to a rebuild, and fsck clean.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { initHome, openHome, PRIVATE_DIR_MODE, VOLUMES_DIR } from '../../src/home/home.js';
import { readVolumeIndex, writeVolumeIndex } from '../../src/home/volume-index.js';
import { createVolume, openVolumeByName, SECRET_FILE, VOLUME_FILE, type OpenVolume } from '../../src/home/volumes.js';
import type { Envelope } from '../../src/log/codec.js';
import { VersionVector } from '../../src/log/version-vector.js';
import { CONTENT_KIND } from '../../src/cas/content-store.js';
import { LOST_FOUND_NAME, ProjectionCipher, ProjectionStore, Projector } from '../../src/projection/index.js';
import { PROJECTION_DIR, Volume } from '../../src/volume/volume.js';
import { listVolume, runOp, type VolOp } from './model.js';
import { prng } from './power-cut-workload.js';

const SLOW = process.env.BAZIL_SLOW === '1';
const RUNS = SLOW ? 40 : 5;
const OBSERVERS = SLOW ? 3 : 2;
const NAMES = ['a', 'b', 'c'];

/** Runs `work` on a home's volume below the facade: its log and a projector over its projection, as Volume.open sets them up. */
async function withLog<T>(homeDir: string, name: string, work: (open: OpenVolume, projector: Projector) => Promise<T>): Promise<T> {
  const home = await openHome(homeDir);
  try {
    const open = await openVolumeByName(home, name);
    try {
      const store = await ProjectionStore.open(join(open.dir, PROJECTION_DIR), new ProjectionCipher(open.keys.projectionKey));
      try {
        return await work(open, new Projector(store, open.log));
      } finally {
        await store.close();
      }
    } finally {
      await open.close();
    }
  } finally {
    await home.close();
  }
}

/** What one home sends another: its content records (every writer's) and its events, in merge order. */
interface Shipment {
  content: { writer: Buffer; seq: bigint; type: number; key: Buffer; payload: Buffer }[];
  events: Envelope[];
}

/**
 * Everything the home holds of the volume. Sync does not exist yet; content
 * travels here as records appended to the same writers' streams, which is
 * what lets the receiver read the files and fsck verify every object.
 */
function collect(homeDir: string, name: string): Promise<Shipment> {
  return withLog(homeDir, name, async (open) => {
    const content: Shipment['content'] = [];
    for (const writer of open.arenas.writers(CONTENT_KIND)) {
      for (const r of open.arenas.records(CONTENT_KIND, writer)) {
        content.push({ writer, seq: r.seq, type: r.type, key: Buffer.from(r.key), payload: Buffer.from(r.payload) });
      }
    }
    return { content, events: [...open.log.merged()] };
  });
}

/** Stores the content records not held yet and makes them durable: content first, as for local writes. */
async function storeContent(open: OpenVolume, content: Shipment['content']): Promise<void> {
  for (const r of content) {
    if (r.seq >= open.arenas.nextSeq(CONTENT_KIND, r.writer)) open.arenas.appendAt(CONTENT_KIND, r.writer, r.seq, r.type, r.key, r.payload);
  }
  await open.arenas.sync();
}

/** Ingests a shipment (events checked, all or nothing), makes it durable and brings the projection up to it. */
function deliver(homeDir: string, name: string, shipment: Shipment): Promise<void> {
  return withLog(homeDir, name, async (open, projector) => {
    await storeContent(open, shipment.content);
    open.log.ingest(shipment.events.map((e) => e.bytes), { wallMs: Date.now() });
    await open.log.sync();
    await projector.catchUp();
  });
}

/** Makes volume `name` of home `from` known to home `to`, the way a peer is given a volume: its id, name and secret; no events yet. */
async function joinVolume(from: string, to: string, name: string): Promise<void> {
  const entry = (await readVolumeIndex(from)).find((e) => e.name === name)!;
  const dir = join(to, VOLUMES_DIR, entry.id);
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  for (const f of [SECRET_FILE, VOLUME_FILE]) await copyFile(join(from, VOLUMES_DIR, entry.id, f), join(dir, f));
  await writeVolumeIndex(to, [...(await readVolumeIndex(to)), entry]);
}

/** A random call against the tree as `v` shows it now; clashes with the other writer are the point. */
async function randomOp(v: Volume, rand: () => number): Promise<VolOp> {
  const listed = (await listVolume(v)).listed;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const dirs = listed.filter((l) => l.kind === 'dir').map((l) => l.path);
  const others = listed.filter((l) => l.path !== '/').map((l) => l.path);
  const files = listed.filter((l) => l.kind !== 'dir').map((l) => l.path);
  const fresh = (): string => `${pick(dirs).replace(/\/$/, '')}/${pick(NAMES)}`;
  const one = (list: string[]): string => (list.length > 0 && rand() < 0.85 ? pick(list) : fresh());
  const r = rand();
  if (r < 0.2) return { op: 'mkdir', path: fresh() };
  if (r < 0.45) return { op: 'writeFile', path: rand() < 0.5 ? one(files) : fresh(), data: Buffer.from(`${rand()}`) };
  if (r < 0.6) return { op: 'rename', from: one(others), to: rand() < 0.5 ? one(others) : fresh() };
  if (r < 0.7) return { op: 'unlink', path: one(files) };
  if (r < 0.75) return { op: 'rmdir', path: one(dirs.filter((d) => d !== '/')) };
  if (r < 0.8) return { op: 'link', from: one(files), to: fresh() };
  if (r < 0.85) return { op: 'symlink', target: 'x', path: fresh() };
  if (r < 0.9) return { op: 'chmod', path: one(others), mode: Math.floor(rand() * 0o777) };
  return { op: 'setxattr', path: one(others), name: `user.${pick(NAMES)}`, value: Buffer.from(pick(NAMES)) };
}

/** `count` random calls, alternating at random between the writers, so their clocks interleave. */
async function writeConcurrently(homes: readonly string[], name: string, count: number, rand: () => number): Promise<void> {
  const volumes = await Promise.all(homes.map((h) => Volume.open(h, name)));
  try {
    for (let i = 0; i < count; i++) {
      const v = volumes[Math.floor(rand() * volumes.length)]!;
      await runOp(v, await randomOp(v, rand));
    }
  } finally {
    for (const v of volumes) await v.close();
  }
}

/**
 * A delivery order of `events`: each writer's events in seq order, every
 * event after those it depends on, in chunks of one to six from one
 * writer at a time, the writer drawn at random.
 */
function shuffledChunks(events: readonly Envelope[], rand: () => number): Envelope[][] {
  const queues = new Map<string, Envelope[]>();
  for (const e of events) {
    const w = e.writer.toString('hex');
    queues.set(w, [...(queues.get(w) ?? []), e]);
  }
  let held = VersionVector.EMPTY;
  const chunks: Envelope[][] = [];
  while ([...queues.values()].some((q) => q.length > 0)) {
    const ready = [...queues.values()].filter((q) => q.length > 0 && q[0]!.deps.isCoveredBy(held));
    const q = ready[Math.floor(rand() * ready.length)]!;
    const chunk: Envelope[] = [];
    const size = 1 + Math.floor(rand() * 6);
    while (chunk.length < size && q.length > 0 && q[0]!.deps.isCoveredBy(held)) {
      const e = q.shift()!;
      chunk.push(e);
      held = held.with(e.writer, e.seq);
    }
    chunks.push(chunk);
  }
  return chunks;
}

test('two writers of one volume: every delivery order gives one byte-identical projection', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-two-writers-'));
  const homes = ['alice', 'bob', ...Array.from({ length: OBSERVERS }, (_, k) => `observer${k}`)].map((h) => join(dir, h));
  const [alice, bob] = homes as [string, string];
  const observers = homes.slice(2);
  let runs = 0;
  let events = 0;
  let replays = 0;
  let gaps = 0;
  let conflicts = 0;
  let lostFound = 0;
  const started = performance.now();
  try {
    for (const h of homes) await (await initHome(h)).home.close();
    await fc.assert(fc.asyncProperty(fc.nat(), fc.integer({ min: 8, max: SLOW ? 40 : 16 }), async (seed, perRound) => {
      const rand = prng(seed);
      const name = `w${runs++}`;
      {
        const h = await openHome(alice);
        await createVolume(h, name).finally(() => h.close());
      }
      for (const h of homes.slice(1)) await joinVolume(alice, h, name);

      // A shared start, then two rounds of concurrent writes with an exchange in between.
      await writeConcurrently([alice], name, perRound, rand);
      await deliver(bob, name, await collect(alice, name));
      await writeConcurrently([alice, bob], name, perRound, rand);
      const fromAlice = await collect(alice, name);
      const fromBob = await collect(bob, name);
      await deliver(alice, name, fromBob);
      await deliver(bob, name, fromAlice);
      await writeConcurrently([alice, bob], name, perRound, rand);
      await deliver(alice, name, await collect(bob, name));
      await deliver(bob, name, await collect(alice, name));

      const all = await collect(alice, name);
      events += all.events.length;
      const dumps: Buffer[] = [];
      for (const h of [alice, bob]) {
        const v = await Volume.open(h, name);
        try {
          dumps.push(await v.dump());
          if (h === alice) {
            for (const l of (await listVolume(v)).listed) {
              if (l.path.includes('.conflict-')) conflicts++;
              if (l.path.startsWith(`/${LOST_FOUND_NAME}/`)) lostFound++;
            }
          }
        } finally {
          await v.close();
        }
      }
      assert.ok(dumps[1]!.equals(dumps[0]!), "the writers' projections differ once each has the other's events");

      for (const observer of observers) {
        await withLog(observer, name, (open) => storeContent(open, all.content));
        for (const chunk of shuffledChunks(all.events, rand)) {
          await withLog(observer, name, async (open, projector) => {
            // Now and then the chunk comes with a hole: refused whole, nothing stored.
            if (chunk.length > 1 && rand() < 0.2) {
              const before = open.log.versionVector();
              assert.throws(() => open.log.ingest(chunk.slice(1).map((e) => e.bytes), { wallMs: Date.now() }), (err: unknown) => isBazilError(err, ErrorCodes.LOG_GAP));
              assert.ok(open.log.versionVector().equals(before), 'a refused delivery stored events');
              gaps++;
            }
            open.log.ingest(chunk.map((e) => e.bytes), { wallMs: Date.now() });
            await open.log.sync();
            if ((await projector.catchUp()).rebuilt) replays++;
          });
        }
        const v = await Volume.open(observer, name);
        try {
          assert.ok((await v.dump()).equals(dumps[0]!), `observer ${observer} differs from the writers`);
          await v.rebuild();
          assert.ok((await v.dump()).equals(dumps[0]!), `observer ${observer} differs after a rebuild`);
          const report = await v.fsck();
          assert.deepEqual(report.problems, []);
        } finally {
          await v.close();
        }
      }
    }), { numRuns: RUNS, endOnFailure: true });
    t.diagnostic(`${runs} volumes, ${events} events in all, ${replays} catch-ups replayed for a late event, ${gaps} deliveries with a hole refused; `
      + `${conflicts} conflict names and ${lostFound} nodes in lost+found at the end; ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
