// Applying one event to the filesystem projection: a pure function of the
// event (header and body) and the state read through `FsTx`. It reads no
// clock and no environment: ctime, and mtime where the body sets none, are
// the event's HLC in nanoseconds (hlcToNanoseconds).
//
// Events of several writers meet here in merge order, so an event may find
// the tree other than its writer saw it. The rules (docs/projection.md,
// "Conflicts") keep every peer's result identical and never hide data:
// - a name already taken (concurrent creates, renames, links): the later
//   event's node gets `name.conflict-<writer8>-<hlc>`;
// - an event whose expected inode is no longer at (parent, name), or that
//   names an inode or directory that is gone: skipped, and noted;
// - a node created in a directory that is gone goes to `/lost+found`;
// - a rename over a target its writer had not seen (placed or written by a
//   concurrent event), or over a non-empty directory, or a dir over a file:
//   the moved node takes a conflict name beside the target instead;
// - an unlink or rename-over that would drop the last link of a file whose
//   latest content its writer had not seen, and a write to a file whose
//   removal its writer had not seen: the file is kept in /lost+found.
// Nothing here throws on a well-formed event.

import { createHash } from 'node:crypto';
import type { LogEvent } from '../log/codec.js';
import { hlcToNanoseconds } from '../log/hlc.js';
import { conflictName } from './conflict-name.js';
import { CloneTable, copyOf, materialiseAll, materialiseLevel } from './clones.js';
import type { Entry, Inode, Note, PendingClone, Stamp } from './schema.js';

/** The state apply reads and writes; reads see the writes made before them. */
export interface FsTx {
  root(): Promise<Buffer | undefined>;
  setRoot(id: Buffer): void;
  inode(id: Uint8Array): Promise<Inode | undefined>;
  /** `fresh`: the caller knows no inode has this id yet (a derived copy), so nothing needs reading. */
  putInode(id: Uint8Array, inode: Inode, fresh?: boolean): void;
  entry(parent: Uint8Array, name: string): Promise<Entry | undefined>;
  putEntry(parent: Uint8Array, name: string, entry: Entry): void;
  deleteEntry(parent: Uint8Array, name: string): void;
  xattr(id: Uint8Array, name: string): Promise<Buffer | undefined>;
  putXattr(id: Uint8Array, name: string, value: Buffer): void;
  deleteXattr(id: Uint8Array, name: string): void;
  /** Every entry of a directory, in name order (reflink copies a level at once). */
  entries(dir: Uint8Array): Promise<[string, Entry][]>;
  /** Every extended attribute of a node, in name order. */
  xattrs(id: Uint8Array): Promise<[string, Buffer][]>;
  /** The directories holding an entry that names `id`; may name more than those (never fewer). */
  parentsOf(id: Uint8Array): Promise<Buffer[]>;
  /** Pending directory copies (clones.ts), as this transaction sees them. */
  readonly clones: CloneTable;
  putClone(dir: Uint8Array, row: PendingClone | null): void;
  /** Materialise a directory copy at once instead of lazily (an in-memory projection has no reason to wait). */
  readonly eagerClones: boolean;
}

/** null when the event applied as written; otherwise what happened instead. */
export type Outcome = Note | null;

export const LOST_FOUND_NAME = 'lost+found';
/** Parent links followed at most (a guard: the tree has no cycles). */
const MAX_DEPTH = 100_000;

/** The id of a volume's lost+found directory: derived, since no event creates it. */
export function lostFoundId(root: Uint8Array): Buffer {
  return createHash('sha256').update('bazil/v1/lost+found').update(root).digest();
}

/**
 * What applying `ev` will most likely read, so a batch can fetch it all in
 * one round trip before applying: the inodes and entries the body names.
 * Reads outside this list (conflict names, cycle checks, lost+found) still
 * work, one by one.
 */
