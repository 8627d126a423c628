// BAZIL_SEAL_WORKERS sets how many seal workers a volume's content store
// starts (docs/ingest.md, "Round 4: import"): imports with 0, 1 and 2
// workers store the same objects (the later ones dedup entirely against the
// first) and read back equal; a bad value fails with BAZIL_BAD_ARGUMENT
// before anything is imported.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, newHome, withTemp } from '../lib/acceptance.js';

function importWith(home: string, workers: string, src: string, path: string): ReturnType<typeof cli> {
  const before = process.env.BAZIL_SEAL_WORKERS;
  process.env.BAZIL_SEAL_WORKERS = workers;
  try {
    return cli(home, ['import', src, path, '--json']);
  } finally {
    if (before === undefined) delete process.env.BAZIL_SEAL_WORKERS;
    else process.env.BAZIL_SEAL_WORKERS = before;
  }
}

test('BAZIL_SEAL_WORKERS: 0, 1 or 2 workers store the same objects; a bad value is refused', async () => {
  await withTemp('seal-workers-env', async (dir) => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'd'), { recursive: true });
    // Past a slab (2 MiB) in one file, and small files beside it.
    await writeFile(join(src, 'big'), randomBytes(5 * 1024 * 1024 + 123));
    for (let i = 0; i < 20; i++) await writeFile(join(src, 'd', `f${i}`), randomBytes(1000 + i * 3000));
    const home = newHome(dir, 'v');

    const results = ['2', '1', '0'].map((w) => {
      const r = importWith(home, w, src, `v:/t${w}`);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.toString().trim().split('\n').pop()!) as { files: number; newBytes: number };
    });
    assert.equal(results[0]!.files, 21);
    assert.ok(results[0]!.newBytes > 5 * 1024 * 1024);
    assert.equal(results[1]!.newBytes, 0, 'one worker seals the same objects');
    assert.equal(results[2]!.newBytes, 0, 'no worker seals the same objects');
    for (const w of ['2', '1', '0']) {
      const out = join(dir, `out${w}`);
      const e = cli(home, ['export', `v:/t${w}`, out]);
      assert.equal(e.status, 0, e.stderr);
      assert.equal(spawnSync('diff', ['-r', src, out]).status, 0, `export of the import with ${w} workers equals the source`);
    }

    for (const bad of ['-1', 'two', '1.5', '9999']) {
      const r = importWith(home, bad, src, `v:/bad`);
      assert.notEqual(r.status, 0, bad);
      assert.match(r.stderr, /BAZIL_BAD_ARGUMENT/, bad);
      assert.match(r.stderr, /BAZIL_SEAL_WORKERS/, bad);
    }
    const ls = cli(home, ['ls', 'v:/']);
    assert.doesNotMatch(ls.stdout.toString(), /bad/, 'nothing was imported with a bad value');
  });
});

test('bazil import seals with one worker per core beside its own thread unless BAZIL_SEAL_WORKERS says otherwise', async () => {
  const { availableParallelism } = await import('node:os');
  const { fileImportSealWorkers } = await import('../../src/cas/content-store.js');
  const before = process.env.BAZIL_SEAL_WORKERS;
  try {
    delete process.env.BAZIL_SEAL_WORKERS;
    assert.equal(fileImportSealWorkers(), Math.max(0, availableParallelism() - 1));
    process.env.BAZIL_SEAL_WORKERS = '3';
    assert.equal(fileImportSealWorkers(), 3);
    process.env.BAZIL_SEAL_WORKERS = 'x';
    assert.throws(() => fileImportSealWorkers(), /BAZIL_SEAL_WORKERS/);
  } finally {
    if (before === undefined) delete process.env.BAZIL_SEAL_WORKERS;
    else process.env.BAZIL_SEAL_WORKERS = before;
  }
});
