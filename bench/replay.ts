// bench/replay: replaying a volume's log, whole and to random past points
// (docs/history.md), in one run.
//
//   npm run bench -- replay [--quick] [--full] [--points=N] [--events=N]
//
// A volume of EVENTS events (50k by default, 10k with --quick, 1M with
// --full or BAZIL_SLOW=1), written through the volume API in batches: a
// tree of directories, then churn over a bounded set of live files
// (creates, writes as truncates, chmods, utimens, renames, xattrs,
// unlinks), so the live tree stays around EVENTS/50 files however long the
// log grows, as in a volume that is used rather than only filled.
// Figures:
//   1. replay_events_s: the whole log replayed into an in-memory projection
//      (merge, decrypt, decode, apply), beside rebuild of the live LevelDB
//      projection (Volume.rebuild) of the same log.
//   2. checkpoint build: History.update() on a volume without checkpoints
//      (the one-off cost; afterwards only new events are replayed), and the
//      checkpoints' disk beside the log's (checkpoint_log_ratio: bytes of
//      every checkpoint file over the bytes of every event record).
//   3. asof_ms: POINTS random positions (median and max), each as a user
//      would pay it: History.open (lists the checkpoints) plus the view at
//      that point, beside the target of 1 s (issue 4) and beside a replay
//      from the first event (no checkpoints) to the log's quartiles (the
//      middle only at full size), what a random point costs on average.
// The last line of stdout is `RESULT {json}`.

import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHECKPOINTS_DIR, DEFAULT_CHECKPOINT_EVERY, History } from '../src/history/index.js';
import { initHome } from '../src/home/home.js';
import { createVolume } from '../src/home/volumes.js';
import type { EventBody } from '../src/log/event.js';
import type { LogStore } from '../src/log/stream.js';
import { Volume } from '../src/volume/volume.js';
import { atMost, fmtFixed, fmtInt, fmtOps, fmtRatio, machineLine, median, renderTable, sig, type TableLine } from './lib/report.js';

interface Options {
  events: number;
  points: number;
  every: bigint;
  label: string;
}

function parseArgs(argv: string[]): Options {
  for (const a of argv) {
    if (a !== '--quick' && a !== '--full' && !/^--(points|events)=\d+$/.test(a)) throw new Error(`unknown argument ${a}`);
  }
  const full = argv.includes('--full') || process.env.BAZIL_SLOW === '1';
  const quick = argv.includes('--quick');
  const points = Number(argv.find((a) => a.startsWith('--points='))?.slice(9) ?? (full ? 20 : 30));
  if (!Number.isInteger(points) || points < 1) throw new Error('--points must be a positive integer');
  const events = Number(argv.find((a) => a.startsWith('--events='))?.slice(9) ?? (full ? 1_000_000 : quick ? 10_000 : 50_000));
  if (!Number.isInteger(events) || events < 2) throw new Error('--events must be an integer of at least 2');
  return { events, points, every: DEFAULT_CHECKPOINT_EVERY, label: full ? 'FULL' : quick ? 'QUICK' : argv.some((a) => a.startsWith('--events=')) ? 'CUSTOM' : 'DEFAULT' };
}

/** An arena record's bytes around its payload: length, type, key (32), checksum (docs/formats.md). */
const RECORD_FRAMING_BYTES = 4 + 1 + 32 + 8;

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

