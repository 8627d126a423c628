import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, link, lstat, mkdir, mkdtemp, readdir, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { exportTree, importTree, toUtimeSeconds } from '../../src/volume/import-export.js';
import { Volume } from '../../src/volume/volume.js';
import { walk } from '../lib/gen-tree.js';

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-volume-test-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function newVolume(dir: string, name = 'v'): Promise<string> {
  const homeDir = join(dir, 'home');
  const { home } = await initHome(homeDir);
  try {
    await createVolume(home, name);
  } finally {
    await home.close();
  }
  return homeDir;
}

/** A deterministic-enough tree: nested dirs, empty ones, random sizes 0..300 KiB, Unicode names, a symlink, a hard-link pair. */
async function makeTree(root: string, files = 240): Promise<number> {
  const dirs = [root];
  await mkdir(root);
  for (const name of ['a', 'b', 'ü-ñ', 'a/deep', 'a/deep/er', 'empty', 'b/空']) {
    await mkdir(join(root, name));
    dirs.push(join(root, name));
  }
  const modes = [0o600, 0o755, 0o640];
  let bytes = 0;
  for (let i = 0; i < files; i++) {
    const dir = dirs[i % dirs.length]!;
    if (dir.endsWith('empty')) continue;
    const size = i % 17 === 0 ? 0 : Math.floor(Math.random() * 300 * 1024);
    const name = i % 11 === 0 ? `fïlé-${i}-日本.txt` : `f${i}.bin`;
    const path = join(dir, name);
    // Some repeated content, so dedup inside one import shows too.
    await writeFile(path, i % 13 === 0 ? Buffer.alloc(size, 7) : randomBytes(size));
    await chmod(path, modes[i % 3]!);
    bytes += size;
  }
  const dup = randomBytes(200 * 1024);
  await writeFile(join(root, 'dup-a.bin'), dup);
  await writeFile(join(root, 'b', 'dup-b.bin'), dup);
  bytes += 2 * dup.length;
  await symlink('../b/f2.bin', join(root, 'a', 'link-to-f2'));
  await symlink('dangling/ziel', join(root, 'b', 'dangling'));
  await link(join(root, 'b', 'f2.bin'), join(root, 'a', 'hard-f2'));
  await chmod(join(root, 'a', 'deep'), 0o750);
  // mtimes with microseconds, dirs last (creating entries changes them).
  const all = await walk(root);
  for (const p of all.reverse()) {
    const ns = 1_600_000_000_123_456_000n + BigInt(Math.floor(Math.random() * 1e9)) * 1000n;
    const st = await lstat(p);
    if (!st.isSymbolicLink()) await utimes(p, toUtimeSeconds(ns), toUtimeSeconds(ns));
  }
  return bytes;
}

/** What must survive a round trip, per relative path. */
async function describe(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const inodes = new Map<bigint, string>();
  for (const p of await walk(root)) {
    const st = await lstat(p, { bigint: true });
    const rel = relative(root, p) || '.';
    const us = st.mtimeNs / 1000n;
    const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? `l->${await readlink(p)}` : 'f';
    let group = '';
    if (st.isFile() && st.nlink > 1n) {
      group = inodes.get(st.ino) ?? rel;
      inodes.set(st.ino, group);
    }
    const mode = st.isSymbolicLink() ? '' : (st.mode & 0o7777n).toString(8);
    const size = st.isDirectory() ? '' : String(st.size);
    const mtime = st.isSymbolicLink() ? '' : String(us);
    out.set(rel, [type, mode, st.uid, st.gid, size, mtime, `links:${st.nlink}`, group].join(' '));
  }
  return out;
}

test('import then export round-trips a tree; re-import dedups; rebuild is identical', async () => {
  await withTemp(async (dir) => {
    const src = join(dir, 'src');
    const total = await makeTree(src);
    const homeDir = await newVolume(dir);
    const volume = await Volume.open(homeDir, 'v');
    try {
      let progressCalls = 0;
      const imported = await importTree(volume, src, '/tree', { onProgress: () => progressCalls++ });
      assert.equal(imported.bytes, total);
      assert.equal(imported.links, 1);
      assert.equal(imported.symlinks, 2);
      assert.equal(progressCalls, imported.files);
      assert.ok(imported.newBytes < total, 'repeated content is stored once');

      const out = join(dir, 'out');
      const exported = await exportTree(volume, '/tree', out);
      assert.equal(exported.bytes, total);
      execFileSync('diff', ['-r', '--no-dereference', src, out]);
      assert.deepEqual(await describe(out), await describe(src));
      const mb = total / 1e6;
      process.stderr.write(`# import ${(mb / (imported.ms / 1000)).toFixed(1)} MB/s, export ${(mb / (exported.ms / 1000)).toFixed(1)} MB/s (${mb.toFixed(1)} MB, ${imported.files} files)\n`);

      // The same tree again, elsewhere: only manifests and metadata are new.
      const again = await importTree(volume, src, '/copy');
      assert.equal(again.bytes, total);
      assert.ok(again.newBytes < 4096, `re-import stored ${again.newBytes} new content bytes`);

      const before = await volume.dump();
      const rebuilt = await volume.rebuild();
      assert.equal(rebuilt.events, 1 + imported.events + again.events);
      assert.ok((await volume.dump()).equals(before));

      // Single files read through the facade match the source.
      const f = (await readdir(join(src, 'b'))).find((n) => n.endsWith('.bin'))!;
      const whole = await volume.readFile(`/tree/b/${f}`);
      assert.ok(whole.equals(await import('node:fs/promises').then((fs) => fs.readFile(join(src, 'b', f)))));
      assert.equal(await volume.readlink('/tree/a/link-to-f2'), '../b/f2.bin');
    } finally {
      await volume.close();
    }
    // The projection survives a reopen without replay changes.
    const reopened = await Volume.open(homeDir, 'v');
    try {
      assert.equal((await reopened.stat('/tree/a/hard-f2')).nlink, 2);
    } finally {
      await reopened.close();
    }
  });
});

