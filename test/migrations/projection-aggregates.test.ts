// The first real migration (projection schema 1 → 2: back-links and subtree
// aggregates, migrations/projection/0001-aggregates.ts): in place on a copy
// of the frozen v1 fixture home, idempotent, refusing a newer schema, and
// interrupted by SIGKILL at random moments, after which the next open
// resumes it and the volume is whole. The open runs migration 2 (sealing,
// 0002-encrypted-names.ts) right after it, so the kills land in either.

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
import { ProjectionCipher } from '../../src/projection/cipher.js';
import { SealingCodec } from '../../src/projection/record-codec.js';
import { SealedLevel } from '../../src/projection/sealed-level.js';
import { openHome } from '../../src/home/home.js';
import { openVolumeByName } from '../../src/home/volumes.js';
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

/** The projection cipher of the home's volume `name`, as Volume.open derives it. */
export async function cipherOf(home: string, name: string): Promise<ProjectionCipher> {
  const h = await openHome(home);
  try {
    const open = await openVolumeByName(h, name);
    try {
      return new ProjectionCipher(open.keys.projectionKey);
    } finally {
      await open.close();
    }
  } finally {
    await h.close();
  }
}

/** Every record of a LevelDB as stored, in key order. */
async function rawDump(dir: string): Promise<Buffer> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
  await db.open();
  try {
    const parts: Buffer[] = [];
    for await (const [k, v] of db.iterator()) parts.push(k, Buffer.from([0]), v, Buffer.from([1]));
    return Buffer.concat(parts);
  } finally {
    await db.close();
  }
}

test('the v1 fixture\'s projection migrates in place: version 2 recorded, identical content, aggregates exact at once, fsck clean', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    const expected = await copyFixtureHome(home);
    const proj = await projectionDir(home);
    assert.equal(await formatVersion(proj), null, 'the fixture predates projection format records');
    const v = await Volume.open(home, expected.volume);
    try {
      const record = JSON.parse(await readFile(join(proj, 'FORMAT.json'), 'utf8')) as { format: string; version: number; applied: { id: number; name: string }[] };
      assert.deepEqual([record.format, record.version, record.applied.map((a) => [a.id, a.name])], ['bazil-projection', 3, [[1, 'aggregates'], [2, 'encrypted-names']]]);
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

test('the migration is idempotent: run again over a projection it migrated it changes nothing', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    await copyFixtureHome(home);
    // Schema 2 is plaintext: the migration is run on the fixture's own (schema 1) projection, then again.
    const proj = await projectionDir(home);
    await aggregatesMigration.up(proj, quiet);
    const before = await rawDump(proj);
    assert.ok(before.includes(Buffer.from([0x07])), 'aggregates were written');
    await aggregatesMigration.up(proj, quiet);
    await aggregatesMigration.up(proj, quiet);
    assert.ok((await rawDump(proj)).equals(before));
  });
});

test('bad input: a projection of a newer schema is refused and left alone; a migration over a missing LevelDB fails with a stable code', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    await copyFixtureHome(home);
    const proj = await projectionDir(home);
    await writeFile(join(proj, 'FORMAT.json'), JSON.stringify({ format: 'bazil-projection', version: 99, applied: [] }));
    const cipher = await cipherOf(home, 'fixture');
    await assert.rejects(ProjectionStore.open(proj, cipher, { log: quiet }), (err: { code: string }) => err.code === 'BAZIL_UNSUPPORTED_FORMAT');
    assert.equal(await formatVersion(proj), 99);
    await writeFile(join(proj, 'FORMAT.json'), JSON.stringify({ format: 'bazil-arena-set', version: 1, applied: [] }));
    await assert.rejects(ProjectionStore.open(proj, cipher, { log: quiet }), (err: { code: string }) => err.code === 'BAZIL_FORMAT_MISMATCH');
    await assert.rejects(aggregatesMigration.up(join(dir, 'nothing-here'), quiet), (err: { code: string }) => err.code === 'BAZIL_IO');
  });
});

/**
 * Strips a current projection back to schema 1: what the volumes issue's
 * code wrote (the inode, entry, xattr and note tables in plaintext, no
 * derived ones, no key check, no record), in a fresh LevelDB.
 */
export async function downgrade(proj: string, cipher: ProjectionCipher, keepDerived = false): Promise<void> {
  const sealed = new ClassicLevel<Buffer, Buffer>(proj, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await sealed.open();
  const plainDir = `${proj}.plain`;
  const plain = new ClassicLevel<Buffer, Buffer>(plainDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await plain.open();
  try {
    const ops: { type: 'put'; key: Buffer; value: Buffer }[] = [];
    for await (const [key, value] of new SealedLevel(sealed, new SealingCodec(cipher)).iterator()) {
      if (key.equals(Buffer.from('\x01keycheck', 'latin1')) || (!keepDerived && key[0]! >= 0x06)) continue;
      ops.push({ type: 'put', key, value });
    }
    await plain.batch(ops, { sync: true });
  } finally {
    await plain.close();
    await sealed.close();
  }
  await rm(proj, { recursive: true });
  await cp(plainDir, proj, { recursive: true });
  await rm(plainDir, { recursive: true });
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
  await downgrade(await projectionDir(home), await cipherOf(home, 'big'));
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
    const cipher = await cipherOf(reference, 'big');
    const expectedDump = await dumpWithLinks(await projectionDir(reference), cipher);
    assert.equal(expectedRoot.rfiles, files + Math.ceil(files / 10));

    let interrupted = 0;
    for (let round = 0; round < rounds; round++) {
      const home = join(dir, `round-${round}`);
      await cp(template, home, { recursive: true });
      const proj = await projectionDir(home);
      // One or two kills in a row, each at a random moment of the open.
      for (let k = 0; k < 1 + (round % 2); k++) {
        const run = await runChild(home, Math.random() * clean.openedMs! * 1.2);
        if (run.killedAfterMs !== null && ((await formatVersion(proj)) ?? 1) < 3) interrupted++;
      }
      const v = await Volume.open(home, 'big');
      try {
        assert.equal(await formatVersion(proj), 3);
        assert.deepEqual((await readdir(proj)).filter((n) => n.startsWith('sealing.')), [], 'no stage of the sealing migration is left');
        // Every directory's aggregates once (the dump below covers the rest of the tree).
        if (round === rounds - 1) assert.deepEqual(await shallowTree(v), expectedTree);
        const root = await v.aggregates('/', { exact: true });
        assert.deepEqual([root.rbytes, root.rfiles, root.rsubdirs, root.rctime], [expectedRoot.rbytes, expectedRoot.rfiles, expectedRoot.rsubdirs, expectedRoot.rctime]);
      } finally {
        await v.close();
      }
      // The same events projected the same way: byte-identical to the fsck-clean reference, back-links included.
      assert.ok((await dumpWithLinks(proj, cipher)).equals(expectedDump), `round ${round}: the projection differs from the reference`);
      // Sealed: no file of the projection holds a name of the tree.
      for (const f of await readdir(proj)) {
        const bytes = await readFile(join(proj, f));
        assert.ok(!bytes.includes('f1999') && !bytes.includes('h1990'), `round ${round}: ${f} holds a name in the clear`);
      }
      await rm(home, { recursive: true, force: true });
    }
    assert.ok(interrupted >= 1, 'at least one kill landed inside the migration');
  });
});

async function dumpWithLinks(proj: string, cipher: ProjectionCipher): Promise<Buffer> {
  const store = await ProjectionStore.open(proj, cipher);
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
