// bench/arena: the arena engine against its baselines, in one run.
//
//   npm run bench -- arena [--quick] [--runs=N] [--n=KEYS] [--arenas=N] [--phase=mph,write,read]
//
// N shuffled random 32-byte keys with 1 KiB values (1M full, 100k --quick):
//   - perfect hash: build ns/key, bits/key (remap included), evaluation ns,
//     beside a JavaScript Map built from and queried with the same keys;
//   - index bytes/key (slot table + fingerprints + MPH), read from the
//     footers of the sealed files the run wrote;
//   - append MB/s with one fsync at the end and with an fsync every 1 MiB,
//     beside the disk's own rate for the same bytes (1 MiB writes + fsync);
//   - sealed getMany ops/s for present keys (payload checked) and absent keys,
//     with default-size arenas and with ~1,000 arenas, beside classic-level
//     (getMany, awaited get, getSync) holding the same keys and values, and a
//     JavaScript Map.
// Every figure is the median of >= 3 runs, interleaved: round 1 runs each
// measurement once, round 2 again, and so on. The last line is `RESULT {json}`.
//
// For profiling: node --cpu-prof dist/bench/arena.js --phase=write --runs=1

import { randomBytes, createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdtempSync, openSync, readSync, readdirSync, rmSync, fstatSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ClassicLevel } from 'classic-level';
import { ArenaSet, DEFAULT_SEAL_BYTES } from '../arena/arena-set.js';
import { nodeFileSystem } from '../arena/node-fs.js';
import { Mph } from '../arena/mph.js';
import { FOOTER_LENGTH, HEADER_LENGTH, KEY_LENGTH, decodeFooter, frameLength } from '../arena/format.js';
import {
  Samples, atLeast, atMost, fmtInt, fmtMBs, fmtOps, fmtRatio, machineLine, renderTable, sig, type TableLine,
} from './lib/report.js';

// ---------------------------------------------------------------- options

const VALUE_LENGTH = 1024;
const RECORD_BYTES = KEY_LENGTH + VALUE_LENGTH;
const FRAME_BYTES = frameLength(VALUE_LENGTH);
const MIB = 1024 * 1024;
const KIND = 'content';
const RECORD_TYPE = 1;
const WRITER = createHash('sha256').update('bench/arena writer').digest();

interface Options {
  quick: boolean;
  n: number;
  arenas: number;
  runs: number;
  batch: number;
  absent: number;
  levelGetSample: number;
  phases: Set<string>;
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const value = (name: string): string | undefined => {
    const a = argv.find((x) => x.startsWith(`--${name}=`));
    return a?.slice(name.length + 3);
  };
  const int = (name: string, dflt: number): number => {
    const v = value(name);
    if (v === undefined) return dflt;
    const x = Number(v.replace(/_/g, ''));
    if (!Number.isSafeInteger(x) || x <= 0) throw new Error(`--${name} needs a positive integer, got ${v}`);
    return x;
  };
  for (const a of argv) {
    if (a !== '--quick' && !/^--(runs|n|arenas|phase|batch)=/.test(a)) throw new Error(`unknown argument ${a}`);
  }
  const n = int('n', quick ? 100_000 : 1_000_000);
  const phases = new Set((value('phase') ?? 'mph,write,read').split(','));
  for (const p of phases) if (!['mph', 'write', 'read'].includes(p)) throw new Error(`unknown phase ${p}`);
  const runs = int('runs', 3);
  return {
    quick,
    n,
    arenas: int('arenas', quick ? 100 : 1000),
    runs,
    batch: int('batch', 1000),
    absent: Math.max(1, Math.floor(n / 4)),
    levelGetSample: Math.min(n, quick ? 20_000 : 50_000),
    phases,
  };
}

// ---------------------------------------------------------------- data

interface Data {
  n: number;
  /** All keys, back to back: the MPH builds from this. */
  keyBytes: Buffer;
  keys: Buffer[];
  /** Values are 1 KiB windows of this pool, at valueAt[i]. */
  pool: Buffer;
  valueAt: Uint32Array;
  /** A random permutation of 0..n-1: the order of lookups. */
  order: Uint32Array;
  absentKeys: Buffer[];
}