test('import into an existing non-empty directory is refused', async () => {
  await withTemp(async (dir) => {
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'x'), 'x');
    const volume = await Volume.open(await newVolume(dir), 'v');
    try {
      await importTree(volume, src, '/');
      await assert.rejects(importTree(volume, src, '/'), { code: 'BAZIL_NOT_EMPTY' });
      await assert.rejects(importTree(volume, src, '/nope/deeper'), { code: 'BAZIL_NOT_FOUND' });
      assert.equal((await volume.readFile('/x')).toString(), 'x');
    } finally {
      await volume.close();
    }
  });
});

test('import --update writes nothing for an unchanged tree and only the differences for a changed one', async () => {
  await withTemp(async (dir) => {
    const src = join(dir, 'src');
    await makeTree(src, 60);
    const homeDir = await newVolume(dir);
    const volume = await Volume.open(homeDir, 'v');
    try {
      const first = await importTree(volume, src, '/tree');
      assert.equal(first.unchanged, 0);

      const same = await importTree(volume, src, '/tree', { update: true });
      assert.equal(same.events, 0, 'an unchanged tree writes no event');
      assert.equal(same.newBytes, 0);
      assert.equal(same.removed, 0);
      assert.equal(same.unchanged, same.files + same.symlinks + same.dirs + same.links);

      // Every kind of change, each of which must come through.
      const fs = await import('node:fs/promises');
      const files = (await readdir(join(src, 'b'))).filter((n) => n.endsWith('.bin') && n !== 'dup-b.bin').sort();
      const edited = join(src, 'b', files[0]!);
      await fs.appendFile(edited, 'appended');
      await chmod(join(src, 'b', files[1]!), 0o604);
      await utimes(join(src, 'b', files[2]!), 1_234_567_890.25, 1_234_567_890.25);
      await rm(join(src, 'a', 'deep'), { recursive: true });
      await rm(join(src, 'dup-a.bin'));
      await mkdir(join(src, 'dup-a.bin'));
      await writeFile(join(src, 'dup-a.bin', 'now-a-dir'), 'inside');
      await rm(join(src, 'b', 'dangling'));
      await symlink('elsewhere', join(src, 'b', 'dangling'));
      await writeFile(join(src, 'empty', 'new.txt'), randomBytes(5000));
      await rm(join(src, 'a', 'hard-f2'));
      await link(join(src, 'b', files[3]!), join(src, 'a', 'hard-f2'));

      const changed = await importTree(volume, src, '/tree', { update: true });
      assert.ok(changed.events > 0 && changed.events < 40, `${changed.events} events for a handful of changes`);
      assert.ok(changed.removed >= 3, `${changed.removed} entries removed`);
      // The appended file's last chunks (up to 256 KiB each) and the new file.
      assert.ok(changed.newBytes < 1024 * 1024, `${changed.newBytes} bytes of new content`);

      const out = join(dir, 'out');
      await exportTree(volume, '/tree', out);
      execFileSync('diff', ['-r', '--no-dereference', src, out]);
      assert.deepEqual(await describe(out), await describe(src));

      // Once the changes are in, the tree is unchanged again.
      const again = await importTree(volume, src, '/tree', { update: true });
      assert.equal(again.events, 0);

      const before = await volume.dump();
      await volume.rebuild();
      assert.ok((await volume.dump()).equals(before));
      const report = await volume.fsck();
      assert.ok(report.ok, JSON.stringify(report.problems));
    } finally {
      await volume.close();
    }
  });
});

test('import --update into a file, or a missing parent, is refused; into a new path it imports', async () => {
  await withTemp(async (dir) => {
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'x'), 'x');
    const volume = await Volume.open(await newVolume(dir), 'v');
    try {
      await importTree(volume, src, '/t', { update: true });
      assert.equal((await volume.readFile('/t/x')).toString(), 'x');
      await assert.rejects(importTree(volume, src, '/t/x', { update: true }), { code: 'BAZIL_NOT_A_DIRECTORY' });
      await assert.rejects(importTree(volume, src, '/nope/deeper', { update: true }), { code: 'BAZIL_NOT_FOUND' });
      await assert.rejects(importTree(volume, join(dir, 'missing'), '/t', { update: true }), { code: 'BAZIL_NOT_FOUND' });
      // A failed update leaves what was there.
      assert.equal((await volume.readFile('/t/x')).toString(), 'x');
    } finally {
      await volume.close();
    }
  });
});

