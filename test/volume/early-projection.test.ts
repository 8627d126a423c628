// A batch with `projectEarly` (what a plain import runs in) projects its
// events while it runs, once they are durable: the projection shows each
// flushed part before the batch ends, ends as a rebuild from the log gives
// it, and after a failure holds exactly the committed prefix. A CLI import
// of a tree of many directories (many flushes, early rounds under way when
// the batch ends) gives the same projection as a rebuild, reads back equal
// and passes fsck. The SIGKILL and power-cut tests of import (crash.test.ts,
// power-cut.test.ts) check that the projection is never ahead of the log.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Volume, manifestBytes } from '../../src/volume/volume.js';
import type { WriteBatch } from '../../src/volume/write-batch.js';
import { cli, cliOk, newHome, withTemp } from '../lib/acceptance.js';

async function withVolume<T>(home: string, fn: (v: Volume) => Promise<T>): Promise<T> {
  const v = await Volume.open(home, 'v');
  try {
    return await fn(v);
  } finally {
    await v.close();
  }
}

/** Polls `probe` until it holds, for at most `ms`. */
async function eventually(probe: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > until) return false;
    await sleep(20);
  }
}

const exists = (v: Volume, path: string): Promise<boolean> => v.stat(path).then(() => true, () => false);

/** A directory `name` under the root with `files` files of random content, queued behind the batch's content. */
async function part(v: Volume, b: WriteBatch, name: string, files: number): Promise<void> {
  const root = await v.resolve('/');
  const dir = await b.create({ type: 'mkdir', parent: root, name, mode: 0o755, uid: 0, gid: 0 });
  for (let i = 0; i < files; i++) {
    const written = await b.writeContent([randomBytes(3000 + i * 100)]);
    await b.createFile({
      parent: dir,
      create: { type: 'create', parent: dir, name: `f${i}`, mode: 0o644, uid: 0, gid: 0, size: written.size, manifest: manifestBytes(written.manifestRoot) },
      then: () => [],
    });
  }
}

test('a batch with projectEarly shows each flushed part before it ends, and ends as a rebuild gives it', async () => {
  await withTemp('early-projection', async (dir) => {
    const home = newHome(dir, 'v');
    await withVolume(home, async (v) => {
      await v.batch(async (b) => {
        for (let k = 0; k < 3; k++) {
          await part(v, b, `d${k}`, 6);
          // The flush syncs the content and appends the files: the next sync makes them durable.
          await b.flush();
          await part(v, b, `e${k}`, 1);
          await b.flush();
          assert.ok(await eventually(() => exists(v, `/d${k}/f5`)), `part d${k} is projected before the batch ends`);
        }
      }, { projectEarly: true });
      for (let k = 0; k < 3; k++) assert.ok(await exists(v, `/e${k}/f0`));
      const before = await v.dump();
      await v.rebuild();
      assert.ok((await v.dump()).equals(before), 'the projection equals a rebuild from the log');
    });
  });
});

test('without projectEarly a batch projects nothing before it ends', async () => {
  await withTemp('early-projection', async (dir) => {
    const home = newHome(dir, 'v');
    await withVolume(home, async (v) => {
      await v.batch(async (b) => {
        await part(v, b, 'd', 3);
        await b.flush();
        await v.sync();
        await sleep(200);
        assert.equal(await exists(v, '/d'), false, 'nothing shows while the batch runs');
      });
      assert.ok(await exists(v, '/d/f2'));
    });
  });
});

test('a batch with projectEarly that fails holds the committed prefix, as a rebuild gives it', async () => {
  await withTemp('early-projection', async (dir) => {
    const home = newHome(dir, 'v');
    await withVolume(home, async (v) => {
      await assert.rejects(v.batch(async (b) => {
        await part(v, b, 'kept', 4);
        await b.flush();
        await part(v, b, 'more', 2);
        await b.flush();
        assert.ok(await eventually(() => exists(v, '/kept/f3')));
        // Queued behind content that no flush made durable: never appended.
        await part(v, b, 'lost', 2);
        throw new Error('the work failed');
      }, { projectEarly: true }), /the work failed/);
      assert.ok(await exists(v, '/kept/f3'));
      assert.ok(await exists(v, '/more/f1'));
      assert.ok(await exists(v, '/lost'), 'the directory was appended at once');
      assert.equal(await exists(v, '/lost/f0'), false, 'files still queued are not');
      const before = await v.dump();
      await v.rebuild();
      assert.ok((await v.dump()).equals(before), 'the projection equals a rebuild from the log');
      assert.equal((await v.fsck()).problems.length, 0);
    });
    // Reopened, the volume rolls nothing forward and reads the same.
    await withVolume(home, async (v) => assert.ok(await exists(v, '/more/f1')));
  });
});

test('an import of many directories gives the projection a rebuild gives, and reads back equal', async () => {
  await withTemp('early-projection', async (dir) => {
    const src = join(dir, 'src');
    // 40 directories of 8 files: more than EARLY_SYNC_EVENTS events, and a flush at every directory.
    for (let d = 0; d < 40; d++) {
      const sub = join(src, `dir${d}`, 'sub');
      await mkdir(sub, { recursive: true });
      for (let f = 0; f < 8; f++) await writeFile(join(src, `dir${d}`, `file${f}`), randomBytes(1 + ((d * 8 + f) * 997) % 20_000));
      await writeFile(join(sub, 'same'), Buffer.alloc(5000, d));
    }
    const home = newHome(dir, 'v');
    cliOk(home, ['import', src, 'v:/t']);
    const dump = await withVolume(home, (v) => v.dump());
    cliOk(home, ['rebuild', 'v']);
    assert.ok((await withVolume(home, (v) => v.dump())).equals(dump), 'the projection equals a rebuild from the log');
    const out = join(dir, 'out');
    cliOk(home, ['export', 'v:/t', out]);
    const fsck = cli(home, ['fsck', 'v']);
    assert.equal(fsck.status, 0, fsck.stdout.toString() + fsck.stderr.toString());
    const diff = spawnSync('diff', ['-r', src, out]);
    assert.equal(diff.status, 0, diff.stdout.toString());
  });
});
