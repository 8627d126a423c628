// The log serves the local writer's latest appends from memory
// (src/log/stream.ts, docs/log.md "Storage"): what it hands out must be
// exactly what the arena holds and what opening the stored event gives,
// before and after the tail leaves memory, after a reopen, and mixed with
// another writer's events.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArenaSet } from '../../arena/arena-set.js';
import { nodeFileSystem } from '../../arena/node-fs.js';
import { LogStore, LOG_KIND } from '../../src/log/stream.js';
import { openBody, parseEnvelope, type Envelope } from '../../src/log/codec.js';
import type { Signer } from '../../src/log/signing.js';
import type { EventBody } from '../../src/log/event.js';
import { ALICE, BOB, EVENT_KEY, VOLUME, sampleBodies, withTempDir } from './helpers.js';

async function openLog(dir: string, signer: Signer): Promise<{ arenas: ArenaSet; log: LogStore }> {
  const arenas = await ArenaSet.open(dir, { fs: nodeFileSystem, writer: signer.writer });
  return { arenas, log: LogStore.open({ arenas, volume: VOLUME, eventKey: EVENT_KEY, signer }) };
}

const bodies = sampleBodies();
const bodyAt = (i: number): EventBody => bodies[i % bodies.length]!;

/** The writer's events as the arena holds them, parsed from the stored bytes. */
function fromArena(arenas: ArenaSet, writer: Buffer, fromSeq: bigint): Envelope[] {
  return [...arenas.records(LOG_KIND, writer, fromSeq)].map((r) => parseEnvelope(r.payload));
}

function same(a: Envelope[], b: Envelope[]): void {
  assert.deepEqual(a.map((e) => e.bytes.toString('hex')), b.map((e) => e.bytes.toString('hex')));
  assert.deepEqual(a.map((e) => e.id.toString('hex')), b.map((e) => e.id.toString('hex')));
  assert.deepEqual(a.map((e) => e.seq), b.map((e) => e.seq));
  assert.deepEqual(a.map((e) => e.hlc), b.map((e) => e.hlc));
}

test('reads of the recent tail equal the arena, and each opens to what the stored bytes open to', async () => {
  await withTempDir(async (dir) => {
    const { arenas, log } = await openLog(dir, ALICE);
    try {
      // More than the log keeps, so reads start both inside and before what it remembers.
      const n = 700;
      for (let i = 0; i < n; i++) {
        log.append(bodyAt(i), { wallMs: 1_000 + i });
        if (i % 97 === 0) {
          const from = BigInt(Math.max(1, i - 5));
          same([...log.read(ALICE.writer, from)], fromArena(arenas, ALICE.writer, from));
        }
      }
      for (const from of [1n, 400n, 500n, 600n, 650n, 700n, 701n, 900n]) {
        const read = [...log.read(ALICE.writer, from)];
        same(read, fromArena(arenas, ALICE.writer, from));
        for (const env of read) {
          // The first open may be the remembered one, the second always decrypts: both equal the stored event opened.
          const want = openBody(parseEnvelope(env.bytes), EVENT_KEY);
          assert.deepEqual(log.open(env), want);
          assert.deepEqual(log.open(env), want);
        }
      }
      assert.deepEqual(log.verifyAll(), []);
    } finally {
      await arenas.close();
    }
  });
});

test('an opened event handed out once is not shared: changing it changes no later open', async () => {
  await withTempDir(async (dir) => {
    const { arenas, log } = await openLog(dir, ALICE);
    try {
      log.append({ type: 'create', parent: Buffer.alloc(32, 1), name: 'a.txt', mode: 0o644, uid: 1, gid: 1 }, { wallMs: 5 });
      const [env] = [...log.read(ALICE.writer)];
      const first = log.open(env!);
      assert.equal(first.body.type, 'create');
      (first.body as { name: string }).name = 'changed';
      const again = log.open(env!);
      assert.equal((again.body as { name: string }).name, 'a.txt');
    } finally {
      await arenas.close();
    }
  });
});

test('after a reopen, and merged with another writer, the log reads as the arenas say', async () => {
  await withTempDir(async (dirA) => {
    await withTempDir(async (dirB) => {
      const b = await openLog(dirB, BOB);
      for (let i = 0; i < 20; i++) b.log.append(bodyAt(i), { wallMs: 2_000 + 2 * i });
      await b.arenas.sealNow(LOG_KIND);
      let a = await openLog(dirA, ALICE);
      try {
        for (let i = 0; i < 10; i++) a.log.append(bodyAt(i), { wallMs: 2_001 + 2 * i });
        // Adopting another writer's arenas refreshes the log; the local tail still reads right.
        for (const p of b.arenas.sealedPaths()) await a.arenas.adopt(p);
        a.log.refresh();
        for (let i = 10; i < 30; i++) a.log.append(bodyAt(i), { wallMs: 2_001 + 2 * i });
        const merged = [...a.log.merged()];
        assert.equal(merged.length, 50);
        same(merged.filter((e) => e.writer.equals(ALICE.writer)), fromArena(a.arenas, ALICE.writer, 1n));
        same(merged.filter((e) => e.writer.equals(BOB.writer)), fromArena(a.arenas, BOB.writer, 1n));
        await a.log.sync();
        await a.arenas.close();
        a = await openLog(dirA, ALICE);
        same([...a.log.read(ALICE.writer, 25n)], fromArena(a.arenas, ALICE.writer, 25n));
        a.log.append(bodyAt(3), { wallMs: 9_000 });
        same([...a.log.read(ALICE.writer, 25n)], fromArena(a.arenas, ALICE.writer, 25n));
        assert.deepEqual(a.log.verifyAll(), []);
      } finally {
        await a.arenas.close();
        await b.arenas.close();
      }
    });
  });
});
