// Checkpoints: the projection of a prefix of the log, saved under the
// volume's directory (`checkpoints/`) so a past state is rebuilt from the
// nearest one instead of from the first event.
//
// A checkpoint is local and derived (DESIGN.md): it is made here from this
// peer's own log and never received from a peer. It is canonical: its
// bytes are a function of the events it covers (the version vector, the
// projection's dump, the snapshot table), and it is named by the SHA-256
// of those bytes, so loading one checks its hash against its name, and a
// replay of the log to its vector can check it again (History.verify).
// Anything that fails is deleted and rebuilt by the next replay that passes
// its position: checkpoints are a cache, never the truth.
//
// File: `<count, 20 digits>-<id hex>.ckpt` =
//   "BZCKPT\n" 0x01 | u32 BE header length | header | state
// header = canonical CBOR [count, vector, position(48), snapshots], where
// snapshots = [[name, count, vector, hlc, writer, seq], …] in name order;
// state = the dump (u32 BE length ‖ key, u32 BE length ‖ value, …, in key
// order); id = SHA-256(header length ‖ header ‖ state).

import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BazilError, ErrorCodes, ioError, isBazilError } from '../../errors/index.js';
import { writeFileAtomic } from '../../migrations/durable-file.js';
import { decodeCanonical, encodeCanonical, type DecodedValue } from '../log/canonical-cbor.js';
import { VersionVector } from '../log/version-vector.js';
import type { RecordCodec } from '../projection/record-codec.js';
import { decodePosition, encodePosition, type Position } from '../projection/schema.js';
import { MemProjection } from './mem-projection.js';

export const CHECKPOINTS_DIR = 'checkpoints';
const MAGIC = Buffer.from('BZCKPT\n\x01', 'latin1');
const NAME = /^(\d{20})-([0-9a-f]{64})\.ckpt$/;
/** A header larger than this is damage, not a snapshot table (names are ≤ 255 bytes). */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;

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

export interface CheckpointRef {
  id: string;
  path: string;
  count: bigint;
  vector: VersionVector;
  /** The last event it covers. */
  position: Position;
  /** The live snapshots at that point. */
  snapshots: SnapshotInfo[];
}

export class CheckpointStore {
  constructor(readonly dir: string) {}

  static forVolume(volumeDir: string): CheckpointStore {
    return new CheckpointStore(join(volumeDir, CHECKPOINTS_DIR));
  }

  /**
   * Every checkpoint whose header reads, in position order. Files that are
   * not checkpoints are left alone; checkpoints whose header is damaged
   * are deleted (their state is rebuilt by the next replay past them).
   */
  async list(): Promise<CheckpointRef[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError('list', this.dir, err);
    }
    const out: CheckpointRef[] = [];
    for (const name of names.sort()) {
      const m = NAME.exec(name);
      if (m === null) continue;
      const path = join(this.dir, name);
      try {
        const ref = await readHeader(path, m[2]!);
        if (ref.count !== BigInt(m[1]!)) throw bad(path, 'its name and header disagree on its position');
        out.push(ref);
      } catch (err) {
        if (!isBazilError(err, ErrorCodes.BAD_CHECKPOINT)) throw err;
        await this.remove(path);
      }
    }
    return out;
  }

  /** Saves the state of `proj` (a prefix of the log) with the snapshot table at that point. */
  async write(proj: MemProjection, snapshots: Iterable<SnapshotInfo>): Promise<CheckpointRef> {
    const { body, id, position, table } = checkpointBytes(proj, snapshots);
    await mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => { throw ioError('create', this.dir, err); });
    const path = join(this.dir, fileName(proj.count, id));
    await writeFileAtomic(path, Buffer.concat([MAGIC, body]), 0o600);
    return { id, path, count: proj.count, vector: proj.versionVector(), position, snapshots: table };
  }

  /** The checkpoint's state, opened with `codec`; BAD_CHECKPOINT when its bytes do not hash to its name or do not parse. */
  async load(ref: CheckpointRef, codec: RecordCodec): Promise<MemProjection> {
    let bytes: Buffer;
    try {
      bytes = await readFile(ref.path);
    } catch (err) {
      throw ioError('read', ref.path, err);
    }
    if (bytes.length < MAGIC.length + 4 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw bad(ref.path, 'it does not start with the checkpoint magic');
    const body = bytes.subarray(MAGIC.length);
    if (createHash('sha256').update(body).digest('hex') !== ref.id) throw bad(ref.path, 'its bytes do not hash to its name');
    const headerLen = body.readUInt32BE(0);
    try {
      return MemProjection.fromRecords(records(body, 4 + headerLen, ref.path), ref.count, codec);
    } catch (err) {
      if (isBazilError(err) && err.code !== ErrorCodes.BAD_CHECKPOINT) throw bad(ref.path, `its state does not parse (${err.message})`);
      throw err;
    }
  }

  /** Whether the file's bytes still hash to its name. */
  async intact(ref: CheckpointRef): Promise<boolean> {
    try {
      const bytes = await readFile(ref.path);
      return bytes.subarray(0, MAGIC.length).equals(MAGIC) && createHash('sha256').update(bytes.subarray(MAGIC.length)).digest('hex') === ref.id;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw ioError('read', ref.path, err);
    }
  }

  async remove(path: string): Promise<void> {
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw ioError('remove', path, err);
    });
  }
}

