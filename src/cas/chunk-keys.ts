// A chunk's key, by the volume's content format (docs/crypto.md, "Content
// formats"). The key is a pseudorandom function of the plaintext under the
// volume's convergence secret, so equal content in a volume gets one key,
// one object and one id:
//
//   format 1  HMAC-SHA256(secret, plaintext)    volumes created before format 2
//   format 2  BLAKE3 keyed with the secret      new volumes
//
// Both are PRFs with 32-byte outputs; format 2 is the faster on these
// machines (~3 GB/s against ~1.4 GB/s here with SHA-NI: docs/ingest.md,
// "Round 8"), and import takes a key over every byte it reads. A volume
// keeps its format for life: a change would only cost dedup against what is
// stored, but nothing gains from it. Objects are sealed, named (SHA-256 of
// the sealed bytes) and opened the same in both formats.
//
// BLAKE3 runs in the ingest addon where it was built with BLAKE3's C code
// (binding.gyp, scripts/blake3-sources.mjs), else through hash-wasm; HMAC
// through the addon or node:crypto. Same bytes either way (tested).

import { createHmac } from 'node:crypto';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { ContentFormat } from './content-format.js';
import { loadIngestNative } from './ingest-native.js';

const KEY_LENGTH = 32;

export interface ChunkKeyer {
  readonly format: ContentFormat;
  /** dst[at, at + 32) = the key of the chunk src[start, end). */
  keyInto(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void;
}

function checkSecret(secret: Uint8Array): void {
  if (!(secret instanceof Uint8Array) || secret.length !== KEY_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `a convergence secret must be ${KEY_LENGTH} bytes`);
  }
}

/** Format 1's keyer: synchronous to make, whatever is built. */
export function hmacChunkKeyer(secret: Uint8Array): ChunkKeyer {
  checkSecret(secret);
  const key = Buffer.from(secret);
  const native = loadIngestNative();
  if (native !== null) {
    return { format: 1, keyInto: (src, start, end, dst, at) => native.chunkKeyInto(key, src, start, end, dst, at) };
  }
  return {
    format: 1,
    keyInto: (src, start, end, dst, at) => {
      const digest = createHmac('sha256', key).update(src.subarray(start, end)).digest();
      dst.set(digest, at);
    },
  };
}

/** Whether format 2's keys come from the addon (BLAKE3's C code), for tests and benchmarks. */
export function blake3Native(): boolean {
  return typeof loadIngestNative()?.blake3KeyedInto === 'function';
}

/** The keyer of `format` under the convergence secret `secret`. */
export async function chunkKeyer(format: ContentFormat, secret: Uint8Array): Promise<ChunkKeyer> {
  checkSecret(secret);
  if (format === 1) return hmacChunkKeyer(secret);
  if (format !== 2) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `unknown content format ${String(format)}`, { format });
  const key = Buffer.from(secret);
  const native = loadIngestNative();
  const keyedInto = native?.blake3KeyedInto;
  if (native !== null && keyedInto !== undefined) {
    return { format: 2, keyInto: (src, start, end, dst, at) => keyedInto.call(native, key, src, start, end, dst, at) };
  }
  // Loaded only here: hash-wasm's module (every algorithm's wasm inline) costs each thread that loads it.
  const { createBLAKE3 } = await import('hash-wasm');
  const hasher = await createBLAKE3(256, key);
  return {
    format: 2,
    keyInto: (src, start, end, dst, at) => {
      hasher.init();
      hasher.update(src.subarray(start, end));
      dst.set(hasher.digest('binary'), at);
    },
  };
}

/** The key of `plaintext` as a new buffer. */
export function chunkKeyOf(keyer: ChunkKeyer, plaintext: Uint8Array): Buffer {
  const key = Buffer.allocUnsafe(KEY_LENGTH);
  keyer.keyInto(plaintext, 0, plaintext.length, key, 0);
  return key;
}
