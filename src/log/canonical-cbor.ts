// Canonical CBOR for events: cbor-x writes it, a strict reader of our own reads it.
//
// Events are signed and hashed as bytes, so each value must have exactly one
// encoding: integers and lengths in their shortest form, definite lengths,
// no floats, no tags, maps with text keys in the order the schema fixes.
// cbor-x produces that form once integers are handed to it in the right
// JavaScript type (a number up to 32 bits, a bigint beyond: it writes larger
// numbers as floats and every bigint in 8 bytes), which `encodeCanonical`
// arranges.
//
// Reading is the other way round: a hostile peer chooses the bytes, and
// cbor-x's decoder is built for trusted data (it honours tags, record
// definitions and shared references that change its state between calls,
// and accepts non-shortest forms). `decodeCanonical` accepts only the
// subset above, checks every length against the bytes that remain before it
// allocates anything, bounds nesting, and so never hangs, never allocates
// more than its input, and either returns a value whose canonical encoding
// is the input or throws a BazilError.

import { Encoder } from 'cbor-x';
import { BazilError, ErrorCodes, type ErrorCode } from '../../errors/index.js';

/** What `encodeCanonical` takes. Maps are plain objects or Maps; their key order is the encoding's. */
export type EncodableValue =
  | number | bigint | string | Uint8Array | boolean | null
  | readonly EncodableValue[]
  | ReadonlyMap<string, EncodableValue>
  | { readonly [key: string]: EncodableValue };

/** What `decodeCanonical` returns. Maps become Map objects, so no key can reach a prototype. */
export type DecodedValue =
  | number | bigint | string | Buffer | boolean | null
  | DecodedValue[]
  | Map<string, DecodedValue>;

const TWO_32 = 0x1_0000_0000n;
const TWO_64 = 0x1_0000_0000_0000_0000n;
const MAX_DEPTH = 16;

const encoder = new Encoder({ useRecords: false, variableMapSize: true, tagUint8Array: false });
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The one encoding of `value`. Throws BAD_ARGUMENT for values outside the data model. */
export function encodeCanonical(value: EncodableValue): Buffer {
  return encoder.encode(normalize(value, 0)) as Buffer;
}

function normalize(value: EncodableValue, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `CBOR values nest at most ${MAX_DEPTH} deep`);
  switch (typeof value) {
    case 'number':
      if (!Number.isSafeInteger(value)) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `not an integer CBOR can hold exactly: ${value}`);
      return normalizeInteger(BigInt(value));
    case 'bigint':
      // -2^64 fits CBOR's negative integers, but cbor-x writes it as a bignum tag: it is left out on both sides.
      if (value >= TWO_64 || value <= -TWO_64) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `integer out of the range (-2^64, 2^64): ${value}`);
      return normalizeInteger(value);
    case 'string':
    case 'boolean':
      return value;
    default:
      break;
  }
  if (value === null || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map((v: EncodableValue) => normalize(v, depth + 1));
  const entries = value instanceof Map ? [...(value as ReadonlyMap<string, EncodableValue>)] : Object.entries(value as { readonly [key: string]: EncodableValue });
  // fromEntries defines own properties, so even a key named __proto__ stays a key.
  return Object.fromEntries(entries.map(([k, v]) => [k, normalize(v, depth + 1)]));
}

/** cbor-x writes the shortest form for numbers in ±2^32 and for bigints beyond. */
function normalizeInteger(v: bigint): number | bigint {
  return v < TWO_32 && v >= -TWO_32 ? Number(v) : v;
}

/**
 * Reads one canonical CBOR value that spans all of `bytes`. Any other
 * input throws a BazilError with `code` (CORRUPT_EVENT unless told).
 */
export function decodeCanonical(bytes: Uint8Array, code: ErrorCode = ErrorCodes.CORRUPT_EVENT): DecodedValue {
  const reader = new Reader(bytes, code);
  const value = reader.value(0);
  if (reader.at !== bytes.length) reader.fail(`${bytes.length - reader.at} bytes after the value`);
  return value;
}

class Reader {
  at = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array, private readonly code: ErrorCode) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(why: string): never {
    throw new BazilError(this.code, `malformed CBOR at offset ${this.at}: ${why}`, { offset: this.at });
  }

  private need(n: number): void {
    if (n > this.bytes.length - this.at) this.fail(`needs ${n} bytes, ${this.bytes.length - this.at} remain`);
  }

  /** The head's argument, refusing any form longer than the value needs. */
  private argument(info: number): bigint | number {
    if (info < 24) return info;
    let v: number | bigint;
    let min: number | bigint;
    switch (info) {
      case 24: this.need(1); v = this.view.getUint8(this.at); this.at += 1; min = 24; break;
      case 25: this.need(2); v = this.view.getUint16(this.at); this.at += 2; min = 0x100; break;
      case 26: this.need(4); v = this.view.getUint32(this.at); this.at += 4; min = 0x1_0000; break;
      case 27: this.need(8); v = this.view.getBigUint64(this.at); this.at += 8; min = TWO_32; break;
      case 31: this.fail('indefinite lengths are not allowed');
      default: this.fail(`reserved additional information ${info}`);
    }
    if (v < min) this.fail('integer or length not in its shortest form');
    return v;
  }

  /** A length, which must fit in what remains (each item takes at least `unit` bytes). */
  private length(info: number, unit: number): number {
    const n = this.argument(info);
    const remain = this.bytes.length - this.at;
    if (typeof n === 'bigint' || n > remain / unit) this.fail(`length ${n} exceeds the ${remain} bytes that remain`);
    return n;
  }

  value(depth: number): DecodedValue {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH}`);
    this.need(1);
    const head = this.bytes[this.at++];
    const major = head >> 5;
    const info = head & 31;
    switch (major) {
      case 0:
        return this.argument(info);
      case 1: {
        const n = this.argument(info);
        if (n === TWO_64 - 1n) this.fail('-2^64 is outside the integers this format writes');
        return typeof n === 'bigint' ? -1n - n : -1 - n;
      }
      case 2: {
        const n = this.length(info, 1);
        const b = Buffer.from(this.bytes.subarray(this.at, this.at + n));
        this.at += n;
        return b;
      }
      case 3: {
        const n = this.length(info, 1);
        const start = this.at;
        this.at += n;
        try {
          return utf8.decode(this.bytes.subarray(start, start + n));
        } catch {
          this.at = start;
          return this.fail('text is not valid UTF-8');
        }
      }
      case 4: {
        const n = this.length(info, 1);
        const out: DecodedValue[] = [];
        for (let i = 0; i < n; i++) out.push(this.value(depth + 1));
        return out;
      }
      case 5: {
        const n = this.length(info, 2);
        const out = new Map<string, DecodedValue>();
        for (let i = 0; i < n; i++) {
          const keyAt = this.at;
          const key = this.value(depth + 1);
          if (typeof key !== 'string') {
            this.at = keyAt;
            this.fail('map keys must be text');
          }
          if (out.has(key)) {
            this.at = keyAt;
            this.fail(`duplicate map key '${key}'`);
          }
          out.set(key, this.value(depth + 1));
        }
        return out;
      }
      case 6:
        this.at--;
        return this.fail('tags are not allowed');
      default:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        this.at--;
        return this.fail('floats and simple values other than false, true and null are not allowed');
    }
  }
}
