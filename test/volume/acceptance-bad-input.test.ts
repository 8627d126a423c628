// The volume issue's bad-input acceptance: nonexistent paths, `..` escapes,
// names with '/' or NUL, overlong names and paths, importing into a
// non-empty directory (a damaged projection: acceptance-projection.test.ts). Each gets a
// clear error with a stable code (and the errno a POSIX front end returns),
// through the CLI and through the Volume API; nothing stored is lost (the
// volume exports equal to its source and fsck stays clean afterwards).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes } from '../../errors/index.js';
import { Volume } from '../../src/volume/volume.js';
import { cli, cliOk, newHome, withTemp, type CliRun } from '../lib/acceptance.js';
import { assertExported, makeSource } from '../lib/small-tree.js';

function assertFails(r: CliRun, code: string, errno?: string, status = 1): void {
  assert.equal(r.status, status, `exit status; stderr: ${r.stderr}`);
  assert.ok(r.error !== null, `a JSON error on stderr: ${r.stderr}`);
  assert.equal(r.error.code, code, r.stderr);
  if (errno !== undefined) assert.equal(r.error.data['errno'], errno, r.stderr);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace: ${r.stderr}`);
}

test('the CLI refuses bad paths and names with stable codes, and loses nothing', async () => {
  await withTemp('accept-bad-cli', async (dir) => {
    const src = join(dir, 'src');
    await makeSource(src);
    const home = newHome(dir, 'v');
    cliOk(home, ['import', src, 'v:/t']);
    const j = (...args: string[]): CliRun => cli(home, ['--json', ...args]);

    // Nothing there.
    assertFails(j('cat', 'v:/t/nope'), ErrorCodes.NOT_FOUND, 'ENOENT');
    assertFails(j('ls', 'v:/nope/deeper'), ErrorCodes.NOT_FOUND, 'ENOENT');
    assertFails(j('export', 'v:/nope', join(dir, 'o1')), ErrorCodes.NOT_FOUND, 'ENOENT');
    assertFails(j('import', join(dir, 'no-such-dir'), 'v:/x'), ErrorCodes.NOT_FOUND);
    assertFails(j('import', src, 'v:/no/parent'), ErrorCodes.NOT_FOUND, 'ENOENT');
    assertFails(j('ls', 'nosuchvolume:/'), ErrorCodes.NOT_FOUND);
    // `..` and `.` escapes, empty components: volume paths are canonical.
    assertFails(j('ls', 'v:/t/../t'), ErrorCodes.BAD_ARGUMENT, 'EINVAL');
    assertFails(j('cat', 'v:/../etc/passwd'), ErrorCodes.BAD_ARGUMENT, 'EINVAL');
    assertFails(j('cat', 'v:../../etc/passwd'), ErrorCodes.BAD_ARGUMENT, 'EINVAL');
    assertFails(j('import', src, 'v:/t/../../escape'), ErrorCodes.BAD_ARGUMENT, 'EINVAL');
    assertFails(j('export', 'v:/t/./sub', join(dir, 'o2')), ErrorCodes.BAD_ARGUMENT, 'EINVAL');
    assertFails(j('stat', 'v:/t//sub'), ErrorCodes.BAD_ARGUMENT, 'EINVAL');
    // Overlong: a 256-byte name, a path of 4096 bytes.
    assertFails(j('cat', `v:/t/${'n'.repeat(256)}`), ErrorCodes.NAME_TOO_LONG, 'ENAMETOOLONG');
    assertFails(j('cat', `v:/t/${'\u00e9'.repeat(128)}`), ErrorCodes.NAME_TOO_LONG, 'ENAMETOOLONG');
    assertFails(j('ls', `v:${'/abcdefgh'.repeat(456)}`), ErrorCodes.NAME_TOO_LONG, 'ENAMETOOLONG');
    assertFails(j('import', src, `v:/${'x'.repeat(300)}`), ErrorCodes.NAME_TOO_LONG, 'ENAMETOOLONG');
    // Wrong kinds.
    assertFails(j('cat', 'v:/t/sub'), ErrorCodes.IS_A_DIRECTORY, 'EISDIR');
    assertFails(j('ls', 'v:/t/f1/x'), ErrorCodes.NOT_A_DIRECTORY, 'ENOTDIR');
    assertFails(j('import', join(src, 'f1'), 'v:/x'), ErrorCodes.NOT_A_DIRECTORY);
    // Import into a non-empty directory is refused (docs/volume-api.md), and the refused import adds nothing.
    const before = cliOk(home, ['--json', 'volume', 'ls']);
    assertFails(j('import', src, 'v:/t'), ErrorCodes.NOT_EMPTY, 'ENOTEMPTY');
    assertFails(j('import', src, 'v:/'), ErrorCodes.NOT_EMPTY, 'ENOTEMPTY');
    assert.equal(cliOk(home, ['--json', 'volume', 'ls']), before, 'a refused import appends no event');
    // Usage errors.
    assertFails(j('cat', 'v'), ErrorCodes.BAD_ARGUMENT);
    assertFails(j('cat', ':/x'), ErrorCodes.BAD_ARGUMENT);
    // A local directory name that is not UTF-8 cannot become a Bazil name.
    const latin1 = join(dir, 'latin1');
    await mkdir(latin1);
    await writeFile(Buffer.concat([Buffer.from(`${latin1}/caf`), Buffer.from([0xe9])]), 'x');
    assertFails(j('import', latin1, 'v:/latin1'), ErrorCodes.BAD_ARGUMENT);
    // Export over existing files does not overwrite them.
    const busy = join(dir, 'busy');
    await mkdir(busy);
    await writeFile(join(busy, 'f1'), 'mine');
    const r = j('export', 'v:/t', busy);
    assert.equal(r.status, 1, r.stderr);
    assert.ok(r.error !== null && (r.error.code === ErrorCodes.ALREADY_EXISTS || r.error.code === ErrorCodes.IO), r.stderr);
    assert.equal(await readFile(join(busy, 'f1'), 'utf8'), 'mine');

    // Nothing stored was lost; the volume is clean.
    assertExported(home, src, join(dir, 'out'));
    const fsck = j('fsck', 'v');
    assert.equal(fsck.status, 0, fsck.stdout.toString());
  });
});

test('the Volume API refuses bad names and paths with stable codes and errnos', async () => {
  await withTemp('accept-bad-api', async (dir) => {
    const home = newHome(dir, 'v');
    const v = await Volume.open(home, 'v');
    try {
      await v.mkdir('/d');
      await v.writeFile('/d/f', Buffer.from('data'));
      const cases: Array<[string, () => Promise<unknown>, string, string]> = [
        ['relative path', () => v.mkdir('d2'), ErrorCodes.BAD_ARGUMENT, 'EINVAL'],
        ['.. escape', () => v.writeFile('/d/../x', Buffer.from('x')), ErrorCodes.BAD_ARGUMENT, 'EINVAL'],
        ['. component', () => v.stat('/d/./f'), ErrorCodes.BAD_ARGUMENT, 'EINVAL'],
        ['NUL in a name', () => v.writeFile('/d/a\0b', Buffer.from('x')), ErrorCodes.BAD_ARGUMENT, 'EINVAL'],
        ['NUL in a symlink target', () => v.symlink('a\0b', '/d/l'), ErrorCodes.BAD_ARGUMENT, 'EINVAL'],
        ['lone surrogate', () => v.mkdir('/d/\uD800x'), ErrorCodes.BAD_ARGUMENT, 'EINVAL'],
        ['256-byte name', () => v.mkdir(`/d/${'x'.repeat(256)}`), ErrorCodes.NAME_TOO_LONG, 'ENAMETOOLONG'],
        ['4096-byte path', () => v.stat(`/${'d/'.repeat(2048)}`), ErrorCodes.NAME_TOO_LONG, 'ENAMETOOLONG'],
        ['missing parent', () => v.mkdir('/nope/x'), ErrorCodes.NOT_FOUND, 'ENOENT'],
        ['through a file', () => v.mkdir('/d/f/x'), ErrorCodes.NOT_A_DIRECTORY, 'ENOTDIR'],
        ['existing name', () => v.mkdir('/d/f'), ErrorCodes.ALREADY_EXISTS, 'EEXIST'],
        ['rename into itself', () => v.rename('/d', '/d/inner'), ErrorCodes.BAD_ARGUMENT, 'EINVAL'],
        ['rmdir of a non-empty dir', () => v.rmdir('/d'), ErrorCodes.NOT_EMPTY, 'ENOTEMPTY'],
        ['rename of the root', () => v.rename('/', '/x'), ErrorCodes.BAD_ARGUMENT, 'EINVAL'],
      ];
      for (const [what, call, code, errno] of cases) {
        await assert.rejects(call(), (err: unknown) => {
          const e = err as { code?: string; data?: Record<string, unknown> };
          assert.equal(e.code, code, `${what}: ${String(err)}`);
          assert.equal(e.data?.['errno'], errno, `${what}: errno`);
          return true;
        }, what);
      }
      // A name holding '/' or NUL cannot reach the log even below the path layer.
      for (const name of ['a/b', 'a\0b', '..', '']) {
        await assert.rejects(v.batch(async (b) => b.create({ type: 'mkdir', parent: await v.resolve('/d'), name, mode: 0o755, uid: 0, gid: 0 })),
          (err: unknown) => (err as { code?: string }).code === ErrorCodes.BAD_ARGUMENT || (err as { code?: string }).code === ErrorCodes.CORRUPT_EVENT, JSON.stringify(name));
      }
      await assert.rejects(v.batch(async (b) => b.create({ type: 'mkdir', parent: await v.resolve('/d'), name: 'y'.repeat(256), mode: 0o755, uid: 0, gid: 0 })),
        { code: ErrorCodes.NAME_TOO_LONG });
      await assert.rejects(v.symlink('t'.repeat(4096), '/d/long-link'), { code: ErrorCodes.NAME_TOO_LONG });
      await assert.rejects(v.setxattr('/d/f', `user.${'k'.repeat(256)}`, Buffer.from('v')), { code: ErrorCodes.NAME_TOO_LONG });
      assert.deepEqual((await v.readdir('/d')).map((e) => e.name), ['f']);
      assert.equal((await v.readFile('/d/f')).toString(), 'data');
      const report = await v.fsck();
      assert.deepEqual(report.problems, []);
    } finally {
      await v.close();
    }
  });
});
