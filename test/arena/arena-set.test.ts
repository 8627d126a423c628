import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readFileSync, readdirSync, statSync, writeFileSync, closeSync, writeSync, truncateSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { SLOW, keyOf, payloadOf, withTempDir, openSet } from './helpers.js';

function sealedFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.arena')).map((n) => join(dir, n));
}

function activeFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.active')).map((n) => join(dir, n));
}

test('round trip: append, sync, get, reopen, seal, reopen', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    const n = 500;
    for (let i = 0; i < n; i++) {
      const seq = set.append('content', 1 + (i % 3), keyOf(i), payloadOf(i, i % 300));
      assert.equal(seq, BigInt(i + 1));
    }
    // Readable before and after sync, from the buffer and from the file.
    assert.deepEqual(Buffer.from(set.get(keyOf(7))!.payload), payloadOf(7, 7));
    await set.sync();
    for (let i = 0; i < n; i++) {
      const r = set.get(keyOf(i))!;
      assert.equal(r.type, 1 + (i % 3));
      assert.deepEqual(Buffer.from(r.payload), payloadOf(i, i % 300));
    }
    assert.equal(set.get(keyOf(n)), undefined);
    await set.close();

    const again = await openSet(dir);
    assert.deepEqual(Buffer.from(again.get(keyOf(42))!.payload), payloadOf(42, 42));
    const sealed = await again.sealNow();
    assert.equal(sealed.length, 1);
    assert.equal(activeFiles(dir).length, 0);
    for (let i = 0; i < n; i++) assert.deepEqual(Buffer.from(again.get(keyOf(i))!.payload), payloadOf(i, i % 300));
    // The stream goes on in a new arena after the sealed one.
    assert.equal(again.append('content', 1, keyOf(n), payloadOf(n)), BigInt(n + 1));
    await again.close();

    const third = await openSet(dir);
    const seqs = [...third.records('content', (await import('./helpers.js')).WRITER)].map((r) => r.seq);
    assert.equal(seqs.length, n + 1);
    assert.deepEqual(seqs, Array.from({ length: n + 1 }, (_, i) => BigInt(i + 1)));
    const mid = [...third.records('content', (await import('./helpers.js')).WRITER, 250n, 260n)];
    assert.deepEqual(mid.map((r) => Number(r.seq)), Array.from({ length: 11 }, (_, i) => 250 + i));
    assert.deepEqual(Buffer.from(mid[0].payload), payloadOf(249, 249 % 300));
    assert.deepEqual(third.verify(), []);
    await third.close();
  });
});

test('present keys are all found and absent keys never are, in sealed and active arenas', async () => {
  await withTempDir(async (dir) => {
    const n = SLOW ? 1_000_000 : 100_000;
    const set = await openSet(dir, { sealBytes: 1024 * 1024 });
    for (let i = 0; i < n; i++) set.append('content', 1, keyOf(i), payloadOf(i, 24));
    await set.sync();
    // Records are durable now; seals finish in the background.
    await set.waitForSeals();
    const stats = set.stats();
    assert.ok(stats.sealedArenas >= 2, `expected several sealed arenas, got ${stats.sealedArenas}`);
    for (let i = 0; i < n; i++) {
      const r = set.get(keyOf(i));
      assert.ok(r, `key ${i} missing`);
      if (i % 97 === 0) assert.deepEqual(Buffer.from(r.payload), payloadOf(i, 24));
    }
    for (let i = 0; i < n; i++) assert.equal(set.get(keyOf(i, 'absent ')), undefined, `absent key ${i} found`);
    const many = set.getMany([keyOf(1), keyOf(1, 'absent '), keyOf(n - 1)]);
    assert.ok(many[0] && !many[1] && many[2]);
    await set.close();
  });
});

test('duplicate keys in one active arena are refused; bad arguments get clear codes', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    set.append('content', 1, keyOf(1), payloadOf(1));
    assert.throws(() => set.append('content', 1, keyOf(1), payloadOf(2)), (e) => isBazilError(e, ErrorCodes.DUPLICATE_KEY));
    assert.throws(() => set.append('content', 0, keyOf(2), payloadOf(2)), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
    assert.throws(() => set.append('content', 1, Buffer.alloc(31), payloadOf(2)), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
    assert.throws(() => set.append('Bad Kind', 1, keyOf(3), payloadOf(2)), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
    assert.throws(() => set.get(Buffer.alloc(5)), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
    await set.close();
    await assert.rejects(() => openSet(dir, { writer: Buffer.alloc(3) }), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
  });
});

test('a second open of the same directory is refused while the first holds it', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    await assert.rejects(() => openSet(dir), (e) => isBazilError(e, ErrorCodes.LOCKED));
    await set.close();
    const again = await openSet(dir);
    await again.close();
  });
});

