#!/usr/bin/env node
// Runs the compiled test suite with Node's test runner.
//
//   node scripts/run-tests.mjs [FILTER...]
//
// Finds every dist/test/**/*.test.js (run `npm run build` first; `npm test`
// does), keeps those whose path contains one of the FILTER substrings when
// any are given, and runs them in one `node --test` process so the summary
// lines (`# tests N`, `# pass N`, `# fail N`) close the output. The TAP
// reporter is used unless stdout is a terminal, because CI reads those lines
// and Node's default reporter differs between versions.
//
// Environment:
//   BAZIL_TEST_CONCURRENCY  test files run at once (default: CPU count)
//   BAZIL_TEST_TIMEOUT_MS   time one test file may take (default 10 min,
//                           45 min with BAZIL_SLOW=1)
//   BAZIL_TEST_REPORTER     node:test reporter (default: spec on a terminal, tap otherwise)
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const distTests = join(root, 'dist', 'test');
const sourceTests = join(root, 'test');

function fail(message) {
  process.stderr.write(`run-tests: ${message}\n`);
  process.exit(1);
}

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) fail(`${name} must be a positive integer, got '${raw}'`);
  return n;
}

function findTestFiles(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTestFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.test.js')) found.push(path);
  }
  return found;
}

// tsc never deletes output, so a test that was deleted or renamed in test/
// would otherwise keep running from dist/. Only compiled files whose source
// still exists are run.
function hasSource(compiled) {
  const rel = relative(distTests, compiled).replace(/\.js$/, '');
  return ['.ts', '.mts', '.js', '.mjs'].some((ext) => existsSync(join(sourceTests, rel + ext)));
}

if (!existsSync(distTests)) {
  fail(`no compiled tests: ${relative(root, distTests)} does not exist (run \`npm run build\` first, or use \`npm test\`)`);
}

const filters = process.argv.slice(2);
const all = findTestFiles(distTests).sort();
const stale = all.filter((f) => !hasSource(f));
for (const f of stale) {
  process.stderr.write(`run-tests: skipping ${relative(root, f)}: its source under test/ no longer exists\n`);
}
const files = all
  .filter((f) => hasSource(f))
  .filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).split(sep).join('/').includes(s)));

if (files.length === 0) {
  const what = filters.length > 0 ? ` matching ${filters.map((s) => `'${s}'`).join(' or ')}` : '';
  fail(`found no test files${what} under ${relative(root, distTests)} — refusing to report success for an empty run`);
}

const slow = process.env.BAZIL_SLOW === '1';
const concurrency = positiveInt('BAZIL_TEST_CONCURRENCY', availableParallelism());
const timeoutMs = positiveInt('BAZIL_TEST_TIMEOUT_MS', (slow ? 45 : 10) * 60_000);
const reporter = process.env.BAZIL_TEST_REPORTER || (process.stdout.isTTY ? 'spec' : 'tap');

process.stderr.write(
  `run-tests: ${files.length} file(s), concurrency ${concurrency}, ` +
    `timeout ${Math.round(timeoutMs / 1000)} s per file, reporter ${reporter}${slow ? ', BAZIL_SLOW=1' : ''}\n`,
);

const args = [
  '--test',
  `--test-reporter=${reporter}`,
  '--test-reporter-destination=stdout',
  `--test-concurrency=${concurrency}`,
  `--test-timeout=${timeoutMs}`,
  ...files.map((f) => relative(root, f)),
];
const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });

// Ctrl-C reaches the child through the terminal's process group; forward
// signals sent to this process alone (e.g. by a CI timeout) as well.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}

child.on('error', (err) => fail(`could not start node: ${err.message}`));
child.on('exit', (code, signal) => {
  if (signal) {
    process.stderr.write(`run-tests: test runner killed by ${signal}\n`);
    process.exit(1);
  }
  if (code !== 0) process.stderr.write(`run-tests: FAILED (node --test exited with ${code})\n`);
  process.exit(code ?? 1);
});
