// Copies out of shared memory at memcpy speed. V8 copies into or out of a
// SharedArrayBuffer with a relaxed-atomic loop, several times slower than
// memcpy; import appends every new chunk from the seal workers' shared
// output slabs, so that copy was a visible share of its main thread. The
// ingest addon (native/ingest.c) has a plain memmove; without it (not
// built, or BAZIL_NO_NATIVE=1) TypedArray.set does the copy.

import { createRequire } from 'node:module';
import { findAddon } from './native.js';

type CopyInto = (dst: Uint8Array, at: number, src: Uint8Array, start: number, end: number) => void;

// undefined until the first call; null once no usable addon was found.
let cached: CopyInto | null | undefined;

function load(): CopyInto | null {
  const path = findAddon('bazil_ingest.node');
  if (path === null) return null;
  try {
    const addon = createRequire(import.meta.url)(path) as { copyInto?: unknown };
    return typeof addon.copyInto === 'function' ? (addon.copyInto as CopyInto) : null;
  } catch {
    // Only speed is lost: TypedArray.set copies the same bytes.
    return null;
  }
}

/** out[at, ...) = src: with memmove when src is shared memory and the addon is there. */
export function copyBytes(out: Uint8Array, at: number, src: Uint8Array): void {
  if (src.buffer instanceof SharedArrayBuffer && src.length >= 4096) {
    if (cached === undefined) cached = process.env['BAZIL_NO_NATIVE'] === '1' ? null : load();
    if (cached !== null) {
      cached(out, at, src, 0, src.length);
      return;
    }
  }
  out.set(src, at);
}
