// Copy-on-write directory copies (docs/reflink.md). A clone event copies a
// whole tree in O(1): the new directory records its source as a *pending
// clone* and holds no entries yet. Its level is materialised (the source's
// entries copied, child directories becoming pending clones in turn) only
// before something could see a difference: before an event changes a node
// inside the source's tree or the copy itself, and before a reader lists or
// looks up in the copy. While a clone is pending its source's tree is
// therefore unchanged since the clone event, so materialising later or
// sooner gives the same nodes: copies take their attributes from the
// source, their ctime and stamp from the clone event, and their ids from
// the directory they are copied into and their name.

import { createHash } from 'node:crypto';
import type { FsTx } from './fs-state.js';
import type { Inode, PendingClone, Stamp } from './schema.js';

/** Source entries whose inodes and xattrs are read at once while a level is copied. */
const READ_AHEAD = 128;

const latin1 = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');

/**
 * The pending clones, by directory and by source. A table made over a
 * `base` is an overlay (a batch's view): its changes stay in it until
 * `mergeInto(base)`.
 */
export class CloneTable {
  /** dir → row; null (overlay only) hides a row of the base. */
  private readonly rows = new Map<string, PendingClone | null>();
  private readonly bySource = new Map<string, Set<string>>();
  /** Rows this table adds (a base: all its rows), less those it hides. */
  private delta = 0;

  constructor(private readonly base?: CloneTable) {}

  /** How many clones are pending. */
  count(): number {
    return (this.base?.count() ?? 0) + this.delta;
  }

  /** Whether any clone is pending: the common case (none) costs nothing more. */
  any(): boolean {
    return this.count() > 0;
  }

  get(dir: Uint8Array): PendingClone | undefined {
    const k = latin1(dir);
    if (this.rows.has(k)) return this.rows.get(k) ?? undefined;
    return this.base?.get(dir);
  }

  set(dir: Uint8Array, row: PendingClone | null): void {
    const k = latin1(dir);
    const before = this.get(dir);
    if (before !== undefined) {
      this.delta--;
      this.bySource.get(latin1(before.source))?.delete(k);
    }
    if (row !== null) {
      this.delta++;
      const s = latin1(row.source);
      let set = this.bySource.get(s);
      if (set === undefined) this.bySource.set(s, (set = new Set()));
      set.add(k);
    }
    if (row === null && this.base === undefined) this.rows.delete(k);
    else this.rows.set(k, row);
  }

  /** The pending clones whose source is `source`. */
  clonesOf(source: Uint8Array): Buffer[] {
    const s = latin1(source);
    const out = new Set<string>(this.bySource.get(s) ?? []);
    for (const d of this.base?.clonesOf(source) ?? []) {
      const k = latin1(d);
      if (!this.rows.has(k)) out.add(k);
    }
    return [...out].filter((k) => this.get(Buffer.from(k, 'latin1'))?.source.equals(source) === true).sort().map((k) => Buffer.from(k, 'latin1'));
  }

  /** Every pending clone, in id order. */
  all(): Buffer[] {
    const keys = new Set<string>([...this.rows.keys()]);
    for (const d of this.base?.all() ?? []) keys.add(latin1(d));
    return [...keys].sort().map((k) => Buffer.from(k, 'latin1')).filter((d) => this.get(d) !== undefined);
  }

  /** Applies this overlay's changes to its base and forgets them. */
  mergeInto(): void {
    if (this.base === undefined) return;
    for (const [k, row] of this.rows) this.base.set(Buffer.from(k, 'latin1'), row);
    this.rows.clear();
    this.bySource.clear();
    this.delta = 0;
  }

  /** Forgets every change (overlay) or every row. */
  clear(): void {
    this.rows.clear();
    this.bySource.clear();
    this.delta = 0;
  }
}

/** The id of the copy named `name` in the copied directory `dir`: every peer and every replay derives the same. */
export function copyId(dir: Uint8Array, name: string): Buffer {
  return createHash('sha256').update('bazil/v1/clone\0').update(dir).update(Buffer.from(name, 'utf8')).digest();
}

/**
 * A copy of the node `src`: same kind, mode, owner, times, size, content
 * and symlink target; a file copy has one link (hard links inside a copied
 * tree become separate files, as with `cp -r`).
 */
export function copyOf(src: Inode, ctime: bigint, stamp: Stamp, parent: Buffer | null): Inode {
  return {
    ...src, nlink: src.kind === 'dir' ? src.nlink : 1, ctime, parent: src.kind === 'dir' ? parent : null,
    changed: stamp, unlinked: null,
  };
}

/** Copies the entries of the pending clone `dir`'s source into it; nothing when `dir` is not pending. */
export async function materialiseLevel(tx: FsTx, dir: Uint8Array): Promise<void> {
  const row = tx.clones.get(dir);
  if (row === undefined) return;
  tx.putClone(dir, null);
  const into = Buffer.from(dir);
  const entries = await tx.entries(row.source);
  for (let at = 0; at < entries.length; at += READ_AHEAD) {
    // The reads of a group overlap (each LevelDB read is a trip through the thread pool); the writes stay in name order.
    const group = entries.slice(at, at + READ_AHEAD);
    const [inodes, xattrs] = await Promise.all([
      Promise.all(group.map(([, e]) => tx.inode(e.child))),
      Promise.all(group.map(([, e]) => tx.xattrs(e.child))),
    ]);
    group.forEach(([name, e], i) => copyEntry(tx, row, into, name, e.child, inodes[i], xattrs[i]!));
  }
}

/** One copied entry of a level: the node (a directory becomes a pending clone of its source), its entry and its xattrs. */
function copyEntry(tx: FsTx, row: PendingClone, into: Buffer, name: string, source: Buffer, child: Inode | undefined, xattrs: [string, Buffer][]): void {
  if (child === undefined) return;
  const id = copyId(into, name);
  tx.putInode(id, copyOf(child, row.ctime, row.stamp, into), true);
  tx.putEntry(into, name, { child: id, placed: row.stamp });
  for (const [xname, value] of xattrs) tx.putXattr(id, xname, value);
  if (child.kind === 'dir' && child.entries > 0) {
    // A pending source child stands for its own source's tree, so rows always name a directory that is not pending.
    tx.putClone(id, { source: tx.clones.get(source)?.source ?? source, ctime: row.ctime, stamp: row.stamp });
  }
}

/** Materialises every pending clone, level by level, until none is left. */
export async function materialiseAll(tx: FsTx): Promise<void> {
  while (tx.clones.any()) {
    for (const dir of tx.clones.all()) await materialiseLevel(tx, dir);
  }
}
