// bench/handles: open files through the volume facade, in-process, in one run.
//
//   npm run bench -- handles [--quick] [--runs=N] [--mib=SIZE]
//
// Two figures, each beside the whole-file way of getting the same result:
//   1. A 1-byte write into a SIZE MiB file (256, 64 with --quick) through a
//      handle, then flush: milliseconds (write + flush, the commit included)
//      and the bytes it added to the volume's directory (arenas and log, the
//      projection left out). Beside it: Volume.writeFile of the same file
//      with the same byte changed, which re-reads and re-chunks everything.
//   2. Sequential write throughput: SIZE MiB of fresh random data written
//      through a handle in 128 KiB writes, then release (the commit
//      included), beside Volume.writeFile of as many other random bytes fed
//      as a stream of the same 128 KiB pieces. Both in MB/s (10^6 bytes).
//      Meanwhile, the event-loop delay (perf_hooks, 2 ms resolution): how
//      long any other call (a stat through the mount) could wait behind it.
// Every figure is the median of >= 3 interleaved rounds (each round: the
// 1-byte edit, the rewrite, the handle write, the writeFile). The data of
// every round is different, so nothing dedups against an earlier round.
// The last line of stdout is `RESULT {json}`.

import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { initHome } from '../src/home/home.js';
import { createVolume } from '../src/home/volumes.js';
import { Volume } from '../src/volume/volume.js';
import { Samples, fmtInt, fmtMBs, fmtRatio, machineLine, renderTable, sig, type TableLine } from './lib/report.js';

const MIB = 1024 * 1024;
const PIECE = 128 * 1024;

interface Options {
  quick: boolean;
  runs: number;
  bytes: number;
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const value = (name: string): string | undefined => argv.find((x) => x.startsWith(`--${name}=`))?.slice(name.length + 3);
  for (const a of argv) {
    if (a !== '--quick' && !/^--(runs|mib)=/.test(a)) throw new Error(`unknown argument ${a}`);
  }
  const runs = Number(value('runs') ?? 3);
  const mib = Number(value('mib') ?? (quick ? 64 : 256));
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  if (!Number.isInteger(mib) || mib < 1) throw new Error('--mib must be a positive integer');
  return { quick, runs, bytes: mib * MIB };
}

/** A deterministic random stream of `length` bytes in PIECE-sized buffers. */
function* randomPieces(length: number, seed: string): Generator<Buffer> {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  const zero = Buffer.alloc(PIECE);
  for (let at = 0; at < length; at += PIECE) yield cipher.update(zero.subarray(0, Math.min(PIECE, length - at)));
}

/** Bytes of the files under `dir`, the projection's directory left out (its compactions are noise here). */
function storedBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'projection') total += storedBytes(p);
    } else if (e.isFile()) {
      total += statSync(p).size;
    }
  }
  return total;
}