function makeData(n: number, absent: number): Data {
  const keyBytes = randomBytes(n * KEY_LENGTH);
  const keys = new Array<Buffer>(n);
  for (let i = 0; i < n; i++) keys[i] = keyBytes.subarray(i * KEY_LENGTH, (i + 1) * KEY_LENGTH);
  // Values are 1 KiB windows at pseudo-random offsets of an 8 MiB random
  // pool: distinct per key without holding 1 GiB in memory. Their views are
  // made when used, so the heap does not carry a million long-lived objects
  // that every full collection during a timed run would have to trace.
  const pool = randomBytes(8 * MIB);
  const valueAt = new Uint32Array(n);
  for (let i = 0; i < n; i++) valueAt[i] = (Math.imul(i + 1, 0x9e3779b1) >>> 0) % (pool.length - VALUE_LENGTH);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rnd = randomBytes(4 * n);
  for (let i = n - 1; i > 0; i--) {
    const j = rnd.readUInt32LE(4 * i) % (i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const absentBytes = randomBytes(absent * KEY_LENGTH);
  const absentKeys = new Array<Buffer>(absent);
  for (let i = 0; i < absent; i++) absentKeys[i] = absentBytes.subarray(i * KEY_LENGTH, (i + 1) * KEY_LENGTH);
  return { n, keyBytes, keys, pool, valueAt, order, absentKeys };
}

function valueOf(d: Data, i: number): Buffer {
  const at = d.valueAt[i]!;
  return d.pool.subarray(at, at + VALUE_LENGTH);
}

/** Hex strings of all keys and a Map from them to the values: the Map baseline, built only while measured. */
function hexKeys(d: Data): string[] {
  const hex = new Array<string>(d.n);
  for (let i = 0; i < d.n; i++) hex[i] = d.keys[i]!.toString('hex');
  return hex;
}

function buildMap(d: Data, hex: readonly string[]): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (let i = 0; i < d.n; i++) m.set(hex[i]!, valueOf(d, i));
  return m;
}

interface Batch {
  keys: Buffer[];
  /** Index of each key's value, or -1 for an absent key. */
  idx: Int32Array;
}

function batchesOf(d: Data, size: number, present: boolean): Batch[] {
  const out: Batch[] = [];
  const total = present ? d.n : d.absentKeys.length;
  for (let at = 0; at < total; at += size) {
    const len = Math.min(size, total - at);
    const keys = new Array<Buffer>(len);
    const idx = new Int32Array(len);
    for (let j = 0; j < len; j++) {
      if (present) {
        const i = d.order[at + j]!;
        keys[j] = d.keys[i]!;
        idx[j] = i;
      } else {
        keys[j] = d.absentKeys[at + j]!;
        idx[j] = -1;
      }
    }
    out.push({ keys, idx });
  }
  return out;
}

function countOf(batches: readonly Batch[]): number {
  let c = 0;
  for (const b of batches) c += b.keys.length;
  return c;
}

// ---------------------------------------------------------------- checks

class BenchFailure extends Error {}

/** Every present result must be a 1 KiB payload; one in 64 is compared byte for byte. */
function checkPayload(payload: Uint8Array | undefined, d: Data, idx: number, j: number, what: string): void {
  if (payload === undefined || payload.length !== VALUE_LENGTH) {
    throw new BenchFailure(`${what}: key ${idx} returned ${payload === undefined ? 'nothing' : `${payload.length} bytes`}`);
  }
  const at = d.valueAt[idx]!;
  if ((j & 63) === 0 && d.pool.compare(payload, 0, VALUE_LENGTH, at, at + VALUE_LENGTH) !== 0) {
    throw new BenchFailure(`${what}: key ${idx} returned a wrong payload`);
  }
}

function checkAbsent(found: unknown, what: string): void {
  if (found !== undefined) throw new BenchFailure(`${what}: an absent key was found`);
}

// ---------------------------------------------------------------- timing

function now(): number {
  return performance.now() / 1000;
}

// A full collection before each timed measurement, so none pays for the
// garbage of the one before it (classic-level's getMany leaves a gigabyte of
// value buffers behind, for instance). The flag is set at run time because
// the bench runner starts node without flags.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
function settle(): void {
  collect();
  collect();
}

let sink = 0;

// ---------------------------------------------------------------- MPH

function evalInOrder(mph: Mph, keys: Uint8Array, n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) x ^= mph.lookup(keys, i * KEY_LENGTH);
  return x;
}

function evalShuffled(mph: Mph, keys: Uint8Array, order: Uint32Array, n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) x ^= mph.lookup(keys, order[i]! * KEY_LENGTH);
  return x;
}

function mapInOrder(m: Map<string, Buffer>, hex: readonly string[], n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) x ^= m.get(hex[i]!)!.length;
  return x;
}

