import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArenaSet } from '../../arena/arena-set.js';
import { nodeFileSystem } from '../../arena/node-fs.js';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { LogStore, LOG_KIND, EVENT_RECORD_TYPE } from '../../src/log/stream.js';
import { compareCausal } from '../../src/log/causal-merge.js';
import { encodeEvent, ZERO_ID, type Envelope } from '../../src/log/codec.js';
import { packHlc } from '../../src/log/hlc.js';
import { VersionVector } from '../../src/log/version-vector.js';
import type { Signer } from '../../src/log/signing.js';
import type { EventBody } from '../../src/log/event.js';
import { ALICE, BOB, CAROL, EVENT_KEY, OTHER_KEY, VOLUME, bytesOf, sampleBodies, signerNamed, withTempDir } from './helpers.js';

interface Peer {
  arenas: ArenaSet;
  log: LogStore;
}

async function openPeer(dir: string, signer: Signer, sealBytes?: number): Promise<Peer> {
  const arenas = await ArenaSet.open(dir, { fs: nodeFileSystem, writer: signer.writer, ...(sealBytes ? { sealBytes } : {}) });
  return { arenas, log: LogStore.open({ arenas, volume: VOLUME, eventKey: EVENT_KEY, signer }) };
}

/** Hands everything `from` holds to `to` the way sync will: sealed arenas, adopted whole. */
async function share(from: Peer, to: Peer): Promise<void> {
  await from.arenas.sealNow(LOG_KIND);
  for (const p of from.arenas.sealedPaths()) await to.arenas.adopt(p);
  to.log.refresh();
}

const bodies = sampleBodies();
const bodyAt = (i: number): EventBody => bodies[i % bodies.length];

test('append, reopen: the chain verifies and the next append continues seq, prev and clock', async () => {
  await withTempDir(async (dir) => {
    const n = 300;
    // A small seal size spreads the chain over sealed arenas and an active one.
    let p = await openPeer(dir, ALICE, 4096);
    const appended = [];
    for (let i = 0; i < n; i++) appended.push(p.log.append(bodyAt(i), { wallMs: 1_000 + (i % 7) }));
    await p.log.sync();
    await p.arenas.close();
    assert.ok(readdirSync(dir).filter((f) => /\.(arena|active)$/.test(f)).length > 1);

    p = await openPeer(dir, ALICE, 4096);
    assert.equal(p.log.versionVector().get(ALICE.writer), BigInt(n));
    const read = [...p.log.read(ALICE.writer)];
    assert.deepEqual(read.map((e) => e.seq), appended.map((e) => e.seq));
    assert.deepEqual(read.map((e) => e.id.toString('hex')), appended.map((e) => e.id.toString('hex')));
    for (let i = 0; i < n; i++) {
      assert.deepEqual(read[i].prev, i === 0 ? ZERO_ID : read[i - 1].id);
      if (i > 0) assert.ok(read[i].hlc > read[i - 1].hlc);
      assert.deepEqual(p.log.open(read[i]).body, bodyAt(i));
    }
    assert.deepEqual([...p.log.read(ALICE.writer, 250n)].map((e) => Number(e.seq)), Array.from({ length: 51 }, (_, i) => 250 + i));
    assert.deepEqual(p.log.verifyAll(), []);

    // The wall clock went back: the clock still rises.
    const next = p.log.append({ type: 'snapshot', name: 'after reopen' }, { wallMs: 5 });
    assert.equal(next.seq, BigInt(n + 1));
    assert.deepEqual(next.prev, appended[n - 1].id);
    assert.ok(next.hlc > appended[n - 1].hlc);
    await p.log.sync();
    assert.deepEqual(p.log.verifyAll(), []);
    await p.arenas.close();
  });
});

