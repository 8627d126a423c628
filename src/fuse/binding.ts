// The typed loader for Bazil's patched fuse-native (docs/fuse.md).
//
// scripts/build-fuse.sh builds fuse-native 2.2.6 with
// patches/fuse-native+2.2.6.patch into node_modules/.cache/bazil-fuse-native;
// this module loads that build (never the package's own prebuilt binary, which
// lacks the patch) and gives its callback API TypeScript types. Handlers
// written against these types receive the operation's context explicitly as
// their first argument: the caller's uid, gid, pid and umask, an AbortSignal
// that fires when the operation times out, and claim().
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export { freeWedgedMount, findFuseConnection } from './free-mount.js';

/** Where build-fuse.sh puts the patched package, relative to the repository root. */
export const PATCHED_FUSE_DIR = join('node_modules', '.cache', 'bazil-fuse-native');

/** What the patch adds; the loader refuses a build that lacks any of them. */
const REQUIRED_FEATURES = ['utimens-ns', 'stat-ns', 'use-ino', 'caller-context', 'abort-signal', 'timeout-0'] as const;

/** The process that made a request, from fuse_get_context(). */
export interface FuseCaller {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly umask: number;
}

/** One operation's context: its caller, and its cancellation. */
export interface FuseOpContext extends FuseCaller {
  /** Aborted (with an ETIMEDOUT error as reason) when the operation times out. */
  readonly signal: AbortSignal;
  /**
   * Call immediately before making the operation's effect visible, in the
   * same tick as the commit. false: the operation already timed out and the
   * kernel was answered ETIMEDOUT, so it must have no effect. true: the
   * timeout is disarmed and the handler's result will be delivered.
   */
  claim(): boolean;
}

/**
 * A stat result. Times are BigInt nanoseconds since the epoch (numbers are
 * taken as milliseconds, as unpatched fuse-native does). With useIno, ino is
 * what the kernel reports as st_ino.
 */
export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number | bigint;
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
  dev?: number;
  rdev?: number;
  blksize?: number;
  blocks?: number;
}

export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/** 0 for success or a negative errno (-ENOENT, ...). */
export type Errno = number;
type Done = (err: Errno) => void;
type DoneWith<T> = (err: Errno, value?: T) => void;

/** The handlers as fuse-native calls them (no context argument). */
export interface FuseNativeOperations {
  init?(cb: Done): void;
  statfs?(path: string, cb: DoneWith<FuseStatfs>): void;
  getattr?(path: string, cb: DoneWith<FuseStat>): void;
  fgetattr?(path: string, fd: number, cb: DoneWith<FuseStat>): void;
  access?(path: string, mode: number, cb: Done): void;
  readdir?(path: string, cb: (err: Errno, names?: string[], stats?: FuseStat[]) => void): void;
  open?(path: string, flags: number, cb: DoneWith<number>): void;
  opendir?(path: string, flags: number, cb: DoneWith<number>): void;
  create?(path: string, mode: number, cb: DoneWith<number>): void;
  /** Reads into buf; the callback's value is the byte count. */
  read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: DoneWith<number>): void;
  /** The callback's value is the byte count written. */
  write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: DoneWith<number>): void;
  release?(path: string, fd: number, cb: Done): void;
  releasedir?(path: string, fd: number, cb: Done): void;
  flush?(path: string, fd: number, cb: Done): void;
  fsync?(path: string, datasync: number, fd: number, cb: Done): void;
  fsyncdir?(path: string, datasync: number, fd: number, cb: Done): void;
  truncate?(path: string, size: number, cb: Done): void;
  ftruncate?(path: string, fd: number, size: number, cb: Done): void;
  /** Times are BigInt nanoseconds since the epoch; null leaves that time unchanged (UTIME_OMIT). */
  utimens?(path: string, atime: bigint | null, mtime: bigint | null, cb: Done): void;
  chmod?(path: string, mode: number, cb: Done): void;
  chown?(path: string, uid: number, gid: number, cb: Done): void;
  readlink?(path: string, cb: DoneWith<string>): void;
  symlink?(target: string, path: string, cb: Done): void;
  link?(existing: string, path: string, cb: Done): void;
  unlink?(path: string, cb: Done): void;
  rename?(from: string, to: string, cb: Done): void;
  mkdir?(path: string, mode: number, cb: Done): void;
  rmdir?(path: string, cb: Done): void;
  setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
  /** The callback's value is the attribute's value; none is ENODATA. */
  getxattr?(path: string, name: string, position: number, cb: DoneWith<Buffer>): void;
  listxattr?(path: string, cb: DoneWith<string[]>): void;
  removexattr?(path: string, name: string, cb: Done): void;
}

