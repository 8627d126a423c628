// Projection schema 2 → 3 (migrations/projection/0002-encrypted-names.ts):
// names hashed and values sealed, in a fresh LevelDB swapped in for the
// old one. On a copy of the frozen fixture home brought to schema 2: the
// listing is identical, fsck is clean, and no name, symlink target or
// xattr of the tree is left in any file of the projection; a run stopped
// at each of its stages resumes; SIGKILL at random moments too; a
// projection sealed with another key, or with a tampered record, is caught.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { migrate } from '../../migrations/index.js';
import { writeFormatRecord } from '../../migrations/format-record.js';
import { aggregatesMigration } from '../../migrations/projection/0001-aggregates.js';
import { encryptedNamesMigration } from '../../migrations/projection/0002-encrypted-names.js';
import { ProjectionCipher } from '../../src/projection/cipher.js';
import { PROJECTION_FORMAT } from '../../src/projection/format.js';
import { ProjectionStore } from '../../src/projection/store.js';
import { Volume } from '../../src/volume/volume.js';
import { copyFixtureHome, listVolumeTree, type ListedNode } from '../home/fixture-listing.js';
import { filesUnder } from '../lib/acceptance.js';
import {
  SLOW, cipherOf, dumpWithLinks, formatVersion, makeV1Home, projectionDir, quiet, runChild, withTemp,
} from './projection-helpers.js';

/** Text of the fixture's tree that a schema-2 projection holds in the clear: names, a symlink target, an xattr name and value. */
const FIXTURE_PLAINTEXT = ['readme', 'données', 'été.txt', 'docs/readme.txt', 'colour', 'green', 'moved.txt', 'big.bin'];
const LEVELDB_FILE = /^(CURRENT|LOCK|LOG|LOG\.old|MANIFEST-\d+|\d+\.(log|ldb|sst))$/;

/** Brings a projection of schema 1 (or none recorded) to schema 2 only: plaintext, with aggregates. */
async function toSchema2(proj: string): Promise<void> {
  if ((await formatVersion(proj)) === null) await writeFormatRecord(proj, { format: PROJECTION_FORMAT, version: 1, applied: [] });
  await migrate(proj, PROJECTION_FORMAT, [aggregatesMigration], { log: quiet });
  assert.equal(await formatVersion(proj), 2);
}

/** The fixture home with its projection at schema 2; returns the expected listing. */
async function fixtureAt2(home: string): Promise<{ nodes: ListedNode[]; volume: string; proj: string }> {
  const expected = await copyFixtureHome(home);
  const proj = await projectionDir(home);
  await toSchema2(proj);
  return { ...expected, proj };
}

/** Which of `texts` some file under `dir` holds, with the file. */
async function plaintextIn(dir: string, texts: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const f of await filesUnder(dir)) {
    const bytes = await readFile(f);
    for (const t of texts) if (bytes.includes(t)) out.push(`${t} in ${f.slice(dir.length + 1)}`);
  }
  return out;
}

/** Opens the volume (running any pending migration) and checks it whole, sealed and at schema 3. */
async function checkSealed(home: string, expected: { nodes: ListedNode[]; volume: string; proj: string }): Promise<void> {
  const v = await Volume.open(home, expected.volume);
  try {
    assert.deepEqual(await listVolumeTree(v), expected.nodes);
    assert.deepEqual((await v.fsck()).problems, []);
  } finally {
    await v.close();
  }
  assert.equal(await formatVersion(expected.proj), 3);
  assert.deepEqual((await readdir(expected.proj)).filter((n) => n.startsWith('sealing.')), []);
  assert.deepEqual(await plaintextIn(expected.proj, FIXTURE_PLAINTEXT), []);
}

test('a schema-2 projection is sealed at open: version 3 recorded, identical listing, fsck clean, no plaintext left in any file', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    const expected = await fixtureAt2(home);
    // The control: before, the projection's files hold the tree's names in the clear.
    assert.ok((await plaintextIn(expected.proj, FIXTURE_PLAINTEXT)).length >= 4);
    await checkSealed(home, expected);
    const record = JSON.parse(await readFile(join(expected.proj, 'FORMAT.json'), 'utf8')) as { applied: { id: number; name: string }[] };
    assert.deepEqual(record.applied.map((a) => [a.id, a.name]), [[1, 'aggregates'], [2, 'encrypted-names']]);
    // Opened again: the same listing (checkSealed opens once more).
    await checkSealed(home, expected);
  });
});