test('several writers: clocks and deps follow what each has seen; the merge is the same on every peer', async () => {
  await withTempDir(async (root) => {
    const alice = await openPeer(join(root, 'alice'), ALICE);
    const bob = await openPeer(join(root, 'bob'), BOB);
    const carol = await openPeer(join(root, 'carol'), CAROL);
    try {
      const create = alice.log.append({ type: 'create-volume', label: 'shared', mode: 0o755, uid: 0, gid: 0 }, { wallMs: 5_000_000 });
      for (let i = 0; i < 20; i++) alice.log.append(bodyAt(i), { wallMs: 5_000_000 + i });
      await share(alice, bob);
      // Bob's clock is far behind Alice's; his events still come after everything he has seen.
      const first = bob.log.append({ type: 'mkdir', parent: create.id, name: 'bob', mode: 0o755, uid: 1, gid: 1 }, { wallMs: 1_000 });
      assert.ok(first.hlc > alice.log.versionVector().get(ALICE.writer) && first.hlc > packHlc(5_000_019, 0));
      assert.equal(first.deps.get(ALICE.writer), 21n);
      for (let i = 0; i < 15; i++) bob.log.append(bodyAt(i + 3), { wallMs: 1_000 + i });
      // Concurrently with Bob, Alice and Carol go on without seeing him.
      for (let i = 0; i < 10; i++) alice.log.append(bodyAt(i + 5), { wallMs: 5_000_100 + i });
      for (let i = 0; i < 12; i++) carol.log.append(bodyAt(i + 9), { wallMs: 5_000_050 + i * 3 });

      // Everyone gets everything, in different orders.
      await share(bob, carol);
      await share(alice, carol);
      await share(carol, alice);
      await share(carol, bob);

      const expect = VersionVector.from([[ALICE.writer, 31n], [BOB.writer, 16n], [CAROL.writer, 12n]]);
      const orders = [alice, bob, carol].map((p) => {
        assert.ok(p.log.versionVector().equals(expect));
        assert.deepEqual(p.log.verifyAll(), []);
        return [...p.log.merged()];
      });
      const ids = orders.map((o) => o.map((e) => e.id.toString('hex')).join());
      assert.equal(ids[1], ids[0]);
      assert.equal(ids[2], ids[0]);
      const merged = orders[0];
      assert.equal(merged.length, 59);
      let seen = VersionVector.EMPTY;
      for (let i = 0; i < merged.length; i++) {
        if (i > 0) assert.ok(compareCausal(merged[i - 1], merged[i]) < 0);
        assert.ok(merged[i].deps.isCoveredBy(seen), `event ${i} comes before something it depends on`);
        seen = seen.with(merged[i].writer, merged[i].seq);
      }

      // From a version vector: only what it does not cover, in the same order.
      const from = VersionVector.from([[ALICE.writer, 25n], [BOB.writer, 16n]]);
      const rest = [...carol.log.merged(from)];
      assert.deepEqual(rest.map((e) => e.id.toString('hex')), merged.filter((e) => !from.includes(e.writer, e.seq)).map((e) => e.id.toString('hex')));

      // A new event depends on all of it.
      const last = carol.log.append({ type: 'snapshot', name: 'all' }, { wallMs: 0 });
      assert.ok(last.deps.equals(expect.without(CAROL.writer)));
      assert.ok(last.hlc > merged[merged.length - 1].hlc);
    } finally {
      await Promise.all([alice, bob, carol].map((p) => p.arenas.close()));
    }
  });
});

