// The first real migration (projection schema 1 → 2: back-links and subtree
// aggregates, migrations/projection/0001-aggregates.ts): in place on a copy
// of the frozen v1 fixture home, idempotent, refusing a newer schema, and
// interrupted by SIGKILL at random moments, after which the next open
// resumes it and the volume is whole. The open runs migration 2 (sealing,
// 0002-encrypted-names.ts) right after it, so the kills land in either.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { aggregatesMigration } from '../../migrations/projection/0001-aggregates.js';
import { ProjectionStore } from '../../src/projection/store.js';
import { walkAggregates } from '../../src/volume/aggregates.js';
import { Volume } from '../../src/volume/volume.js';
import { copyFixtureHome, listVolumeTree } from '../home/fixture-listing.js';
import {
  SLOW, cipherOf, dumpWithLinks, formatVersion, makeV1Home, projectionDir, quiet, rawDump, runChild, shallowTree, withTemp,
} from './projection-helpers.js';

test('the v1 fixture\'s projection migrates in place: version 2 recorded, identical content, aggregates exact at once, fsck clean', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    const expected = await copyFixtureHome(home);
    const proj = await projectionDir(home);
    assert.equal(await formatVersion(proj), null, 'the fixture predates projection format records');
    const v = await Volume.open(home, expected.volume);
    try {
      const record = JSON.parse(await readFile(join(proj, 'FORMAT.json'), 'utf8')) as { format: string; version: number; applied: { id: number; name: string }[] };
      assert.deepEqual([record.format, record.version, record.applied.map((a) => [a.id, a.name])], ['bazil-projection', 3, [[1, 'aggregates'], [2, 'encrypted-names']]]);
      assert.deepEqual(await listVolumeTree(v), expected.nodes);
      // Computed by the migration itself: exact before any background settling.
      for (const path of ['/', '/docs', '/docs/notes', '/data', '/données']) {
        const got = await v.aggregates(path);
        assert.ok(got.exact, path);
        const walked = await walkAggregates(v, path);
        assert.deepEqual([got.rbytes, got.rfiles, got.rsubdirs, got.rctime], [walked.rbytes, walked.rfiles, walked.rsubdirs, walked.rctime], path);
      }
      const root = await v.aggregates('/');
      const files = expected.nodes.filter((n) => n.kind !== 'dir');
      assert.equal(root.rfiles, files.length);
      assert.equal(root.rbytes, files.filter((n) => n.kind === 'file').reduce((s, n) => s + n.size, 0));
      assert.equal(root.rsubdirs, expected.nodes.filter((n) => n.kind === 'dir').length - 1);
      // fsck replays the log and compares, back-links included.
      const report = await v.fsck();
      assert.deepEqual(report.problems, []);
    } finally {
      await v.close();
    }
  });
});

test('the migration is idempotent: run again over a projection it migrated it changes nothing', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    await copyFixtureHome(home);
    // Schema 2 is plaintext: the migration is run on the fixture's own (schema 1) projection, then again.
    const proj = await projectionDir(home);
    await aggregatesMigration.up(proj, quiet);
    const before = await rawDump(proj);
    assert.ok(before.includes(Buffer.from([0x07])), 'aggregates were written');
    await aggregatesMigration.up(proj, quiet);
    await aggregatesMigration.up(proj, quiet);
    assert.ok((await rawDump(proj)).equals(before));
  });
});

test('bad input: a projection of a newer schema is refused and left alone; a migration over a missing LevelDB fails with a stable code', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    await copyFixtureHome(home);
    const proj = await projectionDir(home);
    await writeFile(join(proj, 'FORMAT.json'), JSON.stringify({ format: 'bazil-projection', version: 99, applied: [] }));
    const cipher = await cipherOf(home, 'fixture');
    await assert.rejects(ProjectionStore.open(proj, cipher, { log: quiet }), (err: { code: string }) => err.code === 'BAZIL_UNSUPPORTED_FORMAT');
    assert.equal(await formatVersion(proj), 99);
    await writeFile(join(proj, 'FORMAT.json'), JSON.stringify({ format: 'bazil-arena-set', version: 1, applied: [] }));
    await assert.rejects(ProjectionStore.open(proj, cipher, { log: quiet }), (err: { code: string }) => err.code === 'BAZIL_FORMAT_MISMATCH');
    await assert.rejects(aggregatesMigration.up(join(dir, 'nothing-here'), quiet), (err: { code: string }) => err.code === 'BAZIL_IO');
  });
});

test('a migration killed by SIGKILL at random moments resumes at the next open, and the volume is whole', async () => {
  const files = SLOW ? 30_000 : 2000;
  const rounds = SLOW ? 20 : 5;
  await withTemp(async (dir) => {
    const template = join(dir, 'template');
    await makeV1Home(template, files);
    // The expected state, from an uninterrupted migration of a copy; its time sets the window the kills aim at.
    const reference = join(dir, 'reference');
    await cp(template, reference, { recursive: true });
    const clean = await runChild(reference, null);
    assert.ok(clean.openedMs !== null);
    const ref = await Volume.open(reference, 'big');
    const expectedTree = await shallowTree(ref);
    const expectedRoot = await ref.aggregates('/', { exact: true });
    assert.deepEqual((await ref.fsck()).problems, []);
    await ref.close();
    const cipher = await cipherOf(reference, 'big');
    const expectedDump = await dumpWithLinks(await projectionDir(reference), cipher);
    assert.equal(expectedRoot.rfiles, files + Math.ceil(files / 10));

    let interrupted = 0;
    for (let round = 0; round < rounds; round++) {
      const home = join(dir, `round-${round}`);
      await cp(template, home, { recursive: true });
      const proj = await projectionDir(home);
      // One or two kills in a row, each at a random moment of the open.
      for (let k = 0; k < 1 + (round % 2); k++) {
        const run = await runChild(home, Math.random() * clean.openedMs! * 1.2);
        if (run.killedAfterMs !== null && ((await formatVersion(proj)) ?? 1) < 3) interrupted++;
      }
      const v = await Volume.open(home, 'big');
      try {
        assert.equal(await formatVersion(proj), 3);
        assert.deepEqual((await readdir(proj)).filter((n) => n.startsWith('sealing.')), [], 'no stage of the sealing migration is left');
        // Every directory's aggregates once (the dump below covers the rest of the tree).
        if (round === rounds - 1) assert.deepEqual(await shallowTree(v), expectedTree);
        const root = await v.aggregates('/', { exact: true });
        assert.deepEqual([root.rbytes, root.rfiles, root.rsubdirs, root.rctime], [expectedRoot.rbytes, expectedRoot.rfiles, expectedRoot.rsubdirs, expectedRoot.rctime]);
      } finally {
        await v.close();
      }
      // The same events projected the same way: byte-identical to the fsck-clean reference, back-links included.
      assert.ok((await dumpWithLinks(proj, cipher)).equals(expectedDump), `round ${round}: the projection differs from the reference`);
      // Sealed: no file of the projection holds a name of the tree.
      for (const f of await readdir(proj)) {
        const bytes = await readFile(join(proj, f));
        assert.ok(!bytes.includes('f1999') && !bytes.includes('h1990'), `round ${round}: ${f} holds a name in the clear`);
      }
      await rm(home, { recursive: true, force: true });
    }
    assert.ok(interrupted >= 1, 'at least one kill landed inside the migration');
  });
});

