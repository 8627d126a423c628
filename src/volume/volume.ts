// The volume facade (docs/volume-api.md): paths in, events out, reads from
// the projection and the content store. Front ends (CLI, FUSE) use only
// this.
//
// Every write is one or more events appended under the volume's write
// queue, then one log sync (the commit point), then a projection catch-up,
// so a write's effect is visible to reads once it resolves. Paths never
// follow symlinks: a symlink in the middle of a path is ENOTDIR, as for a
// POSIX call with O_NOFOLLOW on every component.

import { join } from 'node:path';
import { ErrorCodes } from '../../errors/index.js';
import { checkAborted, ContentStore, type ContentSource } from '../cas/content-store.js';
import { encodeManifest, type Manifest } from '../cas/manifest.js';
import { openHome, type Home } from '../home/home.js';
import { openVolumeByName, type OpenVolume } from '../home/volumes.js';
import type { EventBody, TimeSpec } from '../log/event.js';
import { ProjectionStore, Projector, type Attrs, type DirEntry } from '../projection/index.js';
import { VolumeReader, type CallOptions, type ReaddirOptions } from './reader.js';
import { pathError, splitParent, splitPath } from './paths.js';
import { WriteBatch } from './write-batch.js';
import { runFsck, type FsckOptions, type FsckReport } from './fsck.js';

/** The projection's directory inside the volume's directory. */
export const PROJECTION_DIR = 'projection';
const DEFAULT_DIR_MODE = 0o755;
const DEFAULT_FILE_MODE = 0o644;

/** Attributes of a new node; uid and gid default to the calling process's, mtime to the event's clock. */
export interface NewNodeOptions extends CallOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeNs?: bigint;
}

export interface RebuildResult {
  events: number;
  ms: number;
}

export type { Attrs, CallOptions, DirEntry, ReaddirOptions };

