// The FUSE operations of a past state (docs/mount.md, "Past states"): a
// read-only tree over an as-of reader. Reads answer exactly what the live
// mount would have answered then; every operation that would change
// something answers EROFS, whatever the kernel lets through (a mount made
// with `ro` stops most writes in the kernel already, but `.snap/NAME` lives
// inside a read-write mount and sees them all).
//
// A past state never changes, so open files need no handle of the volume:
// reads go by path, and the file handle number only counts open files.

import { constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import type { Aggregates } from '../volume/aggregates.js';
import type { Attrs } from '../volume/reader.js';
import type { FuseOpContext, FuseOperations, FuseStat, FuseStatfs } from './binding.js';
import { errnoOf, inodeNumber, toFuseStat } from './ops.js';
import type { PastTree } from './past-tree.js';
import { withStatXattrs } from './stat-xattrs.js';

const E = osConstants.errno;
const { O_WRONLY, O_RDWR, O_TRUNC, W_OK } = fsConstants;
const O_ACCMODE = 0o3;
/** statvfs's f_flag bit for a read-only file system. */
export const ST_RDONLY = 1;
const READDIR_PAGE = 1024;
const MAX_FH = 0x7fffffff;

export interface ReadOnlyOpsOptions {
  /** The past state, fetched for each operation (the .snap cache may rebuild an evicted one). */
  tree: () => Promise<PastTree>;
  /** st_ino of an inode id in this tree; inodeNumber (the live numbers) by default. */
  ino?: (id: Uint8Array) => bigint;
  /** The space figures (the live volume's disk). */
  statfs: (signal: AbortSignal) => Promise<Omit<FuseStatfs, 'flag'>>;
  log?: (line: string) => void;
}

type Cb = (err: number) => void;
type MknodHandler = (ctx: FuseOpContext, path: string, mode: number, dev: number, cb: Cb) => void;

export interface ReadOnlyOps {
  readonly operations: FuseOperations & { mknod: MknodHandler };
  openCount(): number;
}

export function createReadOnlyOps(options: ReadOnlyOpsOptions): ReadOnlyOps {
  const ino = options.ino ?? inodeNumber;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const open = new Set<number>();
  let nextFh = 1;

  function fail(op: string, path: string, err: unknown): number {
    const errno = errnoOf(err);
    if (errno === -E.EIO) log(`bazil mount (read-only): ${op} ${path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return errno;
  }

  function answer<T>(op: string, path: string, work: () => Promise<T>, cb: (err: number, value?: T) => void): void {
    let running: Promise<T>;
    try {
      running = work();
    } catch (err) {
      return cb(fail(op, path, err));
    }
    running.then((value) => cb(0, value), (err: unknown) => cb(fail(op, path, err)));
  }

  function statOf(a: Attrs): FuseStat {
    return { ...toFuseStat(a), ino: ino(a.id) };
  }

  async function attrs(path: string, signal: AbortSignal): Promise<Attrs> {
    return (await options.tree()).reader.stat(path, { signal });
  }

  async function readdir(path: string, signal: AbortSignal): Promise<{ names: string[]; stats: FuseStat[] }> {
    const { reader } = await options.tree();
    const self = await reader.stat(path, { signal });
    const parent = path === '/' ? self : await reader.stat(posix.dirname(path), { signal });
    const names = ['.', '..'];
    const stats = [statOf(self), statOf(parent)];
    for (let after: string | undefined; ;) {
      const page = await reader.readdir(path, { after, limit: READDIR_PAGE, signal });
      for (const e of page) {
        names.push(e.name);
        stats.push(statOf(await reader.getattr(e.id, { signal })));
      }
      if (page.length < READDIR_PAGE) break;
      after = page[page.length - 1]!.name;
    }
    return { names, stats };
  }

  const erofs = (...args: unknown[]): void => (args[args.length - 1] as Cb)(-E.EROFS);

  const operations: ReadOnlyOps['operations'] = {
    init(cb) {
      cb(0);
    },
    statfs(ctx, _path, cb) {
      answer('statfs', '/', async () => ({ ...(await options.statfs(ctx.signal)), flag: ST_RDONLY }), cb);
    },
    getattr(ctx, path, cb) {
      answer('getattr', path, async () => statOf(await attrs(path, ctx.signal)), cb);
    },
    fgetattr(ctx, path, _fh, cb) {
      answer('fgetattr', path, async () => statOf(await attrs(path, ctx.signal)), cb);
    },
    access(ctx, path, mode, cb) {
      if ((mode & W_OK) !== 0) return cb(-E.EROFS);
      answer('access', path, () => attrs(path, ctx.signal), (err) => cb(err));
    },
    readdir(ctx, path, cb) {
      readdir(path, ctx.signal).then(({ names, stats }) => cb(0, names, stats), (err: unknown) => cb(fail('readdir', path, err)));
    },
    readlink(ctx, path, cb) {
      answer('readlink', path, async () => (await options.tree()).reader.readlink(path, { signal: ctx.signal }), cb);
    },
    open(ctx, path, flags, cb) {
      const access = flags & O_ACCMODE;
      if (access === O_WRONLY || access === O_RDWR || (flags & O_TRUNC) !== 0) return cb(-E.EROFS);
      answer('open', path, async () => {
        await attrs(path, ctx.signal);
        while (open.has(nextFh)) nextFh = nextFh >= MAX_FH ? 1 : nextFh + 1;
        const fh = nextFh;
        open.add(fh);
        return fh;
      }, cb);
    },
    read(ctx, path, _fh, buf, len, pos, cb) {
      (async () => (await options.tree()).reader.readFile(path, pos, len, { signal: ctx.signal }))().then(
        (data) => {
          data.copy(buf, 0, 0, Math.min(len, data.length));
          // fuse-native takes a read's byte count in the error slot.
          cb(Math.min(len, data.length));
        },
        (err: unknown) => cb(fail('read', path, err)),
      );
    },
    flush(_ctx, _path, _fh, cb) {
      cb(0);
    },
    fsync(_ctx, _path, _datasync, _fh, cb) {
      cb(0);
    },
    release(_ctx, _path, fh, cb) {
      open.delete(fh);
      cb(0);
    },
    getxattr(ctx, path, name, _position, cb) {
      answer('getxattr', path, async () => (await options.tree()).reader.getxattr(path, name, { signal: ctx.signal }), cb);
    },
    listxattr(ctx, path, cb) {
      answer('listxattr', path, async () => (await options.tree()).reader.listxattr(path, { signal: ctx.signal }), cb);
    },
    create: erofs,
    write: erofs,
    truncate: erofs,
    ftruncate: erofs,
    mknod: erofs,
    mkdir: erofs,
    symlink: erofs,
    link: erofs,
    unlink: erofs,
    rmdir: erofs,
    rename: erofs,
    chmod: erofs,
    chown: erofs,
    utimens: erofs,
    setxattr: erofs,
    removexattr: erofs,
  };

  const withStats = withStatXattrs(operations, {
    attrs,
    aggregates: async (a: Attrs): Promise<Aggregates> => (await options.tree()).aggregates(a),
  }, log);
  // Writing a computed attribute of a read-only tree is EROFS like any other write, not EPERM.
  withStats.setxattr = erofs;
  withStats.removexattr = erofs;
  return { operations: withStats, openCount: () => open.size };
}
