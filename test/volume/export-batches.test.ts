// Export's batches (src/volume/export-pool.ts): many files' chunks share a
// slab and a message, their plaintext is opened in place (open-in-place.ts),
// and files are opened one at a time ahead of their content. The exported
// tree must stay exactly the source (bytes, sizes, holes, modes, µs mtimes),
// with the addon and without it (BAZIL_NO_NATIVE=1); a damaged chunk among
// the small files of a batch must fail the export with its code and leave no
// descriptor open, whichever file of the batch it belongs to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, lstat, mkdir, utimes, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { ArenaSet } from '../../arena/arena-set.js';
import { nodeFileSystem } from '../../arena/node-fs.js';
import { exportTree } from '../../src/volume/import-export.js';
import { Volume } from '../../src/volume/volume.js';
import { framesOf, flipPayloadByte } from '../lib/arena-frames.js';
import { cli, cliOk, newHome, volumeDir, withTemp } from '../lib/acceptance.js';
import { rng } from '../lib/gen-tree.js';

const MODES = [0o644, 0o600, 0o755, 0o444, 0o640];

interface SourceFile {
  rel: string;
  data: Buffer;
  mode: number;
  /** Nanoseconds, a whole number of µs. */
  mtimeNs: bigint;
}

/** Small files (many under one slab, several duplicates and empty ones) in four directories, a file larger than a slab and a sparse one. */
async function makeSource(src: string, count: number, seed: number): Promise<SourceFile[]> {
  const r = rng(seed);
  const files: SourceFile[] = [];
  const dirs = ['', 'a', 'b', 'a/c'];
  for (const d of dirs) await mkdir(join(src, d), { recursive: true });
  const sizes = new Set<number>();
  for (let i = 0; i < count; i++) {
    let data: Buffer;
    if (i % 17 === 5) data = Buffer.alloc(0);
    else if (i % 11 === 7 && files.length > 0) data = files[Math.floor(r() * files.length)]!.data;
    else {
      let size = 1 + Math.floor(r() * 9000);
      while (sizes.has(size)) size++;
      sizes.add(size);
      data = Buffer.alloc(size);
      for (let j = 0; j < size; j++) data[j] = Math.floor(r() * 256);
    }
    files.push({ rel: join(dirs[i % dirs.length]!, `f${i}`), data, mode: MODES[i % MODES.length]!, mtimeNs: 1_600_000_000_000_000_000n + BigInt(Math.floor(r() * 1e9)) * 1000n });
  }
  const big = Buffer.alloc(5 * 1024 * 1024 + 333);
  for (let j = 0; j < big.length; j += 4096) big.writeUInt32LE(Math.floor(r() * 2 ** 32), j);
  files.push({ rel: 'a/big', data: big, mode: 0o644, mtimeNs: 1_700_000_000_123_456_000n });
  const sparse = Buffer.alloc(2 * 1024 * 1024);
  sparse.write('middle', 1024 * 1024);
  files.push({ rel: 'b/sparse', data: sparse, mode: 0o600, mtimeNs: 1_700_000_001_000_001_000n });
  for (const f of files) {
    await writeFile(join(src, f.rel), f.data);
    await chmod(join(src, f.rel), f.mode);
    const s = Number(f.mtimeNs / 1000n) / 1e6;
    await utimes(join(src, f.rel), s, s);
  }
  // Read back what the file system kept (a double of seconds rounds the last µs).
  for (const f of files) f.mtimeNs = (await lstat(join(src, f.rel), { bigint: true })).mtimeNs;
  return files;
}

async function assertSame(files: SourceFile[], out: string, what: string): Promise<void> {
  for (const f of files) {
    const path = join(out, f.rel);
    const st = await lstat(path, { bigint: true });
    assert.ok((await readFile(path)).equals(f.data), `${what}: ${f.rel} has the source's bytes`);
    assert.equal(Number(st.mode & 0o7777n), f.mode, `${what}: ${f.rel} mode`);
    assert.equal(st.mtimeNs / 1000n, f.mtimeNs / 1000n, `${what}: ${f.rel} mtime (µs)`);
  }
  assert.equal((await readdir(join(out, 'a', 'c'))).length, files.filter((f) => f.rel.startsWith(join('a', 'c'))).length, `${what}: nothing more`);
}

function withEnv<T>(name: string, value: string | undefined, fn: () => T): T {
  const saved = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
}

test('export of many small files in shared batches equals the source, with the addon and without it', async () => {
  await withTemp('export-batches', async (dir) => {
    const src = join(dir, 'src');
    const files = await makeSource(src, 400, 41);
    const home = newHome(dir, 'v');
    cliOk(home, ['import', src, 'v:/t']);
    cliOk(home, ['export', 'v:/t', join(dir, 'out-native')]);
    await assertSame(files, join(dir, 'out-native'), 'with the addon');
    withEnv('BAZIL_NO_NATIVE', '1', () => cliOk(home, ['export', 'v:/t', join(dir, 'out-js')]));
    await assertSame(files, join(dir, 'out-js'), 'BAZIL_NO_NATIVE=1');
    // The sparse file's hole stays a hole: fewer blocks than its size.
    const st = await lstat(join(dir, 'out-native', 'b', 'sparse'));
    assert.ok(st.blocks * 512 < st.size, `a hole is written as a hole (${st.blocks} blocks for ${st.size} bytes)`);
  });
});

