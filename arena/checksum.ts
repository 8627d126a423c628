// Record checksums and digests.
//
// Every record frame ends with XXH3-64 of the frame's earlier bytes: cheap
// enough (MEASURED.md: ~9.5 GB/s) to check on every read, so a torn or
// flipped record is never handed out. XXH3 is not collision resistant, so a
// sealed arena also keeps a SHA-256 digest of each whole frame; those digests
// feed the arena's identity and let an arena from an untrusted peer be
// verified record by record.

import type { IHasher } from 'hash-wasm';
import { loadNative } from './native.js';

// The native addon computes the same XXH3-64 about 4x faster per record;
// hash-wasm is the portable reference and the fallback. The choice is made
// once, at load: a process does not switch implementations midway.
const native = loadNative();
// hash-wasm is a 280 KB module plus a wasm instance, paid again by every
// thread that loads this file (the CLI's main thread and up to three
// workers per command): with the addon present it is loaded only on demand.
let portable: IHasher | undefined = native === null ? await createPortable() : undefined;

async function createPortable(): Promise<IHasher> {
  const { createXXHash3 } = await import('hash-wasm');
  return createXXHash3();
}

/** Loads the hash-wasm implementation where the addon made it unnecessary (tests comparing the two). */
export async function loadPortableChecksum(): Promise<void> {
  portable ??= await createPortable();
}

function portableHasher(): IHasher {
  if (portable === undefined) throw new Error('the portable XXH3 is not loaded: await loadPortableChecksum() first');
  return portable;
}

export const CHECKSUM_LENGTH = 8;
export const DIGEST_LENGTH = 32;

/** XXH3-64 of `buf[start, end)` in canonical (big-endian) byte order, written to `out[outOffset]`. */
export function checksumInto(buf: Uint8Array, start: number, end: number, out: Uint8Array, outOffset: number): void {
  if (native !== null) {
    native.xxh3Into(buf, start, end, out, outOffset);
    return;
  }
  portableChecksumInto(buf, start, end, out, outOffset);
}

/** The hash-wasm implementation, kept callable so tests can prove both agree. */
export function portableChecksumInto(buf: Uint8Array, start: number, end: number, out: Uint8Array, outOffset: number): void {
  const xxh3 = portableHasher();
  xxh3.init();
  xxh3.update(buf.subarray(start, end));
  out.set(xxh3.digest('binary'), outOffset);
}

/**
 * Fills the checksums of the record frames laid back to back in
 * `buf[start, end)` (each frame: len u32 LE, type, 32-byte key, payload,
 * then the 8 checksum bytes to fill).
 */
export function checksumFrames(buf: Uint8Array, start: number, end: number): void {
  if (native !== null) {
    native.xxh3Frames(buf, start, end);
    return;
  }
  for (let at = start; at < end;) {
    const len = (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
    const payloadEnd = at + 37 + len;
    if (payloadEnd + CHECKSUM_LENGTH > end) throw new RangeError('a frame runs past the end of the range');
    portableChecksumInto(buf, at, payloadEnd, buf, payloadEnd);
    at = payloadEnd + CHECKSUM_LENGTH;
  }
}

/** True when the 8 bytes at `buf[at]` equal XXH3-64 of `buf[start, end)`. */
export function checksumMatches(buf: Uint8Array, start: number, end: number, at: number): boolean {
  if (native !== null) return native.xxh3Matches(buf, start, end, at);
  const xxh3 = portableHasher();
  xxh3.init();
  xxh3.update(buf.subarray(start, end));
  const d = xxh3.digest('binary');
  return (
    d[0] === buf[at] && d[1] === buf[at + 1] && d[2] === buf[at + 2] && d[3] === buf[at + 3] &&
    d[4] === buf[at + 4] && d[5] === buf[at + 5] && d[6] === buf[at + 6] && d[7] === buf[at + 7]
  );
}
