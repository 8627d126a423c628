import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { commandGroups } from '../../src/cli/commands/index.js';
import { run, type CliIO } from '../../src/cli/program.js';
import { CLI_MAIN } from '../lib/cli-path.js';

// This file runs from dist/test/cli/; the repository root is three levels up.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const main = CLI_MAIN;
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

function bazil(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the program in-process with extra command groups, capturing its output. */
async function runInProcess(
  args: string[],
  extra: ((program: Command) => void)[] = [],
): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) };
  const status = await run(['node', 'bazil', ...args], { groups: [...commandGroups, ...extra], io });
  return { status, stdout, stderr };
}

test('--help lists the commands and exits 0', () => {
  const r = bazil('--help');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: bazil /);
  assert.match(r.stdout, /version\s+print the version of Bazil/);
  assert.match(r.stdout, /--json/);
});

test('version prints the package version, as JSON with --json', () => {
  assert.equal(bazil('version').stdout, `bazil ${version}\n`);
  for (const args of [['version', '--json'], ['--json', 'version']]) {
    const r = bazil(...args);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { version });
    assert.equal(r.stderr, '');
  }
  assert.equal(bazil('--version').stdout, `${version}\n`);
});

test('an unknown command is a usage error: exit 2 and a clear message', () => {
  const r = bazil('frobnicate');
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^bazil: unknown command 'frobnicate' \[BAZIL_BAD_ARGUMENT\]\n/);
  assert.match(r.stderr, /bazil --help/);

  const json = bazil('--json', 'verson');
  assert.equal(json.status, 2);
  const error = JSON.parse(json.stderr) as { code: string; message: string };
  assert.equal(error.code, ErrorCodes.BAD_ARGUMENT);
  assert.match(error.message, /unknown command 'verson'.*Did you mean version\?/);
});

test('a bare `bazil` prints help to stderr and exits 2', () => {
  const r = bazil();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /Usage: bazil/);
});

test('a BazilError prints one line with its code and exits 1, without a stack trace', async () => {
  const failing = (program: Command): void => {
    program.command('fail').action(() => {
      throw new BazilError(ErrorCodes.NOT_FOUND, 'volume photos not found', { volume: 'photos' });
    });
  };
  const text = await runInProcess(['fail'], [failing]);
  assert.equal(text.status, 1);
  assert.equal(text.stderr, 'bazil: volume photos not found [BAZIL_NOT_FOUND]\n');

  const json = await runInProcess(['fail', '--json'], [failing]);
  assert.equal(json.status, 1);
  assert.deepEqual(JSON.parse(json.stderr), {
    code: 'BAZIL_NOT_FOUND',
    message: 'volume photos not found',
    data: { volume: 'photos' },
  });
});

test('any other error is reported as an internal error with its stack', async () => {
  const buggy = (program: Command): void => {
    program.command('bug').action(async () => {
      throw new TypeError('x is undefined');
    });
  };
  const r = await runInProcess(['bug'], [buggy]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^bazil: internal error \(a bug in Bazil\): x is undefined \[BAZIL_INTERNAL\]\n/);
  assert.match(r.stderr, /TypeError: x is undefined\n\s+at /);
});
