// A tiny in-memory filesystem served with the patched fuse-native, run as a
// child process by binding.test.ts (the serving process must never touch its
// own mount synchronously, so the test exercises it from outside).
//
//   node memfs-child.js MOUNTPOINT
//
// Prints "ready" once mounted; unmounts and exits on "unmount" on stdin, on
// SIGTERM, or when stdin closes.
//
// Contents: /hello.txt and /link.txt (one inode, two names), /dir/inner.txt,
// /whoami (reads as "uid gid pid" of the reading process, padded to 64 bytes),
// /events (a log of what the filesystem did). Files and directories created
// through the mount are owned by the caller's uid and gid. mkdir of a name
// starting with "slow-" takes 1 s against a 300 ms timeout, and commits only
// if it can still claim the operation.
import { constants } from 'node:os';
import { createFuse, mountFuse, unmountFuse, type FuseOpContext, type FuseStat } from '../../src/fuse/binding.js';

const E = constants.errno;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const WHOAMI_SIZE = 64;
const SLOW_MS = 1000;
const MKDIR_TIMEOUT_MS = 300;

interface Inode {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  data: Buffer;
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
}

const mountpoint = process.argv[2];
if (!mountpoint) {
  process.stderr.write('usage: memfs-child MOUNTPOINT\n');
  process.exit(2);
}

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
let nextIno = 1;
const paths = new Map<string, Inode>();

function makeInode(mode: number, uid = 0, gid = 0, data = Buffer.alloc(0)): Inode {
  const t = nowNs();
  return { ino: nextIno++, mode, uid, gid, nlink: 1, data, atime: t, mtime: t, ctime: t };
}

const events = makeInode(S_IFREG | 0o644);
function log(line: string): void {
  events.data = Buffer.concat([events.data, Buffer.from(line + '\n')]);
}

paths.set('/', makeInode(S_IFDIR | 0o777));
const hello = makeInode(S_IFREG | 0o644, 0, 0, Buffer.from('hello\n'));
hello.nlink = 2;
paths.set('/hello.txt', hello);
paths.set('/link.txt', hello);
paths.set('/dir', makeInode(S_IFDIR | 0o777));
paths.set('/dir/inner.txt', makeInode(S_IFREG | 0o644, 0, 0, Buffer.from('inner\n')));
paths.set('/whoami', makeInode(S_IFREG | 0o444, 0, 0, Buffer.alloc(WHOAMI_SIZE)));
paths.set('/events', events);

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function statOf(node: Inode): FuseStat {
  return {
    mode: node.mode,
    uid: node.uid,
    gid: node.gid,
    size: node.data.length,
    nlink: node.nlink,
    ino: node.ino,
    atime: node.atime,
    mtime: node.mtime,
    ctime: node.ctime,
    blksize: 4096,
    blocks: Math.ceil(node.data.length / 512),
  };
}

/** A new name's parent must be an existing directory, and the name free. */
function checkNew(path: string): number {
  const parent = paths.get(parentOf(path));
  if (!parent) return -E.ENOENT;
  if ((parent.mode & S_IFDIR) === 0) return -E.ENOTDIR;
  if (paths.has(path)) return -E.EEXIST;
  return 0;
}

function whoami(ctx: FuseOpContext): Buffer {
  const buf = Buffer.alloc(WHOAMI_SIZE, ' ');
  buf.write(`${ctx.uid} ${ctx.gid} ${ctx.pid}`);
  buf[WHOAMI_SIZE - 1] = 0x0a;
  return buf;
}

