// Issue 5's acceptance for past states: "a past-state mount returns EROFS on
// writes and shows exactly what `bazil export --at` gives". A tree is
// written through a live mount, snapshotted, changed, a position taken,
// changed again; `bazil mount --at` the snapshot and the position (while the
// live mount stays) are compared with `bazil export --at` of the same points
// (lstat, content, symlink targets, mtimes, xattrs, hard links, diff -r),
// every write syscall from another process answers EROFS, and bad points are
// refused before anything is mounted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findFuseConnection } from '../../src/fuse/binding.js';
import { makeHome, mount, requireFuse, unmount, type TestHome } from './mount-harness.js';
import { assertAllErofs, assertSameTree, changeSample, tryWrites, writeSample } from './past-helpers.js';

interface MountJson {
  volume: string;
  dir: string;
  at?: string;
  position?: string;
  pid: number;
}

async function mountAt(h: TestHome, name: string, when: string): Promise<MountJson> {
  const dir = join(h.dir, name);
  await mkdir(dir, { recursive: true });
  return JSON.parse(await h.ok(['--json', 'mount', 'v', dir, '--at', when])) as MountJson;
}

async function lastPosition(h: TestHome): Promise<string> {
  const rows = JSON.parse(await h.ok(['--json', 'log', 'v', '-n', '1'])) as { position: string }[];
  return rows[0]!.position;
}

test('mount --at: a snapshot and a position, equal to export --at, EROFS for every write', { timeout: 180_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  const mounted: string[] = [];
  try {
    const live = await mount(h, 'v');
    try {
      await writeSample(live.dir);
      await h.ok(['snapshot', 'create', 'v', 'first']);
      await changeSample(live.dir, 1);
      const position = await lastPosition(h);
      await changeSample(live.dir, 2);

      const snap = await mountAt(h, 'at-snap', 'first');
      mounted.push(snap.dir);
      assert.equal(snap.at, 'first');
      assert.match(snap.position ?? '', /^@\d+$/);
      const pos = await mountAt(h, 'at-pos', `@${position}`);
      mounted.push(pos.dir);
      assert.equal(pos.position, `@${position}`);

      // `bazil mounts` names each mount's point.
      const list = JSON.parse(await h.ok(['--json', 'mounts'])) as MountJson[];
      assert.deepEqual(list.map((m) => [m.dir, m.at ?? null]).sort(), [[live.dir, null], [pos.dir, `@${position}`], [snap.dir, 'first']].sort());
      assert.match(await h.ok(['mounts']), /read-only as of first \(@\d+\)/);

      for (const [dir, when] of [[snap.dir, 'first'], [pos.dir, `@${position}`]] as const) {
        const out = join(h.dir, `export-${when.replace('@', 'at')}`);
        await h.ok(['export', 'v', out, '--at', when]);
        const nodes = await assertSameTree(dir, out, `mount --at ${when}`);
        // The past differs from the present, so the comparison says something.
        assert.ok(nodes.some((n) => n.path === '/a.txt' && n.xattrs['user.x'] !== Buffer.from('round 2').toString('hex')));
        // Hard links share an inode number in the mount too.
        const big = nodes.find((n) => n.path === '/big.bin')!;
        const hard = nodes.find((n) => n.path === '/sub/hard')!;
        assert.equal(big.ino, hard.ino);

        const answers = await tryWrites(dir, 'a.txt', 'sub', 'emptydir');
        assertAllErofs(answers, `mount --at ${when}`);
        assert.equal(answers['st_rdonly'], true, 'statvfs of a past-state mount says ST_RDONLY');
      }
      // The snapshot's content is the first round's, the position's the second's.
      assert.equal(await readFile(join(snap.dir, 'a.txt'), 'utf8'), 'hello\n');
      assert.equal(await readFile(join(pos.dir, 'a.txt'), 'utf8'), 'changed 1\n');
      // Nothing the write attempts did reached the log: the live tree is as it was.
      assert.equal(await readFile(join(live.dir, 'a.txt'), 'utf8'), 'changed 2\n');
      const fsck = await h.bazil(['fsck', 'v']);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    } finally {
      for (const dir of mounted) await unmount(h, dir);
      await live.unmount();
    }
  } finally {
    await h.cleanup();
  }
});

test('mount --at: bad points are refused with the history errors, nothing mounted', { timeout: 120_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    const live = await mount(h, 'v');
    try {
      await writeSample(live.dir);
      const dir = join(h.dir, 'bad');
      await mkdir(dir);
      const cases: [string, RegExp][] = [
        ['2026-13-45', /BAZIL_BAD_ARGUMENT/],
        ['@x', /BAZIL_BAD_ARGUMENT/],
        ['@0', /BAZIL_BEFORE_HISTORY/],
        ['@999999', /BAZIL_BAD_ARGUMENT/],
        ['1999-01-01', /BAZIL_BEFORE_HISTORY/],
        ['no-such-snapshot', /BAZIL_UNKNOWN_SNAPSHOT/],
      ];
      for (const [when, code] of cases) {
        const r = await h.bazil(['mount', 'v', dir, '--at', when]);
        assert.equal(r.code, 1, `--at ${when}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, code, `--at ${when}`);
        assert.equal(await findFuseConnection(dir), undefined, `--at ${when} left a mount`);
      }
      const list = JSON.parse(await h.ok(['--json', 'mounts'])) as MountJson[];
      assert.deepEqual(list.map((m) => m.dir), [live.dir]);
      // A malformed point fails before any daemon is asked: also without one.
      await live.unmount();
      const r = await h.bazil(['mount', 'v', dir, '--at', 'yesterday ago']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /BAZIL_BAD_ARGUMENT/);
      assert.match(await h.ok(['daemon', 'status']), /no daemon runs/);
      // An unknown snapshot starts the daemon, which refuses and exits again once idle.
      const s = await h.bazil(['mount', 'v', dir, '--at', 'nope']);
      assert.match(s.stderr, /BAZIL_UNKNOWN_SNAPSHOT/);
      assert.equal(await findFuseConnection(dir), undefined);
    } finally {
      if ((await findFuseConnection(join(h.dir, 'mnt'))) !== undefined) await live.unmount();
    }
  } finally {
    await h.cleanup();
  }
});
