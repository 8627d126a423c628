import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, isBazilError, type ErrorCode } from '../../errors/index.js';
import { arenaSetMigrations, ARENA_SET_FORMAT, latestVersion, validateMigrations } from '../../migrations/index.js';
import { migrate, type Migration } from '../../migrations/runner.js';
import type { FormatRecord } from '../../migrations/format-record.js';

const FORMAT = 'test-format';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-migrations-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function readRecord(dir: string): Promise<FormatRecord> {
  return JSON.parse(await readFile(join(dir, 'FORMAT.json'), 'utf8')) as FormatRecord;
}

async function writeRecord(dir: string, record: FormatRecord): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'FORMAT.json'), JSON.stringify(record));
}

/** Two migrations that note each run in `calls` and create a file, idempotently. */
function twoMigrations(calls: string[], failSecond: { times: number } = { times: 0 }): Migration[] {
  return [
    {
      id: 1,
      name: 'add-a',
      description: 'adds a',
      async up(dir) {
        calls.push('add-a');
        await writeFile(join(dir, 'a'), 'a');
      },
    },
    {
      id: 2,
      name: 'add-b',
      description: 'adds b',
      async up(dir) {
        calls.push('add-b');
        if (failSecond.times > 0) {
          failSecond.times -= 1;
          throw new Error('disk on fire');
        }
        await writeFile(join(dir, 'b'), 'b');
      },
    },
  ];
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isBazilError(err, code), `expected ${code}, got ${String(err)}`);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  });
}

test('a new directory is created at the latest version without running migrations', async (t) => {
  const dir = join(await tempDir(t), 'new', 'set');
  const calls: string[] = [];
  const result = await migrate(dir, FORMAT, twoMigrations(calls), { create: true, log: () => {} });
  assert.deepEqual(result, { from: 0, to: 3, applied: [] });
  assert.deepEqual(calls, []);
  assert.deepEqual(await readRecord(dir), { format: FORMAT, version: 3, applied: [] });
  assert.deepEqual(await readdir(dir), ['FORMAT.json']);
});

test('a directory without a record is refused unless create is set', async (t) => {
  const dir = await tempDir(t);
  await rejectsWith(migrate(dir, FORMAT, [], { log: () => {} }), ErrorCodes.NOT_FOUND, /no FORMAT\.json/);
  await rejectsWith(migrate(join(dir, 'missing'), FORMAT, [], { log: () => {} }), ErrorCodes.NOT_FOUND);
});

test('create refuses a directory that already holds files', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'data'), 'x');
  await rejectsWith(migrate(dir, FORMAT, [], { create: true, log: () => {} }), ErrorCodes.FORMAT_MISMATCH, /holds files/);
  assert.deepEqual(await readdir(dir), ['data']);
});

test('pending migrations run in id order, each announced and recorded', async (t) => {
  const dir = await tempDir(t);
  await migrate(dir, FORMAT, [], { create: true, log: () => {} });
  assert.equal((await readRecord(dir)).version, 1);

  const calls: string[] = [];
  const messages: string[] = [];
  const result = await migrate(dir, FORMAT, twoMigrations(calls), { log: (m) => messages.push(m) });
  assert.deepEqual(result, { from: 1, to: 3, applied: [1, 2] });
  assert.deepEqual(calls, ['add-a', 'add-b']);
  assert.deepEqual(messages, [
    `migrating ${dir} from version 1 to 2: adds a`,
    `migrating ${dir} from version 2 to 3: adds b`,
  ]);
  const record = await readRecord(dir);
  assert.equal(record.version, 3);
  assert.deepEqual(
    record.applied.map((a) => [a.id, a.name]),
    [
      [1, 'add-a'],
      [2, 'add-b'],
    ],
  );
  for (const a of record.applied) assert.equal(new Date(a.at).toISOString(), a.at);

  const again = await migrate(dir, FORMAT, twoMigrations(calls), { log: () => assert.fail('nothing to log') });
  assert.deepEqual(again, { from: 3, to: 3, applied: [] });
  assert.deepEqual(calls, ['add-a', 'add-b']);
});

test('a failing migration leaves the last good version, and the next run resumes there', async (t) => {
  const dir = await tempDir(t);
  await writeRecord(dir, { format: FORMAT, version: 1, applied: [] });
  const calls: string[] = [];
  const failSecond = { times: 1 };

  await assert.rejects(migrate(dir, FORMAT, twoMigrations(calls, failSecond), { log: () => {} }), (err: unknown) => {
    assert.ok(isBazilError(err, ErrorCodes.MIGRATION_FAILED));
    assert.match(err.message, /migration 2 \(add-b\).*disk on fire.*stays at version 2/);
    assert.equal(err.data.id, 2);
    assert.ok(err.cause instanceof Error && err.cause.message === 'disk on fire');
    assert.equal(err.toJSON().cause?.message, 'disk on fire');
    return true;
  });
  const afterFailure = await readRecord(dir);
  assert.equal(afterFailure.version, 2);
  assert.deepEqual(
    afterFailure.applied.map((a) => a.id),
    [1],
  );
  assert.ok(!(await readdir(dir)).includes('FORMAT.lock'), 'the lock is released after a failure');

  const result = await migrate(dir, FORMAT, twoMigrations(calls, failSecond), { log: () => {} });
  assert.deepEqual(result, { from: 2, to: 3, applied: [2] });
  assert.deepEqual(calls, ['add-a', 'add-b', 'add-b']);
  assert.equal((await readRecord(dir)).version, 3);
});

