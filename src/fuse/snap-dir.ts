// `DIR/.snap/` in a live mount (docs/mount.md, "Snapshots in the mount"):
// the volume's snapshots as directories, each the read-only past state it
// names; `mkdir .snap/NAME` takes a snapshot and `rmdir .snap/NAME` removes
// the name (both one event, as `bazil snapshot create|rm`).
//
// `.snap` is not listed in the root (so `find`, `du`, `tar` and `cp -r` of
// the mount do not descend into every past state) but every lookup of it
// answers. The name is reserved at the root of a mount: a real `.snap`
// entry of the volume (imported from elsewhere) is shadowed there, still
// reachable as VOL:/.snap through the commands, and a new one cannot be
// made (EEXIST).
//
// Inode numbers: the live ones are below 2^62 (ops.ts inodeNumber); a past
// state's are 2^62 plus 62 bits of a hash of the snapshot's event and the
// inode id, so they never equal a live one, the same file in two snapshots
// gets two numbers (tools would take equal ones for hard links), and hard
// links within one snapshot share theirs.
//
// Past states are built on first access (History.at, from the nearest
// checkpoint) and kept per snapshot in a small LRU cache.

import { createHash } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { checkSnapshotName, openHistory, type History, type SnapshotInfo } from '../history/index.js';
import type { Volume } from '../volume/volume.js';
import type { FuseOpContext, FuseOperations, FuseStat } from './binding.js';
import { errnoOf, toFuseStat } from './ops.js';
import { PastTree } from './past-tree.js';
import { createReadOnlyOps, type ReadOnlyOps } from './readonly-ops.js';

const E = osConstants.errno;

export const SNAP_NAME = '.snap';
const SNAP_PATH = `/${SNAP_NAME}`;
/** Past states kept built; each holds its tree in memory. */
export const DEFAULT_SNAP_CACHE = 4;
const PAST_INO_BIT = 1n << 62n;
const PAST_INO_MASK = PAST_INO_BIT - 1n;
/** The `.snap` directory's own number, in the past states' half. */
const SNAP_DIR_INO = PAST_INO_BIT;

type Cb = (err: number, ...values: unknown[]) => void;
type Handler = (ctx: FuseOpContext, ...args: unknown[]) => void;

/** Operations whose first argument after the context is the one path they act on. */
const ONE_PATH_OPS = [
  'getattr', 'fgetattr', 'access', 'readdir', 'readlink', 'open', 'create', 'read', 'write', 'flush', 'fsync', 'release',
  'truncate', 'ftruncate', 'mknod', 'mkdir', 'unlink', 'rmdir', 'chmod', 'chown', 'utimens',
  'setxattr', 'getxattr', 'listxattr', 'removexattr',
] as const;

type Where =
  | { kind: 'live' }
  | { kind: 'dir' }
  | { kind: 'snap'; name: string; inner: string };

function where(path: string): Where {
  if (path === SNAP_PATH) return { kind: 'dir' };
  if (!path.startsWith(`${SNAP_PATH}/`)) return { kind: 'live' };
  const rest = path.slice(SNAP_PATH.length + 1);
  const slash = rest.indexOf('/');
  return slash === -1 ? { kind: 'snap', name: rest, inner: '/' } : { kind: 'snap', name: rest.slice(0, slash), inner: rest.slice(slash) };
}

/** A snapshot's identity: its event (a name removed and taken again names another state). */
function snapKey(s: SnapshotInfo): string {
  return `${s.writer.toString('hex')}:${s.seq}`;
}

/** st_ino of inode `id` in the past state of snapshot `key`. */
export function pastInodeNumber(key: string, id: Uint8Array): bigint {
  const h = createHash('sha256').update(key).update('\0').update(id).digest();
  return PAST_INO_BIT | (h.readBigUInt64BE(0) & PAST_INO_MASK);
}

export interface SnapDirOptions {
  volume: Volume;
  log: (line: string) => void;
  /** Past states kept built (default DEFAULT_SNAP_CACHE). */
  cacheSize?: number;
}

export interface SnapDir {
  readonly operations: FuseOperations;
  /** Files open under `.snap`. */
  openCount(): number;
}

/** The snapshots of a volume, and their past states, built on demand and cached. */
class SnapCatalog {
  private history: Promise<History> | undefined;
  private listed: { total: bigint; list: SnapshotInfo[] } | undefined;
  private checkpointedAt = 0n;
  /** Built past states by snapshot key, least recently used first. */
  private readonly trees = new Map<string, Promise<PastTree>>();
  /** One set of operations per snapshot seen (small; the trees they read are what the LRU bounds). */
  private readonly views = new Map<string, ReadOnlyOps>();
  /** Snapshot changes made through `.snap`, one at a time. */
  private changes: Promise<unknown> = Promise.resolve();

  constructor(private readonly volume: Volume, private readonly cacheSize: number, private readonly log: (line: string) => void) {}