function mphRound(d: Data, s: Samples): void {
  const n = d.n;
  settle();
  let t = now();
  const mph = Mph.build(d.keyBytes, n, KEY_LENGTH);
  s.add('mph_build_ns_per_key', ((now() - t) * 1e9) / n);
  s.add('mph_bits_per_key', mph.bitsPerKey());
  if (!s.has('mph_checked')) {
    const seen = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const slot = mph.lookup(d.keyBytes, i * KEY_LENGTH);
      if (slot < 0 || slot >= n || seen[slot] !== 0) throw new BenchFailure(`MPH is not minimal perfect: slot ${slot} of key ${i}`);
      seen[slot] = 1;
    }
    s.add('mph_checked', 1);
  }

  // Evaluation: keys in storage order (the key bytes stream through the
  // cache), then in shuffled order (each key a likely cache miss). A tenth
  // of the keys first, untimed, so the loops run optimized.
  const warm = Math.max(1, n >>> 3);
  // Small sizes repeat the pass so each timing covers >= 1M lookups.
  const reps = Math.max(1, Math.ceil(1_000_000 / n));
  let x = evalInOrder(mph, d.keyBytes, warm) ^ evalShuffled(mph, d.keyBytes, d.order, warm);
  settle();
  t = now();
  for (let r = 0; r < reps; r++) x ^= evalInOrder(mph, d.keyBytes, n);
  s.add('mph_eval_ns', ((now() - t) * 1e9) / (n * reps));
  t = now();
  for (let r = 0; r < reps; r++) x ^= evalShuffled(mph, d.keyBytes, d.order, n);
  s.add('mph_eval_shuffled_ns', ((now() - t) * 1e9) / (n * reps));

  // Baseline: a Map from hex keys to values, built and queried the same way.
  const hex = hexKeys(d);
  settle();
  t = now();
  const m = buildMap(d, hex);
  s.add('map_build_ns_per_key', ((now() - t) * 1e9) / n);
  x ^= mapInOrder(m, hex, warm);
  t = now();
  for (let r = 0; r < reps; r++) x ^= mapInOrder(m, hex, n);
  s.add('map_get_ns', ((now() - t) * 1e9) / (n * reps));
  sink ^= x;
}

// ---------------------------------------------------------------- writes

async function diskRun(dir: string, bytes: number, s: Samples, chunk: Buffer): Promise<void> {
  const path = join(dir, 'disk-rate.bin');
  const fd = openSync(path, 'wx');
  try {
    settle();
  const t = now();
    for (let at = 0; at < bytes; at += chunk.length) {
      const len = Math.min(chunk.length, bytes - at);
      let done = 0;
      while (done < len) done += writeSync(fd, chunk, done, len - done, at + done);
    }
    fsyncSync(fd);
    s.add('disk_write_mb_s', bytes / 1e6 / (now() - t));
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

async function openSet(dir: string, sealBytes?: number): Promise<ArenaSet> {
  return ArenaSet.open(dir, { fs: nodeFileSystem, writer: WRITER, ...(sealBytes !== undefined ? { sealBytes } : {}) });
}

/**
 * Appends every record and syncs once at the end, or after every `syncEvery`
 * bytes of records; returns the set (open) and the seconds taken.
 */
async function appendAll(dir: string, d: Data, syncEvery: number | null, sealBytes?: number): Promise<{ set: ArenaSet; seconds: number }> {
  const set = await openSet(dir, sealBytes);
  const { keys, n } = d;
  settle();
  const t = now();
  if (syncEvery === null) {
    for (let i = 0; i < n; i++) set.append(KIND, RECORD_TYPE, keys[i]!, valueOf(d, i));
  } else {
    let since = 0;
    for (let i = 0; i < n; i++) {
      set.append(KIND, RECORD_TYPE, keys[i]!, valueOf(d, i));
      since += RECORD_BYTES;
      if (since >= syncEvery) {
        await set.sync();
        since = 0;
      }
    }
  }
  await set.sync();
  return { set, seconds: now() - t };
}

// ---------------------------------------------------------------- index size from the files

interface IndexSizes {
  arenas: number;
  keys: number;
  /** Slot table + fingerprints + alignment + MPH, per key. */
  indexBytesPerKey: number;
  mphBitsPerKey: number;
  /** The whole seal section (key table with digests, index, footer) per key. */
  sealBytesPerKey: number;
}

function indexSizes(dir: string): IndexSizes {
  let arenas = 0;
  let keys = 0;
  let index = 0;
  let mph = 0;
  let seal = 0;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.arena')) continue;
    const path = join(dir, name);
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const b = Buffer.alloc(FOOTER_LENGTH);
      readSync(fd, b, 0, FOOTER_LENGTH, size - FOOTER_LENGTH);
      const f = decodeFooter(b, size, path);
      arenas++;
      keys += f.count;
      index += f.mphOffset + f.mphLength - f.slotsOffset;
      mph += f.mphLength;
      seal += size - f.dataEnd;
    } finally {
      closeSync(fd);
    }
  }
  return { arenas, keys, indexBytesPerKey: index / keys, mphBitsPerKey: (mph * 8) / keys, sealBytesPerKey: seal / keys };
}

