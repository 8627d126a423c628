// Copying trees between the local filesystem and a volume, keeping what
// `cp -a` keeps: types, modes, owners, mtimes (to the microsecond on the way
// out: the OS's utimes takes no finer), symlink targets, hard-link groups,
// empty files and directories, and extended attributes in the user.* and
// trusted.* namespaces (see "Extended attributes" below). Not yet: ACLs,
// security labels, device nodes.
//
// An import is one batch (WriteBatch): its events are synced once and
// projected once at the end, its content synced in large groups before the
// events that name it.

import { createReadStream, createWriteStream, type BigIntStats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BazilError, ErrorCodes, ioError, isBazilError } from '../../errors/index.js';
import { checkAborted } from '../cas/content-store.js';
import { getXattr, listXattrs, setXattr, xattrsAvailable } from '../fs/xattr.js';
import { joinPath, pathError, splitPath } from './paths.js';
import { manifestBytes, type Volume } from './volume.js';
import type { WriteBatch } from './write-batch.js';
import type { CreateEvent, EventBody } from '../log/event.js';

const READ_BUFFER_BYTES = 1024 * 1024;

export interface TreeProgress {
  files: number;
  bytes: number;
}

export interface ImportOptions {
  signal?: AbortSignal;
  onProgress?: (progress: TreeProgress) => void;
  /** Copy extended attributes (user.*, trusted.*); default true. Without the xattr addon they are skipped with a warning. */
  xattrs?: boolean;
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
  if (target !== null && (await volume.readdir(volPath, { limit: 1 })).length > 0) {
    throw pathError(ErrorCodes.NOT_EMPTY, 'ENOTEMPTY', volPath, 'is a directory that is not empty; import into a new or empty one');
  }
  const parent = target === null ? await volume.resolve(joinPath(names.slice(0, -1)), options) : null;
  const result: ImportResult = { files: 0, bytes: 0, dirs: 0, symlinks: 0, links: 0, skipped: 0, xattrs: 0, xattrsSkipped: 0, ms: 0, newBytes: 0, events: 0 };
  await volume.batch(async (batch) => {
    const walker = new Importer(batch, result, options);
    const root = target ?? await batch.create({ type: 'mkdir', parent: parent!, name: names[names.length - 1]!, ...attrsOf(top) });
    if (target !== null) {
      await batch.append({ type: 'chmod', inode: root, mode: Number(top.mode) & 0o7777 });
      await batch.append({ type: 'chown', inode: root, uid: Number(top.uid), gid: Number(top.gid) });
    }
    await walker.xattrs(srcDir, root);
    await walker.dir(srcDir, root, top);
    await batch.flush();
    result.events = batch.appended;
  }, options);
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

  constructor(private readonly batch: WriteBatch, private readonly result: ImportResult, private readonly options: ImportOptions) {
    this.copyXattrs = options.xattrs !== false && xattrAddonOrWarn();
  }

  /** Appends a setxattr event on `inode` for each copied attribute of the local `path`. */
  async xattrs(path: string, inode: Buffer): Promise<void> {
    for (const body of this.xattrEvents(path)(inode)) await this.batch.append(body);
  }

  /** The setxattr events of the local `path`'s copied attributes, read now, for an inode given later. */
  private xattrEvents(path: string): (inode: Buffer) => EventBody[] {
    const attrs = this.copyXattrs ? [...readLocalXattrs(path, this.result)] : [];
    this.result.xattrs += attrs.length;
    return (inode) => attrs.map(([name, value]) => ({ type: 'setxattr', inode, name, value }));
  }