export function likelyReads(ev: LogEvent): { inodes: Uint8Array[]; entries: [Uint8Array, string][] } {
  const b = ev.body;
  switch (b.type) {
    case 'mkdir': case 'create': case 'mknod': case 'symlink':
      return { inodes: [ev.id, b.parent], entries: [[b.parent, b.name]] };
    case 'link':
      return { inodes: [b.inode, b.parent], entries: [[b.parent, b.name]] };
    case 'unlink': case 'rmdir':
      return { inodes: [b.inode, b.parent], entries: [[b.parent, b.name]] };
    case 'rename':
      return { inodes: [b.inode, b.parent, b.newParent], entries: [[b.parent, b.name], [b.newParent, b.newName]] };
    case 'set-content': case 'truncate': case 'chmod': case 'chown': case 'utimens': case 'setxattr': case 'removexattr':
      return { inodes: [b.inode], entries: [] };
    case 'clone':
      return { inodes: [ev.id, b.inode, b.parent], entries: [[b.parent, b.name]] };
    default:
      return { inodes: [], entries: [] };
  }
}

export async function applyEvent(tx: FsTx, ev: LogEvent): Promise<Outcome> {
  return new Apply(tx, ev).run();
}

class Apply {
  private readonly now: bigint;
  private readonly stamp: Stamp;

  constructor(private readonly tx: FsTx, private readonly ev: LogEvent) {
    this.now = hlcToNanoseconds(ev.hlc);
    this.stamp = { writer: Buffer.from(ev.writer), seq: ev.seq };
  }

  async run(): Promise<Outcome> {
    const b = this.ev.body;
    if (b.type === 'snapshot' || b.type === 'snapshot-rm' || b.type === 'pin' || b.type === 'unpin' || b.type === 'placement') {
      return { outcome: 'ignored', detail: `${b.type}: not part of the tree` };
    }
    const root = await this.tx.root();
    if (b.type === 'create-volume') {
      if (root !== undefined) return skipped('create-volume: the volume already has a root');
      const id = Buffer.from(this.ev.id);
      this.tx.setRoot(id);
      this.tx.putInode(id, this.node('dir', b.mode, b.uid, b.gid, undefined, null, null));
      return null;
    }
    if (root === undefined) return skipped(`${b.type}: no create-volume applied yet`);
    await this.beforeChanges();
    switch (b.type) {
      case 'mkdir': return this.make(root, b.parent, b.name, this.node('dir', b.mode, b.uid, b.gid, b.mtime, null, null));
      case 'create': {
        const file = this.node('file', b.mode, b.uid, b.gid, b.mtime, null, null);
        // Born with content: the size and manifest of a set-content, but the mtime stays the event's explicit one.
        if (b.size !== undefined) file.size = b.size;
        if (b.manifest !== undefined && b.manifest !== null) file.manifest = Buffer.from(b.manifest);
        return this.make(root, b.parent, b.name, file);
      }
      case 'mknod': return this.make(root, b.parent, b.name, this.node(b.kind, b.mode, b.uid, b.gid, b.mtime, null, null));
      case 'symlink': return this.make(root, b.parent, b.name, this.node('symlink', 0o777, b.uid, b.gid, b.mtime, b.target, null));
      case 'link': return this.link(b.inode, b.parent, b.name);
      case 'set-content':
      case 'truncate': return this.write(root, b.inode, b.size, b.type === 'set-content' ? { manifest: b.manifest === null ? null : Buffer.from(b.manifest) } : undefined);
      case 'unlink': return this.unlink(root, b.inode, b.parent, b.name);
      case 'rmdir': return this.rmdir(b.inode, b.parent, b.name);
      case 'rename': return this.rename(root, b.inode, b.parent, b.name, b.newParent, b.newName);
      case 'chmod': return this.attr(b.inode, (n) => { n.mode = b.mode; });
      case 'chown': return this.attr(b.inode, (n) => {
        if (b.uid !== null) n.uid = b.uid;
        if (b.gid !== null) n.gid = b.gid;
      });
      case 'utimens': return this.attr(b.inode, (n) => {
        if (b.atime !== null) n.atime = b.atime === 'now' ? this.now : b.atime;
        if (b.mtime !== null) n.mtime = b.mtime === 'now' ? this.now : b.mtime;
      });
      case 'setxattr': {
        const out = await this.attr(b.inode, () => undefined);
        if (out === null) this.tx.putXattr(b.inode, b.name, Buffer.from(b.value));
        return out;
      }
      case 'removexattr': {
        if ((await this.tx.xattr(b.inode, b.name)) === undefined) return skipped(`removexattr: no attribute ${b.name}`);
        this.tx.deleteXattr(b.inode, b.name);
        return this.attr(b.inode, () => undefined);
      }
      case 'clone': return this.clone(root, b.inode, b.parent, b.name);
    }
  }

