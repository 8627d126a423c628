// bench/reflink: instant copies (docs/reflink.md), `Volume.reflink` of a
// large file and of a large tree, timed in-process, beside copies of the
// same data made other ways in the same run.
//
//   npm run bench -- reflink [--quick] [--runs=N]
//
// Default (the acceptance size): a 1 GiB file of random bytes written
// through the volume (a real manifest of ~16k chunks) and a tree of 10,000
// files in 5 × 5 × 5 directories (file sizes set by truncate, one in 16
// with real content shared by all of them). --quick: 64 MiB and 1,000 files.
// Figures, medians of --runs (default 7) copies, each to a new name:
//   reflink_file_ms  Volume.reflink of the file, beside `cp --reflink=auto`
//                    of the same file exported to local disk (the disk's own
//                    reflink where it has one, else a full copy);
//   reflink_tree_ms  Volume.reflink of the tree, beside `cp -r --reflink=auto`
//                    of the exported tree and a file-by-file copy through
//                    the volume API (one batch of mkdir/create events that
//                    name the same content: the best a copy without clone
//                    events can do).
// Also shown: the first listing of a copied directory (its one level is
// materialised then) and a walk of the whole copied tree (every level).
// Every copy is checked to add no content object. Last line: RESULT {json}.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTENT_KIND } from '../src/cas/content-store.js';
import { initHome } from '../src/home/home.js';
import { createVolume } from '../src/home/volumes.js';
import { exportTree } from '../src/volume/import-export.js';
import { Volume, manifestBytes } from '../src/volume/volume.js';
import { Samples, atMost, fmtFixed, fmtInt, fmtRatio, machineLine, renderTable, sig, type TableLine } from './lib/report.js';

interface Options {
  fileBytes: number;
  files: number;
  runs: number;
}

function parseArgs(argv: string[]): Options {
  for (const a of argv) {
    if (a !== '--quick' && a !== '--full' && !/^--runs=\d+$/.test(a)) throw new Error(`unknown argument ${a}`);
  }
  const quick = argv.includes('--quick');
  const runs = Number(argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? 7);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  return { fileBytes: quick ? 64 * 2 ** 20 : 2 ** 30, files: quick ? 1000 : 10_000, runs };
}

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
const FAN = 5;
const PIECE = 4 * 2 ** 20;

function contentObjects(v: Volume): number {
  const { arenas } = v.historySource().content;
  let n = 0;
  for (const w of arenas.writers(CONTENT_KIND)) for (const _ of arenas.records(CONTENT_KIND, w)) n++;
  return n;
}

async function* randomContent(bytes: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes; at += PIECE) yield randomBytes(Math.min(PIECE, bytes - at));
}

/** /tree: FAN³ leaf directories, `files` files spread over them; returns how many directories. */
async function makeTree(v: Volume, files: number): Promise<number> {
  const shared = await v.historySource().content.writeBuffer(randomBytes(100_000));
  let dirs = 1;
  await v.batch(async (b) => {
    const top = await b.create({ type: 'mkdir', parent: await v.resolve('/'), name: 'tree', mode: 0o755, uid: 0, gid: 0 });
    const leaves: Buffer[] = [];
    for (let i = 0; i < FAN; i++) {
      const a = await b.create({ type: 'mkdir', parent: top, name: `a${i}`, mode: 0o755, uid: 0, gid: 0 });
      for (let j = 0; j < FAN; j++) {
        const bb = await b.create({ type: 'mkdir', parent: a, name: `b${j}`, mode: 0o755, uid: 0, gid: 0 });
        for (let k = 0; k < FAN; k++) leaves.push(await b.create({ type: 'mkdir', parent: bb, name: `c${k}`, mode: 0o755, uid: 0, gid: 0 }));
      }
    }
    dirs += FAN + FAN * FAN + leaves.length;
    for (let i = 0; i < files; i++) {
      const parent = leaves[i % leaves.length]!;
      if (i % 16 === 0) {
        await b.create({ type: 'create', parent, name: `f${i}`, mode: 0o644, uid: 0, gid: 0, size: shared.size, manifest: manifestBytes(shared.manifestRoot) });
      } else {
        const inode = await b.create({ type: 'create', parent, name: `f${i}`, mode: 0o644, uid: 0, gid: 0 });
        await b.append({ type: 'truncate', inode, size: (i * 2654435761) % 5000 });
      }
    }
  });
  return dirs;
}

/** The tree copied the way a caller without clone events would: one create per node, naming the same content, in one batch. */
async function copyFileByFile(v: Volume, from: string, to: string): Promise<void> {
  await v.batch(async (b) => {
    const copy = async (src: string, parent: Buffer, name: string): Promise<void> => {
      const a = await v.stat(src);
      if (a.kind === 'dir') {
        const dir = await b.create({ type: 'mkdir', parent, name, mode: a.mode, uid: a.uid, gid: a.gid, mtime: a.mtime });
        for (let page = await v.readdir(src, { limit: 1000 }); page.length > 0; page = await v.readdir(src, { after: page[page.length - 1]!.name, limit: 1000 })) {
          for (const e of page) await copy(`${src}/${e.name}`, dir, e.name);
        }
      } else {
        await b.create({ type: 'create', parent, name, mode: a.mode, uid: a.uid, gid: a.gid, mtime: a.mtime, size: a.size, manifest: a.manifest });
      }
    };
    const slash = to.lastIndexOf('/');
    await copy(from, await v.resolve(to.slice(0, slash) || '/'), to.slice(slash + 1));
  });
}

