// A fault-injecting FileSystem for crash tests, after LevelDB's
// FaultInjectionTestEnv and SQLite's crash-test VFS.
//
// It wraps a real FileSystem (normally NodeFileSystem on a temp directory),
// passes every call through, and keeps just enough of a model to do three
// things:
//
// - Count. Each call of open, read, write, sync, truncate, punchHole, map,
//   rename, unlink, readdir, mkdirp, syncDir, exists and stat is one op,
//   numbered from 1, whether or not it then fails. `ops` is the count so far
//   and `log` (when asked for) lists them, so a test can run a workload once
//   and then replay it with a fault at every op number in turn. size() and
//   close() are not counted: size() is bookkeeping that cannot fail on a
//   healthy descriptor, and close() runs in cleanup paths where an injected
//   failure would only test the test.
// - Fail. failAt(n) makes op n (or, with a filter, the first matching op from
//   n on) throw BazilError(IO) whose cause has code EIO, once or from then on.
// - Cut the power. powerCutAt(n) cuts instead of performing op n; powerCut()
//   cuts at once. The wrapped directory is rewritten to what a disk would
//   hold after the cut (below), every descriptor is closed, and from then on
//   this object and every ArenaFile it handed out throw BazilError(IO,
//   'power cut'): the process is dead. A test then reopens the directory
//   with NodeFileSystem and checks what survived.
//
// The durability model:
//
// - File contents. A write, truncate or punchHole becomes durable when a
//   sync() of that file (through any handle), called after it, completes; a
//   sync still running when the power fails counts for nothing, and one that
//   fails commits nothing. Until then the wrapper keeps an undo record: the
//   size before the change and the bytes it destroyed (overwritten or cut
//   off). Appends destroy nothing, so they cost only a number. A cut applies
//   the pending records newest first, which leaves exactly the bytes of the
//   last completed sync. A file counts as durable as found when this wrapper
//   first sees it; a file it creates starts durable and empty.
// - Names. Creating (open 'create'), renaming and unlinking change directory
//   entries, and an entry becomes durable when a syncDir of its directory,
//   called after the change, completes. For every name changed since, the
//   wrapper remembers its durable binding: which file, or none. Unlink and
//   rename-over-an-existing-file therefore never delete: the displaced file
//   moves to a hidden name in the same directory (".fault-fs-...", left out
//   of readdir), so a cut can bring it back. Hidden files that no durable
//   name refers to any more are deleted when a syncDir makes that so. A
//   rename between directories changes two of them, each durable on its
//   own: a cut after syncing only one leaves the file under both names (the
//   second as a copy) or under neither, as a journaling file system may.
//
// Limits, each on purpose:
//
// - A cut loses unsynced writes whole and in order. Real disks may keep any
//   subset of them, torn at sector boundaries. Torn tails are better tested
//   by damaging files explicitly after the cut, where the test controls
//   exactly what the engine must recover from.
// - A sync that fails leaves its writes pending, so a later successful sync
//   commits them. Linux may instead drop the dirty pages after a failed
//   fsync ("fsyncgate"); an engine that retries a failed sync and trusts it
//   would pass here and lose data there, so treat a failed sync as fatal.
// - punchHole is modelled as a write of zeros: durable at the next completed
//   sync, and undone (the old bytes come back) by a cut before it. File
//   systems journal the deallocation as metadata that fdatasync need not
//   flush, so punched ranges reappearing after a crash is a real outcome; it
//   is harmless because only dead records are punched.
// - map() returns a private copy of the file's bytes when the wrapped layer
//   can map it, and null when it cannot, so the engine takes the same path
//   it would in production. A copy rather than the mapping itself, because a
//   cut truncates files underneath live mappings and touching a mapping past
//   the end of its file kills the process with SIGBUS instead of throwing.
//   Maps are only taken of sealed files, which do not change, so a copy
//   reads the same; the one difference is that a range punched after the
//   copy still shows its old bytes there.
// - Directories: mkdirp is durable at once (the interface has no rmdir with
//   which a cut could undo it), and renaming a directory is refused, since
//   the files tracked inside it would lose their place in the model.
// - The model only sees changes made through this instance. Anything else
//   writing the same directory (another FileSystem, another process) makes
//   its undo records wrong.

import { basename, dirname, join, resolve } from 'node:path';
import { BazilError, ErrorCodes, ioError, isBazilError } from '../errors/index.js';
import type { ArenaFile, FileStat, FileSystem, OpenMode } from './file-system.js';
import { nodeFileSystem } from './node-fs.js';

