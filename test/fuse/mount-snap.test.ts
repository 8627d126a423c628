// `DIR/.snap/` in a live mount: snapshots as directories, made with mkdir and
// removed with rmdir (each an event `bazil snapshot ls` sees), each the
// read-only past state (equal to `bazil export --at`, browsable with ls -R
// and cp -a, EROFS for every write); `.snap` hidden from the root's listing,
// reserved at the root (a real `.snap` of the volume is shadowed), inode
// numbers that never collide with live ones, and more snapshots than the
// daemon keeps built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { listXattrs } from '../../src/fs/xattr.js';
import { makeHome, mount, requireFuse, sh } from './mount-harness.js';
import { assertAllErofs, assertSameTree, changeSample, tryWrites, viewTree, writeSample } from './past-helpers.js';

const run = promisify(execFile);
const PAST_INO = 1n << 62n;

/** The errno name of a failing promise ('ok' if it did not fail). */
async function errnoOf(work: Promise<unknown>): Promise<string> {
  return work.then(() => 'ok', (err: NodeJS.ErrnoException) => err.code ?? String(err));
}

async function snapshotNames(h: { ok(args: string[]): Promise<string> }): Promise<string[]> {
  return (JSON.parse(await h.ok(['--json', 'snapshot', 'ls', 'v'])) as { name: string }[]).map((s) => s.name);
}

test('.snap: mkdir takes a snapshot, its directory equals export --at, EROFS inside, rmdir removes it', { timeout: 180_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    const m = await mount(h, 'v');
    try {
      const snapDir = join(m.dir, '.snap');
      await writeSample(m.dir);
      assert.deepEqual(await readdir(snapDir), []);
      await mkdir(join(snapDir, 'one'));
      assert.deepEqual(await snapshotNames(h), ['one']);
      await changeSample(m.dir, 1);
      await h.ok(['snapshot', 'create', 'v', 'two']);
      await changeSample(m.dir, 2);

      // Hidden from the root's listing, reachable by name.
      assert.ok(!(await readdir(m.dir)).includes('.snap'));
      assert.ok((await stat(snapDir)).isDirectory());
      assert.deepEqual((await readdir(snapDir)).sort(), ['one', 'two']);
      assert.match(await sh('ls', ['-R', join(snapDir, 'one')]), /deeper:\nnote\.txt/);

      for (const name of ['one', 'two']) {
        const out = join(h.dir, `export-${name}`);
        await h.ok(['export', 'v', out, '--at', name]);
        await assertSameTree(join(snapDir, name), out, `.snap/${name}`);
        // cp -a copies a past state out, with its xattrs but without the computed user.bazil.* ones.
        const copy = join(h.dir, `copy-${name}`);
        await run('cp', ['-a', join(snapDir, name), copy]);
        await assertSameTree(copy, out, `cp -a of .snap/${name}`);
        assert.deepEqual(listXattrs(join(copy, 'a.txt')), ['user.x']);
        assertAllErofs(await tryWrites(join(snapDir, name), 'a.txt', 'sub', 'emptydir'), `.snap/${name}`);
      }
      assert.equal(await readFile(join(snapDir, 'one', 'a.txt'), 'utf8'), 'hello\n');
      assert.equal(await readFile(join(snapDir, 'two', 'a.txt'), 'utf8'), 'changed 1\n');
      assert.equal(await readFile(join(m.dir, 'a.txt'), 'utf8'), 'changed 2\n');

      // Inode numbers: past ones in their own half, per snapshot; hard links still shared within one.
      const live = await viewTree(m.dir);
      const one = await viewTree(join(snapDir, 'one'));
      const two = await viewTree(join(snapDir, 'two'));
      assert.ok(live.every((n) => n.ino < PAST_INO), 'live inode numbers stay below 2^62');
      assert.ok([...one, ...two].every((n) => n.ino >= PAST_INO), 'past inode numbers are 2^62 and up');
      const inos = [...one, ...two].map((n) => n.ino);
      // Hard links are the only repeats: big.bin and sub/hard, once per snapshot.
      assert.equal(new Set(inos).size, inos.length - 2);
      assert.equal(one.find((n) => n.path === '/big.bin')!.ino, one.find((n) => n.path === '/sub/hard')!.ino);
      assert.notEqual(one.find((n) => n.path === '/big.bin')!.ino, two.find((n) => n.path === '/big.bin')!.ino);
      assert.notEqual((await stat(snapDir, { bigint: true })).ino, (await stat(m.dir, { bigint: true })).ino);

      // Bad names, existing names, and what cannot be made in .snap.
      assert.equal(await errnoOf(mkdir(join(snapDir, '1starts-with-digit'))), 'EINVAL');
      assert.equal(await errnoOf(mkdir(join(snapDir, 'has:colon'))), 'EINVAL');
      assert.equal(await errnoOf(mkdir(join(snapDir, 'x'.repeat(300)))), 'ENAMETOOLONG');
      assert.equal(await errnoOf(mkdir(join(snapDir, 'one'))), 'EEXIST');
      assert.equal(await errnoOf(writeFile(join(snapDir, 'file'), 'x')), 'EROFS');
      assert.equal(await errnoOf(mkdir(join(snapDir, 'one', 'inside'))), 'EROFS');
      assert.equal(await errnoOf(rmdir(join(snapDir, 'nope'))), 'ENOENT');
      assert.deepEqual(await snapshotNames(h), ['one', 'two']);

      // rmdir removes the name (one event); the state stays reachable by position.
      await rmdir(join(snapDir, 'two'));
      assert.deepEqual(await snapshotNames(h), ['one']);
      assert.deepEqual(await readdir(snapDir), ['one']);
      assert.equal(await errnoOf(stat(join(snapDir, 'two'))), 'ENOENT');
      // The name can be taken again, for the present state.
      await mkdir(join(snapDir, 'two'));
      assert.equal(await readFile(join(snapDir, 'two', 'a.txt'), 'utf8'), 'changed 2\n');

      const fsck = await h.bazil(['fsck', 'v']);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    } finally {
      await m.unmount();
    }
  } finally {
    await h.cleanup();
  }
});