test('incoming events: accepted in order, duplicates ignored, and every kind of bad batch refused whole', async () => {
  await withTempDir(async (root) => {
    const alice = await openPeer(join(root, 'alice'), ALICE);
    const bob = await openPeer(join(root, 'bob'), BOB);
    try {
      const wallMs = 2_000_000;
      for (let i = 0; i < 8; i++) bob.log.append(bodyAt(i), { wallMs: wallMs + i });
      const bobs = [...bob.log.read(BOB.writer)];
      const bytes = bobs.map((e) => e.bytes);

      const check = alice.log.verifyIncoming([...bytes].reverse(), { wallMs });
      assert.deepEqual(check.fresh.map((e) => e.seq), bobs.map((e) => e.seq));
      assert.equal(check.duplicates, 0);
      assert.equal(check.vector.get(BOB.writer), 8n);
      // Nothing was stored: the check is pure.
      assert.equal(alice.log.versionVector().get(BOB.writer), 0n);
      assert.equal(alice.log.verifyIncoming([...bytes, ...bytes], { wallMs }).duplicates, 8);

      const refused = (events: Uint8Array[], code: string, opts: { wallMs: number; maxDriftMs?: number } = { wallMs }): void => {
        assert.throws(() => alice.log.verifyIncoming(events, opts), (e) => isBazilError(e, code as never));
      };
      refused(bytes.slice(1), ErrorCodes.LOG_GAP);
      refused([bytes[0], bytes[2]], ErrorCodes.LOG_GAP);
      const tampered = Buffer.from(bytes[3]);
      tampered[tampered.length - 5] ^= 1;
      refused([...bytes.slice(0, 3), tampered, ...bytes.slice(4)], ErrorCodes.BAD_SIGNATURE);
      refused(bytes, ErrorCodes.CLOCK_SKEW, { wallMs: wallMs - 1_000, maxDriftMs: 999 });
      assert.equal(alice.log.verifyIncoming(bytes, { wallMs: wallMs - 1_000, maxDriftMs: 1_007 }).fresh.length, 8);
      // By default a clock may run a day ahead, no more.
      refused(bytes, ErrorCodes.CLOCK_SKEW, { wallMs: wallMs - 24 * 3600 * 1000 });
      const forge = (seq: bigint, prev: Uint8Array, hlc: bigint, over: Partial<{ volume: Uint8Array; deps: VersionVector; signer: Signer }> = {}): Envelope =>
        encodeEvent({ volume: over.volume ?? VOLUME, seq, hlc, prev, deps: over.deps ?? VersionVector.EMPTY, body: { type: 'pin', inode: bytesOf('x') } }, over.signer ?? BOB, EVENT_KEY);
      refused([bytes[0], forge(2n, bytesOf('not the first'), bobs[1].hlc).bytes], ErrorCodes.BROKEN_CHAIN);
      refused([bytes[0], forge(2n, bobs[0].id, bobs[0].hlc).bytes], ErrorCodes.BROKEN_CHAIN);
      refused([bytes[0], forge(1n, ZERO_ID, bobs[0].hlc + 1n).bytes], ErrorCodes.CONFLICT);
      refused([forge(1n, ZERO_ID, 1n, { volume: bytesOf('elsewhere') }).bytes], ErrorCodes.WRONG_VOLUME);
      refused([forge(1n, ZERO_ID, 1n, { deps: VersionVector.from([[CAROL.writer, 1n]]) }).bytes], ErrorCodes.LOG_GAP);
      refused([Buffer.from('not an event')], ErrorCodes.CORRUPT_EVENT);
      // Claims to have seen Bob's first event, yet its clock is not after it.
      const early = encodeEvent({ volume: VOLUME, seq: 1n, hlc: bobs[0].hlc, prev: ZERO_ID, deps: VersionVector.from([[BOB.writer, 1n]]), body: { type: 'pin', inode: bytesOf('e') } }, CAROL, EVENT_KEY);
      refused([bytes[0], early.bytes], ErrorCodes.BROKEN_CHAIN);
      const inTime = encodeEvent({ volume: VOLUME, seq: 1n, hlc: bobs[0].hlc + 1n, prev: ZERO_ID, deps: VersionVector.from([[BOB.writer, 1n]]), body: { type: 'pin', inode: bytesOf('e') } }, CAROL, EVENT_KEY);
      assert.equal(alice.log.verifyIncoming([bytes[0], inTime.bytes], { wallMs }).fresh.length, 2);
      // A dependency may be satisfied by another event of the same batch.
      const carolFirst = encodeEvent({ volume: VOLUME, seq: 1n, hlc: 5n, prev: ZERO_ID, deps: VersionVector.EMPTY, body: { type: 'pin', inode: bytesOf('c') } }, CAROL, EVENT_KEY);
      const dependent = forge(1n, ZERO_ID, 6n, { deps: VersionVector.from([[CAROL.writer, 1n]]), signer: signerNamed('dave') });
      assert.equal(alice.log.verifyIncoming([dependent.bytes, carolFirst.bytes], { wallMs }).fresh.length, 2);

      // Once stored, the same events are duplicates, and a second event for a held seq is a conflict.
      await share(bob, alice);
      const again = alice.log.verifyIncoming(bytes, { wallMs });
      assert.deepEqual([again.fresh.length, again.duplicates], [0, 8]);
      refused([forge(3n, bobs[1].id, bobs[2].hlc).bytes], ErrorCodes.CONFLICT);
      // Dependencies on stored events are checked against their stored clocks.
      const late = (hlc: bigint): Uint8Array => encodeEvent({ volume: VOLUME, seq: 1n, hlc, prev: ZERO_ID, deps: VersionVector.from([[BOB.writer, 5n]]), body: { type: 'pin', inode: bytesOf('l') } }, CAROL, EVENT_KEY).bytes;
      refused([late(bobs[4].hlc)], ErrorCodes.BROKEN_CHAIN);
      assert.equal(alice.log.verifyIncoming([late(bobs[4].hlc + 1n)], { wallMs }).fresh.length, 1);
      const b9 = bob.log.append(bodyAt(9), { wallMs });
      const next = alice.log.verifyIncoming([bytes[7], b9 && [...bob.log.read(BOB.writer, 9n)][0].bytes], { wallMs });
      assert.deepEqual([next.fresh.map((e) => e.seq), next.duplicates], [[9n], 1]);
    } finally {
      await Promise.all([alice.arenas.close(), bob.arenas.close()]);
    }
  });
});

