// bench/mountpast: past states through the mount (docs/mount.md, "Past
// states"), each figure beside the same thing done on the live mount of the
// same volume, in one run.
//
//   npm run bench -- mountpast [--quick] [--full] [--runs=N]
//
// A volume of FILES files (10k by default, 2k with --quick, 100k with --full
// or BAZIL_SLOW=1) in a three-level tree, sizes set by truncate (the figures
// concern metadata), made through the volume API in one batch; then the
// snapshot `bench`, then 200 more files, so the past differs from the
// present. The home's daemon runs as a child process (`bazil daemon run`);
// this process asks it to mount over its control socket and walks the
// mounts with `find` (it never serves a mount itself).
// Figures, medians of --runs (default 3) interleaved rounds, each round
// mounting afresh (so the kernel's caches start empty):
//   1. mount_at_ms: the daemon's `mount --at bench` (the replay to the
//      snapshot included), beside mount_live_ms, the live mount's.
//   2. past_walk_ms: `find -printf` (an lstat of every node) over the --at
//      mount, beside live_walk_ms over the live mount.
//   3. snap_first_walk_ms: the same walk of `.snap/bench` in the live mount,
//      its first access building the past state; snap_warm_walk_ms: again,
//      cached in the daemon (the kernel's entries expired: 1 s timeout).
//   4. past_rbytes_first_ms: getxattr user.bazil.rbytes of the --at mount's
//      root, the first time (every directory's figures computed once), and
//      past_rbytes_ms after that, beside live_rbytes_ms (the stored
//      aggregates of the live mount).
// The last line of stdout is `RESULT {json}`.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callDaemon, daemonStatus } from '../src/daemon/client.js';
import { getXattr } from '../src/fs/xattr.js';
import { initHome } from '../src/home/home.js';
import { createVolume } from '../src/home/volumes.js';
import { Volume } from '../src/volume/volume.js';
import { Samples, fmtFixed, fmtInt, fmtRatio, machineLine, renderTable, sig, type TableLine } from './lib/report.js';
import { parseFileCountArgs, type FileCountOptions } from './lib/file-count-args.js';

const CLI_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

type Options = FileCountOptions;

const parseArgs = (argv: string[]): Options => parseFileCountArgs(argv, 3);

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The tree: 5 × 5 × 5 directories (10 × 10 × 10 from 50k files), files spread over the leaves. */
async function populate(v: Volume, files: number, prefix: string): Promise<void> {
  await v.batch(async (b) => {
    const root = await v.resolve('/');
    const fan = files >= 50_000 ? 10 : 5;
    const leaves: Buffer[] = [];
    for (let i = 0; i < fan; i++) {
      const a = await b.create({ type: 'mkdir', parent: root, name: `${prefix}a${i}`, mode: 0o755, uid: 0, gid: 0 });
      for (let j = 0; j < fan; j++) {
        const bb = await b.create({ type: 'mkdir', parent: a, name: `b${j}`, mode: 0o755, uid: 0, gid: 0 });
        for (let k = 0; k < fan; k++) leaves.push(await b.create({ type: 'mkdir', parent: bb, name: `c${k}`, mode: 0o755, uid: 0, gid: 0 }));
      }
    }
    for (let i = 0; i < files; i++) {
      const inode = await b.create({ type: 'create', parent: leaves[i % leaves.length]!, name: `f${i}`, mode: 0o644, uid: 0, gid: 0 });
      if (i % 8 === 0) await b.append({ type: 'truncate', inode, size: 1 + (i % 4096) });
    }
  });
}

