// The binding's ceiling for bench/fuse: a trivial in-memory file system on
// the patched fuse-native, mounted with exactly the options of a Bazil mount
// (mountOptions in src/fuse/mount.ts), so that the difference to Bazil is
// Bazil's own work. Flat (one directory), files kept in 1 MiB pieces.
//
//   node memfs-ceiling.js MOUNTPOINT
//
// Prints "ready" once mounted; unmounts and exits on SIGTERM or when stdin closes.
import { constants } from 'node:os';
import { createFuse, mountFuse, unmountFuse, type FuseStat } from '../../src/fuse/binding.js';
import { mountOptions } from '../../src/fuse/mount.js';

const E = constants.errno;
const PIECE = 1024 * 1024;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

interface Node {
  ino: number;
  mode: number;
  size: number;
  pieces: Buffer[];
  mtime: bigint;
}

const mnt = process.argv[2];
if (mnt === undefined) {
  process.stderr.write('usage: memfs-ceiling MOUNTPOINT\n');
  process.exit(2);
}

let nextIno = 2;
const now = (): bigint => BigInt(Date.now()) * 1_000_000n;
const root: Node = { ino: 1, mode: S_IFDIR | 0o777, size: 0, pieces: [], mtime: now() };
const files = new Map<string, Node>();

function statOf(n: Node): FuseStat {
  return { mode: n.mode, uid: 0, gid: 0, size: n.size, nlink: n === root ? 2 : 1, ino: n.ino, atime: n.mtime, mtime: n.mtime, ctime: n.mtime, blksize: 4096, blocks: Math.ceil(n.size / 512) };
}

function nodeAt(path: string): Node | undefined {
  return path === '/' ? root : files.get(path);
}

const fuse = createFuse(mnt, {
  getattr(_ctx, path, cb) {
    const n = nodeAt(path);
    return n === undefined ? cb(-E.ENOENT) : cb(0, statOf(n));
  },
  fgetattr(_ctx, path, _fd, cb) {
    const n = nodeAt(path);
    return n === undefined ? cb(-E.ENOENT) : cb(0, statOf(n));
  },
  readdir(_ctx, _path, cb) {
    cb(0, [...files.keys()].map((p) => p.slice(1)));
  },
  create(_ctx, path, mode, cb) {
    files.set(path, { ino: nextIno++, mode: S_IFREG | (mode & 0o7777), size: 0, pieces: [], mtime: now() });
    cb(0, 1);
  },
  open(_ctx, path, _flags, cb) {
    return files.has(path) ? cb(0, 1) : cb(-E.ENOENT);
  },
  release(_ctx, _path, _fd, cb) {
    cb(0);
  },
  flush(_ctx, _path, _fd, cb) {
    cb(0);
  },
  fsync(_ctx, _path, _datasync, _fd, cb) {
    cb(0);
  },
  truncate(_ctx, path, size, cb) {
    const n = files.get(path);
    if (n === undefined) return cb(-E.ENOENT);
    n.size = size;
    n.pieces.length = Math.ceil(size / PIECE);
    cb(0);
  },
  unlink(_ctx, path, cb) {
    return files.delete(path) ? cb(0) : cb(-E.ENOENT);
  },
  read(_ctx, path, _fd, buf, len, pos, cb) {
    const n = files.get(path);
    if (n === undefined) return cb(-E.ENOENT);
    const end = Math.min(n.size, pos + len);
    let at = pos;
    while (at < end) {
      const piece = n.pieces[Math.floor(at / PIECE)];
      const off = at % PIECE;
      const take = Math.min(end - at, PIECE - off);
      if (piece === undefined) buf.fill(0, at - pos, at - pos + take);
      else piece.copy(buf, at - pos, off, off + take);
      at += take;
    }
    cb(Math.max(0, end - pos));
  },
  write(_ctx, path, _fd, buf, len, pos, cb) {
    const n = files.get(path);
    if (n === undefined) return cb(-E.ENOENT);
    let done = 0;
    while (done < len) {
      const at = pos + done;
      const index = Math.floor(at / PIECE);
      const piece = (n.pieces[index] ??= Buffer.alloc(PIECE));
      const off = at % PIECE;
      const take = Math.min(len - done, PIECE - off);
      buf.copy(piece, off, done, done + take);
      done += take;
    }
    n.size = Math.max(n.size, pos + len);
    cb(len);
  },
}, mountOptions('ceiling'));

await mountFuse(fuse);
const stop = (): void => void unmountFuse(fuse).then(() => process.exit(0), () => process.exit(1));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
process.stdout.write('ready\n');