  /**
   * Materialises the pending directory copies this event could otherwise
   * change the meaning of (clones.ts): copies whose source tree holds a
   * node the event changes, and copies whose entries it changes. An event
   * naming a node that does not exist may name a copy its writer saw
   * materialised by a read: every copy is materialised, so it exists here
   * too if it exists at all.
   */
  private async beforeChanges(): Promise<void> {
    if (!this.tx.clones.any()) return;
    const b = this.ev.body;
    for (const id of likelyReads(this.ev).inodes) {
      if (Buffer.compare(id, this.ev.id) !== 0 && (await this.tx.inode(id)) === undefined) {
        await materialiseAll(this.tx);
        return;
      }
    }
    switch (b.type) {
      case 'mkdir': case 'create': case 'mknod': case 'symlink': case 'clone':
        return this.beforeChange(b.parent, true);
      case 'link': case 'unlink':
        await this.beforeChange(b.parent, true);
        return this.beforeChange(b.inode, false);
      case 'rmdir':
        await this.beforeChange(b.parent, true);
        return this.beforeChange(b.inode, true);
      case 'rename': {
        await this.beforeChange(b.parent, true);
        await this.beforeChange(b.newParent, true);
        await this.beforeChange(b.inode, false);
        const target = await this.tx.entry(b.newParent, b.newName);
        if (target !== undefined) await this.beforeChange(target.child, true);
        return;
      }
      case 'set-content': case 'truncate': case 'chmod': case 'chown': case 'utimens': case 'setxattr': case 'removexattr':
        return this.beforeChange(b.inode, false);
      default:
    }
  }

  /**
   * Before node `id` changes: every pending copy of a directory on a path
   * from the root to it is materialised, top down (each level makes the
   * copies of the next one), and, when its `entries` change, the node itself
   * if it is a pending copy. A file is reached through every directory
   * naming it (hard links).
   */
  private async beforeChange(id: Uint8Array, entries: boolean): Promise<void> {
    if (!this.tx.clones.any()) return;
    const n = await this.tx.inode(id);
    if (n === undefined) return;
    const dirs = n.kind === 'dir' ? [Buffer.from(id)] : await this.tx.parentsOf(id);
    for (const dir of dirs) {
      const path: Buffer[] = [];
      for (let cur: Buffer | null = dir; cur !== null && path.length < MAX_DEPTH; cur = (await this.tx.inode(cur))?.parent ?? null) path.push(cur);
      for (let i = path.length - 1; i >= 0; i--) {
        for (const copy of this.tx.clones.clonesOf(path[i]!)) await materialiseLevel(this.tx, copy);
      }
    }
    if (entries && n.kind === 'dir') await materialiseLevel(this.tx, id);
  }