test('a version newer than the newest migration is refused with advice to upgrade', async (t) => {
  const dir = await tempDir(t);
  await writeRecord(dir, { format: FORMAT, version: 4, applied: [] });
  const calls: string[] = [];
  await rejectsWith(
    migrate(dir, FORMAT, twoMigrations(calls), { log: () => {} }),
    ErrorCodes.UNSUPPORTED_FORMAT,
    /version 4.*up to version 3.*Upgrade Bazil/,
  );
  assert.deepEqual(calls, []);
});

test('a record of another format is refused', async (t) => {
  const dir = await tempDir(t);
  await writeRecord(dir, { format: 'other-format', version: 1, applied: [] });
  await rejectsWith(migrate(dir, FORMAT, [], { log: () => {} }), ErrorCodes.FORMAT_MISMATCH, /other-format, not a test-format/);
});

test('a malformed record is reported as corrupt metadata', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'FORMAT.json'), '{"format": "test-format", "vers');
  await rejectsWith(migrate(dir, FORMAT, [], { log: () => {} }), ErrorCodes.CORRUPT_METADATA, /not valid JSON/);
  await writeFile(join(dir, 'FORMAT.json'), '{"format": "test-format", "version": 0, "applied": []}');
  await rejectsWith(migrate(dir, FORMAT, [], { log: () => {} }), ErrorCodes.CORRUPT_METADATA, /"version"/);
});

test('the record is replaced by rename, leaving no temp file behind', async (t) => {
  const dir = await tempDir(t);
  await writeRecord(dir, { format: FORMAT, version: 1, applied: [] });
  // A temp file a crashed writer left behind is cleaned up by the next writer.
  await writeFile(join(dir, 'FORMAT.json.tmp-1-deadbeef'), '{"partial');
  // Holding the old record open keeps its inode from being reused, and shows
  // whether it was ever modified in place.
  const old = await open(join(dir, 'FORMAT.json'), 'r');
  t.after(() => old.close());
  const oldText = await readFile(join(dir, 'FORMAT.json'), 'utf8');
  await migrate(dir, FORMAT, twoMigrations([]), { log: () => {} });
  const after = await stat(join(dir, 'FORMAT.json'));
  assert.notEqual(after.ino, (await old.stat()).ino, 'a new file was renamed over the record');
  assert.equal(await old.readFile('utf8'), oldText, 'the old record was never written in place');
  assert.equal((await readRecord(dir)).version, 3);
  assert.deepEqual((await readdir(dir)).sort(), ['FORMAT.json', 'a', 'b']);
});

test('migration lists must number ids 1, 2, 3, ... with unique names', async (t) => {
  const dir = await tempDir(t);
  const m = (id: number, name: string): Migration => ({ id, name, description: name, up: async () => {} });
  const lists: Migration[][] = [
    [m(1, 'a'), m(3, 'b')],
    [m(1, 'a'), m(1, 'b')],
    [m(2, 'a')],
    [m(1, 'a'), m(2, 'a')],
  ];
  for (const list of lists) {
    await rejectsWith(migrate(dir, FORMAT, list, { create: true, log: () => {} }), ErrorCodes.BAD_ARGUMENT);
  }
  await rejectsWith(migrate(dir, 'Bad Name', [], { create: true, log: () => {} }), ErrorCodes.BAD_ARGUMENT);
  assert.deepEqual(await readdir(dir), [], 'nothing is written for an invalid list');
});

test('a live lock holder makes migrate fail with LOCKED; a dead one is broken', async (t) => {
  const dir = await tempDir(t);
  await writeRecord(dir, { format: FORMAT, version: 1, applied: [] });
  const lock = (pid: number): string =>
    JSON.stringify({ pid, host: hostname(), token: 'x', at: 'then', purpose: 'test' });

  await writeFile(join(dir, 'FORMAT.lock'), lock(process.pid));
  await rejectsWith(migrate(dir, FORMAT, twoMigrations([]), { log: () => {} }), ErrorCodes.LOCKED, new RegExp(`process ${process.pid}`));
  assert.equal((await readRecord(dir)).version, 1);

  const exited = spawnSync(process.execPath, ['-e', '']);
  assert.equal(exited.status, 0);
  await writeFile(join(dir, 'FORMAT.lock'), lock(exited.pid));
  const result = await migrate(dir, FORMAT, twoMigrations([]), { log: () => {} });
  assert.deepEqual(result.applied, [1, 2]);
  assert.ok(!(await readdir(dir)).includes('FORMAT.lock'));
});

test('the arena-set registry is valid and starts at version 1', () => {
  assert.equal(ARENA_SET_FORMAT, 'bazil-arena-set');
  validateMigrations(ARENA_SET_FORMAT, arenaSetMigrations);
  assert.equal(latestVersion(arenaSetMigrations), arenaSetMigrations.length + 1);
});
