import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bazil, ok, withVolume } from './cli-helpers.js';

test('the CLI rebuilds a damaged checkpoint and still shows the right past', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-cli-history-'));
  try {
    const home = join(dir, 'home');
    ok(bazil(home, 'init'));
    ok(bazil(home, 'volume', 'create', 'v'));
    await withVolume(home, async (v) => {
      for (let i = 0; i < 20; i++) await v.writeFile(`/f${i}`, Buffer.from(`content ${i}\n`));
    });
    assert.equal(ok(bazil(home, 'show', 'v:/f3', '--at', '@20')).stdout, 'content 3\n');
    const ckDir = (await readdir(join(home, 'volumes'))).map((id) => join(home, 'volumes', id, 'checkpoints'))[0]!;
    const files = (await readdir(ckDir)).filter((n) => n.endsWith('.ckpt')).sort();
    assert.ok(files.length >= 5, files.join(' '));
    for (const f of files) {
      const bytes = await readFile(join(ckDir, f));
      bytes[bytes.length - 1] ^= 0xff;
      await writeFile(join(ckDir, f), bytes);
    }
    assert.equal(ok(bazil(home, 'show', 'v:/', '--at', '@30')).stdout.split('\n').length - 1, 15, 'f0..f13 and the new f14');
    assert.equal(ok(bazil(home, 'show', 'v:/f13', '--at', '@40')).stdout, 'content 13\n');
    assert.deepEqual((await readdir(ckDir)).filter((n) => n.endsWith('.ckpt')).sort(), files);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
