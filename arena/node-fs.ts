// The real file layer: FileSystem over node:fs.
//
// Reads, writes and namespace calls are synchronous (see file-system.ts for
// why); only fdatasync and the directory fsync go through libuv's thread pool.
// Every operating-system failure is turned into a BazilError here, at the
// boundary where it arises, so the arena engine sees one error type with the
// path and the OS error as its cause. Errors that carry no errno (Node's own
// argument checks) are programming mistakes, not I/O failures, and pass
// through untouched.

import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { BazilError, ErrorCodes, ioError } from '../errors/index.js';
import type { ArenaFile, FileStat, FileSystem, OpenMode } from './file-system.js';
import { loadNative } from './native.js';

const OPEN_FLAGS: Record<OpenMode, string> = {
  r: 'r',
  rw: 'r+',
  // O_CREAT | O_EXCL: creating an arena must never reuse a file left behind.
  create: 'wx+',
};

function osError(op: string, path: string, err: unknown): unknown {
  const errno = (err as NodeJS.ErrnoException | undefined)?.errno;
  return typeof errno === 'number' ? ioError(op, path, err) : err;
}

class NodeArenaFile implements ArenaFile {
  readonly path: string;
  readonly #fd: number;
  #closed = false;
  // fdatasync calls still running in the thread pool. The descriptor is only
  // released once they finish: closing it earlier would let the kernel hand
  // the same number to a new file, and a queued fdatasync would then flush
  // (and report success for) the wrong file.
  #syncing = 0;

  constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  #openFd(op: string): number {
    if (this.#closed) {
      throw new BazilError(ErrorCodes.CLOSED, `${op} ${this.path}: file is closed`, { op, path: this.path });
    }
    return this.#fd;
  }

  size(): number {
    const fd = this.#openFd('size');
    try {
      return fs.fstatSync(fd).size;
    } catch (err) {
      throw osError('size', this.path, err);
    }
  }

  read(buf: Uint8Array, offset: number, length: number, position: number): number {
    const fd = this.#openFd('read');
    let done = 0;
    try {
      // A regular file returns short reads only at end of file, but looping
      // costs nothing and spares every caller from handling the other case.
      while (done < length) {
        const n = fs.readSync(fd, buf, offset + done, length - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      throw osError('read', this.path, err);
    }
    return done;
  }

  write(buf: Uint8Array, offset: number, length: number, position: number): void {
    const fd = this.#openFd('write');
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = fs.writeSync(fd, buf, offset + done, length - done, position + done);
      } catch (err) {
        throw osError('write', this.path, err);
      }
      // write(2) on a regular file either makes progress or fails; a zero
      // would otherwise spin this loop forever.
      if (n === 0) {
        throw new BazilError(ErrorCodes.IO, `write ${this.path}: no progress after ${done} of ${length} bytes`, {
          op: 'write',
          path: this.path,
        });
      }
      done += n;
    }
  }

  async sync(): Promise<void> {
    const fd = this.#openFd('sync');
    this.#syncing++;
    try {
      await new Promise<void>((resolve, reject) => {
        fs.fdatasync(fd, (err) => (err ? reject(osError('sync', this.path, err)) : resolve()));
      });
    } finally {
      this.#syncing--;
      if (this.#closed && this.#syncing === 0) this.#releaseDeferred();
    }
  }

  truncate(length: number): void {
    const fd = this.#openFd('truncate');
    try {
      fs.ftruncateSync(fd, length);
    } catch (err) {
      throw osError('truncate', this.path, err);
    }
  }

  startWriteback(position: number, length: number): void {
    const fd = this.#openFd('startWriteback');
    const bindings = loadNative();
    if (bindings === null) return;
    try {
      bindings.startWriteback(fd, position, length);
    } catch (err) {
      throw osError('startWriteback', this.path, err);
    }
  }

  punchHole(position: number, length: number): void {
    const fd = this.#openFd('punchHole');
    // Asked on every call, not kept: loadNative() caches the addon itself,
    // and BAZIL_NO_NATIVE may switch it off between calls (tests do).
    const bindings = loadNative();
    if (bindings === null) {
      throw new BazilError(
        ErrorCodes.NATIVE_UNAVAILABLE,
        `punchHole ${this.path}: hole punching needs the native addon, ` +
          'which is not loaded (not built, or BAZIL_NO_NATIVE=1)',
        { op: 'punchHole', path: this.path },
      );
    }
    try {
      bindings.punchHole(fd, position, length);
    } catch (err) {
      throw osError('punchHole', this.path, err);
    }
  }

  map(): Uint8Array | null {
    const fd = this.#openFd('map');
    const bindings = loadNative();
    if (bindings === null) return null;
    const length = this.size();
    try {
      return new Uint8Array(bindings.mapFile(fd, length));
    } catch (err) {
      throw osError('map', this.path, err);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#syncing > 0) return;
    try {
      fs.closeSync(this.#fd);
    } catch (err) {
      throw osError('close', this.path, err);
    }
  }

  #releaseDeferred(): void {
    try {
      fs.closeSync(this.#fd);
    } catch {
      // Nobody is left to tell: close() already returned, Linux frees the
      // descriptor even when close(2) reports an error, and the sync that
      // held it open has reported on durability itself.
    }
  }
}

export class NodeFileSystem implements FileSystem {
  localPath(path: string): string | null {
    return path;
  }

  open(path: string, mode: OpenMode): ArenaFile {
    try {
      return new NodeArenaFile(path, fs.openSync(path, OPEN_FLAGS[mode]));
    } catch (err) {
      throw osError('open', path, err);
    }
  }

  rename(from: string, to: string): void {
    try {
      fs.renameSync(from, to);
    } catch (err) {
      // The path reported is the source: ENOENT almost always means it.
      throw osError('rename', from, err);
    }
  }

  unlink(path: string): void {
    try {
      fs.unlinkSync(path);
    } catch (err) {
      throw osError('unlink', path, err);
    }
  }

  readdir(dir: string): string[] {
    try {
      return fs.readdirSync(dir);
    } catch (err) {
      throw osError('readdir', dir, err);
    }
  }

  mkdirp(dir: string): void {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw osError('mkdirp', dir, err);
    }
  }

  async syncDir(dir: string): Promise<void> {
    try {
      const handle = await fsp.open(dir, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw osError('syncDir', dir, err);
    }
  }

  exists(path: string): boolean {
    try {
      fs.statSync(path);
      return true;
    } catch (err) {
      // ENOTDIR: a component of the path is a file, so nothing lives there.
      // Anything else (EACCES, EIO) is a real failure, not an answer; this is
      // why fs.existsSync, which says false for every error, is not used.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw osError('exists', path, err);
    }
  }

  stat(path: string): FileStat {
    try {
      const st = fs.statSync(path);
      return { size: st.size, blocks: st.blocks };
    } catch (err) {
      throw osError('stat', path, err);
    }
  }
}

export const nodeFileSystem = new NodeFileSystem();