test("ingest stores other writers' events at their seqs; a refused batch stores nothing; reopen keeps them", async () => {
  await withTempDir(async (root) => {
    const wallMs = 3_000_000;
    let alice = await openPeer(join(root, 'alice'), ALICE);
    const bob = await openPeer(join(root, 'bob'), BOB);
    try {
      for (let i = 0; i < 10; i++) bob.log.append(bodyAt(i), { wallMs: wallMs + i });
      const bytes = [...bob.log.read(BOB.writer)].map((e) => e.bytes);
      const bad = Buffer.from(bytes[6]);
      bad[bad.length - 1] ^= 1;
      assert.throws(() => alice.log.ingest([...bytes.slice(0, 6), bad], { wallMs }), (e) => isBazilError(e, ErrorCodes.BAD_SIGNATURE));
      assert.equal(alice.arenas.nextSeq(LOG_KIND, BOB.writer), 1n);

      const first = alice.log.ingest(bytes.slice(0, 4), { wallMs });
      assert.deepEqual([first.added.length, first.duplicates], [4, 0]);
      const second = alice.log.ingest(bytes, { wallMs });
      assert.deepEqual([second.added.map((e) => Number(e.seq)), second.duplicates], [[5, 6, 7, 8, 9, 10], 4]);
      assert.equal(alice.log.versionVector().get(BOB.writer), 10n);
      const mine = alice.log.append({ type: 'snapshot', name: 's' }, { wallMs: 1 });
      assert.equal(mine.deps.get(BOB.writer), 10n);
      assert.ok(mine.hlc > [...bob.log.read(BOB.writer, 10n)][0].hlc);
      await alice.log.sync();
      await alice.arenas.close();

      alice = await openPeer(join(root, 'alice'), ALICE);
      assert.ok(alice.log.versionVector().equals(VersionVector.from([[ALICE.writer, 1n], [BOB.writer, 10n]])));
      assert.deepEqual([...alice.log.read(BOB.writer)].map((e) => e.bytes), bytes);
      assert.deepEqual(alice.log.verifyAll(), []);
      assert.deepEqual([...alice.log.merged()].map((e) => e.writer.equals(ALICE.writer) ? 'a' : 'b').join(''), 'bbbbbbbbbba');
    } finally {
      await Promise.all([alice.arenas.close(), bob.arenas.close()]);
    }
  });
});

