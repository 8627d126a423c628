// bench/ingest: `bazil import` / `bazil export` beside `restic backup` /
// `restic restore` (Debian package) of the same mixed dataset, in one run.
//
//   npm run bench -- ingest [--quick] [--runs=N] [--mib=SIZE] [--seed=S] [--keep]
//
// Dataset (bench/lib/dataset.ts): generated once per run in a temp dir,
// deterministic from --seed: 1 GiB (128 MiB with --quick) of files with
// log-normal sizes plus four large ones, about half the bytes random and half
// duplicates of earlier files (whole copies, shifted copies, spliced copies).
//
// Each round, interleaved, with fresh repositories every round:
//   - bazil: fresh BAZIL_HOME, `init`, `volume create bench` (untimed), then
//     `import SRC bench:/data` (timed);
//   - restic: fresh repo, `restic init` (untimed), `restic backup .` from
//     inside SRC (timed);
//   - `bazil export bench:/data OUT` (timed), verified with `diff -rq`, and
//     its output deleted;
//   - `restic restore latest --target OUT` (timed), verified and deleted
//     likewise.
// Odd rounds run bazil first in each pair (import, backup, export,
// restore), even rounds restic first (backup, import, restore, export), and
// the default is 4 rounds, so each tool goes first equally often. Order
// matters on these machines: a tool that writes right after the other's
// output was deleted gets memory the guest has just freed, where memory
// freed a while ago has gone back to the host (free page reporting) and
// costs a fault to the host on first touch; and on an ext4 without a
// journal every file created scans the inodes deleted in the last minute
// (docs/ingest.md, "Round 7"). With a fixed order restore always came right
// after export's deletion and import right after the last round's.
// A mismatch fails the benchmark loudly.
//
// How things are measured:
//   - MB/s = dataset bytes (10^6) / wall seconds of the whole child process,
//     spawn to exit, so both tools pay their process start (node / Go).
//   - CPU seconds per GB (10^9 bytes of the dataset): user + system time of
//     the child, all threads (GNU time %U + %S). Wall-clock ratios move with
//     the load of a shared machine; CPU time much less.
//   - Peak RSS: GNU time `/usr/bin/time -f %M` around each child (ru_maxrss
//     from wait4, in KiB; includes worker threads). Reported in MiB
//     (peak_rss_mb = MiB): bazil's is the max of its import and export.
//   - Repository bytes: `du -sb` (apparent size: sum of file sizes, not
//     blocks) of the whole fresh BAZIL_HOME / restic repository right after
//     import / backup. restic's local cache is kept in a separate temp dir and
//     not counted (RESTIC_CACHE_DIR).
//   - restic runs with its defaults (0.14: repository v2, compression auto).
//   - Each timed command starts with its input just read (warmTree: the
//     dataset before import and backup, each tool's repository before its
//     restore): the machines we measure on keep about 3 GB of page cache,
//     less than a round writes, so otherwise the tool that reads second
//     finds the input the first one warmed.
// Every figure is the median of the rounds (>= 3; 4 by default). The last line of stdout is
// `RESULT {json}`.

import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateDataset } from './lib/dataset.js';
import { GNU_TIME, duBytes, ensureDebianTool, killRunning, run, sameTree, timed, warmTree, type Timed } from './lib/proc.js';
import {
  Samples, atLeast, atMost, fmtInt, fmtMBs, fmtRatio, machineLine, renderTable, sig, type TableLine,
} from './lib/report.js';

const MIB = 1024 * 1024;
// The CLI of the same build as this file, whichever output directory that is.
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Options {
  quick: boolean;
  runs: number;
  bytes: number;
  seed: string;
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const value = (name: string): string | undefined => argv.find((x) => x.startsWith(`--${name}=`))?.slice(name.length + 3);
  for (const a of argv) {
    if (a !== '--quick' && a !== '--keep' && !/^--(runs|mib|seed)=/.test(a)) throw new Error(`unknown argument ${a}`);
  }
  const int = (name: string, dflt: number): number => {
    const v = value(name);
    if (v === undefined) return dflt;
    const x = Number(v.replace(/_/g, ''));
    if (!Number.isSafeInteger(x) || x <= 0) throw new Error(`--${name} needs a positive integer, got ${v}`);
    return x;
  };
  const runs = int('runs', 4);
  return { quick, runs, bytes: int('mib', quick ? 128 : 1024) * MIB, seed: value('seed') ?? 'bazil-ingest-1', keep: argv.includes('--keep') };
}

