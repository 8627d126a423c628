// The home's daemon: started by `bazil mount`, several mounts, bad requests,
// `daemon status|stop`, and SIGKILL of the daemon: the dead mount is freed
// by `bazil umount --force`, and the volume remounts with everything that
// was fsynced, fsck clean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { findFuseConnection } from '../../src/fuse/binding.js';
import { makeHome, mount, requireFuse, unmount } from './mount-harness.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** stat of a path in a child process, which may hang or fail on a dead mount: the errno or 'OK'. */
function statInChild(path: string): Promise<string> {
  return new Promise((resolve) => {
    execFile('stat', ['-c', '%s', path], { timeout: 5000 }, (err, _stdout, stderr) => {
      if (err === null) return resolve('OK');
      resolve(err.killed ? 'HANG' : stderr.trim());
    });
  });
}

test('daemon: two volumes mounted at once, status, mounts, bad requests, stop', { timeout: 90_000 }, async () => {
  await requireFuse();
  const h = await makeHome(['v', 'w']);
  try {
    assert.match(await h.ok(['daemon', 'status']), /no daemon runs/);
    const a = await mount(h, 'v', 'a');
    const b = await mount(h, 'w', 'b');
    try {
      assert.equal(a.pid, b.pid, 'one daemon holds both mounts');
      await writeFile(join(a.dir, 'in-v'), 'v\n');
      await writeFile(join(b.dir, 'in-w'), 'w\n');
      assert.equal(await readFile(join(a.dir, 'in-v'), 'utf8'), 'v\n');
      assert.ok(!existsSync(join(a.dir, 'in-w')));
      const status = JSON.parse(await h.ok(['--json', 'daemon', 'status'])) as { pid: number; mounts: { volume: string }[] };
      assert.equal(status.pid, a.pid);
      assert.deepEqual(status.mounts.map((m) => m.volume).sort(), ['v', 'w']);
      // Bad input: a volume that does not exist, a mount point in use, a file as mount point, unmounting what is not mounted.
      const missing = await h.bazil(['mount', 'nope', join(h.dir, 'a')]);
      assert.equal(missing.code, 1);
      await mkdir(join(h.dir, 'c'));
      const noVolume = await h.bazil(['mount', 'nope', join(h.dir, 'c')]);
      assert.match(noVolume.stderr, /BAZIL_NOT_FOUND/);
      const busy = await h.bazil(['mount', 'w', a.dir]);
      assert.match(busy.stderr, /already/);
      await writeFile(join(h.dir, 'plain'), '');
      const notDir = await h.bazil(['mount', 'v', join(h.dir, 'plain')]);
      assert.match(notDir.stderr, /BAZIL_NOT_A_DIRECTORY/);
      const notMounted = await h.bazil(['umount', join(h.dir, 'c')]);
      assert.equal(notMounted.code, 1);
      assert.match(notMounted.stderr, /nothing is mounted/);
      // A malformed request on the socket gets an error line and the daemon carries on.
      const reply = await new Promise<string>((resolve, reject) => {
        const s = connect(join(h.home, 'daemon.sock'));
        let text = '';
        s.on('data', (d) => (text += d.toString()));
        s.on('close', () => resolve(text));
        s.on('error', reject);
        s.end('{"op":"explode"}\n');
      });
      assert.match(reply, /BAZIL_BAD_ARGUMENT/);
      assert.equal(await readFile(join(b.dir, 'in-w'), 'utf8'), 'w\n');
    } finally {
      await a.unmount();
      await b.unmount().catch(() => undefined);
    }
    // The last unmount stops a daemon started on demand.
    for (let i = 0; i < 100 && alive(a.pid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(a.pid), false);
    // daemon stop unmounts first.
    const c = await mount(h, 'v', 'c');
    assert.equal(await readFile(join(c.dir, 'in-v'), 'utf8'), 'v\n');
    await h.ok(['daemon', 'stop']);
    assert.equal(await findFuseConnection(c.dir), undefined);
    assert.equal(alive(c.pid), false);
    assert.ok(!existsSync(join(h.home, 'daemon.sock')));
  } finally {
    await h.cleanup();
  }
});

test('SIGKILL of the daemon: umount --force frees the mount, the volume remounts with fsynced data, fsck clean', { timeout: 90_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    const m = await mount(h, 'v');
    const data = randomBytes(3 * 1024 * 1024 + 17);
    try {
      await writeFile(join(m.dir, 'kept'), data, { flush: true });
      await mkdir(join(m.dir, 'dir'));
      process.kill(m.pid, 'SIGKILL');
      for (let i = 0; i < 100 && alive(m.pid); i++) await new Promise((r) => setTimeout(r, 20));
      // The dead mount fails (ENOTCONN) or hangs; either way nothing in this process touches it.
      assert.notEqual(await statInChild(join(m.dir, 'kept')), 'OK');
      assert.ok((await findFuseConnection(m.dir)) !== undefined, 'the dead mount is still there');
      // The socket file is stale; status sees no daemon, and cleans it.
      assert.match(await h.ok(['daemon', 'status']), /no daemon runs/);
      const plain = await h.bazil(['umount', m.dir]);
      assert.equal(plain.code, 1);
      assert.match(plain.stderr, /--force/);
      await h.ok(['umount', '--force', m.dir]);
      assert.equal(await findFuseConnection(m.dir), undefined);
    } finally {
      await unmount(h, m.dir, m.pid).catch(() => undefined);
    }
    const again = await mount(h, 'v');
    try {
      assert.ok((await readFile(join(again.dir, 'kept'))).equals(data));
      const fsck = await h.bazil(['fsck', 'v']);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    } finally {
      await again.unmount();
    }
  } finally {
    await h.cleanup();
  }
});
