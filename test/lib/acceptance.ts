// Shared by the volume acceptance tests: a scratch directory, the `bazil`
// command run as a user runs it (a child process of the same build), and
// the disk usage of a home.

import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN } from './cli-path.js';

export const SLOW = process.env.BAZIL_SLOW === '1';

export async function withTemp(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), `bazil-${prefix}-`));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface CliRun {
  status: number | null;
  stdout: Buffer;
  stderr: string;
  /** The JSON error on stderr (with --json), when there is one. */
  error: { code: string; message: string; data: Record<string, unknown> } | null;
}

/** Runs `bazil ARGS` with BAZIL_HOME=home; never throws on a non-zero exit. */
export function cli(home: string, args: readonly string[], timeoutMs = 600_000): CliRun {
  const r = spawnSync(process.execPath, [CLI_MAIN, ...args], {
    timeout: timeoutMs,
    maxBuffer: 1 << 30,
    env: { ...process.env, BAZIL_HOME: home, BAZIL_DEBUG: '' },
  });
  if (r.error !== undefined) throw r.error;
  const stderr = r.stderr.toString('utf8');
  let error: CliRun['error'] = null;
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as CliRun['error'];
      if (parsed !== null && typeof parsed.code === 'string') error = parsed;
    } catch {
      // Not the error line.
    }
  }
  return { status: r.status, stdout: r.stdout, stderr, error };
}

/** Runs `bazil ARGS` and fails with its stderr unless it exits 0; returns stdout. */
export function cliOk(home: string, args: readonly string[]): string {
  const r = cli(home, args);
  if (r.status !== 0) throw new Error(`bazil ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout.toString('utf8');
}

/** A new home with the named volumes, made through the CLI; returns the home's path. */
export function newHome(dir: string, ...volumes: string[]): string {
  const home = join(dir, 'home');
  cliOk(home, ['init']);
  for (const v of volumes) cliOk(home, ['volume', 'create', v]);
  return home;
}

/** The volume's directory inside the home (its id from `volume ls --json`). */
export function volumeDir(home: string, name: string): string {
  const list = JSON.parse(cliOk(home, ['--json', 'volume', 'ls'])) as Array<{ name: string; id: string }>;
  const v = list.find((x) => x.name === name);
  if (v === undefined) throw new Error(`no volume ${name} in ${home}`);
  return join(home, 'volumes', v.id);
}

/** Bytes the directory takes on disk (du -s -B1: allocated blocks, so holes and sparse files count as what they use). */
export function diskUsage(dir: string): number {
  const r = spawnSync('du', ['-s', '-B1', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`du ${dir}: ${r.stderr}`);
  return Number(r.stdout.split('\t')[0]);
}

/**
 * Every name under `dir`, recursively, without following symlinks (Node's
 * recursive readdir follows symlinks to directories, and a generated tree
 * has links to its own ancestors).
 */
export async function namesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    out.push(e.name);
    if (e.isDirectory()) out.push(...(await namesUnder(join(dir, e.name))));
  }
  return out;
}

/** Every regular file under `dir`, recursively. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}
