import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bazil, ok, story } from './cli-helpers.js';

test('log, show, diff and export --at through the CLI', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-cli-history-'));
  try {
    const { home, big, atFirst } = await story(dir);

    // log: newest first, positions counting down from the end, --limit, --json, a path filter.
    const log = JSON.parse(ok(bazil(home, 'log', 'v', '--json', '--limit', '0')).stdout) as { position: string; type: string; summary: string; writer: string; time: string }[];
    assert.deepEqual(log.map((e) => Number(e.position)), Array.from({ length: log.length }, (_, i) => log.length - i));
    assert.equal(log.at(-1)!.type, 'create-volume');
    assert.equal(log[0]!.summary, 'unlink /t/big.bin');
    assert.ok(log.some((e) => e.summary === 'rename /t/docs -> /t/papers'), JSON.stringify(log.map((e) => e.summary)));
    assert.equal(log.find((e) => e.type === 'snapshot')!.summary, 'snapshot first');
    const two = ok(bazil(home, 'log', 'v', '-n', '2')).stdout.split('\n');
    assert.equal(two.length, 3);
    assert.match(two[0]!, new RegExp(`^@${log.length}  [0-9a-f]{8}  \\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z  unlink /t/big.bin$`));
    const ofA = JSON.parse(ok(bazil(home, 'log', 'v', '/t/papers/a.txt', '--json')).stdout) as { type: string; summary: string }[];
    // Import creates the file with its content in one event; the later write is a set-content.
    assert.deepEqual(ofA.map((e) => e.type), ['set-content', 'create'], JSON.stringify(ofA));
    assert.match(ofA[1]!.summary, /^create \/t\/(docs|papers)\/a\.txt \(\d+ bytes\)$/);

    // show: past content, past listings, by snapshot, position and time.
    assert.equal(ok(bazil(home, 'show', 'v:/t/docs/a.txt', '--at', 'first')).stdout, 'version one\n');
    assert.equal(ok(bazil(home, 'show', 'v:/t/papers/a.txt')).stdout, 'version two\n');
    assert.ok(ok(bazil(home, 'show', 'v:/t/big.bin', '--at', `@${atFirst}`)).raw.equals(big));
    assert.equal(ok(bazil(home, 'show', 'v:/t', '--at', 'first')).stdout, 'big.bin\ndocs/\n');
    assert.equal(ok(bazil(home, 'show', 'v:/t')).stdout, 'new.txt\npapers/\n');
    const later = new Date(Date.now() + 60_000).toISOString();
    assert.equal(ok(bazil(home, 'show', 'v:/t', '--at', later)).stdout, 'new.txt\npapers/\n');
    assert.equal(ok(bazil(home, 'show', 'v:/t', '--at', '1 s ago')).stdout.length > 0, true);

    // diff between the snapshot and now.
    const diff = JSON.parse(ok(bazil(home, 'diff', 'v', 'first', '--json')).stdout) as {
      added: { path: string }[]; removed: { path: string }[]; modified: { path: string; changes: string[] }[]; renamed: { from: string; to: string }[];
    };
    assert.deepEqual(diff.added.map((a) => a.path), ['/t/new.txt']);
    assert.deepEqual(diff.removed.map((a) => a.path), ['/t/big.bin']);
    assert.deepEqual(diff.renamed.map((r) => [r.from, r.to]), [['/t/docs', '/t/papers']]);
    assert.deepEqual(diff.modified.map((m) => [m.path, m.changes.includes('content')]), [['/t/papers/a.txt', true]]);
    assert.equal(ok(bazil(home, 'diff', 'v:/t', 'first', 'first')).stdout, '');
    assert.match(ok(bazil(home, 'diff', 'v', 'first', 'now')).stdout, /^R \/t\/docs -> \/t\/papers$/m);

    // export --at: the snapshot's tree, byte for byte.
    const out = join(dir, 'out');
    ok(bazil(home, 'export', 'v:/t', out, '--at', 'first'));
    assert.deepEqual((await readdir(out)).sort(), ['big.bin', 'docs']);
    assert.ok((await readFile(join(out, 'big.bin'))).equals(big));
    assert.equal(await readFile(join(out, 'docs', 'a.txt'), 'utf8'), 'version one\n');

  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
