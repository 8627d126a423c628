// The CLI loads a command's modules when that command runs (docs/ingest.md,
// "Process start"): `bazil --version` or `--help` must not pay for LevelDB,
// the arenas, FUSE or the volume, and a command still finds everything it
// needs. The loaded modules are listed by a module hook in the child.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN } from '../lib/cli-path.js';

const HOOKS = 'export async function load(url, context, next) { if (url.startsWith("file:")) process._rawDebug("LOADED " + url); return next(url, context); }';
const REGISTER = `import { register } from "node:module"; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

function run(home: string, ...args: string[]): { status: number | null; stdout: string; loaded: string[] } {
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, CLI_MAIN, ...args], {
    timeout: 30_000, env: { ...process.env, BAZIL_HOME: home, BAZIL_NO_FORWARD: '1' },
  });
  const stderr = r.stderr.toString('utf8');
  const loaded = stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice('LOADED '.length));
  return { status: r.status, stdout: r.stdout.toString('utf8'), loaded };
}

/** Modules only commands that open a home or a volume, or mount, may load. */
const HEAVY = [/\/node_modules\/classic-level\//, /\/node_modules\/fuse-native\//, /\/node_modules\/hash-wasm\//, /\/node_modules\/cbor-x\//, /\/arena\//, /\/src\/volume\//, /\/src\/projection\//, /\/src\/fuse\/mount\.js$/, /\/src\/daemon\/daemon\.js$/, /\/src\/home\/home\.js$/];

function heavy(loaded: string[]): string[] {
  return loaded.filter((u) => HEAVY.some((h) => h.test(u)));
}

test('bazil --version, --help and help CMD load none of the volume, home, arena or FUSE modules', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-cli-lazy-'));
  try {
    for (const args of [['--version'], ['--help'], ['help', 'import'], ['export', '--help'], ['version', '--json']]) {
      const r = run(join(dir, 'home'), ...args);
      assert.equal(r.status, 0, args.join(' '));
      assert.ok(r.loaded.some((u) => u.endsWith('/src/cli/main.js')), `the hook saw the CLI load (${args.join(' ')})`);
      assert.deepEqual(heavy(r.loaded), [], args.join(' '));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('each command loads what it needs when it runs: import and export work, a bad target is still refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-cli-lazy-'));
  try {
    const home = join(dir, 'home');
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'a.txt'), 'lazy\n');
    assert.equal(run(home, 'init').status, 0);
    assert.equal(run(home, 'volume', 'create', 'v').status, 0);
    const imp = run(home, 'import', src, 'v:/x', '--json');
    assert.equal(imp.status, 0);
    assert.ok(heavy(imp.loaded).some((u) => u.includes('/src/volume/import-export.js')), 'import loaded its implementation');
    const exp = run(home, 'export', 'v:/x', join(dir, 'out'), '--json');
    assert.equal(exp.status, 0);
    assert.equal(JSON.parse(exp.stdout).files, 1);
    // A malformed target is refused before any volume module loads.
    const bad = run(home, 'import', src, ':/x');
    assert.equal(bad.status, 1);
    assert.deepEqual(heavy(bad.loaded), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
