// Copying trees between the local filesystem and a volume, keeping what
// `cp -a` keeps: types, modes, owners, mtimes (to the microsecond on the way
// out: the OS's utimes takes no finer), symlink targets, hard-link groups,
// empty files and directories, and extended attributes in the user.* and
// trusted.* namespaces (see "Extended attributes" below). Not yet: ACLs,
// security labels, device nodes.
//
// An import is one batch (WriteBatch): its events are synced once and
// projected once at the end, its content synced in large groups before the
// events that name it. Files are pipelined: while one file's chunks are
// being sealed on a worker, the next ones are read and chunked; their
// events still go to the log in walk order (Importer.inOrder). With
// `update`, the tree is compared with an earlier import of it
// (import-update.ts) and only what differs becomes events. Export has
// several files at once on their way to a worker thread that decrypts and
// writes them (export-pool.ts); the main thread walks the projection and
// hands over the sealed chunks.

import { readFileSync, type BigIntStats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { BazilError, ErrorCodes, ioError, isBazilError } from '../../errors/index.js';
import { checkAborted, IMPORT_SEAL_SLABS, LocalFileSource } from '../cas/content-store.js';
import { getXattr, listXattrs, setXattr, xattrsAvailable } from '../fs/xattr.js';
import { joinPath, pathError, splitPath } from './paths.js';
import { ExportPool } from './export-pool.js';
import { ImportUpdater, attrChanges, childPath, sameKind, xattrChanges } from './import-update.js';
import { manifestBytes, type Volume } from './volume.js';
import type { Attrs, ProjectionReader, VolumeReader } from './reader.js';
import type { WriteBatch } from './write-batch.js';
import type { CreateEvent, EventBody } from '../log/event.js';

/**
 * Files export has on their way to its worker at once: opened ahead of
 * their content (a few opens at a time, export-pool.ts), and small ones
 * gathered into one batch while the worker is busy.
 */
const EXPORT_FILES_IN_FLIGHT = 16;
/** Up to this many stored attributes, export reads which nodes have any once (a set of ids) rather than listing each node's. */
const XATTR_HOLDERS_LIMIT = 65_536;
// Files whose content is being written at once, and the bytes they may
// hold: enough to keep the seal worker fed across small files, few enough
// that memory stays bounded whatever the tree (the slabs, not the files,
// hold the bytes). A file waits for the oldest in flight, and each holds a
// slab of the seal pool of its own: as many as `bazil import`'s pool has
// (fileImportSealing). Four took a run of small files to four slabs of
// work, each a round trip; sixteen took 1 GiB imports from 4.16 to 3.78 s
// (Round 6), and 64, with as many smaller slabs, 9% off again (Round 7,
// docs/ingest.md).
const FILES_IN_FLIGHT = IMPORT_SEAL_SLABS;
const BYTES_IN_FLIGHT = 48 * 1024 * 1024;
// Event steps (Importer.inOrder) queued and not yet run: the walk goes on
// while they wait (behind a flush of the batch, say), as far as this.
const STEPS_IN_FLIGHT = 4096;

/** A directory's inode id, or the promise of it while the step that makes the directory waits its turn. */
type IdSoon = Buffer | Promise<Buffer>;

export interface TreeProgress {
  files: number;
  bytes: number;
}

export interface ImportOptions {
  signal?: AbortSignal;
  onProgress?: (progress: TreeProgress) => void;
  /** Copy extended attributes (user.*, trusted.*); default true. Without the xattr addon they are skipped with a warning. */
  xattrs?: boolean;
  /**
   * Import into an existing directory that is not empty, making it a copy
   * of `srcDir`: what is unchanged writes no event, what changed is
   * updated, what `srcDir` no longer has is removed (import-update.ts).
   */
  update?: boolean;
}

export interface TreeResult extends TreeProgress {
  dirs: number;
  symlinks: number;
  /** Hard links beyond a group's first name. */
  links: number;
  /** Sockets, fifos and devices: not copied yet. */
  skipped: number;
  /** Extended attributes copied. */
  xattrs: number;
  /** Extended attributes left out: other namespaces (security.*, system.*), user.* on symlinks, trusted.* without privilege. */
  xattrsSkipped: number;
  ms: number;
}

export interface ImportResult extends TreeResult {
  /** Bytes of new content objects: what dedup did not find already stored. */
  newBytes: number;
  events: number;
  /** With `update`: files, symlinks and directories found as they were (no event written for them). */
  unchanged: number;
  /** With `update`: entries of the volume that the source no longer has, removed (a directory counts once). */
  removed: number;
}

/**
 * Imports the local directory `srcDir` as `volPath`: created if missing
 * (parents must exist), or an existing empty directory, which takes
 * srcDir's attributes.
 */
export async function importTree(volume: Volume, srcDir: string, volPath: string, options: ImportOptions = {}): Promise<ImportResult> {
  const started = performance.now();
  const top = await lstatLocal(srcDir);
  if (!top.isDirectory()) throw new BazilError(ErrorCodes.NOT_A_DIRECTORY, `${srcDir} is not a directory`, { path: srcDir, errno: 'ENOTDIR' });
  const names = splitPath(volPath);
  let target: Buffer | null = null;
  try {
    target = await volume.resolve(volPath, options);
  } catch (err) {
    if (!(err instanceof BazilError && err.code === ErrorCodes.NOT_FOUND && names.length > 0)) throw err;
  }
  const old = target === null ? null : await volume.getattr(target, options);
  if (old !== null && old.kind !== 'dir') throw pathError(ErrorCodes.NOT_A_DIRECTORY, 'ENOTDIR', volPath, 'is not a directory');
  if (target !== null && options.update !== true && (await volume.readdir(volPath, { limit: 1 })).length > 0) {
    throw pathError(ErrorCodes.NOT_EMPTY, 'ENOTEMPTY', volPath, 'is a directory that is not empty; import into a new or empty one');
  }
  const parent = target === null ? await volume.resolve(joinPath(names.slice(0, -1)), options) : null;
  const result: ImportResult = { files: 0, bytes: 0, dirs: 0, symlinks: 0, links: 0, skipped: 0, xattrs: 0, xattrsSkipped: 0, ms: 0, newBytes: 0, events: 0, unchanged: 0, removed: 0 };
  await volume.batch(async (batch) => {
    const walker = new Importer(batch, result, options, options.update === true ? new ImportUpdater(volume, batch, options) : null);
    const root = target ?? await batch.create({ type: 'mkdir', parent: parent!, name: names[names.length - 1]!, ...attrsOf(top) });
    try {
      if (old !== null) await walker.ownAttrs(root, old, top);
      await walker.xattrs(srcDir, root, old);
      await walker.dir(srcDir, root, top, joinPath(names), old);
    } catch (err) {
      // Nothing pipelined may touch the batch once this callback returns.
      await walker.abandon(err);
      throw err;
    }
    await walker.settle();
    await batch.flush();
    result.events = batch.appended;
  }, { ...options, projectEarly: options.update !== true });
  result.ms = performance.now() - started;
  return result;
}

class Importer {
  /**
   * dev:ino of files with more than one link → the inode made for the first
   * one met; `id` is null while that file waits in the batch for its content.
   */
  private readonly linkGroups = new Map<string, { id: Buffer | null }>();

  private readonly copyXattrs: boolean;
  /** The last of the event steps that must follow the files before them (inOrder). */
  private tail: Promise<void> = Promise.resolve();
  /** Steps queued and not yet run, oldest first, each settled (never rejected); one leaves when it has run. */
  private readonly steps: Promise<void>[] = [];
  /** The first failure of a pipelined step; the walk stops at it. */
  private failure: { err: unknown } | null = null;
  /** Content writes under way, oldest first, with their sizes. */
  private readonly inFlight: Array<{ done: Promise<unknown>; bytes: number }> = [];
  private inFlightBytes = 0;

  constructor(
    private readonly batch: WriteBatch,
    private readonly result: ImportResult,
    private readonly options: ImportOptions,
    /** With `update`: reads the old tree; null for a plain import. */
    private readonly updater: ImportUpdater | null,
  ) {
    this.copyXattrs = options.xattrs !== false && xattrAddonOrWarn();
  }

  /**
   * Gives the existing target directory `old` the source's mode and owner:
   * always into an empty one (as before there was `update`), only where
   * they differ with `update`.
   */
  async ownAttrs(root: Buffer, old: Attrs, top: BigIntStats): Promise<void> {
    const events = this.updater !== null
      ? attrChanges(old, top, false).filter((e) => e.type !== 'utimens')
      : [{ type: 'chmod', inode: root, mode: Number(top.mode) & 0o7777 } as const, { type: 'chown', inode: root, uid: Number(top.uid), gid: Number(top.gid) } as const];
    for (const body of events) await this.batch.append(body);
  }

  /**
   * Runs `step` after every step queued before it. A file's events need its
   * content first, which finishes out of walk order; steps keep the log in
   * walk order, which the hard links (they name their group's first file)
   * and a directory's mtime (set after its last entry) rely on.
   */
  private inOrder(step: () => Promise<void>): void {
    void this.inOrderValue(step);
  }

  /**
   * inOrder for a step whose result later steps need (a new directory's
   * id): the promise settles once the step has run, and rejects when it,
   * or a step before it, failed (it is then skipped). The walk does not
   * wait for it: a directory's mkdir waits its turn behind a flush of the
   * batch (its parent's files queued before it must go first), and the
   * walk waited with it, up to 130 ms each time, the seal worker idle for
   * want of files (docs/ingest.md, Round 6). Steps that name the directory
   * come after it, so they find the id there.
   */
  private inOrderValue<T>(step: () => Promise<T>): Promise<T> {
    const run = this.tail.then(async () => {
      if (this.failure !== null) throw this.failure.err;
      try {
        return await step();
      } catch (err) {
        this.failure ??= { err };
        throw err;
      }
    });
    // Marked handled: a failure is taken up by checkFailed, settle or abandon.
    run.catch(() => {});
    const settled = run.then(() => {}, () => {});
    this.tail = settled;
    this.steps.push(settled);
    // Steps settle in order, so the one that leaves is the oldest.
    void settled.then(() => {
      this.steps.shift();
    });
    return run;
  }

  private checkFailed(): void {
    if (this.failure !== null) throw this.failure.err;
    checkAborted(this.options.signal);
  }

  /** Waits for every pipelined file and step; throws the first failure. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inFlight.map((f) => f.done));
    await this.tail;
    this.checkFailed();
  }

  /** After a failure of the walk: pipelined steps not yet started are skipped; waits for the rest. */
  async abandon(err: unknown): Promise<void> {
    this.failure ??= { err };
    await Promise.allSettled(this.inFlight.map((f) => f.done));
    await this.tail;
  }

  /** Waits until a file of `bytes` may start without passing the bounds of the pipeline. */
  private async room(bytes: number): Promise<void> {
    while (this.inFlight.length > 0 && (this.inFlight.length >= FILES_IN_FLIGHT || this.inFlightBytes + bytes > BYTES_IN_FLIGHT)) {
      const oldest = this.inFlight.shift()!;
      await oldest.done.catch(() => {});
      this.inFlightBytes -= oldest.bytes;
    }
    this.checkFailed();
  }

  /** Appends the setxattr events for the copied attributes of the local `path` on `inode` (only the differences from `old`'s, with `update`). */
  async xattrs(path: string, inode: Buffer, old: Attrs | null): Promise<void> {
    for (const body of (await this.xattrEvents(path, old))(inode)) await this.batch.append(body);
  }

  /**
   * The xattr events of the local `path`'s copied attributes, read now, for
   * an inode given later: all of them for a new inode, the differences
   * from the old inode's for one being updated.
   */
  private async xattrEvents(path: string, old: Attrs | null): Promise<(inode: Buffer) => EventBody[]> {
    const attrs = this.copyXattrs ? [...readLocalXattrs(path, this.result)] : [];
    this.result.xattrs += attrs.length;
    if (old !== null && this.updater !== null) {
      if (!this.copyXattrs) return () => [];
      const before = await this.updater.xattrsOf(old.id);
      return (inode) => xattrChanges(inode, before, attrs);
    }
    return (inode) => attrs.map(([name, value]) => ({ type: 'setxattr', inode, name, value }));
  }

  /**
   * Imports the entries of `dir` into inode `id` (at `volPath`); its mtime
   * is set last, once no entry will change it. With `update`, `old` is the
   * directory as it was: entries are compared with its, and its own
   * mtime is set only when it differs or an entry came or went.
   */
  async dir(dir: string, id: IdSoon, st: BigIntStats, volPath: string, old: Attrs | null): Promise<void> {
    this.result.dirs++;
    const names = await readNames(dir);
    // All of a directory's lstats at once: one after another, each waited a thread-pool round trip.
    const stats = await Promise.all(names.map((name) => lstatLocal(join(dir, name))));
    const updater = old === null ? null : this.updater;
    const before = updater === null ? new Map<string, Attrs>() : await updater.entries(volPath);
    let entriesChanged = false;
    for (const [i, name] of names.entries()) {
      // Every kind of entry queues a step (an empty file or a symlink no content): the walk waits for the oldest past the bound.
      while (this.steps.length > STEPS_IN_FLIGHT) await this.steps[0];
      this.checkFailed();
      const path = join(dir, name);
      const child = stats[i]!;
      let prev = before.get(name) ?? null;
      before.delete(name);
      if (prev !== null && !child.isDirectory() && !child.isFile() && !child.isSymbolicLink()) {
        // A special file is not imported: what the volume has under its name stays.
        this.result.skipped++;
        continue;
      }
      if (prev !== null && !sameKind(prev, child)) {
        this.result.removed += await updater!.remove(await id, volPath, name, prev);
        entriesChanged = true;
        prev = null;
      }
      if (child.isDirectory()) {
        if (prev !== null) {
          await this.ownAttrs(prev.id, prev, child);
          await this.xattrs(path, prev.id, prev);
          await this.dir(path, prev.id, child, childPath(volPath, name), prev);
          continue;
        }
        const xattrs = await this.xattrEvents(path, null);
        const inode = this.inOrderValue(async () => {
          const made = await this.batch.create({ type: 'mkdir', parent: await id, name, ...attrsOf(child) });
          for (const body of xattrs(made)) await this.batch.append(body);
          return made;
        });
        entriesChanged = true;
        await this.dir(path, inode, child, childPath(volPath, name), null);
      } else if (child.isFile()) {
        if (await this.file(path, id, volPath, name, child, prev)) entriesChanged = true;
      } else if (child.isSymbolicLink()) {
        if (await this.symlink(path, id, volPath, name, child, prev)) entriesChanged = true;
      } else {
        this.result.skipped++;
      }
    }
    for (const [name, gone] of before) {
      this.result.removed += await updater!.remove(await id, volPath, name, gone);
      entriesChanged = true;
    }
    if (old !== null && !entriesChanged && old.mtime === st.mtimeNs) {
      this.result.unchanged++;
      return;
    }
    this.inOrder(async () => {
      await this.batch.append({ type: 'utimens', inode: await id, atime: null, mtime: st.mtimeNs });
    });
  }

  /** Imports a symlink; with `update`, one with the same target and owner is kept. Returns whether a new entry was made. */
  private async symlink(path: string, parent: IdSoon, volPath: string, name: string, st: BigIntStats, prev: Attrs | null): Promise<boolean> {
    const target = await readlink(path).catch((err: unknown) => { throw ioError('readlink', path, err); });
    this.result.symlinks++;
    if (prev !== null) {
      if (await this.updater!.readlink(prev.id) === target && prev.uid === Number(st.uid) && prev.gid === Number(st.gid)) {
        const events = [...attrChanges(prev, st, false, true), ...(await this.xattrEvents(path, prev))(prev.id)];
        for (const body of events) await this.batch.append(body);
        if (events.length === 0) this.result.unchanged++;
        return false;
      }
      this.result.removed += await this.updater!.remove(await parent, volPath, name, prev);
    }
    const xattrs = await this.xattrEvents(path, null);
    // In turn, like a file's creation: the walk need not wait for it (see inOrderValue).
    this.inOrder(async () => {
      const inode = await this.batch.create({ type: 'symlink', parent: await parent, name, target, uid: Number(st.uid), gid: Number(st.gid), mtime: st.mtimeNs });
      for (const body of xattrs(inode)) await this.batch.append(body);
    });
    return true;
  }

  /**
   * Imports a regular file. With `update`, `prev` is the old entry of that
   * name: a file of the same hard-link shape keeps its inode and gets only
   * the events for what differs (none when its manifest, size, mode, owner,
   * mtime and xattrs are the same). Returns whether a new entry was made.
   */
  private async file(path: string, parent: IdSoon, volPath: string, name: string, st: BigIntStats, prev: Attrs | null): Promise<boolean> {
    const group = st.nlink > 1n ? `${st.dev}:${st.ino}` : null;
    const first = group === null ? undefined : this.linkGroups.get(group);
    if (first !== undefined) {
      if (prev !== null && first.id !== null && prev.id.equals(first.id)) {
        this.result.links++;
        this.result.unchanged++;
        return false;
      }
      if (prev !== null) this.result.removed += await this.updater!.remove(await parent, volPath, name, prev);
      this.inOrder(async () => {
        const dir = await parent;
        if (first.id !== null) {
          await this.batch.append({ type: 'link', inode: first.id, parent: dir, name });
        } else {
          // The group's first file still waits for its content to be
          // durable: the link follows it in the batch, once its id exists.
          await this.batch.createFile({ create: null, parent: dir, then: () => [{ type: 'link', inode: first.id!, parent: dir, name }] });
        }
        this.result.links++;
      });
      return true;
    }
    // The old inode is kept only if it has the hard-link shape of the source: alone, or linked.
    const kept = prev !== null && (group === null ? prev.nlink === 1 : prev.nlink > 1) ? prev : null;
    if (prev !== null && kept === null) this.result.removed += await this.updater!.remove(await parent, volPath, name, prev);
    const ref: { id: Buffer | null } = { id: kept?.id ?? null };
    if (group !== null) this.linkGroups.set(group, ref);
    const xattrs = await this.xattrEvents(path, kept);
    const create = (dir: Buffer): CreateEvent => ({ type: 'create', parent: dir, name, ...attrsOf(st) });
    const counted = (size: number, newBytes: number): void => {
      this.result.bytes += size;
      this.result.newBytes += newBytes;
      this.result.files++;
      this.options.onProgress?.({ files: this.result.files, bytes: this.result.bytes });
    };
    if (st.size === 0n) {
      this.inOrder(async () => {
        const dir = await parent;
        if (kept !== null) {
          await this.update(kept, st, 0, null, dir, xattrs);
        } else {
          ref.id = await this.batch.create(create(dir));
          for (const body of xattrs(ref.id)) await this.batch.append(body);
        }
        counted(0, 0);
      });
      return kept === null;
    }
    // Content first; the file's creation waits for it to be durable, so a
    // crash never leaves an empty file where the source was not empty.
    const bytes = Number(st.size);
    await this.room(bytes);
    // A file seen before is mostly the same chunks: the seal workers learn
    // them from its manifest and find them with one chunk key each.
    if (kept !== null) {
      const { manifest, content } = this.updater!.sealedContent(kept);
      content.knowChunks(manifest);
    }
    const writing = this.batch.writeContent(new LocalFileSource(path, bytes));
    // Its failure is taken up by the step below, or by settle/abandon once an earlier one failed.
    writing.catch(() => {});
    this.inFlight.push({ done: writing, bytes });
    this.inFlightBytes += bytes;
    this.inOrder(async () => {
      const written = await writing;
      const dir = await parent;
      if (kept !== null) {
        await this.update(kept, st, written.size, manifestBytes(written.manifestRoot), dir, xattrs);
        counted(written.size, written.newBytes);
        return;
      }
      // One event makes the file with its content and the source's mtime
      // (the create names content, so it waits for that content to be durable).
      await this.batch.createFile({
        create: { ...create(dir), size: written.size, manifest: manifestBytes(written.manifestRoot) },
        parent: dir,
        then: (id) => {
          ref.id = id!;
          return xattrs(id!);
        },
      });
      counted(written.size, written.newBytes);
    });
    return kept === null;
  }

  /**
   * The events that bring the old file `old` to the local one: new content
   * (behind the content it names, which must be durable first), then the
   * attributes and xattrs that differ. Nothing for an unchanged file.
   */
  private async update(old: Attrs, st: BigIntStats, size: number, manifest: Uint8Array | null, parent: Buffer, xattrs: (inode: Buffer) => EventBody[]): Promise<void> {
    const sameContent = size === old.size && (manifest === null ? old.manifest === null : old.manifest !== null && old.manifest.equals(manifest));
    const events: EventBody[] = [
      ...(sameContent ? [] : [{ type: 'set-content', inode: old.id, size, manifest } as const]),
      ...attrChanges(old, st, !sameContent),
      ...xattrs(old.id),
    ];
    if (events.length === 0) {
      this.result.unchanged++;
    } else if (!sameContent) {
      await this.batch.createFile({ create: null, parent, then: () => events });
    } else {
      for (const body of events) await this.batch.append(body);
    }
  }
}

function attrsOf(st: BigIntStats): { mode: number; uid: number; gid: number; mtime: bigint } {
  return { mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), mtime: st.mtimeNs };
}

