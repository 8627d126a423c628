// Mounting one Volume at a directory with the patched fuse-native: the mount
// options, and the order of things at mount and unmount (docs/mount.md).

import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BazilError, ErrorCodes, ioError } from '../../errors/index.js';
import type { Volume } from '../volume/volume.js';
import { createFuse, findFuseConnection, mountFuse, unmountFuse, type FuseMountOptions } from './binding.js';
import { createVolumeOps, type VolumeOps } from './ops.js';

/**
 * Seconds the kernel may cache attributes and names. Every change made
 * through the mount goes through the same kernel, which keeps its caches
 * right; only changes made beside the mount (a command run in the daemon)
 * can be seen this late.
 */
const CACHE_SECONDS = 1;

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

export interface VolumeMount {
  readonly dir: string;
  readonly volume: Volume;
  readonly ops: VolumeOps;
  /** Detaches the mount (lazily, so a busy mount goes once its users leave), then releases the open handles. */
  unmount(): Promise<void>;
}

/** The options every Bazil mount uses; exported so the benchmark mounts its ceiling filesystem the same way. */
export function mountOptions(volumeName: string, debug = false): FuseMountOptions {
  return {
    timeout: TIMEOUTS,
    useIno: true,
    defaultPermissions: true,
    // allow_other lets other users in (permission checks are the kernel's, by
    // default_permissions); an unprivileged mounter may not ask for it.
    allowOther: process.getuid?.() === 0,
    attrTimeout: CACHE_SECONDS,
    entryTimeout: CACHE_SECONDS,
    // fuse-native has no option for big_writes, and without it libfuse 2
    // splits every write into 4 KiB requests. Its options are joined with
    // commas into one -o argument, so an extra option can ride along after
    // fsname's value. (The binding's patch could grow a `bigWrites` option.)
    fsname: `bazil:${volumeName},big_writes`,
    subtype: 'bazil',
    debug,
  };
}

export async function mountVolume(volume: Volume, dir: string, options: MountVolumeOptions): Promise<VolumeMount> {
  const target = resolve(dir);
  // A stale mount of a dead server would hang the stat below: look it up in mountinfo instead.
  if ((await findFuseConnection(target)) !== undefined) {
    throw new BazilError(ErrorCodes.ALREADY_EXISTS, `${target} already has a FUSE file system mounted (if it is a dead one, free it with \`bazil umount --force ${target}\`)`, { path: target, errno: 'EBUSY' });
  }
  const info = await stat(target).catch((err: unknown) => {
    throw ioError('stat', target, err);
  });
  if (!info.isDirectory()) throw new BazilError(ErrorCodes.NOT_A_DIRECTORY, `${target} is not a directory`, { path: target, errno: 'ENOTDIR' });
  const ops = createVolumeOps(volume, { log: options.log });
  volume.deferMetadataDurability(METADATA_SYNC_MS);
  const fuse = createFuse(target, ops.operations, mountOptions(volume.name, options.debug));
  try {
    await mountFuse(fuse);
  } catch (err) {
    volume.deferMetadataDurability(null);
    throw new BazilError(ErrorCodes.IO, `cannot mount ${volume.name} at ${target}: ${err instanceof Error ? err.message : String(err)}`, { path: target }, err);
  }
  let unmounting: Promise<void> | undefined;
  return {
    dir: target,
    volume,
    ops,
    unmount() {
      unmounting ??= (async () => {
        await unmountFuse(fuse);
        await ops.releaseAll();
        volume.deferMetadataDurability(null);
        await volume.sync();
      })();
      return unmounting;
    },
  };
}
