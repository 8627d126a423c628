// The volume facade (docs/volume-api.md): paths in, events out, reads from
// the projection and the content store. Front ends (CLI, FUSE) use only
// this.
//
// Every write is one or more events appended under the volume's write
// queue, then one log sync (the commit point), then a projection catch-up,
// so a write's effect is visible to reads once it resolves. Paths never
// follow symlinks: a symlink in the middle of a path is ENOTDIR, as for a
// POSIX call with O_NOFOLLOW on every component.

import { statfs as fsStatfs } from 'node:fs/promises';
import { join } from 'node:path';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { chunkKeyer } from '../cas/chunk-keys.js';
import { checkAborted, ContentStore, type ContentSource } from '../cas/content-store.js';
import { encodeManifest, type Manifest } from '../cas/manifest.js';
import { openHome, type Home } from '../home/home.js';
import { contentFormatOf, openVolumeByName, type OpenVolume, type OpenVolumeOptions } from '../home/volumes.js';
import type { EventBody, TimeSpec } from '../log/event.js';
import type { LogStore } from '../log/stream.js';
import { NAME_MAX_BYTES } from '../log/names.js';
import { ProjectionCipher, ProjectionStore, Projector, type Attrs, type DirEntry } from '../projection/index.js';
import { VolumeReader, type CallOptions, type ReaddirOptions } from './reader.js';
import { pathError, splitParent, splitPath } from './paths.js';
import { WriteBatch } from './write-batch.js';
import { EarlyProjection } from './early-projection.js';
import { runFsck, type FsckOptions, type FsckReport } from './fsck.js';
import { openProjection } from './projection-open.js';
import { ARENA_RECOVERY_WARNING, DEFERRED_SYNC_WARNING, warn } from './warnings.js';
import { Handle, type FileHandle, type HandleHost, type OpenFlags } from './file-handle.js';
import { OpenFileTable, checkFileOffset, checkReadRange, type OpenFile, type OpenFileLimits } from './open-files.js';
import { BackgroundSettler, storedAggregates, type AggregateOptions, type Aggregates } from './aggregates.js';

/** The projection's directory inside the volume's directory. */
export const PROJECTION_DIR = 'projection';
const DEFAULT_DIR_MODE = 0o755;
const DEFAULT_FILE_MODE = 0o644;

/** Attributes of a new node; uid and gid default to the calling process's, mtime to the event's clock. */
export interface BatchOptions extends CallOptions {
  /**
   * Projects the batch's events as they become durable, while it runs,
   * instead of all at its end (early-projection.ts): for long batches
   * that do not read the projection back (a plain import).
   */
  projectEarly?: boolean;
}

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

export interface ContentOption {
  /** Seal worker threads of the volume's content store (ContentStoreOptions.sealWorkers); its default when left out. */
  sealWorkers?: number;
  /** Slabs of its seal pool, and their bytes (ContentStoreOptions.sealSlabs, sealSlabBytes); the pool's defaults when left out. */
  sealSlabs?: number;
  sealSlabBytes?: number;
}

export interface SharedHomeOption {
  /**
   * A home the caller already holds open (the daemon, which serves several
   * volumes under the home's one lock): the volume uses it instead of opening
   * the home again, and its close() leaves it open.
   */
  home?: Home;
}

/** The home's lock is one per process: a volume on a shared home must not release it. */
function borrowedHome(home: Home): Home {
  return { dir: home.dir, peerId: home.peerId, signer: home.signer, close: async () => undefined };
}

export type { Attrs, CallOptions, DirEntry, FileHandle, OpenFlags, ReaddirOptions };

/** create()'s options: the new file's attributes, O_EXCL, O_TRUNC, and the handle's access. */
export interface CreateOptions extends OpenFlags {
  mode?: number;
  uid?: number;
  gid?: number;
  /** O_EXCL: fail with EEXIST if the name is taken. */
  exclusive?: boolean;
}

export interface StatfsResult {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namemax: number;
}

