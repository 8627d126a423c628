// Lazy subtree aggregates (docs/aggregates.md), CephFS rstats style: every
// directory keeps rbytes, rfiles, rsubdirs and rctime of everything below it.
//
// Keeping them exact on every event would cost O(depth) writes per event
// and turn each directory near the root into a write hot spot; recomputing
// them on read would cost a walk of the tree. So a commit only *marks* the
// directories whose subtree changed dirty (the changed directories and
// their ancestors: O(depth) reads through parent pointers), and `settle`
// recomputes dirty directories later, deepest first, each from its entries
// and its subdirectories' stored aggregates.
//
// Invariant: a dirty directory's ancestors are all dirty, so a clean
// directory's aggregate is exact for its whole subtree.
//
// A file names no parent (hard links give it several), so each entry has a
// back-link row `child ‖ parent ‖ name`; a change to a file's inode finds the
// directories to mark through them.

import { CloneTable } from './clones.js';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import {
  DIRTY_TABLE_PREFIX, ENTRY_TABLE, INODE_TABLE, aggregateKey, decodeAggregate, decodeEntry, decodeInode, dirtyKey, encodeAggregate,
  entryPrefix, inodeKey, linkKey, linkPrefix, prefixEnd, type Aggregate, type Inode,
} from './schema.js';
import type { ProjectionDb } from './sealed-level.js';

type Db = ProjectionDb;

/** One write of a batch, as Batch keeps them (value null deletes). */
export interface KeyWrite {
  key: Buffer;
  value: Buffer | null;
}

const EMPTY = Buffer.alloc(0);
/** Directories recomputed between two LevelDB writes while settling. */
const SETTLE_WRITE_EVERY = 256;
/** Copies of copies followed at most: a guard, since pending copies never form a cycle. */
const MAX_COPY_CHAIN = 100_000;
/** Directories of one depth recomputed concurrently. */
const SETTLE_GROUP = 16;

/**
 * The writes a batch must add so aggregates follow it: back-link rows for
 * the entries it changes, and dirty marks for every directory whose subtree
 * it changes, with their ancestors. `pending` is the batch's writes,
 * `before` values the batch already fetched from the store (undefined:
 * absent), so only the rest are read.
 */
export async function aggregateWrites(db: Db, pending: ReadonlyMap<string, KeyWrite>, before: ReadonlyMap<string, Buffer | undefined>): Promise<KeyWrite[]> {
  const out = new Map<string, KeyWrite>();
  const put = (key: Buffer, value: Buffer | null): void => void out.set(key.toString('latin1'), { key, value });
  const touched = new Map<string, Buffer>();
  const touch = (dir: Buffer): void => void touched.set(dir.toString('latin1'), dir);

  const entries = [...pending.entries()].filter(([, w]) => w.key[0] === ENTRY_TABLE);
  const unknown = entries.filter(([k]) => !before.has(k));
  // A few point reads are cheaper synchronous than one trip through the thread pool.
  const fetched = unknown.length <= 32 ? unknown.map(([, w]) => db.getSync(w.key)) : await db.getMany(unknown.map(([, w]) => w.key));
  const old = new Map<string, Buffer | undefined>(unknown.map(([k], i) => [k, fetched[i]]));
  for (const [k, w] of entries) {
    const parent = w.key.subarray(1, 33);
    const name = w.key.subarray(33).toString('utf8');
    const was = before.has(k) ? before.get(k) : old.get(k);
    const oldChild = was === undefined ? null : decodeEntry(was).child;
    const newChild = w.value === null ? null : decodeEntry(w.value).child;
    if (oldChild !== null && (newChild === null || !oldChild.equals(newChild))) put(linkKey(oldChild, parent, name), null);
    if (newChild !== null) put(linkKey(newChild, parent, name), EMPTY);
    touch(Buffer.from(parent));
  }

  const scans: Promise<void>[] = [];
  for (const [k, w] of pending) {
    if (w.key[0] !== INODE_TABLE || w.value === null) continue;
    const id = Buffer.from(w.key.subarray(1));
    const n = decodeInode(w.value);
    if (n.kind === 'dir') {
      if (n.nlink > 0) touch(id);
      else {
        put(aggregateKey(id), null);
        put(dirtyKey(id), null);
      }
    } else if (n.nlink > 0 && !(before.has(k) && before.get(k) === undefined)) {
      // An inode that existed before this batch may sit in directories this
      // batch never touched: its back-links name them. (A new one has only
      // the entries this batch made, whose parents are touched above; one
      // left with no link lost its last ones in this batch, touched above too.)
      scans.push((async () => {
        const prefix = linkPrefix(id);
        for await (const key of db.keys({ gte: prefix, lt: prefixEnd(prefix) })) touch(Buffer.from(key.subarray(33, 65)));
      })());
    }
  }
  await Promise.all(scans);

  // Mark each touched directory and its ancestors, reading parent pointers in the state after the batch.
  const seen = new Set<string>();
  const inodeAfter = async (id: Buffer): Promise<Inode | undefined> => {
    const key = inodeKey(id);
    const k = key.toString('latin1');
    const p = pending.get(k);
    const v = p !== undefined ? p.value ?? undefined : before.has(k) ? before.get(k) : db.getSync(key);
    return v === undefined ? undefined : decodeInode(v);
  };
  for (const start of touched.values()) {
    for (let cur: Buffer | null = start; cur !== null;) {
      const k = cur.toString('latin1');
      if (seen.has(k)) break;
      seen.add(k);
      const n = await inodeAfter(cur);
      if (n === undefined || n.kind !== 'dir' || n.nlink === 0) break;
      put(dirtyKey(cur), EMPTY);
      cur = n.parent;
    }
  }
  return [...out.values()];
}

