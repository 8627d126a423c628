#!/usr/bin/env node
// Runs one benchmark: `npm run bench -- NAME [ARGS...]`, e.g. `npm run bench -- mph --quick`.
//
// A benchmark is a top-level file bench/NAME.ts, compiled to dist/bench/NAME.js
// (helpers shared by benchmarks live in subdirectories such as bench/lib/, so
// they are not listed). The project is built first when the compiled
// benchmark is missing or older than its source. Without NAME, lists the
// benchmarks.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sourceDir = join(root, 'bench');
const compiledDir = join(root, 'dist', 'bench');

function available() {
  const names = new Set();
  if (existsSync(sourceDir)) {
    for (const f of readdirSync(sourceDir)) if (f.endsWith('.ts') && !f.endsWith('.d.ts')) names.add(f.slice(0, -3));
  }
  return [...names].sort();
}

function printList(write) {
  const names = available();
  write('usage: npm run bench -- NAME [--quick] [ARGS...]\n');
  write(names.length > 0 ? `benchmarks:\n${names.map((n) => `  ${n}\n`).join('')}` : 'no benchmarks yet (bench/ holds none)\n');
}

const [name, ...rest] = process.argv.slice(2);
if (name === undefined || name === '--help' || name === '-h') {
  printList((s) => process.stdout.write(s));
  process.exit(0);
}
if (!available().includes(name)) {
  process.stderr.write(`bench: no benchmark named '${name}'\n`);
  printList((s) => process.stderr.write(s));
  process.exit(2);
}

const source = join(sourceDir, `${name}.ts`);
const compiled = join(compiledDir, `${name}.js`);
if (!existsSync(compiled) || statSync(compiled).mtimeMs < statSync(source).mtimeMs) {
  process.stderr.write(`bench: building first (${existsSync(compiled) ? 'dist/ is older than bench/' : 'dist/ has no compiled benchmark'})\n`);
  const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (build.status !== 0) {
    process.stderr.write('bench: build failed\n');
    process.exit(1);
  }
  if (!existsSync(compiled)) {
    process.stderr.write(`bench: the build did not produce dist/bench/${name}.js\n`);
    process.exit(1);
  }
}

const child = spawn(process.execPath, [compiled, ...rest], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
child.on('error', (err) => {
  process.stderr.write(`bench: could not start node: ${err.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
