// The two file layers under the arena engine, on real temp directories:
// NodeFileSystem (the real one, and how it maps OS errors) and
// FaultFileSystem (op counting, injected failures and the power-cut model
// that crash tests rely on). Post-cut state is always checked with plain
// node:fs, the way a test of the engine would reopen the directory.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { BazilError, ErrorCodes, isBazilError, type ErrorCode } from '../../errors/index.js';
import { FaultFileSystem, isPowerCut } from '../../arena/fault-fs.js';
import type { ArenaFile, FileSystem } from '../../arena/file-system.js';
import { loadNative } from '../../arena/native.js';
import { NodeFileSystem, nodeFileSystem } from '../../arena/node-fs.js';

async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bazil-fault-fs-'));
  try {
    await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

function readText(file: string): string {
  return fs.readFileSync(file, 'utf8');
}

/** The names a reopened directory shows, sorted. */
function listing(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

function append(file: ArenaFile, data: string): void {
  file.write(bytes(data), 0, data.length, file.size());
}

/** Creates `name` through `fsys` with `content`, synced, and makes its name durable. */
async function createDurable(fsys: FileSystem, dir: string, name: string, content: string): Promise<void> {
  const file = fsys.open(path.join(dir, name), 'create');
  append(file, content);
  await file.sync();
  file.close();
  await fsys.syncDir(dir);
}

function throwsCode(fn: () => unknown, code: ErrorCode): BazilError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(isBazilError(caught, code), `expected ${code}, got ${String(caught)}`);
  return caught;
}

function assertPowerCut(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => isPowerCut(err) && (err as BazilError).message === 'power cut');
}

function osCode(err: BazilError): string | undefined {
  return (err.cause as NodeJS.ErrnoException | undefined)?.code;
}

