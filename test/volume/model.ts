// An in-memory POSIX tree for the volume-level tests: the operations of the
// Volume facade on paths, with the errno each refuses with, applied to plain
// objects. The property tests run a random sequence against both and
// compare them after every step; the power-cut test replays its workload on
// it to know what must have survived.
//
// Times: the volume stamps ctime (and mtime where none is given) from each
// event's clock, which the model cannot know. It numbers instead each
// node's ctime changes ("epochs") and records mtime and atime as either an
// explicit value or "the ctime of epoch k"; compareWith checks that ctime
// rises exactly when the model says it changes, and that mtime and atime
// are what the model says.

import { createHash } from 'node:crypto';
import { BazilError } from '../../errors/index.js';
import type { TimeSpec } from '../../src/log/event.js';
import type { Attrs, DirEntry } from '../../src/volume/reader.js';

export type Kind = 'dir' | 'file' | 'symlink';

/**
 * When a time is the ctime a node took at one of its epochs, rather than a
 * value given by the caller; `ino` names another node than the one holding
 * the time (a copy keeps its source's times).
 */
interface AtEpoch {
  epoch: number;
  ino?: number;
}

interface MNode {
  ino: number;
  kind: Kind;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  content: Buffer;
  target: string | null;
  xattrs: Map<string, Buffer>;
  entries: Map<string, number>;
  epoch: number;
  mtime: bigint | AtEpoch;
  /** 'mtime' until set: the projection reports mtime for an atime never given. */
  atime: bigint | AtEpoch | 'mtime';
}

/** One call of the Volume facade. */
export type VolOp =
  | { op: 'mkdir'; path: string; mode?: number; uid?: number; gid?: number; mtimeNs?: bigint }
  | { op: 'writeFile'; path: string; data: Uint8Array; mode?: number; uid?: number; gid?: number }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'link'; from: string; to: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'unlink'; path: string }
  | { op: 'rmdir'; path: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'chown'; path: string; uid: number | null; gid: number | null }
  | { op: 'utimens'; path: string; atime: TimeSpec; mtime: TimeSpec }
  | { op: 'setxattr'; path: string; name: string; value: Uint8Array }
  | { op: 'removexattr'; path: string; name: string }
  | { op: 'reflink'; from: string; to: string };

/** The Volume methods the operations call (a Volume satisfies it). */
export interface VolumeWriter {
  mkdir(path: string, options?: { mode?: number; uid?: number; gid?: number; mtimeNs?: bigint }): Promise<unknown>;
  writeFile(path: string, data: Uint8Array, options?: { mode?: number; uid?: number; gid?: number }): Promise<unknown>;
  symlink(target: string, path: string): Promise<unknown>;
  link(from: string, to: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number | null, gid: number | null): Promise<void>;
  utimens(path: string, atime: TimeSpec, mtime: TimeSpec): Promise<void>;
  setxattr(path: string, name: string, value: Uint8Array): Promise<void>;
  removexattr(path: string, name: string): Promise<void>;
  reflink(from: string, to: string): Promise<unknown>;
}

/** The Volume methods compareWith reads through (a Volume or VolumeReader satisfies it). */
export interface VolumeView {
  stat(path: string): Promise<Attrs>;
  readdir(path: string, options?: { after?: string; limit?: number }): Promise<DirEntry[]>;
  readFile(path: string): Promise<Buffer>;
  readlink(path: string): Promise<string>;
  listxattr(path: string): Promise<string[]>;
  getxattr(path: string, name: string): Promise<Buffer>;
}

/** Runs `op` on the volume: null when it succeeds, else the errno it failed with (or the error code when it has none). */
export async function runOp(v: VolumeWriter, op: VolOp): Promise<string | null> {
  try {
    switch (op.op) {
      case 'mkdir': await v.mkdir(op.path, { mode: op.mode, uid: op.uid, gid: op.gid, mtimeNs: op.mtimeNs }); break;
      case 'writeFile': await v.writeFile(op.path, op.data, { mode: op.mode, uid: op.uid, gid: op.gid }); break;
      case 'symlink': await v.symlink(op.target, op.path); break;
      case 'link': await v.link(op.from, op.to); break;
      case 'rename': await v.rename(op.from, op.to); break;
      case 'unlink': await v.unlink(op.path); break;
      case 'rmdir': await v.rmdir(op.path); break;
      case 'chmod': await v.chmod(op.path, op.mode); break;
      case 'chown': await v.chown(op.path, op.uid, op.gid); break;
      case 'utimens': await v.utimens(op.path, op.atime, op.mtime); break;
      case 'setxattr': await v.setxattr(op.path, op.name, op.value); break;
      case 'removexattr': await v.removexattr(op.path, op.name); break;
      case 'reflink': await v.reflink(op.from, op.to); break;
    }
    return null;
  } catch (err) {
    if (!(err instanceof BazilError)) throw err;
    const errno = err.data.errno;
    return typeof errno === 'string' ? errno : err.code;
  }
}

