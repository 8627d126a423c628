// Opening a sealed object where it lies: export reads each chunk's sealed
// bytes into a slab of shared memory, and its worker decrypts them there
// and writes the plaintext from the slab (src/volume/export-worker.ts).
// Through node:crypto every chunk cost a Decipheriv and a fresh plaintext
// buffer, whose malloc, page faults and garbage were a tenth of the
// worker's time (docs/ingest.md, "Round 4: export"). The ingest addon's
// openInto does it with no allocation; without it (not built, an older
// build, BAZIL_NO_NATIVE=1) convergent.ts openObject runs and the
// plaintext is a new buffer. Either way the GCM tag is checked before any
// plaintext is handed out, with the same error.

import { BazilError, ErrorCodes } from '../../errors/index.js';
import { openObject, OBJECT_KEY_LENGTH, TAG_LENGTH } from './convergent.js';
import { loadIngestNative } from './ingest-native.js';

type OpenInto = (key: Uint8Array, src: Uint8Array, start: number, end: number, dst: Uint8Array, dstAt: number) => boolean;

let native: OpenInto | null | undefined;

function nativeOpen(): OpenInto | null {
  if (native === undefined) {
    const addon = loadIngestNative();
    native = typeof addon?.openInto === 'function' ? addon.openInto.bind(addon) : null;
  }
  return native;
}

/** Whether objects are opened in place (the addon has openInto), for tests and benchmarks. */
export function opensInPlace(): boolean {
  return nativeOpen() !== null;
}

/**
 * The plaintext of the sealed object `buf[start, end)`, checked against its
 * GCM tag: with the addon, decrypted in place (the returned view covers
 * `buf[start, end - 16)`, and the ciphertext is gone); without it, a new
 * buffer (`buf` unchanged). BAZIL_CORRUPT_OBJECT when the tag does not
 * verify (any changed byte, a wrong key, a truncated object); after a
 * failed in-place open the range holds garbage.
 */
export function openObjectInPlace(buf: Buffer, start: number, end: number, key: Uint8Array): Buffer {
  const open = nativeOpen();
  if (open === null) return openObject(buf.subarray(start, end), key);
  if (!(key instanceof Uint8Array) || key.length !== OBJECT_KEY_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `an object key must be ${OBJECT_KEY_LENGTH} bytes`);
  }
  if (end - start < TAG_LENGTH) {
    throw new BazilError(ErrorCodes.CORRUPT_OBJECT, 'a sealed object is shorter than its tag', { length: Math.max(0, end - start) });
  }
  if (!open(key, buf, start, end, buf, start)) {
    throw new BazilError(ErrorCodes.CORRUPT_OBJECT, 'object fails authentication: damaged, or not encrypted with this key', { length: end - start });
  }
  return buf.subarray(start, end - TAG_LENGTH);
}
