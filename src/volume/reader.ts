// The read half of the volume facade: path walks, attributes, listings,
// links, xattrs and content, over one projection and one content store.
// The live Volume extends it; a view of a past state (an as-of projection
// rebuilt from a prefix of the log) is one of these over another
// projection, so every front end reads the past exactly as the present.

import { BazilError, ErrorCodes } from '../../errors/index.js';
import { checkAborted, type ContentStore } from '../cas/content-store.js';
import { decodeManifest, type Manifest } from '../cas/manifest.js';
import type { Attrs, DirEntry, ProjectionStore } from '../projection/index.js';
import { joinPath, pathError, splitPath } from './paths.js';

export interface CallOptions {
  signal?: AbortSignal;
}

export interface ReaddirOptions extends CallOptions {
  /** Entries after this name, the last name of the previous page (pages come in the projection's order: hash order for the live one). */
  after?: string;
  limit?: number;
}

export type { Attrs, DirEntry };

/**
 * The reads a VolumeReader makes of a projection: the live LevelDB store
 * answers them, and so does an in-memory projection of a prefix of the log
 * (src/history), which is how past states are read.
 */
export interface ProjectionReader {
  rootId(): Promise<Buffer | undefined>;
  lookup(parent: Uint8Array, name: string): Promise<Buffer | undefined>;
  getattr(id: Uint8Array): Promise<Attrs | undefined>;
  readdir(parent: Uint8Array, options?: { after?: string; limit?: number }): Promise<DirEntry[]>;
  readlink(id: Uint8Array): Promise<string | undefined>;
  listxattr(id: Uint8Array): Promise<string[]>;
  getxattr(id: Uint8Array, name: string): Promise<Buffer | undefined>;
  /** The ids (latin1) of the nodes with extended attributes, or null when there are more than `limit` or they cannot be known up front. */
  xattrHolders?(limit: number): Promise<Set<string> | null>;
  dump(): Promise<Buffer>;
}

/** Zero buffers for a file extended past its manifest by truncate. */
const ZERO_PIECE = 1024 * 1024;

export class VolumeReader<P extends ProjectionReader = ProjectionStore> {
  protected closed = false;

  constructor(
    /** The volume's name, for messages. */
    readonly name: string,
    protected readonly projection: P,
    protected readonly content: ContentStore,
  ) {}

  // ---- reads ----

  /** The inode id at an absolute path (symlinks not followed). */
  async resolve(path: string, options: CallOptions = {}): Promise<Buffer> {
    this.check(options.signal);
    return this.walk(splitPath(path), path);
  }

  async stat(path: string, options: CallOptions = {}): Promise<Attrs> {
    return this.attrsOf(await this.resolve(path, options), path);
  }

  /** Attributes of an inode by id (readdir gives ids); NOT_FOUND if the projection has none. */
  async getattr(id: Uint8Array, options: CallOptions = {}): Promise<Attrs> {
    this.check(options.signal);
    return this.attrsOf(id, Buffer.from(id).toString('hex'));
  }

  /** One page of a directory's entries, in UTF-8 byte order of their names. */
  async readdir(path: string, options: ReaddirOptions = {}): Promise<DirEntry[]> {
    const id = await this.resolve(path, options);
    const attrs = await this.attrsOf(id, path);
    if (attrs.kind !== 'dir') throw pathError(ErrorCodes.NOT_A_DIRECTORY, 'ENOTDIR', path, 'is not a directory');
    return this.projection.readdir(id, { after: options.after, limit: options.limit });
  }

  async readlink(path: string, options: CallOptions = {}): Promise<string> {
    return this.readlinkId(await this.resolve(path, options), path);
  }

  /** A symlink's target by inode id. */
  async readlinkId(id: Uint8Array, path = Buffer.from(id).toString('hex')): Promise<string> {
    const target = await this.projection.readlink(id);
    if (target === undefined) throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', path, 'is not a symlink');
    return target;
  }

  async listxattr(path: string, options: CallOptions = {}): Promise<string[]> {
    return this.projection.listxattr(await this.resolve(path, options));
  }

  async getxattr(path: string, name: string, options: CallOptions = {}): Promise<Buffer> {
    const value = await this.projection.getxattr(await this.resolve(path, options), name);
    if (value === undefined) throw pathError(ErrorCodes.NOT_FOUND, 'ENODATA', path, `has no extended attribute ${JSON.stringify(name)}`);
    return value;
  }

  /** The extended attribute names of the node `id` (export has the id already: no path walk). */
  async listxattrId(id: Uint8Array): Promise<string[]> {
    return this.projection.listxattr(id);
  }

  /**
   * The ids (latin1) of the nodes that have extended attributes, or null
   * when there are more than `limit` (or a projection cannot tell): a node
   * not in the set has none, and export need not list them (import-export.ts).
   */
  async xattrHolders(limit: number): Promise<Set<string> | null> {
    return (await this.projection.xattrHolders?.(limit)) ?? null;
  }

