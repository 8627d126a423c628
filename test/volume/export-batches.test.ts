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
import { exportTree } from '../../src/volume/import-export.js';
import { Volume } from '../../src/volume/volume.js';
import { framesOf, flipPayloadByte, sealAllArenas } from '../lib/arena-frames.js';
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

/**
 * Imports `count` generated files into a new home and flips a byte in the
 * one chunk of a small file whose size no other file has (the `pick`th of
 * them: its only chunk is the content record of that size plus the tag),
 * in the arena files as import left them or after sealing them, with the
 * record's checksum recomputed (only the GCM tag can tell) or not.
 */
async function importAndDamage(
  dir: string, count: number, seed: number, pick: number, how: { sealed: boolean; fixChecksum: boolean },
): Promise<{ home: string; files: SourceFile[]; victim: SourceFile }> {
  const src = join(dir, 'src');
  const files = await makeSource(src, count, seed);
  const home = newHome(dir, 'v');
  cliOk(home, ['import', src, 'v:/t']);
  const sizes = new Map<number, number>();
  for (const f of files) sizes.set(f.data.length, (sizes.get(f.data.length) ?? 0) + 1);
  const victim = files.filter((f) => f.data.length > 100 && sizes.get(f.data.length) === 1)[pick]!;
  const arenas = join(volumeDir(home, 'v'), 'arenas');
  if (how.sealed) await sealAllArenas(arenas);
  const names = (await readdir(arenas)).filter((n) => (how.sealed ? n.endsWith('.arena') : n.startsWith('content.') && n.endsWith('.active')));
  let flipped = 0;
  for (const name of names) {
    for (const frame of framesOf(await readFile(join(arenas, name)))) {
      if (frame.length !== victim.data.length + 16) continue;
      await flipPayloadByte(join(arenas, name), frame, 0.4, how.fixChecksum);
      flipped++;
    }
  }
  assert.equal(flipped, 1, `the chunk of ${victim.rel} (${victim.data.length} bytes) is found once`);
  return { home, files, victim };
}

/**
 * The export of the damaged home fails with `code`, from the command line
 * (with the addon and, for each of `noNative`, without) and in this
 * process, where no descriptor (of the files written, of the arenas read)
 * is left open; `after` then looks at what the in-process export wrote.
 */
async function assertExportFails(dir: string, home: string, code: string, noNative: Array<string | undefined>, after?: (out: string) => Promise<void>): Promise<void> {
  for (const mode of noNative) {
    const r = withEnv('BAZIL_NO_NATIVE', mode, () => cli(home, ['--json', 'export', 'v:/t', join(dir, `out-${mode ?? 'native'}`)]));
    assert.equal(r.status, 1, `exit 1 (BAZIL_NO_NATIVE=${mode ?? ''}): ${r.stderr}`);
    assert.equal(r.error?.code, code, r.stderr);
    assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
  }
  // In this process: the files of the failed batch, and the ones gathering behind it, are closed.
  const volume = await Volume.open(home, 'v');
  try {
    const fds = (await readdir('/proc/self/fd')).length;
    await assert.rejects(exportTree(volume, '/t', join(dir, 'out-inproc')), { code });
    assert.equal((await readdir('/proc/self/fd')).length, fds, 'no descriptor left open');
    await after?.(join(dir, 'out-inproc'));
  } finally {
    await volume.close();
  }
}

test('a damaged chunk of one small file among a batch fails the export with BAZIL_CORRUPT_OBJECT and leaves no descriptor open', async () => {
  await withTemp('export-batches-damage', async (dir) => {
    const { home, files, victim } = await importAndDamage(dir, 120, 42, 30, { sealed: false, fixChecksum: true });
    await assertExportFails(dir, home, 'BAZIL_CORRUPT_OBJECT', [undefined, '1'], async (out) => {
      // Files written before the damage are whole: an export that fails never leaves other bytes in a file it finished.
      for (const f of files) {
        if (f === victim) continue;
        const got = await readFile(join(out, f.rel)).catch(() => null);
        if (got !== null && got.length === f.data.length) assert.ok(got.equals(f.data), `${f.rel} is the source's`);
      }
    });
  });
});

test('a chunk whose record fails its checksum fails the export with BAZIL_CORRUPT_RECORD (the worker reads and checks it as the arena would) and leaves no descriptor open', async () => {
  await withTemp('export-batches-record', async (dir) => {
    // Sealed: an active arena's records are checked when it is opened, and a damaged one is set aside there.
    const { home } = await importAndDamage(dir, 60, 7, 10, { sealed: true, fixChecksum: false });
    await assertExportFails(dir, home, 'BAZIL_CORRUPT_RECORD', [undefined]);
  });
});