  /** Imports the entries of `dir` into inode `id`; its mtime is set last, once no entry will change it. */
  async dir(dir: string, id: Buffer, st: BigIntStats): Promise<void> {
    this.result.dirs++;
    for (const name of await readNames(dir)) {
      checkAborted(this.options.signal);
      const path = join(dir, name);
      const child = await lstatLocal(path);
      if (child.isDirectory()) {
        const inode = await this.batch.create({ type: 'mkdir', parent: id, name, ...attrsOf(child) });
        await this.xattrs(path, inode);
        await this.dir(path, inode, child);
      } else if (child.isFile()) {
        await this.file(path, id, name, child);
      } else if (child.isSymbolicLink()) {
        const target = await readlink(path).catch((err: unknown) => { throw ioError('readlink', path, err); });
        const inode = await this.batch.create({ type: 'symlink', parent: id, name, target, uid: Number(child.uid), gid: Number(child.gid), mtime: child.mtimeNs });
        await this.xattrs(path, inode);
        this.result.symlinks++;
      } else {
        this.result.skipped++;
      }
    }
    await this.batch.append({ type: 'utimens', inode: id, atime: null, mtime: st.mtimeNs });
  }

  private async file(path: string, parent: Buffer, name: string, st: BigIntStats): Promise<void> {
    const group = st.nlink > 1n ? `${st.dev}:${st.ino}` : null;
    const first = group === null ? undefined : this.linkGroups.get(group);
    if (first !== undefined) {
      if (first.id !== null) {
        await this.batch.append({ type: 'link', inode: first.id, parent, name });
      } else {
        // The group's first file still waits for its content: the link
        // follows it in the batch, once its id exists.
        await this.batch.createFile({ create: null, parent, then: () => [{ type: 'link', inode: first.id!, parent, name }] });
      }
      this.result.links++;
      return;
    }
    const ref: { id: Buffer | null } = { id: null };
    if (group !== null) this.linkGroups.set(group, ref);
    const xattrs = this.xattrEvents(path);
    const create: CreateEvent = { type: 'create', parent, name, ...attrsOf(st) };
    if (st.size === 0n) {
      ref.id = await this.batch.create(create);
      for (const body of xattrs(ref.id)) await this.batch.append(body);
    } else {
      // Content first; the file's creation waits for it to be durable, so a
      // crash never leaves an empty file where the source was not empty.
      const written = await this.batch.writeContent(createReadStream(path, { highWaterMark: READ_BUFFER_BYTES, signal: this.options.signal }));
      await this.batch.createFile({
        create,
        parent,
        then: (id) => {
          const inode = id!;
          ref.id = inode;
          return [
            ...xattrs(inode),
            { type: 'set-content', inode, size: written.size, manifest: manifestBytes(written.manifestRoot) },
            // set-content stamps the event's clock as mtime; the source's comes after it.
            { type: 'utimens', inode, atime: null, mtime: st.mtimeNs },
          ];
        },
      });
      this.result.bytes += written.size;
      this.result.newBytes += written.newBytes;
    }
    this.result.files++;
    this.options.onProgress?.({ files: this.result.files, bytes: this.result.bytes });
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
export async function exportTree(volume: Volume, volPath: string, destDir: string, options: ExportOptions = {}): Promise<TreeResult> {
  const started = performance.now();
  const result: TreeResult = { files: 0, bytes: 0, dirs: 0, symlinks: 0, links: 0, skipped: 0, xattrs: 0, xattrsSkipped: 0, ms: 0 };
  const exporter = new Exporter(volume, result, options);
  await exporter.node(await volume.resolve(volPath, options), volPath, destDir);
  result.ms = performance.now() - started;
  return result;
}

class Exporter {
  /** Inode ids (hex) of files with more than one link → where the first was written. */
  private readonly written = new Map<string, string>();

  private readonly copyXattrs: boolean;

  constructor(private readonly volume: Volume, private readonly result: TreeResult, private readonly options: ExportOptions) {
    this.copyXattrs = options.xattrs !== false && xattrAddonOrWarn();
  }

  /** Sets the volume node's copied attributes on the local `dest` (after its content, before its owner, mode and times). */
  private async xattrs(volPath: string, dest: string, isLink: boolean): Promise<void> {
    if (!this.copyXattrs) return;
    for (const name of await this.volume.listxattr(volPath, this.options)) {
      // Linux refuses user.* attributes on symlinks (EPERM): they cannot exist on a local one, so none are written.
      if (!copiedNamespace(name) || (isLink && name.startsWith('user.'))) {
        this.result.xattrsSkipped++;
        continue;
      }
      const value = await this.volume.getxattr(volPath, name, this.options);
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

  async node(id: Buffer, volPath: string, dest: string): Promise<void> {
    checkAborted(this.options.signal);
    const attrs = await this.volume.getattr(id);
    switch (attrs.kind) {
      case 'dir': {
        await local('mkdir', dest, () => mkdir(dest, { mode: 0o700 })).catch((err: unknown) => {
          if (!(err instanceof BazilError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EEXIST')) throw err;
        });
        for (let page = await this.volume.readdir(volPath, { limit: 1000 }); page.length > 0;
          page = await this.volume.readdir(volPath, { after: page[page.length - 1]!.name, limit: 1000 })) {
          for (const e of page) await this.node(e.id, volPath === '/' ? `/${e.name}` : `${volPath}/${e.name}`, join(dest, e.name));
        }
        await this.xattrs(volPath, dest, false);
        await setAttrs(dest, attrs, false);
        this.result.dirs++;
        return;
      }
      case 'file': {
        const key = id.toString('hex');
        const first = attrs.nlink > 1 ? this.written.get(key) : undefined;
        if (first !== undefined) {
          await local('link', dest, () => link(first, dest));
          this.result.links++;
          return;
        }
        await local('write', dest, () => pipeline(this.volume.streamId(id, volPath, this.options), createWriteStream(dest, { flags: 'wx', mode: 0o600 })));
        await this.xattrs(volPath, dest, false);
        await setAttrs(dest, attrs, false);
        if (attrs.nlink > 1) this.written.set(key, dest);
        this.result.files++;
        this.result.bytes += attrs.size;
        this.options.onProgress?.({ files: this.result.files, bytes: this.result.bytes });
        return;
      }
      case 'symlink': {
        const target = await this.volume.readlinkId(id, volPath);
        await local('symlink', dest, () => symlink(target, dest));
        await this.xattrs(volPath, dest, true);
        await setAttrs(dest, attrs, true);
        this.result.symlinks++;
        return;
      }
      default:
        this.result.skipped++;
    }
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

async function setAttrs(path: string, attrs: { mode: number; uid: number; gid: number; mtime: bigint; atime: bigint }, isLink: boolean): Promise<void> {
  await local('chown', path, () => lchown(path, attrs.uid, attrs.gid)).catch((err: unknown) => {
    // Not root: the files stay the exporter's, as with cp -a.
    if ((err as BazilError).data?.os !== 'EPERM') throw err;
  });
  // chmod after chown, which clears setuid and setgid.
  if (!isLink) await local('chmod', path, () => chmod(path, attrs.mode));
  const at = toUtimeSeconds(attrs.atime);
  const mt = toUtimeSeconds(attrs.mtime);
  await local('utimes', path, () => (isLink ? lutimes(path, at, mt) : utimes(path, at, mt)));
}

/**
 * Seconds for utimes, which goes through a double and truncates to the
 * microsecond: half a microsecond on top keeps the rounding error of the
 * double (~0.12 µs today) from landing on the microsecond below.
 */
export function toUtimeSeconds(ns: bigint): number {
  const us = ns / 1000n - (ns < 0n && ns % 1000n !== 0n ? 1n : 0n);
  const sec = us / 1_000_000n - (us < 0n && us % 1_000_000n !== 0n ? 1n : 0n);
  return Number(sec) + (Number(us - sec * 1_000_000n) + 0.5) / 1e6;
}

async function local<T>(op: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw ioError(op, path, err);
  }
}