describe('NodeFileSystem', () => {
  it('writes, reads, truncates and syncs a file', () =>
    withTempDir(async (dir) => {
      const file = path.join(dir, 'f');
      // Several MiB so that a single write(2) may come back short.
      const data = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 31) & 0xff);
      const f = nodeFileSystem.open(file, 'create');
      f.write(data, 0, data.length, 0);
      assert.equal(f.size(), data.length);
      await f.sync();

      const back = new Uint8Array(data.length);
      assert.equal(f.read(back, 0, back.length, 0), data.length);
      assert.deepEqual(back, data);
      const tail = new Uint8Array(16);
      assert.equal(f.read(tail, 0, 16, data.length - 4), 4, 'a read past the end is short');

      f.truncate(10);
      assert.equal(f.size(), 10);
      f.close();
      f.close();
      assert.equal(nodeFileSystem.stat(file).size, 10);
      assert.deepEqual(fs.readFileSync(file), Buffer.from(data.subarray(0, 10)));

      throwsCode(() => f.size(), ErrorCodes.CLOSED);
      throwsCode(() => f.write(data, 0, 1, 0), ErrorCodes.CLOSED);
      await assert.rejects(f.sync(), (err: unknown) => isBazilError(err, ErrorCodes.CLOSED));
    }));

  it('opens read-only, read-write and exclusive-create', () =>
    withTempDir((dir) => {
      const file = path.join(dir, 'f');
      fs.writeFileSync(file, 'abc');
      const ro = nodeFileSystem.open(file, 'r');
      const err = throwsCode(() => ro.write(bytes('x'), 0, 1, 0), ErrorCodes.IO);
      assert.equal(osCode(err), 'EBADF');
      ro.close();

      const rw = nodeFileSystem.open(file, 'rw');
      rw.write(bytes('X'), 0, 1, 1);
      rw.close();
      assert.equal(readText(file), 'aXc', 'rw neither truncates nor appends');

      const exists = throwsCode(() => nodeFileSystem.open(file, 'create'), ErrorCodes.IO);
      assert.equal(osCode(exists), 'EEXIST');
      assert.equal(exists.data['path'], file);
    }));

  it('maps ENOENT to BAZIL_NOT_FOUND with the path and OS error', () =>
    withTempDir(async (dir) => {
      const missing = path.join(dir, 'missing');
      const calls: Array<() => unknown> = [
        () => nodeFileSystem.open(missing, 'r'),
        () => nodeFileSystem.open(missing, 'rw'),
        () => nodeFileSystem.open(path.join(missing, 'f'), 'create'),
        () => nodeFileSystem.stat(missing),
        () => nodeFileSystem.unlink(missing),
        () => nodeFileSystem.rename(missing, path.join(dir, 'other')),
        () => nodeFileSystem.readdir(missing),
      ];
      for (const call of calls) {
        const err = throwsCode(call, ErrorCodes.NOT_FOUND);
        assert.equal(osCode(err), 'ENOENT');
        assert.equal(typeof err.data['path'], 'string');
      }
      await assert.rejects(nodeFileSystem.syncDir(missing), (err: unknown) =>
        isBazilError(err, ErrorCodes.NOT_FOUND),
      );
    }));

  it('answers exists, readdir, mkdirp, rename and stat', () =>
    withTempDir(async (dir) => {
      const nested = path.join(dir, 'a', 'b');
      nodeFileSystem.mkdirp(nested);
      nodeFileSystem.mkdirp(nested);
      const file = path.join(nested, 'f');
      fs.writeFileSync(file, 'one');
      fs.writeFileSync(path.join(nested, 'g'), 'two');

      assert.equal(nodeFileSystem.exists(file), true);
      assert.equal(nodeFileSystem.exists(path.join(nested, 'nope')), false);
      assert.equal(nodeFileSystem.exists(path.join(file, 'below-a-file')), false, 'ENOTDIR is not there');
      assert.deepEqual(nodeFileSystem.readdir(nested).sort(), ['f', 'g']);

      nodeFileSystem.rename(path.join(nested, 'g'), file);
      assert.equal(readText(file), 'two', 'rename replaces the target');
      const st = nodeFileSystem.stat(file);
      assert.equal(st.size, 3);
      assert.equal(typeof st.blocks, 'number');
      await nodeFileSystem.syncDir(nested);
      throwsCode(() => nodeFileSystem.mkdirp(path.join(file, 'sub')), ErrorCodes.IO);
    }));

  it('closes a file while its sync is running without failing the sync', () =>
    withTempDir(async (dir) => {
      const f = nodeFileSystem.open(path.join(dir, 'f'), 'create');
      append(f, 'data');
      const pending = f.sync();
      f.close();
      await pending;
      throwsCode(() => f.read(new Uint8Array(1), 0, 1, 0), ErrorCodes.CLOSED);
    }));

  it('lets programming errors through unwrapped', () =>
    withTempDir((dir) => {
      const f = nodeFileSystem.open(path.join(dir, 'f'), 'create');
      try {
        assert.throws(
          () => f.write(new Uint8Array(4), 0, 8, 0),
          (err: unknown) => err instanceof RangeError && !(err instanceof BazilError),
        );
      } finally {
        f.close();
      }
    }));

  it('refuses punchHole and maps nothing without the native addon', () =>
    withTempDir((dir) => {
      const saved = process.env['BAZIL_NO_NATIVE'];
      process.env['BAZIL_NO_NATIVE'] = '1';
      const f = new NodeFileSystem().open(path.join(dir, 'f'), 'create');
      try {
        append(f, 'abcdef');
        assert.equal(f.map(), null);
        throwsCode(() => f.punchHole(0, 2), ErrorCodes.NATIVE_UNAVAILABLE);
      } finally {
        f.close();
        if (saved === undefined) delete process.env['BAZIL_NO_NATIVE'];
        else process.env['BAZIL_NO_NATIVE'] = saved;
      }
    }));

  it('punches holes and maps files with the native addon', { skip: loadNative() === null }, () =>
    withTempDir((dir) => {
      const f = nodeFileSystem.open(path.join(dir, 'f'), 'create');
      try {
        append(f, 'abcdefgh');
        f.punchHole(2, 3);
        assert.equal(f.size(), 8);
        assert.deepEqual(f.map(), new Uint8Array([97, 98, 0, 0, 0, 102, 103, 104]));
      } finally {
        f.close();
      }
    }));
});