/** A thrown errno, inside the model. */
class Refused extends Error {
  constructor(readonly errno: string) {
    super(errno);
  }
}

const NAME_MAX = 255;
const PATH_MAX = 4096;
const MODE_MAX = 0o7777;
const XATTR_VALUE_MAX = 64 * 1024;

/** The names of a volume path, refusing what any call refuses before looking anything up. */
function names(path: string): string[] {
  if (!path.startsWith('/') || path.includes('\0')) throw new Refused('EINVAL');
  if (Buffer.byteLength(path) >= PATH_MAX) throw new Refused('ENAMETOOLONG');
  if (path === '/') return [];
  const parts = (path.endsWith('/') ? path.slice(1, -1) : path.slice(1)).split('/');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..') throw new Refused('EINVAL');
    if (Buffer.byteLength(p) > NAME_MAX) throw new Refused('ENAMETOOLONG');
  }
  return parts;
}

function parentAndName(path: string): { parent: string[]; name: string } {
  const n = names(path);
  const name = n.pop();
  if (name === undefined) throw new Refused('EINVAL');
  return { parent: n, name };
}

/** A call as one line: byte strings by length, long strings cut. */
export function describeOp(op: VolOp | { kind: 'import'; src: string; path: string }): string {
  const shown = Object.fromEntries(Object.entries(op).map(([k, v]: [string, unknown]) => [k,
    typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `<${v.length} bytes>` : typeof v === 'string' && v.length > 40 ? `${v.slice(0, 20)}…(${v.length})` : v]));
  return JSON.stringify(shown);
}

export function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 16);
}

/** One node as compared: by path, depth first, entries in UTF-8 byte order. */
export interface Listed {
  path: string;
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  /** Short hash of a file's bytes; null otherwise. */
  content: string | null;
  target: string | null;
  xattrs: string[];
  /** The model's inode number, or the volume's inode id (hex): equal for the names of one inode. */
  ino: string;
}