test('fsck finds bad records: wrong key, broken links, misplaced events, missing dependencies', async () => {
  await withTempDir(async (dir) => {
    const p = await openPeer(dir, ALICE);
    try {
      for (let i = 0; i < 5; i++) p.log.append(bodyAt(i), { wallMs: 10_000 + i });
      const tip = [...p.log.read(ALICE.writer, 5n)][0];
      const put = (seq: bigint, prev: Uint8Array, opts: { key?: Uint8Array; deps?: VersionVector; id?: Uint8Array } = {}): void => {
        const env = encodeEvent({ volume: VOLUME, seq, hlc: tip.hlc + seq, prev, deps: opts.deps ?? VersionVector.EMPTY, body: { type: 'pin', inode: bytesOf('x') } }, ALICE, opts.key ?? EVENT_KEY);
        p.arenas.append(LOG_KIND, EVENT_RECORD_TYPE, opts.id ?? env.id, env.bytes);
      };
      put(6n, tip.id, { key: OTHER_KEY });
      put(7n, bytesOf('nothing'));
      put(8n, bytesOf('whatever'), { id: bytesOf('a wrong key') });
      put(9n, bytesOf('whatever'), { deps: VersionVector.from([[BOB.writer, 3n]]) });
      await p.log.sync();
      const problems = p.log.verifyAll().map((x) => [x.code, x.seq]);
      assert.deepEqual(problems, [
        [ErrorCodes.DECRYPT_FAILED, '6'],
        [ErrorCodes.CORRUPT_EVENT, '8'],
        [ErrorCodes.LOG_GAP, '9'],
      ]);
      // Seq 7 links to nothing, but its predecessor failed, so the chain restarts there; a good 10 must link to 9.
      put(10n, bytesOf('not nine'));
      await p.log.sync();
      const more = p.log.verifyAll().map((x) => [x.code, x.seq]);
      assert.deepEqual(more.filter(([, seq]) => seq === '10'), [[ErrorCodes.BROKEN_CHAIN, '10']]);
      assert.equal(more.length, 4);
    } finally {
      await p.arenas.close();
    }
  });
});

test('fsck reports a record damaged on disk and goes on past it', async () => {
  await withTempDir(async (dir) => {
    let p = await openPeer(dir, ALICE);
    for (let i = 0; i < 40; i++) p.log.append(bodyAt(i), { wallMs: 10_000 + i });
    await p.log.sync();
    const [sealed] = await p.arenas.sealNow(LOG_KIND);
    await p.arenas.close();
    const bytes = readFileSync(sealed);
    bytes[Math.floor(bytes.length / 3)] ^= 0x40;
    writeFileSync(sealed, bytes);
    p = await openPeer(dir, ALICE);
    try {
      const problems = p.log.verifyAll();
      assert.equal(problems.length, 1);
      assert.equal(problems[0].code, ErrorCodes.CORRUPT_RECORD);
      assert.ok(Number(problems[0].seq) > 1 && Number(problems[0].seq) < 40);
    } finally {
      await p.arenas.close();
    }
  });
});

test('an arena set of another writer is refused', async () => {
  await withTempDir(async (dir) => {
    const arenas = await ArenaSet.open(dir, { fs: nodeFileSystem, writer: BOB.writer });
    try {
      // Fresh: only the first append can tell.
      const fresh = LogStore.open({ arenas, volume: VOLUME, eventKey: EVENT_KEY, signer: ALICE });
      assert.throws(() => fresh.append(bodyAt(0), { wallMs: 1 }), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
      // Now the set holds a record in Bob's stream, and open sees the mismatch.
      assert.throws(() => LogStore.open({ arenas, volume: VOLUME, eventKey: EVENT_KEY, signer: ALICE }), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
      assert.throws(() => LogStore.open({ arenas, volume: Buffer.alloc(3), eventKey: EVENT_KEY, signer: BOB }), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
    } finally {
      await arenas.close();
    }
  });
});