test('.snap: reserved at the root (a real .snap is shadowed), more snapshots than the cache keeps', { timeout: 180_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    // A volume with a real `.snap` directory, imported from elsewhere.
    const src = join(h.dir, 'src');
    await mkdir(join(src, '.snap'), { recursive: true });
    await writeFile(join(src, '.snap', 'inner.txt'), 'a real file\n');
    await writeFile(join(src, 'top.txt'), 'top\n');
    await h.ok(['import', src, 'v:/']);
    const m = await mount(h, 'v');
    try {
      const snapDir = join(m.dir, '.snap');
      assert.deepEqual((await readdir(m.dir)).sort(), ['top.txt']);
      assert.deepEqual(await readdir(snapDir), []);
      // Still there through the commands.
      assert.equal(await h.ok(['cat', 'v:/.snap/inner.txt']), 'a real file\n');
      // Nothing new can take the name at the root.
      assert.equal(await errnoOf(mkdir(snapDir)), 'EEXIST');
      assert.notEqual(await errnoOf(writeFile(snapDir, 'x')), 'ok');
      const renamed = await errnoOf(run('mv', ['-T', join(m.dir, 'top.txt'), snapDir]));
      assert.notEqual(renamed, 'ok');
      assert.equal(await readFile(join(m.dir, 'top.txt'), 'utf8'), 'top\n');
      // A `.snap` below the root is an ordinary name.
      await mkdir(join(m.dir, 'sub', '.snap'), { recursive: true });
      await writeFile(join(m.dir, 'sub', '.snap', 'f'), 'ordinary\n');
      assert.equal(await h.ok(['cat', 'v:/sub/.snap/f']), 'ordinary\n');

      // Six snapshots, each of a different state, read back in two passes (the daemon keeps four built).
      const names = ['s1', 's2', 's3', 's4', 's5', 's6'];
      for (const [i, name] of names.entries()) {
        await writeFile(join(m.dir, 'top.txt'), `state ${i}\n`);
        await mkdir(join(snapDir, name));
      }
      for (let pass = 0; pass < 2; pass++) {
        for (const [i, name] of names.entries()) {
          assert.equal(await readFile(join(snapDir, name, 'top.txt'), 'utf8'), `state ${i}\n`, `pass ${pass}, ${name}`);
        }
      }
      // A snapshot's past includes the shadowed `.snap` as it was then: its own root is an ordinary directory.
      assert.deepEqual((await readdir(join(snapDir, 's1'))).sort(), ['.snap', 'sub', 'top.txt']);
      assert.equal(await readFile(join(snapDir, 's1', '.snap', 'inner.txt'), 'utf8'), 'a real file\n');
    } finally {
      await m.unmount();
    }
  } finally {
    await h.cleanup();
  }
});
