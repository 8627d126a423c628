// The FUSE operations of a read-write mount, over one Volume (docs/mount.md).
//
// Each handler turns a libfuse call into volume calls and answers with 0, a
// value, or -errno. The rules every handler follows:
// - reads pass the operation's AbortSignal down, so a timed-out read stops;
// - a mutation calls ctx.claim() immediately before the volume call that
//   commits it, and does nothing if the operation already timed out
//   (docs/fuse.md, "Timeouts");
// - a BazilError's data.errno is the answer; anything else is EIO, logged.
//
// Open files live in a table of handle numbers (the fh libfuse hands back),
// so reads and writes go to the volume's file handle, not to a path: a file
// renamed or unlinked while open keeps working through its handles.
//
// libfuse's high-level API hides an unlinked open file by renaming it to
// `.fuse_hiddenXXXX` (unless hard_remove, which this binding cannot combine
// with fd operations: without nullpath_ok libfuse then fails them with
// ENOENT). Such a rename is turned into an unlink in the volume plus an alias
// kept here, so no hidden name ever reaches the log or a listing; the
// volume's handle keeps the inode alive until it is released, and libfuse's
// final unlink of the hidden name only drops the alias.

import { constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { Attrs, FileHandle, OpenFlags, Volume } from '../volume/volume.js';
import type { FuseOpContext, FuseOperations, FuseStat, FuseStatfs } from './binding.js';

const E = osConstants.errno;
const { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFIFO, S_IFSOCK, O_WRONLY, O_RDWR, O_APPEND, O_TRUNC } = fsConstants;
/** Linux's access-mode mask of open flags (Node does not export it). */
const O_ACCMODE = 0o3;
const S_ISGID = 0o2000;
const PERMISSION_BITS = 0o7777;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
/** chown passes (uid_t)-1 for "leave unchanged". */
const UNCHANGED_ID = 0xffffffff;
const HIDDEN_PREFIX = '.fuse_hidden';
const READDIR_PAGE = 1024;
const STAT_BLOCK = 512;
const IO_BLOCK = 4096;
/** libfuse keeps fh as int32 on the way back from JS; 0 means "no handle". */
const MAX_FH = 0x7fffffff;

const KIND_BITS: Record<Attrs['kind'], number> = {
  dir: S_IFDIR, file: S_IFREG, symlink: S_IFLNK, fifo: S_IFIFO, socket: S_IFSOCK,
};

// ---- conversions ----

/**
 * A stable st_ino from an inode id (the id of the event that created it):
 * its first 8 bytes, kept below 2^62: signed 64-bit readers see it
 * positive, and the numbers from 2^62 up are left to `.snap` (snap-dir.ts),
 * so a past state's inodes never share a number with a live one. Hard
 * links share the id, hence the number.
 */
export function inodeNumber(id: Uint8Array): bigint {
  const n = Buffer.from(id.buffer, id.byteOffset, id.byteLength).readBigUInt64BE(0) & 0x3fff_ffff_ffff_ffffn;
  return n === 0n ? 1n : n;
}

export function toFuseStat(a: Attrs): FuseStat {
  return {
    mode: KIND_BITS[a.kind] | (a.mode & PERMISSION_BITS),
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    nlink: a.nlink,
    ino: inodeNumber(a.id),
    atime: a.atime,
    mtime: a.mtime,
    ctime: a.ctime,
    blksize: IO_BLOCK,
    blocks: Math.ceil(a.size / STAT_BLOCK),
  };
}

/** The -errno answer for a failure: the error's own errno when it has one. */
export function errnoOf(err: unknown): number {
  if (err instanceof BazilError) {
    const name = err.data['errno'];
    if (typeof name === 'string') {
      const n = (E as Record<string, number | undefined>)[name];
      if (n !== undefined) return -n;
    }
    switch (err.code) {
      case ErrorCodes.NOT_FOUND: return -E.ENOENT;
      case ErrorCodes.ALREADY_EXISTS: return -E.EEXIST;
      case ErrorCodes.NOT_A_DIRECTORY: return -E.ENOTDIR;
      case ErrorCodes.IS_A_DIRECTORY: return -E.EISDIR;
      case ErrorCodes.NOT_EMPTY: return -E.ENOTEMPTY;
      case ErrorCodes.NAME_TOO_LONG: return -E.ENAMETOOLONG;
      case ErrorCodes.BAD_ARGUMENT: return -E.EINVAL;
      case ErrorCodes.ABORTED: return -E.EINTR;
      case ErrorCodes.CLOSED: return -E.ENOTCONN;
      default: return -E.EIO;
    }
  }
  return -E.EIO;
}

/** The file-type part of a mknod mode, as the volume names it. */
function nodeKind(mode: number): 'file' | 'fifo' | 'socket' | undefined {
  switch (mode & S_IFMT) {
    case 0: case S_IFREG: return 'file';
    case S_IFIFO: return 'fifo';
    case S_IFSOCK: return 'socket';
    default: return undefined;
  }
}

function openFlags(flags: number): OpenFlags {
  const access = flags & O_ACCMODE;
  return {
    read: access !== O_WRONLY,
    write: access === O_WRONLY || access === O_RDWR,
    append: (flags & O_APPEND) !== 0,
    truncate: (flags & O_TRUNC) !== 0,
  };
}

// ---- the operations ----

export interface MountOpsOptions {
  /** Unexpected failures (answered EIO) are reported here. */
  log?: (line: string) => void;
}

/** The mknod handler fuse-native calls, which binding.ts does not type. */
type MknodHandler = (ctx: FuseOpContext, path: string, mode: number, dev: number, cb: (err: number) => void) => void;

export interface VolumeOps {
  readonly operations: FuseOperations & { mknod: MknodHandler };
  /** Open handles: the daemon waits for them (and releases them) before closing the volume. */
  openCount(): number;
  releaseAll(): Promise<void>;
}

interface OpenFile {
  handle: FileHandle;
}

interface Owner {
  uid: number;
  gid: number;
  setgid: boolean;
}

function ownerUnder(ctx: FuseOpContext, parent: Attrs): Owner {
  const setgid = (parent.mode & S_ISGID) !== 0;
  return { uid: ctx.uid, gid: setgid ? parent.gid : ctx.gid, setgid };
}

export function createVolumeOps(volume: Volume, options: MountOpsOptions): VolumeOps {
  const files = new Map<number, OpenFile>();
  /** Hidden name → inode id of an unlinked, still open file. */
  const hidden = new Map<string, Buffer>();
  let nextFh = 1;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));

  function fail(op: string, _path: string, err: unknown): number {
    const errno = errnoOf(err);
    if (errno === -E.EIO) log(`bazil mount: ${op}: ${describeWithoutNames(err)}`);
    return errno;
  }

  /** Answers cb with the value of a side-effect-free piece of work. */
  function answer<T>(op: string, path: string, work: Promise<T>, cb: (err: number, value?: T) => void): void {
    work.then((value) => cb(0, value), (err: unknown) => cb(fail(op, path, err)));
  }

  /** Runs a mutation only if the operation is still ours to answer. */
  function mutate(ctx: FuseOpContext, op: string, path: string, work: () => Promise<unknown>, cb: (err: number) => void): void {
    if (!ctx.claim()) return cb(-E.ETIMEDOUT);
    let running: Promise<unknown>;
    try {
      running = work();
    } catch (err) {
      return cb(fail(op, path, err));
    }
    running.then(() => cb(0), (err: unknown) => cb(fail(op, path, err)));
  }

  /**
   * Answers cb at once when `now` could do the work in this tick (true) or
   * failed; false: nothing was done, go the async way. Nothing is committed
   * here, so there is nothing to claim against the operation's timeout.
   */
  function settledNow(op: string, path: string, now: () => boolean, cb: (err: number) => void): boolean {
    let done: boolean;
    try {
      done = now();
    } catch (err) {
      cb(fail(op, path, err));
      return true;
    }
    if (done) cb(0);
    return done;
  }

  function addFile(handle: FileHandle): number {
    while (files.has(nextFh)) nextFh = nextFh >= MAX_FH ? 1 : nextFh + 1;
    const fh = nextFh;
    nextFh = nextFh >= MAX_FH ? 1 : nextFh + 1;
    files.set(fh, { handle });
    return fh;
  }

  function fileOf(fh: number, path: string): OpenFile {
    const file = files.get(fh);
    if (file === undefined) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `no open file ${fh} for ${JSON.stringify(path)}`, { path, errno: 'EBADF' });
    return file;
  }

  async function attrsAt(path: string, signal: AbortSignal): Promise<Attrs> {
    const alias = hidden.get(path);
    return alias !== undefined ? volume.getattr(alias, { signal }) : volume.stat(path, { signal });
  }

  /**
   * attrsAt without a promise when the projection can answer at once
   * (Volume.statNow): getattr is the most frequent request, and a lookup of a
   * missing name (every create starts with one) answers its errno without an
   * Error being built. A number is the -errno answer; null: ask attrsAt
   * (never with `id`, an open file's inode, read by id as getattrNow does).
   */
  function attrsNow(op: string, path: string, id?: Uint8Array): Attrs | number | null {
    let a;
    try {
      const known = id ?? hidden.get(path);
      a = known !== undefined ? volume.getattrNow(known) : volume.statNow(path);
    } catch (err) {
      return fail(op, path, err);
    }
    if (a === null) return null;
    return 'miss' in a ? -E[a.miss] : a;
  }

  /** getattr's and access's answer: at once when attrsNow can, else through attrsAt. */
  function answerAttrs(op: string, path: string, signal: AbortSignal, cb: (err: number, stat?: FuseStat) => void): void {
    const now = attrsNow(op, path);
    if (now === null) answer(op, path, attrsAt(path, signal).then(toFuseStat), cb);
    else if (typeof now === 'number') cb(now);
    else cb(0, toFuseStat(now));
  }

  /** Owner of a new node: the caller, except that a setgid directory hands down its group (and, to directories, the bit). */
  async function newOwner(ctx: FuseOpContext, path: string, signal: AbortSignal): Promise<Owner> {
    return newOwnerNow(ctx, path) ?? ownerUnder(ctx, await volume.stat(posix.dirname(path), { signal }));
  }

  /** newOwner without a promise when the projection answers at once; null: ask newOwner (a miss or a pending copy, so its error is stat's own). */
  function newOwnerNow(ctx: FuseOpContext, path: string): Owner | null {
    const now = volume.statNow(posix.dirname(path));
    return now !== null && !('miss' in now) ? ownerUnder(ctx, now) : null;
  }

  async function statfs(signal: AbortSignal): Promise<FuseStatfs> {
    const st = await volume.statfs({ signal });
    return { ...st, favail: st.ffree, fsid: 0, flag: 0 };
  }

  async function readdir(path: string, signal: AbortSignal): Promise<{ names: string[]; stats: FuseStat[] }> {
    const self = await volume.stat(path, { signal });
    const parent = path === '/' ? self : await volume.stat(posix.dirname(path), { signal });
    const names = ['.', '..'];
    const stats = [toFuseStat(self), toFuseStat(parent)];
    let after: string | undefined;
    for (;;) {
      const page = await volume.readdir(path, { after, limit: READDIR_PAGE, signal });
      if (page.length === 0) break;
      const attrs = await Promise.all(page.map((e) => volume.getattr(e.id, { signal }).catch(() => undefined)));
      page.forEach((e, i) => {
        const a = attrs[i];
        // An entry removed between the page and its getattr is simply not listed.
        if (a === undefined) return;
        names.push(e.name);
        stats.push(toFuseStat(a));
      });
      after = page[page.length - 1]!.name;
      if (page.length < READDIR_PAGE) break;
    }
    return { names, stats };
  }

  const operations: VolumeOps['operations'] = {
    init(cb) {
      cb(0);
    },

    statfs(ctx, _path, cb) {
      answer('statfs', '/', statfs(ctx.signal), cb);
    },

    getattr(ctx, path, cb) {
      answerAttrs('getattr', path, ctx.signal, cb);
    },

    fgetattr(ctx, path, fh, cb) {
      const file = files.get(fh);
      if (file === undefined) return answerAttrs('fgetattr', path, ctx.signal, cb);
      const a = attrsNow('fgetattr', path, file.handle.id)!;
      if (typeof a === 'number') cb(a);
      else cb(0, toFuseStat(a));
    },

    access(ctx, path, _mode, cb) {
      // default_permissions makes the kernel check the mode bits itself; what remains is existence.
      answerAttrs('access', path, ctx.signal, (err) => cb(err));
    },

    readdir(ctx, path, cb) {
      readdir(path, ctx.signal).then(({ names, stats }) => cb(0, names, stats), (err: unknown) => cb(fail('readdir', path, err)));
    },

    readlink(ctx, path, cb) {
      answer('readlink', path, volume.readlink(path, { signal: ctx.signal }), cb);
    },

    open(ctx, path, flags, cb) {
      const wanted = openFlags(flags);
      if (wanted.write === true || wanted.truncate === true) {
        if (!ctx.claim()) return cb(-E.ETIMEDOUT);
      }
      volume.open(path, wanted, { signal: ctx.signal }).then(
        (handle) => cb(0, addFile(handle)),
        (err: unknown) => cb(fail('open', path, err)),
      );
    },

    create(ctx, path, mode, cb) {
      // Straight to the volume when the parent reads at once: one promise chain less per create.
      let owner: Owner | null;
      try {
        owner = newOwnerNow(ctx, path);
      } catch (err) {
        return cb(fail('create', path, err));
      }
      if (owner !== null) {
        if (!ctx.claim()) return cb(-E.ETIMEDOUT);
        volume.create(path, { mode: mode & PERMISSION_BITS, uid: owner.uid, gid: owner.gid, read: true, write: true }).then(
          (handle) => cb(0, addFile(handle)),
          (err: unknown) => cb(fail('create', path, err)),
        );
        return;
      }
      (async () => {
        const owner = await newOwner(ctx, path, ctx.signal);
        if (!ctx.claim()) return -E.ETIMEDOUT;
        const handle = await volume.create(path, { mode: mode & PERMISSION_BITS, uid: owner.uid, gid: owner.gid, read: true, write: true });
        return addFile(handle);
      })().then((fh) => (fh < 0 ? cb(fh) : cb(0, fh)), (err: unknown) => cb(fail('create', path, err)));
    },

    read(ctx, path, fh, buf, len, pos, cb) {
      // Answered in this tick: a read never waits (read-ahead.ts), and a
      // promise per request was a visible share of a read's cost. Straight
      // into libfuse's buffer, which stays valid until answered.
      let n: number;
      try {
        n = fileOf(fh, path).handle.readIntoNow(buf.length === len ? buf : buf.subarray(0, len), pos, ctx.signal);
      } catch (err) {
        return cb(fail('read', path, err));
      }
      // fuse-native takes a read's byte count in the error slot.
      cb(n);
    },

    write(ctx, path, fh, buf, len, pos, cb) {
      let file: OpenFile;
      try {
        file = fileOf(fh, path);
      } catch (err) {
        return cb(fail('write', path, err));
      }
      // The buffer is libfuse's and is detached once answered; the handle copies it before its call returns.
      const data = buf.subarray(0, len);
      if (!ctx.claim()) return cb(-E.ETIMEDOUT);
      file.handle.write(pos, data).then((n) => cb(n), (err: unknown) => cb(fail('write', path, err)));
    },

    flush(ctx, path, fh, cb) {
      const file = files.get(fh);
      if (file === undefined) return cb(0);
      // Every close sends a flush: a clean file's is answered in this tick.
      if (settledNow('flush', path, () => file.handle.flushNow(), cb)) return;
      mutate(ctx, 'flush', path, () => file.handle.flush(), cb);
    },

    fsync(ctx, path, _datasync, fh, cb) {
      const file = files.get(fh);
      if (file === undefined) return cb(0);
      mutate(ctx, 'fsync', path, () => file.handle.fsync(), cb);
    },

    fsyncdir(ctx, path, _datasync, _fh, cb) {
      // A directory's entries are events in the one log: syncing it makes them durable, with everything before them.
      answer('fsyncdir', path, volume.sync({ signal: ctx.signal }), (err) => cb(err));
    },

    release(ctx, path, fh, cb) {
      const file = files.get(fh);
      files.delete(fh);
      if (file === undefined) return cb(0);
      if (settledNow('release', path, () => file.handle.releaseNow(), cb)) return;
      mutate(ctx, 'release', path, () => file.handle.release(), cb);
    },

    truncate(ctx, path, size, cb) {
      mutate(ctx, 'truncate', path, () => volume.truncate(path, size), cb);
    },

    ftruncate(ctx, path, fh, size, cb) {
      let file: OpenFile;
      try {
        file = fileOf(fh, path);
      } catch (err) {
        return cb(fail('ftruncate', path, err));
      }
      mutate(ctx, 'ftruncate', path, () => file.handle.truncate(size), cb);
    },

    mknod(ctx, path, mode, _dev, cb) {
      const kind = nodeKind(mode);
      // Devices need an event type the log does not have yet.
      if (kind === undefined) return cb(-E.EPERM);
      (async () => {
        const owner = await newOwner(ctx, path, ctx.signal);
        if (!ctx.claim()) return -E.ETIMEDOUT;
        const attrs = { mode: mode & PERMISSION_BITS, uid: owner.uid, gid: owner.gid };
        if (kind === 'file') await (await volume.create(path, { ...attrs, exclusive: true })).release();
        else await volume.mknod(path, kind, attrs);
        return 0;
      })().then((r) => cb(r), (err: unknown) => cb(fail('mknod', path, err)));
    },

    mkdir(ctx, path, mode, cb) {
      (async () => {
        const owner = await newOwner(ctx, path, ctx.signal);
        if (!ctx.claim()) return -E.ETIMEDOUT;
        const bits = (mode & PERMISSION_BITS) | (owner.setgid ? S_ISGID : 0);
        await volume.mkdir(path, { mode: bits, uid: owner.uid, gid: owner.gid });
        return 0;
      })().then((r) => cb(r), (err: unknown) => cb(fail('mkdir', path, err)));
    },

    symlink(ctx, target, path, cb) {
      (async () => {
        const owner = await newOwner(ctx, path, ctx.signal);
        if (!ctx.claim()) return -E.ETIMEDOUT;
        await volume.symlink(target, path, { uid: owner.uid, gid: owner.gid });
        return 0;
      })().then((r) => cb(r), (err: unknown) => cb(fail('symlink', path, err)));
    },

    link(ctx, existing, path, cb) {
      mutate(ctx, 'link', path, () => volume.link(existing, path), cb);
    },

    unlink(ctx, path, cb) {
      if (hidden.delete(path)) return cb(0);
      mutate(ctx, 'unlink', path, () => volume.unlink(path), cb);
    },

    rmdir(ctx, path, cb) {
      mutate(ctx, 'rmdir', path, () => volume.rmdir(path), cb);
    },

    rename(ctx, from, to, cb) {
      if (posix.basename(to).startsWith(HIDDEN_PREFIX)) {
        // libfuse hiding an open file it was asked to remove (see the top of this file).
        mutate(ctx, 'rename', from, async () => {
          const id = await volume.resolve(from);
          await volume.unlink(from);
          hidden.set(to, id);
        }, cb);
        return;
      }
      mutate(ctx, 'rename', from, () => volume.rename(from, to), cb);
    },

    chmod(ctx, path, mode, cb) {
      mutate(ctx, 'chmod', path, () => volume.chmod(path, mode & PERMISSION_BITS), cb);
    },

    chown(ctx, path, uid, gid, cb) {
      mutate(ctx, 'chown', path, () => volume.chown(path, uid === UNCHANGED_ID ? null : uid, gid === UNCHANGED_ID ? null : gid), cb);
    },

    utimens(ctx, path, atime, mtime, cb) {
      mutate(ctx, 'utimens', path, () => volume.utimens(path, atime, mtime), cb);
    },

    setxattr(ctx, path, name, value, _position, flags, cb) {
      const copy = Buffer.from(value);
      (async () => {
        if ((flags & (XATTR_CREATE | XATTR_REPLACE)) !== 0) {
          const exists = await volume.getxattr(path, name, { signal: ctx.signal }).then(() => true, (err: unknown) => {
            if (errnoOf(err) === -E.ENODATA) return false;
            throw err;
          });
          if ((flags & XATTR_CREATE) !== 0 && exists) return -E.EEXIST;
          if ((flags & XATTR_REPLACE) !== 0 && !exists) return -E.ENODATA;
        }
        if (!ctx.claim()) return -E.ETIMEDOUT;
        await volume.setxattr(path, name, copy);
        return 0;
      })().then((r) => cb(r), (err: unknown) => cb(fail('setxattr', path, err)));
    },

    getxattr(ctx, path, name, _position, cb) {
      answer('getxattr', path, volume.getxattr(path, name, { signal: ctx.signal }), cb);
    },

    listxattr(ctx, path, cb) {
      answer('listxattr', path, volume.listxattr(path, { signal: ctx.signal }), cb);
    },

    removexattr(ctx, path, name, cb) {
      mutate(ctx, 'removexattr', path, () => volume.removexattr(path, name), cb);
    },
  };

  return {
    operations,
    openCount: () => files.size,
    async releaseAll() {
      const open = [...files.values()];
      files.clear();
      hidden.clear();
      await Promise.allSettled(open.map((f) => f.handle.release()));
    },
  };
}

/**
 * An unexpected error as the daemon's log may hold it: the log is a file of
 * the home, and the home holds no plaintext name (docs/crypto.md), so the
 * message (which may quote a path or a name) is left out and only the error's
 * kind, stable code and stack frames are kept.
 */
export function describeWithoutNames(err: unknown): string {
  if (!(err instanceof Error)) return 'a non-Error value was thrown';
  const code = (err as { code?: unknown }).code;
  const frames = (err.stack ?? '').split('\n').filter((line) => line.startsWith('    at ')).join('\n');
  return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}${frames ? `\n${frames}` : ''}`;
}
