// A POSIX conformance table in the spirit of pjdfstest: syscall cases with
// the errno (or result) Linux gives on a local file system. posix.test.ts
// runs the table against a local directory (to prove the expectations) and
// against a Bazil mount.
//
// Each case gets its own directory. Its `setup` steps run as root, its `run`
// step as root or as an unprivileged test user (through setpriv), and its
// `checks` as root afterwards. The steps are executed by a small Python
// program (RUNNER_PY), because Node cannot call utimensat with UTIME_OMIT
// or with nanoseconds, nor the xattr calls; Python does through os and
// ctypes. Paths in steps are relative to the case's directory.

import { constants as osConstants } from 'node:os';

/** A step: an operation name and its arguments (see RUNNER_PY). Octal modes are strings. */
export type Step = (string | number | string[])[];

export interface StatResult {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'other';
  mode: string;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: string;
  atime_ns: string;
  mtime_ns: string;
  ctime_ns: string;
}

export interface Check {
  step: Step;
  /** The step's result must deep-equal this. */
  equals?: unknown;
  /** A stat step's result must have these fields. */
  fields?: Partial<Record<keyof StatResult, string | number>>;
  /** The step must fail with this errno. */
  errno?: string;
}

export interface PosixCase {
  id: string;
  /** Who runs `run`: root (default) or the unprivileged test user. */
  as?: 'root' | 'user';
  setup?: Step[];
  run: Step;
  /** 'OK' or the errno name the run step must fail with. */
  expect: string;
  /** The run step's result must deep-equal this. */
  result?: unknown;
  checks?: Check[];
  /** A known defect of the mount (reported, not failed): what and where. */
  mountKnownBug?: string;
}

/** Placeholders the runner replaces in chown steps and the test in expected fields. */
export const USER_UID = 'U';
export const USER_GID = 'G';

const LONG = 'n'.repeat(256);
const MAX = 'm'.repeat(255);
const T1 = '1700000000123456789';
const T2 = '1600000000987654321';