export type FaultOp =
  | 'open'
  | 'read'
  | 'write'
  | 'sync'
  | 'truncate'
  | 'punchHole'
  | 'map'
  | 'rename'
  | 'unlink'
  | 'readdir'
  | 'mkdirp'
  | 'syncDir'
  | 'exists'
  | 'stat';

export interface OpRecord {
  /** 1-based number of the op; equals `ops` right after it was counted. */
  readonly seq: number;
  readonly op: FaultOp;
  /** The path as the caller gave it (the source, for a rename). */
  readonly path: string;
  /** The destination of a rename. */
  readonly to?: string;
}

export interface FailOptions {
  /** Keep failing every matching op after the first. Default: fail one op only. */
  persistent?: boolean;
  /**
   * Which ops may fail: op names or a predicate (say, writes to one file).
   * The fault arms at op n and fires on the first matching op from there.
   */
  ops?: readonly FaultOp[] | ((op: OpRecord) => boolean);
}

export interface FaultFileSystemOptions {
  /** Keep a record of every op in `log`. Default false, to spare long runs the memory. */
  log?: boolean;
}

/** True for the error thrown by every call made at or after a power cut. */
export function isPowerCut(err: unknown): boolean {
  return isBazilError(err, ErrorCodes.IO) && err.data.powerCut === true;
}

function powerCutError(op: string, path: string): BazilError {
  return new BazilError(ErrorCodes.IO, 'power cut', { op, path, powerCut: true });
}

function injectedError(op: string, path: string): BazilError {
  const cause = Object.assign(new Error(`EIO: i/o error (injected), ${op} '${path}'`), {
    code: 'EIO',
    errno: -5,
    syscall: op,
    path,
  });
  return ioError(op, path, cause);
}

// Hidden names for displaced files. The pid and a per-process counter keep
// two wrappers over one directory from colliding.
const TRASH_PREFIX = '.fault-fs-';
let instances = 0;

interface FaultRule {
  readonly from: number;
  readonly persistent: boolean;
  readonly matches: (op: OpRecord) => boolean;
}

/**
 * The simulated process: it numbers ops, injects faults, owns the real
 * descriptors and dies at the power cut. Shared by the file system and its
 * handles so that both count and die together.
 */
class SimulatedProcess {
  ops = 0;
  readonly log: OpRecord[] | null;
  rules: FaultRule[] = [];
  /** Op number that cuts the power; 0 for none. */
  cutAt = 0;
  dead = false;
  readonly openFiles = new Set<ArenaFile>();
  readonly #cut: () => void;

  constructor(log: boolean, cut: () => void) {
    this.log = log ? [] : null;
    this.#cut = cut;
  }

  enter(op: FaultOp, path: string, to?: string): void {
    this.assertAlive(op, path);
    const seq = ++this.ops;
    const record: OpRecord = to === undefined ? { seq, op, path } : { seq, op, path, to };
    this.log?.push(record);
    if (seq === this.cutAt) {
      this.#cut();
      throw powerCutError(op, path);
    }
    const i = this.rules.findIndex((rule) => seq >= rule.from && rule.matches(record));
    if (i < 0) return;
    if (!this.rules[i].persistent) this.rules.splice(i, 1);
    throw injectedError(op, path);
  }

  assertAlive(op: string, path: string): void {
    if (this.dead) throw powerCutError(op, path);
  }

  /** Ops are numbered from 1 and an op number already used cannot fire. */
  checkFuture(n: number, what: string): void {
    if (!Number.isInteger(n) || n <= this.ops) {
      throw new BazilError(
        ErrorCodes.BAD_ARGUMENT,
        `${what}(${n}): expected a whole op number after ${this.ops}, the last op run`,
        { n, ops: this.ops },
      );
    }
  }
}

interface Undo {
  readonly sizeBefore: number;
  readonly position: number;
  /** The bytes at `position` that the change overwrote or cut off. */
  readonly saved: Uint8Array;
}

/** One file, wherever its name currently is, with its undo journal. */
class Inode {
  readonly id: number;
  /** Where the file is now: under its name, or under a hidden trash name. */
  path: string;
  trashed = false;
  /** The length as the model knows it; the undo records depend on it. */
  size: number;
  readonly #journal: Undo[] = [];
  // Sequence number of #journal[0]. A sync marks the end of the journal
  // when it is called and commits up to that mark when it completes, so
  // writes issued while it runs stay pending.
  #base = 0;

  constructor(id: number, path: string, size: number) {
    this.id = id;
    this.path = path;
    this.size = size;
  }

