import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN } from '../lib/cli-path.js';

const main = CLI_MAIN;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
  raw: Buffer;
}

function bazil(home: string, ...args: string[]): Result {
  const r = spawnSync(process.execPath, [main, ...args], { timeout: 30_000, env: { ...process.env, BAZIL_HOME: home } });
  return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), raw: r.stdout };
}

function ok(r: Result): Result {
  assert.equal(r.status, 0, r.stderr);
  return r;
}

test('import, ls, cat, stat, export, rebuild through the CLI', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-cli-files-'));
  try {
    const home = join(dir, 'home');
    const src = join(dir, 'src');
    await mkdir(join(src, 'sub', 'empty'), { recursive: true });
    const big = randomBytes(150_000);
    await writeFile(join(src, 'big.bin'), big);
    await writeFile(join(src, 'sub', 'hello.txt'), 'hello\n');
    await symlink('sub/hello.txt', join(src, 'ln'));
    ok(bazil(home, 'init'));
    ok(bazil(home, 'volume', 'create', 'v'));

    const imported = JSON.parse(ok(bazil(home, 'import', src, 'v:/t', '--json')).stdout) as { files: number; bytes: number; dirs: number; symlinks: number; mbPerSecond: number };
    assert.deepEqual([imported.files, imported.bytes, imported.dirs, imported.symlinks], [2, 150_006, 3, 1]);
    assert.equal(typeof imported.mbPerSecond, 'number');
    assert.match(ok(bazil(home, 'import', src, 'v:/again')).stdout, /^imported 2 files, 3 dirs, 1 symlinks, 0\.2 MB in .* MB\/s\), 0\.0 MB new content, \d+ events\n$/);

    assert.equal(ok(bazil(home, 'ls', 'v')).stdout, 'again\nt\n');
    assert.equal(ok(bazil(home, 'ls', 'v:/t')).stdout, 'big.bin\nln\nsub\n');
    const long = ok(bazil(home, 'ls', '-l', 'v:/t')).stdout.split('\n');
    assert.match(long[0]!, /^-rw-r--r-- +1 +\d+ +\d+ +150000 \S+Z big\.bin$/);
    assert.match(long[1]!, /^lrwxrwxrwx .* ln -> sub\/hello\.txt$/);
    assert.match(long[2]!, /^drwxr-xr-x .* sub$/);
    const lsJson = JSON.parse(ok(bazil(home, 'ls', 'v:/t/sub', '--json')).stdout) as { name: string; kind: string }[];
    assert.deepEqual(lsJson.map((e) => [e.name, e.kind]), [['empty', 'dir'], ['hello.txt', 'file']]);

    assert.equal(ok(bazil(home, 'cat', 'v:/t/sub/hello.txt')).stdout, 'hello\n');
    assert.ok(ok(bazil(home, 'cat', 'v:t/big.bin')).raw.equals(big));

    const st = JSON.parse(ok(bazil(home, 'stat', 'v:/t/ln', '--json')).stdout) as { kind: string; target: string; size: number; mtimeNs: string };
    assert.deepEqual([st.kind, st.target, st.size], ['symlink', 'sub/hello.txt', 13]);
    assert.match(st.mtimeNs, /^\d+$/);
    assert.match(ok(bazil(home, 'stat', 'v:/t/big.bin')).stdout, /kind: file\n.*size: 150000\n/s);

    const out = join(dir, 'out');
    const exported = JSON.parse(ok(bazil(home, 'export', 'v:/t', out, '--json')).stdout) as { files: number; bytes: number };
    assert.deepEqual([exported.files, exported.bytes], [2, 150_006]);
    execFileSync('diff', ['-r', '--no-dereference', src, out]);
    const single = join(dir, 'single.txt');
    ok(bazil(home, 'export', 'v:/t/sub/hello.txt', single));
    assert.equal(await readFile(single, 'utf8'), 'hello\n');

    assert.match(ok(bazil(home, 'rebuild', 'v')).stdout, /^rebuilt the projection of 'v': \d+ events in \d+ ms/);
    assert.match(ok(bazil(home, 'fsck', 'v')).stdout, /^clean: \d+ arena records, \d+ events, \d+ files, \d+ objects checked/);
    const report = JSON.parse(ok(bazil(home, 'fsck', 'v', '--json')).stdout) as { ok: boolean; problems: unknown[] };
    assert.deepEqual([report.ok, report.problems], [true, []]);
    assert.equal(ok(bazil(home, 'ls', 'v:/t')).stdout, 'big.bin\nln\nsub\n');

    // Failures: exit 1 with the stable code; usage errors exit 2.
    const missing = bazil(home, 'cat', 'v:/nope', '--json');
    assert.equal(missing.status, 1);
    assert.equal((JSON.parse(missing.stderr) as { code: string }).code, 'BAZIL_NOT_FOUND');
    assert.match(bazil(home, 'cat', 'v:/t').stderr, /\[BAZIL_IS_A_DIRECTORY\]/);
    assert.match(bazil(home, 'ls', 'v:/t/../x').stderr, /\[BAZIL_BAD_ARGUMENT\]/);
    assert.equal(bazil(home, 'ls', 'nosuchvol').status, 1);
    assert.equal(bazil(home, 'cat', 'v').status, 1);
    assert.match(bazil(home, 'import', src, 'v:/t').stderr, /\[BAZIL_NOT_EMPTY\]/);
    assert.equal(bazil(home, 'import', src).status, 2);
    assert.match(ok(bazil(home, 'import', '--help')).stdout, /Usage: bazil import/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