export const POSIX_CASES: PosixCase[] = [
  // ---- open / creat ----
  { id: 'creat-new', run: ['open', 'f', ['O_CREAT', 'O_WRONLY'], '640'], expect: 'OK',
    checks: [{ step: ['stat', 'f'], fields: { type: 'file', mode: '640', uid: 0, size: 0, nlink: 1 } }] },
  { id: 'creat-excl-exists', setup: [['open', 'f', ['O_CREAT', 'O_WRONLY'], '644']], run: ['open', 'f', ['O_CREAT', 'O_EXCL', 'O_WRONLY'], '644'], expect: 'EEXIST' },
  { id: 'open-missing', run: ['open', 'nope', ['O_RDONLY']], expect: 'ENOENT' },
  { id: 'open-dir-write', setup: [['mkdir', 'd']], run: ['open', 'd', ['O_WRONLY']], expect: 'EISDIR' },
  { id: 'open-through-file', setup: [['write', 'f', 'x', 0]], run: ['open', 'f/x', ['O_CREAT', 'O_WRONLY'], '644'], expect: 'ENOTDIR' },
  { id: 'open-name-too-long', run: ['open', LONG, ['O_CREAT', 'O_WRONLY'], '644'], expect: 'ENAMETOOLONG' },
  { id: 'open-name-255', run: ['open', MAX, ['O_CREAT', 'O_WRONLY'], '644'], expect: 'OK', checks: [{ step: ['stat', MAX], fields: { type: 'file' } }] },
  { id: 'open-trunc', setup: [['write', 'f', 'hello world', 0]], run: ['open', 'f', ['O_WRONLY', 'O_TRUNC']], expect: 'OK',
    checks: [{ step: ['stat', 'f'], fields: { size: 0 } }] },
  { id: 'open-append', setup: [['write', 'f', 'abc', 0]], run: ['append', 'f', 'def'], expect: 'OK',
    checks: [{ step: ['read', 'f'], equals: 'abcdef' }] },
  { id: 'open-symlink-loop', setup: [['symlink', 'b', 'a'], ['symlink', 'a', 'b']], run: ['open', 'a', ['O_RDONLY']], expect: 'ELOOP' },
  { id: 'open-nofollow', setup: [['write', 'f', 'x', 0], ['symlink', 'f', 'l']], run: ['open', 'l', ['O_RDONLY', 'O_NOFOLLOW']], expect: 'ELOOP' },
  { id: 'open-through-symlink', setup: [['write', 'f', 'data', 0], ['symlink', 'f', 'l']], run: ['read', 'l'], expect: 'OK', result: 'data' },
  { id: 'user-open-root-file-write', as: 'user', setup: [['chmod', '.', '777'], ['write', 'f', 'x', 0]], run: ['open', 'f', ['O_WRONLY']], expect: 'EACCES' },
  { id: 'user-open-0600-read', as: 'user', setup: [['chmod', '.', '777'], ['write', 'f', 'x', 0], ['chmod', 'f', '600']], run: ['open', 'f', ['O_RDONLY']], expect: 'EACCES' },
  { id: 'user-creat-in-root-dir', as: 'user', run: ['open', 'f', ['O_CREAT', 'O_WRONLY'], '644'], expect: 'EACCES' },
  { id: 'user-creat-owner', as: 'user', setup: [['chmod', '.', '777']], run: ['open', 'f', ['O_CREAT', 'O_WRONLY'], '600'], expect: 'OK',
    checks: [{ step: ['stat', 'f'], fields: { uid: USER_UID, gid: USER_GID, mode: '600' } }] },
  { id: 'user-search-denied', as: 'user', setup: [['mkdir', 'd', '700'], ['write', 'd/f', 'x', 0]], run: ['stat', 'd/f'], expect: 'EACCES' },

  // ---- write / read ----
  { id: 'sparse-write', run: ['write', 'f', 'end', 100000], expect: 'OK',
    checks: [{ step: ['stat', 'f'], fields: { size: 100003 } }, { step: ['readat', 'f', 99990, 13], equals: '\u0000'.repeat(10) + 'end' }] },
  { id: 'overwrite-middle', setup: [['write', 'f', 'aaaaaaaaaa', 0]], run: ['write', 'f', 'XY', 4], expect: 'OK',
    checks: [{ step: ['read', 'f'], equals: 'aaaaXYaaaa' }] },
  { id: 'unlinked-open-file', setup: [['write', 'f', 'hello', 0]], run: ['unlinked_rw', 'f', 0], expect: 'OK', result: ['hellomore', 0, 9, []] },
  { id: 'unlinked-open-file-fsync', setup: [['write', 'f', 'hello', 0]], run: ['unlinked_rw', 'f', 1], expect: 'OK', result: ['hellomore', 0, 9, []] },

  // ---- mkdir ----
  { id: 'mkdir-new', run: ['mkdir', 'd', '750'], expect: 'OK',
    checks: [{ step: ['stat', 'd'], fields: { type: 'dir', mode: '750', nlink: 2 } }, { step: ['stat', '.'], fields: { nlink: 3 } }] },
  { id: 'mkdir-exists', setup: [['mkdir', 'd']], run: ['mkdir', 'd'], expect: 'EEXIST' },
  { id: 'mkdir-over-file', setup: [['write', 'f', 'x', 0]], run: ['mkdir', 'f'], expect: 'EEXIST' },
  { id: 'mkdir-missing-parent', run: ['mkdir', 'a/b'], expect: 'ENOENT' },
  { id: 'mkdir-under-file', setup: [['write', 'f', 'x', 0]], run: ['mkdir', 'f/d'], expect: 'ENOTDIR' },
  { id: 'mkdir-name-too-long', run: ['mkdir', LONG], expect: 'ENAMETOOLONG' },
  { id: 'user-mkdir-in-root-dir', as: 'user', run: ['mkdir', 'd'], expect: 'EACCES' },
  { id: 'mkdir-setgid-inherits', setup: [['chmod', '.', '2775'], ['chown', '.', 0, 12345]], run: ['mkdir', 'd'], expect: 'OK',
    checks: [{ step: ['stat', 'd'], fields: { gid: 12345, mode: '2755' } }] },

  // ---- rmdir ----
  { id: 'rmdir-empty', setup: [['mkdir', 'd']], run: ['rmdir', 'd'], expect: 'OK', checks: [{ step: ['stat', 'd'], errno: 'ENOENT' }, { step: ['stat', '.'], fields: { nlink: 2 } }] },
  { id: 'rmdir-not-empty', setup: [['mkdir', 'd'], ['write', 'd/f', 'x', 0]], run: ['rmdir', 'd'], expect: 'ENOTEMPTY' },
  { id: 'rmdir-file', setup: [['write', 'f', 'x', 0]], run: ['rmdir', 'f'], expect: 'ENOTDIR' },
  { id: 'rmdir-missing', run: ['rmdir', 'd'], expect: 'ENOENT' },
  { id: 'user-rmdir-sticky', as: 'user', setup: [['chmod', '.', '1777'], ['mkdir', 'd']], run: ['rmdir', 'd'], expect: 'EPERM' },

  // ---- unlink ----
  { id: 'unlink-file', setup: [['write', 'f', 'x', 0]], run: ['unlink', 'f'], expect: 'OK', checks: [{ step: ['stat', 'f'], errno: 'ENOENT' }, { step: ['listdir', '.'], equals: [] }] },
  { id: 'unlink-dir', setup: [['mkdir', 'd']], run: ['unlink', 'd'], expect: 'EISDIR' },
  { id: 'unlink-missing', run: ['unlink', 'f'], expect: 'ENOENT' },
  { id: 'unlink-hard-link', setup: [['write', 'f', 'x', 0], ['link', 'f', 'g']], run: ['unlink', 'f'], expect: 'OK', checks: [{ step: ['stat', 'g'], fields: { nlink: 1 } }] },
  { id: 'unlink-symlink-not-target', setup: [['write', 'f', 'x', 0], ['symlink', 'f', 'l']], run: ['unlink', 'l'], expect: 'OK', checks: [{ step: ['read', 'f'], equals: 'x' }] },
  { id: 'user-unlink-in-root-dir', as: 'user', setup: [['write', 'f', 'x', 0], ['chmod', 'f', '666']], run: ['unlink', 'f'], expect: 'EACCES' },
  { id: 'user-unlink-sticky', as: 'user', setup: [['chmod', '.', '1777'], ['write', 'f', 'x', 0], ['chmod', 'f', '666']], run: ['unlink', 'f'], expect: 'EPERM' },

  // ---- rename ----
  { id: 'rename-file', setup: [['write', 'a', 'A', 0]], run: ['rename', 'a', 'b'], expect: 'OK', checks: [{ step: ['listdir', '.'], equals: ['b'] }, { step: ['read', 'b'], equals: 'A' }] },
  { id: 'rename-over-file', setup: [['write', 'a', 'A', 0], ['write', 'b', 'BB', 0]], run: ['rename', 'a', 'b'], expect: 'OK', checks: [{ step: ['listdir', '.'], equals: ['b'] }, { step: ['read', 'b'], equals: 'A' }] },
  { id: 'rename-dir-over-empty-dir', setup: [['mkdir', 'a'], ['write', 'a/f', 'x', 0], ['mkdir', 'b']], run: ['rename', 'a', 'b'], expect: 'OK', checks: [{ step: ['read', 'b/f'], equals: 'x' }, { step: ['stat', '.'], fields: { nlink: 3 } }] },
  { id: 'rename-dir-over-full-dir', setup: [['mkdir', 'a'], ['mkdir', 'b'], ['write', 'b/f', 'x', 0]], run: ['rename', 'a', 'b'], expect: 'ENOTEMPTY' },
  { id: 'rename-file-over-dir', setup: [['write', 'a', 'A', 0], ['mkdir', 'b']], run: ['rename', 'a', 'b'], expect: 'EISDIR' },
  { id: 'rename-dir-over-file', setup: [['mkdir', 'a'], ['write', 'b', 'B', 0]], run: ['rename', 'a', 'b'], expect: 'ENOTDIR' },
  { id: 'rename-into-itself', setup: [['mkdir', 'a'], ['mkdir', 'a/b']], run: ['rename', 'a', 'a/b/c'], expect: 'EINVAL' },
  { id: 'rename-across-dirs', setup: [['mkdir', 'x'], ['mkdir', 'y'], ['write', 'x/f', 'F', 0]], run: ['rename', 'x/f', 'y/g'], expect: 'OK',
    checks: [{ step: ['listdir', 'x'], equals: [] }, { step: ['read', 'y/g'], equals: 'F' }] },
  { id: 'rename-dir-across-dirs', setup: [['mkdir', 'x'], ['mkdir', 'y'], ['mkdir', 'x/d']], run: ['rename', 'x/d', 'y/d'], expect: 'OK',
    checks: [{ step: ['stat', 'x'], fields: { nlink: 2 } }, { step: ['stat', 'y'], fields: { nlink: 3 } }] },
  { id: 'rename-missing', run: ['rename', 'a', 'b'], expect: 'ENOENT' },
  { id: 'rename-keeps-inode', setup: [['write', 'a', 'A', 0]], run: ['rename_ino', 'a', 'b'], expect: 'OK', result: true },
  { id: 'rename-hard-links-same', setup: [['write', 'a', 'A', 0], ['link', 'a', 'b']], run: ['rename', 'a', 'b'], expect: 'OK', checks: [{ step: ['listdir', '.'], equals: ['a', 'b'] }] },

  // ---- link ----
  { id: 'link-file', setup: [['write', 'f', 'x', 0]], run: ['link', 'f', 'g'], expect: 'OK', checks: [{ step: ['stat', 'g'], fields: { nlink: 2 } }, { step: ['same_ino', 'f', 'g'], equals: true }] },
  { id: 'link-exists', setup: [['write', 'f', 'x', 0], ['write', 'g', 'y', 0]], run: ['link', 'f', 'g'], expect: 'EEXIST' },
  { id: 'link-dir', setup: [['mkdir', 'd']], run: ['link', 'd', 'e'], expect: 'EPERM' },
  { id: 'link-missing', run: ['link', 'f', 'g'], expect: 'ENOENT' },

  // ---- symlink / readlink ----
  { id: 'symlink-new', run: ['symlink', 'some/target', 'l'], expect: 'OK', checks: [{ step: ['readlink', 'l'], equals: 'some/target' }, { step: ['stat', 'l'], fields: { type: 'symlink', size: 11 } }] },
  { id: 'symlink-exists', setup: [['write', 'f', 'x', 0]], run: ['symlink', 't', 'f'], expect: 'EEXIST' },
  { id: 'symlink-name-too-long', run: ['symlink', 't', LONG], expect: 'ENAMETOOLONG' },
  { id: 'readlink-file', setup: [['write', 'f', 'x', 0]], run: ['readlink', 'f'], expect: 'EINVAL' },

  // ---- chmod / chown ----
  { id: 'chmod-file', setup: [['write', 'f', 'x', 0]], run: ['chmod', 'f', '600'], expect: 'OK', checks: [{ step: ['stat', 'f'], fields: { mode: '600' } }] },
  { id: 'chmod-setuid', setup: [['write', 'f', 'x', 0]], run: ['chmod', 'f', '4755'], expect: 'OK', checks: [{ step: ['stat', 'f'], fields: { mode: '4755' } }] },
  { id: 'chmod-dir', setup: [['mkdir', 'd']], run: ['chmod', 'd', '1777'], expect: 'OK', checks: [{ step: ['stat', 'd'], fields: { mode: '1777' } }] },
  { id: 'chmod-missing', run: ['chmod', 'f', '600'], expect: 'ENOENT' },
  { id: 'user-chmod-root-file', as: 'user', setup: [['write', 'f', 'x', 0], ['chmod', 'f', '666']], run: ['chmod', 'f', '777'], expect: 'EPERM' },
  { id: 'chmod-changes-ctime', setup: [['write', 'f', 'x', 0], ['utimens', 'f', T2, T2]], run: ['ctime_changes', 'f'], expect: 'OK', result: true },
  { id: 'chown-file', setup: [['write', 'f', 'x', 0]], run: ['chown', 'f', 4242, 4343], expect: 'OK', checks: [{ step: ['stat', 'f'], fields: { uid: 4242, gid: 4343 } }] },
  { id: 'chown-unchanged', setup: [['write', 'f', 'x', 0], ['chown', 'f', 7, 8]], run: ['chown', 'f', -1, -1], expect: 'OK', checks: [{ step: ['stat', 'f'], fields: { uid: 7, gid: 8 } }] },
  { id: 'chown-gid-only', setup: [['write', 'f', 'x', 0], ['chown', 'f', 7, 8]], run: ['chown', 'f', -1, 9], expect: 'OK', checks: [{ step: ['stat', 'f'], fields: { uid: 7, gid: 9 } }] },
  { id: 'user-chown-to-root', as: 'user', setup: [['chmod', '.', '777']], run: ['creat_chown', 'f', 0, 0], expect: 'EPERM' },

  // ---- truncate ----
  { id: 'truncate-grow', setup: [['write', 'f', 'abc', 0]], run: ['truncate', 'f', 10], expect: 'OK', checks: [{ step: ['read', 'f'], equals: 'abc' + '\u0000'.repeat(7) }] },
  { id: 'truncate-shrink', setup: [['write', 'f', 'abcdef', 0]], run: ['truncate', 'f', 2], expect: 'OK', checks: [{ step: ['read', 'f'], equals: 'ab' }, { step: ['stat', 'f'], fields: { size: 2 } }] },
  { id: 'truncate-dir', setup: [['mkdir', 'd']], run: ['truncate', 'd', 0], expect: 'EISDIR' },
  { id: 'truncate-negative', setup: [['write', 'f', 'x', 0]], run: ['truncate', 'f', -1], expect: 'EINVAL' },
  { id: 'user-truncate-root-file', as: 'user', setup: [['chmod', '.', '777'], ['write', 'f', 'x', 0]], run: ['truncate', 'f', 0], expect: 'EACCES' },
  { id: 'ftruncate-open', setup: [['write', 'f', 'abcdef', 0]], run: ['ftruncate', 'f', 3], expect: 'OK', checks: [{ step: ['read', 'f'], equals: 'abc' }] },

  // ---- utimensat ----
  { id: 'utimens-ns', setup: [['write', 'f', 'x', 0]], run: ['utimens', 'f', T1, T2], expect: 'OK', checks: [{ step: ['stat', 'f'], fields: { atime_ns: T1, mtime_ns: T2 } }] },
  { id: 'utimens-omit-mtime', setup: [['write', 'f', 'x', 0], ['utimens', 'f', T2, T2]], run: ['utimens', 'f', T1, 'OMIT'], expect: 'OK', checks: [{ step: ['stat', 'f'], fields: { atime_ns: T1, mtime_ns: T2 } }] },
  { id: 'utimens-omit-atime', setup: [['write', 'f', 'x', 0], ['utimens', 'f', T2, T2]], run: ['utimens', 'f', 'OMIT', T1], expect: 'OK', checks: [{ step: ['stat', 'f'], fields: { atime_ns: T2, mtime_ns: T1 } }] },
  { id: 'utimens-now', setup: [['write', 'f', 'x', 0], ['utimens', 'f', T2, T2]], run: ['utimens', 'f', 'OMIT', 'NOW'], expect: 'OK', checks: [{ step: ['mtime_recent', 'f'], equals: true }] },
  { id: 'utimens-dir', setup: [['mkdir', 'd']], run: ['utimens', 'd', T1, T1], expect: 'OK', checks: [{ step: ['stat', 'd'], fields: { mtime_ns: T1 } }] },
  { id: 'user-utimens-root-file', as: 'user', setup: [['write', 'f', 'x', 0], ['chmod', 'f', '666']], run: ['utimens', 'f', T1, T1], expect: 'EPERM' },
  { id: 'user-utimens-now-writable', as: 'user', setup: [['write', 'f', 'x', 0], ['chmod', 'f', '666']], run: ['utimens', 'f', 'NOW', 'NOW'], expect: 'OK' },
  { id: 'user-utimens-now-readonly', as: 'user', setup: [['write', 'f', 'x', 0], ['chmod', 'f', '644']], run: ['utimens', 'f', 'NOW', 'NOW'], expect: 'EACCES' },
  { id: 'write-updates-mtime', setup: [['write', 'f', 'x', 0], ['utimens', 'f', T2, T2]], run: ['write', 'f', 'y', 1], expect: 'OK', checks: [{ step: ['mtime_recent', 'f'], equals: true }] },

  // ---- extended attributes ----
  { id: 'xattr-set-get', setup: [['write', 'f', 'x', 0]], run: ['setxattr', 'f', 'user.color', 'blue'], expect: 'OK', checks: [{ step: ['getxattr', 'f', 'user.color'], equals: 'blue' }, { step: ['listxattr', 'f'], equals: ['user.color'] }] },
  { id: 'xattr-get-missing', setup: [['write', 'f', 'x', 0]], run: ['getxattr', 'f', 'user.none'], expect: 'ENODATA' },
  { id: 'xattr-create-exists', setup: [['write', 'f', 'x', 0], ['setxattr', 'f', 'user.a', '1']], run: ['setxattr', 'f', 'user.a', '2', 1], expect: 'EEXIST' },
  { id: 'xattr-replace-missing', setup: [['write', 'f', 'x', 0]], run: ['setxattr', 'f', 'user.a', '2', 2], expect: 'ENODATA' },
  { id: 'xattr-replace', setup: [['write', 'f', 'x', 0], ['setxattr', 'f', 'user.a', '1']], run: ['setxattr', 'f', 'user.a', '2', 2], expect: 'OK', checks: [{ step: ['getxattr', 'f', 'user.a'], equals: '2' }] },
  { id: 'xattr-remove', setup: [['write', 'f', 'x', 0], ['setxattr', 'f', 'user.a', '1'], ['setxattr', 'f', 'user.b', '2']], run: ['removexattr', 'f', 'user.a'], expect: 'OK',
    checks: [{ step: ['getxattr', 'f', 'user.a'], errno: 'ENODATA' }, { step: ['listxattr', 'f'], equals: ['user.b'] }] },
  { id: 'xattr-remove-missing', setup: [['write', 'f', 'x', 0]], run: ['removexattr', 'f', 'user.a'], expect: 'ENODATA' },
  { id: 'xattr-dir', setup: [['mkdir', 'd']], run: ['setxattr', 'd', 'user.d', 'v'], expect: 'OK', checks: [{ step: ['getxattr', 'd', 'user.d'], equals: 'v' }] },
  { id: 'user-xattr-root-file', as: 'user', setup: [['write', 'f', 'x', 0]], run: ['setxattr', 'f', 'user.a', 'v'], expect: 'EACCES' },

  // ---- special files, listings ----
  { id: 'mkfifo', run: ['mkfifo', 'p', '640'], expect: 'OK', checks: [{ step: ['stat', 'p'], fields: { type: 'fifo', mode: '640' } }] },
  { id: 'mkfifo-exists', setup: [['mkfifo', 'p', '644']], run: ['mkfifo', 'p', '644'], expect: 'EEXIST' },
  { id: 'readdir-all', setup: [['mkdir', 'd'], ['write', 'f', 'x', 0], ['symlink', 'f', 'l'], ['mkfifo', 'p', '644']], run: ['listdir', '.'], expect: 'OK', result: ['d', 'f', 'l', 'p'] },
  { id: 'readdir-many', setup: [['many', 'd', 1100]], run: ['count', 'd'], expect: 'OK', result: 1100 },
  { id: 'readdir-not-dir', setup: [['write', 'f', 'x', 0]], run: ['listdir', 'f'], expect: 'ENOTDIR' },
];