async function walk(v: Volume, path: string): Promise<number> {
  let n = 0;
  for (const e of await v.readdir(path)) {
    n++;
    if ((await v.getattr(e.id)).kind === 'dir') n += await walk(v, `${path}/${e.name}`);
  }
  return n;
}

function timed(cmd: string, args: string[]): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return ms;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const scratch = mkdtempSync(join(tmpdir(), 'bazil-bench-reflink-'));
  try {
    const home = join(scratch, 'home');
    const { home: h } = await initHome(home);
    await createVolume(h, 'rl').finally(() => h.close());
    const v = await Volume.open(home, 'rl');
    const s = new Samples();
    let dirs: number;
    let chunks: number;
    let objectsAdded: number;
    let fileByFileMs: number;
    let firstListMs: number;
    let walkMs: number;
    try {
      log(`writing a ${fmtInt(opts.fileBytes / 2 ** 20)} MiB file...`);
      let t = performance.now();
      await v.writeFile('/big', randomContent(opts.fileBytes));
      log(`  written in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      chunks = contentObjects(v);
      log(`making a tree of ${fmtInt(opts.files)} files...`);
      dirs = await makeTree(v, opts.files);
      await v.aggregates('/', { exact: true });
      log('exporting both to local disk...');
      const out = join(scratch, 'export');
      mkdirSync(out);
      await exportTree(v, '/big', join(out, 'big'), { xattrs: false });
      await exportTree(v, '/tree', join(out, 'tree'), { xattrs: false });

      const objects = contentObjects(v);
      for (let r = 0; r < opts.runs; r++) {
        t = performance.now();
        await v.reflink('/big', `/big-${r}`);
        s.add('file', performance.now() - t);
        t = performance.now();
        await v.reflink('/tree', `/tree-${r}`);
        s.add('tree', performance.now() - t);
        s.add('cp-file', timed('cp', ['--reflink=auto', join(out, 'big'), join(out, `big-${r}`)]));
        s.add('cp-tree', timed('cp', ['-r', '--reflink=auto', join(out, 'tree'), join(out, `tree-${r}`)]));
        rmSync(join(out, `big-${r}`));
        rmSync(join(out, `tree-${r}`), { recursive: true });
      }
      objectsAdded = contentObjects(v) - objects;
      if (objectsAdded !== 0) throw new Error(`the copies added ${objectsAdded} content objects`);
      const copied = await v.stat('/big-0');
      const original = await v.stat('/big');
      if (copied.size !== opts.fileBytes || copied.manifest === null || original.manifest === null || !copied.manifest.equals(original.manifest)) {
        throw new Error('the file copy does not name the same content');
      }
      t = performance.now();
      await v.readdir('/tree-0');
      firstListMs = performance.now() - t;
      t = performance.now();
      const nodes = await walk(v, '/tree-1');
      walkMs = performance.now() - t;
      if (nodes !== opts.files + dirs - 1) throw new Error(`the copied tree holds ${nodes} nodes, the source ${opts.files + dirs - 1}`);
      log('copying the tree file by file through the API...');
      t = performance.now();
      await copyFileByFile(v, '/tree', '/tree-by-file');
      fileByFileMs = performance.now() - t;
      if (contentObjects(v) !== objects) throw new Error('the file-by-file copy added content objects');
    } finally {
      await v.close();
    }
    const ms = (x: number): string => fmtFixed(x, x < 10 ? 2 : 0, 'ms');
    const fileMs = s.median('file');
    const treeMs = s.median('tree');
    const cpFile = s.median('cp-file');
    const cpTree = s.median('cp-tree');
    const lines: TableLine[] = [
      { section: `a ${fmtInt(opts.fileBytes / 2 ** 20)} MiB file (${fmtInt(chunks)} content objects), ${opts.runs} copies` },
      { figure: 'Volume.reflink (file)', value: ms(fileMs), spread: s.spread('file', ms), baseline: `cp --reflink=auto ${ms(cpFile)}`, ratio: fmtRatio(cpFile / fileMs), target: '< 50 ms', verdict: atMost(fileMs, 50) },
      { section: `a tree of ${fmtInt(opts.files)} files in ${fmtInt(dirs)} directories, ${opts.runs} copies` },
      { figure: 'Volume.reflink (tree)', value: ms(treeMs), spread: s.spread('tree', ms), baseline: `cp -r --reflink=auto ${ms(cpTree)}`, ratio: fmtRatio(cpTree / treeMs), target: '< 50 ms', verdict: atMost(treeMs, 50) },
      { figure: '', value: '', baseline: `file by file through the API ${ms(fileByFileMs)}`, ratio: fmtRatio(fileByFileMs / treeMs) },
      { figure: 'first listing of the copy', value: ms(firstListMs) },
      { figure: 'walk of the whole copy', value: ms(walkMs) },
      { note: `content objects added by the ${2 * opts.runs} copies: ${objectsAdded}` },
      { note: 'ratio = baseline time / reflink time; cp runs on a warm page cache (this disk has no reflink: cp copies the bytes)' },
      { note: 'a copied directory is materialised level by level when first read or when its source changes: the walk pays that' },
    ];
    console.log(machineLine(scratch));
    console.log(renderTable(lines));
    console.log(`RESULT ${JSON.stringify({
      reflink_file_ms: sig(fileMs), reflink_tree_ms: sig(treeMs), cp_reflink_file_ms: sig(cpFile), cp_r_tree_ms: sig(cpTree),
      api_file_by_file_tree_ms: sig(fileByFileMs), first_list_ms: sig(firstListMs), walk_copy_ms: sig(walkMs),
      file_bytes: opts.fileBytes, files: opts.files, content_objects_added: objectsAdded,
    })}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench reflink: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
