// Writes test/fixtures/home-v1/: a small home (peer identity, one volume
// "fixture") in the first home, log and projection formats, frozen and read
// by the tests forever (test/home/fixture-v1.test.ts), so every later format
// change must keep it readable, by migrating it in place.
//
// Run once, when the format is released:
//   node .hdist/NAME/scripts/make-fixture-home.js test/fixtures/home-v1
// Never regenerate a committed fixture after a format change: its bytes are
// the point. The output directory must not exist yet.
//
// Its history covers every kind of node and the events that remove or move
// them: directories, files (an empty one, a multi-chunk one), a symlink, a
// hard link, xattrs, a chmod, a utimens, a rename across directories, an
// unlink and an rmdir.

import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initHome } from '../src/home/home.js';
import { createVolume } from '../src/home/volumes.js';
import { Volume } from '../src/volume/volume.js';
import { listVolumeTree } from '../test/home/fixture-listing.js';

const out = process.argv[2];
if (out === undefined) throw new Error('usage: make-fixture-home DIR (DIR must not exist)');
const dir = resolve(out);
if (existsSync(join(dir, 'home'))) throw new Error(`${dir}/home exists: a frozen fixture is never regenerated`);

/** Deterministic bytes: SHA-256 in counter mode over a label, so the fixture's content does not depend on a seed library. */
function bytes(label: string, length: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0, have = 0; have < length; i++, have += 32) parts.push(createHash('sha256').update(`${label}/${i}`).digest());
  return Buffer.concat(parts).subarray(0, length);
}

const when = new Date('2026-11-26T06:00:00.000Z');
const mtime = (s: number): bigint => BigInt(when.getTime() + s * 1000) * 1_000_000n + 123n;
const homeDir = join(dir, 'home');
const { home } = await initHome(homeDir, { now: when });
await createVolume(home, 'fixture', { now: when }).finally(() => home.close());

const v = await Volume.open(homeDir, 'fixture');
try {
  await v.mkdir('/docs', { mode: 0o755, uid: 1000, gid: 1000, mtimeNs: mtime(1) });
  await v.mkdir('/docs/notes', { mode: 0o700, uid: 1000, gid: 1000, mtimeNs: mtime(2) });
  await v.mkdir('/data', { uid: 0, gid: 0 });
  await v.mkdir('/données', { uid: 1000, gid: 100 });
  await v.mkdir('/gone', {});
  await v.writeFile('/docs/readme.txt', Buffer.from('Bazil fixture home, format v1.\n'), { mode: 0o644, uid: 1000, gid: 1000, mtimeNs: mtime(3) });
  await v.writeFile('/docs/notes/todo.md', Buffer.from('- keep this fixture byte-frozen\n'), { uid: 1000, gid: 1000 });
  await v.writeFile('/données/été.txt', Buffer.from('soleil ☀\n'), { uid: 1000, gid: 100, mtimeNs: mtime(4) });
  // Larger than the 256 KiB maximum chunk, so its manifest lists several chunks.
  await v.writeFile('/data/big.bin', bytes('big', 600 * 1024 + 17), { mode: 0o600, uid: 0, gid: 0, mtimeNs: mtime(5) });
  await v.writeFile('/data/empty', Buffer.alloc(0), { uid: 0, gid: 0 });
  await v.writeFile('/docs/old-name.txt', Buffer.from('renamed across directories\n'), { uid: 1000, gid: 1000 });
  await v.writeFile('/docs/scratch.tmp', Buffer.from('unlinked later\n'), {});
  await v.symlink('docs/readme.txt', '/readme-link', { uid: 1000, gid: 1000 });
  await v.link('/docs/readme.txt', '/docs/notes/readme-hardlink');
  await v.setxattr('/docs/readme.txt', 'user.colour', Buffer.from('green'));
  await v.setxattr('/data/big.bin', 'user.origin', Buffer.from([0, 1, 2, 255]));
  await v.setxattr('/data', 'user.dropped', Buffer.from('x'));
  await v.removexattr('/data', 'user.dropped');
  await v.chmod('/docs/notes/todo.md', 0o640);
  await v.utimens('/docs/notes/todo.md', mtime(6), mtime(7));
  await v.rename('/docs/old-name.txt', '/data/moved.txt');
  await v.unlink('/docs/scratch.tmp');
  await v.rmdir('/gone');
  // The same content twice: deduplicated in the content arenas.
  await v.writeFile('/data/big-copy.bin', bytes('big', 600 * 1024 + 17), { uid: 0, gid: 0, mtimeNs: mtime(5) });

  const listing = await listVolumeTree(v);
  const expected = {
    made: 'scripts/make-fixture-home.ts',
    volume: 'fixture',
    note: 'byte-frozen: never regenerate after a format change',
    nodes: listing,
  };
  writeFileSync(join(dir, 'expected.json'), `${JSON.stringify(expected, null, 2)}\n`);
  const fsck = await v.fsck();
  if (!fsck.ok) throw new Error(`the fresh fixture does not pass fsck: ${JSON.stringify(fsck.problems)}`);
} finally {
  await v.close();
}
process.stdout.write(`wrote ${dir}\n`);
