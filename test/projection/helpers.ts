// Shared helpers of the projection tests: a peer (arena set, log,
// projection, projector) in a directory, event delivery between peers the
// way sync hands them over, and a whole-tree listing to compare.

import { join } from 'node:path';
import { ArenaSet } from '../../arena/arena-set.js';
import { nodeFileSystem } from '../../arena/node-fs.js';
import { LogStore } from '../../src/log/stream.js';
import type { LogEvent } from '../../src/log/codec.js';
import type { EventBody } from '../../src/log/event.js';
import type { Signer } from '../../src/log/signing.js';
import { ProjectionStore, type DirEntry } from '../../src/projection/store.js';
import { Projector } from '../../src/projection/projector.js';
import { ProjectionCipher } from '../../src/projection/cipher.js';
import { deriveVolumeKeys } from '../../src/crypto/volume-keys.js';
import { EVENT_KEY, VOLUME, bytesOf } from '../log/helpers.js';

export { withTempDir, ALICE, BOB, CAROL } from '../log/helpers.js';

export const WALL_MS = 1_700_000_000_000;

/** The projection cipher of the test volume (the key a volume with secret 'test secret' derives). */
export const PROJECTION_CIPHER = new ProjectionCipher(deriveVolumeKeys(bytesOf('test secret'), VOLUME).projectionKey);

export interface Peer {
  arenas: ArenaSet;
  log: LogStore;
  store: ProjectionStore;
  projector: Projector;
  /** Appends with a wall clock that never moves, so clocks are the HLC's counter alone. */
  append(body: EventBody): LogEvent;
  close(): Promise<void>;
}

export async function openPeer(dir: string, signer: Signer, batchEvents?: number): Promise<Peer> {
  const arenas = await ArenaSet.open(join(dir, 'arenas'), { fs: nodeFileSystem, writer: signer.writer });
  const log = LogStore.open({ arenas, volume: VOLUME, eventKey: EVENT_KEY, signer });
  const store = await ProjectionStore.open(join(dir, 'projection'), PROJECTION_CIPHER);
  const projector = new Projector(store, log, batchEvents);
  return {
    arenas, log, store, projector,
    append: (body) => log.append(body, { wallMs: WALL_MS }),
    close: async () => {
      await store.close();
      await arenas.close();
    },
  };
}

/** Hands every event `from` holds to `to` (those it holds already are duplicates). */
export function deliver(from: Peer, to: Peer): void {
  to.log.ingest([...from.log.merged()].map((e) => e.bytes), { wallMs: WALL_MS });
}

export interface Listed {
  path: string;
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  mtime: bigint;
  ctime: bigint;
  atime: bigint;
  manifest: string | null;
  target: string | null;
  xattrs: [string, string][];
}

/** Every node reachable from the root, depth first in name order. */
export async function listTree(store: ProjectionStore): Promise<Listed[]> {
  const root = await store.rootId();
  if (root === undefined) return [];
  const out: Listed[] = [];
  const visit = async (id: Buffer, path: string): Promise<void> => {
    const a = (await store.getattr(id))!;
    const xattrs: [string, string][] = [];
    for (const n of await store.listxattr(id)) xattrs.push([n, (await store.getxattr(id, n))!.toString('hex')]);
    out.push({
      path, kind: a.kind, mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, nlink: a.nlink, mtime: a.mtime, ctime: a.ctime, atime: a.atime,
      manifest: a.manifest?.toString('hex') ?? null, target: (await store.readlink(id)) ?? null, xattrs,
    });
    if (a.kind !== 'dir') return;
    // Page by two to exercise `after`; pages come in hash order, the listing is in name order.
    const entries: DirEntry[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.readdir(id, { after, limit: 2 });
      entries.push(...page);
      if (page.length < 2) break;
      after = page[page.length - 1].name;
    }
    for (const e of byName(entries)) await visit(e.id, `${path}/${e.name}`);
  };
  await visit(root, '');
  return out;
}

/** Entries in UTF-8 byte order of their names, the order a listing promises. */
export function byName<T extends { name: string }>(entries: readonly T[]): T[] {
  return [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

/** Subtree figures of a directory, counted by brute force (what the lazy aggregates must equal). */
export interface WalkedFigures {
  rbytes: number;
  rfiles: number;
  rsubdirs: number;
  rctime: bigint;
}

interface WalkableProjection {
  getattr(id: Buffer): Promise<{ kind: string; size: number; ctime: bigint } | undefined>;
  readdir(dir: Buffer): Promise<{ id: Buffer }[]>;
}

/** Walks `dir` and everything below it; `seen` gets every directory's figures. */
export async function walkFigures(p: WalkableProjection, dir: Buffer, seen?: (id: Buffer, f: WalkedFigures) => void): Promise<WalkedFigures> {
  const self = (await p.getattr(dir))!;
  const f: WalkedFigures = { rbytes: 0, rfiles: 0, rsubdirs: 0, rctime: self.ctime };
  for (const e of await p.readdir(dir)) {
    const a = (await p.getattr(e.id))!;
    if (a.kind === 'dir') {
      const sub = await walkFigures(p, e.id, seen);
      f.rsubdirs += 1 + sub.rsubdirs;
      f.rfiles += sub.rfiles;
      f.rbytes += sub.rbytes;
      if (sub.rctime > f.rctime) f.rctime = sub.rctime;
    } else {
      f.rfiles++;
      if (a.kind === 'file') f.rbytes += a.size;
      if (a.ctime > f.rctime) f.rctime = a.ctime;
    }
  }
  seen?.(dir, f);
  return f;
}