test('a damaged chunk of one small file among a batch fails the export with BAZIL_CORRUPT_OBJECT and leaves no descriptor open', async () => {
  await withTemp('export-batches-damage', async (dir) => {
    const src = join(dir, 'src');
    const files = await makeSource(src, 120, 42);
    const home = newHome(dir, 'v');
    cliOk(home, ['import', src, 'v:/t']);
    // A small file whose size no other file has: its only chunk is the content record of that size plus the tag.
    const sizes = new Map<number, number>();
    for (const f of files) sizes.set(f.data.length, (sizes.get(f.data.length) ?? 0) + 1);
    const victim = files.filter((f) => f.data.length > 100 && sizes.get(f.data.length) === 1)[30]!;
    const arenas = join(volumeDir(home, 'v'), 'arenas');
    const active = (await readdir(arenas)).filter((n) => n.startsWith('content.') && n.endsWith('.active'));
    let flipped = 0;
    for (const name of active) {
      for (const frame of framesOf(await readFile(join(arenas, name)))) {
        if (frame.length !== victim.data.length + 16) continue;
        // The checksum recomputed: only the GCM tag can tell.
        await flipPayloadByte(join(arenas, name), frame, 0.5, true);
        flipped++;
      }
    }
    assert.equal(flipped, 1, `the chunk of ${victim.rel} (${victim.data.length} bytes) is found once`);

    for (const noNative of [undefined, '1']) {
      const r = withEnv('BAZIL_NO_NATIVE', noNative, () => cli(home, ['--json', 'export', 'v:/t', join(dir, `out-${noNative ?? 'native'}`)]));
      assert.equal(r.status, 1, `exit 1 (BAZIL_NO_NATIVE=${noNative ?? ''}): ${r.stderr}`);
      assert.equal(r.error?.code, 'BAZIL_CORRUPT_OBJECT', r.stderr);
      assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
    }

    // In this process: the files of the failed batch, and the ones gathering behind it, are closed.
    const volume = await Volume.open(home, 'v');
    try {
      const fds = (await readdir('/proc/self/fd')).length;
      await assert.rejects(exportTree(volume, '/t', join(dir, 'out-inproc')), { code: 'BAZIL_CORRUPT_OBJECT' });
      assert.equal((await readdir('/proc/self/fd')).length, fds, 'no descriptor left open');
      // Files written before the damage are whole: an export that fails never leaves other bytes in a file it finished.
      const bad = join(dir, 'out-inproc', victim.rel);
      for (const f of files) {
        const path = join(dir, 'out-inproc', f.rel);
        if (path === bad) continue;
        const got = await readFile(path).catch(() => null);
        if (got !== null && got.length === f.data.length) assert.ok(got.equals(f.data), `${f.rel} is the source's`);
      }
    } finally {
      await volume.close();
    }
  });
});

test('a chunk whose record fails its checksum fails the export with BAZIL_CORRUPT_RECORD (the worker reads and checks it as the arena would) and leaves no descriptor open', async () => {
  await withTemp('export-batches-record', async (dir) => {
    const src = join(dir, 'src');
    const files = await makeSource(src, 60, 7);
    const home = newHome(dir, 'v');
    cliOk(home, ['import', src, 'v:/t']);
    const sizes = new Map<number, number>();
    for (const f of files) sizes.set(f.data.length, (sizes.get(f.data.length) ?? 0) + 1);
    const victim = files.filter((f) => f.data.length > 100 && sizes.get(f.data.length) === 1)[10]!;
    const arenas = join(volumeDir(home, 'v'), 'arenas');
    // Sealed: an active arena's records are checked when it is opened, and a damaged one is set aside there.
    const writer = Buffer.from((await readdir(arenas)).find((n) => n.endsWith('.active'))!.split('.')[1]!, 'hex');
    const set = await ArenaSet.open(arenas, { fs: nodeFileSystem, writer });
    try {
      await set.sealNow();
      await set.waitForSeals();
    } finally {
      await set.close();
    }
    let flipped = 0;
    for (const name of (await readdir(arenas)).filter((n) => n.endsWith('.arena'))) {
      for (const frame of framesOf(await readFile(join(arenas, name)))) {
        if (frame.length !== victim.data.length + 16) continue;
        // The checksum left as it was: the record no longer matches it.
        await flipPayloadByte(join(arenas, name), frame, 0.3, false);
        flipped++;
      }
    }
    assert.equal(flipped, 1, `the chunk of ${victim.rel} is found once`);
    const r = cli(home, ['--json', 'export', 'v:/t', join(dir, 'out')]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.error?.code, 'BAZIL_CORRUPT_RECORD', r.stderr);
    assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');

    const volume = await Volume.open(home, 'v');
    try {
      const fds = (await readdir('/proc/self/fd')).length;
      await assert.rejects(exportTree(volume, '/t', join(dir, 'out-inproc')), { code: 'BAZIL_CORRUPT_RECORD' });
      assert.equal((await readdir('/proc/self/fd')).length, fds, 'no descriptor left open (files and arenas)');
    } finally {
      await volume.close();
    }
  });
});