/** A directory's aggregate as last settled, and whether it is exact (nothing below it is dirty). */
export interface StoredAggregate {
  value: Aggregate | undefined;
  exact: boolean;
}

export async function readAggregate(db: Db, dir: Uint8Array): Promise<StoredAggregate> {
  const [agg, dirty] = await db.getMany([aggregateKey(dir), dirtyKey(dir)]);
  return { value: agg === undefined ? undefined : decodeAggregate(agg), exact: dirty === undefined && agg !== undefined };
}

/**
 * Recomputes dirty directories, deepest first. The plan (the dirty set in
 * order) survives between calls while no commit has intervened
 * (`generation` unchanged), so settling in short slices does not re-read
 * the whole dirty set each time. Callers serialise settle with commits.
 */
export class AggregateSettler {
  private plan: { generation: number; order: [Buffer, number][]; next: number } | null = null;
  /** Bumped by every commit and clear: a plan made before it may miss new dirty marks. */
  generation = 0;

  /** `clones`: the store's pending copies (none in a projection being migrated, which predates them). */
  constructor(private readonly db: Db, private readonly clones: CloneTable = new CloneTable()) {}

  /** Works until done or `budgetMs` has passed; returns how many dirty directories are left (0: settled). */
  async settle(budgetMs = Number.POSITIVE_INFINITY): Promise<number> {
    const started = performance.now();
    if (this.plan === null || this.plan.generation !== this.generation) this.plan = { generation: this.generation, order: await this.dirtyInOrder(), next: 0 };
    const plan = this.plan;
    const fresh = new Map<string, Aggregate>();
    let ops: KeyWrite[] = [];
    const flush = async (): Promise<void> => {
      if (ops.length === 0) return;
      await this.db.batch(ops.map(({ key, value }) => (value === null ? { type: 'del' as const, key } : { type: 'put' as const, key, value })));
      ops = [];
    };
    while (plan.next < plan.order.length) {
      // Directories of one depth depend only on deeper ones, so a group of them is computed at once (LevelDB reads overlap).
      const depth = plan.order[plan.next]![1];
      const group: Buffer[] = [];
      while (group.length < SETTLE_GROUP && plan.next < plan.order.length && plan.order[plan.next]![1] === depth) group.push(plan.order[plan.next++]![0]);
      const results = await Promise.all(group.map((dir) => this.compute(dir, fresh)));
      group.forEach((dir, i) => {
        const agg = results[i];
        ops.push({ key: dirtyKey(dir), value: null });
        if (agg !== undefined) {
          fresh.set(dir.toString('latin1'), agg);
          ops.push({ key: aggregateKey(dir), value: encodeAggregate(agg) });
        } else {
          ops.push({ key: aggregateKey(dir), value: null });
        }
      });
      if (ops.length >= 2 * SETTLE_WRITE_EVERY) await flush();
      if (performance.now() - started > budgetMs) break;
    }
    await flush();
    const left = plan.order.length - plan.next;
    if (left === 0) this.plan = null;
    return left;
  }