export type FuseOpName = Exclude<keyof FuseNativeOperations, 'init'>;

type WithContext<F> = F extends (...args: infer A) => void ? (ctx: FuseOpContext, ...args: A) => void : never;

/** The handlers Bazil writes: fuse-native's, with the operation's context first. */
export type FuseOperations = {
  [K in FuseOpName]?: WithContext<NonNullable<FuseNativeOperations[K]>>;
} & { init?: FuseNativeOperations['init'] };

export interface FuseMountOptions {
  /**
   * Milliseconds before an operation is answered ETIMEDOUT and its signal
   * aborted; 0 for none. Required: there is no silent default. An object sets
   * it per operation, with `default` for the rest.
   */
  timeout: number | ({ default: number } & Partial<Record<FuseOpName, number>>);
  /** Report the handlers' st_ino to the kernel (hard links share an inode). */
  useIno?: boolean;
  mkdir?: boolean;
  force?: boolean;
  debug?: boolean;
  autoUnmount?: boolean;
  defaultPermissions?: boolean;
  allowOther?: boolean;
  /** Seconds the kernel may cache attributes and names (libfuse's default is 1). */
  attrTimeout?: number;
  entryTimeout?: number;
  fsname?: string;
  subtype?: string;
}

/** An instance of the patched fuse-native Fuse class. */
export interface FuseNative {
  readonly mnt: string;
  /** The running operation's context: valid only synchronously during a handler call. */
  readonly context: FuseOpContext | null;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

export interface FuseNativeClass {
  new (mnt: string, ops: FuseNativeOperations, opts: FuseMountOptions): FuseNative;
  readonly FEATURES: readonly string[];
  unmount(mnt: string, cb: (err: Error | null) => void): void;
}

let loaded: FuseNativeClass | undefined;

/** The directory of the patched build, found upward from this module. */
export function patchedFuseDir(): string {
  const override = process.env['BAZIL_FUSE_NATIVE_DIR'];
  if (override) return resolve(override);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, PATCHED_FUSE_DIR);
    if (existsSync(join(candidate, 'build', 'Release', 'fuse.node'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        `the patched fuse-native is not built (no ${PATCHED_FUSE_DIR}/build/Release/fuse.node above ` +
          `${fileURLToPath(import.meta.url)}): run scripts/build-fuse.sh (npm test runs it through scripts/setup.sh)`,
      );
    }
    dir = parent;
  }
}

/** Loads the patched fuse-native, checking that the build carries the patch. */
export function loadFuseNative(): FuseNativeClass {
  if (loaded) return loaded;
  const dir = patchedFuseDir();
  const require = createRequire(join(dir, 'index.js'));
  const Fuse = require(dir) as FuseNativeClass;
  const features: unknown = Fuse.FEATURES;
  const missing = REQUIRED_FEATURES.filter((f) => !(Array.isArray(features) && features.includes(f)));
  if (missing.length > 0) {
    throw new Error(`${dir} is not the patched fuse-native (missing: ${missing.join(', ')}): rerun scripts/build-fuse.sh`);
  }
  loaded = Fuse;
  return Fuse;
}

/**
 * Creates (does not mount) a FUSE filesystem whose handlers receive the
 * operation's context first.
 */
export function createFuse(mnt: string, ops: FuseOperations, opts: FuseMountOptions): FuseNative {
  const Fuse = loadFuseNative();
  const native: Record<string, (...args: unknown[]) => void> = {};
  let fuse: FuseNative | undefined;
  for (const [name, handler] of Object.entries(ops) as [string, ((...args: unknown[]) => void) | undefined][]) {
    if (handler === undefined) continue;
    if (name === 'init') {
      native[name] = handler;
      continue;
    }
    native[name] = (...args: unknown[]) => {
      const ctx = fuse?.context;
      if (!ctx) throw new Error(`fuse-native called ${name} without a context: is this the patched build?`);
      handler(ctx, ...args);
    };
  }
  fuse = new Fuse(mnt, native as FuseNativeOperations, opts);
  return fuse;
}

/** Mounts; resolves once the kernel has initialised the filesystem. */
export function mountFuse(fuse: FuseNative): Promise<void> {
  return new Promise((resolvePromise, reject) => fuse.mount((err) => (err ? reject(err) : resolvePromise())));
}

/** Unmounts (fusermount -uz) and releases the native side. */
export function unmountFuse(fuse: FuseNative): Promise<void> {
  return new Promise((resolvePromise, reject) => fuse.unmount((err) => (err ? reject(err) : resolvePromise())));
}