// ---------------------------------------------------------------- cleanup

let tempRoot: string | undefined;
let keep = false;

function cleanup(): void {
  killRunning();
  if (tempRoot && !keep) rmSync(tempRoot, { recursive: true, force: true });
  tempRoot = undefined;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
    cleanup();
    process.exit(130);
  });
}

// ---------------------------------------------------------------- one round

interface BazilJson {
  ms?: number;
  bytes?: number;
  newBytes?: number;
}

function log(s: string): void {
  process.stderr.write(`${s}\n`);
}

async function round(r: number, src: string, dataBytes: number, work: string, restic: string, s: Samples): Promise<void> {
  const dir = join(work, `round${r}`);
  mkdirSync(dir);
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch);
  const mbs = (sec: number): number => dataBytes / 1e6 / sec;
  // One timed command's figures under `key` (MB/s, peak RSS, CPU per GB) and its log line.
  const record = (key: string, label: string, t: Timed): void => {
    s.add(key, mbs(t.seconds));
    s.add(`${key}_rss`, t.maxRssKiB / 1024);
    s.add(`${key}_cpu`, t.cpuSeconds / (dataBytes / 1e9));
    log(`  round ${r}: ${label} ${t.seconds.toFixed(2)} s (${fmtMBs(mbs(t.seconds))}), ${(t.maxRssKiB / 1024).toFixed(0)} MiB peak`);
  };
  const home = join(dir, 'bazil-home');
  const benv = { ...process.env, BAZIL_HOME: home };
  const repo = join(dir, 'restic-repo');
  const renv = { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: repo, RESTIC_CACHE_DIR: join(dir, 'restic-cache') };

  const bazilImport = async (): Promise<void> => {
    run(process.execPath, [CLI, 'init', '--json'], benv);
    run(process.execPath, [CLI, 'volume', 'create', 'bench', '--json'], benv);
    warmTree(src);
    const imp = await timed(process.execPath, [CLI, 'import', src, 'bench:/data', '--json'], { env: benv, scratch });
    const impJson = JSON.parse(imp.stdout.trim().split('\n').pop() ?? '{}') as BazilJson;
    if (impJson.bytes !== undefined && impJson.bytes !== dataBytes) throw new Error(`bazil import reported ${impJson.bytes} bytes, dataset has ${dataBytes}`);
    record('import', 'bazil import', imp);
    if (impJson.ms) s.add('import_inproc', dataBytes / 1e3 / impJson.ms);
    s.add('repo', duBytes(home));
  };

  // From inside SRC, so the snapshot's paths are relative.
  const resticBackup = async (): Promise<void> => {
    run(restic, ['init'], renv);
    warmTree(src);
    const bak = await timed(restic, ['backup', '.'], { env: renv, cwd: src, scratch });
    record('backup', 'restic backup', bak);
    s.add('restic_repo', duBytes(repo));
  };

  const bazilExport = async (): Promise<void> => {
    const out = join(dir, 'bazil-out');
    warmTree(home);
    const exp = await timed(process.execPath, [CLI, 'export', 'bench:/data', out, '--json'], { env: benv, scratch });
    const expJson = JSON.parse(exp.stdout.trim().split('\n').pop() ?? '{}') as BazilJson;
    record('export', 'bazil export', exp);
    if (expJson.ms) s.add('export_inproc', dataBytes / 1e3 / expJson.ms);
    sameTree(src, out, `bazil export (round ${r})`);
    rmSync(out, { recursive: true, force: true });
  };

  const resticRestore = async (): Promise<void> => {
    const target = join(dir, 'restic-out');
    warmTree(repo);
    const res = await timed(restic, ['restore', 'latest', '--target', target], { env: renv, scratch });
    record('restore', 'restic restore', res);
    // With `backup .` the files sit at the snapshot's root; older restics nest the absolute path.
    const restored = existsSync(join(target, src)) ? join(target, src) : target;
    sameTree(src, restored, `restic restore (round ${r})`);
    rmSync(target, { recursive: true, force: true });
  };

  // Which tool goes first alternates by round (see the top: the state the
  // one before leaves behind is not the same for both).
  const steps = r % 2 === 1
    ? [bazilImport, resticBackup, bazilExport, resticRestore]
    : [resticBackup, bazilImport, resticRestore, bazilExport];
  for (const step of steps) await step();

  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  keep = opts.keep;
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: build first (npx tsc -p .)`);
  ensureDebianTool(GNU_TIME, 'time');
  const restic = ensureDebianTool('restic', 'restic');
  const resticVersion = run(restic, ['version']).trim();

  tempRoot = mkdtempSync(join(tmpdir(), 'bazil-bench-ingest-'));
  const src = join(tempRoot, 'src');
  const t0 = Date.now();
  const ds = generateDataset(src, opts.bytes, opts.seed);
  const dataBytes = ds.bytes;
  log(`bench: dataset ${fmtInt(ds.files)} files in ${ds.dirs} dirs, ${fmtInt(dataBytes)} bytes ` +
    `(${((100 * ds.randomBytes) / dataBytes).toFixed(1)}% random, ${((100 * ds.duplicateBytes) / dataBytes).toFixed(1)}% duplicate; ` +
    `${ds.largeFiles} large, ${ds.wholeCopies} whole / ${ds.shiftedCopies} shifted / ${ds.splicedCopies} spliced copies) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const s = new Samples();
  const loadBefore = loadavg()[0]!;
  for (let r = 1; r <= opts.runs; r++) {
    const work = join(tempRoot, 'work');
    mkdirSync(work, { recursive: true });
    await round(r, src, dataBytes, work, restic, s);
  }

  const m = (k: string): number => s.median(k);
  const mbSpread = (k: string): string => s.spread(k, (v) => v.toFixed(0));
  const byteSpread = (k: string): string => s.spread(k, (v) => fmtInt(v / 1e6));
  const rssSpread = (k: string): string => s.spread(k, (v) => v.toFixed(0));
  const importMbs = m('import');
  const backupMbs = m('backup');
  const repo = m('repo');
  const resticRepo = m('restic_repo');
  const exportMbs = m('export');
  const restoreMbs = m('restore');
  const importRss = m('import_rss');
  const exportRss = m('export_rss');
  const peakRss = Math.max(...s.all('import_rss'), ...s.all('export_rss'));
  const resticPeakRss = Math.max(...s.all('backup_rss'), ...s.all('restore_rss'));

  const lines: TableLine[] = [
    { section: `import: ${fmtInt(dataBytes / 1e6)} MB, ${fmtInt(ds.files)} files, wall time of the process` },
    {
      figure: 'bazil import', value: fmtMBs(importMbs), spread: mbSpread('import'), baseline: `restic backup ${fmtMBs(backupMbs)} (${mbSpread('backup')})`,
      ratio: fmtRatio(importMbs / backupMbs), target: '>= 1.5×', verdict: atLeast(importMbs / backupMbs, 1.5),
    },
    {
      figure: 'bazil import CPU', value: `${m('import_cpu').toFixed(2)} s/GB`, spread: s.spread('import_cpu', (v) => v.toFixed(2)),
      baseline: `restic backup ${m('backup_cpu').toFixed(2)} s/GB`, ratio: fmtRatio(m('import_cpu') / m('backup_cpu')),
    },
    {
      figure: 'repository bytes', value: `${fmtInt(repo / 1e6)} MB`, spread: byteSpread('repo'), baseline: `restic repo ${fmtInt(resticRepo / 1e6)} MB`,
      ratio: fmtRatio(repo / resticRepo), target: '<= 1.0×', verdict: atMost(repo, resticRepo),
    },
    {
      figure: 'dedup (dataset / repo)', value: fmtRatio(dataBytes / repo), baseline: `restic ${fmtRatio(dataBytes / resticRepo)}`,
    },
    { section: 'export' },
    {
      figure: 'bazil export', value: fmtMBs(exportMbs), spread: mbSpread('export'), baseline: `restic restore ${fmtMBs(restoreMbs)} (${mbSpread('restore')})`,
      ratio: fmtRatio(exportMbs / restoreMbs), target: '>= 1.5×', verdict: atLeast(exportMbs / restoreMbs, 1.5),
    },
    {
      figure: 'bazil export CPU', value: `${m('export_cpu').toFixed(2)} s/GB`, spread: s.spread('export_cpu', (v) => v.toFixed(2)),
      baseline: `restic restore ${m('restore_cpu').toFixed(2)} s/GB`, ratio: fmtRatio(m('export_cpu') / m('restore_cpu')),
    },
    { section: 'memory (peak RSS of the child, GNU time %M)' },
    {
      figure: 'bazil peak RSS (max)', value: `${peakRss.toFixed(0)} MiB`, baseline: `restic ${resticPeakRss.toFixed(0)} MiB`,
      ratio: fmtRatio(peakRss / resticPeakRss), target: '< 300 MiB', verdict: peakRss < 300 ? 'ok' : 'MISSED',
    },
    { figure: 'bazil import RSS', value: `${importRss.toFixed(0)} MiB`, spread: rssSpread('import_rss'), baseline: `restic backup ${m('backup_rss').toFixed(0)} MiB` },
    { figure: 'bazil export RSS', value: `${exportRss.toFixed(0)} MiB`, spread: rssSpread('export_rss'), baseline: `restic restore ${m('restore_rss').toFixed(0)} MiB` },
  ];
  if (s.has('import_inproc') && s.has('export_inproc')) {
    lines.push({
      note: `bazil's own timer (--json ms, excludes node start and volume open/close): import ${fmtMBs(m('import_inproc'))}, export ${fmtMBs(m('export_inproc'))}`,
    });
  }
  lines.push({ note: `load average ${loadBefore.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end (${cpus().length} cores): above ~1, compare CPU s/GB rather than MB/s` });
  lines.push({ note: `${opts.runs} interleaved rounds (bazil first in odd rounds, restic in even), fresh repositories each; exports and restores verified with diff -rq; ${resticVersion}` });

  console.log(machineLine(tempRoot));
  console.log(`dataset: seed ${opts.seed}, ${fmtInt(dataBytes)} bytes, ${fmtInt(ds.files)} files, ${((100 * ds.duplicateBytes) / dataBytes).toFixed(1)}% duplicate bytes; MB = 10^6 bytes, MiB = 2^20`);
  console.log(renderTable(lines));
  const result = {
    import_mb_s: sig(importMbs),
    restic_backup_mb_s: sig(backupMbs),
    repo_bytes: Math.round(repo),
    restic_repo_bytes: Math.round(resticRepo),
    export_mb_s: sig(exportMbs),
    restic_restore_mb_s: sig(restoreMbs),
    peak_rss_mb: sig(peakRss),
    restic_peak_rss_mb: sig(resticPeakRss),
    import_cpu_s_per_gb: sig(m('import_cpu')),
    restic_backup_cpu_s_per_gb: sig(m('backup_cpu')),
    export_cpu_s_per_gb: sig(m('export_cpu')),
    restic_restore_cpu_s_per_gb: sig(m('restore_cpu')),
    dataset_bytes: dataBytes,
  };
  cleanup();
  console.log(`RESULT ${JSON.stringify(result)}`);
}

main().catch((e: unknown) => {
  cleanup();
  process.stderr.write(`bench ingest: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
