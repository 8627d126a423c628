// The first real migration (projection schema 1 → 2: back-links and subtree
// aggregates, migrations/projection/0001-aggregates.ts): in place on a copy
// of the frozen v1 fixture home, idempotent, refusing a newer schema, and
// interrupted by SIGKILL at random moments, after which the next open
// resumes it and the volume is whole.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { aggregatesMigration } from '../../migrations/projection/0001-aggregates.js';
import { ProjectionStore } from '../../src/projection/store.js';
import { walkAggregates } from '../../src/volume/aggregates.js';
import { PROJECTION_DIR, Volume } from '../../src/volume/volume.js';
import { copyFixtureHome, listVolumeTree } from '../home/fixture-listing.js';

const CHILD = fileURLToPath(new URL('./projection-migrate-child.js', import.meta.url));
const SLOW = process.env.BAZIL_SLOW === '1';

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-migrate-projection-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function projectionDir(home: string): Promise<string> {
  const [id] = await readdir(join(home, 'volumes'));
  return join(home, 'volumes', id!, PROJECTION_DIR);
}

async function formatVersion(dir: string): Promise<number | null> {
  try {
    return (JSON.parse(await readFile(join(dir, 'FORMAT.json'), 'utf8')) as { version: number }).version;
  } catch {
    return null;
  }
}

const quiet = (): void => undefined;

test('the v1 fixture\'s projection migrates in place: version 2 recorded, identical content, aggregates exact at once, fsck clean', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    const expected = await copyFixtureHome(home);
    const proj = await projectionDir(home);
    assert.equal(await formatVersion(proj), null, 'the fixture predates projection format records');
    const v = await Volume.open(home, expected.volume);
    try {
      const record = JSON.parse(await readFile(join(proj, 'FORMAT.json'), 'utf8')) as { format: string; version: number; applied: { id: number; name: string }[] };
      assert.deepEqual([record.format, record.version, record.applied.map((a) => [a.id, a.name])], ['bazil-projection', 2, [[1, 'aggregates']]]);
      assert.deepEqual(await listVolumeTree(v), expected.nodes);
      // Computed by the migration itself: exact before any background settling.
      for (const path of ['/', '/docs', '/docs/notes', '/data', '/données']) {
        const got = await v.aggregates(path);
        assert.ok(got.exact, path);
        const walked = await walkAggregates(v, path);
        assert.deepEqual([got.rbytes, got.rfiles, got.rsubdirs, got.rctime], [walked.rbytes, walked.rfiles, walked.rsubdirs, walked.rctime], path);
      }
      const root = await v.aggregates('/');
      const files = expected.nodes.filter((n) => n.kind !== 'dir');
      assert.equal(root.rfiles, files.length);
      assert.equal(root.rbytes, files.filter((n) => n.kind === 'file').reduce((s, n) => s + n.size, 0));
      assert.equal(root.rsubdirs, expected.nodes.filter((n) => n.kind === 'dir').length - 1);
      // fsck replays the log and compares, back-links included.
      const report = await v.fsck();
      assert.deepEqual(report.problems, []);
    } finally {
      await v.close();
    }
  });
});

test('the migration is idempotent: run again over a migrated projection it changes nothing', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    const expected = await copyFixtureHome(home);
    await (await Volume.open(home, expected.volume)).close();
    const proj = await projectionDir(home);
    const store = await ProjectionStore.open(proj);
    const before = await store.dump({ links: true });
    const rootAgg = await store.aggregate((await store.rootId())!);
    await store.close();
    await aggregatesMigration.up(proj, quiet);
    await aggregatesMigration.up(proj, quiet);
    const again = await ProjectionStore.open(proj);
    try {
      assert.deepEqual(await again.dump({ links: true }), before);
      assert.deepEqual(await again.aggregate((await again.rootId())!), rootAgg);
    } finally {
      await again.close();
    }
  });
});

test('bad input: a projection of a newer schema is refused and left alone; a migration over a missing LevelDB fails with a stable code', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    await copyFixtureHome(home);
    const proj = await projectionDir(home);
    await writeFile(join(proj, 'FORMAT.json'), JSON.stringify({ format: 'bazil-projection', version: 99, applied: [] }));
    await assert.rejects(ProjectionStore.open(proj, { log: quiet }), (err: { code: string }) => err.code === 'BAZIL_UNSUPPORTED_FORMAT');
    assert.equal(await formatVersion(proj), 99);
    await writeFile(join(proj, 'FORMAT.json'), JSON.stringify({ format: 'bazil-arena-set', version: 1, applied: [] }));
    await assert.rejects(ProjectionStore.open(proj, { log: quiet }), (err: { code: string }) => err.code === 'BAZIL_FORMAT_MISMATCH');
    await assert.rejects(aggregatesMigration.up(join(dir, 'nothing-here'), quiet), (err: { code: string }) => err.code === 'BAZIL_IO');
  });
});

