// Mounting one Volume at a directory with the patched fuse-native: the mount
// options, and the order of things at mount and unmount (docs/mount.md).

import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BazilError, ErrorCodes, ioError } from '../../errors/index.js';
import type { Volume } from '../volume/volume.js';
import { createFuse, findFuseConnection, mountFuse, unmountFuse, type FuseMountOptions, type FuseOperations } from './binding.js';
import { warmReadAhead } from '../volume/read-ahead.js';
import { createVolumeOps, type VolumeOps } from './ops.js';
import type { PastTree } from './past-tree.js';
import { createReadOnlyOps } from './readonly-ops.js';
import { withSnapDir } from './snap-dir.js';
import { withStatXattrs } from './stat-xattrs.js';

/**
 * Seconds the kernel may cache attributes and names. Every change made
 * through the mount goes through the same kernel, which keeps its caches
 * right; only changes made beside the mount (a command run in the daemon)
 * can be seen this late.
 */
const CACHE_SECONDS = 1;
/** A past state never changes: the kernel may keep what it learnt of it longer. */
const PAST_CACHE_SECONDS = 60;

/**
 * How long a metadata change (create, mkdir, unlink, rename, chmod, ...)
 * may stay undurable: the mount defers their log sync as ext4 defers its
 * journal commit, so a burst of them shares one fsync instead of paying one
 * each. fsync of a file or directory, and a flush that commits a file's
 * content, make everything before them durable at once (docs/mount.md,
 * "Durability").
 */
const METADATA_SYNC_MS = 100;

/**
 * Per-operation timeouts (ms). A timed-out operation is answered ETIMEDOUT
 * and never commits later; operations that may wait for a durable commit of
 * a large file get longer. release has none: its answer is ignored by the
 * kernel, and the file's last events must be written whatever the delay.
 */
const TIMEOUTS: FuseMountOptions['timeout'] = {
  default: 30_000,
  read: 60_000,
  write: 60_000,
  flush: 300_000,
  fsync: 300_000,
  release: 0,
};

export interface MountVolumeOptions {
  /** Where unexpected errors are reported (the daemon's log). */
  log?: (line: string) => void;
  /** libfuse's debug output on stderr. */
  debug?: boolean;
}

/** What the daemon keeps of any mount, live or past. */
export interface Mounted {
  readonly dir: string;
  readonly volumeName: string;
  /** Files open through the mount. */
  openCount(): number;
  /** Detaches the mount (lazily, so a busy mount goes once its users leave), then releases the open handles. */
  unmount(): Promise<void>;
}

export interface VolumeMount extends Mounted {
  readonly volume: Volume;
  readonly ops: VolumeOps;
}

/** The options every Bazil mount uses; exported so the benchmark mounts its ceiling filesystem the same way. */
export function mountOptions(volumeName: string, debug = false, readOnly = false): FuseMountOptions {
  return {
    timeout: TIMEOUTS,
    useIno: true,
    defaultPermissions: true,
    // allow_other lets other users in (permission checks are the kernel's, by
    // default_permissions); an unprivileged mounter may not ask for it.
    allowOther: process.getuid?.() === 0,
    attrTimeout: readOnly ? PAST_CACHE_SECONDS : CACHE_SECONDS,
    entryTimeout: readOnly ? PAST_CACHE_SECONDS : CACHE_SECONDS,
    // fuse-native has no option for big_writes, and without it libfuse 2
    // splits every write into 4 KiB requests. Its options are joined with
    // commas into one -o argument, so an extra option can ride along after
    // fsname's value. (The binding's patch could grow a `bigWrites` option.)
    // `ro` rides along the same way: the kernel then refuses writes itself
    // (EROFS) and statvfs reports ST_RDONLY, which it takes from the mount
    // flags, not from the file system's answer.
    fsname: `bazil:${volumeName},big_writes${readOnly ? ',ro' : ''}`,
    subtype: 'bazil',
    debug,
  };
}

/** Refuses a mount point that is not a directory or already has a FUSE mount. */
async function checkMountPoint(target: string): Promise<void> {
  // A stale mount of a dead server would hang the stat below: look it up in mountinfo instead.
  if ((await findFuseConnection(target)) !== undefined) {
    throw new BazilError(ErrorCodes.ALREADY_EXISTS, `${target} already has a FUSE file system mounted (if it is a dead one, free it with \`bazil umount --force ${target}\`)`, { path: target, errno: 'EBUSY' });
  }
  const info = await stat(target).catch((err: unknown) => {
    throw ioError('stat', target, err);
  });
  if (!info.isDirectory()) throw new BazilError(ErrorCodes.NOT_A_DIRECTORY, `${target} is not a directory`, { path: target, errno: 'ENOTDIR' });
}

async function mountOps(name: string, target: string, operations: FuseOperations, options: FuseMountOptions): Promise<{ unmount(): Promise<void> }> {
  const fuse = createFuse(target, operations, options);
  try {
    await mountFuse(fuse);
  } catch (err) {
    throw new BazilError(ErrorCodes.IO, `cannot mount ${name} at ${target}: ${err instanceof Error ? err.message : String(err)}`, { path: target }, err);
  }
  return { unmount: () => unmountFuse(fuse) };
}

/** The live, read-write mount: the volume's operations, with the statistics xattrs and `.snap` layered on. */
export async function mountVolume(volume: Volume, dir: string, options: MountVolumeOptions): Promise<VolumeMount> {
  const target = resolve(dir);
  await checkMountPoint(target);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const ops = createVolumeOps(volume, { log });
  const withStats = withStatXattrs(ops.operations, {
    attrs: (path, signal) => volume.stat(path, { signal }),
    aggregates: (_attrs, path, signal) => volume.aggregates(path, { signal }),
  }, log);
  const snap = withSnapDir(withStats, { volume, log });
  volume.deferMetadataDurability(METADATA_SYNC_MS);
  warmReadAhead();
  let fuse: { unmount(): Promise<void> };
  try {
    fuse = await mountOps(volume.name, target, snap.operations, mountOptions(volume.name, options.debug));
  } catch (err) {
    volume.deferMetadataDurability(null);
    throw err;
  }
  let unmounting: Promise<void> | undefined;
  return {
    dir: target,
    volumeName: volume.name,
    volume,
    ops,
    openCount: () => ops.openCount() + snap.openCount(),
    unmount() {
      unmounting ??= (async () => {
        await fuse.unmount();
        await ops.releaseAll();
        volume.deferMetadataDurability(null);
        await volume.sync();
      })();
      return unmounting;
    },
  };
}

/**
 * A read-only mount of a past state (`bazil mount --at`), mounted `ro`.
 * `volume` is the live volume the state was read from: its content store
 * serves the files, and its disk the space figures.
 */
export async function mountPast(volume: Volume, tree: PastTree, dir: string, options: MountVolumeOptions): Promise<Mounted> {
  const target = resolve(dir);
  await checkMountPoint(target);
  const ops = createReadOnlyOps({
    tree: () => Promise.resolve(tree),
    statfs: async (signal) => {
      const st = await volume.statfs({ signal });
      return { ...st, favail: st.ffree, fsid: 0 };
    },
    log: options.log,
  });
  const fuse = await mountOps(volume.name, target, ops.operations, mountOptions(volume.name, options.debug, true));
  let unmounting: Promise<void> | undefined;
  return {
    dir: target,
    volumeName: volume.name,
    openCount: () => ops.openCount(),
    unmount() {
      unmounting ??= fuse.unmount();
      return unmounting;
    },
  };
}
