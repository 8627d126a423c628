// Loader for the ingest addon (native/ingest.c): the chunker's boundary
// search, copies into shared memory, the sealing of a chunk and its opening, in C. Optional like the arena's
// addon: without it (not built, an older build, or BAZIL_NO_NATIVE=1) the
// JavaScript versions run, with the same results.

import { createRequire } from 'node:module';
import { findAddon } from '../../arena/native.js';
import type { ChunkKeyer } from './chunk-keys.js';
import { sealWithKey, type SealedObject } from './convergent.js';

export interface IngestBindings {
  /**
   * Chunker.scan in C: the end of the current chunk in data[from, end),
   * which holds `length` bytes before `from`; state is [minSize, avgSize,
   * maxSize, maskS, maskL, hash]. Returns the index past the chunk's last
   * byte, or -1 with the rolling hash saved in state[5].
   */
  gearScan(gear: Int32Array, data: Uint8Array, from: number, end: number, length: number, state: Int32Array): number;
  /** memmove of src[start, end) to dst[at, ...): no relaxed-atomic copy when either is shared memory. RangeError past either end. */
  copyInto(dst: Uint8Array, at: number, src: Uint8Array, start: number, end: number): void;
  /** dst[at, at + 32) = HMAC-SHA256(secret, src[start, end)): a chunk's key in content format 1 (chunk-keys.ts). */
  chunkKeyInto(secret: Uint8Array, src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void;
  /**
   * out[outAt, ...) = AES-256-GCM(key, zero nonce, src[start, end)) ‖ tag
   * (16 bytes), and id[idAt, idAt + 32) = SHA-256 of those bytes: a chunk
   * sealed as convergent.ts sealObject does it.
   */
  sealInto(key: Uint8Array, src: Uint8Array, start: number, end: number, out: Uint8Array, outAt: number, id: Uint8Array, idAt: number): void;
  /**
   * out[outAt, ...) = the plaintext of the sealed chunk src[start, end)
   * (AES-256-GCM ciphertext and its 16-byte tag, convergent.ts), in place
   * when out is src and outAt is start; false when the tag does not verify.
   * Absent from addons built before it (read-worker.ts then decrypts with
   * node:crypto).
   */
  openInto?(key: Uint8Array, src: Uint8Array, start: number, end: number, out: Uint8Array, outAt: number): boolean;
  /**
   * dst[at, at + 32) = BLAKE3 keyed with `secret` (32 bytes) over
   * src[start, end): a chunk's key in content format 2 (chunk-keys.ts).
   * Absent where the addon was built without BLAKE3's sources.
   */
  blake3KeyedInto?(secret: Uint8Array, src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void;
}

// undefined until the first attempt; null once it found no usable addon.
let cached: IngestBindings | null | undefined;

/** The bindings, or null (the addon is missing, fails to load, or BAZIL_NO_NATIVE=1). */
export function loadIngestNative(): IngestBindings | null {
  if (process.env['BAZIL_NO_NATIVE'] === '1') return null;
  if (cached === undefined) cached = load();
  return cached;
}

function load(): IngestBindings | null {
  const path = findAddon('bazil_ingest.node');
  if (path === null) return null;
  try {
    const addon: unknown = createRequire(import.meta.url)(path);
    if (typeof addon !== 'object' || addon === null) return null;
    const a = addon as Record<string, unknown>;
    const all = ['gearScan', 'copyInto', 'chunkKeyInto', 'sealInto'].every((name) => typeof a[name] === 'function');
    return all ? (addon as IngestBindings) : null;
  } catch {
    // An addon that does not load only costs speed: the JavaScript paths run.
    return null;
  }
}

/**
 * Seals `plaintext` as convergent.ts sealObject does, under `keyer`'s key,
 * through the addon where it is loaded: the same object and id (tested),
 * without the Cipheriv and Hash objects node:crypto makes per call, which
 * cost more than the sealing itself for a small file's one chunk.
 */
export function sealObjectQuick(keyer: ChunkKeyer, plaintext: Uint8Array): SealedObject {
  const key = Buffer.allocUnsafe(32);
  keyer.keyInto(plaintext, 0, plaintext.length, key, 0);
  const native = loadIngestNative();
  if (native === null) return sealWithKey(key, plaintext);
  const sealed = Buffer.allocUnsafe(plaintext.length + 16);
  const id = Buffer.allocUnsafe(32);
  native.sealInto(key, plaintext, 0, plaintext.length, sealed, 0, id, 0);
  return { id, key, sealed };
}
