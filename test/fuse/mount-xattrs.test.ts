// The computed attributes through real mounts: user.bazil.rbytes, rfiles,
// rsubdirs and rctime of directories equal `bazil du --json --exact`, in the
// live mount, in `.snap/NAME` and in a `mount --at` of the same point (exact
// there, whatever changed since); user.bazil.id is the inode id and
// user.bazil.manifest a content id; none is listed, none can be set or
// removed (EPERM live, EROFS in a past state), and stored user.* xattrs
// still work beside them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getXattr, listXattrs, removeXattr, setXattr } from '../../src/fs/xattr.js';
import { makeHome, mount, requireFuse, unmount } from './mount-harness.js';
import { changeSample, writeSample } from './past-helpers.js';

interface DuNode {
  path: string;
  rbytes: number;
  rfiles: number;
  rsubdirs: number;
  rctime: string;
  exact: boolean;
  children?: DuNode[];
}

const STATS = ['rbytes', 'rfiles', 'rsubdirs', 'rctime'] as const;

function flatten(n: DuNode): DuNode[] {
  return [n, ...(n.children ?? []).flatMap(flatten)];
}

function rctimeText(ns: string): string {
  const v = BigInt(ns);
  return `${v / 1_000_000_000n}.${(v % 1_000_000_000n).toString().padStart(9, '0')}`;
}

/** The errno name of a throwing call ('ok' if it did not throw). */
function errnoOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    // The addon's errors are BazilErrors naming the OS error in their data.
    const data = (err as { data?: { errno?: unknown; os?: unknown } }).data;
    const name = data?.errno ?? data?.os;
    return typeof name === 'string' ? name : String(err);
  }
}

/** Every directory's four figures as the mount at `root` gives them, beside du's. */
function assertStatsEqual(root: string, du: DuNode[], what: string): void {
  for (const node of du) {
    const dir = node.path === '/' ? root : join(root, node.path);
    const got = Object.fromEntries(STATS.map((s) => [s, getXattr(dir, `user.bazil.${s}`).toString()]));
    assert.deepEqual(got, {
      rbytes: String(node.rbytes), rfiles: String(node.rfiles), rsubdirs: String(node.rsubdirs), rctime: rctimeText(node.rctime),
    }, `${what}: ${node.path}`);
  }
}

test('xattrs: directory statistics equal du --exact live, in .snap and in mount --at; ids; read-only', { timeout: 180_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    const m = await mount(h, 'v');
    let past: string | undefined;
    try {
      await writeSample(m.dir);
      await writeFile(join(m.dir, 'same-as-a.txt'), 'hello\n');
      const du = async (): Promise<DuNode[]> => flatten(JSON.parse(await h.ok(['--json', 'du', 'v', '-d', '5', '--exact'])) as DuNode);
      const before = await du();
      assert.ok(before.length >= 4 && before.every((n) => n.exact));
      assert.equal(before[0]!.rfiles, 10);
      assertStatsEqual(m.dir, before, 'live');

      // Files: the inode id, and a content id equal for equal content; no statistics.
      const stat = JSON.parse(await h.ok(['--json', 'stat', 'v:/a.txt'])) as { id: string };
      assert.equal(getXattr(join(m.dir, 'a.txt'), 'user.bazil.id').toString(), stat.id);
      const hardId = getXattr(join(m.dir, 'sub', 'hard'), 'user.bazil.id').toString();
      assert.equal(hardId, getXattr(join(m.dir, 'big.bin'), 'user.bazil.id').toString(), 'hard links are one inode');
      const manifestA = getXattr(join(m.dir, 'a.txt'), 'user.bazil.manifest').toString();
      assert.match(manifestA, /^[0-9a-f]{64}$/);
      assert.equal(getXattr(join(m.dir, 'same-as-a.txt'), 'user.bazil.manifest').toString(), manifestA);
      assert.notEqual(getXattr(join(m.dir, 'big.bin'), 'user.bazil.manifest').toString(), manifestA);
      assert.equal(errnoOf(() => getXattr(join(m.dir, 'empty'), 'user.bazil.manifest')), 'ENODATA');
      assert.equal(errnoOf(() => getXattr(join(m.dir, 'a.txt'), 'user.bazil.rbytes')), 'ENODATA');
      assert.equal(errnoOf(() => getXattr(m.dir, 'user.bazil.manifest')), 'ENODATA');
      assert.equal(errnoOf(() => getXattr(m.dir, 'user.bazil.nonsense')), 'ENODATA');

      // Not listed, not settable, not removable; stored attributes work beside them.
      assert.deepEqual(listXattrs(m.dir), []);
      assert.deepEqual(listXattrs(join(m.dir, 'a.txt')), ['user.x']);
      for (const name of ['user.bazil.rbytes', 'user.bazil.rctime', 'user.bazil.id', 'user.bazil.manifest']) {
        assert.equal(errnoOf(() => setXattr(join(m.dir, 'a.txt'), name, Buffer.from('1'))), 'EPERM', `set ${name}`);
        assert.equal(errnoOf(() => removeXattr(m.dir, name)), 'EPERM', `remove ${name}`);
      }
      setXattr(m.dir, 'user.note', Buffer.from('root note'));
      assert.deepEqual(listXattrs(m.dir), ['user.note']);
      removeXattr(m.dir, 'user.note');

      // A past state keeps its figures however the present changes.
      // (The root's ctime moved with user.note: the figures at the snapshot are read again.)
      const then = await du();
      await h.ok(['snapshot', 'create', 'v', 'then']);
      await changeSample(m.dir, 1);
      await mkdir(join(m.dir, 'sub', 'more'));
      await writeFile(join(m.dir, 'sub', 'more', 'f'), Buffer.alloc(12_345));
      const after = await du();
      assert.notEqual(after[0]!.rbytes, then[0]!.rbytes);
      assertStatsEqual(m.dir, after, 'live after changes');
      assertStatsEqual(join(m.dir, '.snap', 'then'), then, '.snap/then');
      past = join(h.dir, 'past');
      await mkdir(past);
      await h.ok(['mount', 'v', past, '--at', 'then']);
      assertStatsEqual(past, then, 'mount --at then');
      assert.equal(getXattr(join(past, 'a.txt'), 'user.bazil.id').toString(), stat.id);
      assert.equal(getXattr(join(past, 'a.txt'), 'user.bazil.manifest').toString(), manifestA);
      assert.equal(getXattr(join(m.dir, '.snap', 'then', 'a.txt'), 'user.bazil.manifest').toString(), manifestA);
      assert.deepEqual(listXattrs(join(past, 'a.txt')), ['user.x']);
      for (const root of [past, join(m.dir, '.snap', 'then')]) {
        assert.equal(errnoOf(() => setXattr(root, 'user.bazil.rbytes', Buffer.from('1'))), 'EROFS');
        assert.equal(errnoOf(() => removeXattr(join(root, 'a.txt'), 'user.bazil.id')), 'EROFS');
      }
    } finally {
      if (past !== undefined) await unmount(h, past);
      await m.unmount();
    }
  } finally {
    await h.cleanup();
  }
});