describe('FaultFileSystem', () => {
  it('counts each op once, failed or not, and logs them', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem(nodeFileSystem, { log: true });
      const a = path.join(dir, 'a');
      ffs.mkdirp(dir);
      const f = ffs.open(a, 'create');
      f.write(bytes('xy'), 0, 2, 0);
      f.read(new Uint8Array(2), 0, 2, 0);
      f.size();
      await f.sync();
      f.truncate(1);
      f.map();
      try {
        f.punchHole(0, 1);
      } catch (err) {
        assert.ok(isBazilError(err, ErrorCodes.NATIVE_UNAVAILABLE), String(err));
      }
      f.close();
      ffs.exists(a);
      ffs.stat(a);
      ffs.readdir(dir);
      await ffs.syncDir(dir);
      ffs.rename(a, path.join(dir, 'b'));
      ffs.unlink(path.join(dir, 'b'));
      assert.throws(() => ffs.unlink(path.join(dir, 'b')));

      // size() and close() are not counted.
      const ops = ['mkdirp', 'open', 'write', 'read', 'sync', 'truncate', 'map', 'punchHole'];
      ops.push('exists', 'stat', 'readdir', 'syncDir', 'rename', 'unlink', 'unlink');
      assert.deepEqual(
        ffs.log?.map((r) => r.op),
        ops,
      );
      assert.equal(ffs.ops, ops.length);
      assert.deepEqual(ffs.log?.map((r) => r.seq), ops.map((_, i) => i + 1));
      assert.equal(ffs.log?.[12]?.to, path.join(dir, 'b'));
      assert.equal(new FaultFileSystem().log, null, 'no log unless asked for');
    }));

  it('loses unsynced appends at a cut and keeps synced ones', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      const file = path.join(dir, 'log');
      const f = ffs.open(file, 'create');
      append(f, 'durable;');
      await f.sync();
      await ffs.syncDir(dir);
      append(f, 'lost;');
      ffs.powerCut();
      assert.equal(readText(file), 'durable;');
      assert.deepEqual(listing(dir), ['log']);
    }));

  it('counts a sync only for writes issued before it and only once it completes', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      const file = path.join(dir, 'log');
      await createDurable(ffs, dir, 'log', 'a;');
      const f = ffs.open(file, 'rw');
      append(f, 'b;');
      const first = f.sync();
      append(f, 'c;');
      await first;
      append(f, 'd;');
      const second = f.sync();
      // The second sync has not completed (its callback cannot run before
      // this synchronous code yields), so it must not count.
      ffs.powerCut();
      await assert.rejects(second, isPowerCut);
      assert.equal(readText(file), 'a;b;');
    }));

  it('restores durable bytes overwritten or truncated without a sync', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      const file = path.join(dir, 'f');
      await createDurable(ffs, dir, 'f', '0123456789');
      const f = ffs.open(file, 'rw');
      f.write(bytes('AB'), 0, 2, 1);
      await f.sync();
      f.write(bytes('XXXXXX'), 0, 6, 6);
      f.truncate(4);
      f.write(bytes('YY'), 0, 2, 8);
      f.truncate(20);
      f.write(bytes('ZZ'), 0, 2, 0);
      ffs.powerCut();
      assert.equal(readText(file), '0AB3456789');
    }));

  it('treats files that existed before it as durable as found', () =>
    withTempDir(async (dir) => {
      const file = path.join(dir, 'old');
      fs.writeFileSync(file, 'as found');
      fs.writeFileSync(path.join(dir, 'other'), 'untouched');
      const ffs = new FaultFileSystem();
      const f = ffs.open(file, 'rw');
      f.truncate(2);
      append(f, '!!');
      ffs.unlink(path.join(dir, 'other'));
      ffs.powerCut();
      assert.equal(readText(file), 'as found');
      assert.equal(readText(path.join(dir, 'other')), 'untouched');
    }));

  it('makes a created file disappear unless its directory was synced', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      const kept = ffs.open(path.join(dir, 'kept'), 'create');
      append(kept, 'synced');
      await kept.sync();
      const empty = ffs.open(path.join(dir, 'empty'), 'create');
      append(empty, 'never synced');
      await ffs.syncDir(dir);
      const gone = ffs.open(path.join(dir, 'gone'), 'create');
      append(gone, 'data');
      await gone.sync();
      ffs.powerCut();
      assert.deepEqual(listing(dir), ['empty', 'kept']);
      assert.equal(readText(path.join(dir, 'kept')), 'synced');
      assert.equal(readText(path.join(dir, 'empty')), '', 'the name is durable, the bytes are not');
    }));

  it('reverts a rename without syncDir and keeps one with it', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      await createDurable(ffs, dir, 'tmp1', 'one');
      await createDurable(ffs, dir, 'tmp2', 'two');
      await createDurable(ffs, dir, 'target', 'old');
      ffs.rename(path.join(dir, 'tmp1'), path.join(dir, 'done'));
      await ffs.syncDir(dir);
      ffs.rename(path.join(dir, 'tmp2'), path.join(dir, 'target'));
      assert.deepEqual(ffs.readdir(dir).sort(), ['done', 'target']);
      assert.equal(readText(path.join(dir, 'target')), 'two');
      ffs.powerCut();
      assert.deepEqual(listing(dir), ['done', 'target', 'tmp2']);
      assert.equal(readText(path.join(dir, 'done')), 'one');
      assert.equal(readText(path.join(dir, 'target')), 'old', 'the replaced file comes back');
      assert.equal(readText(path.join(dir, 'tmp2')), 'two');
    }));

  it('brings back a file unlinked without syncDir, with its durable bytes', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      await createDurable(ffs, dir, 'doomed', 'durable');
      await createDurable(ffs, dir, 'dead', 'x');
      ffs.unlink(path.join(dir, 'dead'));
      await ffs.syncDir(dir);
      assert.deepEqual(listing(dir), ['doomed'], 'nothing hidden is left once the unlink is durable');

      const f = ffs.open(path.join(dir, 'doomed'), 'rw');
      append(f, '+unsynced');
      ffs.unlink(path.join(dir, 'doomed'));
      assert.equal(ffs.exists(path.join(dir, 'doomed')), false);
      assert.deepEqual(ffs.readdir(dir), []);
      append(f, '+after-unlink');
      ffs.powerCut();
      assert.deepEqual(listing(dir), ['doomed']);
      assert.equal(readText(path.join(dir, 'doomed')), 'durable');
    }));

  it('keeps a synced write to a file whose unlink was not durable', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      await createDurable(ffs, dir, 'f', 'a');
      const f = ffs.open(path.join(dir, 'f'), 'rw');
      ffs.unlink(path.join(dir, 'f'));
      append(f, 'b');
      await f.sync();
      ffs.powerCut();
      assert.equal(readText(path.join(dir, 'f')), 'ab');
    }));

  it('makes each directory of a cross-directory rename durable on its own', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      const from = path.join(dir, 'from');
      const to = path.join(dir, 'to');
      ffs.mkdirp(from);
      ffs.mkdirp(to);
      await createDurable(ffs, from, 'f', 'content');
      ffs.rename(path.join(from, 'f'), path.join(to, 'f'));
      await ffs.syncDir(to);
      ffs.powerCut();
      assert.equal(readText(path.join(from, 'f')), 'content');
      assert.equal(readText(path.join(to, 'f')), 'content');
    }));

  it('fails one op with a transient fault', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      const f = ffs.open(path.join(dir, 'f'), 'create');
      ffs.failAt(ffs.ops + 2);
      append(f, 'a');
      const err = throwsCode(() => append(f, 'b'), ErrorCodes.IO);
      assert.equal(osCode(err), 'EIO');
      assert.equal(isPowerCut(err), false);
      append(f, 'c');
      await f.sync();
      f.close();
      assert.equal(readText(path.join(dir, 'f')), 'ac', 'the failed write did not happen');
    }));

  it('fails every op from then on with a persistent fault', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      const f = ffs.open(path.join(dir, 'f'), 'create');
      ffs.failAt(ffs.ops + 2, { persistent: true });
      append(f, 'a');
      throwsCode(() => append(f, 'b'), ErrorCodes.IO);
      throwsCode(() => ffs.exists(dir), ErrorCodes.IO);
      await assert.rejects(f.sync(), (err: unknown) => isBazilError(err, ErrorCodes.IO) && !isPowerCut(err));
      ffs.clearFaults();
      await f.sync();
      f.close();
    }));

  it('fails only the ops a filter picks, from op n on', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      const f = ffs.open(path.join(dir, 'f'), 'create');
      ffs.failAt(ffs.ops + 1, { ops: ['sync'] });
      ffs.failAt(ffs.ops + 1, { ops: (op) => op.op === 'rename' && op.to === path.join(dir, 'g'), persistent: true });
      append(f, 'a');
      f.read(new Uint8Array(1), 0, 1, 0);
      await assert.rejects(f.sync(), (err: unknown) => isBazilError(err, ErrorCodes.IO));
      await f.sync();
      f.close();
      ffs.rename(path.join(dir, 'f'), path.join(dir, 'h'));
      throwsCode(() => ffs.rename(path.join(dir, 'h'), path.join(dir, 'g')), ErrorCodes.IO);
      throwsCode(() => ffs.rename(path.join(dir, 'h'), path.join(dir, 'g')), ErrorCodes.IO);
      assert.deepEqual(listing(dir), ['h']);
    }));

  it('commits nothing when a sync fails', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      await createDurable(ffs, dir, 'f', 'a');
      const f = ffs.open(path.join(dir, 'f'), 'rw');
      append(f, 'b');
      ffs.failAt(ffs.ops + 1, { ops: ['sync'] });
      await assert.rejects(f.sync());
      ffs.powerCut();
      assert.equal(readText(path.join(dir, 'f')), 'a');
    }));

  it('refuses fault positions that have already passed', () => {
    const ffs = new FaultFileSystem();
    ffs.exists(os.tmpdir());
    throwsCode(() => ffs.failAt(1), ErrorCodes.BAD_ARGUMENT);
    throwsCode(() => ffs.powerCutAt(0), ErrorCodes.BAD_ARGUMENT);
    throwsCode(() => ffs.failAt(2.5), ErrorCodes.BAD_ARGUMENT);
  });

  it('cuts the power at op n instead of performing it', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      const f = ffs.open(path.join(dir, 'f'), 'create');
      append(f, 'a');
      await f.sync();
      await ffs.syncDir(dir);
      ffs.powerCutAt(ffs.ops + 2);
      append(f, 'b');
      assert.equal(ffs.isCut, false);
      assertPowerCut(() => ffs.rename(path.join(dir, 'f'), path.join(dir, 'g')));
      assert.equal(ffs.isCut, true);
      assert.deepEqual(listing(dir), ['f']);
      assert.equal(readText(path.join(dir, 'f')), 'a');
    }));

  it('throws power cut from every call after a cut, and leaves the directory alone', () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      await createDurable(ffs, dir, 'f', 'abc');
      const f = ffs.open(path.join(dir, 'f'), 'rw');
      ffs.powerCut();
      const before = ffs.ops;
      const file = path.join(dir, 'f');
      const buf = new Uint8Array(1);
      for (const call of [
        () => f.size(),
        () => f.read(buf, 0, 1, 0),
        () => f.write(buf, 0, 1, 0),
        () => f.truncate(0),
        () => f.punchHole(0, 1),
        () => f.map(),
        () => f.close(),
        () => ffs.open(file, 'r'),
        () => ffs.open(path.join(dir, 'new'), 'create'),
        () => ffs.rename(file, path.join(dir, 'g')),
        () => ffs.unlink(file),
        () => ffs.readdir(dir),
        () => ffs.mkdirp(path.join(dir, 'd')),
        () => ffs.exists(file),
        () => ffs.stat(file),
      ]) {
        assertPowerCut(call);
      }
      await assert.rejects(f.sync(), isPowerCut);
      await assert.rejects(ffs.syncDir(dir), isPowerCut);
      assert.equal(ffs.ops, before, 'a dead process counts nothing');
      ffs.powerCut();
      assert.deepEqual(listing(dir), ['f']);
      assert.equal(readText(file), 'abc');
    }));

  it('models punched holes as writes of zeros', { skip: loadNative() === null }, () =>
    withTempDir(async (dir) => {
      const ffs = new FaultFileSystem();
      await createDurable(ffs, dir, 'kept', 'abcdef');
      await createDurable(ffs, dir, 'undone', 'abcdef');
      const kept = ffs.open(path.join(dir, 'kept'), 'rw');
      kept.punchHole(1, 2);
      await kept.sync();
      const undone = ffs.open(path.join(dir, 'undone'), 'rw');
      const view = undone.map();
      undone.punchHole(1, 2);
      assert.equal(view === null ? null : text(view), 'abcdef', 'map() is a copy, immune to later changes');
      ffs.powerCut();
      assert.equal(readText(path.join(dir, 'kept')), 'a\0\0def');
      assert.equal(readText(path.join(dir, 'undone')), 'abcdef');
    }));

  it('refuses to rename directories', () =>
    withTempDir((dir) => {
      const ffs = new FaultFileSystem();
      ffs.mkdirp(path.join(dir, 'd'));
      throwsCode(() => ffs.rename(path.join(dir, 'd'), path.join(dir, 'e')), ErrorCodes.BAD_ARGUMENT);
    }));

  // An fsx-style check: any sequence of creates, writes, truncates, syncs,
  // renames, unlinks and directory syncs, cut at the end, leaves exactly
  // what a simple model of "durable at the last completed sync" predicts.
  it('leaves what the durability model predicts after any sequence of ops', async () => {
    const name = fc.constantFrom('a', 'b', 'c');
    const command = fc.oneof(
      fc.record({ kind: fc.constant('create' as const), name }),
      fc.record({
        kind: fc.constant('write' as const),
        name,
        position: fc.nat(40),
        data: fc.uint8Array({ minLength: 1, maxLength: 12 }),
      }),
      fc.record({ kind: fc.constant('truncate' as const), name, length: fc.nat(48) }),
      fc.record({ kind: fc.constant('sync' as const), name }),
      fc.record({ kind: fc.constant('rename' as const), name, to: name }),
      fc.record({ kind: fc.constant('unlink' as const), name }),
      fc.record({ kind: fc.constant('syncDir' as const) }),
    );

    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 25 }), (commands) =>
        withTempDir(async (dir) => {
          interface Model {
            current: Uint8Array;
            durable: Uint8Array;
          }
          // The file 'a' exists before the wrapper does: durable as found.
          fs.writeFileSync(path.join(dir, 'a'), 'preexisting');
          const files = new Map<number, Model>([
            [0, { current: bytes('preexisting'), durable: bytes('preexisting') }],
          ]);
          const names = new Map<string, number>([['a', 0]]);
          let durableNames = new Map(names);
          let nextId = 1;

          const ffs = new FaultFileSystem();
          // One handle per file, kept open, so writes follow a file across
          // renames and unlinks the way a real descriptor does.
          const handles = new Map<number, ArenaFile>();
          const handle = (id: number, file: string): ArenaFile => {
            let h = handles.get(id);
            if (h === undefined) {
              h = ffs.open(path.join(dir, file), 'rw');
              handles.set(id, h);
            }
            return h;
          };

          for (const c of commands) {
            const id = c.kind === 'syncDir' ? undefined : names.get(c.name);
            switch (c.kind) {
              case 'create': {
                if (id !== undefined) break;
                handles.set(nextId, ffs.open(path.join(dir, c.name), 'create'));
                files.set(nextId, { current: new Uint8Array(0), durable: new Uint8Array(0) });
                names.set(c.name, nextId++);
                break;
              }
              case 'write': {
                if (id === undefined) break;
                handle(id, c.name).write(c.data, 0, c.data.length, c.position);
                const m = files.get(id)!;
                const next = new Uint8Array(Math.max(m.current.length, c.position + c.data.length));
                next.set(m.current);
                next.set(c.data, c.position);
                m.current = next;
                break;
              }
              case 'truncate': {
                if (id === undefined) break;
                handle(id, c.name).truncate(c.length);
                const m = files.get(id)!;
                const next = new Uint8Array(c.length);
                next.set(m.current.subarray(0, c.length));
                m.current = next;
                break;
              }
              case 'sync': {
                if (id === undefined) break;
                await handle(id, c.name).sync();
                const m = files.get(id)!;
                m.durable = m.current.slice();
                break;
              }
              case 'rename': {
                if (id === undefined || c.to === c.name) break;
                ffs.rename(path.join(dir, c.name), path.join(dir, c.to));
                names.delete(c.name);
                names.set(c.to, id);
                break;
              }
              case 'unlink': {
                if (id === undefined) break;
                ffs.unlink(path.join(dir, c.name));
                names.delete(c.name);
                break;
              }
              case 'syncDir': {
                await ffs.syncDir(dir);
                durableNames = new Map(names);
                break;
              }
            }
          }
          assert.deepEqual(ffs.readdir(dir).sort(), [...names.keys()].sort());
          for (const [file, id] of names) {
            assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(dir, file))), files.get(id)!.current);
          }

          ffs.powerCut();
          assert.deepEqual(listing(dir), [...durableNames.keys()].sort());
          for (const [file, id] of durableNames) {
            assert.deepEqual(
              new Uint8Array(fs.readFileSync(path.join(dir, file))),
              files.get(id)!.durable,
              `${file} holds its durable bytes`,
            );
          }
        }),
      ),
      { numRuns: 60 },
    );
  });
});