const fuse = createFuse(
  mountpoint,
  {
    getattr(_ctx, path, cb) {
      const node = paths.get(path);
      if (!node) return cb(-E.ENOENT);
      cb(0, statOf(node));
    },
    fgetattr(_ctx, path, _fd, cb) {
      const node = paths.get(path);
      if (!node) return cb(-E.ENOENT);
      cb(0, statOf(node));
    },
    readdir(_ctx, path, cb) {
      const dir = paths.get(path);
      if (!dir) return cb(-E.ENOENT);
      const names: string[] = [];
      const stats: FuseStat[] = [];
      for (const [p, node] of paths) {
        if (p !== '/' && parentOf(p) === path) {
          names.push(p.slice(p.lastIndexOf('/') + 1));
          stats.push(statOf(node));
        }
      }
      cb(0, names, stats);
    },
    open(_ctx, path, _flags, cb) {
      if (!paths.has(path)) return cb(-E.ENOENT);
      cb(0, 0);
    },
    release(_ctx, _path, _fd, cb) {
      cb(0);
    },
    read(ctx, path, _fd, buf, len, pos, cb) {
      const node = paths.get(path);
      if (!node) return cb(-E.ENOENT);
      const data = path === '/whoami' ? whoami(ctx) : node.data;
      const n = Math.max(0, Math.min(len, data.length - pos));
      data.copy(buf, 0, pos, pos + n);
      cb(n);
    },
    create(ctx, path, mode, cb) {
      const err = checkNew(path);
      if (err !== 0) return cb(err);
      paths.set(path, makeInode(S_IFREG | (mode & 0o7777), ctx.uid, ctx.gid));
      log(`create ${path} uid=${ctx.uid} gid=${ctx.gid}`);
      cb(0, 0);
    },
    utimens(_ctx, path, atime, mtime, cb) {
      const node = paths.get(path);
      if (!node) return cb(-E.ENOENT);
      if (atime !== null) node.atime = atime;
      if (mtime !== null) node.mtime = mtime;
      node.ctime = nowNs();
      log(`utimens ${path} atime=${atime ?? 'omit'} mtime=${mtime ?? 'omit'}`);
      cb(0);
    },
    link(_ctx, existing, path, cb) {
      const node = paths.get(existing);
      if (!node) return cb(-E.ENOENT);
      const err = checkNew(path);
      if (err !== 0) return cb(err);
      node.nlink++;
      node.ctime = nowNs();
      paths.set(path, node);
      cb(0);
    },
    unlink(_ctx, path, cb) {
      const node = paths.get(path);
      if (!node) return cb(-E.ENOENT);
      node.nlink--;
      paths.delete(path);
      cb(0);
    },
    mkdir(ctx, path, mode, cb) {
      const commit = (): void => {
        const err = checkNew(path);
        if (err !== 0) return cb(err);
        paths.set(path, makeInode(S_IFDIR | (mode & 0o7777), ctx.uid, ctx.gid));
        log(`mkdir ${path} uid=${ctx.uid}`);
        cb(0);
      };
      if (!path.slice(path.lastIndexOf('/') + 1).startsWith('slow-')) return commit();
      ctx.signal.addEventListener('abort', () => log(`mkdir ${path} aborted: ${(ctx.signal.reason as Error).message}`));
      setTimeout(() => {
        // The effect is made conditional on the operation still being ours.
        if (!ctx.claim()) {
          log(`mkdir ${path} not committed: timed out`);
          cb(-E.ETIMEDOUT);
          return;
        }
        commit();
      }, SLOW_MS);
    },
  },
  {
    timeout: { default: 5000, mkdir: MKDIR_TIMEOUT_MS },
    useIno: true,
    allowOther: true,
  },
);

let unmounting: Promise<void> | undefined;
function shutdown(): Promise<void> {
  unmounting ??= unmountFuse(fuse).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`memfs-child: unmount failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
  return unmounting;
}

try {
  await mountFuse(fuse);
} catch (err) {
  process.stderr.write(`memfs-child: mount failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
}
process.on('SIGTERM', () => void shutdown());
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  if (chunk.includes('unmount')) void shutdown();
});
process.stdin.on('end', () => void shutdown());
process.stdout.write('ready\n');
