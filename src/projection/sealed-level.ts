// The projection's LevelDB seen through a RecordCodec: callers read and
// write records with names in the clear, LevelDB holds them hashed and
// sealed (record-codec.ts). Ranges are translated bound by bound, so a
// range over a table or an id's records is the same range, and a bound
// that names a record (readdir's `after`) becomes its hash: iteration goes
// in stored-key order, which for names is hash order, not name order.

import type { ClassicLevel } from 'classic-level';
import type { RecordCodec } from './record-codec.js';

export interface KeyRange {
  gt?: Buffer;
  gte?: Buffer;
  lt?: Buffer;
  lte?: Buffer;
  limit?: number;
}

export type RecordOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/** What the projection's code needs of its database. */
export interface ProjectionDb {
  get(key: Buffer): Promise<Buffer | undefined>;
  /** A point read on the calling thread: LevelDB answers from its caches without a thread-pool round trip (MEASURED.md). */
  getSync(key: Buffer): Buffer | undefined;
  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]>;
  put(key: Buffer, value: Buffer): Promise<void>;
  batch(ops: RecordOp[], options?: { sync?: boolean }): Promise<void>;
  iterator(range?: KeyRange): AsyncIterable<[Buffer, Buffer]>;
  keys(range?: KeyRange): AsyncIterable<Buffer>;
  values(range?: KeyRange): AsyncIterable<Buffer>;
}

export class SealedLevel implements ProjectionDb {
  constructor(readonly raw: ClassicLevel<Buffer, Buffer>, readonly codec: RecordCodec) {}

  async get(key: Buffer): Promise<Buffer | undefined> {
    const stored = this.codec.storedKey(key);
    const v = await this.raw.get(stored);
    return v === undefined ? undefined : this.codec.decode(stored, v)[1];
  }

  getSync(key: Buffer): Buffer | undefined {
    const stored = this.codec.storedKey(key);
    const v = this.raw.getSync(stored);
    return v === undefined ? undefined : this.codec.decode(stored, v)[1];
  }

  async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    const stored = keys.map((k) => this.codec.storedKey(k));
    const values = await this.raw.getMany(stored);
    return values.map((v, i) => (v === undefined ? undefined : this.codec.decode(stored[i]!, v)[1]));
  }

  async put(key: Buffer, value: Buffer): Promise<void> {
    const [k, v] = this.codec.encode(key, value);
    await this.raw.put(k, v);
  }

  async batch(ops: RecordOp[], options: { sync?: boolean } = {}): Promise<void> {
    await this.raw.batch(ops.map((op) => {
      if (op.type === 'del') return { type: 'del' as const, key: this.codec.storedKey(op.key) };
      const [key, value] = this.codec.encode(op.key, op.value);
      return { type: 'put' as const, key, value };
    }), options);
  }

  async *iterator(range: KeyRange = {}): AsyncGenerator<[Buffer, Buffer]> {
    for await (const [k, v] of this.raw.iterator(this.storedRange(range))) yield this.codec.decode(k, v);
  }

  // Named records carry their name in the sealed value, so keys need the values too.
  async *keys(range: KeyRange = {}): AsyncGenerator<Buffer> {
    for await (const [k] of this.iterator(range)) yield k;
  }

  async *values(range: KeyRange = {}): AsyncGenerator<Buffer> {
    for await (const [, v] of this.iterator(range)) yield v;
  }

  private storedRange(range: KeyRange): KeyRange {
    const out: KeyRange = {};
    if (range.gt !== undefined) out.gt = this.codec.storedKey(range.gt);
    if (range.gte !== undefined) out.gte = this.codec.storedKey(range.gte);
    if (range.lt !== undefined) out.lt = this.codec.storedKey(range.lt);
    if (range.lte !== undefined) out.lte = this.codec.storedKey(range.lte);
    if (range.limit !== undefined) out.limit = range.limit;
    return out;
  }
}