  async list(signal?: AbortSignal): Promise<SnapshotInfo[]> {
    const h = await this.openHistory();
    const total = h.total();
    if (this.listed?.total === total) return this.listed.list;
    // Listing reads the events since the last checkpoint: take the ones a growing log calls for.
    if (total - this.checkpointedAt >= h.every) {
      await h.update({ signal });
      this.checkpointedAt = total;
    }
    const list = await h.snapshots({ signal });
    this.listed = { total, list };
    return list;
  }

  async find(name: string, signal?: AbortSignal): Promise<SnapshotInfo | undefined> {
    return (await this.list(signal)).find((s) => s.name === name);
  }

  view(info: SnapshotInfo): ReadOnlyOps {
    const key = snapKey(info);
    let ops = this.views.get(key);
    if (ops === undefined) {
      ops = createReadOnlyOps({
        tree: () => this.tree(info),
        ino: (id) => pastInodeNumber(key, id),
        statfs: async (signal) => {
          const st = await this.volume.statfs({ signal });
          return { ...st, favail: st.ffree, fsid: 0 };
        },
        log: this.log,
      });
      this.views.set(key, ops);
    }
    return ops;
  }

  openCount(): number {
    let n = 0;
    for (const v of this.views.values()) n += v.openCount();
    return n;
  }

  create(name: string): Promise<void> {
    return this.serialise(async () => {
      checkSnapshotName(name);
      if ((await this.find(name)) !== undefined) {
        throw new BazilError(ErrorCodes.ALREADY_EXISTS, `volume '${this.volume.name}' already has a snapshot named ${JSON.stringify(name)}`, { name, errno: 'EEXIST' });
      }
      await this.volume.batch(async (b) => { await b.append({ type: 'snapshot', name }); });
    });
  }

  remove(name: string): Promise<void> {
    return this.serialise(async () => {
      const info = await this.find(name);
      if (info === undefined) {
        throw new BazilError(ErrorCodes.UNKNOWN_SNAPSHOT, `volume '${this.volume.name}' has no snapshot named ${JSON.stringify(name)}`, { name, errno: 'ENOENT' });
      }
      await this.volume.batch(async (b) => { await b.append({ type: 'snapshot-rm', name }); });
      this.trees.delete(snapKey(info));
      this.views.delete(snapKey(info));
    });
  }

  private tree(info: SnapshotInfo): Promise<PastTree> {
    const key = snapKey(info);
    let built = this.trees.get(key);
    if (built !== undefined) {
      // Most recently used goes last.
      this.trees.delete(key);
      this.trees.set(key, built);
      return built;
    }
    built = (async () => {
      const h = await this.openHistory();
      const asOf = await h.at({ kind: 'snapshot', name: info.name });
      // The name may have been removed and taken again since it was listed.
      if (!asOf.vector.equals(info.vector)) {
        throw new BazilError(ErrorCodes.NOT_FOUND, `snapshot ${JSON.stringify(info.name)} was replaced`, { name: info.name, errno: 'ESTALE' });
      }
      return new PastTree(asOf);
    })();
    this.trees.set(key, built);
    built.catch(() => this.trees.delete(key));
    while (this.trees.size > this.cacheSize) this.trees.delete(this.trees.keys().next().value!);
    return built;
  }

  private openHistory(): Promise<History> {
    if (this.history === undefined) {
      const opening = openHistory(this.volume);
      this.history = opening;
      opening.catch(() => {
        if (this.history === opening) this.history = undefined;
      });
    }
    return this.history;
  }

  private serialise<T>(work: () => Promise<T>): Promise<T> {
    const result = this.changes.then(work, work);
    this.changes = result.catch(() => undefined);
    return result;
  }
}

/**
 * The live operations with `.snap` layered on: paths under `/.snap` go to
 * the snapshots' read-only trees, every other path to `live` unchanged
 * (except that the root's listing leaves out a real `.snap` entry).
 */
