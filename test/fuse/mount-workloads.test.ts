// Real workloads through a mount served by the home's daemon: a source tree
// extracted by tar, and a git repository.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeHome, mount, requireFuse, sh } from './mount-harness.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SLOW = process.env.BAZIL_SLOW === '1';

interface Entry {
  path: string;
  mode: number;
  size: number;
  mtimeNs: bigint;
  digest: string;
}

async function walk(root: string, dir = root, out: Entry[] = []): Promise<Entry[]> {
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    const st = await lstat(p, { bigint: true });
    const digest = st.isFile() ? createHash('sha256').update(await readFile(p)).digest('hex') : st.isSymbolicLink() ? await readlink(p) : '';
    out.push({ path: relative(root, p), mode: Number(st.mode), size: st.isDirectory() ? 0 : Number(st.size), mtimeNs: st.mtimeNs, digest });
    if (st.isDirectory()) await walk(root, p, out);
  }
  return out;
}

test('tar of a real source tree extracts through the mount identical to a local extraction', { timeout: 120_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    const archive = join(h.dir, 'src.tar');
    // This repository, wherever the compiled test sits inside it.
    const repo = (await sh('git', ['rev-parse', '--show-toplevel'], { cwd: HERE })).trim();
    // The default run takes the library's source (a test file's time must stay bounded as the repository grows); BAZIL_SLOW=1 the whole tree.
    await sh('git', ['-C', repo, 'archive', '--format=tar', '-o', archive, 'HEAD', ...(SLOW ? [] : ['src', 'arena', 'docs'])]);
    const local = join(h.dir, 'local');
    await mkdir(local);
    await sh('tar', ['-xf', archive, '-C', local]);
    const m = await mount(h, 'v');
    try {
      const target = join(m.dir, 'src');
      await mkdir(target);
      await sh('tar', ['-xf', archive, '-C', target]);
      const want = await walk(local);
      const got = await walk(target);
      assert.ok(want.length > 50, `the archive holds ${want.length} entries`);
      assert.deepEqual(got, want);
      // The log has it: a forwarded export of the mounted volume gives the same tree.
      const exported = join(h.dir, 'exported');
      await h.ok(['export', 'v:/src', 'exported']);
      assert.deepEqual(await walk(exported), want);
    } finally {
      await m.unmount();
    }
  } finally {
    await h.cleanup();
  }
});

test('git init, add, commit and fsck in the mount', { timeout: 120_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    const m = await mount(h, 'v');
    try {
      const repo = join(m.dir, 'repo');
      await mkdir(repo);
      const git = (...args: string[]): Promise<string> => sh('git', ['-c', 'user.name=Test', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', ...args], { cwd: repo });
      await git('init', '-q');
      for (let i = 0; i < 20; i++) await writeFile(join(repo, `file-${i}.txt`), `content ${i}\n`.repeat(i + 1));
      await mkdir(join(repo, 'sub'));
      await writeFile(join(repo, 'sub', 'bin'), randomBytes(200_000));
      await git('add', '.');
      await git('commit', '-q', '-m', 'first');
      await writeFile(join(repo, 'file-3.txt'), 'changed\n');
      await git('commit', '-q', '-am', 'second');
      await git('gc', '-q');
      const fsck = await git('fsck', '--full', '--strict');
      assert.equal(fsck.trim(), '');
      assert.equal((await git('rev-list', '--count', 'HEAD')).trim(), '2');
      assert.equal((await git('status', '--porcelain')).trim(), '');
    } finally {
      await m.unmount();
    }
    const fsck = await h.bazil(['fsck', 'v']);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  } finally {
    await h.cleanup();
  }
});