test('a torn tail is cut at every byte offset of the last record', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    const n = 20;
    for (let i = 0; i < n; i++) set.append('log', 1, keyOf(i), payloadOf(i, 60));
    await set.close();
    const [path] = activeFiles(dir);
    const whole = readFileSync(path);
    const lastLen = 45 + 60;
    const lastStart = whole.length - lastLen;
    for (let cut = lastStart; cut < whole.length; cut++) {
      writeFileSync(path, whole.subarray(0, cut));
      const s = await openSet(dir);
      assert.equal(s.get(keyOf(n - 1)), undefined, `cut at ${cut}: torn record read back`);
      assert.deepEqual(Buffer.from(s.get(keyOf(n - 2))!.payload), payloadOf(n - 2, 60));
      assert.equal(statSync(path).size, lastStart, `cut at ${cut}: tail not truncated`);
      // The stream continues where the good records end.
      assert.equal(s.append('log', 1, keyOf(1000), payloadOf(1000)), BigInt(n));
      await s.close();
    }
  });
});

test('random garbage after the last record is cut off, never read as records (property)', async () => {
  const fc = await import('fast-check');
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    for (let i = 0; i < 10; i++) set.append('log', 1, keyOf(i), payloadOf(i, 50));
    await set.close();
    const [path] = activeFiles(dir);
    const whole = readFileSync(path);
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 400 }), fc.nat(whole.length - 128), async (garbage, flipAt) => {
      // Either garbage after the records, or a flipped byte in the last record.
      const bytes = Buffer.concat([whole, garbage]);
      if (garbage[0] % 2 === 0) bytes[whole.length - 1 - (flipAt % (45 + 50))] ^= 0xff;
      writeFileSync(path, bytes);
      const s = await openSet(dir);
      const count = [...s.records('log', (await import('./helpers.js')).WRITER)].length;
      assert.ok(count === 10 || (garbage[0] % 2 === 0 && count === 9), `got ${count} records`);
      assert.deepEqual(s.verify(), []);
      await s.close();
      writeFileSync(path, whole);
    }), { numRuns: SLOW ? 500 : 60 });
  });
});

test('a flipped byte inside a sealed arena is reported by verify with its offset', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    for (let i = 0; i < 50; i++) set.append('content', 1, keyOf(i), payloadOf(i, 200));
    await set.sealNow();
    await set.close();
    const [path] = sealedFiles(dir);
    // Record 10 starts at 128 + 10 * (45 + 200); flip a payload byte.
    const recordAt = 128 + 10 * 245;
    const fd = openSync(path, 'r+');
    const b = Buffer.alloc(1);
    const pos = recordAt + 45 + 17;
    const orig = readFileSync(path)[pos];
    b[0] = orig ^ 0x40;
    writeSync(fd, b, 0, 1, pos);
    closeSync(fd);
    const s = await openSet(dir);
    const problems = s.verify();
    assert.equal(problems.length, 1);
    assert.equal(problems[0].code, ErrorCodes.CORRUPT_RECORD);
    assert.equal(problems[0].offset, recordAt);
    assert.equal(problems[0].path, path);
    assert.throws(() => s.get(keyOf(10)), (e) => isBazilError(e, ErrorCodes.CORRUPT_RECORD) && e.data.offset === recordAt);
    assert.deepEqual(Buffer.from(s.get(keyOf(11))!.payload), payloadOf(11, 200));
    await s.close();
  });
});

test('damage to a sealed header or footer stops open with a stable code, and a newer format is refused', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    for (let i = 0; i < 5; i++) set.append('content', 1, keyOf(i), payloadOf(i));
    await set.sealNow();
    await set.close();
    const [path] = sealedFiles(dir);
    const good = readFileSync(path);
    for (const [pos, code] of [[20, ErrorCodes.CORRUPT_ARENA], [good.length - 60, ErrorCodes.CORRUPT_ARENA], [8, ErrorCodes.UNSUPPORTED_FORMAT]] as const) {
      const bad = Buffer.from(good);
      bad[pos] ^= 0x04;
      writeFileSync(path, bad);
      await assert.rejects(() => openSet(dir), (e) => isBazilError(e, code), `flip at ${pos}`);
      writeFileSync(path, good);
    }
  });
});

