// What `import --update` compares: the volume's side of a tree being
// imported again into the directory it was imported to before. The walk
// (import-export.ts, Importer) reads the local side; this reads the old
// state of the volume and turns differences into events, so that an entry
// found as it was writes nothing at all. That is what keeps a second
// import of the same tree from growing the home (each event is a few
// hundred bytes of log and as much of projection).
//
// The old state is read from the projection while the import's batch is
// open: the batch's events are projected only when it commits, so every
// read here sees the tree as it was before this import, which is what
// is being compared.

import type { BigIntStats } from 'node:fs';
import type { Attrs } from './reader.js';
import type { Volume } from './volume.js';
import type { WriteBatch } from './write-batch.js';
import type { EventBody } from '../log/event.js';

const PAGE = 1000;

export class ImportUpdater {
  constructor(
    private readonly volume: Volume,
    private readonly batch: WriteBatch,
    private readonly options: { signal?: AbortSignal },
  ) {}

  /** The entries of the old directory at `volPath`, by name, with their attributes. */
  async entries(volPath: string): Promise<Map<string, Attrs>> {
    const out = new Map<string, Attrs>();
    for (let page = await this.volume.readdir(volPath, { limit: PAGE, signal: this.options.signal }); page.length > 0;
      page = await this.volume.readdir(volPath, { after: page[page.length - 1]!.name, limit: PAGE, signal: this.options.signal })) {
      const attrs = await Promise.all(page.map((e) => this.volume.getattr(e.id, this.options)));
      for (const [i, e] of page.entries()) out.set(e.name, attrs[i]!);
    }
    return out;
  }

  /**
   * Removes the old entry `name` of the directory `parent` (at `parentPath`),
   * a directory with everything under it. Returns the entries removed.
   */
  async remove(parent: Buffer, parentPath: string, name: string, attrs: Attrs): Promise<number> {
    if (attrs.kind !== 'dir') {
      await this.batch.append({ type: 'unlink', inode: attrs.id, parent, name });
      return 1;
    }
    const path = childPath(parentPath, name);
    let removed = 1;
    for (const [child, childAttrs] of await this.entries(path)) removed += await this.remove(attrs.id, path, child, childAttrs);
    await this.batch.append({ type: 'rmdir', inode: attrs.id, parent, name });
    return removed;
  }

  /** An old file's manifest and the content store (whose seal workers can learn its chunks). */
  sealedContent(attrs: Attrs): ReturnType<Volume['sealedContent']> {
    return this.volume.sealedContent(attrs);
  }

  /** The old target of the symlink `id`. */
  readlink(id: Buffer): Promise<string> {
    return this.volume.readlinkId(id);
  }

  /** The old extended attributes of `id`, by name. */
  async xattrsOf(id: Buffer): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const name of await this.volume.listxattrId(id)) out.set(name, await this.volume.getxattrId(id, name, id.toString('hex')));
    return out;
  }
}

/** The events that make `old`'s extended attributes those of `local` (name order), on `inode`. */
export function xattrChanges(inode: Buffer, old: Map<string, Buffer>, local: Array<[string, Buffer]>): EventBody[] {
  const events: EventBody[] = [];
  const kept = new Set<string>();
  for (const [name, value] of local) {
    kept.add(name);
    const before = old.get(name);
    if (before === undefined || !before.equals(value)) events.push({ type: 'setxattr', inode, name, value });
  }
  for (const name of [...old.keys()].sort()) if (!kept.has(name)) events.push({ type: 'removexattr', inode, name });
  return events;
}

/**
 * The events that give the old inode the local mode, owner and mtime where
 * they differ; `touched` says the mtime must be set anyway (new content
 * set it to the event's time).
 */
export function attrChanges(old: Attrs, st: BigIntStats, touched: boolean, isLink = false): EventBody[] {
  const events: EventBody[] = [];
  const mode = Number(st.mode) & 0o7777;
  if (!isLink && (old.mode & 0o7777) !== mode) events.push({ type: 'chmod', inode: old.id, mode });
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  if (old.uid !== uid || old.gid !== gid) events.push({ type: 'chown', inode: old.id, uid, gid });
  if (touched || old.mtime !== st.mtimeNs) events.push({ type: 'utimens', inode: old.id, atime: null, mtime: st.mtimeNs });
  return events;
}

/** Whether the old entry is of the kind of the local one. */
export function sameKind(old: Attrs, st: BigIntStats): boolean {
  return (old.kind === 'dir' && st.isDirectory()) || (old.kind === 'file' && st.isFile()) || (old.kind === 'symlink' && st.isSymbolicLink());
}

export function childPath(parentPath: string, name: string): string {
  return parentPath === '/' ? `/${name}` : `${parentPath}/${name}`;
}
