// bench/fusemeta: bench/fuse's metadata figure alone (a Python loop creates
// N files, stats them, unlinks them; ops/s = 3N / time), with the CPU time
// the serving process spends per operation (utime + stime of
// /proc/PID/stat, every thread), beside the binding's ceiling
// (bench/lib/memfs-ceiling.ts) measured the same way in the same run.
// CPU per operation moves much less with the machine's load than wall
// clock does, so it is the figure to compare builds by on a shared machine
// (docs/mount.md, "Round 4: metadata").
//
//   npm run bench -- fusemeta [--quick] [--full] [--runs=N] [--keep]
//
// Sizes: 2,000 files by default (as bench/fuse), --quick 500, --full (or
// BAZIL_SLOW=1) 10,000. Each run, interleaved: Bazil (a fresh volume's
// daemon, mounted through the CLI; the loop in a new directory of the
// mount, as bench/fuse does), then the ceiling (the loop in its root).

import { execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findFuseConnection, freeWedgedMount } from '../src/fuse/binding.js';
import { metaOpsPerSecond, startCeiling, stopCeiling } from './lib/fuse-loops.js';
import { Samples, atLeast, fmtInt, fmtRatio, machineLine, renderTable, sig, type TableLine } from './lib/report.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** Clock ticks per second of /proc/PID/stat's times (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;

interface Options {
  files: number;
  runs: number;
  keep: boolean;
  label: string;
}

function parseArgs(argv: string[]): Options {
  for (const a of argv) if (!['--quick', '--full', '--keep'].includes(a) && !/^--runs=\d+$/.test(a)) throw new Error(`unknown argument ${a}`);
  const full = argv.includes('--full') || process.env.BAZIL_SLOW === '1';
  const quick = !full && argv.includes('--quick');
  return {
    files: full ? 10_000 : quick ? 500 : 2_000,
    runs: Math.max(1, Number(argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? 3)),
    keep: argv.includes('--keep'),
    label: full ? 'full' : quick ? 'quick' : 'default',
  };
}

/** CPU seconds `pid` has used so far, all its threads. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), from the third: utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

/** ops/s of the loop in `dir`, and the serving process's CPU µs per operation. */
async function metaOps(dir: string, n: number, server: number): Promise<{ opsS: number; cpuUs: number }> {
  const before = cpuSeconds(server);
  const opsS = await metaOpsPerSecond(dir, n);
  const cpu = cpuSeconds(server) - before;
  return { opsS, cpuUs: (cpu * 1e6) / (3 * n) };
}

async function bazil(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
  return (await run(process.execPath, [CLI, ...args], { env, maxBuffer: 16 * 1024 * 1024 })).stdout;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const tmp = mkdtempSync(join(tmpdir(), 'bazil-bench-fusemeta-'));
  const mnt = join(tmp, 'bazil');
  const ceil = join(tmp, 'ceiling');
  for (const d of [mnt, ceil]) mkdirSync(d);
  const s = new Samples();
  let ceiling: ChildProcess | undefined;
  let env: NodeJS.ProcessEnv = process.env;
  console.log(machineLine(tmp));
  console.log(`${fmtInt(o.files)} files, ${o.runs} runs (${o.label})`);
  try {
    for (let r = 0; r < o.runs; r++) {
      // A fresh home each run, so the daemon is fresh too and its CPU counts this run's loop alone.
      env = { ...process.env, BAZIL_HOME: join(tmp, `home-${r}`) };
      await bazil(env, 'init');
      await bazil(env, 'volume', 'create', 'bench');
      const mounted = JSON.parse(await bazil(env, '--json', 'mount', 'bench', mnt)) as { pid: number };
      try {
        const b = await metaOps(join(mnt, `meta-${r}`), o.files, mounted.pid);
        s.add('meta', b.opsS);
        s.add('cpu', b.cpuUs);
      } finally {
        await bazil(env, 'daemon', 'stop');
      }
      ceiling = await startCeiling(ceil);
      const c = await metaOps(ceil, o.files, ceiling.pid!);
      s.add('ceilMeta', c.opsS);
      s.add('ceilCpu', c.cpuUs);
      await stopCeiling(ceiling, ceil);
      ceiling = undefined;
      console.log(`run ${r + 1}/${o.runs}: ${fmtInt(sampleOf(s, 'meta', r))} ops/s at ${fmtInt(sampleOf(s, 'cpu', r))} µs CPU/op; ceiling ${fmtInt(sampleOf(s, 'ceilMeta', r))} ops/s at ${fmtInt(sampleOf(s, 'ceilCpu', r))} µs CPU/op`);
    }
  } finally {
    if (ceiling !== undefined) await stopCeiling(ceiling, ceil).catch(() => undefined);
    await bazil(env, 'daemon', 'stop').catch(() => undefined);
    for (const d of [mnt, ceil]) if ((await findFuseConnection(d)) !== undefined) await freeWedgedMount(d);
    if (!o.keep) rmSync(tmp, { recursive: true, force: true });
  }

  const m = (k: string): number => s.median(k);
  const lines: TableLine[] = [
    { section: `create+stat+unlink of ${fmtInt(o.files)} files` },
    { figure: 'ops/s through the mount', value: fmtInt(m('meta')), spread: s.spread('meta', fmtInt), baseline: `ceiling ${fmtInt(m('ceilMeta'))}`, ratio: fmtRatio(m('meta') / m('ceilMeta')), target: '>= 0.30× ceiling', verdict: atLeast(m('meta') / m('ceilMeta'), 0.3) },
    { figure: 'daemon CPU per operation', value: `${fmtInt(m('cpu'))} µs`, spread: s.spread('cpu', fmtInt), baseline: `ceiling ${fmtInt(m('ceilCpu'))} µs`, ratio: fmtRatio(m('cpu') / m('ceilCpu')) },
  ];
  console.log(renderTable(lines));
  const result = {
    meta_ops_s: sig(m('meta')), ceiling_meta_ops_s: sig(m('ceilMeta')),
    daemon_cpu_us_per_op: sig(m('cpu')), ceiling_cpu_us_per_op: sig(m('ceilCpu')),
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

/** Run r's sample of `name`. */
function sampleOf(s: Samples, name: string, r: number): number {
  return s.all(name)[r]!;
}

await main();