test('hole punching drops st_blocks, keeps the identity and every live record', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    const n = 2000;
    for (let i = 0; i < n; i++) set.append('content', 1, keyOf(i), payloadOf(i, 4000));
    const [path] = await set.sealNow();
    const before = statSync(path);
    const identity = path.slice(-70, -6);
    const dead = Array.from({ length: n }, (_, i) => i).filter((i) => i % 4 !== 0);
    const result = await set.punch(dead.map((i) => keyOf(i)));
    assert.equal(result.punched, dead.length);
    const after = statSync(path);
    assert.equal(after.size, before.size);
    assert.ok(after.blocks < before.blocks * 0.6, `st_blocks ${before.blocks} -> ${after.blocks}`);
    for (let i = 0; i < n; i++) {
      if (i % 4 === 0) assert.deepEqual(Buffer.from(set.get(keyOf(i))!.payload), payloadOf(i, 4000));
      else {
        assert.equal(set.state(keyOf(i)), 'deleted');
        assert.throws(() => set.get(keyOf(i)), (e) => isBazilError(e, ErrorCodes.DELETED));
      }
    }
    assert.deepEqual(set.verify(), []);
    // Punching again is a no-op; unknown keys are skipped.
    const again = await set.punch([keyOf(1), keyOf(n + 5)]);
    assert.equal(again.punched, 0);
    assert.equal(again.skipped, 2);
    await set.close();
    const s = await openSet(dir);
    assert.equal(sealedFiles(dir)[0].slice(-70, -6), identity);
    assert.deepEqual(s.verify(), []);
    assert.equal(s.state(keyOf(3)), 'deleted');
    assert.equal(s.stats().deadRecords, dead.length);
    await s.close();
  });
});

test('compaction copies every live record and retires low-liveness arenas', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir, { sealBytes: 256 * 1024 });
    const n = 1200;
    for (let i = 0; i < n; i++) set.append('content', 1, keyOf(i), payloadOf(i, 1000));
    await set.sealNow();
    const arenasBefore = set.stats().sealedArenas;
    assert.ok(arenasBefore >= 4);
    const dead = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 0);
    await set.punch(dead.map((i) => keyOf(i)));
    const result = await set.compact({ maxLiveness: 0.5 });
    // The stream's newest arena stays (it carries the last sequence number).
    assert.equal(result.retired.length, arenasBefore - 1);
    assert.ok(result.copied > 0 && result.copied < n - dead.length);
    for (const name of result.retired) assert.ok(!readdirSync(dir).includes(name));
    for (let i = 0; i < n; i++) {
      if (i % 3 === 0) assert.deepEqual(Buffer.from(set.get(keyOf(i))!.payload), payloadOf(i, 1000));
      else assert.notEqual(set.state(keyOf(i)), 'live');
    }
    assert.deepEqual(set.verify(), []);
    await set.close();
    const s = await openSet(dir);
    for (let i = 0; i < n; i += 3) assert.deepEqual(Buffer.from(s.get(keyOf(i))!.payload), payloadOf(i, 1000));
    assert.deepEqual(s.verify(), []);
    await s.close();
  });
});

test('an interrupted compaction is finished at open from its journal', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    for (let i = 0; i < 10; i++) set.append('content', 1, keyOf(i), payloadOf(i));
    const [first] = await set.sealNow();
    for (let i = 10; i < 20; i++) set.append('content', 1, keyOf(i), payloadOf(i));
    await set.sealNow();
    await set.close();
    const name = first.slice(first.lastIndexOf('/') + 1);
    writeFileSync(join(dir, 'compaction.journal'), JSON.stringify({ retire: [name] }));
    const s = await openSet(dir);
    assert.ok(!readdirSync(dir).includes(name));
    assert.ok(!readdirSync(dir).includes('compaction.journal'));
    assert.equal(s.get(keyOf(3)), undefined);
    assert.ok(s.get(keyOf(13)));
    await s.close();
    writeFileSync(join(dir, 'compaction.journal'), '{"retire": ["../../etc/passwd"]}');
    await assert.rejects(() => openSet(dir), (e) => isBazilError(e, ErrorCodes.CORRUPT_ARENA));
  });
});