  /** Records what a change to [start, end) is about to destroy. */
  beforeChange(file: ArenaFile, start: number, end: number): void {
    const length = Math.max(0, Math.min(end, this.size) - start);
    const saved = new Uint8Array(length);
    const n = length === 0 ? 0 : file.read(saved, 0, length, start);
    this.#journal.push({ sizeBefore: this.size, position: start, saved: saved.subarray(0, n) });
  }

  mark(): number {
    return this.#base + this.#journal.length;
  }

  commit(mark: number): void {
    if (mark <= this.#base) return;
    this.#journal.splice(0, mark - this.#base);
    this.#base = mark;
  }

  /** Puts back the durable bytes by undoing every pending change, newest first. */
  rollBack(fs: FileSystem): void {
    if (this.#journal.length === 0) return;
    const file = fs.open(this.path, 'rw');
    try {
      for (let i = this.#journal.length - 1; i >= 0; i--) {
        const undo = this.#journal[i];
        if (undo.saved.length > 0) file.write(undo.saved, 0, undo.saved.length, undo.position);
        file.truncate(undo.sizeBefore);
      }
    } finally {
      file.close();
    }
    this.#journal.length = 0;
  }
}

class FaultArenaFile implements ArenaFile {
  readonly path: string;
  readonly #inner: ArenaFile;
  readonly #inode: Inode;
  readonly #process: SimulatedProcess;

  constructor(path: string, inner: ArenaFile, inode: Inode, process: SimulatedProcess) {
    this.path = path;
    this.#inner = inner;
    this.#inode = inode;
    this.#process = process;
  }

  size(): number {
    this.#process.assertAlive('size', this.path);
    return this.#inner.size();
  }

  read(buf: Uint8Array, offset: number, length: number, position: number): number {
    this.#process.enter('read', this.path);
    return this.#inner.read(buf, offset, length, position);
  }

  // The undo record is kept even when the real call fails: a failed write
  // may have landed in part, and undoing it restores the same bytes anyway.
  write(buf: Uint8Array, offset: number, length: number, position: number): void {
    this.#process.enter('write', this.path);
    this.#inode.beforeChange(this.#inner, position, position + length);
    this.#inner.write(buf, offset, length, position);
    if (length > 0) this.#inode.size = Math.max(this.#inode.size, position + length);
  }

  async sync(): Promise<void> {
    this.#process.enter('sync', this.path);
    const mark = this.#inode.mark();
    try {
      await this.#inner.sync();
    } catch (err) {
      this.#process.assertAlive('sync', this.path);
      throw err;
    }
    this.#process.assertAlive('sync', this.path);
    this.#inode.commit(mark);
  }

  truncate(length: number): void {
    this.#process.enter('truncate', this.path);
    this.#inode.beforeChange(this.#inner, length, Infinity);
    this.#inner.truncate(length);
    this.#inode.size = length;
  }

  startWriteback(position: number, length: number): void {
    // A hint with no effect on durability: not counted (crash points stay
    // those of real I/O), and not passed on, so the model stays exact.
    void position;
    void length;
    this.#process.assertAlive('startWriteback', this.path);
  }

  punchHole(position: number, length: number): void {
    this.#process.enter('punchHole', this.path);
    this.#inode.beforeChange(this.#inner, position, position + length);
    this.#inner.punchHole(position, length);
  }

  map(): Uint8Array | null {
    this.#process.enter('map', this.path);
    const view = this.#inner.map();
    return view === null ? null : view.slice();
  }

  close(): void {
    this.#process.assertAlive('close', this.path);
    this.#process.openFiles.delete(this.#inner);
    this.#inner.close();
  }
}

export class FaultFileSystem implements FileSystem {
  readonly #inner: FileSystem;
  readonly #process: SimulatedProcess;
  readonly #tag = `${process.pid}-${++instances}`;
  #nextInode = 1;
  /** Files the model knows, by resolved path. */
  readonly #byPath = new Map<string, Inode>();
  /** Displaced files kept under hidden names for a cut to bring back. */
  readonly #trash = new Set<Inode>();
  /** Per directory: each name changed since its last syncDir, with its durable binding. */
  readonly #dirty = new Map<string, Map<string, Inode | null>>();
  // syncDir calls are numbered so that one completing after a later one
  // cannot roll a directory's durable state back to its own older view.
  #dirSyncs = 0;
  readonly #dirCommitted = new Map<string, number>();

  constructor(inner: FileSystem = nodeFileSystem, options: FaultFileSystemOptions = {}) {
    this.#inner = inner;
    this.#process = new SimulatedProcess(options.log ?? false, () => this.powerCut());
  }

  /** Ops counted so far. */
  get ops(): number {
    return this.#process.ops;
  }

  /** Every op counted, when the `log` option is on; null otherwise. */
  get log(): readonly OpRecord[] | null {
    return this.#process.log;
  }

  /** Whether the power has been cut. */
  get isCut(): boolean {
    return this.#process.dead;
  }

  /**
   * Makes op number `n` (absolute, 1-based, as in `ops` and `log`) throw
   * BazilError(IO) with an EIO cause instead of running. With `ops`, the
   * first matching op numbered n or later fails instead. Faults add up.
   */
  failAt(n: number, options: FailOptions = {}): void {
    this.#process.checkFuture(n, 'failAt');
    const filter = options.ops;
    const matches =
      filter === undefined
        ? () => true
        : typeof filter === 'function'
          ? filter
          : (record: OpRecord) => filter.includes(record.op);
    this.#process.rules.push({ from: n, persistent: options.persistent ?? false, matches });
  }

  /** Makes op number `n` cut the power instead of running; the op throws. */
  powerCutAt(n: number): void {
    this.#process.checkFuture(n, 'powerCutAt');
    this.#process.cutAt = n;
  }

  /** Removes every pending failure and power cut. */
  clearFaults(): void {
    this.#process.rules = [];
    this.#process.cutAt = 0;
  }

  /**
   * Cuts the power now: closes every descriptor, rewrites the directories
   * to their durable state and kills this file system. Cutting twice does
   * nothing more.
   */
  powerCut(): void {
    if (this.#process.dead) return;
    this.#process.dead = true;
    for (const file of this.#process.openFiles) {
      try {
        file.close();
      } catch {
        // The process these descriptors belonged to is gone; a failed close
        // has nobody to report to and does not change what is on disk.
      }
    }
    this.#process.openFiles.clear();

    for (const inode of this.#byPath.values()) inode.rollBack(this.#inner);
    for (const inode of this.#trash) inode.rollBack(this.#inner);

    // First clear every name whose durable binding is not what is there
    // now, then put each durable file back: a file may be due under a name
    // that is occupied until a later entry is cleared.
    const wanted = new Map<string, Inode>();
    for (const [dir, names] of this.#dirty) {
      for (const [name, durable] of names) {
        const path = join(dir, name);
        const current = this.#byPath.get(path);
        if (current === durable) continue;
        if (current !== undefined) this.#moveToTrash(current);
        if (durable !== null) wanted.set(path, durable);
      }
    }
    for (const [path, inode] of wanted) {
      if (inode.trashed) this.#restoreFromTrash(inode, path);
      else copyFile(this.#inner, inode.path, path);
    }
    for (const inode of this.#trash) this.#inner.unlink(inode.path);

    this.#trash.clear();
    this.#byPath.clear();
    this.#dirty.clear();
  }

  open(path: string, mode: OpenMode): ArenaFile {
    this.#process.enter('open', path);
    const key = resolve(path);
    const file = this.#inner.open(path, mode);
    let inode: Inode;
    if (mode === 'create') {
      this.#noteChange(key, null);
      inode = this.#track(key, 0);
    } else {
      inode = this.#byPath.get(key) ?? this.#track(key, file.size());
    }
    this.#process.openFiles.add(file);
    return new FaultArenaFile(path, file, inode, this.#process);
  }

  rename(from: string, to: string): void {
    this.#process.enter('rename', from, to);
    const src = resolve(from);
    const dst = resolve(to);
    const moving = src === dst ? null : this.#bindingAt(src);
    if (moving === 'directory') {
      throw new BazilError(
        ErrorCodes.BAD_ARGUMENT,
        `rename ${from}: FaultFileSystem models renames of files, not directories`,
        { op: 'rename', path: from },
      );
    }
    const replaced = moving === null ? null : this.#bindingAt(dst);
    // Nothing to model: the real call renames a file onto itself or fails
    // with the proper error (no source, or a directory in the way).
    if (moving === null || replaced === 'directory') {
      this.#inner.rename(from, to);
      return;
    }
    this.#noteChange(src, moving);
    this.#noteChange(dst, replaced);
    if (replaced !== null) this.#moveToTrash(replaced);
    try {
      this.#inner.rename(from, to);
    } catch (err) {
      if (replaced !== null) this.#restoreFromTrash(replaced, dst);
      throw err;
    }
    this.#byPath.delete(src);
    this.#byPath.set(dst, moving);
    moving.path = dst;
  }

  unlink(path: string): void {
    this.#process.enter('unlink', path);
    const key = resolve(path);
    const victim = this.#bindingAt(key);
    // A missing file or a directory: let the real call fail as it should.
    if (victim === null || victim === 'directory') {
      this.#inner.unlink(path);
      return;
    }
    this.#noteChange(key, victim);
    this.#moveToTrash(victim);
  }

  readdir(dir: string): string[] {
    this.#process.enter('readdir', dir);
    return this.#inner.readdir(dir).filter((name) => !name.startsWith(TRASH_PREFIX));
  }

  mkdirp(dir: string): void {
    this.#process.enter('mkdirp', dir);
    this.#inner.mkdirp(dir);
  }

  async syncDir(dir: string): Promise<void> {
    this.#process.enter('syncDir', dir);
    const key = resolve(dir);
    const ticket = ++this.#dirSyncs;
    // The bindings as they are now are what this sync makes durable.
    const atCall = new Map<string, Inode | null>();
    for (const name of this.#dirty.get(key)?.keys() ?? []) {
      atCall.set(name, this.#byPath.get(join(key, name)) ?? null);
    }
    try {
      await this.#inner.syncDir(dir);
    } catch (err) {
      this.#process.assertAlive('syncDir', dir);
      throw err;
    }
    this.#process.assertAlive('syncDir', dir);
    if ((this.#dirCommitted.get(key) ?? 0) > ticket) return;
    this.#dirCommitted.set(key, ticket);
    if (atCall.size === 0) return;

    const names = this.#dirtyNames(key);
    for (const [name, durable] of atCall) {
      // A name changed again after the call stays dirty, durable as it was
      // at the call; one back to that binding (or never changed) is clean.
      if ((this.#byPath.get(join(key, name)) ?? null) === durable) names.delete(name);
      else names.set(name, durable);
    }
    if (names.size === 0) this.#dirty.delete(key);
    this.#collectTrash();
  }

  exists(path: string): boolean {
    this.#process.enter('exists', path);
    return this.#inner.exists(path);
  }

  stat(path: string): FileStat {
    this.#process.enter('stat', path);
    return this.#inner.stat(path);
  }

  #track(key: string, size: number): Inode {
    const inode = new Inode(this.#nextInode++, key, size);
    this.#byPath.set(key, inode);
    return inode;
  }

  /** The file at `key` now, brought into the model if it was not in it yet. */
  #bindingAt(key: string): Inode | null | 'directory' {
    const known = this.#byPath.get(key);
    if (known !== undefined) return known;
    if (!this.#inner.exists(key)) return null;
    if (this.#isDirectory(key)) return 'directory';
    return this.#track(key, this.#inner.stat(key).size);
  }

  // FileSystem offers no lstat; readdir succeeds on a directory only.
  #isDirectory(key: string): boolean {
    try {
      this.#inner.readdir(key);
      return true;
    } catch {
      return false;
    }
  }

  #dirtyNames(dir: string): Map<string, Inode | null> {
    let names = this.#dirty.get(dir);
    if (names === undefined) {
      names = new Map();
      this.#dirty.set(dir, names);
    }
    return names;
  }

  /** Remembers the durable binding of a name the first time it changes. */
  #noteChange(key: string, before: Inode | null): void {
    const names = this.#dirtyNames(dirname(key));
    const name = basename(key);
    if (!names.has(name)) names.set(name, before);
  }

  #moveToTrash(inode: Inode): void {
    const hidden = join(dirname(inode.path), `${TRASH_PREFIX}${this.#tag}-${inode.id}`);
    this.#inner.rename(inode.path, hidden);
    this.#byPath.delete(inode.path);
    inode.path = hidden;
    inode.trashed = true;
    this.#trash.add(inode);
  }

  #restoreFromTrash(inode: Inode, key: string): void {
    this.#inner.rename(inode.path, key);
    this.#trash.delete(inode);
    inode.trashed = false;
    inode.path = key;
    this.#byPath.set(key, inode);
  }

  /** Deletes displaced files that no durable name refers to any more. */
  #collectTrash(): void {
    const referenced = new Set<Inode | null>();
    for (const names of this.#dirty.values()) for (const durable of names.values()) referenced.add(durable);
    for (const inode of this.#trash) {
      if (referenced.has(inode)) continue;
      this.#inner.unlink(inode.path);
      this.#trash.delete(inode);
    }
  }
}

function copyFile(fs: FileSystem, from: string, to: string): void {
  const src = fs.open(from, 'r');
  try {
    const dst = fs.open(to, 'create');
    try {
      const buf = new Uint8Array(64 * 1024);
      for (let position = 0; ; ) {
        const n = src.read(buf, 0, buf.length, position);
        if (n === 0) break;
        dst.write(buf, 0, n, position);
        position += n;
      }
    } finally {
      dst.close();
    }
  } finally {
    src.close();
  }
}
