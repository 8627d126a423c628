// The volume issue's crash acceptance: `bazil import` killed with SIGKILL at
// random moments. Each time the volume reopens, fsck is clean, and every file
// present under the killed import's directory equals its source byte for
// byte (a file or the whole directory may be missing: the import was not
// finished; a present file with other bytes, another size, or a read that
// fails is a bug). A last import, not killed, must export equal to the source.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Volume } from '../../src/volume/volume.js';
import { CLI_MAIN } from '../lib/cli-path.js';
import { makeCrashTree, refreshCrashTree } from '../lib/crash-tree.js';

const SLOW = process.env.BAZIL_SLOW === '1';
const RUNS = SLOW ? 50 : 20;
/** Regular files besides the big ones; sizes mixed up to 2 MiB. */
const FILES = SLOW ? 600 : 200;
const BIG_FILES = 2;
const BIG_SIZE = 16 * 1024 * 1024;
/** Share of the files given new random bytes before each run, so each import writes new content (and not only dedup hits). */
const REFRESH = SLOW ? 0.5 : 0.35;
/** Kills per volume: recovery runs on top of recovered state, while fsck (which reads the whole volume) stays short. */
const PER_VOLUME = SLOW ? 10 : 5;

const main = CLI_MAIN;

function bazil(home: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [main, ...args], { timeout: 120_000, env: { ...process.env, BAZIL_HOME: home } });
  assert.equal(r.status, 0, `bazil ${args.join(' ')}: ${r.stderr.toString('utf8')}`);
  return r.stdout.toString('utf8');
}

/** Null if `path`'s bytes are exactly `stream`'s, else what differs. */
async function sameBytes(path: string, stream: AsyncIterable<Buffer>): Promise<string | null> {
  const local = await readFile(path);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  const stored = Buffer.concat(chunks);
  if (stored.length !== local.length) return `read ${stored.length} bytes, the source has ${local.length}`;
  if (!stored.equals(local)) {
    let at = 0;
    while (stored[at] === local[at]) at++;
    return `differs from the source at byte ${at}`;
  }
  return null;
}

interface Census {
  dirs: number;
  files: number;
  symlinks: number;
  /** Files present with size 0 whose source is not empty: created, content never committed. */
  placeholders: string[];
  problems: string[];
}

/** Walks the volume's `volPath` against the local `srcPath`: every present node must exist in the source with the same kind, and every file's size and bytes must equal its source's. */
async function compareTree(v: Volume, volPath: string, srcPath: string, census: Census): Promise<void> {
  census.dirs++;
  let after: string | undefined;
  for (;;) {
    const page = await v.readdir(volPath, { after, limit: 256 });
    if (page.length === 0) break;
    after = page[page.length - 1]!.name;
    for (const { name, id } of page) {
      const vp = `${volPath}/${name}`;
      const sp = join(srcPath, name);
      try {
        const attrs = await v.getattr(id);
        const st = await lstat(sp).catch(() => null);
        if (st === null) {
          census.problems.push(`${vp}: present in the volume (${attrs.kind}) but not in the source`);
          continue;
        }
        if (attrs.kind === 'dir') {
          if (!st.isDirectory()) census.problems.push(`${vp}: a directory in the volume, not in the source`);
          else await compareTree(v, vp, sp, census);
        } else if (attrs.kind === 'file') {
          census.files++;
          if (!st.isFile()) census.problems.push(`${vp}: a file in the volume, not in the source`);
          else if (attrs.size === 0 && st.size > 0) census.placeholders.push(`${vp}: size 0, the source has ${st.size}`);
          else if (attrs.size !== st.size) census.problems.push(`${vp}: size ${attrs.size}, the source has ${st.size}`);
          else {
            const diff = await sameBytes(sp, v.streamId(id, vp));
            if (diff !== null) census.problems.push(`${vp}: ${diff}`);
          }
        } else if (attrs.kind === 'symlink') {
          census.symlinks++;
          if (!st.isSymbolicLink()) census.problems.push(`${vp}: a symlink in the volume, not in the source`);
          else if ((await v.readlinkId(id, vp)) !== (await readlink(sp))) census.problems.push(`${vp}: symlink target differs`);
        } else {
          census.problems.push(`${vp}: unexpected kind ${attrs.kind}`);
        }
      } catch (err) {
        census.problems.push(`${vp}: ${(err as Error).message}`);
      }
    }
  }
}

/** Regular files and symlinks under a local directory (a hard link counts per name). */
async function countSource(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += await countSource(join(dir, e.name));
    else n++;
  }
  return n;
}

interface ChildEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
}

/** Runs `bazil import src vol:/dest`, killed with SIGKILL after `killAfterMs` unless it ended first; resolves once the process is gone. */
function runImport(home: string, src: string, vol: string, dest: string, killAfterMs: number | null): Promise<ChildEnd> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const proc = spawn(process.execPath, [main, 'import', src, `${vol}:${dest}`], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BAZIL_HOME: home } });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = killAfterMs === null ? null : setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (timer !== null) clearTimeout(timer);
      // 'close' follows once stderr is drained.
      proc.on('close', () => resolve({ code, signal, stderr, ms: performance.now() - started }));
    });
  });
}