test('adopt accepts an intact arena and rejects one with any single flipped byte', async () => {
  await withTempDir(async (dirA) => {
    await withTempDir(async (dirB) => {
      const peer = await openSet(dirA, { writer: keyOf(999, 'peer') });
      for (let i = 0; i < 40; i++) peer.append('log', 1, keyOf(i, 'peer'), payloadOf(i, 64));
      const [path] = await peer.sealNow();
      await peer.close();
      const good = readFileSync(path);
      const mine = await openSet(dirB);
      const scratch = join(dirB, 'incoming.bin');
      // Flip bytes across every region: header, records, key table, slot table, fingerprints, hash function, footer.
      const positions = new Set<number>([3, 40, 70, 130, 135, 200, 128 + 109 * 20 + 50]);
      for (let p = 0; p < good.length; p += Math.max(1, Math.floor(good.length / 150))) positions.add(p);
      for (let p = good.length - 128; p < good.length; p += 9) positions.add(p);
      for (const pos of positions) {
        const bad = Buffer.from(good);
        bad[pos] ^= 0x01;
        writeFileSync(scratch, bad);
        await assert.rejects(() => mine.adopt(scratch), (e) => isBazilError(e) &&
          [ErrorCodes.CORRUPT_ARENA, ErrorCodes.CORRUPT_RECORD, ErrorCodes.IDENTITY_MISMATCH, ErrorCodes.UNSUPPORTED_FORMAT].includes(e.code as never),
          `flip at ${pos} was accepted`);
      }
      assert.equal(sealedFiles(dirB).length, 0);
      copyFileSync(path, scratch);
      const adopted = await mine.adopt(scratch);
      assert.ok(adopted.added);
      assert.deepEqual(readFileSync(adopted.path), good);
      assert.deepEqual(Buffer.from(mine.get(keyOf(5, 'peer'))!.payload), payloadOf(5, 64));
      assert.equal((await mine.adopt(scratch)).added, false);
      const seqs = [...mine.records('log', keyOf(999, 'peer'))].map((r) => Number(r.seq));
      assert.deepEqual(seqs, Array.from({ length: 40 }, (_, i) => i + 1));
      await mine.close();
      const reopened = await openSet(dirB);
      assert.ok(reopened.get(keyOf(39, 'peer')));
      await reopened.close();
    });
  });
});

test('adopt refuses an arena that forks a writer stream already held', async () => {
  await withTempDir(async (dirA) => {
    await withTempDir(async (dirB) => {
      const writer = keyOf(1, 'forker');
      const a = await openSet(dirA, { writer });
      for (let i = 0; i < 5; i++) a.append('log', 1, keyOf(i, 'a'), payloadOf(i));
      const [pa] = await a.sealNow();
      await a.close();
      const b = await openSet(dirB, { writer });
      for (let i = 0; i < 5; i++) b.append('log', 1, keyOf(i, 'b'), payloadOf(i));
      await b.sealNow();
      await assert.rejects(() => b.adopt(pa), (e) => isBazilError(e, ErrorCodes.CONFLICT));
      await b.close();
    });
  });
});

test('an empty or short active file left by a crash at creation is handled', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    set.append('log', 1, keyOf(1), payloadOf(1));
    await set.close();
    const [path] = activeFiles(dir);
    const whole = readFileSync(path);
    truncateSync(path, 60);
    const s = await openSet(dir);
    assert.equal(s.get(keyOf(1)), undefined);
    assert.equal(activeFiles(dir).length, 0);
    await s.close();
    // A header that is whole in length but damaged may hide records: refuse, do not guess.
    const bad = Buffer.from(whole);
    bad[40] ^= 1;
    writeFileSync(path, bad);
    await assert.rejects(() => openSet(dir), (e) => isBazilError(e, ErrorCodes.CORRUPT_ARENA));
  });
});