  /**
   * A copy of `source` named (parent, name), made like any new node (a taken
   * name gets a conflict name, a gone parent means lost+found). A directory
   * copy holds no entries yet: it is a pending clone of its source's tree.
   */
  private async clone(root: Buffer, source: Uint8Array, parent: Uint8Array, name: string): Promise<Outcome> {
    const src = await this.tx.inode(source);
    if (src === undefined || src.nlink === 0) return skipped('clone: no such node');
    const id = Buffer.from(this.ev.id);
    if ((await this.tx.inode(id)) !== undefined) return skipped('clone: inode exists');
    if (src.kind === 'dir') {
      // Where make() will put it: the parent, else lost+found, which is made under the root when it is missing.
      const lf = lostFoundId(root);
      const into = (await this.liveDir(parent)) !== undefined ? parent : (await this.liveDir(lf)) !== undefined ? lf : root;
      if (await this.isWithin(into, source)) return skipped(`clone: ${name} would be a copy inside its own source`);
    }
    const xattrs = await this.tx.xattrs(source);
    const note = await this.make(root, parent, name, copyOf(src, this.now, this.stamp, null));
    for (const [xname, value] of xattrs) this.tx.putXattr(id, xname, value);
    if (src.kind === 'dir' && src.entries > 0) {
      this.tx.putClone(id, { source: this.tx.clones.get(source)?.source ?? Buffer.from(source), ctime: this.now, stamp: this.stamp });
      if (this.tx.eagerClones) await materialiseAll(this.tx);
    }
    return note;
  }

  private node(kind: Inode['kind'], mode: number, uid: number, gid: number, mtime: bigint | undefined, target: string | null, parent: Buffer | null): Inode {
    return {
      kind, mode, uid, gid, size: target === null ? 0 : Buffer.byteLength(target), nlink: kind === 'dir' ? 2 : 1,
      mtime: mtime ?? this.now, ctime: this.now, atime: null, manifest: null, target, parent, entries: 0,
      changed: this.stamp, unlinked: null,
    };
  }

  /** Had this event's writer seen the event at `s` when it wrote this one? */
  private saw(s: Stamp): boolean {
    if (Buffer.compare(s.writer, this.ev.writer) === 0) return this.ev.seq >= s.seq;
    return this.ev.deps.get(s.writer) >= s.seq;
  }

  private async liveDir(id: Uint8Array): Promise<Inode | undefined> {
    const n = await this.tx.inode(id);
    return n !== undefined && n.kind === 'dir' && n.nlink > 0 ? n : undefined;
  }

  /** A free name in `parent` for `name`: itself, or its conflict names in turn. */
  private async freeName(parent: Uint8Array, name: string): Promise<string> {
    if ((await this.tx.entry(parent, name)) === undefined) return name;
    for (let attempt = 1; ; attempt++) {
      const n = conflictName(name, this.ev.writer, this.ev.hlc, attempt);
      if ((await this.tx.entry(parent, n)) === undefined) return n;
    }
  }

  /** Adds the entry (parent, name) → child (name must be free) and counts it in the parent. */
  private async attach(parent: Uint8Array, name: string, child: Uint8Array, isDir: boolean): Promise<void> {
    this.tx.putEntry(parent, name, { child: Buffer.from(child), placed: this.stamp });
    const p = (await this.tx.inode(parent))!;
    p.entries++;
    if (isDir) p.nlink++;
    p.mtime = p.ctime = this.now;
    this.tx.putInode(parent, p);
  }

  private async detach(parent: Uint8Array, name: string, isDir: boolean): Promise<void> {
    this.tx.deleteEntry(parent, name);
    const p = (await this.tx.inode(parent))!;
    p.entries--;
    if (isDir) p.nlink--;
    p.mtime = p.ctime = this.now;
    this.tx.putInode(parent, p);
  }

  /** The volume's lost+found, made (or put back under the root) on first need. */
  private async lostFound(root: Buffer): Promise<Buffer> {
    const id = lostFoundId(root);
    if ((await this.liveDir(id)) !== undefined) {
      await this.beforeChange(id, true);
      return id;
    }
    const r = (await this.tx.inode(root))!;
    this.tx.putInode(id, this.node('dir', 0o700, r.uid, r.gid, undefined, null, root));
    await this.attach(root, await this.freeName(root, LOST_FOUND_NAME), id, true);
    return id;
  }

