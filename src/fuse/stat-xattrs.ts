// A directory's recursive statistics and a node's object ids as extended
// attributes of the mount (docs/mount.md, "Statistics as xattrs"), named
// and formatted like CephFS's ceph.dir.rbytes: decimal ASCII, rctime as
// seconds.nanoseconds.
//
// They are computed, not stored: getxattr answers them, setxattr and
// removexattr of them are EPERM, and listxattr does not name them (as
// CephFS hides its own), so `cp -a`, `rsync -X` or `tar --xattrs` out of a
// mount do not copy them into other file systems as if they were data.

import { createHash } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import type { Aggregates } from '../volume/aggregates.js';
import type { Attrs } from '../volume/reader.js';
import type { FuseOpContext, FuseOperations } from './binding.js';
import { errnoOf } from './ops.js';

const E = osConstants.errno;

const PREFIX = 'user.bazil.';
const AGGREGATE_NAMES = ['rbytes', 'rfiles', 'rsubdirs', 'rctime'] as const;
/** Every computed attribute, without the `user.bazil.` prefix. */
export const STAT_XATTR_NAMES = [...AGGREGATE_NAMES, 'id', 'manifest'] as const;
const NAMES = new Set<string>(STAT_XATTR_NAMES.map((n) => `${PREFIX}${n}`));

/** Where the attributes come from: a node's attributes by path, and a directory's aggregates. */
export interface StatSource {
  attrs(path: string, signal: AbortSignal): Promise<Attrs>;
  aggregates(attrs: Attrs, path: string, signal: AbortSignal): Promise<Aggregates>;
}

export function isStatXattr(name: string): boolean {
  return NAMES.has(name);
}

/** seconds.nanoseconds, as CephFS prints rctime. */
export function formatRctime(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  return `${s}.${frac.toString().padStart(9, '0')}`;
}

/**
 * The content id of a file: a SHA-256 of its root manifest (which names
 * every chunk of the content; the root itself is not a stored object).
 * Manifests are built deterministically and chunks are encrypted
 * convergently, so files imported or written whole with equal bytes have
 * equal ids; a file edited in place may keep older chunk boundaries, so
 * different ids do not prove different bytes.
 */
export function manifestId(manifest: Uint8Array): string {
  return createHash('sha256').update(manifest).digest('hex');
}

/** The value of the computed attribute `name` of a node, or undefined when it has none (ENODATA). */
export async function statXattr(name: string, attrs: Attrs, path: string, source: StatSource, signal: AbortSignal): Promise<Buffer | undefined> {
  const short = name.slice(PREFIX.length);
  if (short === 'id') return Buffer.from(Buffer.from(attrs.id).toString('hex'));
  if (short === 'manifest') {
    return attrs.kind === 'file' && attrs.manifest !== null ? Buffer.from(manifestId(attrs.manifest)) : undefined;
  }
  // Recursive statistics are a directory's, as in CephFS.
  if (attrs.kind !== 'dir') return undefined;
  const agg = await source.aggregates(attrs, path, signal);
  switch (short) {
    case 'rbytes': return Buffer.from(String(agg.rbytes));
    case 'rfiles': return Buffer.from(String(agg.rfiles));
    case 'rsubdirs': return Buffer.from(String(agg.rsubdirs));
    case 'rctime': return Buffer.from(formatRctime(agg.rctime));
    default: return undefined;
  }
}

/**
 * The operations with the computed attributes layered on: getxattr answers
 * them from `source`, setxattr and removexattr of them are EPERM; every
 * other name goes to `ops` unchanged.
 */
export function withStatXattrs<O extends FuseOperations>(ops: O, source: StatSource, log: (line: string) => void): O {
  const getxattr = ops.getxattr;
  const setxattr = ops.setxattr;
  const removexattr = ops.removexattr;
  return {
    ...ops,
    getxattr(ctx: FuseOpContext, path: string, name: string, position: number, cb: (err: number, value?: Buffer) => void) {
      if (!isStatXattr(name)) {
        if (getxattr === undefined) return cb(-E.ENODATA);
        return getxattr(ctx, path, name, position, cb);
      }
      (async () => statXattr(name, await source.attrs(path, ctx.signal), path, source, ctx.signal))().then(
        (value) => (value === undefined ? cb(-E.ENODATA) : cb(0, value)),
        (err: unknown) => {
          const errno = errnoOf(err);
          if (errno === -E.EIO) log(`bazil mount: getxattr ${path} ${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
          cb(errno);
        },
      );
    },
    setxattr(ctx: FuseOpContext, path: string, name: string, value: Buffer, position: number, flags: number, cb: (err: number) => void) {
      if (isStatXattr(name)) return cb(-E.EPERM);
      if (setxattr === undefined) return cb(-E.ENOTSUP);
      setxattr(ctx, path, name, value, position, flags, cb);
    },
    removexattr(ctx: FuseOpContext, path: string, name: string, cb: (err: number) => void) {
      if (isStatXattr(name)) return cb(-E.EPERM);
      if (removexattr === undefined) return cb(-E.ENOTSUP);
      removexattr(ctx, path, name, cb);
    },
  };
}
