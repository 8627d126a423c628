// The patched fuse-native, through a real mount: memfs-child.ts serves a tiny
// in-memory filesystem in a child process, and this process checks it only
// with async fs calls and other child processes (never synchronously: see
// DESIGN.md, "FUSE in tests").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, chmod, constants as fsConstants, link, mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findFuseConnection, freeWedgedMount, loadFuseNative } from '../../src/fuse/binding.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./memfs-child.js', import.meta.url));
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
const CMD_TIMEOUT_MS = 10_000;

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout: CMD_TIMEOUT_MS });
  return stdout;
}

async function requireFuse(): Promise<void> {
  try {
    await access('/dev/fuse', fsConstants.R_OK | fsConstants.W_OK);
  } catch (err) {
    assert.fail(`FUSE is unavailable: /dev/fuse cannot be opened read-write (${String(err)}); these tests need it`);
  }
  // Throws a message naming scripts/build-fuse.sh when the patched build is missing.
  loadFuseNative();
}

/** Starts the memfs child on mnt; resolves once it reports the mount ready. */
function startChild(mnt: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CHILD, mnt], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`memfs child not ready after 10 s; stderr: ${stderr}`)), 10_000);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      if (s.includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`memfs child exited (${code ?? signal}) before mounting; stderr: ${stderr}`));
    });
  });
}

/** Asks the child to unmount and exit; kills it and frees the mount if that fails. */
async function stopChild(child: ChildProcess | undefined, mnt: string): Promise<void> {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin!.end('unmount\n');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 5000))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      child.kill('SIGKILL');
      await exited;
    }
  }
  if ((await findFuseConnection(mnt)) !== undefined) await freeWedgedMount(mnt);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

test('patched fuse-native: ns times, shared inodes, caller identity, timeouts', { timeout: 30_000 }, async (t) => {
  await requireFuse();
  const parent = await mkdtemp(join(tmpdir(), 'bazil-fuse-test-'));
  const mnt = join(parent, 'mnt');
  // Other users (the setpriv checks) must be able to reach the mount point.
  await chmod(parent, 0o755);
  await mkdir(mnt);
  let child: ChildProcess | undefined;
  try {
    child = await startChild(mnt);

    await t.test('utimens passes atime and mtime apart, with nanoseconds', async () => {
      const file = join(mnt, 'hello.txt');
      const atime = 1_000_000_000_123_456_789n;
      const mtime = 1_200_000_000_987_654_321n;
      await sh('python3', ['-c', 'import os,sys; os.utime(sys.argv[1], ns=(int(sys.argv[2]), int(sys.argv[3])))', file, `${atime}`, `${mtime}`]);
      const st = await stat(file, { bigint: true });
      assert.equal(st.atimeNs, atime);
      assert.equal(st.mtimeNs, mtime);
      assert.equal((await sh('stat', ['-c', '%X %Y', file])).trim(), '1000000000 1200000000');

      // Only mtime: atime arrives as UTIME_OMIT and stays.
      await sh('touch', ['-m', '-d', '2005-06-07 08:09:10.555555555 UTC', file]);
      const st2 = await stat(file, { bigint: true });
      assert.equal(st2.mtimeNs, 1_118_131_750_555_555_555n);
      assert.equal(st2.atimeNs, atime);
    });

    await t.test('hard links share an inode number (use_ino)', async () => {
      const a = await stat(join(mnt, 'hello.txt'), { bigint: true });
      const b = await stat(join(mnt, 'link.txt'), { bigint: true });
      const other = await stat(join(mnt, 'dir', 'inner.txt'), { bigint: true });
      assert.equal(a.ino, b.ino);
      assert.notEqual(a.ino, other.ino);
      await link(join(mnt, 'hello.txt'), join(mnt, 'third.txt'));
      const c = await stat(join(mnt, 'third.txt'), { bigint: true });
      assert.equal(c.ino, a.ino);
      assert.equal(c.nlink, 3n);
      // readdir reports the same numbers.
      const listed = new Map(
        (await sh('ls', ['-i1', mnt]))
          .trim()
          .split('\n')
          .map((line) => {
            const [ino, name] = line.trim().split(/\s+/);
            return [name, BigInt(ino!)] as const;
          }),
      );
      assert.equal(listed.get('hello.txt'), a.ino);
      assert.equal(listed.get('link.txt'), a.ino);
      assert.equal(listed.get('third.txt'), a.ino);
    });

    await t.test("handlers see the caller's uid, gid and pid", async () => {
      const [pid, line] = (await sh('setpriv', [...NOBODY, 'sh', '-c', `echo $$; exec cat ${join(mnt, 'whoami')}`]))
        .trim()
        .split('\n');
      assert.equal(line?.trim(), `65534 65534 ${pid}`);
      assert.match((await readFile(join(mnt, 'whoami'), 'utf8')).trim(), /^0 0 \d+$/);

      const created = join(mnt, 'dir', 'nobody.txt');
      await sh('setpriv', [...NOBODY, 'touch', created]);
      const st = await stat(created);
      assert.equal(st.uid, 65534);
      assert.equal(st.gid, 65534);
    });

    await t.test('an operation slower than its timeout fails with ETIMEDOUT and never commits', async () => {
      const slow = join(mnt, 'slow-dir');
      const started = Date.now();
      await assert.rejects(mkdir(slow), (err: NodeJS.ErrnoException) => err.code === 'ETIMEDOUT');
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 900, `ETIMEDOUT came after ${elapsed} ms, not at the 300 ms timeout`);
      // Let the slow handler finish (1 s) and try to commit.
      await delay(1300);
      await assert.rejects(stat(slow), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
      assert.ok(!(await readdir(mnt)).includes('slow-dir'));
      const events = await readFile(join(mnt, 'events'), 'utf8');
      assert.match(events, /mkdir \/slow-dir aborted: fuse mkdir timed out after 300 ms/);
      assert.match(events, /mkdir \/slow-dir not committed: timed out/);
      // The filesystem still answers, and a fast mkdir commits.
      await mkdir(join(mnt, 'fast-dir'));
      assert.ok((await stat(join(mnt, 'fast-dir'))).isDirectory());
    });
  } finally {
    await stopChild(child, mnt);
    if ((await findFuseConnection(mnt)) === undefined) await rm(parent, { recursive: true, force: true });
  }
});

test('freeWedgedMount frees the mount of a server that stopped answering', { timeout: 20_000 }, async () => {
  await requireFuse();
  const parent = await mkdtemp(join(tmpdir(), 'bazil-fuse-test-'));
  const mnt = join(parent, 'mnt');
  await mkdir(mnt);
  let child: ChildProcess | undefined;
  try {
    child = await startChild(mnt);
    const connection = await findFuseConnection(mnt);
    assert.ok(connection !== undefined, 'the mount is not in /proc/self/mountinfo');
    // A stopped server answers nothing: any access to the mount would hang,
    // so from here on nothing touches it.
    child.kill('SIGSTOP');
    assert.equal(await freeWedgedMount(mnt), true);
    assert.equal(await findFuseConnection(mnt), undefined);
    assert.equal(await freeWedgedMount(mnt), false);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    }
    await stopChild(child, mnt);
    if ((await findFuseConnection(mnt)) === undefined) await rm(parent, { recursive: true, force: true });
  }
});
