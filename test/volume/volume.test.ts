import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { splitPath } from '../../src/volume/paths.js';
import { Volume } from '../../src/volume/volume.js';
import { withTempVolume } from '../lib/temp-volume.js';

function withVolume(fn: (volume: Volume) => Promise<void>): Promise<void> {
  return withTempVolume('bazil-volume-test-', fn);
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

test('bad paths fail with stable codes and errnos, before any lookup', () => {
  const cases: [string, string, string][] = [
    ['relative', 'BAZIL_BAD_ARGUMENT', 'EINVAL'],
    ['', 'BAZIL_BAD_ARGUMENT', 'EINVAL'],
    ['/a/../b', 'BAZIL_BAD_ARGUMENT', 'EINVAL'],
    ['/a/./b', 'BAZIL_BAD_ARGUMENT', 'EINVAL'],
    ['/a//b', 'BAZIL_BAD_ARGUMENT', 'EINVAL'],
    ['/a\0b', 'BAZIL_BAD_ARGUMENT', 'EINVAL'],
    [`/${'x'.repeat(256)}`, 'BAZIL_NAME_TOO_LONG', 'ENAMETOOLONG'],
    [`/${'é'.repeat(128)}`, 'BAZIL_NAME_TOO_LONG', 'ENAMETOOLONG'],
    [`/${'a/'.repeat(2100)}`, 'BAZIL_NAME_TOO_LONG', 'ENAMETOOLONG'],
  ];
  for (const [path, code, errno] of cases) {
    assert.throws(() => splitPath(path), (err: { code: string; data: { errno: string } }) => err.code === code && err.data.errno === errno, path);
  }
  assert.deepEqual(splitPath('/'), []);
  assert.deepEqual(splitPath('/a/b/'), ['a', 'b']);
  assert.deepEqual(splitPath(`/${'x'.repeat(255)}`), ['x'.repeat(255)]);
});

test('writes through the facade are visible when they resolve', async () => {
  await withVolume(async (v) => {
    await v.mkdir('/d', { mode: 0o750, uid: 7, gid: 8, mtimeNs: 1_700_000_000_000_001_000n });
    const d = await v.stat('/d');
    assert.deepEqual([d.kind, d.mode, d.uid, d.gid], ['dir', 0o750, 7, 8]);

    const data = Buffer.alloc(200_000, 3);
    data.write('hello', 100_000);
    await v.writeFile('/d/f', Readable.from([data.subarray(0, 50_000), data.subarray(50_000)]), { mode: 0o640, mtimeNs: 1_600_000_000_000_000_123n });
    const f = await v.stat('/d/f');
    assert.deepEqual([f.kind, f.mode, f.size, f.mtime], ['file', 0o640, 200_000, 1_600_000_000_000_000_123n]);
    assert.equal((await v.readFile('/d/f', 100_000, 5)).toString(), 'hello');
    assert.equal((await v.readFile('/d/f', 199_990, 100)).length, 10);
    assert.ok((await collect(v.createReadStream('/d/f'))).equals(data));

    await v.writeFile('/d/empty', Buffer.alloc(0));
    assert.equal((await v.stat('/d/empty')).size, 0);
    assert.equal((await v.readFile('/d/empty')).length, 0);
    // Rewriting an existing file keeps its inode.
    const before = await v.resolve('/d/f');
    await v.writeFile('/d/f', Buffer.from('short'));
    assert.ok((await v.resolve('/d/f')).equals(before));
    assert.equal((await v.readFile('/d/f')).toString(), 'short');

    await v.symlink('f', '/d/s');
    assert.equal(await v.readlink('/d/s'), 'f');
    await v.link('/d/f', '/hard');
    assert.equal((await v.stat('/hard')).nlink, 2);

    await v.chmod('/d/f', 0o600);
    await v.chown('/d/f', 1000, null);
    await v.utimens('/d/f', 5n, 6n);
    const g = await v.stat('/d/f');
    assert.deepEqual([g.mode, g.uid, g.gid, g.atime, g.mtime], [0o600, 1000, f.gid, 5n, 6n]);

    await v.setxattr('/d/f', 'user.k', Buffer.from('v'));
    assert.deepEqual(await v.listxattr('/d/f'), ['user.k']);
    assert.equal((await v.getxattr('/d/f', 'user.k')).toString(), 'v');
    await v.removexattr('/d/f', 'user.k');
    await assert.rejects(v.getxattr('/d/f', 'user.k'), { code: 'BAZIL_NOT_FOUND' });

    await v.rename('/d/f', '/d/g');
    await assert.rejects(v.stat('/d/f'), { code: 'BAZIL_NOT_FOUND' });
    assert.equal((await v.readFile('/d/g')).toString(), 'short');
    await assert.rejects(v.rename('/d', '/d/sub'), { code: 'BAZIL_BAD_ARGUMENT' });
    await v.mkdir('/e');
    await assert.rejects(v.rename('/d/g', '/e'), { code: 'BAZIL_IS_A_DIRECTORY' });
    await assert.rejects(v.rename('/e', '/d'), { code: 'BAZIL_NOT_EMPTY' });

    const names: string[] = [];
    for (let page = await v.readdir('/d', { limit: 2 }); page.length > 0; page = await v.readdir('/d', { after: page[page.length - 1]!.name, limit: 2 })) {
      names.push(...page.map((e) => e.name));
    }
    assert.deepEqual([...names].sort(), ['empty', 'g', 's']);

    await assert.rejects(v.rmdir('/d'), { code: 'BAZIL_NOT_EMPTY' });
    await assert.rejects(v.unlink('/d'), { code: 'BAZIL_IS_A_DIRECTORY' });
    await assert.rejects(v.rmdir('/d/g'), { code: 'BAZIL_NOT_A_DIRECTORY' });
    await assert.rejects(v.mkdir('/d/g'), { code: 'BAZIL_ALREADY_EXISTS' });
    await assert.rejects(v.stat('/d/g/x'), (err: { code: string; data: { errno: string } }) => err.code === 'BAZIL_NOT_A_DIRECTORY' && err.data.errno === 'ENOTDIR');
    await assert.rejects(v.stat('/nope'), (err: { code: string; data: { errno: string } }) => err.code === 'BAZIL_NOT_FOUND' && err.data.errno === 'ENOENT');
    await assert.rejects(v.readFile('/d'), { code: 'BAZIL_IS_A_DIRECTORY' });
    await assert.rejects(v.mkdir(`/${'n'.repeat(256)}`), { code: 'BAZIL_NAME_TOO_LONG' });

    for (const n of ['empty', 'g', 's']) await v.unlink(`/d/${n}`);
    await v.rmdir('/d');
    assert.deepEqual((await v.readdir('/')).map((e) => e.name).sort(), ['e', 'hard']);
    assert.equal((await v.readFile('/hard')).toString(), 'short');

    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(v.mkdir('/x', { signal: aborted.signal }), { code: 'BAZIL_ABORTED' });
  });
});
