// The projection's cipher (docs/projection.md, "Encryption"): the local
// LevelDB and the checkpoints hold no name, symlink target or xattr in the
// clear, yet must stay canonical (the same events give the same bytes, so
// fsck and checkpoints can compare dumps) and keep point lookups by name.
//
// Names in keys become a keyed hash: HMAC-SHA256(nameKey, scope ‖ name)
// cut to 16 bytes, where scope is the directory (or inode) id, so the same
// name in two directories does not show as the same bytes. Values are
// sealed with a synthetic IV (the SIV construction, RFC 5297's shape with
// HMAC-SHA256 as the PRF): iv = HMAC(macKey, u32 len(ad) ‖ ad ‖ plaintext)
// cut to 16 bytes, ciphertext = AES-256-CTR(encKey, iv, plaintext), stored
// as iv ‖ ciphertext. It is deterministic by design (a dump must be), costs
// 16 bytes per value, and stays safe when the same key seals many values:
// equal ciphertexts reveal only equal (record key, value) pairs, which the
// record keys already make unique. The associated data is the record's
// stored key, so a value moved to another record does not open.
//
// Cost (docs/mount.md, "Round 3: metadata"): the projection seals or opens
// a record for every point read and every record a scan passes, and
// settling aggregates rescans whole directories, so node:crypto's setup per
// call (a fresh cipher object for each value) dominated. AES-CTR is
// therefore computed as what it is, the XOR with AES of the counter blocks,
// through one long-lived AES-ECB object; and values already opened are
// remembered by their exact stored bytes (OpenCache), name tags by their
// scope and name. The bytes stored do not change.

import { createCipheriv, createHmac, hkdfSync, timingSafeEqual, type Cipher } from 'node:crypto';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { RecentMap } from './recent-map.js';

/** Bytes of a name's keyed hash in a stored key. */
export const NAME_TAG_BYTES = 16;
/** Bytes a sealed value adds to its plaintext: the synthetic IV, which is also its tag. */
export const SEAL_OVERHEAD = 16;

export class ProjectionCipher {
  private readonly nameKey: Buffer;
  private readonly macKey: Buffer;
  /** AES-256 of single blocks under encKey: the CTR keystream (see the top). Never finalised. */
  private readonly blocks: Cipher;
  /** The same key, for values long enough that a CTR cipher object of their own costs less than the loop below. */
  private readonly encKey: Buffer;
  private readonly opened = new OpenCache();
  private readonly tags = new RecentMap<Buffer>(CACHE_ENTRIES);

