// Checkpoints: the projection of a prefix of the log, saved under the
// volume's directory (`checkpoints/`) so a past state is rebuilt from the
// nearest one instead of from the first event.
//
// A checkpoint is local and derived (DESIGN.md): it is made here from this
// peer's own log and never received from a peer. It is canonical: its
// bytes are a function of the events it covers (the version vector, the
// projection's dump, the snapshot table) and, for a delta, of the
// checkpoint it names as its base; it is named by the SHA-256 of those
// bytes, so loading one checks its hash against its name, and a replay of
// the log to its vector can check it again (History.verify). Anything that
// fails is deleted and rebuilt by the next replay that passes its
// position: checkpoints are a cache, never the truth.
//
// File: "BZCKPT\n" | version | u32 BE header length | header | payload,
// four versions:
//
// - 0x01, full, plain (the only kind before delta checkpoints; written
//   again since when DEFLATE would not save a quarter of it, as for sealed
//   records): header = canonical CBOR [count, vector, position(48),
//   snapshots], snapshots = [[name, count, vector, hlc, writer, seq], …] in
//   name order; payload = the state: the dump (u32 BE length ‖ key, u32 BE
//   length ‖ value, …, in key order).
// - 0x03, full, deflated: the same header; payload = the state as raw
//   DEFLATE (RFC 1951).
// - 0x02, delta, deflated: the records that differ from an earlier
//   checkpoint, its base, which the header names by position and id:
//   header = canonical CBOR [count, vector, position(48), snapshots,
//   base count, base id(32)]; payload = the changes as raw DEFLATE, changes
//   = (u32 BE length ‖ key, then u32 BE length ‖ value, or FFFFFFFF for a
//   key the base has and this state does not), in key order.
// - 0x04, delta, plain: the same, the changes not deflated (written when
//   DEFLATE would not save a quarter of them).
//
// File name: `<count, 20 digits>-<id hex>.ckpt`, id = SHA-256(version ‖
// header length ‖ header ‖ the payload uncompressed). The name is thus a
// function of the events covered (and of the base's id) whatever the
// compressor's output, which may differ between zlib versions. A delta's
// id covers its base's id, so a chain of deltas is checked link by link
// back to a full one.

import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { BazilError, ErrorCodes, ioError, isBazilError } from '../../errors/index.js';
import { writeFileAtomic } from '../../migrations/durable-file.js';
import { decodeCanonical, encodeCanonical, type DecodedValue, type EncodableValue } from '../log/canonical-cbor.js';
import { VersionVector } from '../log/version-vector.js';
import type { RecordCodec } from '../projection/record-codec.js';
import { decodePosition, encodePosition, type Position } from '../projection/schema.js';
import { MemProjection } from './mem-projection.js';
import { RecordIndex } from './record-index.js';

export const CHECKPOINTS_DIR = 'checkpoints';
const MAGIC_PREFIX = Buffer.from('BZCKPT\n', 'latin1');
const FULL_PLAIN = 0x01;
const DELTA = 0x02;
const FULL = 0x03;
const DELTA_PLAIN = 0x04;
/** Fast DEFLATE: most of the gain (ids and writer ids repeat across records) at a fraction of the time of the default level. */
const DEFLATE_LEVEL = 1;
/**
 * A payload is stored deflated only when that saves at least this share:
 * sealed records are random bytes and deflate by under a tenth, and
 * inflating a large state on every load costs more than that disk.
 */
const DEFLATE_WORTH = 0.25;
const MAGIC_LENGTH = MAGIC_PREFIX.length + 1;
const NAME = /^(\d{20})-([0-9a-f]{64})\.ckpt$/;
/** A header larger than this is damage, not a snapshot table (names are ≤ 255 bytes). */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;
/** Checkpoint headers read at once when listing them. */
const LIST_PARALLEL = 8;
/** The value length of a change that removes its key. */
const REMOVED = 0xffffffff;

/** A live snapshot: the state of the events its vector covers (the snapshot event's deps plus itself). */
export interface SnapshotInfo {
  name: string;
  /** The snapshot event's position in the merge order. */
  count: bigint;
  vector: VersionVector;
  hlc: bigint;
  writer: Buffer;
  seq: bigint;
}

/** The checkpoint a delta is written against. */
export interface BaseRef {
  count: bigint;
  id: string;
}

export interface CheckpointRef {
  id: string;
  path: string;
  count: bigint;
  vector: VersionVector;
  /** The last event it covers. */
  position: Position;
  /** The live snapshots at that point. */
  snapshots: SnapshotInfo[];
  /** A delta's base; null for a full checkpoint. */
  base: BaseRef | null;
  /** The format version (0x01 full plain, 0x02 delta deflated, 0x03 full deflated, 0x04 delta plain). */
  version: number;
}

