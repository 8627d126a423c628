import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN } from '../lib/cli-path.js';

const main = CLI_MAIN;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function bazil(home: string, ...args: string[]): Result {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, BAZIL_HOME: home } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function withTemp(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-cli-test-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('init, volume create, volume ls: text and --json', async () => {
  await withTemp((dir) => {
    const home = join(dir, 'home');
    const init = bazil(home, 'init', '--json');
    assert.equal(init.status, 0, init.stderr);
    const info = JSON.parse(init.stdout) as { home: string; peer: string; created: boolean };
    assert.equal(info.home, home);
    assert.match(info.peer, /^[0-9a-f]{64}$/);
    assert.equal(info.created, true);

    // Idempotent: the same peer, exit 0.
    const again = bazil(home, 'init');
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`already initialized: home ${home}\\npeer ${info.peer}\\n`));

    const empty = bazil(home, 'volume', 'ls');
    assert.equal(empty.status, 0, empty.stderr);
    assert.match(empty.stdout, /no volumes yet/);

    const created = bazil(home, 'volume', 'create', 'photos');
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /^[0-9a-f]{64}\n$/);
    const id = created.stdout.trim();

    const json = bazil(home, '--json', 'volume', 'create', 'docs');
    assert.equal(json.status, 0, json.stderr);
    const docs = JSON.parse(json.stdout) as { name: string; id: string; created: string };
    assert.equal(docs.name, 'docs');

    const ls = bazil(home, 'volume', 'ls', '--json');
    assert.equal(ls.status, 0, ls.stderr);
    const list = JSON.parse(ls.stdout) as { name: string; id: string; created: string; events: number }[];
    assert.deepEqual(list.map((v) => [v.name, v.events]), [['docs', 1], ['photos', 1]]);
    assert.equal(list[1]!.id, id);
    assert.ok(!Number.isNaN(Date.parse(list[1]!.created)));

    const table = bazil(home, 'volume', 'ls');
    assert.equal(table.status, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+ID\s+CREATED\s+EVENTS$/);
    assert.match(lines[2]!, new RegExp(`^photos\\s+${id.slice(0, 12)}\\s+\\S+Z\\s+1$`));

    // --home overrides BAZIL_HOME.
    const other = join(dir, 'other');
    assert.equal(bazil(home, 'init', '--home', other).status, 0);
    const otherLs = bazil(home, 'volume', 'ls', '--json', '--home', other);
    assert.deepEqual(JSON.parse(otherLs.stdout), []);
  });
});

test('errors: exit 1 with a one-line message and a stable code', async () => {
  await withTemp((dir) => {
    const home = join(dir, 'home');
    const missing = bazil(home, 'volume', 'ls');
    assert.equal(missing.status, 1);
    assert.equal(missing.stdout, '');
    assert.match(missing.stderr, /^bazil: no Bazil home at .*; run `bazil init` first \[BAZIL_NOT_FOUND\]\n$/);

    assert.equal(bazil(home, 'init').status, 0);
    assert.equal(bazil(home, 'volume', 'create', 'photos').status, 0);
    const dup = bazil(home, 'volume', 'create', 'photos');
    assert.equal(dup.status, 1);
    assert.match(dup.stderr, /^bazil: a volume named 'photos' already exists .*\[BAZIL_ALREADY_EXISTS\]\n$/);

    const bad = bazil(home, '--json', 'volume', 'create', '.hidden');
    assert.equal(bad.status, 1);
    const err = JSON.parse(bad.stderr) as { code: string; message: string };
    assert.equal(err.code, 'BAZIL_BAD_ARGUMENT');
    assert.match(err.message, /invalid volume name '.hidden'/);

    const usage = bazil(home, 'volume', 'create');
    assert.equal(usage.status, 2);
  });
});

test('--help says what each command does', () => {
  const top = bazil('/nonexistent', '--help');
  assert.match(top.stdout, /init\s.*create the Bazil home/);
  assert.match(top.stdout, /volume\s.*create and list volumes/);
  const create = bazil('/nonexistent', 'volume', 'create', '--help');
  assert.equal(create.status, 0);
  assert.match(create.stdout, /fresh id and secret/);
  assert.match(create.stdout, /--home <dir>/);
  const ls = bazil('/nonexistent', 'volume', 'ls', '--help');
  assert.match(ls.stdout, /list the volumes of the home/);
});