export class Volume extends VolumeReader {
  private writes: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly home: Home,
    private readonly open: OpenVolume,
    projection: ProjectionStore,
    private readonly projector: Projector,
    content: ContentStore,
  ) {
    super(open.name, projection, content);
  }

  /** Opens the home at `homeDir` (taking its lock) and its volume `name`, and brings the projection up to the log. */
  static async open(homeDir: string, name: string, options: CallOptions = {}): Promise<Volume> {
    checkAborted(options.signal);
    const home = await openHome(homeDir);
    let open: OpenVolume | undefined;
    let projection: ProjectionStore | undefined;
    try {
      open = await openVolumeByName(home, name);
      projection = await ProjectionStore.open(join(open.dir, PROJECTION_DIR));
      const projector = new Projector(projection, open.log);
      await projector.catchUp();
      return new Volume(home, open, projection, projector, new ContentStore(open.arenas, { keys: open.keys }));
    } catch (err) {
      await projection?.close();
      await open?.close();
      await home.close();
      throw err;
    }
  }

  get id(): Buffer {
    return this.open.id;
  }

  /** Waits for pending writes, then closes the content store, projection, volume and home. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writes.catch(() => undefined);
    await this.content.close();
    await this.projection.close();
    await this.open.close();
    await this.home.close();
  }

  // ---- writes: one event each ----

  async mkdir(path: string, options: NewNodeOptions = {}): Promise<Buffer> {
    return this.commit(options.signal, async (b) => {
      const { parent, name } = await this.newEntry(path);
      return b.create({ type: 'mkdir', parent, name, mode: options.mode ?? DEFAULT_DIR_MODE, ...owner(options), ...mtime(options) });
    });
  }

  /**
   * Writes a whole file: creates it if missing (with `options`' attributes),
   * then sets its content. The content is durable before the set-content
   * event is appended.
   */
  async writeFile(path: string, source: ContentSource | Uint8Array, options: NewNodeOptions = {}): Promise<Buffer> {
    return this.commit(options.signal, async (b) => {
      const { parent: parentNames, name } = splitParent(path);
      const parent = await this.dirAt(parentNames, path);
      const existing = await this.projection.lookup(parent, name);
      if (existing !== undefined && (await this.attrsOf(existing, path)).kind !== 'file') {
        throw pathError(ErrorCodes.IS_A_DIRECTORY, 'EISDIR', path, 'exists and is not a regular file');
      }
      const inode = existing ?? await b.create({
        type: 'create', parent, name, mode: options.mode ?? DEFAULT_FILE_MODE, ...owner(options), ...mtime(options),
      });
      const written = await b.writeContent(source instanceof Uint8Array ? [source] : source);
      await b.append({ type: 'set-content', inode, size: written.size, manifest: manifestBytes(written.manifestRoot) });
      // set-content stamps its own clock as mtime; an explicit one comes after it.
      if (options.mtimeNs !== undefined) await b.append({ type: 'utimens', inode, atime: null, mtime: options.mtimeNs });
      return inode;
    });
  }

  async symlink(target: string, path: string, options: Omit<NewNodeOptions, 'mode'> = {}): Promise<Buffer> {
    return this.commit(options.signal, async (b) => {
      const { parent, name } = await this.newEntry(path);
      return b.create({ type: 'symlink', parent, name, target, ...owner(options), ...mtime(options) });
    });
  }

  /** A new hard link `newPath` to the non-directory at `existingPath`. */
  async link(existingPath: string, newPath: string, options: CallOptions = {}): Promise<void> {
    await this.commit(options.signal, async (b) => {
      const inode = await this.walk(splitPath(existingPath), existingPath);
      if ((await this.attrsOf(inode, existingPath)).kind === 'dir') {
        throw pathError(ErrorCodes.IS_A_DIRECTORY, 'EPERM', existingPath, 'is a directory, which cannot be hard-linked');
      }
      const { parent, name } = await this.newEntry(newPath);
      await b.append({ type: 'link', inode, parent, name });
    });
  }

  async chmod(path: string, mode: number, options: CallOptions = {}): Promise<void> {
    await this.onInode(path, options, (inode) => ({ type: 'chmod', inode, mode }));
  }

  /** null leaves that id unchanged (chown's -1). */
  async chown(path: string, uid: number | null, gid: number | null, options: CallOptions = {}): Promise<void> {
    await this.onInode(path, options, (inode) => ({ type: 'chown', inode, uid, gid }));
  }

  /** Times in ns since the epoch, 'now' for the event's clock, null to leave one alone. */
  async utimens(path: string, atime: TimeSpec, mtimeNs: TimeSpec, options: CallOptions = {}): Promise<void> {
    await this.onInode(path, options, (inode) => ({ type: 'utimens', inode, atime, mtime: mtimeNs }));
  }

  async setxattr(path: string, name: string, value: Uint8Array, options: CallOptions = {}): Promise<void> {
    await this.onInode(path, options, (inode) => ({ type: 'setxattr', inode, name, value }));
  }

  async removexattr(path: string, name: string, options: CallOptions = {}): Promise<void> {
    await this.onInode(path, options, async (inode) => {
      if ((await this.projection.getxattr(inode, name)) === undefined) {
        throw pathError(ErrorCodes.NOT_FOUND, 'ENODATA', path, `has no extended attribute ${JSON.stringify(name)}`);
      }
      return { type: 'removexattr', inode, name };
    });
  }

  /** POSIX rename: replaces a non-directory by a non-directory, or a directory by an empty one. */
  async rename(from: string, to: string, options: CallOptions = {}): Promise<void> {
    await this.commit(options.signal, async (b) => {
      const src = splitParent(from);
      const dst = splitParent(to);
      const { parent, inode, kind } = await this.existingEntry(from);
      const newParent = await this.dirAt(dst.parent, to);
      if (kind === 'dir' && (await this.isInside(newParent, inode))) {
        throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', to, `is inside ${JSON.stringify(from)}, which cannot move into itself`);
      }
      const target = await this.projection.lookup(newParent, dst.name);
      if (target !== undefined && target.equals(inode)) return;
      if (target !== undefined) {
        const targetKind = (await this.attrsOf(target, to)).kind;
        if (kind === 'dir' && targetKind !== 'dir') throw pathError(ErrorCodes.NOT_A_DIRECTORY, 'ENOTDIR', to, 'is not a directory');
        if (kind !== 'dir' && targetKind === 'dir') throw pathError(ErrorCodes.IS_A_DIRECTORY, 'EISDIR', to, 'is a directory');
        if (targetKind === 'dir' && (await this.projection.readdir(target, { limit: 1 })).length > 0) {
          throw pathError(ErrorCodes.NOT_EMPTY, 'ENOTEMPTY', to, 'is a directory that is not empty');
        }
      }
      await b.append({ type: 'rename', inode, parent, name: src.name, newParent, newName: dst.name });
    });
  }

  async unlink(path: string, options: CallOptions = {}): Promise<void> {
    await this.commit(options.signal, async (b) => {
      const { parent, name, inode, kind } = await this.existingEntry(path);
      if (kind === 'dir') throw pathError(ErrorCodes.IS_A_DIRECTORY, 'EISDIR', path, 'is a directory (use rmdir)');
      await b.append({ type: 'unlink', inode, parent, name });
    });
  }

  async rmdir(path: string, options: CallOptions = {}): Promise<void> {
    await this.commit(options.signal, async (b) => {
      const { parent, name, inode, kind } = await this.existingEntry(path);
      if (kind !== 'dir') throw pathError(ErrorCodes.NOT_A_DIRECTORY, 'ENOTDIR', path, 'is not a directory');
      if ((await this.projection.readdir(inode, { limit: 1 })).length > 0) throw pathError(ErrorCodes.NOT_EMPTY, 'ENOTEMPTY', path, 'is not empty');
      await b.append({ type: 'rmdir', inode, parent, name });
    });
  }

  // ---- bulk ----

  /**
   * Runs `work` with a WriteBatch under the write queue: its events are
   * appended as it goes, then synced once and projected once. If `work`
   * throws, what it appended is still committed (a partial batch is
   * visible), then the error is rethrown.
   */
  batch<T>(work: (batch: WriteBatch) => Promise<T>, options: CallOptions = {}): Promise<T> {
    this.check(options.signal);
    return this.commit(options.signal, work);
  }

  /** Drops the projection and replays the whole log. */
  rebuild(options: CallOptions = {}): Promise<RebuildResult> {
    this.check(options.signal);
    return this.exclusive(async () => {
      const started = performance.now();
      const events = await this.projector.rebuild();
      return { events, ms: performance.now() - started };
    });
  }

  /**
   * Checks every arena record, every event (signature, chain, body), every
   * object every file names, and the projection against a replay of the
   * log (fsck.ts). Runs between writes.
   */
  fsck(options: FsckOptions = {}): Promise<FsckReport> {
    this.check(options.signal);
    return this.exclusive(() => runFsck({
      arenas: this.open.arenas, log: this.open.log, content: this.content, projection: this.projection, dir: this.open.dir,
    }, options));
  }

  // ---- internals ----


  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.writes.then(work, work);
    this.writes = result.catch(() => undefined);
    return result;
  }

  private commit<T>(signal: AbortSignal | undefined, work: (batch: WriteBatch) => Promise<T>): Promise<T> {
    this.check(signal);
    return this.exclusive(async () => {
      const batch = new WriteBatch(this.open.log, this.open.arenas, this.content, signal);
      let result: T;
      try {
        result = await work(batch);
        await batch.flush();
      } finally {
        if (batch.appended > 0) {
          await this.open.log.sync();
          await this.projector.catchUp();
        }
      }
      return result;
    });
  }

  /** One event on the inode at `path`, resolved inside the write queue so no other write moves it in between. */
  private onInode(path: string, options: CallOptions, body: (inode: Buffer) => EventBody | Promise<EventBody>): Promise<void> {
    return this.commit(options.signal, async (b) => {
      await b.append(await body(await this.walk(splitPath(path), path)));
    });
  }

  /** The parent directory and name of a path that must not exist yet. */
  private async newEntry(path: string): Promise<{ parent: Buffer; name: string }> {
    const { parent: names, name } = splitParent(path);
    const parent = await this.dirAt(names, path);
    if ((await this.projection.lookup(parent, name)) !== undefined) throw pathError(ErrorCodes.ALREADY_EXISTS, 'EEXIST', path, 'already exists');
    return { parent, name };
  }

  private async existingEntry(path: string): Promise<{ parent: Buffer; name: string; inode: Buffer; kind: Attrs['kind'] }> {
    const { parent: names, name } = splitParent(path);
    const parent = await this.dirAt(names, path);
    const inode = await this.projection.lookup(parent, name);
    if (inode === undefined) throw pathError(ErrorCodes.NOT_FOUND, 'ENOENT', path, 'does not exist');
    return { parent, name, inode, kind: (await this.attrsOf(inode, path)).kind };
  }

  /** Whether directory `dir` is `ancestor` or below it. */
  private async isInside(dir: Buffer, ancestor: Buffer): Promise<boolean> {
    // Attrs carry no parent pointer yet, so this searches down from the ancestor: only directory renames pay for it.
    return dir.equals(ancestor) || this.below(ancestor, dir);
  }

  private async below(dir: Buffer, wanted: Buffer): Promise<boolean> {
    for (let page = await this.projection.readdir(dir, { limit: 1000 }); page.length > 0;
      page = await this.projection.readdir(dir, { after: page[page.length - 1]!.name, limit: 1000 })) {
      for (const e of page) {
        if (e.id.equals(wanted)) return true;
        if ((await this.projection.getattr(e.id))?.kind === 'dir' && (await this.below(e.id, wanted))) return true;
      }
    }
    return false;
  }
}

function owner(options: NewNodeOptions): { uid: number; gid: number } {
  return { uid: options.uid ?? process.getuid?.() ?? 0, gid: options.gid ?? process.getgid?.() ?? 0 };
}

function mtime(options: NewNodeOptions): { mtime?: bigint } {
  return options.mtimeNs === undefined ? {} : { mtime: options.mtimeNs };
}

/** The set-content field for a write's root manifest: null for an empty file. */
export function manifestBytes(root: Manifest | null): Uint8Array | null {
  return root === null ? null : encodeManifest(root);
}