export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export class VolumeModel {
  private readonly nodes = new Map<number, MNode>();
  private nextIno = 2;
  readonly root = 1;

  constructor(rootMode: number, uid: number, gid: number) {
    this.nodes.set(this.root, this.node(this.root, 'dir', rootMode, uid, gid, null));
  }

  clone(): VolumeModel {
    const m = new VolumeModel(0, 0, 0);
    for (const [k, n] of this.nodes) {
      m.nodes.set(k, { ...n, content: Buffer.from(n.content), xattrs: new Map(n.xattrs), entries: new Map(n.entries) });
    }
    m.nextIno = this.nextIno;
    return m;
  }

  private node(ino: number, kind: Kind, mode: number, uid: number, gid: number, target: string | null): MNode {
    return {
      ino, kind, mode, uid, gid, nlink: kind === 'dir' ? 2 : 1, content: Buffer.alloc(0), target, xattrs: new Map(), entries: new Map(),
      epoch: 1, mtime: { epoch: 1 }, atime: 'mtime',
    };
  }

  private get(ino: number): MNode {
    return this.nodes.get(ino)!;
  }

  /** Every path, root first, depth first in byte order: what tests pick operands from. */
  paths(): string[] {
    return this.list().map((l) => l.path);
  }

  /** The node at a path, or undefined. */
  lookup(path: string): { kind: Kind; xattrs: string[] } | undefined {
    try {
      const n = this.get(this.walk(names(path)));
      return { kind: n.kind, xattrs: [...n.xattrs.keys()] };
    } catch {
      return undefined;
    }
  }

  private walk(parts: readonly string[]): number {
    let cur = this.root;
    for (const p of parts) {
      const n = this.get(cur);
      if (n.kind !== 'dir') throw new Refused('ENOTDIR');
      const child = n.entries.get(p);
      if (child === undefined) throw new Refused('ENOENT');
      cur = child;
    }
    return cur;
  }

  private dirAt(parts: readonly string[]): MNode {
    const n = this.get(this.walk(parts));
    if (n.kind !== 'dir') throw new Refused('ENOTDIR');
    return n;
  }

  private touch(n: MNode, mtime = false): void {
    n.epoch++;
    if (mtime) n.mtime = { epoch: n.epoch };
  }

  private newEntry(path: string): { dir: MNode; name: string } {
    const { parent, name } = parentAndName(path);
    const dir = this.dirAt(parent);
    if (dir.entries.has(name)) throw new Refused('EEXIST');
    return { dir, name };
  }

  private attach(dir: MNode, name: string, n: MNode): void {
    dir.entries.set(name, n.ino);
    if (n.kind === 'dir') dir.nlink++;
    this.touch(dir, true);
  }

  private detach(dir: MNode, name: string, n: MNode): void {
    dir.entries.delete(name);
    if (n.kind === 'dir') dir.nlink--;
    this.touch(dir, true);
  }

  private create(kind: Kind, path: string, mode: number, uid: number, gid: number, target: string | null): MNode {
    const { dir, name } = this.newEntry(path);
    const n = this.node(this.nextIno++, kind, mode, uid, gid, target);
    this.nodes.set(n.ino, n);
    this.attach(dir, name, n);
    return n;
  }

  private existing(path: string): { dir: MNode; name: string; n: MNode } {
    const { parent, name } = parentAndName(path);
    const dir = this.dirAt(parent);
    const ino = dir.entries.get(name);
    if (ino === undefined) throw new Refused('ENOENT');
    return { dir, name, n: this.get(ino) };
  }

  private below(ancestor: MNode, ino: number): boolean {
    if (ancestor.ino === ino) return true;
    return [...ancestor.entries.values()].some((c) => this.get(c).kind === 'dir' && this.below(this.get(c), ino));
  }

  /** The one link of `n` at (dir, name) goes away. */
  private dropLink(n: MNode): void {
    n.nlink = n.kind === 'dir' ? 0 : n.nlink - 1;
    this.touch(n);
    if (n.nlink === 0) this.nodes.delete(n.ino);
  }

  /**
   * Applies `op` as the volume should: null when it succeeds (the model has
   * changed), else the errno it must fail with (the model is unchanged).
   * `ids` are the process's uid and gid, the default owner of new nodes.
   */
  apply(op: VolOp, ids: { uid: number; gid: number }): string | null {
    // Every failure is found before the first change, as in the facade, so a refused op leaves the model as it was.
    try {
      this.run(op, ids);
      return null;
    } catch (err) {
      if (err instanceof Refused) return err.errno;
      throw err;
    }
  }

  private run(op: VolOp, ids: { uid: number; gid: number }): void {
    switch (op.op) {
      case 'mkdir': {
        // The facade checks arguments when it builds the event, after the path.
        this.newEntry(op.path);
        checkMode(op.mode);
        const n = this.create('dir', op.path, op.mode ?? 0o755, op.uid ?? ids.uid, op.gid ?? ids.gid, null);
        if (op.mtimeNs !== undefined) n.mtime = op.mtimeNs;
        return;
      }
      case 'writeFile': {
        checkMode(op.mode);
        const { parent, name } = parentAndName(op.path);
        const dir = this.dirAt(parent);
        const ino = dir.entries.get(name);
        let n: MNode;
        if (ino === undefined) {
          n = this.create('file', op.path, op.mode ?? 0o644, op.uid ?? ids.uid, op.gid ?? ids.gid, null);
        } else {
          n = this.get(ino);
          if (n.kind !== 'file') throw new Refused('EISDIR');
        }
        n.content = Buffer.from(op.data);
        this.touch(n, true);
        return;
      }
      case 'symlink': {
        this.newEntry(op.path);
        if (op.target === '' || op.target.includes('\0')) throw new Refused('EINVAL');
        this.create('symlink', op.path, 0o777, ids.uid, ids.gid, op.target);
        return;
      }
      case 'link': {
        const n = this.get(this.walk(names(op.from)));
        if (n.kind === 'dir') throw new Refused('EPERM');
        const { dir, name } = this.newEntry(op.to);
        n.nlink++;
        this.touch(n);
        this.attach(dir, name, n);
        return;
      }
      case 'rename': {
        parentAndName(op.from);
        const dst = parentAndName(op.to);
        const src = this.existing(op.from);
        const to = this.dirAt(dst.parent);
        const isDir = src.n.kind === 'dir';
        if (isDir && this.below(src.n, to.ino)) throw new Refused('EINVAL');
        const tIno = to.entries.get(dst.name);
        if (tIno === src.n.ino) return;
        if (tIno !== undefined) {
          const t = this.get(tIno);
          if (isDir && t.kind !== 'dir') throw new Refused('ENOTDIR');
          if (!isDir && t.kind === 'dir') throw new Refused('EISDIR');
          if (t.kind === 'dir' && t.entries.size > 0) throw new Refused('ENOTEMPTY');
          this.detach(to, dst.name, t);
          this.dropLink(t);
        }
        this.detach(src.dir, src.name, src.n);
        this.touch(src.n);
        this.attach(to, dst.name, src.n);
        return;
      }
      case 'unlink': {
        const e = this.existing(op.path);
        if (e.n.kind === 'dir') throw new Refused('EISDIR');
        this.detach(e.dir, e.name, e.n);
        this.dropLink(e.n);
        return;
      }
      case 'rmdir': {
        const e = this.existing(op.path);
        if (e.n.kind !== 'dir') throw new Refused('ENOTDIR');
        if (e.n.entries.size > 0) throw new Refused('ENOTEMPTY');
        this.detach(e.dir, e.name, e.n);
        this.dropLink(e.n);
        return;
      }
      case 'chmod': {
        const n = this.get(this.walk(names(op.path)));
        checkMode(op.mode);
        n.mode = op.mode;
        this.touch(n);
        return;
      }
      case 'chown': {
        const n = this.get(this.walk(names(op.path)));
        if (op.uid === null && op.gid === null) throw new Refused('EINVAL');
        if (op.uid !== null) n.uid = op.uid;
        if (op.gid !== null) n.gid = op.gid;
        this.touch(n);
        return;
      }
      case 'utimens': {
        const n = this.get(this.walk(names(op.path)));
        if (op.atime === null && op.mtime === null) throw new Refused('EINVAL');
        this.touch(n);
        if (op.mtime !== null) n.mtime = op.mtime === 'now' ? { epoch: n.epoch } : op.mtime;
        if (op.atime !== null) n.atime = op.atime === 'now' ? { epoch: n.epoch } : op.atime;
        return;
      }
      case 'setxattr': {
        const n = this.get(this.walk(names(op.path)));
        if (op.name === '' || op.name.includes('\0')) throw new Refused('EINVAL');
        if (Buffer.byteLength(op.name) > NAME_MAX) throw new Refused('ENAMETOOLONG');
        if (op.value.length > XATTR_VALUE_MAX) throw new Refused('E2BIG');
        n.xattrs.set(op.name, Buffer.from(op.value));
        this.touch(n);
        return;
      }
      case 'removexattr': {
        const n = this.get(this.walk(names(op.path)));
        if (!n.xattrs.has(op.name)) throw new Refused('ENODATA');
        n.xattrs.delete(op.name);
        this.touch(n);
        return;
      }
      case 'reflink': {
        const src = this.get(this.walk(names(op.from)));
        const dst = parentAndName(op.to);
        if (src.kind === 'dir') {
          // A copy into the source's own tree: any directory on the way to the target's parent is the source.
          for (let k = 0; k <= dst.parent.length; k++) {
            let ino: number;
            try {
              ino = this.walk(dst.parent.slice(0, k));
            } catch {
              break;
            }
            if (ino === src.ino) throw new Refused('EINVAL');
          }
        }
        const { dir, name } = this.newEntry(op.to);
        this.attach(dir, name, this.deepCopy(src));
        return;
      }
    }
  }

  /** A copy of `src` and, for a directory, of everything below it: new nodes, the same attributes, content and times. */
  private deepCopy(src: MNode): MNode {
    const timeOf = <T>(t: T | AtEpoch): T | AtEpoch => (typeof t === 'object' && t !== null && 'epoch' in t ? { epoch: t.epoch, ino: t.ino ?? src.ino } : t);
    const n: MNode = {
      ...this.node(this.nextIno++, src.kind, src.mode, src.uid, src.gid, src.target),
      content: Buffer.from(src.content), xattrs: new Map(src.xattrs), mtime: timeOf(src.mtime), atime: timeOf(src.atime),
    };
    this.nodes.set(n.ino, n);
    for (const [name, c] of src.entries) {
      const child = this.deepCopy(this.get(c));
      n.entries.set(name, child.ino);
      if (child.kind === 'dir') n.nlink++;
    }
    return n;
  }

  /**
   * Adds a whole tree under the new directory `path`, as an import of a
   * local directory does: `tree` maps relative paths (parents first) to
   * nodes with their attributes as the local file system had them.
   */
  importTree(path: string, tree: readonly ImportedNode[]): void {
    for (const t of tree) {
      const full = t.rel === '' ? path : `${path}/${t.rel}`;
      if (t.linkOf !== undefined) {
        this.run({ op: 'link', from: t.linkOf === '' ? path : `${path}/${t.linkOf}`, to: full }, { uid: 0, gid: 0 });
        continue;
      }
      const n = this.create(t.kind, full, t.mode, t.uid, t.gid, t.target ?? null);
      if (t.content !== undefined) n.content = Buffer.from(t.content);
    }
  }

  /** The tree, depth first in byte order. */
  list(): Listed[] {
    const out: Listed[] = [];
    const visit = (ino: number, path: string): void => {
      const n = this.get(ino);
      out.push({
        path: path === '' ? '/' : path, kind: n.kind, mode: n.mode, uid: n.uid, gid: n.gid,
        size: n.kind === 'file' ? n.content.length : n.kind === 'symlink' ? Buffer.byteLength(n.target!) : 0,
        nlink: n.nlink, content: n.kind === 'file' ? sha(n.content) : null, target: n.target,
        xattrs: [...n.xattrs].sort((a, b) => byteOrder(a[0], b[0])).map(([k, v]) => `${k}=${v.toString('hex')}`),
        ino: String(n.ino),
      });
      for (const name of [...n.entries.keys()].sort(byteOrder)) visit(n.entries.get(name)!, `${path}/${name}`);
    };
    visit(this.root, '');
    return out;
  }

  /** Time expectations per listed path, for TimeChecker. */
  times(): Map<string, { ino: string; epoch: number; mtime: bigint | AtEpoch; atime: bigint | AtEpoch | 'mtime' }> {
    const out = new Map<string, { ino: string; epoch: number; mtime: bigint | AtEpoch; atime: bigint | AtEpoch | 'mtime' }>();
    const visit = (ino: number, path: string): void => {
      const n = this.get(ino);
      out.set(path === '' ? '/' : path, { ino: String(ino), epoch: n.epoch, mtime: n.mtime, atime: n.atime });
      for (const [name, c] of n.entries) visit(c, `${path}/${name}`);
    };
    visit(this.root, '');
    return out;
  }
}

