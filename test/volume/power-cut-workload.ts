// The volume workload of the power-cut test, shared by the test and its
// child process: a sequence of Volume calls and tree imports derived from a
// seed, so both sides know every step without passing it around. Steps are
// planned against the model (model.ts), so most succeed; a few are meant to
// fail (a non-empty rmdir, an existing name) and must fail the same way.

import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VolumeModel, type ImportedNode, type Listed, type VolOp } from './model.js';
import { prng } from '../lib/prng.js';

export type Step = { kind: 'op'; op: VolOp } | { kind: 'import'; src: string; path: string };

export { prng };

function bytes(rand: () => number, n: number): Buffer {
  const out = Buffer.alloc(Math.ceil(n / 4) * 4);
  for (let i = 0; i < out.length; i += 4) out.writeUInt32LE(Math.floor(rand() * 0x100000000), i);
  return out.subarray(0, n);
}

/** Mostly small files, some of several chunks (the chunker's minimum is 16 KiB). */
function size(rand: () => number): number {
  const r = rand();
  if (r < 0.1) return 0;
  if (r < 0.7) return 1 + Math.floor(rand() * 2000);
  return 20_000 + Math.floor(rand() * 180_000);
}

/** The source directories the imports copy, under `root` (i0, i1, …): made once, read by both processes. */
export async function makeImportSources(root: string, count: number, seed: number): Promise<void> {
  const rand = prng(seed ^ 0x5eed);
  for (let k = 0; k < count; k++) {
    const top = join(root, `i${k}`);
    await mkdir(join(top, 'sub', 'deeper'), { recursive: true });
    await mkdir(join(top, 'empty'), { recursive: true });
    for (let f = 0; f < 8; f++) {
      const dir = [top, join(top, 'sub'), join(top, 'sub', 'deeper')][f % 3]!;
      await writeFile(join(dir, `f${f}.bin`), f === 0 ? randomBytes(0) : bytes(rand, size(rand)));
    }
    await symlink('sub/f1.bin', join(top, 'link'));
    await link(join(top, 'f0.bin'), join(top, 'sub', 'hard-f0.bin'));
  }
}

/** A local tree as the model imports it: parents first, in name order, hard links after their first name. */
export async function readLocalTree(top: string): Promise<ImportedNode[]> {
  const out: ImportedNode[] = [];
  const seen = new Map<string, string>();
  const visit = async (rel: string): Promise<void> => {
    const path = rel === '' ? top : join(top, rel);
    const st = await lstat(path);
    const base = { rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    if (st.isDirectory()) {
      out.push({ ...base, kind: 'dir' });
      for (const name of (await readdir(path)).sort()) await visit(rel === '' ? name : `${rel}/${name}`);
    } else if (st.isSymbolicLink()) {
      out.push({ ...base, kind: 'symlink', mode: 0o777, target: await readlink(path) });
    } else {
      const key = `${st.dev}:${st.ino}`;
      const first = seen.get(key);
      if (first !== undefined) out.push({ ...base, kind: 'file', linkOf: first });
      else {
        if (st.nlink > 1) seen.set(key, rel);
        out.push({ ...base, kind: 'file', content: await readFile(path) });
      }
    }
  };
  await visit('');
  return out;
}

export interface Workload {
  steps: Step[];
  /** The model's listing before any step (states[0]) and after each (states[k] after k steps). */
  states: Listed[][];
}

/**
 * The workload for `seed`: `count` calls planned against a model of the
 * volume as it evolves, with an import of each of `trees` (the sources
 * i0, i1, … as readLocalTree reads them) spread among them.
 */
export function planWorkload(seed: number, count: number, trees: readonly ImportedNode[][], ids: { uid: number; gid: number }): Workload {
  const rand = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const model = new VolumeModel(0o755, ids.uid, ids.gid);
  const steps: Step[] = [];
  const states: Listed[][] = [model.list()];
  const importAt = new Map(trees.map((_tree, k) => [Math.floor(((k + 0.5) * count) / trees.length), k]));
  let n = 0;
  for (let i = 0; i < count; i++) {
    const k = importAt.get(i);
    if (k !== undefined) {
      steps.push({ kind: 'import', src: `i${k}`, path: `/imp${k}` });
      model.importTree(`/imp${k}`, trees[k]!);
      states.push(model.list());
      continue;
    }
    const listed = model.list();
    const dirs = listed.filter((l) => l.kind === 'dir').map((l) => l.path);
    const files = listed.filter((l) => l.kind === 'file').map((l) => l.path);
    const nodes = listed.filter((l) => l.path !== '/').map((l) => l.path);
    const fresh = (): string => {
      const d = pick(dirs);
      return `${d === '/' ? '' : d}/n${n++}`;
    };
    const r = rand();
    let op: VolOp;
    if (r < 0.15) op = { op: 'mkdir', path: fresh(), mode: 0o700 + Math.floor(rand() * 0o77) };
    else if (r < 0.4) op = { op: 'writeFile', path: fresh(), data: bytes(rand, size(rand)) };
    else if (r < 0.55 && files.length > 0) op = { op: 'writeFile', path: pick(files), data: bytes(rand, size(rand)) };
    else if (r < 0.65 && nodes.length > 0) {
      // Over an existing file half the time (refused when the source is a directory).
      op = { op: 'rename', from: pick(nodes), to: rand() < 0.5 && files.length > 0 ? pick(files) : fresh() };
    } else if (r < 0.72 && files.length > 0) op = { op: 'unlink', path: pick(files) };
    else if (r < 0.77 && dirs.length > 1) op = { op: 'rmdir', path: pick(dirs.filter((d) => d !== '/')) };
    else if (r < 0.82) op = { op: 'symlink', target: `../t${n}`, path: fresh() };
    else if (r < 0.87 && files.length > 0) op = { op: 'link', from: pick(files), to: fresh() };
    else if (r < 0.92 && nodes.length > 0) op = { op: 'chmod', path: pick(nodes), mode: Math.floor(rand() * 0o777) };
    else if (nodes.length > 0) op = { op: 'setxattr', path: pick(nodes), name: `user.k${Math.floor(rand() * 3)}`, value: bytes(rand, 1 + Math.floor(rand() * 40)) };
    else op = { op: 'mkdir', path: fresh() };
    model.apply(op, ids);
    steps.push({ kind: 'op', op });
    states.push(model.list());
  }
  return { steps, states };
}
