import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bazil, fails, ok, story } from './cli-helpers.js';

test('snapshots, bad points in history and --help through the CLI', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-cli-history-'));
  try {
    const { home, atFirst } = await story(dir);
    // Snapshots: ls, duplicates, rm, names that read as times.
    ok(bazil(home, 'snapshot', 'create', 'v', 'second'));
    fails(bazil(home, 'snapshot', 'create', 'v', 'second'), 'BAZIL_ALREADY_EXISTS');
    fails(bazil(home, 'snapshot', 'create', 'v', '2026-01-01'), 'BAZIL_BAD_ARGUMENT');
    fails(bazil(home, 'snapshot', 'create', 'v', 'a/b'), 'BAZIL_BAD_ARGUMENT');
    assert.deepEqual((JSON.parse(ok(bazil(home, 'snapshot', 'ls', 'v', '--json')).stdout) as { name: string }[]).map((s) => s.name), ['first', 'second']);
    ok(bazil(home, 'snapshot', 'rm', 'v', 'first'));
    fails(bazil(home, 'snapshot', 'rm', 'v', 'first'), 'BAZIL_UNKNOWN_SNAPSHOT');
    assert.match(ok(bazil(home, 'snapshot', 'ls', 'v')).stdout, /^second  @\d+  \S+Z  [0-9a-f]{8}\n$/);
    ok(bazil(home, 'show', 'v:/t', '--at', `@${atFirst}`));

    // Bad points in history.
    fails(bazil(home, 'show', 'v:/t', '--at', 'first'), 'BAZIL_UNKNOWN_SNAPSHOT');
    fails(bazil(home, 'show', 'v:/t', '--at', 'nosuch'), 'BAZIL_UNKNOWN_SNAPSHOT');
    fails(bazil(home, 'show', 'v:/t', '--at', 'yesterday'), 'BAZIL_BEFORE_HISTORY');
    fails(bazil(home, 'export', 'v', join(dir, 'out2'), '--at', '2001-01-01'), 'BAZIL_BEFORE_HISTORY');
    fails(bazil(home, 'show', 'v:/t', '--at', '@0'), 'BAZIL_BEFORE_HISTORY');
    fails(bazil(home, 'show', 'v:/t', '--at', '@99999'), 'BAZIL_BAD_ARGUMENT');
    fails(bazil(home, 'show', 'v:/t', '--at', '2026-02-30 10:00'), 'BAZIL_BAD_ARGUMENT');
    fails(bazil(home, 'diff', 'v', '3 parsecs ago'), 'BAZIL_BAD_ARGUMENT');
    fails(bazil(home, 'log', 'v', '--limit', 'lots'), 'BAZIL_BAD_ARGUMENT');
    fails(bazil(home, 'log', 'v', '/nope'), 'BAZIL_NOT_FOUND');
    fails(bazil(home, 'show', 'v:/t/docs', '--at', '@1'), 'BAZIL_NOT_FOUND');
    fails(bazil(home, 'restore', 'v:/t'), 'BAZIL_BAD_ARGUMENT', 2);
    const jsonErr = bazil(home, 'show', 'v:/t', '--at', 'nosuch', '--json');
    assert.equal((JSON.parse(jsonErr.stderr) as { code: string }).code, 'BAZIL_UNKNOWN_SNAPSHOT');
    for (const cmd of [['log'], ['show'], ['diff'], ['restore'], ['snapshot', 'create']]) {
      assert.match(ok(bazil(home, ...cmd, '--help')).stdout, /Usage: bazil/);
    }
    assert.match(ok(bazil(home, 'export', '--help')).stdout, /--at <when>/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