export function withSnapDir(live: FuseOperations, options: SnapDirOptions): SnapDir {
  const { volume, log } = options;
  const catalog = new SnapCatalog(volume, options.cacheSize ?? DEFAULT_SNAP_CACHE, log);
  const liveOps = live as unknown as Record<string, Handler | undefined>;

  function fail(op: string, path: string, err: unknown): number {
    const errno = errnoOf(err);
    if (errno === -E.EIO) log(`bazil mount: ${op} ${path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return errno;
  }

  async function snapDirStat(signal: AbortSignal): Promise<FuseStat> {
    const root = await volume.stat('/', { signal });
    const count = (await catalog.list(signal)).length;
    return { ...toFuseStat(root), ino: SNAP_DIR_INO, nlink: 2 + count, size: 0, blocks: 0 };
  }

  async function snapDirListing(signal: AbortSignal): Promise<{ names: string[]; stats: FuseStat[] }> {
    const root = await volume.stat('/', { signal });
    const names = ['.', '..'];
    const stats = [await snapDirStat(signal), toFuseStat(root)];
    for (const s of await catalog.list(signal)) {
      names.push(s.name);
      // The root directory's id never changes; its attributes then are read only when it is looked up.
      stats.push({ ...toFuseStat(root), ino: pastInodeNumber(snapKey(s), root.id) });
    }
    return { names, stats };
  }

  /** An operation on `/.snap` itself. */
  function onSnapDir(op: string, ctx: FuseOpContext, cb: Cb): void {
    const reply = <T>(work: Promise<T>, done: (value: T) => void): void => {
      work.then(done, (err: unknown) => cb(fail(op, SNAP_PATH, err)));
    };
    switch (op) {
      case 'getattr': case 'fgetattr':
        return reply(snapDirStat(ctx.signal), (st) => cb(0, st));
      case 'access': case 'flush': case 'fsync': case 'release':
        return cb(0);
      case 'readdir':
        return reply(snapDirListing(ctx.signal), ({ names, stats }) => cb(0, names, stats));
      case 'open':
        return cb(0, 0);
      case 'listxattr':
        return cb(0, []);
      case 'getxattr':
        return cb(-E.ENODATA);
      case 'mkdir': case 'create': case 'mknod':
        return cb(-E.EEXIST);
      default:
        return cb(-E.EROFS);
    }
  }

  /** An operation on `/.snap/NAME[/inner]`. */
  function onSnapshot(op: string, w: { name: string; inner: string }, path: string, ctx: FuseOpContext, args: unknown[], cb: Cb): void {
    if (w.inner === '/' && op === 'mkdir') {
      if (!ctx.claim()) return cb(-E.ETIMEDOUT);
      catalog.create(w.name).then(() => cb(0), (err: unknown) => cb(fail(op, path, err)));
      return;
    }
    if (w.inner === '/' && op === 'rmdir') {
      if (!ctx.claim()) return cb(-E.ETIMEDOUT);
      catalog.remove(w.name).then(() => cb(0), (err: unknown) => cb(fail(op, path, err)));
      return;
    }
    catalog.find(w.name, ctx.signal).then((info) => {
      // Only directories (snapshots) can be made in .snap.
      if (info === undefined) return cb(w.inner === '/' && (op === 'create' || op === 'mknod') ? -E.EROFS : -E.ENOENT);
      const handler = (catalog.view(info).operations as unknown as Record<string, Handler | undefined>)[op];
      if (handler === undefined) return cb(-E.ENOSYS);
      handler(ctx, w.inner, ...args);
    }, (err: unknown) => cb(fail(op, path, err)));
  }

  const operations: Record<string, Handler | undefined> = { ...liveOps };

  for (const op of ONE_PATH_OPS) {
    const liveHandler = liveOps[op];
    operations[op] = (ctx: FuseOpContext, ...args: unknown[]) => {
      const path = args[0] as string;
      const rest = args.slice(1);
      const cb = args[args.length - 1] as Cb;
      const w = where(path);
      if (w.kind === 'live') {
        if (liveHandler === undefined) return cb(-E.ENOSYS);
        if (op === 'readdir' && path === '/') {
          // A real `.snap` of the volume is shadowed by the virtual one, which is not listed.
          return liveHandler(ctx, path, (err: number, names?: string[], stats?: FuseStat[]) => {
            const at = names?.indexOf(SNAP_NAME) ?? -1;
            if (err === 0 && names !== undefined && at !== -1) {
              names.splice(at, 1);
              stats?.splice(at, 1);
            }
            cb(err, names, stats);
          });
        }
        return liveHandler(ctx, ...args);
      }
      if (w.kind === 'dir') return onSnapDir(op, ctx, cb);
      return onSnapshot(op, w, path, ctx, rest, cb);
    };
  }

  /** symlink, link and rename: live when the new name is live (and the old one too); nothing can be made or moved in `.snap`. */
  const twoPaths = (op: 'symlink' | 'link' | 'rename', sourceIsPath: boolean): Handler => {
    const liveHandler = liveOps[op];
    return (ctx: FuseOpContext, ...args: unknown[]) => {
      const [from, to] = args as [string, string];
      const cb = args[args.length - 1] as Cb;
      const target = where(to);
      if (target.kind === 'live' && (!sourceIsPath || where(from).kind === 'live')) {
        if (liveHandler === undefined) return cb(-E.ENOSYS);
        return liveHandler(ctx, ...args);
      }
      cb(target.kind === 'dir' && op !== 'rename' ? -E.EEXIST : -E.EROFS);
    };
  };
  operations['symlink'] = twoPaths('symlink', false);
  operations['link'] = twoPaths('link', true);
  operations['rename'] = twoPaths('rename', true);
  // statfs is the file system's, whatever the path.
  operations['statfs'] = liveOps['statfs'];

  return { operations: operations as unknown as FuseOperations, openCount: () => catalog.openCount() };
}

