// bench/du: reading a volume's subtree aggregates (docs/aggregates.md)
// beside `du -sb` of the same tree exported to disk, in one run.
//
//   npm run bench -- du [--quick] [--full] [--runs=N]
//
// A volume of FILES files (10k by default, 2k with --quick, 100k with
// --full or BAZIL_SLOW=1) in a three-level directory tree, sizes set by
// truncate (zeros: the figures concern metadata, not content), made through
// the volume API in one batch and exported to disk with exportTree (one
// file in 8 has a size; see populate).
// Figures, medians of --runs (default 5) interleaved rounds:
//   1. du_ms: Volume.aggregates('/') once settled, in-process, beside
//      coreutils_du_ms: `du -sb` of the exported tree (warm page cache, a
//      child process; its start-up, ~1 ms, included).
//   2. settle_ms: after a burst of writes (200 files in 20 directories), the
//      time from the last write returning until the root reads exact without
//      being asked to (polled every 2 ms); the target is < 1 s of idleness.
//   Also shown: the first full settle after the volume was made, and the
//   exact read (settle included) right after one more write.
// The last line of stdout is `RESULT {json}`.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initHome } from '../src/home/home.js';
import { createVolume } from '../src/home/volumes.js';
import { exportTree } from '../src/volume/import-export.js';
import { Volume } from '../src/volume/volume.js';
import { Samples, atMost, fmtFixed, fmtInt, fmtRatio, machineLine, renderTable, sig, type TableLine } from './lib/report.js';
import { parseFileCountArgs, type FileCountOptions } from './lib/file-count-args.js';

type Options = FileCountOptions;

const parseArgs = (argv: string[]): Options => parseFileCountArgs(argv, 5);

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

/** Makes the tree in one batch: 10 × 10 × 10 directories (fewer for small counts), files spread over the leaves. */
async function populate(v: Volume, files: number): Promise<number> {
  let bytes = 0;
  await v.batch(async (b) => {
    const root = await v.resolve('/');
    const fan = files >= 50_000 ? 10 : 5;
    const leaves: Buffer[] = [];
    for (let i = 0; i < fan; i++) {
      const a = await b.create({ type: 'mkdir', parent: root, name: `a${i}`, mode: 0o755, uid: 0, gid: 0 });
      for (let j = 0; j < fan; j++) {
        const bb = await b.create({ type: 'mkdir', parent: a, name: `b${j}`, mode: 0o755, uid: 0, gid: 0 });
        for (let k = 0; k < fan; k++) leaves.push(await b.create({ type: 'mkdir', parent: bb, name: `c${k}`, mode: 0o755, uid: 0, gid: 0 }));
      }
    }
    for (let i = 0; i < files; i++) {
      const inode = await b.create({ type: 'create', parent: leaves[i % leaves.length]!, name: `f${i}`, mode: 0o644, uid: 0, gid: 0 });
      // One file in 8 has a size (up to ~64 KiB, skewed small, deterministic), the rest are empty: a
      // truncate event for every file would take the log of a 100k-file volume past the 64 MiB at which
      // its arena seals in the background, which a catch-up reading that arena does not survive yet.
      if (i % 8 !== 0) continue;
      const size = Math.floor(((i * 2654435761) % 1000) ** 2 / 15);
      bytes += size;
      if (size > 0) await b.append({ type: 'truncate', inode, size });
    }
  });
  return bytes;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const scratch = mkdtempSync(join(tmpdir(), 'bazil-bench-du-'));
  try {
    const home = join(scratch, 'home');
    const { home: h } = await initHome(home);
    await createVolume(h, 'du').finally(() => h.close());
    const v = await Volume.open(home, 'du');
    const s = new Samples();
    let firstSettleMs: number;
    let bytes: number;
    try {
      log(`making ${fmtInt(opts.files)} files...`);
      let t = performance.now();
      bytes = await populate(v, opts.files);
      log(`  made in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      t = performance.now();
      const settled = await v.aggregates('/', { exact: true });
      firstSettleMs = performance.now() - t;
      if (settled.rfiles !== opts.files || settled.rbytes !== bytes) throw new Error(`aggregates say ${settled.rfiles} files, ${settled.rbytes} bytes; made ${opts.files}, ${bytes}`);
      log('exporting...');
      const out = join(scratch, 'export');
      await exportTree(v, '/', out, { xattrs: false });
      const check = spawnSync('du', ['-sb', '--apparent-size', out], { encoding: 'utf8' });
      log(`  du -sb: ${check.stdout.trim()}`);

      for (let r = 0; r < opts.runs; r++) {
        // 1. the root's aggregates, settled, through the API; then du -sb of the exported copy.
        t = performance.now();
        const agg = await v.aggregates('/');
        s.add('du', performance.now() - t);
        if (!agg.exact || agg.rfiles !== opts.files + r * 200 + r) throw new Error(`round ${r}: unexpected aggregates ${JSON.stringify({ ...agg, rctime: String(agg.rctime) })}`);
        t = performance.now();
        const du = spawnSync('du', ['-sb', out], { encoding: 'utf8' });
        s.add('coreutils', performance.now() - t);
        if (du.status !== 0) throw new Error(`du failed: ${du.stderr}`);

        // 2. a burst of writes, then the time until the root is exact again on its own.
        for (let i = 0; i < 200; i++) await v.writeFile(`/a${i % 5}/b${(i >> 2) % 5}/burst-${r}-${i}`, Buffer.alloc(64, i));
        t = performance.now();
        for (;;) {
          if ((await v.aggregates('/')).exact) break;
          if (performance.now() - t > 30_000) throw new Error('not exact after 30 s');
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        s.add('settle', performance.now() - t);

        // 3. one more write, then an exact read (waits for the settle).
        await v.writeFile(`/a0/b0/c0/one-${r}`, Buffer.alloc(10));
        t = performance.now();
        await v.aggregates('/', { exact: true });
        s.add('exact', performance.now() - t);
      }
    } finally {
      await v.close();
    }
    const duMs = s.median('du');
    const coreMs = s.median('coreutils');
    const settleMs = s.median('settle');
    const ms = (x: number): string => fmtFixed(x, x < 10 ? 2 : 0, 'ms');
    const lines: TableLine[] = [
      { section: `${fmtInt(opts.files)} files, ${fmtInt(bytes)} bytes, ${opts.runs} rounds` },
      { figure: 'root aggregates (API)', value: ms(duMs), spread: s.spread('du', ms), baseline: `du -sb ${ms(coreMs)} (${s.spread('coreutils', ms)})`, ratio: fmtRatio(coreMs / duMs), target: '< 50 ms', verdict: atMost(duMs, 50) },
      { figure: 'exact after a burst', value: ms(settleMs), spread: s.spread('settle', ms), target: '< 1000 ms', verdict: atMost(settleMs, 1000) },
      { figure: 'exact read after 1 write', value: ms(s.median('exact')), spread: s.spread('exact', ms) },
      { figure: 'first full settle', value: ms(firstSettleMs) },
      { note: 'ratio = du -sb time / aggregates read time (how many times faster the aggregates are); du runs on a warm page cache' },
    ];
    console.log(machineLine(scratch));
    console.log(renderTable(lines));
    console.log(`RESULT ${JSON.stringify({ du_ms: sig(duMs), coreutils_du_ms: sig(coreMs), settle_ms: sig(settleMs), exact_ms: sig(s.median('exact')), first_settle_ms: sig(firstSettleMs), files: opts.files })}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench du: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
