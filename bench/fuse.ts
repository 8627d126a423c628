// bench/fuse: sequential write and read of a big file, and metadata
// operations, through a Bazil mount, beside the same on the local disk and
// through a trivial in-memory fuse-native file system mounted with the same
// options (the binding's ceiling: bench/lib/memfs-ceiling.ts); and stat
// latency while a big file is being written through the mount.
//
//   npm run bench -- fuse [--quick] [--full] [--runs=N] [--keep]
//
// Sizes: 128 MiB and 2,000 files by default; --quick 32 MiB and 500 files;
// --full (or BAZIL_SLOW=1) 1 GiB and 10,000 files.
//
// Each run, interleaved: fresh random sources (so Bazil cannot deduplicate
// against an earlier run), then
//   1. Bazil: write the file (dd bs=1M conv=fsync, spawn to exit), unmount,
//      mount again, read it back (so from Bazil's store, not the page cache),
//      create+stat+unlink N files, and stat p99 while another big file is
//      being written;
//   2. local disk (the temp dir): the same write; the read with
//      iflag=direct (no page cache); the same metadata work;
//   3. the ceiling: the same write, read and metadata work.
// MB/s are 10^6 bytes per wall second. Metadata ops/s count each create,
// stat and unlink as one operation (a Python loop, one process per run).
// Every figure is the median of the runs; the last line is `RESULT {json}`.

import { execFile, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, writeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findFuseConnection, freeWedgedMount } from '../src/fuse/binding.js';
import { PYTHON, metaOpsPerSecond, startCeiling, stopCeiling } from './lib/fuse-loops.js';
import { Samples, atLeast, atMost, fmtFixed, fmtInt, fmtMBs, fmtRatio, machineLine, renderTable, sig, type TableLine } from './lib/report.js';

const run = promisify(execFile);
const MIB = 1024 * 1024;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const STAT_FILES = 1000;
const STAT_INTERVAL_MS = 5;

interface Options {
  bytes: number;
  files: number;
  runs: number;
  keep: boolean;
  label: string;
}