test('export writes holes, sizes past the content, and big files through its worker; fails cleanly on an existing file or an abort', async () => {
  await withTemp(async (dir) => {
    const fs = await import('node:fs/promises');
    const src = join(dir, 'src');
    await mkdir(src);
    // Holes at the start, in the middle and at the end (all-zero chunks are stored as holes).
    const sparse = Buffer.alloc(3 * 1024 * 1024);
    randomBytes(5000).copy(sparse, 1024 * 1024);
    await writeFile(join(src, 'sparse.bin'), sparse);
    // Larger than an export slab: several parts of one file.
    const big = randomBytes(9 * 1024 * 1024 + 17);
    await writeFile(join(src, 'big.bin'), big);
    await writeFile(join(src, 'empty'), '');
    const volume = await Volume.open(await newVolume(dir), 'v');
    try {
      await importTree(volume, src, '/t');
      await volume.writeFile('/t/grown', Buffer.from('abc'));
      await volume.truncate('/t/grown', 100_000);
      await volume.writeFile('/t/shrunk', randomBytes(300_000));
      await volume.truncate('/t/shrunk', 1000);

      const out = join(dir, 'out');
      const result = await exportTree(volume, '/t', out);
      assert.equal(result.files, 5);
      assert.ok((await fs.readFile(join(out, 'sparse.bin'))).equals(sparse));
      assert.ok((await fs.readFile(join(out, 'big.bin'))).equals(big));
      assert.equal((await fs.readFile(join(out, 'empty'))).length, 0);
      assert.ok((await fs.readFile(join(out, 'grown'))).equals(Buffer.concat([Buffer.from('abc'), Buffer.alloc(100_000 - 3)])));
      assert.ok((await fs.readFile(join(out, 'shrunk'))).equals(await volume.readFile('/t/shrunk')));
      assert.equal((await lstat(join(out, 'shrunk'))).size, 1000);

      // A single file onto an existing one: refused, the local file untouched.
      await writeFile(join(dir, 'there'), 'mine');
      await assert.rejects(exportTree(volume, '/t/big.bin', join(dir, 'there')), (err: Error & { code?: string; data?: { os?: string } }) => {
        assert.equal(err.code, 'BAZIL_IO');
        assert.equal(err.data?.os, 'EEXIST');
        return true;
      });
      assert.equal((await fs.readFile(join(dir, 'there'), 'utf8')), 'mine');

      // An abort mid-way stops the export with its code and leaves no descriptor open.
      const fds = (await readdir('/proc/self/fd')).length;
      const controller = new AbortController();
      const aborted = exportTree(volume, '/t', join(dir, 'out2'), {
        signal: controller.signal,
        onProgress: () => controller.abort(),
      });
      await assert.rejects(aborted, { code: 'BAZIL_ABORTED' });
      assert.equal((await readdir('/proc/self/fd')).length, fds);
    } finally {
      await volume.close();
    }
  });
});

test('the walk goes ahead of the events across directories, as far as its bound: nested trees of empty files, symlinks and files import whole', async () => {
  // More entries than steps may wait (4,096 in import-export.ts): the walk
  // must wait for the oldest step and go on, never for its own.
  await withTemp(async (dir) => {
    const src = join(dir, 'src');
    await mkdir(src);
    const expected: string[] = [];
    for (let d = 0; d < 3; d++) {
      const sub = join(src, `d${d}`, 'inner');
      await mkdir(sub, { recursive: true });
      for (let i = 0; i < 1500; i++) {
        await writeFile(join(sub, `e${i}`), '');
        expected.push(`d${d}/inner/e${i}`);
      }
      await symlink(`inner/e${d}`, join(src, `d${d}`, 'to-e'));
      await writeFile(join(src, `d${d}`, 'inner', 'data'), randomBytes(70_000));
      expected.push(`d${d}/to-e`, `d${d}/inner/data`);
    }
    const homeDir = await newVolume(dir);
    const volume = await Volume.open(homeDir, 'v');
    try {
      const result = await importTree(volume, src, '/t');
      assert.equal(result.files, 4503);
      assert.equal(result.symlinks, 3);
      assert.equal(result.dirs, 7);
      await exportTree(volume, '/t', join(dir, 'out'));
    } finally {
      await volume.close();
    }
    const got = (await walk(join(dir, 'out'))).map((p) => relative(join(dir, 'out'), p)).filter((p) => p !== '' && !/^d\d(\/inner)?$/.test(p));
    assert.deepEqual(got.sort(), expected.sort());
    execFileSync('diff', ['-r', '--no-dereference', src, join(dir, 'out')]);
  });
});
