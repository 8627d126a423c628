// The content rule of WriteBatch (write-batch.ts): an event naming content
// is appended only after a sync that covers every object that content
// needs. A content write that was still running when a flush's sync began
// appended objects that sync did not cover, even if it finished before the
// sync did; the create naming it must wait for another sync. Before the
// fix the batch took "no write running now" as "content clean" and appended
// the create at once, and a crash between the log's sync and the content
// arena's (or a SIGKILL between the two arenas' writes in one sync) left a
// durable create whose chunks were missing: the rare crash.test failure
// (docs/volume.md, "The content rule").
//
// content-order-child.ts runs that interleaving on the fault layer and cuts
// the power right after the log's sync, before the content's; here the
// volume reopens on the real file system and fsck must be clean.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initHome, openHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { Volume } from '../../src/volume/volume.js';

const CHILD = fileURLToPath(new URL('./content-order-child.js', import.meta.url));

function runChild(home: string, volume: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CHILD, home, volume], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) reject(new Error(`child exited with ${code}:\n${out}\n${err}`));
      else resolve(out);
    });
  });
}

test('a content write that ends during a flush\'s sync: the create naming it waits for the next sync, so a power cut after the log\'s sync loses nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-content-order-'));
  try {
    const home = join(dir, 'home');
    await (await initHome(home)).home.close();
    const h = await openHome(home);
    await createVolume(h, 'v').finally(() => h.close());

    const out = await runChild(home, 'v');
    t.diagnostic(out.trim().replace(/\n/g, ', '));
    assert.match(out, /^sync-held$/m, `the flush did not sync while the write ran: ${out}`);
    assert.match(out, /^cut$/m, `the power was not cut where the test wants it: ${out}`);

    const v = await Volume.open(home, 'v');
    try {
      const report = await v.fsck();
      assert.deepEqual(report.problems, [], 'a durable event names content the power cut lost');
      // Created or not, never a file without its content.
      const names = (await v.readdir('/')).map((e) => e.name);
      if (names.includes('f')) assert.equal((await v.getattr(await v.resolve('/f'))).size, 6 * 1024 * 1024);
      // The volume takes writes after the cut.
      await v.writeFile('/g', Buffer.from('after the cut'));
      assert.equal((await v.readFile('/g')).toString(), 'after the cut');
    } finally {
      await v.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