/** A deterministic generator (xorshift), so every run builds the same log shape. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

interface Live {
  id: Buffer;
  dir: number;
  name: string;
}

/** Appends `total` events (the create-volume event included) in batches of 20k. */
async function populate(v: Volume, total: number): Promise<void> {
  const rand = rng(42);
  const root = await v.resolve('/');
  const dirs: Buffer[] = [root];
  const live: Live[] = [];
  const cap = Math.max(100, Math.floor(total / 50));
  let serial = 0;
  let made = 1;
  while (made < total) {
    const n = Math.min(20_000, total - made);
    await v.batch(async (b) => {
      for (let i = 0; i < n; i++) {
        const r = rand();
        const pick = (): Live => live[Math.floor(rand() * live.length)]!;
        if (dirs.length < 200 && (r < 0.05 || live.length === 0)) {
          dirs.push(await b.create({ type: 'mkdir', parent: dirs[Math.floor(rand() * dirs.length)]!, name: `d${serial++}`, mode: 0o755, uid: 0, gid: 0 }));
          continue;
        }
        if (live.length === 0 || (r < 0.2 && live.length < cap)) {
          const dir = Math.floor(rand() * dirs.length);
          const name = `f${serial++}`;
          live.push({ id: await b.create({ type: 'create', parent: dirs[dir]!, name, mode: 0o644, uid: 0, gid: 0 }), dir, name });
          continue;
        }
        const f = pick();
        let body: EventBody;
        if (r < 0.5) body = { type: 'truncate', inode: f.id, size: Math.floor(rand() * 1e6) };
        else if (r < 0.65) body = { type: 'chmod', inode: f.id, mode: rand() < 0.5 ? 0o600 : 0o644 };
        else if (r < 0.75) body = { type: 'utimens', inode: f.id, atime: null, mtime: 'now' };
        else if (r < 0.82) body = { type: 'setxattr', inode: f.id, name: 'user.tag', value: Buffer.from(`v${serial++}`) };
        else if (r < 0.92) {
          const to = Math.floor(rand() * dirs.length);
          const newName = `f${serial++}`;
          body = { type: 'rename', inode: f.id, parent: dirs[f.dir]!, name: f.name, newParent: dirs[to]!, newName };
          f.dir = to;
          f.name = newName;
        } else {
          body = { type: 'unlink', inode: f.id, parent: dirs[f.dir]!, name: f.name };
          live.splice(live.indexOf(f), 1);
        }
        await b.append(body);
      }
    });
    made += n;
    log(`  ${fmtInt(made)} events`);
  }
}

/** The checkpoint files' bytes, with the full ones (format versions 1 and 3) apart from the deltas. */
function dirBytes(dir: string): { files: number; bytes: number; fullFiles: number; fullBytes: number } {
  const out = { files: 0, bytes: 0, fullFiles: 0, fullBytes: 0 };
  if (!existsSync(dir)) return out;
  for (const n of readdirSync(dir)) {
    if (!n.endsWith('.ckpt')) continue;
    const path = join(dir, n);
    const size = statSync(path).size;
    out.files++;
    out.bytes += size;
    const head = Buffer.alloc(8);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, 8, 0);
    } finally {
      closeSync(fd);
    }
    if (head[7] === 1 || head[7] === 3) {
      out.fullFiles++;
      out.fullBytes += size;
    }
  }
  return out;
}

/** The log's size: every event record as stored (envelope bytes plus the arena's record framing). */
function logBytes(log: LogStore): number {
  let bytes = 0;
  for (const env of log.merged()) bytes += env.bytes.length + RECORD_FRAMING_BYTES;
  return bytes;
}

