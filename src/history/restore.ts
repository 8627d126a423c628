// `bazil restore`: makes a path of the live volume what it was at a past
// point, with new events (the history in between is kept, and the restore
// itself can be undone the same way). Content is never copied: a restored
// file's set-content names the past manifest, whose objects the store still
// holds. A restored tree is made equal to the past one: entries added
// since are removed, removed ones come back (as new inodes), changed ones
// get their past content, mode, owner, xattrs and mtime. Missing parent
// directories are made from their past attributes.

import { ErrorCodes, isBazilError } from '../../errors/index.js';
import type { EventBody } from '../log/event.js';
import type { Attrs } from '../projection/store.js';
import { pathError, splitPath } from '../volume/paths.js';
import type { ProjectionReader, VolumeReader } from '../volume/reader.js';
import type { Volume } from '../volume/volume.js';
import type { WriteBatch } from '../volume/write-batch.js';

type Reader = VolumeReader<ProjectionReader>;

export interface RestoreResult {
  /** Events appended. */
  events: number;
  created: number;
  removed: number;
  updated: number;
}

const PAGE = 1000;

export async function restorePath(live: Volume, past: Reader, path: string, options: { signal?: AbortSignal } = {}): Promise<RestoreResult> {
  const names = splitPath(path);
  const pastId = await past.resolve(path, options);
  return live.batch(async (batch) => {
    const r = new Restorer(live, past, batch);
    let dir = await live.resolve('/', options);
    let fresh = false;
    for (let i = 0; i < names.length - 1; i++) {
      const p = `/${names.slice(0, i + 1).join('/')}`;
      const child = fresh ? undefined : await lookup(live, p);
      if (child !== undefined) {
        if ((await live.getattr(child)).kind !== 'dir') throw pathError(ErrorCodes.NOT_A_DIRECTORY, 'ENOTDIR', path, `: ${p} is not a directory now; restore it first`);
        dir = child;
        continue;
      }
      const a = await past.stat(p, options);
      dir = await batch.create({ type: 'mkdir', parent: dir, name: names[i]!, mode: a.mode, uid: a.uid, gid: a.gid });
      r.result.created++;
      r.result.events++;
      fresh = true;
    }
    if (names.length === 0) {
      await r.update(await past.getattr(pastId), await live.getattr(dir), '/', '/');
    } else {
      const name = names[names.length - 1]!;
      await r.node(dir, name, fresh ? undefined : await lookup(live, path), pastId, path, path);
    }
    return r.result;
  }, options);
}

class Restorer {
  readonly result: RestoreResult = { events: 0, created: 0, removed: 0, updated: 0 };
  /** Past inode (hex) → the live inode restored for it: a second name of it becomes a hard link. */
  private readonly restored = new Map<string, Buffer>();
  /**
   * Live inodes (hex) already given to a past inode. A live inode with
   * several names may stand for one past inode only: names that were
   * separate files in the past must not share it, or the last update would
   * win for all of them; the other names get new inodes.
   */
  private readonly claimed = new Set<string>();

  constructor(private readonly live: Volume, private readonly past: Reader, private readonly batch: WriteBatch) {}

  /** Makes (parent, name) in the live tree what `pastId` was; `liveId` is what the name holds now. */
  async node(parent: Buffer, name: string, liveId: Buffer | undefined, pastId: Buffer, pastPath: string, livePath: string): Promise<void> {
    const pa = await this.past.getattr(pastId);
    const again = this.restored.get(pastId.toString('hex'));
    if (again !== undefined) {
      if (liveId !== undefined && liveId.equals(again)) return;
      if (liveId !== undefined) await this.remove(parent, name, liveId, livePath);
      await this.append({ type: 'link', inode: again, parent, name });
      return;
    }
    let la: Attrs | undefined = liveId === undefined ? undefined : await this.live.getattr(liveId);
    if (la !== undefined && (this.claimed.has(la.id.toString('hex')) || la.kind !== pa.kind || (pa.kind === 'symlink' && (await this.live.readlinkId(la.id)) !== (await this.past.readlinkId(pastId))))) {
      await this.remove(parent, name, la.id, livePath);
      la = undefined;
    }
    const id = la === undefined ? await this.create(parent, name, pa, pastId, pastPath, livePath) : la.id;
    this.restored.set(pastId.toString('hex'), id);
    this.claimed.add(id.toString('hex'));
    if (la !== undefined) await this.update(pa, la, pastPath, livePath);
  }

  /** Gives the live node `la` (of the same kind) the past node's content, entries and attributes. */
  async update(pa: Attrs, la: Attrs, pastPath: string, livePath: string): Promise<void> {
    let changed = false;
    if (pa.kind === 'file' && (pa.size !== la.size || !sameBytes(pa.manifest, la.manifest))) {
      await this.append({ type: 'set-content', inode: la.id, size: pa.size, manifest: pa.manifest });
      changed = true;
    }
    if (pa.kind === 'dir') changed = (await this.sync(pastPath, la.id, livePath)) || changed;
    if (pa.mode !== la.mode) {
      await this.append({ type: 'chmod', inode: la.id, mode: pa.mode });
      changed = true;
    }
    if (pa.uid !== la.uid || pa.gid !== la.gid) {
      await this.append({ type: 'chown', inode: la.id, uid: pa.uid, gid: pa.gid });
      changed = true;
    }
    changed = (await this.xattrs(pastPath, la.id, livePath, false)) || changed;
    if (changed || pa.mtime !== la.mtime) await this.append({ type: 'utimens', inode: la.id, atime: null, mtime: pa.mtime });
    if (changed) this.result.updated++;
  }