/** Bytes per piece when an open file is streamed. */
const STREAM_PIECE = 1024 * 1024;

export class Volume extends VolumeReader {
  private writes: Promise<unknown> = Promise.resolve();
  /** Open files with their unflushed writes (open-files.ts); reads consult it before the projection. */
  private readonly files = new OpenFileTable(this.content);
  private readonly handleHost: HandleHost = {
    checkOpen: (signal) => this.check(signal),
    changed: (file) => this.files.bound(file),
    flushFile: (file, signal) => this.flushFile(file, signal),
    releaseFile: (file) => { this.files.release(file); },
    sync: (signal) => this.sync({ signal }),
  };
  /** How long a metadata commit may stay undurable (deferMetadataDurability); null: durable when it resolves. */
  private deferMs: number | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  /** Folds committed changes into the subtree aggregates while the volume is idle (aggregates.ts). */
  private readonly settler = BackgroundSettler.start(this.projection, (work) => this.exclusive(work));

  private constructor(
    private readonly home: Home,
    private readonly vol: OpenVolume,
    projection: ProjectionStore,
    private readonly projector: Projector,
    content: ContentStore,
  ) {
    super(vol.name, projection, content);
  }

  /**
   * Opens the home at `homeDir` (taking its lock) and its volume `name`, and
   * brings the projection up to the log. `fs` puts the volume's arenas on
   * another file layer (crash tests use the fault-injecting one).
   */
  static async open(homeDir: string, name: string, options: CallOptions & OpenVolumeOptions & SharedHomeOption & ContentOption = {}): Promise<Volume> {
    checkAborted(options.signal);
    const home = options.home !== undefined ? borrowedHome(options.home) : await openHome(homeDir);
    let open: OpenVolume | undefined;
    let projection: ProjectionStore | undefined;
    try {
      // What the arenas' recovery did (a torn tail, damaged records set aside) goes to stderr as a warning.
      open = await openVolumeByName(home, name, { fs: options.fs, log: (m) => warn(ARENA_RECOVERY_WARNING, m) });
      // A damaged or missing projection is rebuilt from the log, with a warning (projection-open.ts).
      const opened = await openProjection(join(open.dir, PROJECTION_DIR), open.log, name, new ProjectionCipher(open.keys.projectionKey));
      projection = opened.store;
      const projector = opened.projector;
      // Chunk keys as the volume's create-volume event says (src/cas/chunk-keys.ts).
      const keyer = await chunkKeyer(contentFormatOf(open.log), open.keys.chunkKey);
      const content = new ContentStore(open.arenas, { keys: open.keys, keyer, sealWorkers: options.sealWorkers, sealSlabs: options.sealSlabs, sealSlabBytes: options.sealSlabBytes });
      return new Volume(home, open, projection, projector, content);
    } catch (err) {
      await projection?.close();
      await open?.close();
      await home.close();
      throw err;
    }
  }

  get id(): Buffer {
    return this.vol.id;
  }

  /** What past-state views (src/history) read besides the projection: the log, the content store, the volume's directory. */
  historySource(): { name: string; dir: string; log: LogStore; content: ContentStore; cipher: ProjectionCipher } {
    this.check(undefined);
    return { name: this.name, dir: this.vol.dir, log: this.vol.log, content: this.content, cipher: this.projection.cipher };
  }

