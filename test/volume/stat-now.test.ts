// Volume.statNow / getattrNow (the mount's synchronous getattr path) must
// answer exactly what stat / getattr answer: the same attributes, the same
// errno for a miss, the same error for a bad path or a closed volume, and
// null (go async) only where a directory copy is still pending.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BazilError } from '../../errors/index.js';
import type { Volume, Attrs, PathMiss } from '../../src/volume/volume.js';
import { withTempVolume } from '../lib/temp-volume.js';

function withVolume(fn: (volume: Volume) => Promise<void>): Promise<void> {
  return withTempVolume('bazil-stat-now-', fn);
}

/** What the async path answers: attributes, or the errno / code of its error. */
async function slow(work: Promise<Attrs>): Promise<Attrs | { errno: unknown; code: string }> {
  try {
    return await work;
  } catch (err) {
    assert.ok(err instanceof BazilError, `a BazilError, not ${String(err)}`);
    return { errno: err.data['errno'], code: err.code };
  }
}

function fast(answer: Attrs | PathMiss | null): Attrs | { errno: unknown } | null {
  return answer !== null && 'miss' in answer ? { errno: answer.miss } : answer;
}

async function sameAnswer(v: Volume, path: string): Promise<void> {
  const s = await slow(v.stat(path));
  const f = fast(v.statNow(path));
  assert.notEqual(f, null, `${path}: answered at once`);
  if ('errno' in s) assert.deepEqual(f, { errno: s.errno }, `${path}: the same errno`);
  else assert.deepEqual(f, s, `${path}: the same attributes`);
}

test('statNow answers what stat answers, for hits, misses and ENOTDIR', async () => {
  await withVolume(async (v) => {
    await v.mkdir('/d');
    await v.mkdir('/d/e');
    await v.writeFile('/d/f', Buffer.from('hello'));
    await v.symlink('../nowhere', '/d/ln');
    await v.mknod('/d/fifo', 'fifo', {});
    for (const p of ['/', '/d', '/d/', '/d/e', '/d/f', '/d/ln', '/d/fifo', '/missing', '/d/missing', '/missing/deeper',
      '/d/f/below', '/d/ln/below', '/d/e/x/y', 'ü'.repeat(10).replace(/^/, '/')]) {
      await sameAnswer(v, p);
    }
    // Removed names miss the same way.
    await v.unlink('/d/f');
    await v.rmdir('/d/e');
    for (const p of ['/d/f', '/d/e', '/d/e/x']) await sameAnswer(v, p);
  });
});

test('bad paths throw from statNow the error stat rejects with; a closed volume throws CLOSED', async () => {
  let closed: Volume | undefined;
  await withVolume(async (v) => {
    closed = v;
    for (const p of ['relative', '', '/a//b', '/a/../b', '/./a', `/${'n'.repeat(256)}`, `/${'d/'.repeat(2100)}`, '/a\0b']) {
      const s = await slow(v.stat(p));
      assert.ok('errno' in s, `${JSON.stringify(p.slice(0, 20))} is refused`);
      assert.throws(() => v.statNow(p), (err: unknown) => err instanceof BazilError && err.code === s.code && err.data['errno'] === s.errno);
    }
  });
  assert.throws(() => closed!.statNow('/'), (err: unknown) => err instanceof BazilError && err.code === 'BAZIL_CLOSED');
  assert.throws(() => closed!.getattrNow(Buffer.alloc(32)), (err: unknown) => err instanceof BazilError && err.code === 'BAZIL_CLOSED');
});

test('open files: statNow sees unflushed writes; getattrNow answers an unlinked open file with nlink 0, as getattr does', async () => {
  await withVolume(async (v) => {
    const h = await v.create('/open', { read: true, write: true });
    try {
      await h.write(0, Buffer.alloc(12_345, 7));
      await sameAnswer(v, '/open');
      const now = v.statNow('/open');
      assert.ok(now !== null && !('miss' in now) && now.size === 12_345, 'the unflushed size');
      await v.unlink('/open');
      await sameAnswer(v, '/open');
      const byId = v.getattrNow(h.id);
      assert.ok(!('miss' in byId));
      assert.equal(byId.nlink, 0);
      assert.deepEqual(byId, await v.getattr(h.id));
    } finally {
      await h.release();
    }
    // Released: the inode is gone for both.
    assert.deepEqual(v.getattrNow(h.id), { miss: 'ENOENT' });
    await assert.rejects(v.getattr(h.id), (err: unknown) => err instanceof BazilError && err.data['errno'] === 'ENOENT');
  });
});

test('a pending directory copy is not answered at once (null), and stat materialises it', async () => {
  await withVolume(async (v) => {
    await v.mkdir('/src');
    await v.mkdir('/src/sub');
    await v.writeFile('/src/sub/f', Buffer.from('x'));
    await v.reflink('/src', '/dst');
    // The copy's own inode is real; its entries are what may be pending.
    assert.equal(fast(v.statNow('/dst')) !== null, true);
    // The copy's entries are made on first read (docs/reflink.md): until then, go async.
    assert.equal(v.statNow('/dst/sub/f'), null);
    const s = await v.stat('/dst/sub/f');
    assert.deepEqual(v.statNow('/dst/sub/f'), s, 'answered at once once materialised');
    await sameAnswer(v, '/dst/sub/missing');
  });
});
