import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bazil, fails, ok, story } from './cli-helpers.js';

test('restore of a file and of a tree through the CLI, keeping the history in between', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-cli-history-'));
  try {
    const { home, big } = await story(dir);
    const before = (JSON.parse(ok(bazil(home, 'log', 'v', '--json', '-n', '1')).stdout) as { position: string }[])[0]!.position;

    // restore: one file, then the whole tree; the history in between stays.
    const r1 = JSON.parse(ok(bazil(home, 'restore', 'v:/t/docs/a.txt', '--at', 'first', '--json')).stdout) as { events: number; created: number };
    assert.equal(r1.created, 2, '/t/docs is gone (renamed): made again from its past attributes, with a.txt in it');
    assert.equal(ok(bazil(home, 'show', 'v:/t/docs/a.txt')).stdout, 'version one\n');
    assert.equal(ok(bazil(home, 'show', 'v:/t/papers/a.txt')).stdout, 'version two\n');
    const notThen = bazil(home, 'restore', 'v:/t/papers/a.txt', '--at', 'first');
    fails(notThen, 'BAZIL_NOT_FOUND');
    assert.match(notThen.stderr, /does not exist at snapshot first/);
    ok(bazil(home, 'restore', 'v:/t', '--at', 'first'));
    assert.equal(ok(bazil(home, 'diff', 'v:/t', 'first')).stdout.split('\n').filter((l) => l.startsWith('M ') && !l.includes('mtime')).length, 0);
    assert.ok(ok(bazil(home, 'show', 'v:/t/big.bin')).raw.equals(big));
    assert.equal(ok(bazil(home, 'show', 'v:/t/docs/a.txt')).stdout, 'version one\n');
    assert.equal(ok(bazil(home, 'show', 'v:/t')).stdout, 'big.bin\ndocs/\n');
    assert.equal(ok(bazil(home, 'show', 'v:/t/papers/a.txt', '--at', `@${before}`)).stdout, 'version two\n', 'the past before the restore is still there');

  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