  /** Waits for pending writes, then closes the content store, projection, volume and home. */
  async close(): Promise<void> {
    if (this.closed) return;
    // Unflushed writes of handles still open are committed, as a close of their files would.
    await Promise.allSettled(this.files.all().map((f) => this.flushFile(f, undefined)));
    this.closed = true;
    // Read-ahead slots are the process's: handles left open must not keep them.
    for (const f of this.files.all()) f.stopReadAhead();
    await this.settler.stop();
    await this.writes.catch(() => undefined);
    this.cancelDeferredSync();
    // Every part is closed even when one fails (after an I/O error, say), so
    // the home's lock is always released and this process can reopen it.
    let first: unknown;
    for (const part of [this.content, this.projection, this.vol, this.home]) {
      try {
        await part.close();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  // ---- writes: one event each ----

  async mkdir(path: string, options: NewNodeOptions = {}): Promise<Buffer> {
    return this.commit(options.signal, 'metadata', async (b) => {
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
    return this.commit(options.signal, 'durable', async (b) => {
      const { parent: parentNames, name } = splitParent(path);
      const parent = await this.dirAt(parentNames, path);
      const existing = await this.projection.lookup(parent, name);
      if (existing !== undefined && (await this.attrsOf(existing, path)).kind !== 'file') {
        throw pathError(ErrorCodes.IS_A_DIRECTORY, 'EISDIR', path, 'exists and is not a regular file');
      }
      const written = await b.writeContent(source instanceof Uint8Array ? [source] : source);
      // set-content stamps its own clock as mtime; an explicit one comes after it.
      const complete = (inode: Buffer): EventBody[] => [
        { type: 'set-content', inode, size: written.size, manifest: manifestBytes(written.manifestRoot) },
        ...(options.mtimeNs === undefined ? [] : [{ type: 'utimens', inode, atime: null, mtime: options.mtimeNs } as const]),
      ];
      if (existing !== undefined) {
        for (const body of complete(existing)) await b.append(body);
        return existing;
      }
      // A new file is created together with its content events, after the
      // content is durable: a crash leaves all of it or none, never an empty file.
      let created: Buffer | null = null;
      await b.createFile({
        parent,
        create: { type: 'create', parent, name, mode: options.mode ?? DEFAULT_FILE_MODE, ...owner(options), ...mtime(options) },
        then: (id) => complete(created = id!),
      });
      await b.flush();
      if (created === null) throw new BazilError(ErrorCodes.INTERNAL, `the creation of ${path} was not appended by its batch's flush`);
      return created;
    });
  }

  async symlink(target: string, path: string, options: Omit<NewNodeOptions, 'mode'> = {}): Promise<Buffer> {
    return this.commit(options.signal, 'metadata', async (b) => {
      const { parent, name } = await this.newEntry(path);
      return b.create({ type: 'symlink', parent, name, target, ...owner(options), ...mtime(options) });
    });
  }

  /** A new hard link `newPath` to the non-directory at `existingPath`. */
  async link(existingPath: string, newPath: string, options: CallOptions = {}): Promise<void> {
    await this.commit(options.signal, 'metadata', async (b) => {
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
    await this.flushOpenFile(await this.resolve(path, options), options.signal);
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
    await this.commit(options.signal, 'metadata', async (b) => {
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
    await this.commit(options.signal, 'metadata', async (b) => {
      const { parent, name, inode, kind } = await this.existingEntry(path);
      if (kind === 'dir') throw pathError(ErrorCodes.IS_A_DIRECTORY, 'EISDIR', path, 'is a directory (use rmdir)');
      await b.append({ type: 'unlink', inode, parent, name });
    });
  }

  async rmdir(path: string, options: CallOptions = {}): Promise<void> {
    await this.commit(options.signal, 'metadata', async (b) => {
      const { parent, name, inode, kind } = await this.existingEntry(path);
      if (kind !== 'dir') throw pathError(ErrorCodes.NOT_A_DIRECTORY, 'ENOTDIR', path, 'is not a directory');
      if ((await this.projection.readdir(inode, { limit: 1 })).length > 0) throw pathError(ErrorCodes.NOT_EMPTY, 'ENOTEMPTY', path, 'is not empty');
      await b.append({ type: 'rmdir', inode, parent, name });
    });
  }

  /**
   * A copy of the file or whole tree at `src`, named `dst`, sharing its
   * content: one clone event, whatever the file's size or the tree's
   * (docs/reflink.md). ENOENT for a missing source or target directory,
   * EEXIST for a taken `dst`, EINVAL for a directory copied into itself.
   * A file's unflushed writes are committed first, so the copy has them.
   */
  async reflink(src: string, dst: string, options: CallOptions = {}): Promise<Buffer> {
    await this.flushOpenFile(await this.resolve(src, options), options.signal);
    return this.commit(options.signal, 'metadata', async (b) => {
      const inode = await this.walk(splitPath(src), src);
      const { parent: names } = splitParent(dst);
      if ((await this.attrsOf(inode, src)).kind === 'dir') {
        // dst's ancestors, walked down from the root (paths follow no symlinks): O(depth), not a search of the source's tree.
        let cur = await this.root();
        for (let i = 0; ; i++) {
          if (cur.equals(inode)) throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', dst, `is inside ${JSON.stringify(src)}, which cannot be copied into itself`);
          if (i === names.length) break;
          const next = await this.projection.lookup(cur, names[i]!);
          if (next === undefined) break;
          cur = next;
        }
      }
      const { parent, name } = await this.newEntry(dst);
      const id = await b.append({ type: 'clone', inode, parent, name });
      if (id === null) throw new BazilError(ErrorCodes.INTERNAL, `the copy of ${src} was queued instead of appended`);
      return id;
    });
  }

  // ---- open files: handles, partial writes, truncate ----

  /** Opens the file at `path`: EISDIR for a directory, EINVAL for a symlink or special file; O_TRUNC commits at once. */
  async open(path: string, flags: OpenFlags, options: CallOptions = {}): Promise<FileHandle> {
    return this.openInode(await this.resolve(path, options), path, flags, options);
  }

  /** Opens a file by inode id (what FUSE knows), even one unlinked while other handles hold it open. */
  async openId(id: Uint8Array, flags: OpenFlags, options: CallOptions = {}): Promise<FileHandle> {
    this.check(options.signal);
    const inode = Buffer.from(id);
    return this.openInode(inode, inode.toString('hex'), flags, options);
  }

  /** open(O_CREAT): makes the file if the name is free (EEXIST with `exclusive` if not), then opens it. */
  async create(path: string, opts: CreateOptions, options: CallOptions = {}): Promise<FileHandle> {
    const { id, created } = await this.commit(options.signal, 'metadata', async (b) => {
      const { parent: names, name } = splitParent(path);
      const parent = await this.dirAt(names, path);
      const existing = await this.projection.lookup(parent, name);
      if (existing !== undefined) {
        if (opts.exclusive === true) throw pathError(ErrorCodes.ALREADY_EXISTS, 'EEXIST', path, 'already exists');
        return { id: existing, created: false };
      }
      const inode = await b.create({ type: 'create', parent, name, mode: opts.mode ?? DEFAULT_FILE_MODE, ...owner(opts) });
      return { id: inode, created: true };
    });
    return this.openInode(id, path, { ...opts, truncate: !created && opts.truncate === true }, options);
  }

  /** truncate(2) by path: one event (a truncate for a pure size change, else a spliced set-content). */
  async truncate(path: string, size: number, options: CallOptions = {}): Promise<void> {
    const id = await this.resolve(path, options);
    checkFileOffset(size, 'a size', id);
    const file = this.files.acquire(id, await this.fileAttrs(id, path));
    try {
      file.truncate(size);
      await this.files.bound(file);
      await this.flushFile(file, options.signal);
    } finally {
      this.files.release(file);
    }
  }

  /** A fifo or a socket at `path`; returns its inode id. */
  async mknod(path: string, kind: 'fifo' | 'socket', opts: { mode?: number; uid?: number; gid?: number }, options: CallOptions = {}): Promise<Buffer> {
    if (kind !== 'fifo' && kind !== 'socket') {
      throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', path, `cannot be made as a ${String(kind)}: only fifos and sockets`);
    }
    return this.commit(options.signal, 'metadata', async (b) => {
      const { parent, name } = await this.newEntry(path);
      return b.create({ type: 'mknod', parent, name, kind, mode: opts.mode ?? DEFAULT_FILE_MODE, ...owner(opts) });
    });
  }

  /** Space of the disk that holds the volume; inode counts are the disk's too, since the volume has no limit of its own. */
  async statfs(options: CallOptions = {}): Promise<StatfsResult> {
    this.check(options.signal);
    let s;
    try {
      s = await fsStatfs(this.vol.dir);
    } catch (err) {
      throw new BazilError(ErrorCodes.IO, `statfs of volume '${this.name}' failed`, { path: this.vol.dir, errno: 'EIO' }, err);
    }
    return {
      bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail,
      files: s.files, ffree: s.ffree, namemax: NAME_MAX_BYTES,
    };
  }

  /**
   * Sets when unflushed writes spill from memory into the content store:
   * past `fileBytes` in one file or `volumeBytes` in all (16 and 64 MiB by
   * default). Small values make tests exercise spilling.
   */
  setOpenFileLimits(limits: Partial<OpenFileLimits>): void {
    const next = { ...this.files.limits, ...limits };
    for (const [k, n] of Object.entries(next)) {
      if (!Number.isSafeInteger(n) || n <= 0) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `open-file limit ${k} must be a positive integer`, { [k]: n });
    }
    this.files.limits = next;
  }

  /** Open files and the memory their unflushed writes hold (bounded by spilling, open-files.ts). */
  openFileStats(): { files: number; dirtyBytes: number } {
    return { files: this.files.all().length, dirtyBytes: this.files.dirtyBytes };
  }

  /** Reads see the writes of open handles before they are flushed. */
  override async readFile(path: string, offset = 0, length = Number.MAX_SAFE_INTEGER, options: CallOptions = {}): Promise<Buffer> {
    const id = await this.resolve(path, options);
    const file = this.files.get(id);
    if (file === undefined) return super.readFile(path, offset, length, options);
    await this.fileAttrs(id, path);
    checkReadRange(offset, length, id);
    return file.read(offset, length);
  }

  override async *streamId(id: Uint8Array, path: string, options: CallOptions = {}): AsyncGenerator<Buffer> {
    const file = this.files.get(id);
    if (file === undefined) {
      yield* super.streamId(id, path, options);
      return;
    }
    await this.fileAttrs(id, path);
    for (let at = 0; at < file.size; at += STREAM_PIECE) {
      checkAborted(options.signal);
      yield file.read(at, STREAM_PIECE);
    }
  }

  /**
   * stat without a promise, for the mount's getattr/lookup (src/fuse/ops.ts):
   * the projection's point reads are synchronous already, and a promise per
   * level of the walk was most of the daemon's time per metadata operation.
   * A path that names nothing answers a PathMiss, not an error: a create
   * always starts with such a lookup, and an Error's stack trace cost more
   * than the lookup. null means it cannot be answered now (a directory copy
   * still pending along the path): call stat. Bad paths and a closed volume
   * throw what stat rejects with.
   */
  statNow(path: string): Attrs | PathMiss | null {
    this.check(undefined);
    const names = splitPath(path);
    let id = this.projection.rootIdNow();
    if (id === undefined) return null;
    for (const name of names) {
      const child = this.projection.lookupNow(id, name);
      if (child === null) return null;
      if (child === undefined) return this.projection.getattrNow(id)?.kind !== 'dir' ? NOT_A_DIRECTORY : NOT_FOUND;
      id = child;
    }
    return this.attrsNow(id);
  }

  /** getattr by inode id without a promise (see statNow). */
  getattrNow(id: Uint8Array): Attrs | PathMiss {
    this.check(undefined);
    return this.attrsNow(id);
  }

  /** attrsOf's answer, synchronously. */
  private attrsNow(id: Uint8Array): Attrs | PathMiss {
    const attrs = this.projection.getattrNow(id);
    const file = this.files.get(id);
    if (attrs === undefined || (file === undefined && attrs.nlink === 0)) return NOT_FOUND;
    return file === undefined ? attrs : file.overlay(attrs);
  }

  /** An open file's live size and times; an open file unlinked meanwhile still answers, with nlink 0. */
  protected override async attrsOf(id: Uint8Array, path: string): Promise<Attrs> {
    const attrs = this.attrsNow(id);
    if ('miss' in attrs) throw pathError(ErrorCodes.NOT_FOUND, 'ENOENT', path, 'does not exist');
    return attrs;
  }

  private async openInode(id: Buffer, path: string, flags: OpenFlags, options: CallOptions): Promise<FileHandle> {
    this.check(options.signal);
    const attrs = await this.attrsOf(id, path);
    if (attrs.kind === 'dir') throw pathError(ErrorCodes.IS_A_DIRECTORY, 'EISDIR', path, 'is a directory');
    if (attrs.kind === 'symlink') throw pathError(ErrorCodes.BAD_ARGUMENT, 'ELOOP', path, 'is a symlink, which open does not follow');
    if (attrs.kind !== 'file') throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', path, `is a ${attrs.kind}, not a regular file`);
    const file = this.files.acquire(id, attrs);
    if (flags.truncate === true) {
      try {
        file.truncate(0);
        await this.flushFile(file, options.signal);
      } catch (err) {
        this.files.release(file);
        throw err;
      }
    }
    return new Handle(this.handleHost, file, flags);
  }

  /**
   * Commits the unflushed writes of an inode if it is open: before an
   * explicit mtime, which the later set-content would otherwise overwrite
   * with its own clock (cp -p, tar and rsync -t write, then set times, then close).
   */
  async flushOpenFile(id: Uint8Array, signal?: AbortSignal): Promise<void> {
    const file = this.files.get(id);
    if (file !== undefined && file.modified) await this.flushFile(file, signal);
  }

  /**
   * Commits an open file's unflushed state as one event, in the write
   * queue: the dirty pages are frozen and spliced (writes made meanwhile go
   * to new pages, for a later flush), the content is synced, then the event
   * is appended. A file unlinked meanwhile commits nothing: its writes end
   * with its last handle.
   */
  private async flushFile(file: OpenFile, signal: AbortSignal | undefined): Promise<void> {
    this.check(signal);
    // The plan is made and its event enqueued under the file's flush order; the commit is awaited outside it.
    const enqueued = await file.planCommit((plan) => plan === null ? null : {
      done: file.track(this.commit(signal, 'durable', async (b) => {
        const attrs = await this.projection.getattr(file.id);
        if (attrs === undefined || attrs.nlink === 0 || attrs.kind !== 'file') return;
        if (plan.event.type === 'set-content' && plan.event.manifest !== null) await this.vol.arenas.sync();
        await b.append(plan.event);
      })),
    });
    if (enqueued === null) await file.settled();
    else await enqueued.done;
  }

  // ---- bulk ----

  /**
   * Runs `work` with a WriteBatch under the write queue: its events are
   * appended as it goes, then synced once and projected once. If `work`
   * throws, what it appended is still committed (a partial batch is
   * visible), then the error is rethrown.
   */
  batch<T>(work: (batch: WriteBatch) => Promise<T>, options: BatchOptions = {}): Promise<T> {
    this.check(options.signal);
    return this.commit(options.signal, 'durable', work, options.projectEarly === true);
  }

  /** Drops the projection and replays the whole log. */
  rebuild(options: CallOptions = {}): Promise<RebuildResult> {
    this.check(options.signal);
    return this.exclusive(async () => {
      const started = performance.now();
      const events = await this.projector.rebuild();
      this.settler.poke();
      return { events, ms: performance.now() - started };
    });
  }

  /**
   * Recursive statistics of the directory at `path` (docs/aggregates.md):
   * the last settled figures and whether they are exact; with `exact`, waits
   * until every committed change is folded in.
   */
  async aggregates(path: string, options: AggregateOptions = {}): Promise<Aggregates> {
    this.check(options.signal);
    if (options.exact === true) await this.settler.settleNow();
    return storedAggregates(this, this.projection, path, options);
  }

  /**
   * Checks every arena record, every event (signature, chain, body), every
   * object every file names, and the projection against a replay of the
   * log (fsck.ts). Runs between writes.
   */
  fsck(options: FsckOptions = {}): Promise<FsckReport> {
    this.check(options.signal);
    return this.exclusive(() => runFsck({
      arenas: this.vol.arenas, log: this.vol.log, content: this.content, projection: this.projection, dir: this.vol.dir,
    }, options));
  }

  // ---- internals ----


  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.writes.then(work, work);
    this.writes = result.catch(() => undefined);
    return result;
  }

  /**
   * Runs `work` under the write queue, then makes its events durable and
   * projects them. A 'metadata' commit (names, modes, times, xattrs: no
   * content) is made durable later when deferMetadataDurability is on:
   * its events are handed to the file system (so they survive the process,
   * and the projection is never ahead of the log after a kill), projected
   * at once, and synced by the next durable commit, sync(), or the timer.
   */
  private commit<T>(signal: AbortSignal | undefined, durability: 'durable' | 'metadata', work: (batch: WriteBatch) => Promise<T>, projectEarly = false): Promise<T> {
    this.check(signal);
    return this.exclusive(async () => {
      const early = projectEarly ? new EarlyProjection(this.vol.log, this.projector) : undefined;
      const batch = new WriteBatch(this.vol.log, this.vol.arenas, this.content, signal, early);
      let result: T;
      try {
        result = await work(batch);
        await batch.flush();
      } finally {
        // A failed early round leaves its events to the catch-up below, which reports a lasting failure itself.
        await early?.stop().catch(() => undefined);
        if (batch.appended > 0) {
          if (durability === 'metadata' && this.deferMs !== null) {
            this.vol.log.flush();
            this.scheduleSync(this.deferMs);
          } else {
            await this.vol.log.sync();
          }
          await this.projector.catchUp();
          this.settler.poke();
        }
      }
      return result;
    });
  }

  /**
   * Lets metadata commits (create, mkdir, unlink, rename, chmod, ...)
   * resolve before their events are durable, as ext4 does until its journal
   * commits: they become durable with the next content commit (a flush or
   * fsync of a file), a sync(), or within `ms`, whichever comes first.
   * A power cut can lose the metadata changes of the last `ms`, never a
   * change whose fsync or sync() returned (docs/volume-api.md, "Durability").
   * null (the default) makes every commit durable when it resolves.
   */
  deferMetadataDurability(ms: number | null): void {
    if (ms !== null && (!Number.isSafeInteger(ms) || ms < 0)) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'the deferred sync interval must be a non-negative integer of ms, or null', { ms });
    }
    this.deferMs = ms;
  }

  /** Makes every change made so far durable (fsync of a directory, syncfs). */
  async sync(options: CallOptions = {}): Promise<void> {
    this.check(options.signal);
    await this.vol.log.sync();
  }

  private scheduleSync(ms: number): void {
    if (this.syncTimer !== null) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      // A failed sync leaves the arena refusing further use, so the next commit reports it.
      this.vol.log.sync().catch((err: unknown) => warn(DEFERRED_SYNC_WARNING, `volume '${this.name}': a deferred log sync failed: ${err instanceof Error ? err.message : String(err)}`));
    }, ms);
  }

  private cancelDeferredSync(): void {
    if (this.syncTimer !== null) clearTimeout(this.syncTimer);
    this.syncTimer = null;
  }

  /** One event on the inode at `path`, resolved inside the write queue so no other write moves it in between. */
  private onInode(path: string, options: CallOptions, body: (inode: Buffer) => EventBody | Promise<EventBody>): Promise<void> {
    return this.commit(options.signal, 'metadata', async (b) => {
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

/** A path or id that names nothing, with the errno stat's error would carry. */
export interface PathMiss {
  readonly miss: 'ENOENT' | 'ENOTDIR';
}
const NOT_FOUND: PathMiss = Object.freeze({ miss: 'ENOENT' });
const NOT_A_DIRECTORY: PathMiss = Object.freeze({ miss: 'ENOTDIR' });

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
