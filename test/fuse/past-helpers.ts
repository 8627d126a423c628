// Shared by the past-state mount tests: a sample tree written through a
// live mount, a comparison of two trees as a user's tools see them (lstat,
// content, symlink targets, xattrs, hard-link groups), and a child process
// that tries every write syscall on a read-only tree.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, link, lstat, mkdir, readdir, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { getXattr, listXattrs, setXattr } from '../../src/fs/xattr.js';

const run = promisify(execFile);
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Files, directories, a symlink, a hard link, modes, an mtime with sub-second digits, an xattr, a Unicode name. */
export async function writeSample(root: string): Promise<void> {
  await mkdir(join(root, 'sub', 'deeper'), { recursive: true });
  await mkdir(join(root, 'emptydir'));
  await writeFile(join(root, 'a.txt'), 'hello\n');
  setXattr(join(root, 'a.txt'), 'user.x', Buffer.from('one'));
  await writeFile(join(root, 'big.bin'), randomBytes(300_000));
  await writeFile(join(root, 'empty'), '');
  await writeFile(join(root, 'sub', 'x.bin'), randomBytes(50_000));
  await chmod(join(root, 'sub', 'x.bin'), 0o600);
  await writeFile(join(root, 'sub', 'deeper', 'note.txt'), 'keep me\n');
  await writeFile(join(root, 'ünï cödé.txt'), 'unicode\n');
  await writeFile(join(root, 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(root, 'run.sh'), 0o755);
  await utimes(join(root, 'run.sh'), 1_600_000_000.123456, 1_600_000_000.123456);
  await symlink('a.txt', join(root, 'link-to-a'));
  await link(join(root, 'big.bin'), join(root, 'sub', 'hard'));
}

/** Changes after the first point: every kind of change, so a past state differs from the present. */
export async function changeSample(root: string, round: number): Promise<void> {
  await writeFile(join(root, 'a.txt'), `changed ${round}\n`);
  setXattr(join(root, 'a.txt'), 'user.x', Buffer.from(`round ${round}`));
  await writeFile(join(root, `new-${round}.txt`), `new in round ${round}\n`);
  await mkdir(join(root, `dir-${round}`));
  await chmod(join(root, 'run.sh'), 0o700);
}

export interface NodeView {
  path: string;
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  /** Microseconds: what `bazil export` can give back (utimes). */
  mtimeUs: bigint;
  sha256?: string;
  target?: string;
  xattrs: Record<string, string>;
  /** Index of the first path with the same inode (hard links), by walk order. */
  linkGroup?: string;
  ino: bigint;
}

/** Every node below `root` (root itself included as '/'), in name order. */
export async function viewTree(root: string, options: { skipRootNames?: string[] } = {}): Promise<NodeView[]> {
  const out: NodeView[] = [];
  const firstPathOfIno = new Map<bigint, string>();
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '/' ? root : join(root, rel);
    const st = await lstat(abs, { bigint: true });
    const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    const xattrs: Record<string, string> = {};
    if (kind !== 'symlink') for (const n of listXattrs(abs).sort()) xattrs[n] = getXattr(abs, n).toString('hex');
    const node: NodeView = {
      path: rel, kind, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid),
      size: kind === 'dir' ? 0 : Number(st.size), nlink: kind === 'dir' ? 0 : Number(st.nlink), mtimeUs: st.mtimeNs / 1000n, xattrs, ino: st.ino,
    };
    if (kind === 'file') {
      node.sha256 = createHash('sha256').update(await readFile(abs)).digest('hex');
      if (st.nlink > 1n) {
        node.linkGroup = firstPathOfIno.get(st.ino) ?? rel;
        if (!firstPathOfIno.has(st.ino)) firstPathOfIno.set(st.ino, rel);
      }
    }
    if (kind === 'symlink') node.target = await readlink(abs);
    out.push(node);
    if (kind === 'dir') {
      let names = (await readdir(abs)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      if (rel === '/' && options.skipRootNames !== undefined) names = names.filter((n) => !options.skipRootNames!.includes(n));
      for (const n of names) await visit(rel === '/' ? `/${n}` : `${rel}/${n}`);
    }
  };
  await visit('/');
  return out;
}

