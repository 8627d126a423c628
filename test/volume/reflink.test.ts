// Instant copies through the volume facade and the `bazil cp` command
// (docs/reflink.md): a file or a whole tree copied by one clone event,
// sharing content (no content object added), and from then on independent
// of its source in both directions, whichever side changes first and
// whether or not the copy was read in between. Rebuilds, reopening and
// past-state views see the same copies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONTENT_KIND } from '../../src/cas/content-store.js';
import { openHistory } from '../../src/history/index.js';
import { Volume } from '../../src/volume/volume.js';
import { withTempVolume } from '../lib/temp-volume.js';
import type { VolumeReader } from '../../src/volume/reader.js';
import type { MemProjection } from '../../src/history/mem-projection.js';
import { cli, cliOk, newHome, withTemp } from '../lib/acceptance.js';

function withVolume(fn: (volume: Volume, homeDir: string) => Promise<void>): Promise<void> {
  return withTempVolume('bazil-reflink-test-', fn);
}

/** Content objects in the volume's arenas, every writer's. */
function contentObjects(v: Volume): number {
  const { arenas } = v.historySource().content;
  let n = 0;
  for (const w of arenas.writers(CONTENT_KIND)) for (const _ of arenas.records(CONTENT_KIND, w)) n++;
  return n;
}

function events(v: Volume): bigint {
  return v.historySource().log.versionVector().pairs().reduce((s, [, seq]) => s + seq, 0n);
}

function bytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let at = 0, k = 0; at < size; k++) at += createHash('sha256').update(`${seed}/${k}`).digest().copy(out, at);
  return out;
}

type Reader = Pick<VolumeReader<MemProjection>, 'stat' | 'readdir' | 'readFile' | 'readlink' | 'listxattr' | 'getxattr'>;

/** A tree as path → a line of what a copy must keep (kind, mode, owner, size, mtime, content hash, target, xattrs). */
async function snapshotTree(v: Reader, path: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (p: string, rel: string): Promise<void> => {
    const a = await v.stat(p);
    const xattrs: string[] = [];
    for (const n of await v.listxattr(p)) xattrs.push(`${n}=${(await v.getxattr(p, n)).toString('hex')}`);
    const content = a.kind === 'file' ? createHash('sha256').update(await v.readFile(p)).digest('hex').slice(0, 16) : a.kind === 'symlink' ? await v.readlink(p) : '';
    out.set(rel, [a.kind, a.mode.toString(8), a.uid, a.gid, a.size, a.mtime, content, xattrs.join(',')].join(' '));
    if (a.kind === 'dir') for (const e of await v.readdir(p)) await visit(`${p}/${e.name}`, `${rel}/${e.name}`);
  };
  await visit(path, '');
  return out;
}

/** /src: nested directories, files of several chunks, an empty file, a symlink, a hard link pair, xattrs. */
async function buildTree(v: Volume): Promise<void> {
  await v.mkdir('/src', { mode: 0o750, uid: 11, gid: 12, mtimeNs: 1_600_000_000_000_000_001n });
  await v.mkdir('/src/a');
  await v.mkdir('/src/a/deep');
  await v.mkdir('/src/empty');
  await v.writeFile('/src/big', bytes('big', 200_000), { mode: 0o600 });
  await v.writeFile('/src/a/f', Buffer.from('hello'));
  await v.writeFile('/src/a/deep/g', Buffer.from('deep down'), { uid: 5, gid: 6 });
  await v.writeFile('/src/a/zero', Buffer.alloc(0));
  await v.symlink('../big', '/src/a/ln');
  await v.link('/src/a/f', '/src/hard');
  await v.setxattr('/src/a/deep/g', 'user.tag', Buffer.from('g-tag'));
  await v.setxattr('/src/a', 'user.dir', Buffer.from('a-tag'));
}

