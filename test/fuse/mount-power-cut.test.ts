// A power cut of the daemon during a write burst through the mount: the
// daemon (power-cut-daemon.ts) keeps its volume's arenas on the
// fault-injecting file layer and cuts the power mid-burst. Every file whose
// fsync returned must be there, byte for byte, after `bazil umount --force`
// and a fresh mount, and fsck must be clean. The mount defers the
// durability of metadata (docs/mount.md, "Durability"), so a second burst
// checks that an fsync of a directory makes its entries durable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFuseConnection } from '../../src/fuse/binding.js';
import { makeHome, mount, requireFuse, unmount } from './mount-harness.js';

const DAEMON = fileURLToPath(new URL('./power-cut-daemon.js', import.meta.url));
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const SLOW = process.env.BAZIL_SLOW === '1';
const SYNCED_BEFORE_CUT = SLOW ? 60 : 12;

// Writes files of random sizes one after another, each fsynced and closed;
// prints "synced NAME SHA256" after each fsync returns; stops at the first error.
const WRITER_PY = String.raw`
import hashlib, os, random, sys
d = sys.argv[1]
r = random.Random(int(sys.argv[2]))
i = 0
while True:
    name = 'f%04d' % i
    data = os.urandom(r.choice([0, 1, 100, 4096, 70000, 300000, 1500000]))
    try:
        fd = os.open(os.path.join(d, name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    except OSError as e:
        print('error', e.errno, flush=True)
        sys.exit(0)
    print('synced', name, hashlib.sha256(data).hexdigest(), flush=True)
    i += 1
`;

function startDaemon(home: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [DAEMON, home], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => s.includes('ready') && resolve(child));
    child.once('exit', (code) => reject(new Error(`the power-cut daemon exited (${code}): ${stderr}`)));
  });
}

// Creates empty files, a directory and a rename, then fsyncs the directory;
// prints "synced I" after each directory fsync returns.
const DIR_WRITER_PY = String.raw`
import os, sys
d = sys.argv[1]
i = 0
while True:
    try:
        for k in range(4):
            os.close(os.open(os.path.join(d, 'e%04d-%d' % (i, k)), os.O_CREAT | os.O_WRONLY, 0o644))
        os.mkdir(os.path.join(d, 'd%04d' % i))
        os.rename(os.path.join(d, 'e%04d-0' % i), os.path.join(d, 'r%04d' % i))
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
    except OSError as e:
        print('error', e.errno, flush=True)
        sys.exit(0)
    print('synced', i, 'x', flush=True)
    i += 1
`;

/**
 * Mounts volume v in a power-cut daemon, runs `writerPy` in the mount until
 * it has printed `cutAfter` "synced A B" lines, cuts the daemon's power,
 * frees the mount and returns the synced lines' [A, B] pairs.
 */
async function burstAndCut(h: Awaited<ReturnType<typeof makeHome>>, dir: string, writerPy: string, cutAfter: number): Promise<Map<string, string>> {
  let daemon: ChildProcess | undefined;
  try {
    daemon = await startDaemon(h.home);
    await mkdir(dir);
    await h.ok(['mount', 'v', dir]);
    const synced = new Map<string, string>();
    const writer = spawn(PYTHON, ['-c', writerPy, dir, '7'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const writerDone = new Promise<void>((resolve) => writer.once('close', () => resolve()));
    let buffered = '';
    await new Promise<void>((resolve) => {
      writer.stdout!.setEncoding('utf8').on('data', (s: string) => {
        buffered += s;
        for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
          const [word, name, digest] = buffered.slice(0, nl).split(' ');
          buffered = buffered.slice(nl + 1);
          if (word === 'synced') synced.set(name!, digest!);
          if (synced.size === cutAfter) {
            daemon!.kill('SIGUSR2');
            resolve();
          }
        }
      });
      writer.once('close', () => resolve());
    });
    await writerDone;
    assert.ok(synced.size >= cutAfter, `only ${synced.size} were synced before the writer stopped`);
    await new Promise((resolve) => (daemon!.exitCode !== null || daemon!.signalCode !== null ? resolve(null) : daemon!.once('exit', resolve)));
    assert.equal(daemon.signalCode, 'SIGKILL');
    await h.ok(['umount', '--force', dir]);
    assert.equal(await findFuseConnection(dir), undefined);
    return synced;
  } finally {
    if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
  }
}

test('power cut of the daemon mid-burst loses nothing whose fsync returned', { timeout: 120_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  const dir = join(h.dir, 'mnt');
  try {
    const synced = await burstAndCut(h, dir, WRITER_PY, SYNCED_BEFORE_CUT);
    const again = await mount(h, 'v');
    try {
      for (const [name, digest] of synced) {
        const data = await readFile(join(again.dir, name));
        assert.equal(createHash('sha256').update(data).digest('hex'), digest, `${name} lost or changed by the power cut`);
      }
    } finally {
      await again.unmount();
    }
    const fsck = await h.bazil(['fsck', 'v']);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  } finally {
    if ((await findFuseConnection(dir)) !== undefined) await unmount(h, dir).catch(() => undefined);
    await h.cleanup();
  }
});

test('power cut of the daemon after an fsync of a directory keeps its new entries, directories and renames', { timeout: 120_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  const dir = join(h.dir, 'mnt');
  try {
    const synced = await burstAndCut(h, dir, DIR_WRITER_PY, SYNCED_BEFORE_CUT);
    const again = await mount(h, 'v');
    try {
      for (const i of synced.keys()) {
        const n = i.padStart(4, '0');
        const names = [`e${n}-1`, `e${n}-2`, `e${n}-3`, `d${n}`, `r${n}`];
        for (const name of names) await stat(join(again.dir, name)).catch(() => assert.fail(`${name} was made before a directory fsync returned, and is gone after the power cut`));
        assert.equal(await stat(join(again.dir, `e${n}-0`)).then(() => true, () => false), false, `e${n}-0 was renamed before the fsync`);
      }
    } finally {
      await again.unmount();
    }
    const fsck = await h.bazil(['fsck', 'v']);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  } finally {
    if ((await findFuseConnection(dir)) !== undefined) await unmount(h, dir).catch(() => undefined);
    await h.cleanup();
  }
});