/** errno names the table uses, checked to exist on this platform. */
export const ERRNO_NAMES = Object.keys(osConstants.errno);

/** The step interpreter: `python3 -c RUNNER_PY PHASE ROOT UID GID` with the cases as JSON on stdin; results as JSON on stdout. */
export const RUNNER_PY = String.raw`
import ctypes, ctypes.util, errno, json, os, stat, sys, time

phase, root, uid, gid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.umask(0o022)
cases = json.load(sys.stdin)
libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
AT_FDCWD = -100
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

class Timespec(ctypes.Structure):
    _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]

def timespec(v):
    if v == 'NOW': return Timespec(0, UTIME_NOW)
    if v == 'OMIT': return Timespec(0, UTIME_OMIT)
    n = int(v)
    return Timespec(n // 10**9, n % 10**9)

def utimens(path, a, m):
    times = (Timespec * 2)(timespec(a), timespec(m))
    if libc.utimensat(AT_FDCWD, path.encode(), times, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)

def stat_of(path):
    st = os.lstat(path)
    kind = 'file' if stat.S_ISREG(st.st_mode) else 'dir' if stat.S_ISDIR(st.st_mode) else 'symlink' if stat.S_ISLNK(st.st_mode) else 'fifo' if stat.S_ISFIFO(st.st_mode) else 'socket' if stat.S_ISSOCK(st.st_mode) else 'other'
    return {'type': kind, 'mode': format(st.st_mode & 0o7777, 'o'), 'uid': st.st_uid, 'gid': st.st_gid, 'size': st.st_size,
            'nlink': st.st_nlink, 'ino': str(st.st_ino), 'atime_ns': str(st.st_atime_ns), 'mtime_ns': str(st.st_mtime_ns), 'ctime_ns': str(st.st_ctime_ns)}

def flags_of(names):
    f = 0
    for n in names: f |= getattr(os, n)
    return f

def ident(v, own):
    return uid if v == 'U' else gid if v == 'G' else int(v)

def do(base, step):
    op, a = step[0], step[1:]
    p = lambda x: os.path.join(base, x)
    if op == 'mkdir': os.mkdir(p(a[0]), int(a[1], 8) if len(a) > 1 else 0o755); os.chmod(p(a[0]), int(a[1], 8)) if len(a) > 1 and phase == 'setup' else None
    elif op == 'rmdir': os.rmdir(p(a[0]))
    elif op == 'unlink': os.unlink(p(a[0]))
    elif op == 'rename': os.rename(p(a[0]), p(a[1]))
    elif op == 'rename_ino':
        before = os.lstat(p(a[0])).st_ino; os.rename(p(a[0]), p(a[1])); return os.lstat(p(a[1])).st_ino == before
    elif op == 'link': os.link(p(a[0]), p(a[1]))
    elif op == 'same_ino': return os.lstat(p(a[0])).st_ino == os.lstat(p(a[1])).st_ino
    elif op == 'symlink': os.symlink(a[0], p(a[1]))
    elif op == 'readlink': return os.readlink(p(a[0]))
    elif op == 'chmod': os.chmod(p(a[0]), int(a[1], 8))
    elif op == 'chown': os.chown(p(a[0]), ident(a[1], uid), ident(a[2], gid))
    elif op == 'creat_chown':
        fd = os.open(p(a[0]), os.O_CREAT | os.O_WRONLY, 0o644); os.close(fd); os.chown(p(a[0]), a[1], a[2])
    elif op == 'truncate': os.truncate(p(a[0]), a[1])
    elif op == 'ftruncate':
        fd = os.open(p(a[0]), os.O_RDWR)
        try: os.ftruncate(fd, a[1]); os.fsync(fd)
        finally: os.close(fd)
    elif op == 'open':
        fd = os.open(p(a[0]), flags_of(a[1]), int(a[2], 8) if len(a) > 2 else 0o644); os.close(fd)
    elif op == 'write':
        fd = os.open(p(a[0]), os.O_WRONLY | os.O_CREAT, 0o644)
        try: os.pwrite(fd, a[1].encode('latin1'), a[2])
        finally: os.close(fd)
    elif op == 'append':
        fd = os.open(p(a[0]), os.O_WRONLY | os.O_APPEND)
        try: os.write(fd, a[1].encode('latin1'))
        finally: os.close(fd)
    elif op == 'read':
        with open(p(a[0]), 'rb') as f: return f.read().decode('latin1')
    elif op == 'readat':
        fd = os.open(p(a[0]), os.O_RDONLY)
        try: return os.pread(fd, a[2], a[1]).decode('latin1')
        finally: os.close(fd)
    elif op == 'utimens': utimens(p(a[0]), a[1], a[2])
    elif op == 'mtime_recent': return abs(os.lstat(p(a[0])).st_mtime - time.time()) < 30
    elif op == 'ctime_changes':
        before = os.lstat(p(a[0])).st_ctime_ns; time.sleep(0.01); os.chmod(p(a[0]), 0o600); return os.lstat(p(a[0])).st_ctime_ns > before
    elif op == 'setxattr': os.setxattr(p(a[0]), a[1], a[2].encode(), a[3] if len(a) > 3 else 0)
    elif op == 'getxattr': return os.getxattr(p(a[0]), a[1]).decode()
    elif op == 'listxattr': return sorted(n for n in os.listxattr(p(a[0])) if n.startswith('user.'))
    elif op == 'removexattr': os.removexattr(p(a[0]), a[1])
    elif op == 'mkfifo': os.mkfifo(p(a[0]), int(a[1], 8)); os.chmod(p(a[0]), int(a[1], 8)) if phase == 'setup' else None
    elif op == 'stat': return stat_of(p(a[0]))
    elif op == 'listdir': return sorted(os.listdir(p(a[0])))
    elif op == 'count': return len(os.listdir(p(a[0])))
    elif op == 'many':
        os.mkdir(p(a[0]))
        for i in range(a[1]):
            os.close(os.open(p(os.path.join(a[0], 'file-%05d' % i)), os.O_CREAT | os.O_WRONLY, 0o644))
    elif op == 'unlinked_rw':
        fd = os.open(p(a[0]), os.O_RDWR)
        try:
            os.unlink(p(a[0]))
            os.pwrite(fd, b'more', 5)
            if a[1]: os.fsync(fd)
            st = os.fstat(fd)
            data = os.pread(fd, 100, 0)
            return [data.decode('latin1'), st.st_nlink, st.st_size, sorted(os.listdir(base))]
        finally: os.close(fd)
    else: raise ValueError('unknown step ' + op)
    return None

def attempt(base, step):
    try:
        return {'ok': True, 'value': do(base, step)}
    except OSError as e:
        return {'ok': False, 'errno': errno.errorcode.get(e.errno, str(e.errno))}

out = []
for c in cases:
    base = os.path.join(root, c['id'])
    if phase == 'setup':
        os.mkdir(base)
        os.chmod(base, 0o755)
        for s in c.get('setup', []):
            r = attempt(base, s)
            if not r['ok']: out.append({'id': c['id'], 'setup_failed': s[0], 'errno': r['errno']})
    elif phase == 'run':
        out.append(dict(attempt(base, c['run']), id=c['id']))
    elif phase == 'check':
        out.append({'id': c['id'], 'checks': [attempt(base, ch['step']) for ch in c.get('checks', [])]})
json.dump(out, sys.stdout)
`;
