// The POSIX conformance table (posix-cases.ts) against a local directory,
// which proves the expectations, and against a Bazil mount served by the
// home's daemon. The unprivileged cases run as a test user created here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeHome, mount, requireFuse } from './mount-harness.js';
import { POSIX_CASES, RUNNER_PY, USER_GID, USER_UID, type PosixCase } from './posix-cases.js';

const run = promisify(execFile);
const TEST_USER = 'bazil-test';
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

interface Outcome {
  id: string;
  ok?: boolean;
  value?: unknown;
  errno?: string;
  setup_failed?: string;
  checks?: { ok: boolean; value?: unknown; errno?: string }[];
}

async function testUser(): Promise<{ uid: number; gid: number }> {
  const lookup = async (): Promise<{ uid: number; gid: number }> => ({
    uid: Number((await run('id', ['-u', TEST_USER])).stdout.trim()),
    gid: Number((await run('id', ['-g', TEST_USER])).stdout.trim()),
  });
  try {
    return await lookup();
  } catch {
    await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', TEST_USER]).catch(() => undefined);
    return lookup();
  }
}

async function runner(phase: string, root: string, cases: PosixCase[], user: { uid: number; gid: number }, asUser: boolean): Promise<Outcome[]> {
  const args = ['-c', RUNNER_PY, phase, root, String(user.uid), String(user.gid)];
  const [cmd, argv] = asUser
    ? ['setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', PYTHON, ...args]]
    : [PYTHON, args];
  const child = execFile(cmd, argv as string[], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  child.stdin!.end(JSON.stringify(cases));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (s: string) => (stdout += s));
  child.stderr!.on('data', (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, `runner ${phase} failed: ${stderr}`);
  return JSON.parse(stdout) as Outcome[];
}

function expected(v: unknown, user: { uid: number; gid: number }): unknown {
  return v === USER_UID ? user.uid : v === USER_GID ? user.gid : v;
}

/** Runs the whole table under root; returns one line per mismatch (known bugs apart, when `mount`). */
async function runTable(root: string, user: { uid: number; gid: number }, mount: boolean, known: string[] = []): Promise<string[]> {
  const all: string[] = [];
  for (const o of await runner('setup', root, POSIX_CASES, user, false)) all.push(`${o.id}: setup step ${o.setup_failed} failed with ${o.errno}`);
  const asRoot = POSIX_CASES.filter((c) => c.as !== 'user');
  const asUser = POSIX_CASES.filter((c) => c.as === 'user');
  const results = [...(await runner('run', root, asRoot, user, false)), ...(await runner('run', root, asUser, user, true))];
  const checks = await runner('check', root, POSIX_CASES, user, false);
  for (const c of POSIX_CASES) {
    const problems: string[] = [];
    const r = results.find((x) => x.id === c.id)!;
    const got = r.ok === true ? 'OK' : r.errno;
    if (got !== c.expect) problems.push(`${c.id}: expected ${c.expect}, got ${got}`);
    if (c.result !== undefined && r.ok === true) {
      try {
        assert.deepEqual(r.value, c.result);
      } catch {
        problems.push(`${c.id}: result ${JSON.stringify(r.value)}, expected ${JSON.stringify(c.result)}`);
      }
    }
    const done = checks.find((x) => x.id === c.id)!.checks ?? [];
    (c.checks ?? []).forEach((check, i) => {
      const d = done[i]!;
      const where = `${c.id}: check ${check.step.join(' ')}`;
      if (check.errno !== undefined) {
        if (d.ok || d.errno !== check.errno) problems.push(`${where}: expected ${check.errno}, got ${d.ok ? 'OK' : d.errno}`);
        return;
      }
      if (!d.ok) return void problems.push(`${where}: failed with ${d.errno}`);
      if (check.equals !== undefined) {
        try {
          assert.deepEqual(d.value, check.equals);
        } catch {
          problems.push(`${where}: ${JSON.stringify(d.value)}, expected ${JSON.stringify(check.equals)}`);
        }
      }
      for (const [field, want] of Object.entries(check.fields ?? {})) {
        const have = (d.value as Record<string, unknown>)[field];
        if (have !== expected(want, user)) problems.push(`${where}: ${field} ${String(have)}, expected ${String(expected(want, user))}`);
      }
    });
    if (mount && c.mountKnownBug !== undefined && problems.length > 0) known.push(`${c.id} (${c.mountKnownBug}): ${problems.join('; ')}`);
    else all.push(...problems);
  }
  return all;
}

test('POSIX table: a local directory gives the expected answers', { timeout: 120_000 }, async () => {
  const user = await testUser();
  const dir = await mkdtemp(join(tmpdir(), 'bazil-posix-local-'));
  try {
    await chmod(dir, 0o755);
    const root = join(dir, 'root');
    await mkdir(root, { mode: 0o755 });
    const problems = await runTable(root, user, false);
    assert.deepEqual(problems, [], `the table's expectations do not hold locally:\n${problems.join('\n')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('POSIX table: a Bazil mount gives the same answers', { timeout: 180_000 }, async (t) => {
  await requireFuse();
  const user = await testUser();
  const h = await makeHome();
  try {
    await chmod(h.dir, 0o755);
    const m = await mount(h, 'v');
    try {
      const known: string[] = [];
      const problems = await runTable(m.dir, user, true, known);
      for (const k of known) t.diagnostic(`known bug, not failed: ${k}`);
      assert.deepEqual(problems, [], `the mount differs from POSIX:\n${problems.join('\n')}`);
    } finally {
      await m.unmount();
    }
    const fsck = await h.bazil(['fsck', 'v']);
    assert.equal(fsck.code, 0, `fsck after the table: ${fsck.stdout}${fsck.stderr}`);
  } finally {
    await h.cleanup();
  }
});
