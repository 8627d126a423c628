// A command forwarded to the daemon stops when its client goes away: Ctrl-C
// (SIGINT) of a long `bazil export` run while a volume is mounted aborts the
// export in the daemon (its AbortSignal), which stops writing files, logs
// why, and keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_MAIN } from '../lib/cli-path.js';
import { makeHome, mount, requireFuse } from './mount-harness.js';

const SLOW = process.env.BAZIL_SLOW === '1';
const FILES = SLOW ? 20_000 : 4_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function count(dir: string): Promise<number> {
  return (await readdir(dir).catch(() => [])).length;
}

test('Ctrl-C of a forwarded export aborts it in the daemon', { timeout: 180_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    const src = join(h.dir, 'src');
    await mkdir(src);
    for (let i = 0; i < FILES; i++) await writeFile(join(src, `f${String(i).padStart(6, '0')}`), `file ${i}\n`.repeat(50));
    const m = await mount(h, 'v');
    try {
      await h.ok(['import', src, 'v:/many']);
      const out = join(h.dir, 'out');
      const child = spawn(process.execPath, [CLI_MAIN, 'export', 'v:/many', out], { env: h.env, stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      // Interrupted as soon as the export is under way.
      for (let i = 0; i < 2000 && (await count(out)) === 0; i++) await sleep(5);
      assert.ok((await count(out)) > 0, 'the export did not start');
      child.kill('SIGINT');
      await exited;

      const log = join(h.home, 'daemon.log');
      let text = '';
      for (let i = 0; i < 600 && !/forwarded command ended .* after its client went away/.test(text); i++) {
        await sleep(50);
        text = await readFile(log, 'utf8');
      }
      assert.match(text, /forwarded command aborted, its client went away: bazil export/);
      assert.match(text, /forwarded command ended \(exit 1\) after its client went away/);
      const stopped = await count(out);
      await sleep(500);
      assert.equal(await count(out), stopped, 'the export kept writing after it was aborted');
      assert.ok(stopped < FILES, `the export finished (${stopped} of ${FILES} files) before it could be interrupted`);
      // The daemon goes on serving the mount and commands.
      assert.equal(await readFile(join(m.dir, 'many', 'f000001'), 'utf8'), 'file 1\n'.repeat(50));
      assert.match(await h.ok(['ls', 'v']), /many/);
    } finally {
      await m.unmount();
    }
  } finally {
    await h.cleanup();
  }
});