  /** `projectionKey` is VolumeKeys.projectionKey: 32 bytes derived from the volume secret. */
  constructor(projectionKey: Uint8Array) {
    if (projectionKey.length !== 32) throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'a projection key is 32 bytes');
    const sub = (label: string): Buffer => Buffer.from(hkdfSync('sha256', projectionKey, Buffer.alloc(0), `bazil/v1/projection/${label}`, 32));
    this.nameKey = sub('name');
    this.macKey = sub('mac');
    this.encKey = sub('enc');
    this.blocks = createCipheriv('aes-256-ecb', this.encKey, null);
    this.blocks.setAutoPadding(false);
  }

  /**
   * The name's keyed hash within `scope` (the id of the directory or inode
   * it belongs to). A FUSE create, stat and unlink of one name hash it
   * several times, so recent tags are remembered; the buffer returned is
   * shared: read it, never write into it.
   */
  nameTag(scope: Uint8Array, name: Uint8Array): Buffer {
    const k = cacheKey(scope, name);
    const known = this.tags.get(k);
    if (known !== undefined) return known;
    const tag = createHmac('sha256', this.nameKey).update(scope).update(name).digest().subarray(0, NAME_TAG_BYTES);
    this.tags.set(k, tag);
    return tag;
  }

  seal(ad: Uint8Array, plain: Uint8Array): Buffer {
    const iv = this.syntheticIv(ad, plain);
    const out = Buffer.allocUnsafe(SEAL_OVERHEAD + plain.length);
    iv.copy(out, 0);
    this.ctr(iv, plain, out, SEAL_OVERHEAD);
    return out;
  }

  /** The plaintext of `sealed`; CORRUPT_METADATA when it was not sealed by this key for this record. */
  open(ad: Uint8Array, sealed: Uint8Array): Buffer {
    if (sealed.length < SEAL_OVERHEAD) throw notOurs('a sealed value is shorter than its tag');
    const known = this.opened.get(ad, sealed);
    if (known !== undefined) return known;
    const iv = sealed.subarray(0, SEAL_OVERHEAD);
    const plain = Buffer.allocUnsafe(sealed.length - SEAL_OVERHEAD);
    this.ctr(iv, sealed.subarray(SEAL_OVERHEAD), plain, 0);
    if (!timingSafeEqual(this.syntheticIv(ad, plain), iv)) throw notOurs('a sealed value does not open with this volume\'s key');
    this.opened.set(ad, sealed, plain);
    return plain;
  }

  /** A value only this key gives, stored in the projection so a projection sealed with another key is caught at open. */
  keyCheck(): Buffer {
    return createHmac('sha256', this.macKey).update('bazil projection key check').digest().subarray(0, 16);
  }

  /**
   * AES-256-CTR as OpenSSL does it (the IV is a 128-bit big-endian counter,
   * stepped by one per block, carrying across all 16 bytes): writes
   * input XOR keystream to out at `at`.
   */
  private ctr(iv: Uint8Array, input: Uint8Array, out: Buffer, at: number): void {
    if (input.length > LONG_VALUE_BYTES) {
      // A big file's inode record holds its manifest (100+ KiB): the loops
      // below would step through it byte by byte in JavaScript.
      const c = createCipheriv('aes-256-ctr', this.encKey, iv);
      const head = c.update(input);
      head.copy(out, at);
      c.final().copy(out, at + head.length);
      return;
    }
    const n = Math.ceil(input.length / 16);
    if (n === 0) return;
    const counters = Buffer.allocUnsafe(n * 16);
    counters.set(iv, 0);
    for (let b = 1; b < n; b++) {
      const o = b * 16;
      counters.copy(counters, o, o - 16, o);
      for (let i = o + 15; i >= o; i--) {
        counters[i] = (counters[i]! + 1) & 0xff;
        if (counters[i] !== 0) break;
      }
    }
    const stream = this.blocks.update(counters);
    for (let i = 0; i < input.length; i++) out[at + i] = input[i]! ^ stream[i]!;
  }

  private syntheticIv(ad: Uint8Array, plain: Uint8Array): Buffer {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(ad.length);
    return createHmac('sha256', this.macKey).update(len).update(ad).update(plain).digest().subarray(0, SEAL_OVERHEAD);
  }
}

/** Values longer than this are en/deciphered by a CTR cipher object of their own (same bytes as the block loop). */
const LONG_VALUE_BYTES = 512;

/** Entries a cache keeps per generation (two are kept: up to twice this many). */
const CACHE_ENTRIES = 16384;
/** Values longer than this are opened each time: the cache is for the small records scans pass again and again. */
const OPEN_CACHE_MAX_BYTES = 1024;

/**
 * Plaintexts of values this cipher opened, keyed by their exact stored
 * bytes and record key (opening is a pure function of both), so that a
 * record read again, above all by each settling of a large directory's
 * aggregate, is not decrypted and authenticated again. Callers get a copy
 * (they may write into what open returns).
 */
class OpenCache {
  private readonly plain = new RecentMap<Buffer>(CACHE_ENTRIES);

  get(ad: Uint8Array, sealed: Uint8Array): Buffer | undefined {
    if (sealed.length > OPEN_CACHE_MAX_BYTES) return undefined;
    const plain = this.plain.get(cacheKey(ad, sealed));
    return plain === undefined ? undefined : Buffer.from(plain);
  }

  set(ad: Uint8Array, sealed: Uint8Array, plain: Buffer): void {
    if (sealed.length > OPEN_CACHE_MAX_BYTES) return;
    this.plain.set(cacheKey(ad, sealed), Buffer.from(plain));
  }
}

function cacheKey(ad: Uint8Array, sealed: Uint8Array): string {
  // The length of ad first, so no (ad, sealed) pair reads as another.
  return `${ad.length}:${latin1(ad)}${latin1(sealed)}`;
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

function notOurs(why: string): BazilError {
  return new BazilError(ErrorCodes.CORRUPT_METADATA, `projection: ${why}`);
}
