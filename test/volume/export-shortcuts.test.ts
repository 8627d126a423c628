// Export skips work it can prove is a no-op (docs/ingest.md, "Round 3:
// export"): listing the extended attributes of nodes that have none (one
// scan of the attribute table up front), and chowning a node that was
// created with the owner it needs. These tests check the outcomes stay
// those of doing the work: attributes on a few nodes among many, on a
// directory copy not yet materialised, past the scan's limit; owners and
// groups under a set-group-ID top directory, under one of another group,
// and files of other owners.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { getXattr, listXattrs, setXattr, xattrsAvailable } from '../../src/fs/xattr.js';
import { exportTree } from '../../src/volume/import-export.js';
import { Volume } from '../../src/volume/volume.js';
import { withTempVolume } from '../lib/temp-volume.js';

function withVolume(fn: (volume: Volume, dir: string) => Promise<void>): Promise<void> {
  return withTempVolume('bazil-export-shortcuts-', (volume, _homeDir, dir) => fn(volume, dir));
}

async function writeVolFile(volume: Volume, path: string, content: string, opts: { mode?: number; uid?: number; gid?: number } = {}): Promise<void> {
  await volume.writeFile(path, Buffer.from(content), { mode: opts.mode ?? 0o644, uid: opts.uid ?? 0, gid: opts.gid ?? 0 });
}

const isRoot = process.geteuid?.() === 0;

test('export copies the xattrs of the few nodes that have them, and of a pending directory copy (holders not known up front)', { skip: !xattrsAvailable() && 'no xattr addon' }, async () => {
  await withVolume(async (volume, dir) => {
    await volume.mkdir('/t', { mode: 0o755 });
    await volume.mkdir('/t/d', { mode: 0o755 });
    for (let i = 0; i < 40; i++) await writeVolFile(volume, `/t/${i % 2 === 0 ? 'd/' : ''}f${i}`, `content ${i}`);
    await volume.setxattr('/t/f7', 'user.seven', Buffer.from('7'));
    await volume.setxattr('/t/d/f10', 'user.ten', Buffer.from('10'));
    await volume.setxattr('/t/d/f10', 'user.ten-b', Buffer.from([0, 1, 2]));
    await volume.setxattr('/t/d', 'user.dir', Buffer.from('d'));
    await volume.sync();

    const holders = await volume.xattrHolders(100);
    assert.ok(holders !== null);
    assert.equal(holders.size, 3, 'two files and a directory hold attributes');
    assert.equal(await volume.xattrHolders(3), null, 'four attributes are past a limit of three');

    const check = async (root: string): Promise<void> => {
      assert.equal(getXattr(join(root, 'f7'), 'user.seven').toString(), '7');
      assert.deepEqual(listXattrs(join(root, 'd', 'f10')).sort(), ['user.ten', 'user.ten-b']);
      assert.deepEqual(getXattr(join(root, 'd', 'f10'), 'user.ten-b'), Buffer.from([0, 1, 2]));
      assert.equal(getXattr(join(root, 'd'), 'user.dir').toString(), 'd');
      for (const f of ['f1', 'f3', 'd/f0', 'd/f12']) assert.deepEqual(listXattrs(join(root, f)).filter((n) => n.startsWith('user.')), [], f);
    };
    const out = join(dir, 'out');
    const r = await exportTree(volume, '/t', out);
    assert.equal(r.files, 40);
    assert.equal(r.xattrs, 4);
    await check(out);

    // A directory copy is materialised as it is read: its attributes are not in the table until then.
    await volume.reflink('/t', '/copy');
    assert.equal(await volume.xattrHolders(100), null, 'a pending copy may still add attributes');
    const outCopy = join(dir, 'out-copy');
    const rc = await exportTree(volume, '/copy', outCopy);
    assert.equal(rc.xattrs, 4);
    await check(outCopy);
  });
});