  /** An extended attribute of the node `id`; `path` names it in the error. */
  async getxattrId(id: Uint8Array, name: string, path: string): Promise<Buffer> {
    const value = await this.projection.getxattr(id, name);
    if (value === undefined) throw pathError(ErrorCodes.NOT_FOUND, 'ENODATA', path, `has no extended attribute ${JSON.stringify(name)}`);
    return value;
  }

  /** Bytes [offset, offset + length) of a file, short at its end (as pread). */
  async readFile(path: string, offset = 0, length = Number.MAX_SAFE_INTEGER, options: CallOptions = {}): Promise<Buffer> {
    const attrs = await this.fileAttrs(await this.resolve(path, options), path);
    const end = Math.min(attrs.size, offset + Math.min(length, Number.MAX_SAFE_INTEGER - offset));
    if (offset >= end) return Buffer.alloc(0);
    const manifest = this.manifestOf(attrs);
    const data = await this.content.read(manifest, offset, end - offset, { signal: options.signal });
    // A truncate past the manifest's end reads as zeros.
    return data.length === end - offset ? data : Buffer.concat([data, Buffer.alloc(end - offset - data.length)]);
  }

  /** A file's whole content as a stream of buffers (one per chunk). */
  async *createReadStream(path: string, options: CallOptions = {}): AsyncGenerator<Buffer> {
    yield* this.streamId(await this.resolve(path, options), path, options);
  }

  /** A file's content by inode id: what export uses once it has walked to the file. */
  async *streamId(id: Uint8Array, path: string, options: CallOptions = {}): AsyncGenerator<Buffer> {
    const attrs = await this.fileAttrs(id, path);
    const manifest = this.manifestOf(attrs);
    const stored = Math.min(attrs.size, manifest?.size ?? 0);
    if (stored > 0) yield* this.content.stream(manifest, { length: stored, signal: options.signal });
    for (let left = attrs.size - stored; left > 0; left -= ZERO_PIECE) yield Buffer.alloc(Math.min(left, ZERO_PIECE));
  }

  /** A file's decoded manifest and the store holding its objects: export reads the sealed objects and decrypts them on a worker thread. */
  sealedContent(attrs: Attrs): { manifest: Manifest | null; content: ContentStore } {
    return { manifest: this.manifestOf(attrs), content: this.content };
  }

  /** The projection as bytes (ProjectionStore.dump): equal for equal logs. */
  dump(): Promise<Buffer> {
    return this.projection.dump();
  }

  // ---- internals shared with the writer ----

  protected check(signal: AbortSignal | undefined): void {
    if (this.closed) throw new BazilError(ErrorCodes.CLOSED, `volume '${this.name}' is closed`);
    checkAborted(signal);
  }

  protected async root(): Promise<Buffer> {
    const root = await this.projection.rootId();
    // Only a log without its create-volume event (its first record damaged and cut off) leaves no root.
    if (root === undefined) throw new BazilError(ErrorCodes.LOG_GAP, `volume '${this.name}' has no root directory: its log lacks the create-volume event (see bazil fsck)`);
    return root;
  }

  protected async walk(names: readonly string[], path: string): Promise<Buffer> {
    let id = await this.root();
    for (let i = 0; i < names.length; i++) {
      const child = await this.projection.lookup(id, names[i]!);
      if (child === undefined) {
        if ((await this.projection.getattr(id))?.kind !== 'dir') {
          throw pathError(ErrorCodes.NOT_A_DIRECTORY, 'ENOTDIR', path, `: ${joinPath(names.slice(0, i))} is not a directory`);
        }
        throw pathError(ErrorCodes.NOT_FOUND, 'ENOENT', path, 'does not exist');
      }
      id = child;
    }
    return id;
  }

  protected async dirAt(names: readonly string[], path: string): Promise<Buffer> {
    const id = await this.walk(names, path);
    if ((await this.attrsOf(id, path)).kind !== 'dir') {
      throw pathError(ErrorCodes.NOT_A_DIRECTORY, 'ENOTDIR', path, `: ${joinPath(names)} is not a directory`);
    }
    return id;
  }

  protected async attrsOf(id: Uint8Array, path: string): Promise<Attrs> {
    const attrs = await this.projection.getattr(id);
    if (attrs === undefined || attrs.nlink === 0) throw pathError(ErrorCodes.NOT_FOUND, 'ENOENT', path, 'does not exist');
    return attrs;
  }

  protected async fileAttrs(id: Uint8Array, path: string): Promise<Attrs> {
    const attrs = await this.attrsOf(id, path);
    if (attrs.kind === 'dir') throw pathError(ErrorCodes.IS_A_DIRECTORY, 'EISDIR', path, 'is a directory');
    if (attrs.kind !== 'file') throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', path, `is a ${attrs.kind}, not a regular file`);
    return attrs;
  }

  protected manifestOf(attrs: Attrs): Manifest | null {
    return attrs.manifest === null ? null : decodeManifest(attrs.manifest);
  }
}