function parseArgs(argv: string[]): Options {
  for (const a of argv) if (!['--quick', '--full', '--keep'].includes(a) && !/^--runs=\d+$/.test(a)) throw new Error(`unknown argument ${a}`);
  const full = argv.includes('--full') || process.env.BAZIL_SLOW === '1';
  const quick = !full && argv.includes('--quick');
  const runs = Number(argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? 3);
  return {
    bytes: (full ? 1024 : quick ? 32 : 128) * MIB,
    files: full ? 10_000 : quick ? 500 : 2_000,
    runs: Math.max(1, runs),
    keep: argv.includes('--keep'),
    label: full ? 'full' : quick ? 'quick' : 'default',
  };
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function bazil(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
  return (await run(process.execPath, [CLI, ...args], { env, maxBuffer: 16 * MIB })).stdout;
}

/** Writes `bytes` of fresh random data to `path` (never the same twice, so nothing deduplicates). */
function makeSource(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(4 * MIB);
  try {
    for (let left = bytes; left > 0; left -= block.length) {
      randomFillSync(block);
      writeSync(fd, block, 0, Math.min(block.length, left));
    }
  } finally {
    closeSync(fd);
  }
}

async function timedDd(args: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  await run('dd', [...args, 'bs=1M', 'status=none'], { maxBuffer: MIB });
  return seconds(start);
}

const STAT_PY = String.raw`
import os, sys, time
d, n, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
names = [os.path.join(d, 's%05d' % i) for i in range(n)]
if sys.argv[4] == 'create':
    os.makedirs(d, exist_ok=True)
    for p in names: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    sys.exit(0)
lat = []
i = 0
while not os.path.exists(sys.argv[5]):
    t = time.perf_counter(); os.stat(names[i % n]); lat.append(time.perf_counter() - t)
    i += 1
    time.sleep(interval)
lat.sort()
print(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, len(lat))
`;

/** p99 of stat (ms) of files the kernel has not cached (each is revisited only after the attribute timeout), while `writer` runs. */
async function statP99During(dir: string, writer: () => Promise<unknown>, done: string): Promise<{ p99: number; count: number }> {
  await run(PYTHON, ['-c', STAT_PY, dir, String(STAT_FILES), String(STAT_INTERVAL_MS / 1000), 'create', done]);
  const sampler = run(PYTHON, ['-c', STAT_PY, dir, String(STAT_FILES), String(STAT_INTERVAL_MS / 1000), 'sample', done]);
  try {
    await writer();
  } finally {
    closeSync(openSync(done, 'w'));
  }
  const [p99, count] = (await sampler).stdout.trim().split(' ').map(Number) as [number, number];
  return { p99, count };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const tmp = mkdtempSync(join(tmpdir(), 'bazil-bench-fuse-'));
  const env = { ...process.env, BAZIL_HOME: join(tmp, 'home') };
  const mnt = join(tmp, 'bazil');
  const ceil = join(tmp, 'ceiling');
  const disk = join(tmp, 'disk');
  for (const d of [mnt, ceil, disk]) mkdirSync(d);
  const src = join(tmp, 'src.bin');
  const src2 = join(tmp, 'src2.bin');
  const s = new Samples();
  let ceiling: ChildProcess | undefined;
  console.log(machineLine(tmp));
  console.log(`size ${o.bytes / MIB} MiB, ${fmtInt(o.files)} files for metadata, ${o.runs} runs (${o.label})`);
  try {
    await bazil(env, 'init');
    await bazil(env, 'volume', 'create', 'bench');
    const mb = o.bytes / 1e6;
    for (let r = 0; r < o.runs; r++) {
      makeSource(src, o.bytes);
      makeSource(src2, o.bytes);
      // Bazil
      await bazil(env, 'mount', 'bench', mnt);
      s.add('write', mb / (await timedDd([`if=${src}`, `of=${join(mnt, `big-${r}`)}`, 'conv=fsync'])));
      await bazil(env, 'umount', mnt);
      await bazil(env, 'mount', 'bench', mnt);
      s.add('read', mb / (await timedDd([`if=${join(mnt, `big-${r}`)}`, 'of=/dev/null'])));
      s.add('meta', await metaOpsPerSecond(join(mnt, `meta-${r}`), o.files));
      const during = await statP99During(join(mnt, `stat-${r}`), () => timedDd([`if=${src2}`, `of=${join(mnt, `busy-${r}`)}`, 'conv=fsync']), join(tmp, `done-${r}`));
      s.add('statP99', during.p99);
      s.add('statCount', during.count);
      await bazil(env, 'umount', mnt);
      // Local disk
      const diskFile = join(disk, `big-${r}`);
      s.add('diskWrite', mb / (await timedDd([`if=${src}`, `of=${diskFile}`, 'conv=fsync'])));
      s.add('diskRead', mb / (await timedDd([`if=${diskFile}`, 'of=/dev/null', 'iflag=direct'])));
      s.add('diskMeta', await metaOpsPerSecond(join(disk, `meta-${r}`), o.files));
      rmSync(diskFile);
      // The binding's ceiling
      ceiling = await startCeiling(ceil);
      s.add('ceilWrite', mb / (await timedDd([`if=${src}`, `of=${join(ceil, 'big')}`, 'conv=fsync'])));
      s.add('ceilRead', mb / (await timedDd([`if=${join(ceil, 'big')}`, 'of=/dev/null'])));
      s.add('ceilMeta', await metaOpsPerSecond(ceil, o.files));
      await stopCeiling(ceiling, ceil);
      ceiling = undefined;
      console.log(`run ${r + 1}/${o.runs}: write ${fmtMBs(s.all('write')[r]!)}, read ${fmtMBs(s.all('read')[r]!)}, meta ${fmtInt(s.all('meta')[r]!)} ops/s, stat p99 ${fmtFixed(s.all('statP99')[r]!, 2, 'ms')}`);
    }
  } finally {
    if (ceiling !== undefined) await stopCeiling(ceiling, ceil).catch(() => undefined);
    await bazil(env, 'daemon', 'stop').catch(() => undefined);
    for (const d of [mnt, ceil]) if ((await findFuseConnection(d)) !== undefined) await freeWedgedMount(d);
    if (!o.keep) rmSync(tmp, { recursive: true, force: true });
  }

  const m = (k: string): number => s.median(k);
  const mbs = (k: string): string => s.spread(k, (v) => v.toFixed(0));
  const lines: TableLine[] = [
    { section: `sequential, ${o.bytes / MIB} MiB file, dd bs=1M` },
    { figure: 'write through the mount', value: fmtMBs(m('write')), spread: mbs('write'), baseline: `ceiling ${fmtMBs(m('ceilWrite'))}, disk ${fmtMBs(m('diskWrite'))}`, ratio: fmtRatio(m('write') / m('ceilWrite')), target: '>= 0.40× ceiling', verdict: atLeast(m('write') / m('ceilWrite'), 0.4) },
    { figure: 'read after a remount', value: fmtMBs(m('read')), spread: mbs('read'), baseline: `ceiling ${fmtMBs(m('ceilRead'))}, disk (direct) ${fmtMBs(m('diskRead'))}`, ratio: fmtRatio(m('read') / m('ceilRead')), target: '>= 0.60× ceiling', verdict: atLeast(m('read') / m('ceilRead'), 0.6) },
    { section: `metadata: create+stat+unlink of ${fmtInt(o.files)} files` },
    { figure: 'ops/s through the mount', value: fmtInt(m('meta')), spread: s.spread('meta', fmtInt), baseline: `ceiling ${fmtInt(m('ceilMeta'))}, disk ${fmtInt(m('diskMeta'))}`, ratio: fmtRatio(m('meta') / m('ceilMeta')), target: '>= 0.30× ceiling', verdict: atLeast(m('meta') / m('ceilMeta'), 0.3) },
    { section: 'latency' },
    { figure: `stat p99 during a ${o.bytes / MIB} MiB write`, value: fmtFixed(m('statP99'), 2, 'ms'), spread: s.spread('statP99', (v) => v.toFixed(1)), baseline: `${fmtInt(m('statCount'))} stats per run`, target: '< 20 ms', verdict: atMost(m('statP99'), 20) },
  ];
  console.log(renderTable(lines));
  const result = {
    read_mb_s: sig(m('read')), write_mb_s: sig(m('write')),
    ceiling_read_mb_s: sig(m('ceilRead')), ceiling_write_mb_s: sig(m('ceilWrite')),
    disk_read_mb_s: sig(m('diskRead')), disk_write_mb_s: sig(m('diskWrite')),
    meta_ops_s: sig(m('meta')), ceiling_meta_ops_s: sig(m('ceilMeta')),
    stat_p99_during_write_ms: sig(m('statP99')),
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

await main();