// ---------------------------------------------------------------- reads

function sealedGetMany(set: ArenaSet, batches: readonly Batch[], d: Data, present: boolean, what: string): number {
  const total = countOf(batches);
  settle();
  const t = now();
  for (const b of batches) {
    const out = set.getMany(b.keys);
    if (present) {
      for (let j = 0; j < out.length; j++) checkPayload(out[j]?.payload, d, b.idx[j]!, j, what);
    } else {
      for (let j = 0; j < out.length; j++) checkAbsent(out[j], what);
    }
  }
  return total / (now() - t);
}

type Level = ClassicLevel<Buffer, Buffer>;

async function levelGetMany(db: Level, batches: readonly Batch[], d: Data, present: boolean): Promise<number> {
  const total = countOf(batches);
  settle();
  const t = now();
  for (const b of batches) {
    const out = await db.getMany(b.keys);
    if (present) {
      for (let j = 0; j < out.length; j++) checkPayload(out[j], d, b.idx[j]!, j, 'classic-level getMany');
    } else {
      for (let j = 0; j < out.length; j++) checkAbsent(out[j], 'classic-level getMany');
    }
  }
  return total / (now() - t);
}

async function levelGet(db: Level, d: Data, sample: number): Promise<number> {
  settle();
  const t = now();
  for (let j = 0; j < sample; j++) {
    const i = d.order[j]!;
    checkPayload(await db.get(d.keys[i]!), d, i, j, 'classic-level get');
  }
  return sample / (now() - t);
}

function levelGetSync(db: Level, d: Data, sample: number): number {
  settle();
  const t = now();
  for (let j = 0; j < sample; j++) {
    const i = d.order[j]!;
    checkPayload(db.getSync(d.keys[i]!), d, i, j, 'classic-level getSync');
  }
  return sample / (now() - t);
}