test('export owners: no chown where the new node has the owner already, chown elsewhere (set-group-ID top, other group, other owners)', { skip: !isRoot && 'needs root to give files other owners' }, async () => {
  await withVolume(async (volume, dir) => {
    await volume.mkdir('/t', { mode: 0o755 });
    await volume.mkdir('/t/sub', { mode: 0o750, uid: 0, gid: 0 });
    await writeVolFile(volume, '/t/root-owned', 'a');
    await writeVolFile(volume, '/t/sub/root-owned', 'b', { mode: 0o600 });
    await writeVolFile(volume, '/t/other', 'c', { uid: 1234, gid: 4321 });
    await writeVolFile(volume, '/t/sub/group-only', 'd', { gid: 4321 });
    await volume.symlink('root-owned', '/t/link', { uid: 1234, gid: 0 });
    await volume.sync();
    const expect = async (root: string): Promise<void> => {
      const owner = async (p: string): Promise<string> => {
        const st = await lstat(join(root, p));
        return `${st.uid}:${st.gid}:${(st.mode & 0o7777).toString(8)}`;
      };
      assert.equal(await owner('root-owned'), '0:0:644');
      assert.equal(await owner('sub'), '0:0:750');
      assert.equal(await owner('sub/root-owned'), '0:0:600');
      assert.equal(await owner('other'), '1234:4321:644');
      assert.equal(await owner('sub/group-only'), '0:4321:644');
      assert.equal((await owner('link')).split(':').slice(0, 2).join(':'), '1234:0');
    };

    // A fresh top directory: everything made under it is root's.
    await exportTree(volume, '/t', join(dir, 'plain'));
    await expect(join(dir, 'plain'));

    // An empty set-group-ID top of another group: what is made under it gets that group, so root's files are chowned back.
    const sgid = join(dir, 'sgid');
    await mkdir(sgid);
    await chown(sgid, 0, 4321);
    await chmod(sgid, 0o2775);
    await exportTree(volume, '/t', sgid);
    await expect(sgid);

    // An empty top of another group, not set-group-ID: not known what the file system gives, so every node is chowned.
    const other = join(dir, 'other-group');
    await mkdir(other);
    await chown(other, 0, 4321);
    await exportTree(volume, '/t', other);
    await expect(other);
    assert.equal((await lstat(other)).gid, 0, 'the top directory gets the volume directory\'s group');
  });
});

test('export of a single file sets its owner and mode', { skip: !isRoot && 'needs root to give files other owners' }, async () => {
  await withVolume(async (volume, dir) => {
    await writeVolFile(volume, '/one', 'x', { uid: 1234, gid: 4321, mode: 0o640 });
    await writeVolFile(volume, '/two', 'y', { mode: 0o604 });
    await volume.sync();
    for (const name of ['one', 'two']) await exportTree(volume, `/${name}`, join(dir, name));
    const one = await lstat(join(dir, 'one'));
    const two = await lstat(join(dir, 'two'));
    assert.deepEqual([one.uid, one.gid, one.mode & 0o7777], [1234, 4321, 0o640]);
    assert.deepEqual([two.uid, two.gid, two.mode & 0o7777], [0, 0, 0o604]);
  });
});

test('export modes: files created with their mode where the umask keeps it, chmodded otherwise', async () => {
  await withVolume(async (volume, dir) => {
    const modes = [0o644, 0o600, 0o444, 0o400, 0o000, 0o640, 0o666, 0o777, 0o757, 0o4755, 0o2750, 0o1777, 0o755];
    await volume.mkdir('/m', { mode: 0o755 });
    for (const mode of modes) await writeVolFile(volume, `/m/f${mode.toString(8)}`, `mode ${mode.toString(8)}`, { mode, uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 });
    await volume.sync();
    // Under two umasks: 022 (0666 and 0777 are chmodded) and 0 (all but the set-ID and sticky ones are created as they are).
    for (const umask of [0o022, 0]) {
      const old = process.umask(umask);
      try {
        const out = join(dir, `out-${umask.toString(8)}`);
        const r = await exportTree(volume, '/m', out);
        assert.equal(r.files, modes.length);
        for (const mode of modes) {
          const st = await lstat(join(out, `f${mode.toString(8)}`));
          assert.equal((st.mode & 0o7777).toString(8), mode.toString(8), `f${mode.toString(8)} under umask ${umask.toString(8)}`);
        }
      } finally {
        process.umask(old);
      }
    }

    // A default ACL replaces the umask below it: a top with one (others get nothing) must not keep 0644 files from being 0644.
    const acl = join(dir, 'acl');
    await mkdir(acl);
    const entry = (tag: number, perm: number): Buffer => {
      const b = Buffer.alloc(8);
      b.writeUInt16LE(tag, 0);
      b.writeUInt16LE(perm, 2);
      b.writeUInt32LE(0xffffffff, 4);
      return b;
    };
    const version = Buffer.alloc(4);
    version.writeUInt32LE(2);
    let aclSet = xattrsAvailable();
    try {
      if (aclSet) setXattr(acl, 'system.posix_acl_default', Buffer.concat([version, entry(0x01, 7), entry(0x04, 5), entry(0x20, 0)]));
    } catch {
      aclSet = false;
    }
    if (aclSet) {
      await exportTree(volume, '/m', acl);
      for (const mode of modes) {
        const st = await lstat(join(acl, `f${mode.toString(8)}`));
        assert.equal((st.mode & 0o7777).toString(8), mode.toString(8), `f${mode.toString(8)} under a default ACL`);
      }
    } else {
      process.stderr.write('export-shortcuts: no default ACL here (file system or xattr addon); that part is skipped\n');
    }
  });
});
