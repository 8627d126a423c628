// Concurrent writers through a mount served by the home's daemon, and the
// other `bazil` commands, run from other processes and forwarded to the
// daemon (which holds the home), seeing what was just written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeHome, mount, requireFuse } from './mount-harness.js';

const SLOW = process.env.BAZIL_SLOW === '1';

test('concurrent writers to different files, seen by forwarded bazil ls/stat/cat/fsck', { timeout: 120_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    const m = await mount(h, 'v');
    try {
      const writers = 4;
      const size = (SLOW ? 64 : 4) * 1024 * 1024;
      const sources = await Promise.all(Array.from({ length: writers }, async (_, i) => {
        const src = join(h.dir, `src-${i}`);
        await writeFile(src, randomBytes(size));
        return src;
      }));
      // Separate processes, writing at once in 64 KiB blocks, each ending with an fsync.
      await Promise.all(sources.map((src, i) => new Promise<void>((resolve, reject) => {
        const dd = spawn('dd', [`if=${src}`, `of=${join(m.dir, `out-${i}`)}`, 'bs=64k', 'conv=fsync', 'status=none']);
        dd.on('error', reject);
        dd.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`dd ${i} exited ${code}`))));
      })));
      for (let i = 0; i < writers; i++) {
        assert.ok((await readFile(join(m.dir, `out-${i}`))).equals(await readFile(sources[i]!)), `out-${i} differs`);
      }
      // Other commands go through the daemon, which holds the home.
      const names = (await h.ok(['ls', 'v'])).trim().split('\n');
      assert.deepEqual(names, sources.map((_, i) => `out-${i}`));
      const st = JSON.parse(await h.ok(['--json', 'stat', 'v:/out-2'])) as { size: number };
      assert.equal(st.size, size);
      const mounts = JSON.parse(await h.ok(['--json', 'mounts'])) as { volume: string; dir: string }[];
      assert.deepEqual(mounts.map((x) => [x.volume, x.dir]), [['v', m.dir]]);
      // Bytes a command streams to its stdout itself come back too.
      await writeFile(join(m.dir, 'note.txt'), 'cat me\n');
      assert.equal(await h.ok(['cat', 'v:/note.txt']), 'cat me\n');
      // The history commands too: the log names what was just written, a snapshot and du run.
      assert.match(await h.ok(['log', 'v']), /\/out-3/);
      await h.ok(['snapshot', 'create', 'v', 'while-mounted']);
      await h.ok(['du', 'v']);
      const fsck = await h.bazil(['fsck', 'v']);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
      // A forwarded command that fails reports its error and status as if run here.
      const bad = await h.bazil(['stat', 'v:/nope']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /BAZIL_NOT_FOUND/);
      // Relative local paths are resolved in the caller's directory, not the daemon's.
      await mkdir(join(h.dir, 'imp'));
      await writeFile(join(h.dir, 'imp', 'x.txt'), 'imported while mounted\n');
      await h.ok(['import', 'imp', 'v:/imp'], { cwd: h.dir });
      assert.equal(await readFile(join(m.dir, 'imp', 'x.txt'), 'utf8'), 'imported while mounted\n');
      // A local path inside the daemon's own mount is refused (its synchronous calls there would wait for itself).
      const inside = await h.bazil(['export', 'v:/imp', join(m.dir, 'copy')]);
      assert.equal(inside.code, 1);
      assert.match(inside.stderr, /which this daemon serves.*\[BAZIL_BAD_ARGUMENT\]/);
    } finally {
      await m.unmount();
    }
  } finally {
    await h.cleanup();
  }
});