/** Strips a current projection back to schema 1: what the volumes issue's code wrote (same inode, entry, xattr and note tables, no derived ones, no record). */
async function downgrade(proj: string): Promise<void> {
  const db = new ClassicLevel<Buffer, Buffer>(proj, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  try {
    for (const tag of [0x06, 0x07, 0x08]) await db.clear({ gte: Buffer.from([tag]), lt: Buffer.from([tag + 1]) });
  } finally {
    await db.close();
  }
  await rm(join(proj, 'FORMAT.json'));
}

/** A v1 home with `files` nodes in a few levels of directories, sizes set by truncate (no content needed). */
async function makeV1Home(home: string, files: number): Promise<void> {
  const { home: h } = await initHome(home);
  await createVolume(h, 'big').finally(() => h.close());
  const v = await Volume.open(home, 'big');
  try {
    await v.batch(async (b) => {
      const root = await v.resolve('/');
      const dirs: Buffer[] = [root];
      for (let d = 0; d < Math.max(4, Math.floor(files / 50)); d++) {
        const parent = dirs[Math.floor(d / 3)]!;
        dirs.push(await b.create({ type: 'mkdir', parent, name: `d${d}`, mode: 0o755, uid: 0, gid: 0 }));
      }
      for (let i = 0; i < files; i++) {
        const inode = await b.create({ type: 'create', parent: dirs[i % dirs.length]!, name: `f${i}`, mode: 0o644, uid: 0, gid: 0 });
        await b.append({ type: 'truncate', inode, size: (i * 7919) % 100_000 });
        if (i % 10 === 0) await b.append({ type: 'link', inode, parent: root, name: `h${i}` });
      }
    });
  } finally {
    await v.close();
  }
  await downgrade(await projectionDir(home));
}

interface ChildRun {
  killedAfterMs: number | null;
  openedMs: number | null;
}

/** Runs the child; with `killAfterMs`, SIGKILLs it that long after it is ready (if still running). */
function runChild(home: string, killAfterMs: number | null): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, home, 'big'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (killAfterMs !== null && timer === undefined && out.includes('ready\n')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const opened = /opened (\d+)/.exec(out);
      if (signal === null && code !== 0) reject(new Error(`child failed (${code}): ${err}`));
      else resolve({ killedAfterMs: signal === 'SIGKILL' ? killAfterMs : null, openedMs: opened === null ? null : Number(opened[1]) });
    });
  });
}

test('a migration killed by SIGKILL at random moments resumes at the next open, and the volume is whole', async () => {
  const files = SLOW ? 30_000 : 2000;
  const rounds = SLOW ? 20 : 5;
  await withTemp(async (dir) => {
    const template = join(dir, 'template');
    await makeV1Home(template, files);
    // The expected state, from an uninterrupted migration of a copy; its time sets the window the kills aim at.
    const reference = join(dir, 'reference');
    await cp(template, reference, { recursive: true });
    const clean = await runChild(reference, null);
    assert.ok(clean.openedMs !== null);
    const ref = await Volume.open(reference, 'big');
    const expectedTree = await shallowTree(ref);
    const expectedRoot = await ref.aggregates('/', { exact: true });
    assert.deepEqual((await ref.fsck()).problems, []);
    await ref.close();
    const expectedDump = await dumpWithLinks(await projectionDir(reference));
    assert.equal(expectedRoot.rfiles, files + Math.ceil(files / 10));

    let interrupted = 0;
    for (let round = 0; round < rounds; round++) {
      const home = join(dir, `round-${round}`);
      await cp(template, home, { recursive: true });
      const proj = await projectionDir(home);
      // One or two kills in a row, each at a random moment of the open.
      for (let k = 0; k < 1 + (round % 2); k++) {
        const run = await runChild(home, Math.random() * clean.openedMs! * 1.2);
        if (run.killedAfterMs !== null && ((await formatVersion(proj)) ?? 1) < 2) interrupted++;
      }
      const v = await Volume.open(home, 'big');
      try {
        assert.equal(await formatVersion(proj), 2);
        // Every directory's aggregates once (the dump below covers the rest of the tree).
        if (round === rounds - 1) assert.deepEqual(await shallowTree(v), expectedTree);
        const root = await v.aggregates('/', { exact: true });
        assert.deepEqual([root.rbytes, root.rfiles, root.rsubdirs, root.rctime], [expectedRoot.rbytes, expectedRoot.rfiles, expectedRoot.rsubdirs, expectedRoot.rctime]);
      } finally {
        await v.close();
      }
      // The same events projected the same way: byte-identical to the fsck-clean reference, back-links included.
      assert.ok((await dumpWithLinks(proj)).equals(expectedDump), `round ${round}: the projection differs from the reference`);
      await rm(home, { recursive: true, force: true });
    }
    assert.ok(interrupted >= 1, 'at least one kill landed inside the migration');
  });
});

async function dumpWithLinks(proj: string): Promise<Buffer> {
  const store = await ProjectionStore.open(proj);
  try {
    return await store.dump({ links: true });
  } finally {
    await store.close();
  }
}

/** Names, kinds and sizes of the whole tree, plus each directory's exact aggregates. */
async function shallowTree(v: Volume): Promise<string[]> {
  const out: string[] = [];
  const visit = async (p: string): Promise<void> => {
    const agg = await v.aggregates(p, { exact: true });
    out.push(`${p} dir ${agg.rbytes} ${agg.rfiles} ${agg.rsubdirs}`);
    for (let after: string | undefined; ;) {
      const page = await v.readdir(p, { after, limit: 1000 });
      if (page.length === 0) break;
      for (const e of page) {
        const child = p === '/' ? `/${e.name}` : `${p}/${e.name}`;
        const a = await v.getattr(e.id);
        if (a.kind === 'dir') await visit(child);
        else out.push(`${child} ${a.kind} ${a.size} ${a.nlink}`);
      }
      after = page[page.length - 1]!.name;
    }
  };
  await visit('/');
  return out;
}