  /** The dirty directories, deepest first, so each is computed after its dirty subdirectories. */
  private async dirtyInOrder(): Promise<[Buffer, number][]> {
    const ids: Buffer[] = [];
    for await (const key of this.db.keys({ gte: DIRTY_TABLE_PREFIX, lt: prefixEnd(DIRTY_TABLE_PREFIX) })) ids.push(Buffer.from(key.subarray(1)));
    const parents = new Map<string, Buffer | null>();
    const parentOf = async (id: Buffer): Promise<Buffer | null> => {
      const k = id.toString('latin1');
      if (!parents.has(k)) {
        const v = await this.db.get(inodeKey(id));
        parents.set(k, v === undefined ? null : decodeInode(v).parent);
      }
      return parents.get(k)!;
    };
    const values = await this.db.getMany(ids.map((id) => inodeKey(id)));
    ids.forEach((id, i) => parents.set(id.toString('latin1'), values[i] === undefined ? null : decodeInode(values[i]!).parent));
    const depths = new Map<string, number>();
    const depthOf = async (id: Buffer): Promise<number> => {
      const chain: Buffer[] = [];
      let base = 0;
      for (let cur: Buffer | null = id; cur !== null && chain.length < 100_000; cur = await parentOf(cur)) {
        const known = depths.get(cur.toString('latin1'));
        if (known !== undefined) {
          base = known + 1;
          break;
        }
        chain.push(cur);
      }
      for (let i = chain.length - 1; i >= 0; i--) depths.set(chain[i]!.toString('latin1'), base + (chain.length - 1 - i));
      return depths.get(id.toString('latin1'))!;
    };
    const withDepth: [Buffer, number][] = [];
    for (const id of ids) withDepth.push([id, await depthOf(id)]);
    withDepth.sort((a, b) => b[1] - a[1] || Buffer.compare(a[0], b[0]));
    return withDepth;
  }

  /**
   * A directory's aggregate from its entries; undefined when it is no longer
   * a live directory. A pending copy (docs/reflink.md) has no entries yet:
   * its tree is its source's, every node of it with the copy's ctime, which
   * is its own ctime or older.
   */
  private async compute(dir: Buffer, fresh: Map<string, Aggregate>, depth = 0): Promise<Aggregate | undefined> {
    if (depth > MAX_COPY_CHAIN) throw new BazilError(ErrorCodes.CORRUPT_METADATA, 'projection: pending copies form a cycle');
    const self = await this.db.get(inodeKey(dir));
    if (self === undefined) return undefined;
    const n = decodeInode(self);
    if (n.kind !== 'dir' || n.nlink === 0) return undefined;
    const pending = this.clones.get(dir);
    if (pending !== undefined) {
      const src = await this.exact(pending.source, fresh, depth + 1);
      return { rbytes: src.rbytes, rfiles: src.rfiles, rsubdirs: src.rsubdirs, rctime: n.ctime };
    }
    const agg: Aggregate = { rbytes: 0, rfiles: 0, rsubdirs: 0, rctime: n.ctime };
    const prefix = entryPrefix(dir);
    const children: Buffer[] = [];
    for await (const v of this.db.values({ gte: prefix, lt: prefixEnd(prefix) })) children.push(decodeEntry(v).child);
    const inodes = await this.db.getMany(children.map((c) => inodeKey(c)));
    const subdirs: Buffer[] = [];
    children.forEach((c, i) => {
      const v = inodes[i];
      if (v === undefined) return;
      const child = decodeInode(v);
      if (child.kind === 'dir') {
        subdirs.push(c);
        return;
      }
      agg.rfiles++;
      if (child.kind === 'file') agg.rbytes += child.size;
      if (child.ctime > agg.rctime) agg.rctime = child.ctime;
    });
    const stored = await this.db.getMany(subdirs.map((c) => aggregateKey(c)));
    const dirty = await this.db.getMany(subdirs.map((c) => dirtyKey(c)));
    for (let i = 0; i < subdirs.length; i++) {
      const c = subdirs[i]!;
      let sub = fresh.get(c.toString('latin1')) ?? (stored[i] === undefined || dirty[i] !== undefined ? undefined : decodeAggregate(stored[i]!));
      // A subdirectory without an exact aggregate: computed now rather than counted wrong. In deepest-first
      // order that happens only below the source of a pending copy, reached out of order.
      if (sub === undefined) {
        sub = await this.compute(c, fresh, depth + 1);
        if (sub === undefined) continue;
        fresh.set(c.toString('latin1'), sub);
        await this.db.put(aggregateKey(c), encodeAggregate(sub));
      }
      agg.rsubdirs += 1 + sub.rsubdirs;
      agg.rfiles += sub.rfiles;
      agg.rbytes += sub.rbytes;
      if (sub.rctime > agg.rctime) agg.rctime = sub.rctime;
    }
    return agg;
  }

  /** The exact aggregate of a live directory: settled this pass, or stored and clean, or computed now. */
  private async exact(dir: Buffer, fresh: Map<string, Aggregate>, depth: number): Promise<Aggregate> {
    const k = dir.toString('latin1');
    const known = fresh.get(k);
    if (known !== undefined) return known;
    const [agg, dirty] = await this.db.getMany([aggregateKey(dir), dirtyKey(dir)]);
    if (agg !== undefined && dirty === undefined) return decodeAggregate(agg);
    const computed = await this.compute(dir, fresh, depth) ?? { rbytes: 0, rfiles: 0, rsubdirs: 0, rctime: 0n };
    fresh.set(k, computed);
    return computed;
  }
}