/**
 * A projection's state as records: key bytes as a latin1 string (whose
 * string order is the bytes' order) → value. What deltas are computed
 * against and what loading a chain builds.
 */
export type StateRecords = Map<string, Buffer>;

/** A checkpoint's content after the magic, its id, and what its ref records. */
export interface CheckpointBytes {
  version: number;
  /** Version byte, header length and header. */
  head: Buffer;
  /** The state or changes, uncompressed. */
  payload: Buffer;
  /** The payload deflated, when the version is a deflated one and it was made already. */
  deflated?: Buffer | undefined;
  id: string;
  position: Position;
  table: SnapshotInfo[];
  /** The records that differ from the base (all of them for a full one). */
  changes: number;
}

export class CheckpointStore {
  constructor(readonly dir: string) {}

  static forVolume(volumeDir: string): CheckpointStore {
    return new CheckpointStore(join(volumeDir, CHECKPOINTS_DIR));
  }

  /**
   * Every checkpoint whose header reads, in position order. Files that are
   * not checkpoints are left alone; checkpoints whose header is damaged
   * are deleted (their state is rebuilt by the next replay past them) and
   * passed to `onDamaged`.
   */
  async list(onDamaged?: (err: BazilError) => void): Promise<CheckpointRef[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError('list', this.dir, err);
    }
    const files = names.sort().flatMap((name) => {
      const m = NAME.exec(name);
      return m === null ? [] : [{ path: join(this.dir, name), count: m[1]!, id: m[2]! }];
    });
    // Headers are read a few at a time: one after the other, the hundreds of a long log's checkpoints cost a round trip each.
    const read: (CheckpointRef | BazilError)[] = new Array(files.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < files.length; i = next++) {
        const { path, count, id } = files[i]!;
        try {
          const ref = await readHeader(path, id);
          if (ref.count !== BigInt(count)) throw bad(path, 'its name and header disagree on its position');
          if (ref.base !== null && ref.base.count >= ref.count) throw bad(path, 'its base is not before it');
          read[i] = ref;
        } catch (err) {
          if (!isBazilError(err, ErrorCodes.BAD_CHECKPOINT)) throw err;
          read[i] = err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LIST_PARALLEL, files.length) }, worker));
    const out: CheckpointRef[] = [];
    for (const [i, r] of read.entries()) {
      if (!(r instanceof BazilError)) {
        out.push(r);
        continue;
      }
      await this.remove(files[i]!.path);
      onDamaged?.(r);
    }
    return out;
  }

  /** Saves the state of `proj` (a prefix of the log) with the snapshot table at that point, whole. */
  async write(proj: MemProjection, snapshots: Iterable<SnapshotInfo>): Promise<CheckpointRef> {
    return this.writeBytes(proj, checkpointBytes(proj, snapshots), null);
  }

  /** Saves a checkpoint of `proj` made by checkpointBytes or deltaBytes (`base`: the one the delta is against). */
  async writeBytes(proj: MemProjection, bytes: CheckpointBytes, base: BaseRef | null): Promise<CheckpointRef> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => { throw ioError('create', this.dir, err); });
    const path = join(this.dir, fileName(proj.count, bytes.id));
    const payload = !isDeflated(bytes.version) ? bytes.payload : bytes.deflated ?? deflateRawSync(bytes.payload, { level: DEFLATE_LEVEL });
    await writeFileAtomic(path, Buffer.concat([MAGIC_PREFIX, bytes.head, payload]), 0o600);
    return { id: bytes.id, path, count: proj.count, vector: proj.versionVector(), position: bytes.position, snapshots: bytes.table, base, version: bytes.version };
  }

  /**
   * The state of `ref` as records: its chain (the full checkpoint it
   * descends from, then each delta) read, checked against the names and
   * applied in order. `refs` are the checkpoints to find bases among.
   * BAD_CHECKPOINT (with `data.path`, the file at fault) when a file of the
   * chain is gone, does not hash to its name or does not parse; when a base
   * is not among `refs` at all, BAD_CHECKPOINT with `data.missing` (the
   * delta itself may be fine: its base can be written again, same bytes).
   */
  async loadState(ref: CheckpointRef, refs: readonly CheckpointRef[]): Promise<StateRecords> {
    const chain = chainOf(ref, refs);
    if (chain === null) throw new BazilError(ErrorCodes.BAD_CHECKPOINT, `checkpoint ${ref.path} is unusable: the checkpoint it is a delta against is gone`, { path: ref.path, missing: true });
    const state: StateRecords = new Map();
    for (const link of chain) {
      const payload = await this.readPayload(link);
      if (link.base === null) {
        for (const [k, v] of records(payload, 0, link.path)) state.set(k.toString('latin1'), v);
      } else {
        for (const [k, v] of changes(payload, 0, link.path)) {
          if (v === null) state.delete(k.toString('latin1'));
          else state.set(k.toString('latin1'), v);
        }
      }
    }
    return state;
  }

  /**
   * The checkpoint's state as an in-memory projection (failures as for
   * loadState). The full checkpoint's state and the deltas' changes
   * (merged, the newest change of a key winning) are indexed where they
   * were read (record-index.ts) and a record is sliced out only when the
   * view reads it: no object, map entry or string per record at load, the
   * cost of an as-of view's start. The records are stored forms, opened
   * with `codec` when first read.
   */
  async load(ref: CheckpointRef, codec: RecordCodec, refs: readonly CheckpointRef[] = [ref]): Promise<MemProjection> {
    const chain = chainOf(ref, refs);
    if (chain === null) throw new BazilError(ErrorCodes.BAD_CHECKPOINT, `checkpoint ${ref.path} is unusable: the checkpoint it is a delta against is gone`, { path: ref.path, missing: true });
    const [full, ...deltas] = chain;
    const payloads: Buffer[] = [];
    for (const link of chain) payloads.push(await this.readPayload(link));
    try {
      const state = RecordIndex.scan(payloads[0]!, (why) => bad(full!.path, why));
      const changed = RecordIndex.merge(payloads.slice(1), (why, i) => bad(deltas[i]!.path, why));
      return MemProjection.fromChain(state, changed, ref.count, codec);
    } catch (err) {
      if (isBazilError(err) && err.code !== ErrorCodes.BAD_CHECKPOINT) throw bad(ref.path, `its state does not parse (${err.message})`);
      throw err;
    }
  }

  /** Whether the file's bytes still hash to its name. */
  async intact(ref: CheckpointRef): Promise<boolean> {
    try {
      await this.readPayload(ref);
      return true;
    } catch (err) {
      if (isBazilError(err, ErrorCodes.BAD_CHECKPOINT)) return false;
      throw err;
    }
  }

  async remove(path: string): Promise<void> {
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw ioError('remove', path, err);
    });
  }

  /** The payload, uncompressed, with the whole content checked against the name and the version the header gave. */
  private async readPayload(ref: CheckpointRef): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(ref.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw bad(ref.path, 'it is gone');
      throw ioError('read', ref.path, err);
    }
    if (bytes.length < MAGIC_LENGTH + 4 || !bytes.subarray(0, MAGIC_PREFIX.length).equals(MAGIC_PREFIX)) throw bad(ref.path, 'it does not start with the checkpoint magic');
    if (bytes[MAGIC_PREFIX.length] !== ref.version) throw bad(ref.path, 'its version byte changed');
    const payloadAt = MAGIC_LENGTH + 4 + bytes.readUInt32BE(MAGIC_LENGTH);
    if (payloadAt > bytes.length) throw bad(ref.path, 'it is truncated');
    let payload = bytes.subarray(payloadAt);
    if (isDeflated(ref.version)) {
      try {
        payload = inflateRawSync(payload);
      } catch (err) {
        throw bad(ref.path, `its payload does not inflate (${(err as Error).message})`);
      }
    }
    const hash = createHash('sha256').update(bytes.subarray(MAGIC_PREFIX.length, payloadAt)).update(payload);
    if (hash.digest('hex') !== ref.id) throw bad(ref.path, 'its bytes do not hash to its name');
    return payload;
  }
}