/** A node of a local tree given to importTree. */
export interface ImportedNode {
  /** Relative to the import's top; '' for the top itself. */
  rel: string;
  kind: Kind;
  mode: number;
  uid: number;
  gid: number;
  content?: Uint8Array;
  target?: string;
  /** A hard link: the relative path of the first name of the same file. */
  linkOf?: string;
}

function checkMode(mode: number | undefined): void {
  if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > MODE_MAX)) throw new Refused('EINVAL');
}

/** The volume's tree listed the way VolumeModel.list lists the model, with times kept aside for TimeChecker. */
export async function listVolume(v: VolumeView): Promise<{ listed: Listed[]; times: Map<string, Attrs> }> {
  const listed: Listed[] = [];
  const times = new Map<string, Attrs>();
  const visit = async (path: string): Promise<void> => {
    const a = await v.stat(path);
    times.set(path, a);
    const xattrs: string[] = [];
    for (const name of (await v.listxattr(path)).sort(byteOrder)) xattrs.push(`${name}=${(await v.getxattr(path, name)).toString('hex')}`);
    listed.push({
      path, kind: a.kind, mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, nlink: a.nlink,
      content: a.kind === 'file' ? sha(await v.readFile(path)) : null,
      target: a.kind === 'symlink' ? await v.readlink(path) : null,
      xattrs, ino: a.id.toString('hex'),
    });
    if (a.kind !== 'dir') return;
    // Pages of three exercise `after`; they come in the projection's hash order, the listing is in name order.
    const names: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await v.readdir(path, { after, limit: 3 });
      names.push(...page.map((e) => e.name));
      if (page.length < 3) break;
      after = page[page.length - 1]!.name;
    }
    for (const name of names.sort(byteOrder)) await visit(path === '/' ? `/${name}` : `${path}/${name}`);
  };
  await visit('/');
  return { listed, times };
}

