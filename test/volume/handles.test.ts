// Open files through the volume facade: handles, partial writes, truncate,
// and the POSIX rules the FUSE mount relies on. Real volumes in a temporary
// home; nothing is mocked.

import { test } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { Volume } from '../../src/volume/volume.js';
import { decodeManifest } from '../../src/cas/manifest.js';

async function withHome(fn: (homeDir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-handles-test-'));
  try {
    const homeDir = join(dir, 'home');
    const { home } = await initHome(homeDir);
    await createVolume(home, 'v').finally(() => home.close());
    await fn(homeDir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function withVolume(fn: (volume: Volume, homeDir: string) => Promise<void>): Promise<void> {
  await withHome(async (homeDir) => {
    const volume = await Volume.open(homeDir, 'v');
    try {
      await fn(volume, homeDir);
    } finally {
      await volume.close();
    }
  });
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

/** Events in the log, counted by a replay. */
async function eventCount(v: Volume): Promise<number> {
  return (await v.rebuild()).events;
}

function errno(code: string, e: string): (err: unknown) => boolean {
  return (err: unknown) => {
    const x = err as { code?: string; data?: { errno?: string } };
    assert.equal(x.code, code, String(err));
    assert.equal(x.data?.errno, e, String(err));
    return true;
  };
}

test('two handles see each other\'s writes before any flush, and so do readFile, stat and streams', async () => {
  await withVolume(async (v) => {
    const a = await v.create('/f', { read: true, write: true, mode: 0o600 });
    const b = await v.open('/f', { read: true, write: true });
    assert.ok(a.id.equals(b.id));
    const before = await v.stat('/f');
    assert.equal(await a.write(0, Buffer.from('hello world')), 11);
    assert.equal((await b.read(0, 100)).toString(), 'hello world');
    await b.write(6, Buffer.from('WORLD!'));
    assert.equal((await a.read(0, 100)).toString(), 'hello WORLD!');
    assert.equal((await a.read(6, 3)).toString(), 'WOR');
    assert.equal((await a.read(100, 3)).length, 0, 'a read past the end is empty');
    assert.equal((await v.readFile('/f')).toString(), 'hello WORLD!');
    assert.equal((await v.readFile('/f', 6, 5)).toString(), 'WORLD');
    assert.equal((await collect(v.createReadStream('/f'))).toString(), 'hello WORLD!');
    const st = await v.stat('/f');
    assert.equal(st.size, 12);
    assert.equal(st.mode, 0o600);
    assert.ok(st.mtime >= before.mtime, 'mtime moves with an unflushed write');
    assert.equal((await v.getattr(a.id)).size, 12);
    await a.release();
    // b still holds the file open; its content is committed by a's release.
    await b.release();
    assert.equal((await v.readFile('/f')).toString(), 'hello WORLD!');
    assert.equal(v.openFileStats().files, 0);
  });
});

test('flush commits one event, a clean flush none; fsync\'d data survives a reopen', async () => {
  await withHome(async (homeDir) => {
    let v = await Volume.open(homeDir, 'v');
    try {
      const h = await v.create('/f', { write: true });
      const n0 = await eventCount(v);
      await h.write(0, Buffer.from('abc'));
      await h.write(3, Buffer.from('def'));
      await h.flush();
      assert.equal(await eventCount(v), n0 + 1, 'two writes, one flush: one set-content');
      await h.flush();
      await h.fsync();
      assert.equal(await eventCount(v), n0 + 1, 'a clean flush commits nothing');
      await h.write(1, Buffer.from('X'));
      await h.fsync();
      assert.equal(await eventCount(v), n0 + 2);
      await h.release();
    } finally {
      await v.close();
    }
    v = await Volume.open(homeDir, 'v');
    try {
      assert.equal((await v.readFile('/f')).toString(), 'aXcdef');
      const report = await v.fsck();
      assert.ok(report.ok, JSON.stringify(report.problems));
    } finally {
      await v.close();
    }
  });
});

test('release without a flush commits, and closing the volume flushes handles still open', async () => {
  await withHome(async (homeDir) => {
    let v = await Volume.open(homeDir, 'v');
    try {
      const h = await v.create('/a', { write: true });
      await h.write(0, Buffer.from('released'));
      await h.release();
      const k = await v.create('/b', { write: true });
      await k.write(0, Buffer.from('left open'));
    } finally {
      await v.close();
    }
    v = await Volume.open(homeDir, 'v');
    try {
      assert.equal((await v.readFile('/a')).toString(), 'released');
      assert.equal((await v.readFile('/b')).toString(), 'left open');
    } finally {
      await v.close();
    }
  });
});

test('O_APPEND writes at the end, O_TRUNC truncates with one event, O_EXCL refuses an existing name', async () => {
  await withVolume(async (v) => {
    await v.writeFile('/f', Buffer.from('0123456789'));
    const ap = await v.open('/f', { write: true, append: true });
    const rw = await v.open('/f', { read: true, write: true });
    await ap.write(0, Buffer.from('AB'));
    await rw.write(12, Buffer.from('CD'));
    await ap.write(3, Buffer.from('EF'));
    assert.equal((await rw.read(0, 100)).toString(), '0123456789ABCDEF');
    await ap.release();
    await rw.release();

    const n0 = await eventCount(v);
    const t = await v.open('/f', { write: true, truncate: true });
    assert.equal(await eventCount(v), n0 + 1, 'O_TRUNC is one event');
    assert.equal((await v.stat('/f')).size, 0);
    await t.release();
    assert.equal(await eventCount(v), n0 + 1, 'releasing a clean handle commits nothing');

    await assert.rejects(v.create('/f', { write: true, exclusive: true }), errno('BAZIL_ALREADY_EXISTS', 'EEXIST'));
    const again = await v.create('/f', { write: true });
    await again.write(0, Buffer.from('x'));
    await again.release();
    const trunc = await v.create('/f', { write: true, truncate: true });
    assert.equal((await v.stat('/f')).size, 0, 'create with truncate on an existing file truncates');
    await trunc.release();
    const fresh = await v.create('/g', { write: true, exclusive: true, truncate: true });
    assert.equal((await v.stat('/g')).size, 0);
    await fresh.release();
  });
});

test('sparse writes past the end read zeros; truncate down and up, by handle and by path', async () => {
  await withVolume(async (v) => {
    await v.writeFile('/f', Buffer.from('abcdefghij'));
    const h = await v.open('/f', { read: true, write: true });
    await h.write(100_000, Buffer.from('Z'));
    const expect = Buffer.alloc(100_001);
    Buffer.from('abcdefghij').copy(expect);
    expect[100_000] = 'Z'.charCodeAt(0);
    assert.ok((await h.read(0, 200_000)).equals(expect));
    await h.truncate(4);
    assert.equal((await h.read(0, 100)).toString(), 'abcd');
    await h.truncate(8);
    assert.ok((await h.read(0, 100)).equals(Buffer.from('abcd\0\0\0\0')), 'bytes cut by a truncate come back as zeros');
    await h.flush();
    assert.ok((await v.readFile('/f')).equals(Buffer.from('abcd\0\0\0\0')));
    await h.release();

    // By path: up (a pure size change), down, up again, with no handle open.
    await v.truncate('/f', 20);
    assert.ok((await v.readFile('/f')).equals(Buffer.concat([Buffer.from('abcd'), Buffer.alloc(16)])));
    await v.truncate('/f', 2);
    await v.truncate('/f', 6);
    assert.ok((await v.readFile('/f')).equals(Buffer.from('ab\0\0\0\0')));
    await v.rebuild();
    assert.ok((await v.readFile('/f')).equals(Buffer.from('ab\0\0\0\0')), 'the log replays to the same content');
    const report = await v.fsck();
    assert.ok(report.ok, JSON.stringify(report.problems));
  });
});

test('unlink while open: handles keep reading and writing, getattr says nlink 0, nothing reaches the tree', async () => {
  await withVolume(async (v) => {
    await v.mkdir('/d');
    const h = await v.create('/d/f', { read: true, write: true });
    await h.write(0, Buffer.from('before'));
    await h.flush();
    const id = h.id;
    await v.unlink('/d/f');
    const afterUnlink = await eventCount(v);
    await assert.rejects(v.stat('/d/f'), errno('BAZIL_NOT_FOUND', 'ENOENT'));
    await h.write(6, Buffer.from(' and after'));
    assert.equal((await h.read(0, 100)).toString(), 'before and after');
    const attrs = await v.getattr(id);
    assert.equal(attrs.nlink, 0);
    assert.equal(attrs.size, 16);
    const other = await v.openId(id, { read: true });
    assert.equal((await other.read(0, 6)).toString(), 'before');
    await h.fsync();
    // fsync of an unlinked file commits nothing, and its state stays live.
    assert.equal((await v.getattr(id)).size, 16);
    assert.equal((await h.read(0, 100)).toString(), 'before and after');
    await h.release();
    assert.equal((await other.read(7, 3)).toString(), 'and');
    await other.release();
    assert.equal(await eventCount(v), afterUnlink, 'writes to an unlinked file never reach the log');
    await assert.rejects(v.getattr(id), errno('BAZIL_NOT_FOUND', 'ENOENT'));
    await assert.rejects(v.openId(id, { read: true }), errno('BAZIL_NOT_FOUND', 'ENOENT'));
    assert.deepEqual(await v.readdir('/d'), []);
    assert.deepEqual((await v.readdir('/')).map((e) => e.name), ['d']);
    const report = await v.fsck();
    assert.ok(report.ok, JSON.stringify(report.problems));
  });
});

test('rename while open: the handle follows the inode', async () => {
  await withVolume(async (v) => {
    await v.mkdir('/x');
    const h = await v.create('/a', { read: true, write: true });
    await h.write(0, Buffer.from('one'));
    await v.rename('/a', '/x/b');
    await h.write(3, Buffer.from('two'));
    assert.equal((await v.readFile('/x/b')).toString(), 'onetwo');
    await h.release();
    assert.equal((await v.readFile('/x/b')).toString(), 'onetwo');
    await assert.rejects(v.stat('/a'), errno('BAZIL_NOT_FOUND', 'ENOENT'));
  });
});

test('misuse and bad input fail with stable codes and errnos', async () => {
  await withVolume(async (v) => {
    await v.mkdir('/d');
    await v.symlink('/d', '/link');
    await v.mknod('/fifo', 'fifo', { mode: 0o600 });
    assert.equal((await v.stat('/fifo')).kind, 'fifo');
    await assert.rejects(v.mknod('/fifo', 'socket', {}), errno('BAZIL_ALREADY_EXISTS', 'EEXIST'));
    await assert.rejects(v.open('/missing', { read: true }), errno('BAZIL_NOT_FOUND', 'ENOENT'));
    await assert.rejects(v.open('/d', { write: true }), errno('BAZIL_IS_A_DIRECTORY', 'EISDIR'));
    await assert.rejects(v.open('/link', { read: true }), errno('BAZIL_BAD_ARGUMENT', 'ELOOP'));
    await assert.rejects(v.open('/fifo', { read: true }), errno('BAZIL_BAD_ARGUMENT', 'EINVAL'));
    await assert.rejects(v.create('/nope/f', { write: true }), errno('BAZIL_NOT_FOUND', 'ENOENT'));
    await assert.rejects(v.create('/d', { write: true }), errno('BAZIL_IS_A_DIRECTORY', 'EISDIR'));
    await assert.rejects(v.truncate('/d', 0), errno('BAZIL_IS_A_DIRECTORY', 'EISDIR'));
    await assert.rejects(v.openId(Buffer.alloc(32, 7), { read: true }), errno('BAZIL_NOT_FOUND', 'ENOENT'));

    const ro = await v.create('/f', { read: true });
    await assert.rejects(ro.write(0, Buffer.from('x')), errno('BAZIL_BAD_ARGUMENT', 'EBADF'));
    await assert.rejects(ro.truncate(0), errno('BAZIL_BAD_ARGUMENT', 'EINVAL'));
    const wo = await v.open('/f', { write: true });
    await assert.rejects(wo.read(0, 1), errno('BAZIL_BAD_ARGUMENT', 'EBADF'));
    await assert.rejects(wo.write(-1, Buffer.from('x')), errno('BAZIL_BAD_ARGUMENT', 'EINVAL'));
    await assert.rejects(wo.write(1.5, Buffer.from('x')), errno('BAZIL_BAD_ARGUMENT', 'EINVAL'));
    await assert.rejects(wo.truncate(-3), errno('BAZIL_BAD_ARGUMENT', 'EINVAL'));
    await assert.rejects(ro.read(-1, 1), errno('BAZIL_BAD_ARGUMENT', 'EINVAL'));
    await assert.rejects(ro.read(0, -1), errno('BAZIL_BAD_ARGUMENT', 'EINVAL'));
    assert.equal((await ro.read(2 ** 50, 10)).length, 0, 'a read far past the end is short, not EFBIG');
    await assert.rejects(wo.write(2 ** 44, Buffer.from('x')), errno('BAZIL_FILE_TOO_LARGE', 'EFBIG'));
    await assert.rejects(wo.truncate(2 ** 45), errno('BAZIL_FILE_TOO_LARGE', 'EFBIG'));
    await assert.rejects(v.truncate('/f', -1), errno('BAZIL_BAD_ARGUMENT', 'EINVAL'));
    assert.equal((await v.stat('/f')).size, 0, 'failed calls changed nothing');
    await ro.release();
    await assert.rejects(ro.read(0, 1), errno('BAZIL_BAD_ARGUMENT', 'EBADF'));
    await assert.rejects(ro.release(), errno('BAZIL_BAD_ARGUMENT', 'EBADF'));
    const aborted = AbortSignal.abort();
    await assert.rejects(wo.write(0, Buffer.from('x'), { signal: aborted }), { code: 'BAZIL_ABORTED' });
    await assert.rejects(v.open('/f', { read: true }, { signal: aborted }), { code: 'BAZIL_ABORTED' });
    await wo.release();

    const s = await v.statfs();
    assert.equal(s.namemax, 255);
    assert.ok(s.bsize > 0 && s.blocks > 0 && s.bavail <= s.blocks);
  });
});

test('dirty memory stays bounded: a big sequential write streams into the content store', async () => {
  await withVolume(async (v) => {
    const total = (process.env.BAZIL_SLOW === '1' ? 256 : 48) * 1024 * 1024;
    const piece = Buffer.alloc(128 * 1024);
    const h = await v.create('/big', { write: true, read: true });
    // Spills splice in the background, yielding often: other calls must not wait behind them for long.
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    let peak = 0;
    for (let at = 0; at < total; at += piece.length) {
      piece.writeUInt32LE(at, 0);
      piece.writeUInt32LE(at ^ 0x5a5a5a5a, 64 * 1024);
      await h.write(at, piece);
      peak = Math.max(peak, v.openFileStats().dirtyBytes);
    }
    // Writers wait (backpressure) once twice the 16 MiB file limit is held.
    assert.ok(peak <= 32 * 1024 * 1024 + piece.length, `peak dirty bytes ${peak}`);
    await h.release();
    lag.disable();
    const maxLagMs = lag.max / 1e6;
    assert.ok(maxLagMs < 500, `the event loop stalled for ${maxLagMs.toFixed(0)} ms`);
    assert.equal(v.openFileStats().dirtyBytes, 0);
    const back = await v.readFile('/big', total - 256 * 1024, 256 * 1024);
    assert.equal(back.length, 256 * 1024);
    assert.equal(back.readUInt32LE(0), total - 256 * 1024);
    assert.equal(back.readUInt32LE(64 * 1024), ((total - 256 * 1024) ^ 0x5a5a5a5a) >>> 0);
    assert.equal(back.readUInt32LE(128 * 1024), total - 128 * 1024);
    assert.equal((await v.stat('/big')).size, total);
  });
});

test('utimens after unflushed writes keeps the explicit mtime (cp -p, tar, rsync -t)', async () => {
  await withVolume(async (v) => {
    const h = await v.create('/f', { write: true });
    await h.write(0, Buffer.from('data'));
    await v.utimens('/f', null, 1_000_000_000_123_456_789n);
    await h.release();
    const st = await v.stat('/f');
    assert.equal(st.mtime, 1_000_000_000_123_456_789n);
    assert.equal((await v.readFile('/f')).toString(), 'data');
  });
});

test('reads during a flush in flight see every write, and the flush commits only what it took', async () => {
  await withVolume(async (v) => {
    const h = await v.create('/f', { read: true, write: true });
    await h.write(0, Buffer.from('first '));
    const flushing = h.flush();
    await h.write(6, Buffer.from('second'));
    assert.equal((await v.readFile('/f')).toString(), 'first second', 'a read does not wait for the flush');
    await flushing;
    assert.equal((await v.stat('/f')).size, 12, 'the unflushed second write still shows');
    await h.fsync();
    await h.release();
    assert.equal((await v.readFile('/f')).toString(), 'first second');
    await v.rebuild();
    assert.equal((await v.readFile('/f')).toString(), 'first second');
  });
});

test('a 1-byte write into a big file keeps nearly every chunk reference of its manifest', async () => {
  await withVolume(async (v) => {
    const size = 8 * 1024 * 1024;
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4) data.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
    await v.writeFile('/big', data);
    const ids = async (): Promise<string[]> => {
      const m = decodeManifest((await v.stat('/big')).manifest!);
      return m.entries.map((e) => (e.kind === 'hole' ? 'hole' : e.id.toString('hex')));
    };
    const before = await ids();
    const h = await v.open('/big', { write: true });
    await h.write(size / 2 + 12_345, Buffer.from([data[size / 2 + 12_345]! ^ 1]));
    await h.release();
    const after = await ids();
    const kept = after.filter((id) => before.includes(id)).length;
    assert.ok(before.length > 60, `${before.length} chunks`);
    assert.ok(kept >= before.length - 10, `${kept} of ${before.length} chunk references kept`);
    data[size / 2 + 12_345] ^= 1;
    assert.ok((await v.readFile('/big')).equals(data));
  });
});

test('an aborted flush commits nothing and loses nothing: the next flush commits it all', async () => {
  await withVolume(async (v) => {
    const h = await v.create('/f', { read: true, write: true });
    await h.write(0, Buffer.from('kept'));
    const controller = new AbortController();
    const flushing = h.flush({ signal: controller.signal });
    controller.abort();
    await assert.rejects(flushing, { code: 'BAZIL_ABORTED' });
    assert.equal((await v.readFile('/f')).toString(), 'kept');
    await h.release();
    await v.rebuild();
    assert.equal((await v.readFile('/f')).toString(), 'kept', 'the release committed what the aborted flush did not');
  });
});