test('a file copy shares its content: same bytes and manifest, no content object added, then independent both ways', async () => {
  await withVolume(async (v) => {
    const data = bytes('file', 300_000);
    await v.writeFile('/f', data, { mode: 0o640 });
    await v.setxattr('/f', 'user.x', Buffer.from('1'));
    const objects = contentObjects(v);
    const before = events(v);
    const id = await v.reflink('/f', '/g');
    assert.equal(events(v), before + 1n, 'one event');
    assert.equal(contentObjects(v), objects, 'no content object added');
    const [f, g] = [await v.stat('/f'), await v.stat('/g')];
    assert.ok(g.id.equals(id));
    assert.ok(!g.id.equals(f.id));
    assert.deepEqual([g.kind, g.mode, g.size, g.mtime, g.nlink], [f.kind, f.mode, f.size, f.mtime, 1]);
    assert.ok(g.manifest !== null && f.manifest !== null && g.manifest.equals(f.manifest), 'the same manifest');
    assert.ok((await v.readFile('/g')).equals(data));
    assert.equal((await v.getxattr('/g', 'user.x')).toString(), '1');
    assert.ok(g.ctime > f.ctime, 'the copy is new: its ctime is the clone event');

    // Edit the copy: the original keeps its content, mode and xattrs.
    const handle = await v.open('/g', { write: true });
    await handle.write(10, Buffer.from('COPY'));
    await handle.release();
    await v.chmod('/g', 0o600);
    await v.setxattr('/g', 'user.x', Buffer.from('2'));
    assert.ok((await v.readFile('/f')).equals(data));
    assert.equal((await v.stat('/f')).mode, 0o640);
    assert.equal((await v.getxattr('/f', 'user.x')).toString(), '1');
    // Edit the original: the copy keeps what it had.
    const copied = await v.readFile('/g');
    await v.writeFile('/f', Buffer.from('original, rewritten'));
    await v.removexattr('/f', 'user.x');
    assert.ok((await v.readFile('/g')).equals(copied));
    assert.equal((await v.getxattr('/g', 'user.x')).toString(), '2');
    assert.equal(copied.subarray(10, 14).toString(), 'COPY');
    // Unflushed writes of an open source are in the copy (they are committed first).
    const h = await v.open('/f', { write: true });
    await h.write(0, Buffer.from('!'));
    await v.reflink('/f', '/h');
    await h.release();
    assert.equal((await v.readFile('/h')).toString(), '!riginal, rewritten');
    // A symlink is copied as a symlink.
    await v.symlink('f', '/s');
    await v.reflink('/s', '/s2');
    assert.equal(await v.readlink('/s2'), 'f');
  });
});

test('a tree copy is one event, adds no content object, and equals its source', async () => {
  await withVolume(async (v) => {
    await buildTree(v);
    const objects = contentObjects(v);
    const before = events(v);
    const source = await snapshotTree(v, '/src');
    await v.reflink('/src', '/copy');
    assert.equal(events(v), before + 1n, 'one event for the whole tree');
    assert.deepEqual(await snapshotTree(v, '/copy'), source);
    assert.equal(contentObjects(v), objects, 'no content object added');
    // Hard links inside the tree become separate files in the copy, as with cp -r.
    assert.equal((await v.stat('/src/hard')).nlink, 2);
    assert.equal((await v.stat('/copy/hard')).nlink, 1);
    assert.ok(!(await v.stat('/copy/hard')).id.equals((await v.stat('/copy/a/f')).id));
    assert.equal((await v.stat('/copy')).nlink, (await v.stat('/src')).nlink);
    // Aggregates: the copy counts what its source does, and the root both.
    const [src, copy, root] = [await v.aggregates('/src', { exact: true }), await v.aggregates('/copy', { exact: true }), await v.aggregates('/', { exact: true })];
    assert.deepEqual([copy.rbytes, copy.rfiles, copy.rsubdirs], [src.rbytes, src.rfiles, src.rsubdirs]);
    assert.deepEqual([root.rbytes, root.rfiles, root.rsubdirs], [2 * src.rbytes, 2 * src.rfiles, 2 * src.rsubdirs + 2]);
  });
});