/** Wall time of `find DIR -printf` and the number of nodes it listed. */
function walk(dir: string): { ms: number; nodes: number } {
  const t = performance.now();
  const r = spawnSync('find', [dir, '-printf', '%i %s\n'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`find ${dir} failed: ${r.stderr}`);
  return { ms, nodes: r.stdout.split('\n').length - 1 };
}

function timeXattr(path: string, name: string): { ms: number; value: string } {
  const t = performance.now();
  const value = getXattr(path, name).toString();
  return { ms: performance.now() - t, value };
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await work();
  return { ms: performance.now() - t, value };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const scratch = mkdtempSync(join(tmpdir(), 'bazil-bench-mountpast-'));
  const home = join(scratch, 'home');
  let daemon: ChildProcess | undefined;
  const mounted = new Set<string>();
  try {
    const { home: h } = await initHome(home);
    await createVolume(h, 'v').finally(() => h.close());
    const v = await Volume.open(home, 'v');
    try {
      log(`making ${fmtInt(opts.files)} files, a snapshot, 200 more...`);
      await populate(v, opts.files, '');
      await v.batch(async (b) => { await b.append({ type: 'snapshot', name: 'bench' }); });
      await populate(v, 200, 'later-');
      await v.aggregates('/', { exact: true });
    } finally {
      await v.close();
    }

    daemon = spawn(process.execPath, [CLI_MAIN, 'daemon', 'run', '--home', home], { stdio: 'ignore', env: { ...process.env, BAZIL_HOME: home } });
    for (let i = 0; (await daemonStatus(home).catch(() => undefined)) === undefined; i++) {
      if (i > 400) throw new Error('the daemon did not start');
      await sleep(50);
    }
    const live = join(scratch, 'live');
    const past = join(scratch, 'past');
    mkdirSync(live);
    mkdirSync(past);
    const mount = async (dir: string, at?: string): Promise<number> => {
      const { ms } = await timed(() => callDaemon(home, { op: 'mount', volume: 'v', dir, ...(at === undefined ? {} : { at }) }));
      mounted.add(dir);
      return ms;
    };
    const umount = async (dir: string): Promise<void> => {
      await callDaemon(home, { op: 'umount', dir, force: false });
      mounted.delete(dir);
    };

    const s = new Samples();
    let pastNodes = 0;
    let liveNodes = 0;
    for (let r = 0; r < opts.runs; r++) {
      log(`round ${r + 1} of ${opts.runs}`);
      s.add('mount_live', await mount(live));
      const lw = walk(live);
      liveNodes = lw.nodes;
      s.add('live_walk', lw.ms);
      s.add('live_rbytes', timeXattr(live, 'user.bazil.rbytes').ms);
      // .snap: the first access builds the past state in the daemon.
      const snap = join(live, '.snap', 'bench');
      const first = walk(snap);
      s.add('snap_first_walk', first.ms);
      await sleep(1100);
      s.add('snap_warm_walk', walk(snap).ms);
      await umount(live);

      s.add('mount_at', await mount(past, 'bench'));
      const pw = walk(past);
      pastNodes = pw.nodes;
      if (pw.nodes !== first.nodes) throw new Error(`--at bench lists ${pw.nodes} nodes, .snap/bench ${first.nodes}`);
      s.add('past_walk', pw.ms);
      const x1 = timeXattr(past, 'user.bazil.rbytes');
      s.add('past_rbytes_first', x1.ms);
      s.add('past_rbytes', timeXattr(past, 'user.bazil.rbytes').ms);
      await umount(past);
    }

    const ms = (x: number): string => fmtFixed(x, x < 10 ? 2 : 0, 'ms');
    const row = (figure: string, key: string, base?: string): TableLine => ({
      figure, value: ms(s.median(key)), spread: s.spread(key, ms),
      ...(base === undefined ? {} : { baseline: `${base.replace(/_/g, ' ')} ${ms(s.median(base))}`, ratio: fmtRatio(s.median(key) / s.median(base)) }),
    });
    const lines: TableLine[] = [
      { section: `${fmtInt(opts.files)} files at the snapshot (${fmtInt(pastNodes)} nodes; ${fmtInt(liveNodes)} live), ${opts.runs} rounds` },
      row('mount --at bench', 'mount_at', 'mount_live'),
      row('find over the --at mount', 'past_walk', 'live_walk'),
      row('find over .snap/bench, first', 'snap_first_walk', 'live_walk'),
      row('find over .snap/bench, cached', 'snap_warm_walk', 'live_walk'),
      row('rbytes of the --at root, first', 'past_rbytes_first', 'live_rbytes'),
      row('rbytes of the --at root, after', 'past_rbytes', 'live_rbytes'),
      { note: 'ratio = past-state time / the same on the live mount (below 1: faster); each round mounts afresh' },
    ];
    console.log(machineLine(scratch));
    console.log(renderTable(lines));
    const result: Record<string, number> = { files: opts.files };
    for (const k of ['mount_at', 'mount_live', 'past_walk', 'live_walk', 'snap_first_walk', 'snap_warm_walk', 'past_rbytes_first', 'past_rbytes', 'live_rbytes']) {
      result[`${k}_ms`] = sig(s.median(k));
    }
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    for (const dir of mounted) await callDaemon(home, { op: 'umount', dir, force: true }).catch(() => undefined);
    if (daemon !== undefined) {
      await callDaemon(home, { op: 'stop' }).catch(() => undefined);
      await new Promise((r) => (daemon!.exitCode !== null ? r(undefined) : daemon!.once('exit', r)));
    }
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench mountpast: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