/**
 * Compares a volume listing with the model's: the same paths in the same
 * order with the same attributes, and inode identity the same partition
 * (names of one model inode share one volume id, and only they). Returns
 * the differences, empty when they agree.
 */
export function diffListings(actual: readonly Listed[], expected: readonly Listed[]): string[] {
  const problems: string[] = [];
  const a = new Map(actual.map((l) => [l.path, l]));
  const e = new Map(expected.map((l) => [l.path, l]));
  for (const [path, want] of e) {
    const got = a.get(path);
    if (got === undefined) {
      problems.push(`${path}: missing`);
      continue;
    }
    for (const k of ['kind', 'mode', 'uid', 'gid', 'size', 'nlink', 'content', 'target'] as const) {
      if (got[k] !== want[k]) problems.push(`${path}: ${k} is ${String(got[k])}, expected ${String(want[k])}`);
    }
    if (got.xattrs.join(',') !== want.xattrs.join(',')) problems.push(`${path}: xattrs [${got.xattrs.join(',')}], expected [${want.xattrs.join(',')}]`);
  }
  for (const path of a.keys()) if (!e.has(path)) problems.push(`${path}: present, expected absent`);
  if (problems.length === 0) {
    const order = (list: readonly Listed[]): string => list.map((l) => l.path).join('\n');
    if (order(actual) !== order(expected)) problems.push('entries listed in another order');
    const groups = (list: readonly Listed[]): string => {
      const byIno = new Map<string, string[]>();
      for (const l of list) byIno.set(l.ino, [...(byIno.get(l.ino) ?? []), l.path]);
      return [...byIno.values()].map((g) => g.join('|')).sort().join('\n');
    };
    if (groups(actual) !== groups(expected)) problems.push(`hard-link groups differ:\n${groups(actual)}\nexpected\n${groups(expected)}`);
  }
  return problems;
}