async function lstatLocal(path: string): Promise<BigIntStats> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    throw ioError('lstat', path, err);
  }
}

/** A directory's names, sorted; a name that is not UTF-8 cannot be an event's name, so it fails rather than turning into U+FFFD. */
async function readNames(dir: string): Promise<string[]> {
  let raw: Buffer[];
  try {
    raw = await readdir(dir, { encoding: 'buffer' });
  } catch (err) {
    throw ioError('readdir', dir, err);
  }
  return raw.map((b) => {
    const name = b.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(b)) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, `a name in ${dir} is not UTF-8 (${b.toString('hex')} in hex); Bazil names are UTF-8`, { path: dir });
    }
    return name;
  }).sort();
}

export interface ExportOptions {
  signal?: AbortSignal;
  onProgress?: (progress: TreeProgress) => void;
  /** Write extended attributes (user.*, trusted.*); default true. Without the xattr addon they are skipped with a warning. */
  xattrs?: boolean;
}

/**
 * Writes the tree at `volPath` to the local path `destDir`: a directory is
 * created there (or an existing empty one used), a single file is written
 * as `destDir` itself. Owners are set only where the OS allows (as root).
 */
export async function exportTree(volume: VolumeReader<ProjectionReader>, volPath: string, destDir: string, options: ExportOptions = {}): Promise<TreeResult> {
  const started = performance.now();
  const result: TreeResult = { files: 0, bytes: 0, dirs: 0, symlinks: 0, links: 0, skipped: 0, xattrs: 0, xattrsSkipped: 0, ms: 0 };
  const exporter = new Exporter(volume, result, options);
  try {
    await exporter.findXattrHolders();
    await (await exporter.start(await volume.resolve(volPath, options), volPath, destDir)).done;
  } finally {
    await exporter.close();
  }
  result.ms = performance.now() - started;
  return result;
}