  private async make(root: Buffer, parent: Uint8Array, name: string, node: Inode): Promise<Outcome> {
    const id = Buffer.from(this.ev.id);
    if ((await this.tx.inode(id)) !== undefined) return skipped(`${this.ev.body.type}: inode exists`);
    let dir: Buffer = Buffer.from(parent);
    let note: Outcome = null;
    if ((await this.liveDir(dir)) === undefined) {
      dir = await this.lostFound(root);
      note = { outcome: 'lost+found', detail: `${this.ev.body.type}: the parent directory is gone` };
    }
    const placed = await this.freeName(dir, name);
    if (placed !== name && note === null) note = { outcome: 'conflict', detail: `${this.ev.body.type}: ${name} was taken; created as ${placed}` };
    if (node.kind === 'dir') node.parent = dir;
    this.tx.putInode(id, node);
    await this.attach(dir, placed, id, node.kind === 'dir');
    return note;
  }

  private async link(inode: Uint8Array, parent: Uint8Array, name: string): Promise<Outcome> {
    const n = await this.tx.inode(inode);
    if (n === undefined || n.kind === 'dir') return skipped('link: no such file');
    if ((await this.liveDir(parent)) === undefined) return skipped('link: the directory is gone');
    const placed = await this.freeName(parent, name);
    n.nlink++;
    n.unlinked = null;
    n.ctime = this.now;
    this.tx.putInode(inode, n);
    await this.attach(parent, placed, inode, false);
    return placed === name ? null : { outcome: 'conflict', detail: `link: ${name} was taken; linked as ${placed}` };
  }

  private async write(root: Buffer, inode: Uint8Array, size: number, content: { manifest: Buffer | null } | undefined): Promise<Outcome> {
    const n = await this.tx.inode(inode);
    if (n === undefined || n.kind !== 'file') return skipped(`${this.ev.body.type}: no such file`);
    n.size = size;
    if (content !== undefined) n.manifest = content.manifest;
    n.mtime = n.ctime = this.now;
    n.changed = this.stamp;
    let note: Outcome = null;
    if (n.unlinked !== null && !this.saw(n.unlinked)) {
      // Removed by an event this writer had not seen: the write must stay visible.
      n.unlinked = null;
      n.nlink = 1;
      const lf = await this.lostFound(root);
      const placed = await this.freeName(lf, Buffer.from(inode).subarray(0, 8).toString('hex'));
      await this.attach(lf, placed, inode, false);
      note = { outcome: 'lost+found', detail: `${this.ev.body.type}: the file was removed concurrently; kept as /${LOST_FOUND_NAME}/${placed}` };
    }
    this.tx.putInode(inode, n);
    return note;
  }

  /** Drops one link of a non-directory; a last link its remover raced a write on moves to lost+found. */
  private async dropLink(root: Buffer, inode: Uint8Array, name: string): Promise<Outcome> {
    const n = (await this.tx.inode(inode))!;
    n.ctime = this.now;
    if (n.nlink > 1 || this.saw(n.changed)) {
      n.nlink--;
      if (n.nlink === 0) n.unlinked = this.stamp;
      this.tx.putInode(inode, n);
      return null;
    }
    this.tx.putInode(inode, n);
    const lf = await this.lostFound(root);
    const placed = await this.freeName(lf, name);
    await this.attach(lf, placed, inode, false);
    return { outcome: 'lost+found', detail: `${this.ev.body.type}: ${name} was written concurrently; kept as /${LOST_FOUND_NAME}/${placed}` };
  }

