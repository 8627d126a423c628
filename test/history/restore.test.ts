import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { boundedShrink } from '../lib/property.js';
import { isBazilError } from '../../errors/index.js';
import { openHistory, restorePath, walkTree } from '../../src/history/index.js';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import type { ProjectionReader, VolumeReader } from '../../src/volume/reader.js';
import { Volume } from '../../src/volume/volume.js';

interface Row {
  path: string;
  kind: string;
  mode: number;
  size: number;
  mtime: bigint;
  manifest: string | null;
  target: string | null;
  xattrs: [string, string][];
  /** The first path (in byte order) of the node: names of one hard-linked file share it. */
  group: string;
}

/** The tree as paths, with what a restore must give back (not ids, ctimes or nlink of removed nodes). */
async function rows(r: VolumeReader<ProjectionReader>): Promise<Row[]> {
  const out: Row[] = [];
  for (const n of (await walkTree(r, '/'))!.values()) {
    const group = [...n.paths].sort()[0]!;
    for (const path of n.paths) {
      out.push({
        path, kind: n.kind, mode: n.mode, size: n.size, mtime: n.mtime, manifest: n.manifest, target: n.target,
        xattrs: [...n.xattrs].sort(), group,
      });
    }
  }
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

const NAMES = ['a', 'b', 'c'];

interface Op {
  t: string;
  p: string[];
  q: string[];
  n: number;
  bytes: Uint8Array;
}

const arbOp: fc.Arbitrary<Op> = fc.record({
  t: fc.constantFrom('mkdir', 'mkdir', 'write', 'write', 'write', 'symlink', 'link', 'chmod', 'setxattr', 'rename', 'unlink', 'rmdir', 'truncate'),
  p: fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 2 }),
  q: fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 2 }),
  n: fc.nat(0o777),
  bytes: fc.uint8Array({ maxLength: 40 }),
});

/** Applies one random operation through the volume API; what the volume refuses (EEXIST, ENOENT, …) is skipped. */
async function perform(v: Volume, op: Op): Promise<void> {
  const p = `/${op.p.join('/')}`;
  const q = `/${op.q.join('/')}`;
  try {
    switch (op.t) {
      case 'mkdir': await v.mkdir(p, { mode: op.n | 0o700 }); break;
      case 'write': await v.writeFile(p, Buffer.from(op.bytes), { mode: op.n }); break;
      case 'symlink': await v.symlink(`target-${op.n}`, p); break;
      case 'link': await v.link(p, q); break;
      case 'chmod': await v.chmod(p, op.n); break;
      case 'setxattr': await v.setxattr(p, `user.k${op.n % 3}`, Buffer.from(op.bytes)); break;
      case 'rename': await v.rename(p, q); break;
      case 'unlink': await v.unlink(p); break;
      case 'rmdir': await v.rmdir(p); break;
      case 'truncate': await v.truncate(p, op.n); break;
    }
  } catch (err) {
    if (!isBazilError(err)) throw err;
  }
}

/** A fresh volume in `dir`, opened for the caller to close. */
async function freshVolume(dir: string): Promise<Volume> {
  const home = join(dir, 'home');
  const { home: h } = await initHome(home);
  await createVolume(h, 'v').finally(() => h.close());
  return Volume.open(home, 'v');
}

function position(v: Volume): bigint {
  return v.historySource().log.versionVector().pairs().reduce((s, [, seq]) => s + seq, 0n);
}