async function main(): Promise<void> {
  const opt = parseArgs(process.argv.slice(2));
  const scratch = mkdtempSync(join(tmpdir(), 'bazil-bench-replay-'));
  const wall = performance.now();
  try {
    const home = join(scratch, 'home');
    const { home: h } = await initHome(home);
    await createVolume(h, 'replay').finally(() => h.close());
    const v = await Volume.open(home, 'replay');
    try {
      log(`making a volume of ${fmtInt(opt.events)} events`);
      let t = performance.now();
      await populate(v, opt.events);
      const makeS = (performance.now() - t) / 1000;
      const src = v.historySource();
      log('replaying the whole log in memory (no checkpoints)');
      // Opened before any checkpoint exists, and never taking one: every view it gives replays from the first event.
      const bare = await History.open(src, { every: BigInt(Number.MAX_SAFE_INTEGER) });
      const total = Number(bare.total());
      t = performance.now();
      await bare.at({ kind: 'now' });
      const replayMs = performance.now() - t;
      const replayRate = total / (replayMs / 1000);

      log('rebuilding the live LevelDB projection (baseline)');
      const rebuild = await v.rebuild();
      const rebuildRate = rebuild.events / (rebuild.ms / 1000);

      log('taking checkpoints');
      t = performance.now();
      const history = await History.open(src, { every: opt.every });
      const written = await history.update();
      const checkpointS = (performance.now() - t) / 1000;
      const disk = dirBytes(join(src.dir, CHECKPOINTS_DIR));
      const logSize = logBytes(src.log);

      log(`as-of views at ${opt.points} random points`);
      const rand = rng(7);
      const asof: number[] = [];
      const opens: number[] = [];
      const replayed: number[] = [];
      const scratchMs: number[] = [];
      for (let i = 0; i < opt.points; i++) {
        const count = BigInt(1 + Math.floor(rand() * total));
        t = performance.now();
        const hist = await History.open(src, { every: opt.every });
        opens.push(performance.now() - t);
        const view = await hist.at({ kind: 'position', count });
        asof.push(performance.now() - t);
        replayed.push(view.replayed);
        if (view.count !== count) throw new Error(`view at @${count} covers ${view.count} events`);
      }
      // Without checkpoints, a point costs a replay from the first event: measured at the quartiles
      // (the middle one only at full size), which is what a random point costs on average.
      for (const q of opt.label === 'FULL' ? [2] : [1, 2, 3]) {
        t = performance.now();
        await bare.at({ kind: 'position', count: BigInt(Math.max(1, Math.floor((total * q) / 4))) });
        scratchMs.push(performance.now() - t);
      }
      const asofMed = median(asof);
      const asofMax = Math.max(...asof);
      const scratchMed = median(scratchMs);

      const lines: TableLine[] = [
        { section: `the volume: ${fmtInt(total)} events, made in ${makeS.toFixed(1)} s through Volume.batch` },
        { figure: 'full replay into memory', value: fmtOps(replayRate), baseline: `LevelDB rebuild: ${fmtOps(rebuildRate)}`, ratio: fmtRatio(replayRate / rebuildRate) },
        { figure: `checkpoint build (every ${opt.every} events)`, value: `${checkpointS.toFixed(1)} s`, baseline: `${written} checkpoints` },
        {
          figure: 'checkpoints on disk', value: `${(disk.bytes / 1e6).toFixed(1)} MB`,
          baseline: `the log: ${(logSize / 1e6).toFixed(1)} MB; ${disk.fullFiles} full (${(disk.fullBytes / 1e6).toFixed(1)} MB), ${disk.files - disk.fullFiles} deltas`,
          ratio: fmtRatio(disk.bytes / logSize), target: '< 1× the log', verdict: atMost(disk.bytes / logSize, 1),
        },
        { section: `as of a random position (open + view), ${opt.points} points` },
        { figure: 'as-of latency, median', value: fmtFixed(asofMed, 0, 'ms'), baseline: `from the first event, at the quartiles: ${fmtFixed(scratchMed, 0, 'ms')}`, ratio: fmtRatio(scratchMed / asofMed), target: '≤ 1000 ms', verdict: atMost(asofMed, 1000) },
        { figure: 'as-of latency, max', value: fmtFixed(asofMax, 0, 'ms'), target: '≤ 1000 ms', verdict: atMost(asofMax, 1000) },
        { figure: 'of which History.open, median', value: fmtFixed(median(opens), 0, 'ms'), baseline: `events replayed past the checkpoint: median ${fmtInt(median(replayed))}, max ${fmtInt(Math.max(...replayed))}` },
      ];
      console.log(`bench/replay — ${opt.label} size: ${fmtInt(total)} events`);
      console.log(machineLine(scratch));
      console.log('');
      console.log(renderTable(lines));
      console.log('');
      console.log(`total time ${((performance.now() - wall) / 1000).toFixed(1)} s`);
      const result = {
        replay_events_s: sig(replayRate), rebuild_events_s: sig(rebuildRate), asof_ms: sig(asofMed), asof_max_ms: sig(asofMax),
        asof_from_start_ms: sig(scratchMed), checkpoint_build_s: sig(checkpointS), checkpoints: written, checkpoint_mb: sig(disk.bytes / 1e6),
        log_mb: sig(logSize / 1e6), checkpoint_log_ratio: sig(disk.bytes / logSize),
        events: total, quick: opt.label === 'QUICK' ? 1 : 0,
      };
      process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    } finally {
      await v.close();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/replay failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