interface Findings {
  /** Corruption: fsck problems, wrong bytes or sizes, failed reads, an incomplete finished import. */
  problems: string[];
  /** Present files that are empty where the source is not. */
  placeholders: string[];
}

function listed(label: string, items: string[], max = 20): string[] {
  const out = items.slice(0, max).map((p) => `${label}: ${p}`);
  if (items.length > max) out.push(`${label}: … and ${items.length - max} more`);
  return out;
}

async function check(t: TestContext, home: string, src: string, vol: string, run: string, end: ChildEnd, killAt: number, found: Findings): Promise<void> {
  const label = `${vol}:${run} (kill at ${killAt.toFixed(0)} ms, child ${end.signal ?? `exit ${end.code}`} after ${end.ms.toFixed(0)} ms)`;
  const problems = found.problems;
  if (end.signal === null && end.code !== 0) {
    problems.push(`${label}: import failed: ${end.stderr.trim()}`);
    return;
  }
  const opened = performance.now();
  let v: Volume;
  try {
    v = await Volume.open(home, vol);
  } catch (err) {
    problems.push(`${label}: the volume does not reopen: ${(err as Error).stack}`);
    return;
  }
  try {
    const report = await v.fsck();
    if (!report.ok) problems.push(`${label}: fsck: ${JSON.stringify(report.problems, null, 1).slice(0, 4000)}`);
    const census: Census = { dirs: 0, files: 0, symlinks: 0, placeholders: [], problems: [] };
    let exists = true;
    try {
      await v.resolve(run);
    } catch {
      exists = false;
    }
    if (exists) await compareTree(v, run, src, census);
    problems.push(...listed(label, census.problems));
    found.placeholders.push(...listed(label, census.placeholders, 3));
    const all = await countSource(src);
    if (end.signal === null && census.files + census.symlinks !== all) problems.push(`${label}: the import finished but only ${census.files + census.symlinks} of ${all} files and symlinks are present`);
    t.diagnostic(`${label}: ${exists ? `${census.dirs} dirs, ${census.files} files, ${census.symlinks} symlinks present (${census.placeholders.length} empty placeholders)` : 'not created'}; fsck ${report.ok ? 'clean' : 'NOT clean'} (${report.counts.records} records, ${report.counts.events} events), checked in ${(performance.now() - opened).toFixed(0)} ms`);
  } finally {
    await v.close();
  }
}

test('bazil import killed with SIGKILL at random moments: the volume reopens, fsck is clean, every file present equals its source', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-volume-crash-'));
  try {
    const home = join(dir, 'home');
    const src = join(dir, 'src');
    const files = await makeCrashTree(src, FILES, BIG_FILES, BIG_SIZE);
    bazil(home, 'init');

    // One full import measures how long an import takes (new content).
    await refreshCrashTree(files, REFRESH);
    bazil(home, 'volume', 'create', 'measure');
    const measured = await runImport(home, src, 'measure', '/measure', null);
    assert.equal(measured.code, 0, measured.stderr);
    t.diagnostic(`tree: ${files.length + 1} files; a full import takes ${measured.ms.toFixed(0)} ms (with process start)`);

    const found: Findings = { problems: [], placeholders: [] };
    for (let k = 0; k < RUNS; k++) {
      await refreshCrashTree(files, REFRESH);
      // Mostly inside the import; a few land after its end (a finished import must be complete).
      const killAt = Math.random() * measured.ms * 1.1;
      const vol = `v${Math.floor(k / PER_VOLUME)}`;
      if (k % PER_VOLUME === 0) bazil(home, 'volume', 'create', vol);
      const end = await runImport(home, src, vol, `/run-${k}`, killAt);
      await check(t, home, src, vol, `/run-${k}`, end, killAt, found);
    }

    // A last import, not killed, exports equal to the source.
    await refreshCrashTree(files, REFRESH);
    const lastVol = `v${Math.floor((RUNS - 1) / PER_VOLUME)}`;
    const last = await runImport(home, src, lastVol, '/final', null);
    assert.equal(last.code, 0, last.stderr);
    await check(t, home, src, lastVol, '/final', last, Infinity, found);
    const out = join(dir, 'out');
    bazil(home, 'export', `${lastVol}:/final`, out);
    execFileSync('diff', ['-r', '--no-dereference', src, out]);

    assert.deepEqual(found.problems, [], `corruption after SIGKILL:\n${found.problems.join('\n')}`);
    // No corruption, but the acceptance asks more: a file that is present has
    // its source's bytes. importTree appends each file's create event at once
    // and queues its set-content until the content is synced (WriteBatch's
    // content rule), so a kill after a flush leaves the files created since
    // the previous flush empty (the flush syncs their creates; their queued
    // set-contents, appended after that sync, are lost with the process).
    assert.deepEqual(found.placeholders, [],
      'files present but empty after SIGKILL (create durable, set-content not: importTree/WriteBatch ordering):\n' + found.placeholders.join('\n'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
