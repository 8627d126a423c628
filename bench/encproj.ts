// bench/encproj: what sealing the projection costs (docs/projection.md,
// "Encryption"): names hashed, values sealed with the volume's projection
// key, against the same records in the plaintext layout, in one run.
//
//   npm run bench -- encproj [--quick] [--full] [--runs=N]
//
// Figures, medians of --runs (default 3):
//   1. import_ms: importTree of a generated mixed dataset (64 MiB; 16 with
//      --quick, 256 with --full) into a fresh volume, beside the CPU time
//      spent in the record codec during it (hashing names, sealing and
//      opening values): the import without it is the baseline.
//   2. list_ms: one directory of ENTRIES files (10k; 2k --quick, 100k
//      --full) listed the way `bazil ls` reads it (pages of 1,000 entries,
//      each entry's inode, names sorted), on the sealed projection, beside
//      the same reads of a plaintext copy of it (the schema-2 layout) through
//      the same SealedLevel code with the plain codec.
//   3. projection bytes per entry on disk (after a full compaction), sealed
//      against the plaintext copy.
// The last line of stdout is `RESULT {json}`.

import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { initHome } from '../src/home/home.js';
import { createVolume } from '../src/home/volumes.js';
import { PLAIN_CODEC, SealingCodec, type ProjectionCipher, type RecordCodec } from '../src/projection/index.js';
import { SealedLevel } from '../src/projection/sealed-level.js';
import { KEY_CHECK_KEY, decodeEntry, decodeInode, entryPrefix, inodeKey, prefixEnd } from '../src/projection/schema.js';
import { importTree } from '../src/volume/import-export.js';
import { PROJECTION_DIR, Volume } from '../src/volume/volume.js';
import { generateDataset } from './lib/dataset.js';
import { Samples, fmtFixed, fmtInt, fmtRatio, machineLine, renderTable, sig, type TableLine } from './lib/report.js';

const MIB = 1024 * 1024;
const PAGE = 1000;

interface Options {
  bytes: number;
  entries: number;
  runs: number;
}

function parseArgs(argv: string[]): Options {
  for (const a of argv) {
    if (a !== '--quick' && a !== '--full' && !/^--runs=\d+$/.test(a)) throw new Error(`unknown argument ${a}`);
  }
  const full = argv.includes('--full') || process.env.BAZIL_SLOW === '1';
  const quick = argv.includes('--quick');
  const runs = Number(argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? 3);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  return { bytes: (full ? 256 : quick ? 16 : 64) * MIB, entries: full ? 100_000 : quick ? 2000 : 10_000, runs };
}

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

/** CPU time spent in the sealing codec, counted by wrapping its methods (a benchmark's instrument, not product code). */
let codecMs = 0;
function instrumentCodec(): void {
  const proto = SealingCodec.prototype as unknown as Record<'storedKey' | 'encode' | 'decode', (...args: unknown[]) => unknown>;
  for (const name of ['storedKey', 'encode', 'decode'] as const) {
    const orig = proto[name];
    proto[name] = function timed(this: unknown, ...args: unknown[]): unknown {
      const t = performance.now();
      try {
        return orig.apply(this, args);
      } finally {
        codecMs += performance.now() - t;
      }
    };
  }
}

async function newVolume(dir: string): Promise<Volume> {
  const { home } = await initHome(dir);
  await createVolume(home, 'b').finally(() => home.close());
  return Volume.open(dir, 'b');
}

/** What `bazil ls` reads of a directory: its entries page by page, each entry's inode, then the names sorted. */
async function listDir(db: SealedLevel, dir: Buffer): Promise<number> {
  const prefix = entryPrefix(dir);
  const names: string[] = [];
  let after: Buffer | undefined;
  for (;;) {
    const page: [Buffer, Buffer][] = [];
    for await (const [k, v] of db.iterator({ ...(after === undefined ? { gte: prefix } : { gt: after }), lt: prefixEnd(prefix), limit: PAGE })) page.push([k, v]);
    if (page.length === 0) break;
    const inodes = await db.getMany(page.map(([, v]) => inodeKey(decodeEntry(v).child)));
    inodes.forEach((n) => decodeInode(n!));
    for (const [k] of page) names.push(k.subarray(prefix.length).toString('utf8'));
    after = page[page.length - 1]![0];
  }
  names.sort();
  return names.length;
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((s, n) => s + statSync(join(dir, n)).size, 0);
}

