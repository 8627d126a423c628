// A generated directory tree for the volume acceptance tests, and a
// description of a tree that says everything an import/export round trip
// must keep: types, modes, owners, sizes, symlink targets, hard-link groups,
// mtimes to the microsecond and user.* extended attributes.
//
// The shape (names, sizes, modes, times) comes from a seeded generator, so a
// failure can be replayed with the seed it prints; file bytes come from
// AES-CTR keyed by the seed, which is deterministic too and far faster than
// a JavaScript generator for a gigabyte.

import { createCipheriv, createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { open, chmod, lchown, link, lstat, lutimes, mkdir, readdir, readlink, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { listXattrs, getXattr, setXattr } from '../../src/fs/xattr.js';
import { toUtimeArg } from '../../src/volume/import-export.js';
import { prng } from './prng.js';

export interface GenTreeOptions {
  seed: number;
  /** Regular files, hard-link names beyond a group's first not counted. */
  files: number;
  /** Bytes of the ordinary files together (log-normal sizes scaled to fit). */
  totalBytes: number;
  /** Files of `bigBytes` each, beside the ordinary ones (the issue allows at most 3 ≥ 64 MiB). */
  bigFiles: number;
  bigBytes: number;
  /** No ordinary file is larger than this. */
  maxFileBytes: number;
}

export interface GeneratedTree {
  /** Bytes of regular-file content written (each hard-link group once). */
  bytes: number;
  files: number;
  dirs: number;
  symlinks: number;
  /** Names added to hard-link groups beyond each group's first. */
  links: number;
  /** Distinctive ASCII strings written into file contents, for plaintext scans. */
  contentMarkers: string[];
  /** Distinctive file and directory names (ASCII parts), for plaintext scans. */
  nameMarkers: string[];
}

/** Names that break naive code: normalisation twins, emoji, CJK, spaces, newlines, backslashes, control characters, the longest allowed. */
export const AWKWARD_NAMES: readonly string[] = [
  'caf\u00e9', // NFC
  'cafe\u0301', // NFD of the same word: a different name to the file system
  '\u{1F4C1} folder \u{1F389}',
  '\u65e5\u672c\u8a9e\u306e\u30d5\u30a1\u30a4\u30eb',
  '\ud55c\uad6d\uc5b4 \uc774\ub984',
  'name with  spaces ',
  ' leading space',
  'new\nline',
  'back\\slash',
  'tab\tand\u0001control\u007f',
  'colon:in:name',
  '-starts-with-dash',
  '.hidden',
  '..two-dots',
  '*?[glob]{chars}',
  '\'quotes"and`ticks',
  '%s%n%x',
  'x'.repeat(255),
  '\u00e9'.repeat(127) + 'z', // 255 bytes of UTF-8 in 128 characters
  '\u{1F600}'.repeat(63) + 'abc', // 255 bytes of 4-byte characters
];

const FILE_MODES = [0o644, 0o600, 0o755, 0o444, 0o640, 0o700, 0o664, 0o4755, 0o2750, 0o400];
const DIR_MODES = [0o755, 0o2775, 0o700, 0o750, 0o1777, 0o2755, 0o555];
const OWNERS: ReadonlyArray<[number, number]> = [[0, 0], [1000, 1000], [65534, 65534], [12345, 54321], [0, 100], [4242, 0]];

/** The seeded generator the trees are made with. */
export const rng = prng;

/** Deterministic pseudo-random bytes: AES-256-CTR of zeros under a key from (seed, label). */
export function pseudoRandom(seed: number, label: string, size: number): Buffer {
  const key = createHash('sha256').update(`gen-tree/${seed}/${label}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

/** Writes `size` pseudo-random bytes to `path` in 4 MiB pieces, so big files never sit in memory whole. */
async function writePseudoRandom(path: string, seed: number, label: string, size: number, marker?: string): Promise<void> {
  const key = createHash('sha256').update(`gen-tree/${seed}/${label}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const fh = await open(path, 'wx', 0o600);
  try {
    const piece = 4 * 1024 * 1024;
    let first = true;
    for (let left = size; left > 0; left -= piece) {
      const buf = cipher.update(Buffer.alloc(Math.min(piece, left)));
      if (first && marker !== undefined) buf.write(marker, Math.min(64, Math.max(0, buf.length - marker.length)), 'latin1');
      first = false;
      await fh.write(buf);
    }
  } finally {
    await fh.close();
  }
}

function logNormal(r: () => number, mu: number, sigma: number): number {
  const u = Math.max(r(), 1e-12);
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  return Math.exp(mu + sigma * z);
}

/** A random, long, distinctive ASCII marker: nothing else in a home will contain it by chance. */
export function marker(r: () => number, tag: string): string {
  let s = '';
  for (let i = 0; i < 24; i++) s += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[Math.floor(r() * 26)];
  return `${tag}${s}`;
}

/**
 * Generates the tree under `root` (created here). Run as root: files are
 * chowned to other ids. Every node's mtime is set with microseconds, some
 * before 1970 and some in the future; directories last, deepest first.
 */
export async function generateTree(root: string, opts: GenTreeOptions): Promise<GeneratedTree> {
  const r = rng(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const out: GeneratedTree = { bytes: 0, files: 0, dirs: 0, symlinks: 0, links: 0, contentMarkers: [], nameMarkers: [] };

  // Directories: a random tree, about one per 12 files, some left empty.
  await mkdir(root);
  const dirs: string[] = [root];
  const dirCount = Math.max(12, Math.floor(opts.files / 12));
  for (let i = 0; i < dirCount; i++) {
    const parent = dirs[Math.floor(r() ** 2 * dirs.length)]!;
    const nm = marker(r, 'DIRNAME');
    // Long awkward names stay with files: nested directories of 255-byte names would pass PATH_MAX.
    const awkwardDir = AWKWARD_NAMES[i];
    const name = awkwardDir !== undefined && Buffer.byteLength(awkwardDir) < 64 && r() < 0.5 ? awkwardDir : i % 7 === 0 ? nm : `d${i}`;
    if (name === nm) out.nameMarkers.push(nm);
    const path = join(parent, name);
    try {
      await mkdir(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw err;
    }
    dirs.push(path);
  }
  // Normalisation twins side by side: two names to the file system, and to Bazil.
  await mkdir(join(root, 'twins'));
  await writeFile(join(root, 'twins', 'caf\u00e9'), 'nfc');
  await writeFile(join(root, 'twins', 'cafe\u0301'), 'nfd');
  out.files += 2;
  out.bytes += 6;
  await mkdir(join(root, 'twins', '\u00c5ngstr\u00f6m'));
  await mkdir(join(root, 'twins', 'A\u030angstro\u0308m'));
  dirs.push(join(root, 'twins'), join(root, 'twins', '\u00c5ngstr\u00f6m'), join(root, 'twins', 'A\u030angstro\u0308m'));
  // Nested empty directories, so an empty chain must survive too.
  await mkdir(join(root, 'empty', 'still empty', 'leer \u00e4'), { recursive: true });
  const fileDirs = dirs.slice();
  dirs.push(join(root, 'empty'), join(root, 'empty', 'still empty'), join(root, 'empty', 'still empty', 'leer \u00e4'));
  out.dirs = dirs.length;

  // Sizes: log-normal (median ~8 KiB), capped, scaled so they sum to the budget at most.
  const sizes: number[] = [];
  for (let i = 0; i < opts.files; i++) sizes.push(Math.min(opts.maxFileBytes, Math.floor(logNormal(r, Math.log(8192), 2.2))));
  const sum = sizes.reduce((a, b) => a + b, 0);
  const scale = sum > opts.totalBytes ? opts.totalBytes / sum : 1;

  const regular: string[] = [];
  const awkward = AWKWARD_NAMES.slice();
  const markerOf = new Map<number, string>();
  for (let i = 0; i < opts.files; i++) {
    const dir = pick(fileDirs);
    let name: string;
    if (awkward.length > 0 && r() < 0.3) name = awkward.shift()!;
    else if (i % 29 === 0) {
      name = `${marker(r, 'FILENAME')}.txt`;
      out.nameMarkers.push(name.slice(0, -4));
    } else name = `f${i}${pick(['', '.bin', '.txt', ' (copy)', '.tar.gz', '~'])}`;
    const path = join(dir, name);
    let size = Math.floor(sizes[i]! * scale);
    const kind = i % 41 === 0 ? 'empty' : i % 37 === 0 ? 'zeros' : i % 31 === 0 ? 'sparse' : i % 13 === 0 && i > 13 ? 'dup' : 'random';
    try {
      if (kind === 'empty') {
        size = 0;
        await writeFile(path, '', { flag: 'wx' });
      } else if (kind === 'zeros') {
        await writeFile(path, Buffer.alloc(size), { flag: 'wx' });
      } else if (kind === 'sparse') {
        // A hole, a few bytes, another hole: sparse on disk, zeros when read.
        size = Math.max(size, 300_000);
        await writeFile(path, '', { flag: 'wx' });
        const fh = await open(path, 'r+');
        try {
          await fh.write(pseudoRandom(opts.seed, `sparse-${i}`, 1000), 0, 1000, Math.floor(size / 2));
        } finally {
          await fh.close();
        }
        await truncate(path, size);
      } else if (kind === 'dup') {
        // Equal content to an earlier file: dedup inside one import.
        const j = i - 13;
        size = Math.floor(sizes[j]! * scale);
        await writePseudoRandom(path, opts.seed, `file-${j}`, size, markerOf.get(j));
      } else {
        const m = size >= 256 ? marker(r, 'CONTENT') : undefined;
        if (m !== undefined) {
          out.contentMarkers.push(m);
          markerOf.set(i, m);
        }
        await writePseudoRandom(path, opts.seed, `file-${i}`, size, m);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw err;
    }
    regular.push(path);
    out.files++;
    out.bytes += size;
  }
  for (let i = 0; i < opts.bigFiles; i++) {
    const path = join(pick(fileDirs), `big-${i}.bin`);
    const m = marker(r, 'BIGCONTENT');
    out.contentMarkers.push(m);
    await writePseudoRandom(path, opts.seed, `big-${i}`, opts.bigBytes, m);
    regular.push(path);
    out.files++;
    out.bytes += opts.bigBytes;
  }

  // Hard-link groups of 2 to 4 names, across directories.
  const groups = Math.max(3, Math.floor(opts.files / 60));
  for (let g = 0; g < groups; g++) {
    const first = regular[Math.floor(r() * regular.length)]!;
    const extra = 1 + Math.floor(r() * 3);
    for (let k = 0; k < extra; k++) {
      const path = join(pick(fileDirs), `hard-${g}-${k}`);
      try {
        await link(first, path);
        out.links++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }

  // Symlinks: relative, absolute, dangling, to directories, with awkward targets.
  const targets = [
    '../f1.bin', '/etc/hostname', '/nonexistent/absolute/target', 'dangling/ghost', '.', '..',
    'caf\u00e9', 'new\nline target', 'x'.repeat(1000), '\u{1F517}/\u65e5\u672c', 'back\\slash', '../../../../../../../../escape',
  ];
  for (let s = 0; s < Math.max(targets.length, Math.floor(opts.files / 40)); s++) {
    const target = s < targets.length ? targets[s]! : relative(pick(fileDirs), pick(regular)) || '.';
    const path = join(pick(fileDirs), `link-${s}`);
    await symlink(target, path);
    out.symlinks++;
  }

  // Extended attributes on files and directories: binary values, an empty one, a Unicode name.
  for (let x = 0; x < Math.max(8, Math.floor(opts.files / 20)); x++) {
    const path = x % 3 === 0 ? pick(dirs) : pick(regular);
    setXattr(path, `user.bin-${x}`, pseudoRandom(opts.seed, `xattr-${x}`, 1 + Math.floor(r() * 300)));
    if (x % 4 === 0) setXattr(path, 'user.empty', Buffer.alloc(0));
    if (x % 5 === 0) setXattr(path, 'user.\u043a\u043b\u044e\u0447 \u{1F511}', Buffer.from([0, 1, 2, 0, 255]));
  }

  // Modes and owners, then times: files and links first, directories deepest first.
  const all = await walk(root);
  for (const p of all) {
    const st = await lstat(p);
    const [uid, gid] = pick(OWNERS);
    await lchown(p, uid, gid);
    if (st.isDirectory()) await chmod(p, p === root ? 0o755 : pick(DIR_MODES));
    else if (st.isFile()) await chmod(p, pick(FILE_MODES));
  }
  const times = (): bigint => {
    const kind = r();
    const us = BigInt(Math.floor(r() * 1e6));
    // Before 1970, ordinary past, and the future (after 2038 too), inside what ext4 keeps (1901 to 2446).
    const sec = kind < 0.15 ? -BigInt(Math.floor(r() * 2e9)) : kind < 0.85 ? BigInt(Math.floor(r() * 1.7e9)) : 2_000_000_000n + BigInt(Math.floor(r() * 3e9));
    return (sec * 1_000_000n + us) * 1000n;
  };
  for (const p of all.slice().reverse()) {
    const t = toUtimeArg(times());
    const st = await lstat(p);
    if (st.isSymbolicLink()) await lutimes(p, t, t);
    else await utimes(p, t, t);
  }
  return out;
}

/** Every path under `dir` (itself first), depth first, directories before their entries. */
export async function walk(dir: string): Promise<string[]> {
  const out = [dir];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

export interface NodeDescription {
  type: 'dir' | 'file' | 'symlink' | 'other';
  mode: string;
  uid: number;
  gid: number;
  /** Files: bytes; symlinks: target bytes; directories: not compared. */
  size: number | null;
  target: string | null;
  /** Floor of the mtime in microseconds (what utimes keeps). */
  mtimeUs: string;
  /** Files: the sorted relative paths of every name of its inode. */
  linkGroup: string[] | null;
  /** user.* attributes, name → value in hex. */
  xattrs: Record<string, string>;
}

/** What must survive a round trip, per path relative to `root` ('.' for root itself). */
export async function describeTree(root: string): Promise<Map<string, NodeDescription>> {
  const out = new Map<string, NodeDescription>();
  const byInode = new Map<bigint, string[]>();
  const paths = await walk(root);
  const stats = new Map<string, BigIntStats>();
  for (const p of paths) {
    const st = await lstat(p, { bigint: true });
    stats.set(p, st);
    if (st.isFile()) {
      const names = byInode.get(st.ino) ?? [];
      names.push(relative(root, p));
      byInode.set(st.ino, names);
    }
  }
  for (const p of paths) {
    const st = stats.get(p)!;
    const rel = relative(root, p) || '.';
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
    const xattrs: Record<string, string> = {};
    for (const name of listXattrs(p).filter((n) => n.startsWith('user.')).sort()) xattrs[name] = getXattr(p, name).toString('hex');
    const ns = st.mtimeNs;
    const us = ns / 1000n - (ns < 0n && ns % 1000n !== 0n ? 1n : 0n);
    out.set(rel, {
      type,
      mode: type === 'symlink' ? '' : (st.mode & 0o7777n).toString(8),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === 'dir' ? null : Number(st.size),
      target: type === 'symlink' ? await readlink(p) : null,
      mtimeUs: us.toString(),
      linkGroup: type === 'file' ? byInode.get(st.ino)!.slice().sort() : null,
      xattrs,
    });
  }
  return out;
}

/** The differences between two descriptions, one line each (at most `limit`); [] when equal. */
export function compareDescriptions(expected: Map<string, NodeDescription>, actual: Map<string, NodeDescription>, limit = 20): string[] {
  const problems: string[] = [];
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (got === undefined) {
      problems.push(`${JSON.stringify(path)}: missing`);
      continue;
    }
    for (const key of Object.keys(want) as Array<keyof NodeDescription>) {
      const a = JSON.stringify(want[key]);
      const b = JSON.stringify(got[key]);
      if (a !== b) problems.push(`${JSON.stringify(path)}: ${key} ${a.slice(0, 200)} became ${b.slice(0, 200)}`);
    }
  }
  for (const path of actual.keys()) if (!expected.has(path)) problems.push(`${JSON.stringify(path)}: unexpected`);
  return problems.slice(0, limit);
}