test('the migration resumes from each of its stages: a partial copy, a complete one beside the old files, a half-moved one, a finished but unrecorded one', async () => {
  await withTemp(async (dir) => {
    // The reference: a schema-2 copy sealed by one uninterrupted run.
    const refHome = join(dir, 'ref');
    const ref = await fixtureAt2(refHome);
    const cipher = await cipherOf(refHome, ref.volume);
    await encryptedNamesMigration(cipher).up(ref.proj, quiet);
    const refDump = await dumpWithLinks(ref.proj, cipher);
    const sealedFiles = (await readdir(ref.proj)).filter((n) => LEVELDB_FILE.test(n) && n !== 'LOCK');

    const stages: Record<string, (proj: string) => Promise<void>> = {
      // Killed while copying: a partial LevelDB (here, garbage) in sealing.building.
      building: async (proj) => {
        await mkdir(join(proj, 'sealing.building'));
        await writeFile(join(proj, 'sealing.building', 'CURRENT'), 'MANIFEST-000099\n');
        await writeFile(join(proj, 'sealing.building', '000005.ldb'), 'not a table');
      },
      // Killed after the copy was complete and renamed, before the old files were deleted.
      ready: async (proj) => {
        await mkdir(join(proj, 'sealing.ready'));
        for (const f of sealedFiles) await cp(join(ref.proj, f), join(proj, 'sealing.ready', f));
      },
      // Killed while moving the sealed files up: the old files gone, some new ones moved.
      moving: async (proj) => {
        for (const f of await readdir(proj)) if (LEVELDB_FILE.test(f)) await rm(join(proj, f));
        await mkdir(join(proj, 'sealing.moving'));
        for (const [i, f] of sealedFiles.entries()) await cp(join(ref.proj, f), i % 2 === 0 ? join(proj, f) : join(proj, 'sealing.moving', f));
      },
      // Killed after the last stage, before the runner recorded version 3.
      unrecorded: async (proj) => {
        for (const f of await readdir(proj)) if (LEVELDB_FILE.test(f)) await rm(join(proj, f));
        for (const f of sealedFiles) await cp(join(ref.proj, f), join(proj, f));
      },
    };
    for (const [name, stage] of Object.entries(stages)) {
      const home = join(dir, name);
      const expected = await fixtureAt2(home);
      await stage(expected.proj);
      await checkSealed(home, expected);
      assert.ok((await dumpWithLinks(expected.proj, cipher)).equals(refDump), `${name}: the sealed projection differs from the reference`);
    }
  });
});

test('a migration killed by SIGKILL at random moments resumes at the next open: the same sealed bytes, no plaintext', async () => {
  const files = SLOW ? 30_000 : 2000;
  const rounds = SLOW ? 12 : 4;
  await withTemp(async (dir) => {
    const template = join(dir, 'template');
    await makeV1Home(template, files);
    await toSchema2(await projectionDir(template));
    const reference = join(dir, 'reference');
    await cp(template, reference, { recursive: true });
    const clean = await runChild(reference, null);
    assert.ok(clean.openedMs !== null);
    const cipher = await cipherOf(reference, 'big');
    const expectedDump = await dumpWithLinks(await projectionDir(reference), cipher);

    let interrupted = 0;
    for (let round = 0; round < rounds; round++) {
      const home = join(dir, `round-${round}`);
      await cp(template, home, { recursive: true });
      const proj = await projectionDir(home);
      for (let k = 0; k < 1 + (round % 2); k++) {
        const run = await runChild(home, Math.random() * clean.openedMs! * 1.2);
        if (run.killedAfterMs !== null && ((await formatVersion(proj)) ?? 1) < 3) interrupted++;
      }
      await (await Volume.open(home, 'big')).close();
      assert.equal(await formatVersion(proj), 3);
      assert.deepEqual((await readdir(proj)).filter((n) => n.startsWith('sealing.')), [], `round ${round}: a stage is left`);
      assert.ok((await dumpWithLinks(proj, cipher)).equals(expectedDump), `round ${round}: the projection differs from the reference`);
      assert.deepEqual(await plaintextIn(proj, ['f1999', 'h1990']), [], `round ${round}`);
      await rm(home, { recursive: true, force: true });
    }
    assert.ok(interrupted >= 1, 'at least one kill landed inside the migration');
  });
});

test('bad input: a projection sealed with another key is refused at open and rebuilt by the volume; a tampered record does not open', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    const expected = await fixtureAt2(home);
    await checkSealed(home, expected);
    const other = new ProjectionCipher(Buffer.alloc(32, 7));
    await assert.rejects(ProjectionStore.open(expected.proj, other, { log: quiet }), (err: { code: string }) => err.code === 'BAZIL_CORRUPT_METADATA');

    // One entry's sealed value with a flipped byte: its lookup fails with a stable code, fsck reports it.
    const db = new ClassicLevel<Buffer, Buffer>(expected.proj, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    let victim: Buffer | undefined;
    try {
      for await (const [k, v] of db.iterator({ gte: Buffer.from([0x03]), lt: Buffer.from([0x04]), limit: 1 })) {
        victim = k;
        v[v.length - 1]! ^= 0x01;
        await db.put(k, v);
      }
    } finally {
      await db.close();
    }
    assert.ok(victim !== undefined);
    const cipher = await cipherOf(home, expected.volume);
    const store = await ProjectionStore.open(expected.proj, cipher);
    try {
      await assert.rejects(store.readdir(victim.subarray(1, 33)), (err: { code: string }) => err.code === 'BAZIL_CORRUPT_METADATA');
    } finally {
      await store.close();
    }
    const v = await Volume.open(home, expected.volume);
    try {
      const report = await v.fsck().catch((err: { code: string }) => err);
      assert.ok('ok' in report ? !report.ok : report.code === 'BAZIL_CORRUPT_METADATA', 'fsck does not pass a tampered projection');
    } finally {
      await v.close();
    }

    // The key check replaced: the volume drops the projection and replays the log, and the tree is whole.
    const db2 = new ClassicLevel<Buffer, Buffer>(expected.proj, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db2.open();
    await db2.put(Buffer.from('\x01keycheck', 'latin1'), Buffer.alloc(16));
    await db2.close();
    await checkSealed(home, expected);
  });
});
