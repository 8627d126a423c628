import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ArenaSet } from '../../arena/arena-set.js';
import { FaultFileSystem, isPowerCut } from '../../arena/fault-fs.js';
import { nodeFileSystem } from '../../arena/node-fs.js';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { SLOW, WRITER, keyOf, payloadOf, withTempDir } from './helpers.js';

/** A power cut, or an error an earlier power cut caused (the arena refuses use after a failed write). */
function fromPowerCut(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (isPowerCut(e)) return true;
  return false;
}

/**
 * Appends, syncs, seals (the bound is small) and punches, recording which
 * records were acknowledged by a resolved sync(). Stops at the first error.
 */
async function workload(fs: FaultFileSystem, dir: string, acked: Set<number>, opened: ArenaSet[] = []): Promise<void> {
  const set = await ArenaSet.open(dir, { fs, writer: WRITER, sealBytes: 2048, flushBytes: 512 });
  opened.push(set);
  let i = 0;
  for (let round = 0; round < 40; round++) {
    const batch: number[] = [];
    for (let k = 0; k < 1 + (round % 4); k++, i++) {
      set.append('log', 1, keyOf(i), payloadOf(i, 40 + ((i * 37) % 300)));
      batch.push(i);
    }
    // Two callers share the fsyncs (group commit).
    await Promise.all([set.sync(), set.sync()]);
    for (const b of batch) acked.add(b);
    if (round === 6 || round === 25) await set.sealNow();
    if (round === 30) {
      // Once punched, a record may read as deleted: it is no longer owed.
      acked.delete(1);
      acked.delete(2);
      await set.punch([keyOf(1), keyOf(2)]);
    }
  }
  await set.close();
}

test('a power cut at each of the first 200 I/O operations loses no acknowledged record and leaves no torn one', async (t) => {
  let total = 0;
  await withTempDir(async (dir) => {
    const fs = new FaultFileSystem();
    await workload(fs, dir, new Set());
    total = fs.ops;
  });
  const limit = Math.min(total, SLOW ? total : 200);
  t.diagnostic(`workload: ${total} I/O operations; cutting power at each of the first ${limit}`);
  assert.ok(total >= 200, `workload does only ${total} I/O operations`);
  for (let n = 1; n <= limit; n++) {
    await withTempDir(async (dir) => {
      const fs = new FaultFileSystem();
      fs.powerCutAt(n);
      const acked = new Set<number>();
      try {
        await workload(fs, dir, acked);
      } catch (err) {
        if (!fromPowerCut(err)) throw err;
      }
      // Let background seals notice the cut before the directory is reopened.
      await new Promise((r) => setImmediate(r));
      let set: ArenaSet;
      try {
        set = await ArenaSet.open(dir, { fs: nodeFileSystem, writer: WRITER, sealBytes: 2048 });
      } catch (err) {
        throw new Error(`power cut at op ${n}: reopen failed: ${(err as Error).message}`, { cause: err });
      }
      try {
        for (const i of acked) {
          const r = set.get(keyOf(i));
          assert.ok(r, `power cut at op ${n}: acknowledged record ${i} lost`);
          assert.deepEqual(Buffer.from(r.payload), payloadOf(i, 40 + ((i * 37) % 300)));
        }
        // Unacknowledged records may or may not be there, but never torn.
        for (let i = 0; i < 120; i++) {
          if (set.state(keyOf(i)) === 'deleted') continue;
          const r = set.get(keyOf(i));
          if (r) assert.deepEqual(Buffer.from(r.payload), payloadOf(i, 40 + ((i * 37) % 300)));
        }
        assert.deepEqual(set.verify(), [], `power cut at op ${n}`);
        // The stream continues without gaps.
        // The stream has no gaps but the punched records (keys 1 and 2 are sequence numbers 2 and 3).
        const seqs = [...set.records('log', WRITER)].map((r) => Number(r.seq));
        const last = Number(set.nextSeq('log')) - 1;
        const expected = Array.from({ length: last }, (_, k) => k + 1)
          .filter((q) => !(q === 2 || q === 3) || set.state(keyOf(q - 1)) !== 'deleted');
        assert.deepEqual(seqs, expected, `power cut at op ${n}: gap in the stream`);
        set.append('log', 1, keyOf(100_000), payloadOf(1));
        await set.sync();
      } finally {
        await set.close();
      }
    });
  }
});