/** The two trees are equal in everything a user's tools see (inode numbers aside). */
export async function assertSameTree(actual: string, expected: string, what: string): Promise<NodeView[]> {
  const a = await viewTree(actual);
  const e = await viewTree(expected);
  const strip = (nodes: NodeView[]): Omit<NodeView, 'ino'>[] => nodes.map(({ ino: _ino, ...rest }) => rest);
  assert.deepEqual(strip(a), strip(e), `${what}: ${actual} differs from ${expected}`);
  const diff = await run('diff', ['-r', '--no-dereference', actual, expected]).then(() => '', (err: { stdout?: string; stderr?: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}` || 'diff failed');
  assert.equal(diff, '', `${what}: diff -r ${actual} ${expected}`);
  return a;
}

const WRITES_PY = String.raw`
import errno, json, os, sys
root, f, d, empty = sys.argv[1], *[os.path.join(sys.argv[1], p) for p in sys.argv[2:5]]
res = {}
def t(name, fn):
    try:
        r = fn()
        if isinstance(r, int) and name.startswith('open'):
            os.close(r)
        res[name] = 'ok'
    except OSError as e:
        res[name] = errno.errorcode.get(e.errno, str(e.errno))
t('open-wronly', lambda: os.open(f, os.O_WRONLY))
t('open-rdwr', lambda: os.open(f, os.O_RDWR))
t('open-append', lambda: os.open(f, os.O_WRONLY | os.O_APPEND))
t('open-trunc', lambda: os.open(f, os.O_RDONLY | os.O_TRUNC))
t('creat', lambda: os.open(os.path.join(d, 'new-file'), os.O_WRONLY | os.O_CREAT, 0o644))
t('creat-excl', lambda: os.open(os.path.join(d, 'new-excl'), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644))
t('mkdir', lambda: os.mkdir(os.path.join(d, 'new-dir')))
t('rmdir', lambda: os.rmdir(empty))
t('unlink', lambda: os.unlink(f))
t('rename', lambda: os.rename(f, f + '.moved'))
t('rename-dir', lambda: os.rename(empty, empty + '.moved'))
t('link', lambda: os.link(f, f + '.link'))
t('symlink', lambda: os.symlink('target', os.path.join(d, 'new-symlink')))
t('truncate', lambda: os.truncate(f, 0))
t('chmod', lambda: os.chmod(f, 0o600))
t('chown', lambda: os.chown(f, 1, 1))
t('utime', lambda: os.utime(f, (0, 0)))
t('setxattr', lambda: os.setxattr(f, 'user.new', b'1'))
t('setxattr-replace', lambda: os.setxattr(f, 'user.x', b'2'))
t('removexattr', lambda: os.removexattr(f, 'user.x'))
t('mkfifo', lambda: os.mkfifo(os.path.join(d, 'new-fifo')))
t('mknod', lambda: os.mknod(os.path.join(d, 'new-node'), 0o600 | 0o100000))
t('read', lambda: len(open(f, 'rb').read()))
res['st_rdonly'] = bool(os.statvfs(f).f_flag & os.ST_RDONLY)
print(json.dumps(res))
`;

export const WRITE_SYSCALLS = [
  'open-wronly', 'open-rdwr', 'open-append', 'open-trunc', 'creat', 'creat-excl', 'mkdir', 'rmdir', 'unlink', 'rename', 'rename-dir',
  'link', 'symlink', 'truncate', 'chmod', 'chown', 'utime', 'setxattr', 'setxattr-replace', 'removexattr', 'mkfifo', 'mknod',
];

/**
 * Every write syscall, from a separate process, on the file `file` (which
 * has a user.x attribute), in the directory `dir` and on the empty
 * directory `empty` of `root`: the answers by name (errno names, or 'ok'),
 * plus whether statvfs says ST_RDONLY.
 */
export async function tryWrites(root: string, file: string, dir: string, empty: string): Promise<Record<string, string | boolean>> {
  const { stdout } = await run(PYTHON, ['-c', WRITES_PY, root, file, dir, empty], { timeout: 60_000 });
  return JSON.parse(stdout) as Record<string, string | boolean>;
}

export function assertAllErofs(answers: Record<string, string | boolean>, what: string): void {
  for (const name of WRITE_SYSCALLS) assert.equal(answers[name], 'EROFS', `${what}: ${name} answered ${String(answers[name])}`);
  assert.equal(answers['read'], 'ok', `${what}: reading failed: ${String(answers['read'])}`);
}