async function compacted(dir: string): Promise<ClassicLevel<Buffer, Buffer>> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  await db.compactRange(Buffer.from([0]), Buffer.from([0xff]));
  return db;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const scratch = mkdtempSync(join(tmpdir(), 'bazil-bench-encproj-'));
  instrumentCodec();
  try {
    const s = new Samples();
    const src = join(scratch, 'src');
    log(`generating ${fmtInt(opts.bytes / MIB)} MiB dataset`);
    const stats = generateDataset(src, opts.bytes, 'encproj');
    for (let r = 0; r < opts.runs; r++) {
      const v = await newVolume(join(scratch, `import-${r}`));
      try {
        codecMs = 0;
        const t = performance.now();
        await importTree(v, src, '/t');
        s.add('import', performance.now() - t);
        s.add('importCodec', codecMs);
      } finally {
        await v.close();
      }
      rmSync(join(scratch, `import-${r}`), { recursive: true, force: true });
    }

    log(`a directory of ${fmtInt(opts.entries)} files`);
    const homeDir = join(scratch, 'list');
    const v = await newVolume(homeDir);
    let cipher: ProjectionCipher;
    let dirId: Buffer;
    let projDir: string;
    try {
      await v.batch(async (b) => {
        const root = await v.resolve('/');
        const d = await b.create({ type: 'mkdir', parent: root, name: 'big', mode: 0o755, uid: 0, gid: 0 });
        for (let i = 0; i < opts.entries; i++) {
          await b.create({ type: 'create', parent: d, name: `file-with-a-longish-name-${String(i).padStart(6, '0')}.txt`, mode: 0o644, uid: 0, gid: 0 });
        }
      });
      cipher = v.historySource().cipher;
      dirId = await v.resolve('/big');
      projDir = join(v.historySource().dir, PROJECTION_DIR);
    } finally {
      await v.close();
    }
    const sealedRaw = await compacted(projDir);
    const plainDir = join(scratch, 'plain-projection');
    const plainRaw = new ClassicLevel<Buffer, Buffer>(plainDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await plainRaw.open();
    const sealed = new SealedLevel(sealedRaw, new SealingCodec(cipher));
    let records = 0;
    for await (const [k, val] of sealed.iterator()) {
      if (k.equals(KEY_CHECK_KEY)) continue;
      await plainRaw.put(k, val);
      records++;
    }
    await plainRaw.compactRange(Buffer.from([0]), Buffer.from([0xff]));
    const plain = new SealedLevel(plainRaw, PLAIN_CODEC as RecordCodec);
    for (let r = 0; r < opts.runs + 1; r++) {
      // Interleaved, the first round of each a warm-up.
      for (const [name, db] of [['sealed', sealed], ['plain', plain]] as const) {
        const t = performance.now();
        const n = await listDir(db, dirId);
        if (n !== opts.entries) throw new Error(`listed ${n} of ${opts.entries}`);
        if (r > 0) s.add(name, performance.now() - t);
      }
    }
    await sealedRaw.close();
    await plainRaw.close();
    const sealedBytes = dirBytes(projDir);
    const plainBytes = dirBytes(plainDir);

    const ms = (x: number): string => fmtFixed(x, x < 10 ? 2 : 0, 'ms');
    const importMs = s.median('import');
    const importCodecMs = s.median('importCodec');
    const lines: TableLine[] = [
      { section: `import of ${fmtInt(stats.files)} files, ${fmtInt(stats.bytes / MIB)} MiB, ${opts.runs} runs` },
      { figure: 'import, sealed projection', value: ms(importMs), spread: s.spread('import', ms), baseline: `without the codec's CPU ${ms(importMs - importCodecMs)}`, ratio: fmtRatio(importMs / (importMs - importCodecMs)) },
      { figure: 'of which codec CPU', value: ms(importCodecMs), spread: s.spread('importCodec', ms), baseline: `${fmtFixed((100 * importCodecMs) / importMs, 2, '%')} of the import` },
      { section: `ls of one directory of ${fmtInt(opts.entries)} entries (${fmtInt(records)} projection records)` },
      { figure: 'list, sealed', value: ms(s.median('sealed')), spread: s.spread('sealed', ms), baseline: `plaintext layout ${ms(s.median('plain'))}`, ratio: fmtRatio(s.median('sealed') / s.median('plain')) },
      { section: 'projection on disk, compacted' },
      { figure: 'bytes per record, sealed', value: fmtFixed(sealedBytes / records, 1, ' B'), baseline: `plaintext ${fmtFixed(plainBytes / records, 1, ' B')}`, ratio: fmtRatio(sealedBytes / plainBytes) },
      { note: 'ratios: sealed / baseline (above 1.00x is the cost of sealing); the machine is shared, wall times are noisy' },
    ];
    console.log(machineLine(scratch));
    console.log(renderTable(lines));
    console.log(`RESULT ${JSON.stringify({
      import_ms: sig(importMs), import_codec_ms: sig(importCodecMs), list_sealed_ms: sig(s.median('sealed')), list_plain_ms: sig(s.median('plain')),
      projection_sealed_bytes: sealedBytes, projection_plain_bytes: plainBytes, records, entries: opts.entries, import_bytes: stats.bytes,
    })}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
