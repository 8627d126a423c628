// The volume issue's first acceptance: a generated tree (log-normal sizes,
// symlinks of every kind, hard-link groups, empty files and directories,
// awkward Unicode names, varied modes and owners, mtimes with microseconds
// before 1970 and after 2038, user.* xattrs with binary values) goes through
// `bazil import` and `bazil export` and comes out equal: `diff -r`, and per
// path mode, uid, gid, size, symlink target, hard-link group, mtime to the
// microsecond and xattrs. CI runs 600 files / ~40 MiB; BAZIL_SLOW=1 the
// issue's 10k files / ≤ 1 GiB with two files ≥ 64 MiB.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { compareDescriptions, describeTree, generateTree, type GenTreeOptions } from '../lib/gen-tree.js';
import { SLOW, cli, cliOk, newHome, withTemp } from '../lib/acceptance.js';

const MiB = 1024 * 1024;
const TREE: Omit<GenTreeOptions, 'seed'> = SLOW
  ? { files: 10_000, totalBytes: 800 * MiB, bigFiles: 2, bigBytes: 80 * MiB, maxFileBytes: 32 * MiB }
  : { files: 600, totalBytes: 36 * MiB, bigFiles: 0, bigBytes: 0, maxFileBytes: 4 * MiB };

test(`import then export of a generated tree (${TREE.files} files) keeps everything`, { timeout: SLOW ? 40 * 60_000 : 120_000 }, async () => {
  await withTemp('accept-roundtrip', async (dir) => {
    const seed = Number(process.env.BAZIL_SEED ?? Math.floor(Math.random() * 2 ** 31));
    process.stderr.write(`# seed ${seed} (BAZIL_SEED=${seed} replays this tree)\n`);
    const src = join(dir, 'src');
    const generated = await generateTree(src, { seed, ...TREE });
    assert.ok(generated.bytes <= 1024 * MiB);
    const home = newHome(dir, 'v');

    const imported = JSON.parse(cliOk(home, ['--json', 'import', src, 'v:/tree'])) as { files: number; symlinks: number; links: number; bytes: number };
    assert.equal(imported.bytes, generated.bytes, 'bytes imported');
    assert.equal(imported.symlinks, generated.symlinks);
    assert.equal(imported.links, generated.links);

    process.stderr.write(`# ${generated.files} files, ${generated.dirs} dirs, ${generated.symlinks} symlinks, ${generated.links} extra hard links, ${(generated.bytes / MiB).toFixed(1)} MiB\n`);
    const out = join(dir, 'out');
    cliOk(home, ['--json', 'export', 'v:/tree', out]);
    const diff = spawnSync('diff', ['-r', '--no-dereference', src, out], { encoding: 'utf8', maxBuffer: 1 << 26 });
    assert.equal(diff.status, 0, `diff -r: ${diff.stdout.slice(0, 2000)}${diff.stderr}`);
    const expected = await describeTree(src);
    // The generator made what this test claims to cover.
    const nodes = [...expected.values()];
    assert.ok(nodes.some((n) => n.type === 'dir' && (parseInt(n.mode, 8) & 0o2000) !== 0), 'a setgid directory');
    assert.ok(nodes.some((n) => n.mtimeUs.startsWith('-')), 'an mtime before 1970');
    assert.ok(nodes.some((n) => BigInt(n.mtimeUs) > 2n ** 31n * 1_000_000n), 'an mtime after 2038');
    assert.ok(nodes.some((n) => n.uid !== 0 && n.gid !== 0), 'other owners');
    assert.ok(nodes.some((n) => n.type === 'dir' && Object.keys(n.xattrs).length > 0), 'xattrs on a directory');
    assert.ok(nodes.some((n) => n.type === 'file' && Object.keys(n.xattrs).length > 0), 'xattrs on a file');
    assert.ok(nodes.some((n) => (n.linkGroup?.length ?? 0) >= 3), 'a hard-link group of 3 or more');
    assert.ok([...expected.keys()].some((p) => Buffer.byteLength(p.split('/').pop()!) === 255), 'a 255-byte name');
    const problems = compareDescriptions(expected, await describeTree(out));
    assert.deepEqual(problems, [], `seed ${seed}`);

    // What the CLI shows for an awkward name is what was imported.
    const twins = JSON.parse(cliOk(home, ['--json', 'ls', 'v:/tree/twins'])) as Array<{ name: string }>;
    const names = new Set(twins.map((t) => t.name));
    for (const name of ['A\u030angstro\u0308m', 'cafe\u0301', 'caf\u00e9', '\u00c5ngstr\u00f6m']) assert.ok(names.has(name), `${JSON.stringify(name)} listed`);
    assert.equal(cliOk(home, ['cat', 'v:/tree/twins/cafe\u0301']), 'nfd');

    const fsck = cli(home, ['--json', 'fsck', 'v']);
    assert.equal(fsck.status, 0, fsck.stdout.toString());
  });
});
