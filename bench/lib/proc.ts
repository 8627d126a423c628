// Child processes for benchmarks: run a command under GNU time for its wall
// time and peak RSS, install Debian packages when a tool is missing, and
// measure a directory's size on disk.

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';

export interface Timed {
  /** Wall time of the child, from spawn to exit, in seconds. */
  seconds: number;
  /** Peak RSS of the child in KiB, as GNU time's %M reports it (ru_maxrss from wait4). */
  maxRssKiB: number;
  /** CPU seconds of the child, user and system, all its threads (GNU time's %U + %S): comparable on a loaded machine, where wall time is not. */
  cpuSeconds: number;
  stdout: string;
  stderr: string;
}

/** Children running now, killed on SIGINT/SIGTERM by the caller's handler (killRunning). */
export const running = new Set<import('node:child_process').ChildProcess>();

/** SIGKILLs the process group of every running child (GNU time and the tool it runs). */
export function killRunning(): void {
  for (const c of running) {
    try {
      if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
    } catch {
      c.kill('SIGKILL');
    }
  }
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Directory for GNU time's output file. */
  scratch: string;
}

/**
 * Runs `cmd args` under `/usr/bin/time -f '%M %U %S' -o FILE` and fails loudly with
 * its output when it exits non-zero. The wall time includes process start
 * (node's or restic's), which both tools pay alike.
 */
export function timed(cmd: string, args: string[], opts: RunOptions): Promise<Timed> {
  const rssFile = join(opts.scratch, `rss.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}`);
  return new Promise((resolveP, rejectP) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(GNU_TIME, ['-f', '%M %U %S', '-o', rssFile, cmd, ...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that killGroup() reaches the tool under GNU time too.
      detached: true,
    });
    running.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      running.delete(child);
      rejectP(e);
    });
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      running.delete(child);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      let rss = NaN;
      let cpu = NaN;
      try {
        // GNU time prints "Command exited with non-zero status N" first when it fails.
        const lines = readFileSync(rssFile, 'utf8').trim().split('\n');
        const [kib, user, sys] = lines[lines.length - 1]!.split(' ').map(Number);
        rss = kib!;
        cpu = user! + sys!;
        rmSync(rssFile, { force: true });
      } catch {
        /* reported below */
      }
      if (code !== 0) {
        rejectP(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${stdout}\n${stderr}`));
        return;
      }
      if (!Number.isFinite(rss)) {
        rejectP(new Error(`no peak RSS from ${GNU_TIME} for ${cmd}`));
        return;
      }
      resolveP({ seconds, maxRssKiB: rss, cpuSeconds: cpu, stdout, stderr });
    });
  });
}

/** Runs a command to completion (untimed), failing loudly. */
export function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv, cwd?: string): string {
  const r = spawnSync(cmd, args, { env: env ?? process.env, cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p !== '' ? p : undefined;
}

/**
 * Makes sure `binary` exists, installing Debian `pkg` with apt-get when it is
 * missing (running `apt-get update` first only if the install fails).
 * apt-get's output goes to stderr so stdout stays the report.
 */
export function ensureDebianTool(binary: string, pkg: string): string {
  const have = binary.startsWith('/') ? (existsSync(binary) ? binary : undefined) : which(binary);
  if (have) return have;
  process.stderr.write(`bench: ${binary} missing, installing Debian package ${pkg}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): boolean =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env, stdio: ['ignore', 2, 2] }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update'], { env, stdio: ['ignore', 2, 2] });
    if (!install()) throw new Error(`could not install ${pkg} with apt-get (are we root?)`);
  }
  const now = binary.startsWith('/') ? (existsSync(binary) ? binary : undefined) : which(binary);
  if (!now) throw new Error(`installed ${pkg} but ${binary} is still missing`);
  return now;
}

/** Apparent size of a tree in bytes: `du -sb` (sum of file sizes, not blocks). */
export function duBytes(dir: string): number {
  const out = run('du', ['-sb', dir]);
  const n = Number(out.split(/\s/)[0]);
  if (!Number.isFinite(n)) throw new Error(`du -sb ${dir}: unexpected output ${out}`);
  return n;
}

/** `diff -rq a b` (contents, names, types): throws with diff's output when the trees differ. */
export function sameTree(a: string, b: string, what: string): void {
  const r = spawnSync('diff', ['-rq', '--no-dereference', a, b], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    const lines = `${r.stdout}${r.stderr}`.split('\n');
    throw new Error(`VERIFY FAILED: ${what} differs from the source:\n${lines.slice(0, 20).join('\n')}${lines.length > 20 ? `\n... ${lines.length - 20} more lines` : ''}`);
  }
}

/**
 * Reads every regular file under `dir` once and throws the bytes away, so
 * that the command timed next finds its input in the page cache whatever
 * ran before it. The machines we measure on keep only about 3 GB of page
 * cache however much memory is free, and a round of bench/ingest writes
 * more than that: without this, whichever tool read the dataset second
 * found it warmed by the first (docs/ingest.md, "Round 5").
 */
export function warmTree(dir: string): void {
  const buf = Buffer.allocUnsafe(1024 * 1024);
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.isFile()) {
        const fd = openSync(path, 'r');
        try {
          while (readSync(fd, buf, 0, buf.length, null) > 0) {
            // The read is the point: the bytes go nowhere.
          }
        } finally {
          closeSync(fd);
        }
      }
    }
  };
  walk(dir);
}