class Exporter {
  /** Inode ids (hex) of files with more than one link → where the first was written, once it is. */
  private readonly written = new Map<string, Promise<string>>();

  private readonly copyXattrs: boolean;
  /** File writes under way, and callers waiting for one to end. */
  private writing = 0;
  private readonly waiting: Array<() => void> = [];
  private failed = false;
  /** Decrypts and writes the files' content; started with the first file. */
  private pool: ExportPool | null = null;
  /** The ids (latin1) of the nodes with extended attributes, when known up front: the others' are not listed. */
  private xattrHolders: Set<string> | null = null;
  /** Whom the files and directories this export creates belong to, once its top directory is made (null: not known, chown each). */
  private newOwner: { uid: number; gid: number } | null = null;
  private topDone = false;
  /**
   * The umask new files get, once the top directory is made: null when not
   * known (every file is then chmodded), as under a default ACL, which
   * replaces the umask for what is made below it.
   */
  private umask: number | null = null;

  constructor(private readonly volume: VolumeReader<ProjectionReader>, private readonly result: TreeResult, private readonly options: ExportOptions) {
    this.copyXattrs = options.xattrs !== false && xattrAddonOrWarn();
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = null;
  }

  /**
   * Listing a node's attributes is a LevelDB iterator, a thread-pool round
   * trip, for every file, directory and symlink, while most volumes have
   * few or none: one scan of the attribute table up front tells which
   * nodes to list.
   */
  async findXattrHolders(): Promise<void> {
    if (this.copyXattrs) this.xattrHolders = await this.volume.xattrHolders(XATTR_HOLDERS_LIMIT);
  }