async function main(): Promise<void> {
  const opt = parseArgs(process.argv.slice(2));
  const wall = performance.now();
  const tmp = mkdtempSync(join(tmpdir(), 'bazil-bench-handles-'));
  try {
    const homeDir = join(tmp, 'home');
    const { home } = await initHome(homeDir);
    await createVolume(home, 'bench').finally(() => home.close());
    const v = await Volume.open(homeDir, 'bench');
    const volDir = join(homeDir, 'volumes', v.id.toString('hex'));
    const s = new Samples();
    try {
      // The file the 1-byte edits go into, written once (untimed).
      const base = Buffer.concat([...randomPieces(opt.bytes, 'base')]);
      await v.writeFile('/edit', base);
      for (let round = 0; round < opt.runs; round++) {
        const at = Math.floor(opt.bytes * (round + 0.37) / (opt.runs + 1));

        let before = storedBytes(volDir);
        let t = performance.now();
        const h = await v.open('/edit', { write: true });
        await h.write(at, Buffer.from([base[at]! ^ 0xff]));
        await h.flush();
        s.add('one_byte_flush_ms', performance.now() - t);
        await h.release();
        s.add('one_byte_new_bytes', storedBytes(volDir) - before);
        base[at] ^= 0xff;

        before = storedBytes(volDir);
        base[at + 1] ^= 0xff;
        t = performance.now();
        await v.writeFile('/edit', base);
        s.add('rewrite_ms', performance.now() - t);
        s.add('rewrite_new_bytes', storedBytes(volDir) - before);

        const lag = monitorEventLoopDelay({ resolution: 2 });
        lag.enable();
        t = performance.now();
        const w = await v.create(`/seq-handle-${round}`, { write: true, exclusive: true });
        let offset = 0;
        for (const piece of randomPieces(opt.bytes, `handle ${round}`)) {
          await w.write(offset, piece);
          offset += piece.length;
        }
        await w.release();
        s.add('handle_write_mb_s', opt.bytes / 1e6 / ((performance.now() - t) / 1000));
        lag.disable();
        s.add('loop_p99_ms', lag.percentile(99) / 1e6);
        s.add('loop_max_ms', lag.max / 1e6);

        const lagW = monitorEventLoopDelay({ resolution: 2 });
        lagW.enable();
        t = performance.now();
        await v.writeFile(`/seq-writefile-${round}`, randomPieces(opt.bytes, `writeFile ${round}`));
        s.add('writefile_mb_s', opt.bytes / 1e6 / ((performance.now() - t) / 1000));
        lagW.disable();
        s.add('writefile_loop_p99_ms', lagW.percentile(99) / 1e6);
        s.add('writefile_loop_max_ms', lagW.max / 1e6);
      }
      const check = await v.readFile('/edit');
      if (!check.equals(base)) throw new Error('the edited file does not read back as written');
    } finally {
      await v.close();
    }

    const med = (k: string): number => s.median(k);
    const ms = (x: number): string => `${x.toFixed(1)} ms`;
    const mb = opt.bytes / MIB;
    const lines: TableLine[] = [
      { section: `1-byte write + flush in a ${mb} MiB file` },
      { figure: 'handle write + flush', value: ms(med('one_byte_flush_ms')), spread: s.spread('one_byte_flush_ms', ms),
        baseline: `writeFile of the whole file: ${ms(med('rewrite_ms'))}`, ratio: fmtRatio(med('rewrite_ms') / med('one_byte_flush_ms')) },
      { figure: 'bytes added', value: fmtInt(med('one_byte_new_bytes')), spread: s.spread('one_byte_new_bytes', fmtInt),
        baseline: `writeFile: ${fmtInt(med('rewrite_new_bytes'))}` },
      { section: `sequential write of ${mb} MiB in ${PIECE / 1024} KiB writes` },
      { figure: 'handle writes + release', value: fmtMBs(med('handle_write_mb_s')), spread: s.spread('handle_write_mb_s', fmtMBs),
        baseline: `writeFile (stream): ${fmtMBs(med('writefile_mb_s'))}`, ratio: fmtRatio(med('handle_write_mb_s') / med('writefile_mb_s')) },
      { figure: 'event-loop delay meanwhile, p99 / max', value: `${med('loop_p99_ms').toFixed(1)} / ${med('loop_max_ms').toFixed(0)} ms`,
        baseline: `writeFile: ${med('writefile_loop_p99_ms').toFixed(1)} / ${med('writefile_loop_max_ms').toFixed(0)} ms` },
    ];
    const result: Record<string, number> = {};
    for (const k of ['one_byte_flush_ms', 'one_byte_new_bytes', 'rewrite_ms', 'rewrite_new_bytes', 'handle_write_mb_s', 'writefile_mb_s', 'loop_p99_ms', 'loop_max_ms', 'writefile_loop_p99_ms', 'writefile_loop_max_ms']) {
      result[k] = sig(med(k));
    }
    result['file_mib'] = mb;
    result['runs'] = opt.runs;
    result['quick'] = opt.quick ? 1 : 0;
    process.stdout.write([
      `bench/handles — ${opt.quick ? 'QUICK' : 'FULL'} size: ${mb} MiB files; medians of ${opt.runs} interleaved rounds`,
      machineLine(tmp),
      '',
      renderTable(lines),
      '',
      `total time ${((performance.now() - wall) / 1000).toFixed(1)} s`,
      '',
    ].join('\n'));
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/handles failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
