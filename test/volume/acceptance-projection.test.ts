// The volume issue's bad-input acceptance, second half: a corrupted or
// deleted projection. The projection is derived from the log, so the volume
// must open anyway, rebuild it with a message on stderr (the process warning
// BAZIL_PROJECTION_REBUILT), and read exactly what it held before.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Volume } from '../../src/volume/volume.js';
import { cli, cliOk, newHome, volumeDir, withTemp } from '../lib/acceptance.js';
import { assertExported, makeSource } from '../lib/small-tree.js';

/** Ways to damage a projection; each must leave a volume that opens, says so on stderr, and reads intact. */
const DAMAGE: Array<[string, (projection: string) => Promise<void>]> = [
  ['garbage in every file', async (p) => {
    for (const f of await readdir(p)) if (f !== 'LOCK') await writeFile(join(p, f), randomBytes(4096));
  }],
  ['garbage in the tables and logs', async (p) => {
    for (const f of await readdir(p)) if (/\.(ldb|log)$/.test(f)) await writeFile(join(p, f), randomBytes(4096));
  }],
  ['CURRENT removed', async (p) => rm(join(p, 'CURRENT'))],
  ['the directory removed', async (p) => rm(p, { recursive: true })],
];

for (const [what, damage] of DAMAGE) {
  test(`a projection with ${what} is rebuilt from the log with a message`, async () => {
    await withTemp('accept-bad-projection', async (dir) => {
      const src = join(dir, 'src');
      await makeSource(src);
      const home = newHome(dir, 'v');
      cliOk(home, ['import', src, 'v:/t']);
      // A second import, so the projection has tables on disk and not only a LevelDB log.
      cliOk(home, ['import', src, 'v:/t2']);
      const dump = await withVolume(home, (v) => v.dump());
      const projection = join(volumeDir(home, 'v'), 'projection');
      await damage(projection);

      const ls = cli(home, ['ls', 'v:/t']);
      assert.equal(ls.status, 0, ls.stderr);
      assert.match(ls.stderr, /BAZIL_PROJECTION_REBUILT/);
      assert.match(ls.stderr, /rebuilt it from the log/);
      assert.deepEqual(ls.stdout.toString().split('\n').filter(Boolean).sort(), (await readdir(src)).sort());
      // Once rebuilt, it stays quiet and equals the projection before the damage.
      const again = cli(home, ['ls', 'v:/t']);
      assert.doesNotMatch(again.stderr, /BAZIL_PROJECTION_REBUILT/);
      assert.ok((await withVolume(home, (v) => v.dump())).equals(dump), 'the rebuilt projection equals the one before');
      assertExported(home, src, join(dir, 'out'));
      const fsck = cli(home, ['--json', 'fsck', 'v']);
      assert.equal(fsck.status, 0, fsck.stdout.toString());
    });
  });
}

async function withVolume<T>(home: string, fn: (v: Volume) => Promise<T>): Promise<T> {
  const v = await Volume.open(home, 'v');
  try {
    return await fn(v);
  } finally {
    await v.close();
  }
}