  private listxattr(id: Buffer): Promise<string[]> {
    if (this.xattrHolders !== null && !this.xattrHolders.has(id.toString('latin1'))) return Promise.resolve([]);
    return this.volume.listxattrId(id);
  }

  /** Sets the volume node's copied attributes (`names`, listed by the caller) on the local `dest` (after its content, before its owner, mode and times). */
  private async xattrs(id: Buffer, volPath: string, dest: string, isLink: boolean, names?: string[]): Promise<void> {
    if (!this.copyXattrs) return;
    checkAborted(this.options.signal);
    for (const name of names ?? await this.listxattr(id)) {
      // Linux refuses user.* attributes on symlinks (EPERM): they cannot exist on a local one, so none are written.
      if (!copiedNamespace(name) || (isLink && name.startsWith('user.'))) {
        this.result.xattrsSkipped++;
        continue;
      }
      const value = await this.volume.getxattrId(id, name, volPath);
      try {
        setXattr(dest, name, value);
        this.result.xattrs++;
      } catch (err) {
        // trusted.* needs CAP_SYS_ADMIN: not root, they are left out, as chown is.
        if (name.startsWith('trusted.') && isBazilError(err) && err.data['os'] === 'EPERM') {
          this.result.xattrsSkipped++;
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * Starts exporting the node `id` to `dest`. A directory (with everything
   * under it) and a symlink are done when this returns; a file is being
   * written when this returns, at most EXPORT_FILES_IN_FLIGHT at once, and
   * `done` settles when it is complete.
   */
  async start(id: Buffer, volPath: string, dest: string): Promise<{ done: Promise<void> }> {
    if (this.failed) throw new BazilError(ErrorCodes.ABORTED, 'export stopped after an earlier failure');
    checkAborted(this.options.signal);
    const attrs = await this.volume.getattr(id);
    switch (attrs.kind) {
      case 'dir':
        await this.dir(attrs, volPath, dest);
        break;
      case 'file': {
        const key = id.toString('hex');
        const first = attrs.nlink > 1 ? this.written.get(key) : undefined;
        await this.slot();
        const done = (first !== undefined ? this.link(first, dest) : this.file(id, attrs, volPath, dest)).finally(() => this.unslot());
        // The caller awaits `done`; this only records a failure as soon as it happens.
        done.catch(() => { this.failed = true; });
        if (first === undefined && attrs.nlink > 1) this.written.set(key, done.then(() => dest));
        return { done };
      }
      case 'symlink': {
        const target = await this.volume.readlinkId(id, volPath);
        await local('symlink', dest, () => symlink(target, dest));
        await this.xattrs(id, volPath, dest, true);
        await setAttrs(dest, attrs, true, owns(this.newOwner, attrs));
        this.result.symlinks++;
        break;
      }
      default:
        this.result.skipped++;
    }
    return { done: Promise.resolve() };
  }

  /** A directory's entries, then (once every file in it is written) its own attributes. */
  private async dir(attrs: Attrs, volPath: string, dest: string): Promise<void> {
    await local('mkdir', dest, () => mkdir(dest, { mode: 0o700 })).catch((err: unknown) => {
      if (!(err instanceof BazilError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EEXIST')) throw err;
    });
    // The top directory (made here, or an empty one that was there) tells whom what is made under it belongs to.
    let owner = this.newOwner;
    if (!this.topDone) {
      this.topDone = true;
      const st = await local('stat', dest, () => lstat(dest));
      this.newOwner = newOwnerUnder(st);
      owner = { uid: st.uid, gid: st.gid };
      this.umask = hasDefaultAcl(dest) ? null : readUmask();
    }
    const files: Promise<void>[] = [];
    try {
      for (let page = await this.volume.readdir(volPath, { limit: 1000 }); page.length > 0;
        page = await this.volume.readdir(volPath, { after: page[page.length - 1]!.name, limit: 1000 })) {
        for (const e of page) files.push((await this.start(e.id, volPath === '/' ? `/${e.name}` : `${volPath}/${e.name}`, join(dest, e.name))).done);
      }
    } finally {
      // Nothing started here may still be writing when this returns, even after a failure.
      const outcomes = await Promise.allSettled(files);
      const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failure !== undefined) throw failure.reason;
    }
    await this.xattrs(attrs.id, volPath, dest, false);
    await setAttrs(dest, attrs, false, owns(owner, attrs));
    this.result.dirs++;
  }

  /**
   * A file's content goes to the export worker (export-pool.ts), which also
   * sets its owner, mode and times, unless it has extended attributes:
   * those are set here first, then the rest.
   */
  private async file(id: Buffer, attrs: Attrs, volPath: string, dest: string): Promise<void> {
    const names = this.copyXattrs ? await this.listxattr(id) : [];
    const { manifest, content } = this.volume.sealedContent(attrs);
    const stored = Math.min(attrs.size, manifest?.size ?? 0);
    const closeAttrs = names.length > 0 ? null : {
      mode: attrs.mode, uid: attrs.uid, gid: attrs.gid, atime: toUtimeArg(attrs.atime), mtime: toUtimeArg(attrs.mtime), owned: owns(this.newOwner, attrs),
      createMode: this.umask !== null && (attrs.mode & ~0o777) === 0 && (attrs.mode & this.umask) === 0,
    };
    this.pool ??= new ExportPool();
    await this.pool.writeFile(dest, content.sealedExtents(manifest, stored, this.options), content, { size: attrs.size, attrs: closeAttrs }, this.options.signal);
    if (closeAttrs === null) {
      await this.xattrs(id, volPath, dest, false, names);
      await setAttrs(dest, attrs, false, owns(this.newOwner, attrs));
    }
    this.result.files++;
    this.result.bytes += attrs.size;
    this.options.onProgress?.({ files: this.result.files, bytes: this.result.bytes });
  }

  /** Another name of a hard-link group, once its first name is written. */
  private async link(first: Promise<string>, dest: string): Promise<void> {
    const target = await first;
    await local('link', dest, () => link(target, dest));
    this.result.links++;
  }

  private async slot(): Promise<void> {
    while (this.writing >= EXPORT_FILES_IN_FLIGHT) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.writing++;
  }

  private unslot(): void {
    this.writing--;
    this.waiting.shift()?.();
  }
}

// ---- Extended attributes ----
//
// Copied: user.* (anyone's) and trusted.* (readable and writable only as
// root; elsewhere the OS hides them on import and export leaves them out).
// Not copied: security.* (SELinux/AppArmor labels and file capabilities:
// policy of the machine, not data of the file, and capabilities would grant
// privilege on another machine) and system.* (POSIX ACLs, whose binary form
// names local uids; ACL support needs its own design). Both are counted in
// xattrsSkipped. Hard links share one inode, so a group's attributes are read
// and written once, with its first name.

/** Whether an attribute of this name is copied by import and export. */
export function copiedNamespace(name: string): boolean {
  return name.startsWith('user.') || name.startsWith('trusted.');
}

let warnedNoAddon = false;

/** Whether the xattr addon is there; warns once per process when it is not. */
function xattrAddonOrWarn(): boolean {
  if (xattrsAvailable()) return true;
  if (!warnedNoAddon) {
    warnedNoAddon = true;
    process.emitWarning('extended attributes are not copied: the native addon bazil_xattr is not built (npm run build:native)', {
      code: 'BAZIL_XATTR_UNAVAILABLE',
    });
  }
  return false;
}

/** The copied attributes of a local path, in name order; none where its file system has no xattr support. */
function readLocalXattrs(path: string, result: TreeResult): Array<[string, Buffer]> {
  let names: string[];
  try {
    names = listXattrs(path);
  } catch (err) {
    if (isBazilError(err, ErrorCodes.IO) && (err.data['os'] === 'EOPNOTSUPP' || err.data['os'] === 'ENOTSUP')) return [];
    throw err;
  }
  const out: Array<[string, Buffer]> = [];
  for (const name of names.sort()) {
    if (!copiedNamespace(name)) {
      result.xattrsSkipped++;
      continue;
    }
    try {
      out.push([name, getXattr(path, name)]);
    } catch (err) {
      if (!isBazilError(err, ErrorCodes.NOT_FOUND)) throw err;
      // The addon decodes names as UTF-8; a name that is not UTF-8 comes back
      // with U+FFFD and is then not found. A name truly removed in between is skipped.
      if (name.includes('\uFFFD')) {
        throw new BazilError(ErrorCodes.BAD_ARGUMENT, `an extended attribute name of ${path} is not UTF-8; Bazil names are UTF-8`, { path });
      }
    }
  }
  return out;
}

const S_ISGID = 0o2000;

/** Whether `dir` has a default ACL (or might: without the xattr addon, or where listing fails, it is not known). */
function hasDefaultAcl(dir: string): boolean {
  if (!xattrsAvailable()) return true;
  try {
    return listXattrs(dir).includes('system.posix_acl_default');
  } catch {
    return true;
  }
}

/**
 * The umask from /proc (Linux 4.7 on): process.umask() without an argument
 * sets it to 0 and back, a moment in which another thread's new file would
 * get the wrong mode.
 */
function readUmask(): number | null {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    return m === null ? null : parseInt(m[1]!, 8);
  } catch {
    return null;
  }
}

/**
 * Whom what an export creates inside the directory `top` (made by it, or
 * found empty) belongs to: the process's effective user, and `top`'s group
 * when `top` is set-group-ID (its group and flag pass to everything made
 * under it) or is the process's effective group (which a file system's
 * other rule, the parent's group for every new file, gives as well).
 * Otherwise null: not known, each node is chowned. The directories export
 * makes stay mode 0700 until their entries are done, so no other
 * set-group-ID directory appears under `top` while nodes are made in it.
 */
function newOwnerUnder(top: { mode: number; gid: number }): { uid: number; gid: number } | null {
  if (process.geteuid === undefined || process.getegid === undefined) return null;
  if ((top.mode & S_ISGID) === 0 && top.gid !== process.getegid()) return null;
  return { uid: process.geteuid(), gid: top.gid };
}

/** Whether a node created with `owner` already has the owner `attrs` asks for (no chown needed). */
function owns(owner: { uid: number; gid: number } | null, attrs: { uid: number; gid: number }): boolean {
  return owner !== null && owner.uid === attrs.uid && owner.gid === attrs.gid;
}

async function setAttrs(path: string, attrs: { mode: number; uid: number; gid: number; mtime: bigint; atime: bigint }, isLink: boolean, owned = false): Promise<void> {
  if (!owned) {
    await local('chown', path, () => lchown(path, attrs.uid, attrs.gid)).catch((err: unknown) => {
      // Not root: the files stay the exporter's, as with cp -a.
      if ((err as BazilError).data?.os !== 'EPERM') throw err;
    });
  }
  // chmod after chown, which clears setuid and setgid.
  if (!isLink) await local('chmod', path, () => chmod(path, attrs.mode));
  const at = toUtimeArg(attrs.atime);
  const mt = toUtimeArg(attrs.mtime);
  await local('utimes', path, () => (isLink ? lutimes(path, at, mt) : utimes(path, at, mt)));
}

/**
 * Seconds for utimes, which goes through a double and truncates to the
 * microsecond toward zero: half a microsecond away from zero keeps the
 * rounding error of the double (~0.12 µs today) from landing on the
 * microsecond next to it, on both sides of 1970.
 */
export function toUtimeSeconds(ns: bigint): number {
  const us = ns / 1000n - (ns < 0n && ns % 1000n !== 0n ? 1n : 0n);
  const sec = us / 1_000_000n - (us < 0n && us % 1_000_000n !== 0n ? 1n : 0n);
  return Number(sec) + (Number(us - sec * 1_000_000n) + (sec < 0n ? -0.5 : 0.5)) / 1e6;
}

/**
 * The time argument fs.utimes and fs.lutimes need for `ns`: Node replaces a
 * negative number by the current time, so a time before 1970 goes as a
 * numeric string, which it takes as is.
 */
export function toUtimeArg(ns: bigint): number | string {
  const seconds = toUtimeSeconds(ns);
  return seconds < 0 ? String(seconds) : seconds;
}

async function local<T>(op: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw ioError(op, path, err);
  }
}