/**
 * The checkpoints `ref` is built from, the full one first and `ref` last;
 * null when a base is not among `refs` (deleted, or replaced by a
 * different one).
 */
export function chainOf(ref: CheckpointRef, refs: readonly CheckpointRef[]): CheckpointRef[] | null {
  const chain = [ref];
  for (let cur = ref; cur.base !== null;) {
    const { count, id } = cur.base;
    const base = refs.find((r) => r.count === count && r.id === id);
    if (base === undefined || base.count >= cur.count) return null;
    chain.push(base);
    cur = base;
  }
  return chain.reverse();
}

/** A state's records as (key, value) buffers in key order. */
export function* sortedRecords(state: StateRecords): Generator<[Buffer, Buffer]> {
  for (const k of [...state.keys()].sort()) yield [Buffer.from(k, 'latin1'), state.get(k)!];
}

/** A projection's records as a StateRecords map. */
export function stateOf(proj: MemProjection): StateRecords {
  const state: StateRecords = new Map();
  for (const [k, v] of proj.records()) state.set(k.toString('latin1'), v);
  return state;
}

/**
 * A full checkpoint's content and id: a function of the state alone, so a
 * replay can recompute them. `version` (0x01 plain, 0x03 deflated) gives
 * that form, to check a file; without it the form is chosen by what
 * DEFLATE saves (DEFLATE_WORTH).
 */
