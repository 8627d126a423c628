// Stress for the import crash acceptance (test/volume/crash.test.ts): kills
// `bazil import` with SIGKILL many times, biased towards the end of the
// import and its close (where a lost tail of content once showed), with
// busy loops in other processes to perturb the timing, and runs
// `bazil fsck` (another process) after each kill. A kill that leaves fsck
// unclean keeps its home for inspection and is listed at the end.
//
//   node dist/scripts/crash-stress.js [--runs 40] [--hogs 1] [--files 200]
//     [--cli PATH/dist/src/cli/main.js] [--from 0.7] [--to 1.1] [--keep DIR]
//
// --cli runs another build (an A/B of old and new code in the same minute);
// the environment passes through, so BAZIL_NO_NATIVE=1 and the like apply.
// Prints one line per kill and `RESULT {...}` last. Not a test: it takes
// minutes and may find nothing; the deterministic test of the content rule
// is test/volume/content-order.test.ts.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeCrashTree, refreshCrashTree } from '../test/lib/crash-tree.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '40' },
    hogs: { type: 'string', default: '1' },
    files: { type: 'string', default: '200' },
    cli: { type: 'string', default: fileURLToPath(new URL('../src/cli/main.js', import.meta.url)) },
    from: { type: 'string', default: '0.7' },
    to: { type: 'string', default: '1.1' },
    'per-volume': { type: 'string', default: '5' },
    keep: { type: 'string', default: tmpdir() },
  },
});
const RUNS = Number(values.runs);
const HOGS = Number(values.hogs);
const FILES = Number(values.files);
const CLI = values.cli!;
const FROM = Number(values.from);
const TO = Number(values.to);
const PER_VOLUME = Number(values['per-volume']);

function bazil(home: string, ...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { timeout: 300_000, env: { ...process.env, BAZIL_HOME: home } });
  return { status: r.status, out: `${r.stdout.toString('utf8')}${r.stderr.toString('utf8')}` };
}

function runImport(home: string, src: string, target: string, killAfterMs: number | null): Promise<{ killed: boolean; code: number | null; ms: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const proc = spawn(process.execPath, [CLI, 'import', src, target], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BAZIL_HOME: home } });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = killAfterMs === null ? null : setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      if (timer !== null) clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL', code, ms: performance.now() - started, stderr });
    });
  });
}

const hogs: ChildProcess[] = [];
const dir = await mkdtemp(join(tmpdir(), 'bazil-crash-stress-'));
const failures: string[] = [];
let kills = 0;
let finished = 0;
try {
  // Each busy loop ends itself once this process is gone, however it ended.
  const hog = 'const p = process.ppid; for (;;) { for (let i = 0; i < 1e7; i++); if (process.ppid !== p) process.exit(0); }';
  for (let i = 0; i < HOGS; i++) hogs.push(spawn(process.execPath, ['-e', hog], { stdio: 'ignore' }));
  const home = join(dir, 'home');
  const src = join(dir, 'src');
  const files = await makeCrashTree(src, FILES, 2, 16 * 1024 * 1024);
  if (bazil(home, 'init').status !== 0) throw new Error('bazil init failed');
  bazil(home, 'volume', 'create', 'measure');
  // The median of three imports: one under a burst of load would put every kill past the end.
  const times: number[] = [];
  for (let m = 0; m < 3; m++) {
    await refreshCrashTree(files, 0.35);
    const end = await runImport(home, src, `measure:/m${m}`, null);
    if (end.code !== 0) throw new Error(`the measuring import failed: ${end.stderr}`);
    times.push(end.ms);
  }
  const measured = { ms: times.sort((a, b) => a - b)[1]! };
  console.log(`cli ${CLI}; ${files.length} files; an import takes ${measured.ms.toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(', ')}); kills at ${FROM}..${TO} of it; ${HOGS} busy loops`);
  for (let k = 0; k < RUNS; k++) {
    await refreshCrashTree(files, 0.35);
    const vol = `v${Math.floor(k / PER_VOLUME)}`;
    if (k % PER_VOLUME === 0) bazil(home, 'volume', 'create', vol);
    const killAt = measured.ms * (FROM + Math.random() * (TO - FROM));
    const end = await runImport(home, src, `${vol}:/run-${k}`, killAt);
    if (end.killed) kills++;
    else if (end.code === 0) finished++;
    else failures.push(`run ${k}: import failed: ${end.stderr.trim()}`);
    const fsck = bazil(home, 'fsck', vol);
    const line = `run ${k} ${vol}: kill at ${killAt.toFixed(0)} ms, ${end.killed ? 'killed' : `exit ${end.code}`} after ${end.ms.toFixed(0)} ms; fsck ${fsck.status === 0 ? 'clean' : 'NOT clean'}`;
    console.log(line);
    if (fsck.status !== 0) {
      const keep = join(values.keep!, `bazil-crash-stress-fail-${process.pid}-${k}`);
      await cp(home, keep, { recursive: true });
      failures.push(`${line}; home kept in ${keep}:\n${fsck.out.slice(0, 3000)}`);
    }
  }
} finally {
  for (const h of hogs) h.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
}
for (const f of failures) console.log(`FAILURE ${f}`);
console.log(`RESULT ${JSON.stringify({ runs: RUNS, kills, finished, failures: failures.length })}`);
process.exitCode = failures.length === 0 ? 0 : 1;