/**
 * Follows each inode's ctime across steps: it must rise when the model says
 * the node changed and stay put otherwise; mtime and atime must be the
 * explicit value the model holds, or the ctime of the epoch it names.
 */
export class TimeChecker {
  /** Per volume inode id: the ctime seen at each model epoch, and the last epoch seen. */
  private readonly seen = new Map<string, { epochs: Map<number, bigint>; last: number }>();
  /** Model inode → volume inode id, learned as nodes are seen (a copy's times name its source's epochs). */
  private readonly ids = new Map<string, string>();

  check(model: VolumeModel, volumeTimes: Map<string, Attrs>): string[] {
    const problems: string[] = [];
    for (const [path, want] of model.times()) {
      const got = volumeTimes.get(path);
      if (got !== undefined) this.ids.set(want.ino, got.id.toString('hex'));
    }
    for (const [path, want] of model.times()) {
      const got = volumeTimes.get(path);
      if (got === undefined) continue;
      const id = got.id.toString('hex');
      let s = this.seen.get(id);
      if (s === undefined) this.seen.set(id, (s = { epochs: new Map(), last: 0 }));
      const atEpoch = s.epochs.get(want.epoch);
      if (atEpoch !== undefined && atEpoch !== got.ctime) problems.push(`${path}: ctime changed to ${got.ctime} though the node did not (was ${atEpoch})`);
      if (want.epoch > s.last) {
        const before = s.epochs.get(s.last);
        if (before !== undefined && got.ctime <= before) problems.push(`${path}: ctime ${got.ctime} did not rise after a change (was ${before})`);
        // Epochs passed within one step are stamps of that step's events: the last of them is what shows.
        for (let e = s.last + 1; e <= want.epoch; e++) s.epochs.set(e, got.ctime);
        s.last = want.epoch;
      }
      const resolve = (t: bigint | AtEpoch): bigint | undefined => {
        if (typeof t === 'bigint') return t;
        if (t.ino === undefined) return s.epochs.get(t.epoch);
        const other = this.ids.get(String(t.ino));
        return other === undefined ? undefined : this.seen.get(other)?.epochs.get(t.epoch);
      };
      const mtime = resolve(want.mtime);
      if (mtime !== undefined && got.mtime !== mtime) problems.push(`${path}: mtime ${got.mtime}, expected ${mtime}`);
      const atime = want.atime === 'mtime' ? got.mtime : resolve(want.atime);
      if (atime !== undefined && got.atime !== atime) problems.push(`${path}: atime ${got.atime}, expected ${atime}`);
    }
    return problems;
  }
}