export function checkpointBytes(proj: MemProjection, snapshots: Iterable<SnapshotInfo>, version?: number): CheckpointBytes {
  if (version !== undefined && version !== FULL && version !== FULL_PLAIN) throw new BazilError(ErrorCodes.INTERNAL, `no full checkpoint has version ${version}`);
  const { position, table, header } = headerOf(proj, snapshots, null);
  const parts: Buffer[] = [];
  let n = 0;
  for (const [k, v] of proj.records()) {
    parts.push(u32(k.length), k, u32(v.length), v);
    n++;
  }
  return finish(version ?? [FULL_PLAIN, FULL], header, parts, position, table, n);
}

/**
 * A delta checkpoint's bytes and id: the records of `proj` that differ
 * from `baseState` (the state of `base`), and the keys it no longer has,
 * in key order. A function of the two states and the base's id (and of
 * `version`, 0x02 deflated or 0x04 plain, chosen as for a full one when
 * not given).
 */
export function deltaBytes(proj: MemProjection, snapshots: Iterable<SnapshotInfo>, base: BaseRef, baseState: StateRecords, version?: number): CheckpointBytes & { state: StateRecords } {
  if (version !== undefined && version !== DELTA && version !== DELTA_PLAIN) throw new BazilError(ErrorCodes.INTERNAL, `no delta checkpoint has version ${version}`);
  const { position, table, header } = headerOf(proj, snapshots, base);
  const state = stateOf(proj);
  const changed: string[] = [];
  for (const [k, v] of state) {
    const was = baseState.get(k);
    if (was === undefined || !was.equals(v)) changed.push(k);
  }
  for (const k of baseState.keys()) if (!state.has(k)) changed.push(k);
  changed.sort();
  const parts: Buffer[] = [];
  for (const k of changed) {
    const key = Buffer.from(k, 'latin1');
    const v = state.get(k);
    parts.push(u32(key.length), key);
    if (v === undefined) parts.push(u32(REMOVED));
    else parts.push(u32(v.length), v);
  }
  return { ...finish(version ?? [DELTA_PLAIN, DELTA], header, parts, position, table, changed.length), state };
}

function headerOf(proj: MemProjection, snapshots: Iterable<SnapshotInfo>, base: BaseRef | null): { position: Position; table: SnapshotInfo[]; header: Buffer } {
  const position = proj.position();
  if (position === null) throw new BazilError(ErrorCodes.INTERNAL, 'a checkpoint of no events');
  const table = [...snapshots].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const fields: EncodableValue[] = [
    proj.count, proj.versionVector().toCbor(), encodePosition(position),
    table.map((s) => [s.name, s.count, s.vector.toCbor(), s.hlc, s.writer, s.seq]),
  ];
  if (base !== null) fields.push(base.count, Buffer.from(base.id, 'hex'));
  return { position, table, header: encodeCanonical(fields) };
}

/** `version`: the one to use, or [plain, deflated] to choose by what DEFLATE saves. */
function finish(version: number | [number, number], header: Buffer, parts: Buffer[], position: Position, table: SnapshotInfo[], changes: number): CheckpointBytes {
  const payload = Buffer.concat(parts);
  let deflated: Buffer | undefined;
  if (Array.isArray(version)) {
    deflated = deflateRawSync(payload, { level: DEFLATE_LEVEL });
    const worth = deflated.length <= payload.length * (1 - DEFLATE_WORTH);
    version = worth ? version[1] : version[0];
    if (!worth) deflated = undefined;
  }
  const head = Buffer.concat([Buffer.from([version]), u32(header.length), header]);
  return { version, head, payload, deflated, id: createHash('sha256').update(head).update(payload).digest('hex'), position, table, changes };
}

function isDeflated(version: number): boolean {
  return version === FULL || version === DELTA;
}

function isDelta(version: number): boolean {
  return version === DELTA || version === DELTA_PLAIN;
}

function fileName(count: bigint, id: string): string {
  return `${count.toString().padStart(20, '0')}-${id}.ckpt`;
}