test('edits of a tree copy and of its source stay apart, whichever comes first and whether or not the copy was read', async () => {
  for (const readFirst of [false, true]) {
    await withVolume(async (v) => {
      await buildTree(v);
      const source = await snapshotTree(v, '/src');
      await v.reflink('/src', '/copy');
      if (readFirst) await snapshotTree(v, '/copy');
      // Change the source deep down, before anything read the copy (readFirst false).
      await v.writeFile('/src/a/deep/g', Buffer.from('changed in the source'));
      await v.chmod('/src/a', 0o700);
      await v.rename('/src/a/f', '/src/a/f-renamed');
      await v.unlink('/src/a/zero');
      await v.mkdir('/src/a/deep/new');
      await v.setxattr('/src/big', 'user.new', Buffer.from('n'));
      await v.removexattr('/src/a/deep/g', 'user.tag');
      assert.deepEqual(await snapshotTree(v, '/copy'), source, `readFirst=${readFirst}: the copy still shows the source as it was`);
      const changedSource = await snapshotTree(v, '/src');
      // Change the copy: the source keeps its own changes and nothing else.
      await v.writeFile('/copy/a/f', Buffer.from('changed in the copy'));
      await v.chmod('/copy/empty', 0o711);
      await v.rename('/copy/a/deep', '/copy/moved');
      await v.unlink('/copy/big');
      await v.mkdir('/copy/a/made');
      await v.setxattr('/copy/a/ln', 'trusted.x', Buffer.from('t')).catch(() => undefined);
      await v.setxattr('/copy/hard', 'user.h', Buffer.from('h'));
      assert.deepEqual(await snapshotTree(v, '/src'), changedSource, `readFirst=${readFirst}: the source is untouched by the copy's edits`);
      assert.equal((await v.readFile('/copy/moved/g')).toString(), 'deep down');
      assert.equal((await v.readFile('/src/a/f-renamed')).toString(), 'hello');
      assert.equal((await v.readFile('/copy/a/f')).toString(), 'changed in the copy');
      assert.equal((await v.readFile('/src/hard')).toString(), 'hello', 'the hard link in the source follows its own file, not the copy');
      // The log is the truth: a rebuild and a reopened volume give the same projection.
      const dump = await v.dump();
      await v.rebuild();
      assert.ok((await v.dump()).equals(dump), 'the dump after rebuild differs');
      assert.deepEqual((await v.fsck()).problems, []);
    });
  }
});

test('a source renamed or removed right after its copy, a copy of a copy, and past states before and after', async () => {
  await withVolume(async (v, homeDir) => {
    await buildTree(v);
    const source = await snapshotTree(v, '/src');
    const beforeCopy = events(v);
    await v.reflink('/src', '/c1');
    // Before anything reads /c1: move the source away and empty part of it.
    await v.rename('/src', '/moved');
    await v.unlink('/moved/a/deep/g');
    await v.rmdir('/moved/a/deep');
    await v.reflink('/c1', '/c2');
    await v.reflink('/c2/a', '/c3');
    await v.writeFile('/c1/a/deep/g', Buffer.from('c1 only'));
    assert.deepEqual(await snapshotTree(v, '/c2'), source, 'a copy of a copy is the source as it was');
    assert.equal((await v.readFile('/c3/deep/g')).toString(), 'deep down');
    assert.equal((await v.readFile('/c1/a/deep/g')).toString(), 'c1 only');
    await assert.rejects(v.stat('/moved/a/deep'), { code: 'BAZIL_NOT_FOUND' });

    // Past states: before the first copy there is none; just after it, the copy is the source.
    const h = await openHistory(v, { every: 8n });
    const atStart = await h.at({ kind: 'position', count: beforeCopy });
    await assert.rejects(atStart.reader.stat('/c1'), { code: 'BAZIL_NOT_FOUND' });
    const afterCopy = await h.at({ kind: 'position', count: beforeCopy + 1n });
    assert.deepEqual(await snapshotTree(afterCopy.reader, '/c1'), source);
    assert.deepEqual(await snapshotTree(afterCopy.reader, '/src'), source);
    const now = await h.at({ kind: 'now' });
    assert.ok((await now.projection.dump()).equals(await v.dump()), 'the in-memory projection of the whole log is the live one');
    assert.deepEqual(await snapshotTree(now.reader, '/c2'), source);
    await h.update();
    assert.ok(h.checkpoints().length > 0);
    const again = await (await openHistory(v, { every: 8n })).at({ kind: 'now' });
    assert.ok((await again.projection.dump()).equals(await v.dump()), 'from a checkpoint too');

    // Reopened, the same tree.
    const dump = await v.dump();
    await v.close();
    const reopened = await Volume.open(homeDir, 'v');
    try {
      assert.ok((await reopened.dump()).equals(dump));
      assert.deepEqual(await snapshotTree(reopened, '/c2'), source);
    } finally {
      await reopened.close();
    }
  });
});

