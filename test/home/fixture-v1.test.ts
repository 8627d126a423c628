// The first home format, frozen (test/fixtures/home-v1, written once by
// scripts/make-fixture-home.ts): a home with its peer identity and one
// volume, opened by today's code (migrating a copy in place where the format
// has moved on) must hold exactly what it held when it was made, and pass
// fsck.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Volume } from '../../src/volume/volume.js';
import { copyFixtureHome, fixtureHomeDir, listVolumeTree } from './fixture-listing.js';

test('the v1 fixture home opens with the current code, with identical content, and fsck is clean', async () => {
  const parent = await mkdtemp(join(tmpdir(), 'bazil-fixture-home-'));
  try {
    const home = join(parent, 'home');
    const expected = await copyFixtureHome(home);
    assert.ok(expected.nodes.length >= 12, 'the fixture lists its nodes');
    const v = await Volume.open(home, expected.volume);
    try {
      assert.deepEqual(await listVolumeTree(v), expected.nodes);
      const report = await v.fsck();
      assert.deepEqual(report.problems, []);
      assert.ok(report.ok);
    } finally {
      await v.close();
    }
    // Opened twice: whatever the first open changed (a migration) is stable.
    const again = await Volume.open(home, expected.volume);
    try {
      assert.deepEqual(await listVolumeTree(again), expected.nodes);
    } finally {
      await again.close();
    }
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});

test('the fixture covers what it claims: a multi-chunk file, a symlink, a hard link, xattrs, a renamed file', async () => {
  const expected = JSON.parse(await readFile(join(fixtureHomeDir(), 'expected.json'), 'utf8')) as { nodes: { path: string; kind: string; size: number; inode: string; xattrs: Record<string, string>; target: string | null }[] };
  const byPath = new Map(expected.nodes.map((n) => [n.path, n]));
  assert.ok(byPath.get('/data/big.bin')!.size > 256 * 1024);
  assert.equal(byPath.get('/readme-link')!.target, 'docs/readme.txt');
  assert.equal(byPath.get('/docs/notes/readme-hardlink')!.inode, byPath.get('/docs/readme.txt')!.inode);
  assert.equal(byPath.get('/docs/readme.txt')!.xattrs['user.colour'], Buffer.from('green').toString('hex'));
  assert.ok(byPath.has('/data/moved.txt') && !byPath.has('/docs/old-name.txt') && !byPath.has('/docs/scratch.tmp') && !byPath.has('/gone'));
  assert.ok(byPath.has('/données/été.txt'));
});

test('a damaged copy of the fixture fails with a stable code, never silently', async () => {
  const parent = await mkdtemp(join(tmpdir(), 'bazil-fixture-home-'));
  try {
    const home = join(parent, 'home');
    const expected = await copyFixtureHome(home);
    await rm(join(home, 'peer.key'));
    await assert.rejects(Volume.open(home, expected.volume), (err: { code?: string }) => typeof err.code === 'string' && err.code.startsWith('BAZIL_'));
    await assert.rejects(Volume.open(join(parent, 'nowhere'), expected.volume), (err: { code?: string }) => err.code === 'BAZIL_NOT_FOUND');
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});