async function readHeader(path: string, id: string): Promise<CheckpointRef> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw ioError('open', path, err);
  }
  try {
    const start = Buffer.alloc(MAGIC_LENGTH + 4);
    const { bytesRead } = await fh.read(start, 0, start.length, 0);
    if (bytesRead < start.length || !start.subarray(0, MAGIC_PREFIX.length).equals(MAGIC_PREFIX)) throw bad(path, 'it does not start with the checkpoint magic');
    const version = start[MAGIC_PREFIX.length]!;
    if (version !== FULL && version !== FULL_PLAIN && version !== DELTA && version !== DELTA_PLAIN) throw bad(path, `its format version ${version} is not one this Bazil reads`);
    const len = start.readUInt32BE(MAGIC_LENGTH);
    if (len > MAX_HEADER_BYTES) throw bad(path, 'its header length is implausible');
    const header = Buffer.alloc(len);
    const got = await fh.read(header, 0, len, start.length);
    if (got.bytesRead < len) throw bad(path, 'it is truncated');
    return parseHeader(header, version, path, id);
  } finally {
    await fh.close();
  }
}

function parseHeader(bytes: Buffer, version: number, path: string, id: string): CheckpointRef {
  let v: DecodedValue;
  try {
    v = decodeCanonical(bytes, ErrorCodes.BAD_CHECKPOINT);
    const fields = isDelta(version) ? 6 : 4;
    if (!Array.isArray(v) || v.length !== fields || !Array.isArray(v[3])) {
      throw bad(path, !isDelta(version) ? 'its header is not [count, vector, position, snapshots]' : 'its header is not [count, vector, position, snapshots, base count, base id]');
    }
    const snapshots = v[3].map((s): SnapshotInfo => {
      if (!Array.isArray(s) || s.length !== 6) throw bad(path, 'a snapshot entry is malformed');
      return {
        name: str(s[0], path), count: big(s[1], path), vector: VersionVector.fromCbor(s[2]!, ErrorCodes.BAD_CHECKPOINT),
        hlc: big(s[3], path), writer: buf(s[4], path), seq: big(s[5], path),
      };
    });
    let base: BaseRef | null = null;
    if (isDelta(version)) {
      const baseId = buf(v[5], path);
      if (baseId.length !== 32) throw bad(path, 'its base id is not 32 bytes');
      base = { count: big(v[4], path), id: baseId.toString('hex') };
    }
    return {
      id, path, count: big(v[0], path), vector: VersionVector.fromCbor(v[1]!, ErrorCodes.BAD_CHECKPOINT),
      position: decodePosition(buf(v[2], path)), snapshots, base, version,
    };
  } catch (err) {
    if (isBazilError(err) && err.code !== ErrorCodes.BAD_CHECKPOINT) throw bad(path, `its header does not parse (${err.message})`);
    throw err;
  }
}

/** Reads u32-length-prefixed fields of `body` from `at`; a length of FFFFFFFF reads as null (a removed key). */
function reader(body: Buffer, at: number, path: string): { more: () => boolean; take: () => Buffer | null } {
  return {
    more: () => at < body.length,
    take: () => {
      if (at + 4 > body.length) throw bad(path, 'its state is truncated');
      const len = body.readUInt32BE(at);
      at += 4;
      if (len === REMOVED) return null;
      if (at + len > body.length) throw bad(path, 'its state is truncated');
      const out = body.subarray(at, at + len);
      at += len;
      return out;
    },
  };
}

function* records(body: Buffer, from: number, path: string): Generator<[Buffer, Buffer]> {
  const r = reader(body, from, path);
  while (r.more()) {
    const k = r.take();
    const v = r.take();
    if (k === null || v === null) throw bad(path, 'a full checkpoint holds a removed key');
    yield [k, v];
  }
}

function* changes(body: Buffer, from: number, path: string): Generator<[Buffer, Buffer | null]> {
  const r = reader(body, from, path);
  while (r.more()) {
    const k = r.take();
    if (k === null) throw bad(path, 'a change has no key');
    yield [k, r.take()];
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function big(v: DecodedValue | undefined, path: string): bigint {
  if (typeof v === 'number' || typeof v === 'bigint') return BigInt(v);
  throw bad(path, 'an integer field is not one');
}

function buf(v: DecodedValue | undefined, path: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  throw bad(path, 'a byte-string field is not one');
}

function str(v: DecodedValue | undefined, path: string): string {
  if (typeof v === 'string') return v;
  throw bad(path, 'a text field is not text');
}

function bad(path: string, why: string): BazilError {
  return new BazilError(ErrorCodes.BAD_CHECKPOINT, `checkpoint ${path} is unusable: ${why}`, { path });
}