/** Map.get in shuffled order; `fromBuffer` converts each Buffer key to hex as part of the lookup. */
function mapGet(m: Map<string, Buffer>, hex: readonly string[], d: Data, fromBuffer: boolean): number {
  const n = d.n;
  settle();
  const t = now();
  for (let j = 0; j < n; j++) {
    const i = d.order[j]!;
    const v = m.get(fromBuffer ? d.keys[i]!.toString('hex') : hex[i]!);
    checkPayload(v, d, i, j, 'Map.get');
  }
  return n / (now() - t);
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opt = parseArgs(process.argv.slice(2));
  const root = mkdtempSync(join(tmpdir(), 'bazil-bench-arena-'));
  const cleanup = (): void => rmSync(root, { recursive: true, force: true });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      cleanup();
      process.exit(130);
    });
  }
  const log = (m: string): void => {
    process.stderr.write(`[arena bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
  };
  const s = new Samples();
  const extra: Record<string, number> = {};
  const wall = now();
  try {
    const n = opt.n;
    log(`generating ${fmtInt(n)} keys and values`);
    const d = makeData(n, opt.absent);
    const recordBytes = n * RECORD_BYTES;

    // ------------------------------------------------ MPH
    if (opt.phases.has('mph')) {
      for (let r = 0; r < opt.runs; r++) {
        log(`MPH round ${r + 1}/${opt.runs}`);
        mphRound(d, s);
      }
    }

    // ------------------------------------------------ writes
    let set16Dir: string | null = null;
    if (opt.phases.has('write') || opt.phases.has('read')) {
      const chunk = randomBytes(MIB);
      const writeRuns = opt.phases.has('write') ? opt.runs : 1;
      for (let r = 0; r < writeRuns; r++) {
        const last = r === writeRuns - 1;
        if (opt.phases.has('write')) {
          log(`write round ${r + 1}/${writeRuns}: disk`);
          await diskRun(root, recordBytes, s, chunk);
        }
        log(`write round ${r + 1}/${writeRuns}: append, one fsync`);
        const dirA = join(root, `append-${r}`);
        const a = await appendAll(dirA, d, null);
        s.add('append_mb_s', recordBytes / 1e6 / a.seconds);
        if (last) {
          // Kept for the reads: seal the last arena too.
          const t = now();
          await a.set.sealNow();
          extra['final_seal_ms'] = (now() - t) * 1000;
          await a.set.close();
          set16Dir = dirA;
        } else {
          await a.set.close();
          rmSync(dirA, { recursive: true, force: true });
        }
        if (opt.phases.has('write')) {
          log(`write round ${r + 1}/${writeRuns}: append, fsync every 1 MiB`);
          const dirB = join(root, `append-fsync-${r}`);
          const b = await appendAll(dirB, d, MIB);
          s.add('append_fsync_mb_s', recordBytes / 1e6 / b.seconds);
          await b.set.close();
          rmSync(dirB, { recursive: true, force: true });
        }
      }
    }

    // ------------------------------------------------ reads
    let sizes16: IndexSizes | null = null;
    let sizes1000: IndexSizes | null = null;
    if (opt.phases.has('read') && set16Dir !== null) {
      // The many-arena set: each arena holds n / arenas records.
      const perArena = Math.ceil(n / opt.arenas);
      const sealBytesMany = HEADER_LENGTH + perArena * FRAME_BYTES;
      log(`building the ${opt.arenas}-arena set (sealBytes ${fmtInt(sealBytesMany)})`);
      const dirMany = join(root, 'many');
      const many = await appendAll(dirMany, d, null, sealBytesMany);
      let t = now();
      await many.set.sealNow();
      extra['append_many_arenas_mb_s'] = recordBytes / 1e6 / (many.seconds + now() - t);
      await many.set.close();

      sizes16 = indexSizes(set16Dir);
      sizes1000 = indexSizes(dirMany);

      log('loading classic-level (batches of 1,000 puts)');
      const db: Level = new ClassicLevel<Buffer, Buffer>(join(root, 'level'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open();
      t = now();
      for (let at = 0; at < n; at += 1000) {
        const ops: { type: 'put'; key: Buffer; value: Buffer }[] = [];
        for (let i = at; i < Math.min(n, at + 1000); i++) ops.push({ type: 'put', key: d.keys[i]!, value: valueOf(d, i) });
        await db.batch(ops);
      }
      extra['level_put_mb_s'] = recordBytes / 1e6 / (now() - t);
      log('compacting classic-level (so reads do not race background compaction)');
      t = now();
      await db.compactRange(Buffer.alloc(KEY_LENGTH, 0), Buffer.alloc(KEY_LENGTH, 0xff));
      extra['level_compact_s'] = now() - t;


      log('reopening the arena sets');
      settle();
      t = now();
      const set16 = await openSet(set16Dir);
      extra['open_ms'] = (now() - t) * 1000;
      settle();
      t = now();
      const setMany = await openSet(dirMany);
      extra['open_many_arenas_ms'] = (now() - t) * 1000;
      extra['sealed_arenas'] = set16.stats().sealedArenas;
      extra['sealed_arenas_many'] = setMany.stats().sealedArenas;
      extra['locator_bytes_per_key'] = set16.stats().locatorBytes / n;

      const present = batchesOf(d, opt.batch, true);
      const absent = batchesOf(d, opt.batch, false);
      const tenth = present.slice(0, Math.max(1, Math.ceil(present.length / 10)));
      log('warm-up pass (10% of the keys, not timed)');
      sealedGetMany(set16, tenth, d, true, 'sealed warm-up');
      sealedGetMany(setMany, tenth, d, true, 'sealed warm-up');
      sealedGetMany(set16, absent.slice(0, tenth.length), d, false, 'sealed warm-up');
      await levelGetMany(db, tenth, d, true);
      await levelGet(db, d, Math.min(1000, opt.levelGetSample));
      levelGetSync(db, d, Math.min(1000, opt.levelGetSample));

      for (let r = 0; r < opt.runs; r++) {
        log(`read round ${r + 1}/${opt.runs}`);
        s.add('sealed_get_ops_s', sealedGetMany(set16, present, d, true, 'sealed getMany'));
        s.add('sealed_get_absent_ops_s', sealedGetMany(set16, absent, d, false, 'sealed getMany absent'));
        s.add('sealed_get_1000_arenas_ops_s', sealedGetMany(setMany, present, d, true, `sealed getMany, ${opt.arenas} arenas`));
        s.add('sealed_get_absent_1000_arenas_ops_s', sealedGetMany(setMany, absent, d, false, `sealed getMany absent, ${opt.arenas} arenas`));
        s.add('level_getmany_ops_s', await levelGetMany(db, present, d, true));
        s.add('level_getmany_absent_ops_s', await levelGetMany(db, absent, d, false));
        s.add('level_get_ops_s', await levelGet(db, d, opt.levelGetSample));
        s.add('level_getsync_ops_s', levelGetSync(db, d, opt.levelGetSample));
        // The Map lives only while it is measured.
        const hex = hexKeys(d);
        const m = buildMap(d, hex);
        s.add('map_get_ops_s', mapGet(m, hex, d, false));
        s.add('map_get_hex_ops_s', mapGet(m, hex, d, true));
      }
      await set16.close();
      await setMany.close();
      await db.close();
    }

    // ------------------------------------------------ report
    const lines: TableLine[] = [];
    const result: Record<string, number> = {};
    const put = (key: string, v: number, digits = 4): void => {
      result[key] = sig(v, digits);
    };
    const med = (k: string): number => s.median(k);
    const range = (k: string, f: (v: number) => string): string => s.spread(k, f);
    const ns = (v: number): string => `${v.toFixed(v < 10 ? 1 : 0)} ns`;

    if (s.has('mph_build_ns_per_key')) {
      const bits = med('mph_bits_per_key');
      const build = med('mph_build_ns_per_key');
      const evalNs = med('mph_eval_ns');
      const evalShuf = med('mph_eval_shuffled_ns');
      const mapBuild = med('map_build_ns_per_key');
      const mapGetNs = med('map_get_ns');
      lines.push({ section: `perfect hash over ${fmtInt(n)} keys (Mph.build / lookup)` });
      lines.push({ figure: 'MPH bits/key (remap incl.)', value: bits.toFixed(3), spread: range('mph_bits_per_key', (v) => v.toFixed(3)),
        baseline: 'lower bound log2(e) = 1.443', ratio: fmtRatio(bits / 2.5), target: '<= 2.5', verdict: atMost(bits, 2.5) });
      lines.push({ figure: 'MPH build ns/key', value: ns(build), spread: range('mph_build_ns_per_key', ns),
        baseline: `Map.set, hex keys: ${ns(mapBuild)}`, ratio: fmtRatio(build / 1000), target: '<= 1000 ns', verdict: atMost(build, 1000) });
      lines.push({ figure: 'MPH eval ns/lookup (key order)', value: ns(evalNs), spread: range('mph_eval_ns', ns),
        baseline: `Map.get, hex keys: ${ns(mapGetNs)}`, ratio: fmtRatio(evalNs / 100), target: '<= 100 ns', verdict: atMost(evalNs, 100) });
      lines.push({ figure: 'MPH eval ns/lookup (shuffled)', value: ns(evalShuf), spread: range('mph_eval_shuffled_ns', ns),
        baseline: `MPH eval in key order: ${ns(evalNs)}`, ratio: fmtRatio(evalShuf / evalNs) });
      put('mph_bits_per_key', bits);
      put('mph_build_ns_per_key', build);
      put('mph_eval_ns', evalNs);
      put('mph_eval_shuffled_ns', evalShuf);
      put('map_build_ns_per_key', mapBuild);
      put('map_get_ns', mapGetNs);
    }
    if (sizes16 !== null && sizes1000 !== null) {
      lines.push({ section: 'index in the sealed files (footer fields: slot table 4 B + fingerprint 2 B + MPH, per key)' });
      lines.push({ figure: `index bytes/key, ${sizes16.arenas} arenas`, value: sizes16.indexBytesPerKey.toFixed(3),
        baseline: 'key + u32 offset table: 36', ratio: fmtRatio(sizes16.indexBytesPerKey / 36) });
      lines.push({ figure: `index bytes/key, ${sizes1000.arenas} arenas`, value: sizes1000.indexBytesPerKey.toFixed(3),
        baseline: `${sizes16.arenas} arenas: ${sizes16.indexBytesPerKey.toFixed(3)}`, ratio: fmtRatio(sizes1000.indexBytesPerKey / sizes16.indexBytesPerKey) });
      lines.push({ figure: `MPH bits/key in files, ${sizes16.arenas} / ${sizes1000.arenas} arenas`, value: `${sizes16.mphBitsPerKey.toFixed(2)} / ${sizes1000.mphBitsPerKey.toFixed(2)}`,
        baseline: 'one MPH over all keys: above', target: '<= 2.5', verdict: atMost(sizes16.mphBitsPerKey, 2.5) });
      lines.push({ figure: 'seal section bytes/key (+ key table)', value: sizes16.sealBytesPerKey.toFixed(1),
        baseline: `record ${RECORD_BYTES} B, frame ${FRAME_BYTES} B`, ratio: `${((100 * sizes16.sealBytesPerKey) / FRAME_BYTES).toFixed(1)}%` });
      put('index_bytes_per_key', sizes16.indexBytesPerKey);
      put('index_bytes_per_key_1000_arenas', sizes1000.indexBytesPerKey);
      put('file_mph_bits_per_key', sizes16.mphBitsPerKey);
      put('seal_section_bytes_per_key', sizes16.sealBytesPerKey);
    }
    if (s.has('sealed_get_ops_s')) {
      const sg = med('sealed_get_ops_s');
      const sga = med('sealed_get_absent_ops_s');
      const sm = med('sealed_get_1000_arenas_ops_s');
      const sma = med('sealed_get_absent_1000_arenas_ops_s');
      const lgm = med('level_getmany_ops_s');
      const lgma = med('level_getmany_absent_ops_s');
      const lg = med('level_get_ops_s');
      const lgs = med('level_getsync_ops_s');
      const mg = med('map_get_ops_s');
      const mgh = med('map_get_hex_ops_s');
      const a16 = extra['sealed_arenas']!;
      const aMany = extra['sealed_arenas_many']!;
      lines.push({ section: `gets, ${fmtInt(n)} present keys in shuffled order, batches of ${opt.batch}; payloads checked (length; 1 in 64 byte for byte)` });
      lines.push({ figure: `sealed getMany, ${a16} arenas`, value: fmtOps(sg), spread: range('sealed_get_ops_s', fmtOps),
        baseline: `classic-level getMany: ${fmtOps(lgm)}`, ratio: fmtRatio(sg / lgm), target: '>= 2× level', verdict: atLeast(sg / lgm, 2) });
      lines.push({ figure: `sealed getMany, ${aMany} arenas`, value: fmtOps(sm), spread: range('sealed_get_1000_arenas_ops_s', fmtOps),
        baseline: `sealed getMany, ${a16} arenas: ${fmtOps(sg)}`, ratio: fmtRatio(sm / sg), target: '>= 0.8× of it', verdict: atLeast(sm / sg, 0.8) });
      lines.push({ figure: `  same, against classic-level`, value: fmtOps(sm),
        baseline: `classic-level getMany: ${fmtOps(lgm)}`, ratio: fmtRatio(sm / lgm), target: '>= 1.6× level', verdict: atLeast(sm / lgm, 1.6) });
      lines.push({ figure: `sealed getMany absent, ${a16} arenas`, value: fmtOps(sga), spread: range('sealed_get_absent_ops_s', fmtOps),
        baseline: `classic-level getMany absent: ${fmtOps(lgma)}`, ratio: fmtRatio(sga / lgma) });
      lines.push({ figure: `sealed getMany absent, ${aMany} arenas`, value: fmtOps(sma), spread: range('sealed_get_absent_1000_arenas_ops_s', fmtOps),
        baseline: `absent, ${a16} arenas: ${fmtOps(sga)}`, ratio: fmtRatio(sma / sga) });
      lines.push({ figure: 'classic-level getMany', value: fmtOps(lgm), spread: range('level_getmany_ops_s', fmtOps),
        baseline: `sealed getMany: ${fmtOps(sg)}`, ratio: fmtRatio(lgm / sg) });
      lines.push({ figure: `classic-level get, awaited (${fmtInt(opt.levelGetSample)})`, value: fmtOps(lg), spread: range('level_get_ops_s', fmtOps),
        baseline: `sealed getMany: ${fmtOps(sg)}`, ratio: fmtRatio(lg / sg) });
      lines.push({ figure: `classic-level getSync (${fmtInt(opt.levelGetSample)})`, value: fmtOps(lgs), spread: range('level_getsync_ops_s', fmtOps),
        baseline: `sealed getMany: ${fmtOps(sg)}`, ratio: fmtRatio(lgs / sg) });
      lines.push({ figure: 'Map.get (hex keys)', value: fmtOps(mg), spread: range('map_get_ops_s', fmtOps),
        baseline: `sealed getMany: ${fmtOps(sg)}`, ratio: fmtRatio(mg / sg) });
      lines.push({ figure: 'Map.get (Buffer key → hex)', value: fmtOps(mgh), spread: range('map_get_hex_ops_s', fmtOps),
        baseline: `sealed getMany: ${fmtOps(sg)}`, ratio: fmtRatio(mgh / sg) });
      put('sealed_get_ops_s', sg);
      put('sealed_get_1000_arenas_ops_s', sm);
      put('sealed_get_absent_ops_s', sga);
      put('sealed_get_absent_1000_arenas_ops_s', sma);
      put('level_getmany_ops_s', lgm);
      put('level_getmany_absent_ops_s', lgma);
      put('level_get_ops_s', lg);
      put('level_getsync_ops_s', lgs);
      put('map_get_ops_s', mg);
      put('map_get_hex_ops_s', mgh);
      put('sealed_vs_level_getmany', sg / lgm, 3);
      put('sealed_1000_vs_sealed', sm / sg, 3);
      put('sealed_1000_vs_level_getmany', sm / lgm, 3);
      put('sealed_arenas', a16);
      put('sealed_arenas_many', aMany);
    }
    if (s.has('append_mb_s') && s.has('disk_write_mb_s')) {
      const ap = med('append_mb_s');
      const apf = med('append_fsync_mb_s');
      const disk = med('disk_write_mb_s');
      lines.push({ section: `appends of ${fmtInt(n)} records (${(recordBytes / 1e6).toFixed(0)} MB of keys + values; MB = 10^6 B), default sealBytes ${DEFAULT_SEAL_BYTES / MIB} MiB, sealing included` });
      lines.push({ figure: 'append, one fsync at the end', value: fmtMBs(ap), spread: range('append_mb_s', fmtMBs),
        baseline: `disk, same bytes, 1 MiB writes + fsync: ${fmtMBs(disk)}`, ratio: fmtRatio(ap / disk), target: '>= 0.7× disk', verdict: atLeast(ap / disk, 0.7) });
      lines.push({ figure: 'append, fsync every 1 MiB', value: fmtMBs(apf), spread: range('append_fsync_mb_s', fmtMBs),
        baseline: `append, one fsync: ${fmtMBs(ap)}`, ratio: fmtRatio(apf / ap) });
      lines.push({ figure: 'disk write + one fsync', value: fmtMBs(disk), spread: range('disk_write_mb_s', fmtMBs),
        baseline: '(the baseline itself)' });
      put('append_mb_s', ap);
      put('append_fsync_mb_s', apf);
      put('disk_write_mb_s', disk);
      put('append_vs_disk', ap / disk, 3);
      put('append_fsync_vs_disk', apf / disk, 3);
    } else if (s.has('append_mb_s')) {
      put('append_mb_s', med('append_mb_s'));
    }
    if (extra['level_put_mb_s'] !== undefined) {
      const ap = s.has('append_mb_s') ? med('append_mb_s') : NaN;
      lines.push({ section: 'one-off figures (single run)' });
      lines.push({ figure: 'classic-level batched put', value: fmtMBs(extra['level_put_mb_s']),
        baseline: `append, one fsync: ${fmtMBs(ap)}`, ratio: fmtRatio(extra['level_put_mb_s'] / ap) });
      lines.push({ figure: `append + seal into ${extra['sealed_arenas_many']} arenas`, value: fmtMBs(extra['append_many_arenas_mb_s']!),
        baseline: `append, one fsync: ${fmtMBs(ap)}`, ratio: fmtRatio(extra['append_many_arenas_mb_s']! / ap) });
      lines.push({ figure: `open ${extra['sealed_arenas']} / ${extra['sealed_arenas_many']} sealed arenas`, value: `${extra['open_ms']!.toFixed(0)} / ${extra['open_many_arenas_ms']!.toFixed(0)} ms`,
        baseline: `classic-level compactRange: ${extra['level_compact_s']!.toFixed(1)} s` });
      lines.push({ figure: 'locator memory bytes/key', value: extra['locator_bytes_per_key']!.toFixed(1),
        baseline: 'index in files: ' + (sizes16?.indexBytesPerKey.toFixed(2) ?? '?') });
      for (const k of ['level_put_mb_s', 'append_many_arenas_mb_s', 'open_ms', 'open_many_arenas_ms', 'level_compact_s', 'final_seal_ms', 'locator_bytes_per_key']) {
        if (extra[k] !== undefined) put(k, extra[k]);
      }
    }

    const size = `${opt.quick ? 'QUICK' : 'FULL'} size: ${fmtInt(n)} random 32-byte keys × ${VALUE_LENGTH} B values, ` +
      `many-arena set of ${opt.arenas} arenas; medians of ${opt.runs} interleaved runs`;
    const out = [
      `bench/arena — ${size}`,
      machineLine(tmpdir()),
      '',
      renderTable(lines),
      '',
      `total time ${(now() - wall).toFixed(1)} s`,
    ];
    put('keys', n);
    put('runs', opt.runs);
    result['quick'] = opt.quick ? 1 : 0;
    if (sink === 0.5) out.push('');
    process.stdout.write(`${out.join('\n')}\n`);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } finally {
    cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/arena failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