test('appendAt continues another writer\'s stream without gaps or forks', async () => {
  await withTempDir(async (dir) => {
    const peer = keyOf(5, 'peer writer');
    const set = await openSet(dir, { sealBytes: 4096 });
    for (let seq = 1; seq <= 60; seq++) set.appendAt('log', peer, BigInt(seq), 1, keyOf(seq, 'p'), payloadOf(seq, 200));
    assert.equal(set.nextSeq('log', peer), 61n);
    assert.equal(set.nextSeq('log'), 1n);
    // Replaying a record already held is a no-op; a different one at that place is a fork.
    set.appendAt('log', peer, 7n, 1, keyOf(7, 'p'), payloadOf(7, 200));
    assert.throws(() => set.appendAt('log', peer, 7n, 1, keyOf(7, 'other'), payloadOf(7)), (e) => isBazilError(e, ErrorCodes.CONFLICT));
    assert.throws(() => set.appendAt('log', peer, 63n, 1, keyOf(63, 'p'), payloadOf(63)), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
    await set.close();
    const again = await openSet(dir, { sealBytes: 4096 });
    const seqs = [...again.records('log', peer)].map((r) => Number(r.seq));
    assert.deepEqual(seqs, Array.from({ length: 60 }, (_, i) => i + 1));
    assert.ok(again.stats().sealedArenas >= 2);
    again.appendAt('log', peer, 61n, 1, keyOf(61, 'p'), payloadOf(61));
    assert.deepEqual(Buffer.from(again.recordAt('log', peer, 61n)!.payload), payloadOf(61));
    assert.deepEqual(again.verify(), []);
    await again.close();
  });
});

test('a sealed arena answers lookups alone, through its perfect hash, fingerprints and key check', async () => {
  const { SealedArena } = await import('../../arena/sealed-arena.js');
  const { nodeFileSystem } = await import('../../arena/node-fs.js');
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    const n = 3000;
    for (let i = 0; i < n; i++) set.append('content', 1, keyOf(i), payloadOf(i, 64));
    const [path] = await set.sealNow();
    await set.punch([keyOf(7)]);
    await set.close();
    const arena = SealedArena.open(nodeFileSystem, path);
    try {
      for (let i = 0; i < n; i++) {
        if (i === 7) continue;
        assert.deepEqual(Buffer.from(arena.get(keyOf(i))!.payload), payloadOf(i, 64));
      }
      for (let i = 0; i < n; i++) {
        assert.equal(arena.get(keyOf(i, 'absent ')), undefined);
        assert.equal(arena.has(keyOf(i, 'absent ')), false);
      }
      assert.equal(arena.has(keyOf(7)), false);
      assert.throws(() => arena.get(keyOf(7)), (e) => isBazilError(e, ErrorCodes.DELETED));
      assert.deepEqual(arena.verify(), []);
    } finally {
      arena.close();
    }
  });
});

test('damage in the middle of an active arena cuts the stream there but keeps the cut bytes, durably, for inspection', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    for (let i = 0; i < 20; i++) set.append('log', 1, keyOf(i), payloadOf(i, 100));
    await set.close();
    const [path] = activeFiles(dir);
    const whole = readFileSync(path);
    const bad = Buffer.from(whole);
    const record5 = 128 + 5 * 145;
    bad[record5 + 60] ^= 0x10;
    writeFileSync(path, bad);
    const messages: string[] = [];
    const s = await openSet(dir, { log: (m) => messages.push(m) });
    assert.ok(s.get(keyOf(4)));
    assert.equal(s.get(keyOf(5)), undefined);
    const saved = `${path}.cut-${record5}`;
    assert.deepEqual(readFileSync(saved), bad.subarray(record5));
    assert.ok(messages.some((m) => m.includes(saved) && m.includes(ErrorCodes.CORRUPT_RECORD)), messages.join('\n'));
    await s.close();
    // A plain torn tail leaves nothing behind.
    truncateSync(path, statSync(path).size - 3);
    const t = await openSet(dir);
    await t.close();
    assert.equal(readdirSync(dir).filter((n) => n.includes('.cut-')).length, 1);
  });
});

test('a records() iteration that outlives its active arena goes on from the sealed one', async () => {
  await withTempDir(async (dir) => {
    const { WRITER } = await import('./helpers.js');
    const set = await openSet(dir);
    const n = 300;
    for (let i = 0; i < n; i++) set.append('log', 1, keyOf(i), payloadOf(i, 50));
    await set.sync();
    const it = set.records('log', WRITER);
    const seen: bigint[] = [];
    for (let i = 0; i < 100; i++) seen.push(it.next().value!.seq);
    // The seal closes the active arena the iterator was reading.
    assert.equal((await set.sealNow()).length, 1);
    assert.equal(activeFiles(dir).length, 0);
    for (let r = it.next(); !r.done; r = it.next()) {
      assert.deepEqual(Buffer.from(r.value.payload), payloadOf(Number(r.value.seq) - 1, 50));
      seen.push(r.value.seq);
    }
    assert.deepEqual(seen, Array.from({ length: n }, (_, i) => BigInt(i + 1)));
    await set.close();
  });
});