test('failed I/O surfaces as BAZIL_IO and the set reopens with every acknowledged record', async () => {
  for (const persistent of [false, true]) {
    for (let n = 5; n < 60; n += 7) {
      await withTempDir(async (dir) => {
        const fs = new FaultFileSystem();
        fs.failAt(n, { persistent });
        const acked = new Set<number>();
        const opened: ArenaSet[] = [];
        try {
          await workload(fs, dir, acked, opened);
        } catch (err) {
          assert.ok(isBazilError(err), `unexpected error ${String(err)}`);
        }
        // The failed set's process is still alive (no power cut): let it
        // finish or fail what it started before the directory is reopened.
        for (const s of opened) await s.close().catch(() => {});
        const set = await ArenaSet.open(dir, { fs: nodeFileSystem, writer: WRITER });
        try {
          for (const i of acked) assert.ok(set.get(keyOf(i)), `fail at ${n}: record ${i} lost`);
          assert.deepEqual(set.verify(), []);
        } finally {
          await set.close();
        }
      });
    }
  }
});

test('a child appending in a loop, killed with SIGKILL 20 times, always reopens with every acknowledged record', async () => {
  const child = fileURLToPath(new URL('./append-child.js', import.meta.url));
  await withTempDir(async (dir) => {
    let acked = 0;
    const kills = SLOW ? 100 : 20;
    for (let k = 0; k < kills; k++) {
      const proc = spawn(process.execPath, [child, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      // Wait until it runs, then a random moment more.
      await new Promise<void>((resolve, reject) => {
        const check = setInterval(() => {
          if (out.includes('start')) {
            clearInterval(check);
            setTimeout(resolve, 5 + Math.floor(Math.random() * 150));
          }
        }, 5);
        proc.on('exit', (code) => {
          clearInterval(check);
          reject(new Error(`child exited early with ${code}: ${out}`));
        });
      });
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
      for (const m of out.matchAll(/acked (\d+)/g)) acked = Math.max(acked, Number(m[1]));
      const set = await ArenaSet.open(dir, { fs: nodeFileSystem, writer: WRITER, sealBytes: 64 * 1024 });
      try {
        for (let seq = 1; seq <= acked; seq++) {
          const r = set.get(keyOf(seq));
          assert.ok(r, `kill ${k}: acknowledged record ${seq} lost`);
          if (seq % 13 === 0 || seq === acked) assert.deepEqual(Buffer.from(r.payload), payloadOf(seq, 50 + (seq % 500)));
        }
        assert.deepEqual(set.verify(), [], `kill ${k}`);
      } finally {
        await set.close();
      }
    }
    assert.ok(acked > 100, `only ${acked} records acknowledged in all`);
  });
});

test('group commit: concurrent sync() callers share fsyncs', async () => {
  await withTempDir(async (dir) => {
    const fs = new FaultFileSystem(nodeFileSystem, { log: true });
    const set = await ArenaSet.open(dir, { fs, writer: WRITER });
    set.append('log', 1, keyOf(0), payloadOf(0));
    await set.sync();
    const before = fs.log!.filter((o) => o.op === 'sync').length;
    const waits: Promise<void>[] = [];
    for (let i = 1; i <= 100; i++) {
      set.append('log', 1, keyOf(i), payloadOf(i));
      waits.push(set.sync());
    }
    await Promise.all(waits);
    const syncs = fs.log!.filter((o) => o.op === 'sync').length - before;
    assert.ok(syncs <= 3, `${syncs} fsyncs for 100 concurrent sync() calls`);
    await set.close();
    assert.equal(ErrorCodes.IO, 'BAZIL_IO');
  });
});
