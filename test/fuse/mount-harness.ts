// Shared by the mount tests: a fresh home with a volume, the `bazil` CLI
// run as a child process, and a mount made by `bazil mount` (so the
// daemon, not this process, serves it: this process may then touch the
// mount freely). Every mount is torn down in `finally` by unmount(), which
// escalates to `umount --force` and killing the daemon when needed.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { access, constants as fsConstants, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findFuseConnection, freeWedgedMount, loadFuseNative } from '../../src/fuse/binding.js';
import { CLI_MAIN } from '../lib/cli-path.js';

const execFileP = promisify(execFile);
const CLI_TIMEOUT_MS = 60_000;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestHome {
  dir: string;
  home: string;
  env: NodeJS.ProcessEnv;
  /** Runs `bazil ARGS` with this home; never throws on a non-zero exit. */
  bazil(args: string[], options?: { cwd?: string; input?: string }): Promise<CliResult>;
  /** Like bazil(), but fails the test unless it exits 0; returns stdout. */
  ok(args: string[], options?: { cwd?: string }): Promise<string>;
  cleanup(): Promise<void>;
}

export async function requireFuse(): Promise<void> {
  await access('/dev/fuse', fsConstants.R_OK | fsConstants.W_OK).catch((err: unknown) => {
    assert.fail(`FUSE is unavailable: /dev/fuse cannot be opened read-write (${String(err)}); these tests need it`);
  });
  loadFuseNative();
}

export async function makeHome(volumes: string[] = ['v']): Promise<TestHome> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-mount-'));
  const home = join(dir, 'home');
  const env = { ...process.env, BAZIL_HOME: home };
  const bazil = (args: string[], options: { cwd?: string; input?: string } = {}): Promise<CliResult> =>
    new Promise((resolvePromise) => {
      const child = spawn(process.execPath, [CLI_MAIN, ...args], { env, cwd: options.cwd ?? dir, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
      child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      child.stdin.end(options.input ?? '');
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolvePromise({ code: code ?? (signal === null ? -1 : 128), stdout, stderr });
      });
    });
  const ok = async (args: string[], options: { cwd?: string } = {}): Promise<string> => {
    const r = await bazil(args, options);
    assert.equal(r.code, 0, `bazil ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const t: TestHome = {
    dir, home, env, bazil, ok,
    async cleanup() {
      await bazil(['daemon', 'stop']);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await ok(['init']);
  for (const v of volumes) await ok(['volume', 'create', v]);
  return t;
}

export interface TestMount {
  dir: string;
  /** The daemon's pid. */
  pid: number;
  unmount(): Promise<void>;
}

/** `bazil mount VOL DIR` (DIR created under the home's temp dir). */
export async function mount(h: TestHome, volume: string, name = 'mnt'): Promise<TestMount> {
  const dir = join(h.dir, name);
  await mkdir(dir, { recursive: true });
  const out = await h.ok(['--json', 'mount', volume, dir]);
  const info = JSON.parse(out) as { dir: string; pid: number };
  assert.equal(info.dir, dir);
  return { dir, pid: info.pid, unmount: () => unmount(h, dir, info.pid) };
}

/** Unmounts through the CLI; if that fails, frees the mount by force and kills the daemon, so no test leaves a mount behind. */
export async function unmount(h: TestHome, dir: string, pid?: number): Promise<void> {
  const r = await h.bazil(['umount', dir]);
  if ((await findFuseConnection(dir)) === undefined && r.code === 0) return;
  await h.bazil(['umount', '--force', dir]);
  if ((await findFuseConnection(dir)) !== undefined) await freeWedgedMount(dir);
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  assert.equal(r.code, 0, `bazil umount ${dir} failed: ${r.stderr}`);
}

export async function sh(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<string> {
  const { stdout } = await execFileP(cmd, args, { cwd: options.cwd, env: options.env, timeout: CLI_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}
