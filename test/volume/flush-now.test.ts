// FileHandle.flushNow/releaseNow (src/volume/file-handle.ts): the mount
// answers a close's flush and release in the FUSE callback when they have
// nothing to do. They must say so only then: never with unflushed writes
// (of any handle on the file) or a commit in flight, never on a released
// handle or a closed volume, and never change what the log holds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Volume } from '../../src/volume/volume.js';
import { withTempVolume } from '../lib/temp-volume.js';

function withVolume(fn: (volume: Volume, homeDir: string) => Promise<void>): Promise<void> {
  return withTempVolume('bazil-flush-now-test-', fn);
}

function errno(code: string, e: string): (err: unknown) => boolean {
  return (err: unknown) => {
    const x = err as { code?: string; data?: { errno?: string } };
    assert.equal(x.code, code, String(err));
    assert.equal(x.data?.errno, e, String(err));
    return true;
  };
}

test('a clean handle flushes and releases at once without an event; a dirty one, or one with a commit in flight, does not', async () => {
  await withVolume(async (v, homeDir) => {
    const fresh = await v.create('/a', { mode: 0o644, read: true, write: true });
    const before = (await v.rebuild()).events;
    assert.equal(fresh.flushNow(), true);
    assert.equal(fresh.releaseNow(), true);
    assert.equal((await v.rebuild()).events, before, 'a clean flush and release append nothing');
    assert.throws(() => fresh.flushNow(), errno('BAZIL_BAD_ARGUMENT', 'EBADF'));
    assert.throws(() => fresh.releaseNow(), errno('BAZIL_BAD_ARGUMENT', 'EBADF'));
    await assert.rejects(fresh.release(), errno('BAZIL_BAD_ARGUMENT', 'EBADF'));

    // Unflushed writes, through this handle or another on the same file.
    const h1 = await v.open('/a', { read: true, write: true });
    const h2 = await v.open('/a', { read: true });
    await h1.write(0, Buffer.from('hello'));
    assert.equal(h1.flushNow(), false);
    assert.equal(h2.flushNow(), false);
    assert.equal(h2.releaseNow(), false, 'another handle\'s unflushed writes keep a release from being answered at once');
    // A flush started and not landed yet: still not clean.
    const flushing = h1.flush();
    assert.equal(h1.flushNow(), false);
    await flushing;
    assert.equal(h1.flushNow(), true);
    assert.equal(h2.releaseNow(), true);
    // A dirty release goes the long way and commits the writes.
    await h1.write(5, Buffer.from(' world'));
    assert.equal(h1.releaseNow(), false);
    await h1.release();
    assert.equal((await v.readFile('/a')).toString(), 'hello world');
    assert.equal((await v.stat('/a')).size, 11);

    // An unlinked file's unflushed writes stay with its handle until it goes: not clean either.
    const h3 = await v.open('/a', { read: true, write: true });
    await h3.write(0, Buffer.from('J'));
    await v.unlink('/a');
    assert.equal(h3.releaseNow(), false);
    await h3.release();

    // A closed volume answers what flush answers.
    const h4 = await v.create('/b', { read: true, write: true });
    await v.close();
    assert.throws(() => h4.flushNow(), (err: unknown) => (err as { code?: string }).code === 'BAZIL_CLOSED');
    assert.throws(() => h4.releaseNow(), (err: unknown) => (err as { code?: string }).code === 'BAZIL_CLOSED');
    // Reopened: the log holds exactly what was committed.
    const again = await Volume.open(homeDir, 'v');
    try {
      await assert.rejects(again.stat('/a'), errno('BAZIL_NOT_FOUND', 'ENOENT'));
      assert.equal((await again.stat('/b')).size, 0);
    } finally {
      await again.close();
    }
  });
});