test('reflink refuses bad input with the errno cp would give, and changes nothing', async () => {
  await withVolume(async (v) => {
    await buildTree(v);
    await v.writeFile('/file', Buffer.from('x'));
    const before = events(v);
    const cases: [string, string, string][] = [
      ['/missing', '/x', 'ENOENT'],
      ['/src', '/src', 'EEXIST'],
      ['/src', '/file', 'EEXIST'],
      ['/src', '/src/a/inside', 'EINVAL'],
      ['/src', '/src/inside', 'EINVAL'],
      ['/', '/rootcopy', 'EINVAL'],
      ['/src', '/', 'EINVAL'],
      ['/src', '/nodir/x', 'ENOENT'],
      ['/src', '/file/x', 'ENOTDIR'],
      ['/file/x', '/y', 'ENOTDIR'],
      ['relative', '/y', 'EINVAL'],
      ['/src', '/a/../b', 'EINVAL'],
      ['/src', `/${'n'.repeat(256)}`, 'ENAMETOOLONG'],
    ];
    for (const [from, to, errno] of cases) {
      await assert.rejects(v.reflink(from, to), (err: { data: { errno: string } }) => err.data.errno === errno, `${from} → ${to}`);
    }
    assert.equal(events(v), before, 'nothing was appended');
    const aborted = AbortSignal.abort();
    await assert.rejects(v.reflink('/src', '/y', { signal: aborted }), { code: 'BAZIL_ABORTED' });
  });
});

test('bazil cp --reflink: files and trees, --json, and bad arguments', async () => {
  await withTemp('bazil-cp-', async (dir) => {
    const home = newHome(dir, 'v', 'w');
    const local = join(dir, 'local');
    await mkdir(join(local, 'sub'), { recursive: true });
    await writeFile(join(local, 'a.txt'), 'a\n');
    await writeFile(join(local, 'sub', 'b.txt'), 'b\n');
    cliOk(home, ['import', local, 'v:/h']);
    const made = JSON.parse(cliOk(home, ['--json', 'cp', '--reflink', 'v:/h', 'v:/h2'])) as { kind: string; target: string };
    assert.deepEqual([made.kind, made.target], ['dir', '/h2']);
    assert.equal(cliOk(home, ['ls', 'v:/h2']), cliOk(home, ['ls', 'v:/h']));
    assert.match(cliOk(home, ['cp', 'v:/h2', 'v:/h3']), /copied v:\/h2 to \/h3/);
    for (const [args, code] of [
      [['cp', 'v:/h', 'w:/h'], 'BAZIL_CROSS_VOLUME'],
      [['cp', 'v:/nope', 'v:/x'], 'BAZIL_NOT_FOUND'],
      [['cp', 'v:/h', 'v:/h'], 'BAZIL_ALREADY_EXISTS'],
      [['cp', 'v:/h', 'v:/h/in'], 'BAZIL_BAD_ARGUMENT'],
      [['cp', 'v', 'v:/x'], 'BAZIL_BAD_ARGUMENT'],
      [['cp', 'nosuchvol:/a', 'nosuchvol:/b'], 'BAZIL_NOT_FOUND'],
      [['cp', ':/a', ':/b'], 'BAZIL_BAD_ARGUMENT'],
    ] as const) {
      const r = cli(home, ['--json', ...args]);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.error?.code, code, args.join(' '));
    }
    const usage = cli(home, ['cp', 'v:/h']);
    assert.equal(usage.status, 2, 'a missing argument is a usage error');
    assert.match(cliOk(home, ['cp', '--help']), /--reflink/);
  });
});