  /** Makes the live directory's entries those of the past one; true when anything changed. */
  async sync(pastPath: string, liveDir: Buffer, livePath: string, fresh = false): Promise<boolean> {
    const pastEntries = await this.entries(this.past, pastPath);
    const liveEntries = fresh ? new Map<string, Buffer>() : await this.entries(this.live, livePath);
    const before = this.result.events;
    for (const [name, id] of liveEntries) if (!pastEntries.has(name)) await this.remove(liveDir, name, id, join(livePath, name));
    for (const [name, id] of pastEntries) await this.node(liveDir, name, liveEntries.get(name), id, join(pastPath, name), join(livePath, name));
    return this.result.events > before;
  }

  private async create(parent: Buffer, name: string, pa: Attrs, pastId: Buffer, pastPath: string, livePath: string): Promise<Buffer> {
    const owner = { uid: pa.uid, gid: pa.gid };
    let id: Buffer;
    switch (pa.kind) {
      case 'dir':
        id = await this.batch.create({ type: 'mkdir', parent, name, mode: pa.mode, ...owner });
        this.result.events++;
        await this.sync(pastPath, id, livePath, true);
        break;
      case 'file':
        id = await this.batch.create({ type: 'create', parent, name, mode: pa.mode, ...owner });
        this.result.events++;
        await this.append({ type: 'set-content', inode: id, size: pa.size, manifest: pa.manifest });
        break;
      case 'symlink':
        id = await this.batch.create({ type: 'symlink', parent, name, target: await this.past.readlinkId(pastId, pastPath), ...owner, mtime: pa.mtime });
        this.result.events++;
        // A symlink is made 0777; a chmod since (Linux ignores it, the projection keeps it) is restored too.
        if (pa.mode !== 0o777) await this.append({ type: 'chmod', inode: id, mode: pa.mode });
        break;
      default:
        id = await this.batch.create({ type: 'mknod', parent, name, kind: pa.kind, mode: pa.mode, ...owner, mtime: pa.mtime });
        this.result.events++;
    }
    this.result.created++;
    await this.xattrs(pastPath, id, livePath, true);
    // Content and entries set the mtime to the event's clock; the past one goes last.
    if (pa.kind === 'dir' || pa.kind === 'file') await this.append({ type: 'utimens', inode: id, atime: null, mtime: pa.mtime });
    return id;
  }

  /** Sets the past xattrs on the live node and removes the others; true when anything changed. */
  private async xattrs(pastPath: string, liveId: Buffer, livePath: string, fresh: boolean): Promise<boolean> {
    const want = new Map<string, Buffer>();
    for (const n of await this.past.listxattr(pastPath)) want.set(n, await this.past.getxattr(pastPath, n));
    const have = new Map<string, Buffer>();
    if (!fresh) for (const n of await this.live.listxattr(livePath)) have.set(n, await this.live.getxattr(livePath, n));
    let changed = false;
    for (const n of have.keys()) {
      if (want.has(n)) continue;
      await this.append({ type: 'removexattr', inode: liveId, name: n });
      changed = true;
    }
    for (const [n, v] of want) {
      if (have.get(n)?.equals(v) === true) continue;
      await this.append({ type: 'setxattr', inode: liveId, name: n, value: v });
      changed = true;
    }
    return changed;
  }

  /** Removes a live entry, and everything below it for a directory. */
  private async remove(parent: Buffer, name: string, id: Buffer, path: string): Promise<void> {
    const a = await this.live.getattr(id);
    if (a.kind === 'dir') {
      for (const [child, cid] of await this.entries(this.live, path)) await this.remove(id, child, cid, join(path, child));
      await this.append({ type: 'rmdir', inode: id, parent, name });
    } else {
      await this.append({ type: 'unlink', inode: id, parent, name });
    }
    this.result.removed++;
  }

  private async entries(reader: Reader, path: string): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (let page = await reader.readdir(path, { limit: PAGE }); page.length > 0; page = await reader.readdir(path, { after: page[page.length - 1]!.name, limit: PAGE })) {
      for (const e of page) out.set(e.name, e.id);
    }
    return out;
  }

  private async append(body: EventBody): Promise<void> {
    await this.batch.append(body);
    this.result.events++;
  }
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
}

/** The live inode at `path`, or undefined when nothing is there. */
async function lookup(live: Volume, path: string): Promise<Buffer | undefined> {
  try {
    return await live.resolve(path);
  } catch (err) {
    if (isBazilError(err, ErrorCodes.NOT_FOUND)) return undefined;
    throw err;
  }
}