/** A checkpoint's bytes (after the magic) and its id: a function of the state alone, so a replay can recompute them. */
export function checkpointBytes(proj: MemProjection, snapshots: Iterable<SnapshotInfo>): { body: Buffer; id: string; position: Position; table: SnapshotInfo[] } {
  const position = proj.position();
  if (position === null) throw new BazilError(ErrorCodes.INTERNAL, 'a checkpoint of no events');
  const table = [...snapshots].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const header = encodeCanonical([
    proj.count, proj.versionVector().toCbor(), encodePosition(position),
    table.map((s) => [s.name, s.count, s.vector.toCbor(), s.hlc, s.writer, s.seq]),
  ]);
  const parts: Buffer[] = [u32(header.length), header];
  for (const [k, v] of proj.records()) parts.push(u32(k.length), k, u32(v.length), v);
  const body = Buffer.concat(parts);
  return { body, id: createHash('sha256').update(body).digest('hex'), position, table };
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
    const start = Buffer.alloc(MAGIC.length + 4);
    const { bytesRead } = await fh.read(start, 0, start.length, 0);
    if (bytesRead < start.length || !start.subarray(0, MAGIC.length).equals(MAGIC)) throw bad(path, 'it does not start with the checkpoint magic');
    const len = start.readUInt32BE(MAGIC.length);
    if (len > MAX_HEADER_BYTES) throw bad(path, 'its header length is implausible');
    const header = Buffer.alloc(len);
    const got = await fh.read(header, 0, len, start.length);
    if (got.bytesRead < len) throw bad(path, 'it is truncated');
    return parseHeader(header, path, id);
  } finally {
    await fh.close();
  }
}

function parseHeader(bytes: Buffer, path: string, id: string): CheckpointRef {
  let v: DecodedValue;
  try {
    v = decodeCanonical(bytes, ErrorCodes.BAD_CHECKPOINT);
    if (!Array.isArray(v) || v.length !== 4 || !Array.isArray(v[3])) throw bad(path, 'its header is not [count, vector, position, snapshots]');
    const snapshots = v[3].map((s): SnapshotInfo => {
      if (!Array.isArray(s) || s.length !== 6) throw bad(path, 'a snapshot entry is malformed');
      return {
        name: str(s[0], path), count: big(s[1], path), vector: VersionVector.fromCbor(s[2]!, ErrorCodes.BAD_CHECKPOINT),
        hlc: big(s[3], path), writer: buf(s[4], path), seq: big(s[5], path),
      };
    });
    return {
      id, path, count: big(v[0], path), vector: VersionVector.fromCbor(v[1]!, ErrorCodes.BAD_CHECKPOINT),
      position: decodePosition(buf(v[2], path)), snapshots,
    };
  } catch (err) {
    if (isBazilError(err) && err.code !== ErrorCodes.BAD_CHECKPOINT) throw bad(path, `its header does not parse (${err.message})`);
    throw err;
  }
}

function* records(body: Buffer, from: number, path: string): Generator<[Buffer, Buffer]> {
  let at = from;
  const take = (): Buffer => {
    if (at + 4 > body.length) throw bad(path, 'its state is truncated');
    const len = body.readUInt32BE(at);
    if (at + 4 + len > body.length) throw bad(path, 'its state is truncated');
    const out = body.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    return out;
  };
  while (at < body.length) {
    const k = take();
    yield [k, take()];
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