  private async unlink(root: Buffer, inode: Uint8Array, parent: Uint8Array, name: string): Promise<Outcome> {
    const e = await this.tx.entry(parent, name);
    if (e === undefined || !e.child.equals(inode)) return skipped(`unlink: ${name} no longer names that inode`);
    const n = (await this.tx.inode(inode))!;
    if (n.kind === 'dir') return skipped(`unlink: ${name} is a directory`);
    await this.detach(parent, name, false);
    return this.dropLink(root, inode, name);
  }

  private async rmdir(inode: Uint8Array, parent: Uint8Array, name: string): Promise<Outcome> {
    const e = await this.tx.entry(parent, name);
    if (e === undefined || !e.child.equals(inode)) return skipped(`rmdir: ${name} no longer names that directory`);
    const n = (await this.tx.inode(inode))!;
    if (n.kind !== 'dir') return skipped(`rmdir: ${name} is not a directory`);
    if (n.entries > 0) return skipped(`rmdir: ${name} is not empty (entries added concurrently are kept)`);
    await this.detach(parent, name, true);
    this.removeDir(inode, n);
    return null;
  }

  private removeDir(id: Uint8Array, n: Inode): void {
    n.nlink = 0;
    n.ctime = this.now;
    n.unlinked = this.stamp;
    this.tx.putInode(id, n);
  }

  private async rename(root: Buffer, inode: Uint8Array, parent: Uint8Array, name: string, newParent: Uint8Array, newName: string): Promise<Outcome> {
    const e = await this.tx.entry(parent, name);
    if (e === undefined || !e.child.equals(inode)) return skipped(`rename: ${name} no longer names that inode`);
    if ((await this.liveDir(newParent)) === undefined) return skipped('rename: the target directory is gone');
    const n = (await this.tx.inode(inode))!;
    const isDir = n.kind === 'dir';
    if (isDir && (await this.isWithin(newParent, inode))) return skipped(`rename: ${name} would move into itself`);
    const target = await this.tx.entry(newParent, newName);
    let dest = newName;
    let note: Outcome = null;
    if (target !== undefined) {
      // POSIX: renaming onto another name of the same inode does nothing.
      if (target.child.equals(inode)) return null;
      const t = (await this.tx.inode(target.child))!;
      const fits = isDir ? t.kind === 'dir' && t.entries === 0 : t.kind !== 'dir';
      if (fits && this.saw(target.placed) && this.saw(t.changed)) {
        await this.detach(newParent, newName, t.kind === 'dir');
        if (t.kind === 'dir') this.removeDir(target.child, t);
        else note = await this.dropLink(root, target.child, newName);
      } else {
        dest = await this.freeName(newParent, newName);
        note = { outcome: 'conflict', detail: `rename: ${newName} holds something else; moved as ${dest}` };
      }
    }
    await this.detach(parent, name, isDir);
    const moved = (await this.tx.inode(inode))!;
    moved.ctime = this.now;
    if (isDir) moved.parent = Buffer.from(newParent);
    this.tx.putInode(inode, moved);
    await this.attach(newParent, dest, inode, isDir);
    return note;
  }

  /** Is `dir` the directory `ancestor` or below it? Walks parent links up to the root. */
  private async isWithin(dir: Uint8Array, ancestor: Uint8Array): Promise<boolean> {
    let cur: Uint8Array | null = dir;
    while (cur !== null) {
      if (Buffer.compare(cur, ancestor) === 0) return true;
      cur = (await this.tx.inode(cur))?.parent ?? null;
    }
    return false;
  }

  private async attr(inode: Uint8Array, change: (n: Inode) => void): Promise<Outcome> {
    const n = await this.tx.inode(inode);
    if (n === undefined) return skipped(`${this.ev.body.type}: no such inode`);
    change(n);
    n.ctime = this.now;
    this.tx.putInode(inode, n);
    return null;
  }
}

function skipped(detail: string): Note {
  return { outcome: 'skipped', detail };
}
