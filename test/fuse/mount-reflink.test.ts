// `bazil cp --reflink` while the volume is mounted (docs/reflink.md): the
// command is forwarded to the daemon that serves the mount, the copy shows
// up in the mount at once, and edits through the mount to the copy and to
// the source stay apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeHome, mount, requireFuse } from './mount-harness.js';

test('cp --reflink of a tree and a file while mounted, then edits through the mount on both sides', { timeout: 120_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    const m = await mount(h, 'v');
    try {
      await mkdir(join(m.dir, 't', 'sub'), { recursive: true });
      await writeFile(join(m.dir, 't', 'a.txt'), 'alpha\n');
      await writeFile(join(m.dir, 't', 'sub', 'b.txt'), 'beta\n');
      const made = JSON.parse(await h.ok(['--json', 'cp', '--reflink', 'v:/t', 'v:/t2'])) as { kind: string };
      assert.equal(made.kind, 'dir');
      await h.ok(['cp', 'v:/t/a.txt', 'v:/a-copy.txt']);
      assert.deepEqual((await readdir(join(m.dir, 't2'))).sort(), ['a.txt', 'sub']);
      assert.equal(await readFile(join(m.dir, 't2', 'sub', 'b.txt'), 'utf8'), 'beta\n');
      assert.equal(await readFile(join(m.dir, 'a-copy.txt'), 'utf8'), 'alpha\n');
      // The copy changes; the source does not.
      await appendFile(join(m.dir, 't2', 'a.txt'), 'more\n');
      await rename(join(m.dir, 't2', 'sub'), join(m.dir, 't2', 'moved'));
      assert.equal(await readFile(join(m.dir, 't', 'a.txt'), 'utf8'), 'alpha\n');
      assert.deepEqual((await readdir(join(m.dir, 't'))).sort(), ['a.txt', 'sub']);
      // The source changes; the copies do not.
      await writeFile(join(m.dir, 't', 'sub', 'b.txt'), 'changed\n');
      assert.equal(await readFile(join(m.dir, 't2', 'moved', 'b.txt'), 'utf8'), 'beta\n');
      assert.equal(await readFile(join(m.dir, 'a-copy.txt'), 'utf8'), 'alpha\n');
      assert.equal(await readFile(join(m.dir, 't2', 'a.txt'), 'utf8'), 'alpha\nmore\n');
      // Refused copies report their error through the daemon.
      const bad = await h.bazil(['cp', 'v:/t', 'v:/t/inside']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /BAZIL_BAD_ARGUMENT/);
      const fsck = await h.bazil(['fsck', 'v']);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    } finally {
      await m.unmount();
    }
  } finally {
    await h.cleanup();
  }
});
