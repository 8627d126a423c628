import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getXattr, listXattrs, setXattr } from '../../src/fs/xattr.js';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { exportTree, importTree } from '../../src/volume/import-export.js';
import { Volume } from '../../src/volume/volume.js';

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-xattr-roundtrip-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function newVolume(dir: string): Promise<string> {
  const homeDir = join(dir, 'home');
  const { home } = await initHome(homeDir);
  try {
    await createVolume(home, 'v');
  } finally {
    await home.close();
  }
  return homeDir;
}

const BINARY = Buffer.from([0, 1, 2, 0, 0xfe, 0xff, 0]);

/** Relative path → the user.* attributes (name → hex value). */
function userXattrs(root: string, rels: string[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const rel of rels) {
    const path = join(root, rel);
    const attrs: Record<string, string> = {};
    for (const name of listXattrs(path).filter((n) => n.startsWith('user.')).sort()) attrs[name] = getXattr(path, name).toString('hex');
    out[rel] = attrs;
  }
  return out;
}

test('import then export keeps user.* xattrs of files and directories', async () => {
  await withTemp(async (dir) => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'a.txt'), 'hello');
    await writeFile(join(src, 'empty-file'), '');
    await writeFile(join(src, 'sub', 'b.bin'), Buffer.alloc(3000, 9));
    await writeFile(join(src, 'plain'), 'no attributes');
    await symlink('a.txt', join(src, 'link'));
    setXattr(src, 'user.top', Buffer.from('root dir'));
    setXattr(join(src, 'a.txt'), 'user.comment', Buffer.from('a text file'));
    setXattr(join(src, 'a.txt'), 'user.binary', BINARY);
    setXattr(join(src, 'a.txt'), 'user.empty', new Uint8Array(0));
    setXattr(join(src, 'empty-file'), 'user.mime_type', Buffer.from('application/x-empty'));
    setXattr(join(src, 'sub'), 'user.dir', Buffer.from('a directory'));
    setXattr(join(src, 'sub', 'b.bin'), 'user.big', Buffer.alloc(3000, 0xab));
    const mtime = 1_600_000_000.25;
    for (const p of [join(src, 'a.txt'), join(src, 'sub', 'b.bin'), join(src, 'sub'), src]) await utimes(p, mtime, mtime);

    const homeDir = await newVolume(dir);
    const volume = await Volume.open(homeDir, 'v');
    try {
      const imported = await importTree(volume, src, '/tree');
      assert.equal(imported.xattrs, 7);

      // Recorded in the volume, readable through the facade.
      assert.deepEqual((await volume.listxattr('/tree/a.txt')).filter((n) => n.startsWith('user.')).sort(), ['user.binary', 'user.comment', 'user.empty']);
      assert.ok((await volume.getxattr('/tree/a.txt', 'user.binary')).equals(BINARY));
      assert.equal((await volume.getxattr('/tree/a.txt', 'user.empty')).length, 0);
      assert.equal((await volume.getxattr('/tree', 'user.top')).toString(), 'root dir');
      assert.equal((await volume.getxattr('/tree/sub', 'user.dir')).toString(), 'a directory');
      assert.deepEqual((await volume.listxattr('/tree/link')).filter((n) => n.startsWith('user.')), []);

      const out = join(dir, 'out');
      const exported = await exportTree(volume, '/tree', out);
      assert.equal(exported.xattrs, 7);
      const rels = ['.', 'a.txt', 'empty-file', 'plain', 'sub', 'sub/b.bin', 'link'];
      assert.deepEqual(userXattrs(out, rels), userXattrs(src, rels));
      assert.deepEqual(userXattrs(out, ['a.txt'])['a.txt'], {
        'user.binary': BINARY.toString('hex'), 'user.comment': Buffer.from('a text file').toString('hex'), 'user.empty': '',
      });
      // Setting attributes did not disturb the restored mtimes.
      for (const rel of ['.', 'a.txt', 'sub', 'sub/b.bin']) {
        assert.equal((await lstat(join(out, rel), { bigint: true })).mtimeNs, (await lstat(join(src, rel), { bigint: true })).mtimeNs, rel);
      }

      // The rebuilt projection holds the same attributes.
      const before = await volume.dump();
      await volume.rebuild();
      assert.ok((await volume.dump()).equals(before));
    } finally {
      await volume.close();
    }
  });
});

test('xattrs: false copies none', async () => {
  await withTemp(async (dir) => {
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'f'), 'x');
    setXattr(join(src, 'f'), 'user.k', Buffer.from('v'));
    const homeDir = await newVolume(dir);
    const volume = await Volume.open(homeDir, 'v');
    try {
      const imported = await importTree(volume, src, '/t', { xattrs: false });
      assert.equal(imported.xattrs, 0);
      assert.deepEqual(await volume.listxattr('/t/f'), []);
      await volume.setxattr('/t/f', 'user.k', Buffer.from('v'));
      const out = join(dir, 'out');
      const exported = await exportTree(volume, '/t', out, { xattrs: false });
      assert.equal(exported.xattrs, 0);
      assert.deepEqual(listXattrs(join(out, 'f')).filter((n) => n.startsWith('user.')), []);
    } finally {
      await volume.close();
    }
  });
});