// The shrunk counterexample of BAZIL_SEED=398328376 (issue 4): two names hard-linked now, two
// separate files in the past. The restore kept the shared inode for both and gave it the last
// file's content and attributes, so the random test failed, and its shrinking (a home per try)
// looked like a hang.
test('restore: names that share an inode now but were separate files get separate files back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-restore-'));
  try {
    const v = await freshVolume(dir);
    try {
      await v.writeFile('/a', Buffer.from('one'), { mode: 0o640 });
      await v.setxattr('/a', 'user.k', Buffer.from('x'));
      await v.writeFile('/c', Buffer.from('two!'), { mode: 0o600 });
      const at = position(v);
      await v.unlink('/c');
      await v.link('/a', '/c');
      const past = await (await openHistory(v, { every: 5n })).at({ kind: 'position', count: at });
      const want = await rows(past.reader);
      const result = await restorePath(v, past.reader, '/');
      assert.deepEqual(await rows(v), want);
      assert.equal((await v.readFile('/a')).toString(), 'one');
      assert.equal((await v.readFile('/c')).toString(), 'two!');
      assert.ok(!(await v.stat('/a')).id.equals((await v.stat('/c')).id), 'two inodes again');
      assert.equal((await v.stat('/a')).nlink, 1);
      // /c becomes a new file: one unlink, then create, content, mode and mtime; /a keeps its inode.
      assert.deepEqual({ created: result.created, removed: result.removed }, { created: 1, removed: 1 });
      // Done: restoring again appends nothing.
      assert.equal((await restorePath(v, past.reader, '/')).events, 0);
    } finally {
      await v.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('restore: a hard link of the past comes back over separate files, across directories', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-restore-'));
  try {
    const v = await freshVolume(dir);
    try {
      await v.mkdir('/d');
      await v.writeFile('/d/x', Buffer.from('shared'));
      await v.link('/d/x', '/y');
      const at = position(v);
      await v.unlink('/y');
      await v.writeFile('/y', Buffer.from('other'));
      await v.writeFile('/d/x', Buffer.from('changed'));
      const end = position(v);
      const past = await (await openHistory(v, { every: 5n })).at({ kind: 'position', count: at });
      const want = await rows(past.reader);
      await restorePath(v, past.reader, '/');
      assert.deepEqual(await rows(v), want);
      assert.ok((await v.stat('/d/x')).id.equals((await v.stat('/y')).id), 'one inode again');
      assert.equal((await v.readFile('/y')).toString(), 'shared');
      // And back to the later state, where they were separate.
      const now = await (await openHistory(v, { every: 5n })).at({ kind: 'position', count: end });
      const later = await rows(now.reader);
      await restorePath(v, now.reader, '/');
      assert.deepEqual(await rows(v), later);
      assert.equal((await v.readFile('/d/x')).toString(), 'changed');
      assert.equal((await v.readFile('/y')).toString(), 'other');
    } finally {
      await v.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('property: restoring / at any past point makes the live tree equal to the view at that point', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-restore-'));
  try {
    const run = { n: 0, biggest: 0, events: 0 };
    // A random seed per run again: BAZIL_SEED=398328376 (1 random seed in 70) used to fail and shrink for hours
    // (the hard-link case of the tests above, fixed); 340 random seeds ran clean since (26 with BAZIL_SLOW=1).
    const seed = process.env.BAZIL_SEED !== undefined ? Number(process.env.BAZIL_SEED) : Date.now() % 2 ** 31;
    process.stderr.write(`# seed ${seed} (BAZIL_SEED=${seed} replays these runs)\n`);
    // Every try of a shrink makes a home and replays its operations (a second or so under load): unbounded,
    // the shrinking of one failure ran for hours and passed for a hang (issue 4). A bounded shrink reports it.
    const arbRun = boundedShrink(fc.tuple(fc.array(arbOp, { minLength: 20, maxLength: 50 }), fc.nat(), fc.nat()));
    await fc.assert(fc.asyncProperty(arbRun, async ([ops, pick1, pick2]) => {
      const home = join(dir, `home${run.n++}`);
      const { home: h } = await initHome(home);
      await createVolume(h, 'v').finally(() => h.close());
      const v = await Volume.open(home, 'v');
      try {
        const total = (): bigint => v.historySource().log.versionVector().pairs().reduce((s, [, seq]) => s + seq, 0n);
        const points: bigint[] = [total()];
        for (const op of ops) {
          await perform(v, op);
          if (total() !== points.at(-1)) points.push(total());
        }
        for (const pick of [pick1, pick2]) {
          const at = points[pick % points.length]!;
          const past = await (await openHistory(v, { every: 5n })).at({ kind: 'position', count: at });
          const want = await rows(past.reader);
          run.biggest = Math.max(run.biggest, want.length);
          const before = total();
          const result = await restorePath(v, past.reader, '/');
          assert.equal(total() - before, BigInt(result.events));
          run.events += result.events;
          assert.deepEqual(await rows(v), want, `restore to @${at}`);
          // The past before the restore is still there, unchanged.
          const again = await (await openHistory(v, { every: 5n })).at({ kind: 'position', count: at });
          assert.deepEqual(await rows(again.reader), want);
        }
        // Restoring the state it already has appends nothing.
        const now = await (await openHistory(v, { every: 5n })).at({ kind: 'now' });
        assert.equal((await restorePath(v, now.reader, '/')).events, 0);
      } finally {
        await v.close();
      }
    }), { numRuns: process.env.BAZIL_SLOW === '1' ? 60 : 15, seed });
    // Not vacuous: some run restored a tree with a few entries (random runs of 20-50 operations reach 4-10).
    assert.ok(run.biggest >= 4 && run.events >= 20, `the runs restored trees of up to ${run.biggest} entries with ${run.events} events`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
