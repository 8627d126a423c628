// Splicing an append through the seal workers: the common case of an open
// file's spill or flush (a file written from start to end, or grown at its
// end), with the chunking and sealing of the new bytes done off the calling
// thread (seal-pool.ts) instead of in spliceManifestAsync's slices on it.
//
// An append changes nothing below the old content's end, so the new
// manifest is the old one's chunks kept as references, up to the last one,
// followed by a freshly chunked tail: the last old chunk again when the new
// bytes start right at its end (so appending in steps chunks as one pass
// would, exactly as splice.ts does), then the new bytes, with holes for the
// zeros no write touched. The tail goes through a ContentWriter, whose
// chunker starts at that old chunk boundary just as splice.ts's would, so
// the result is the manifest spliceManifest builds.
//
// Edits below the old end still go through splice.ts (they re-chunk a few
// chunks around each change and then re-synchronise with the old
// boundaries, which needs the chunker's state at every step).

import { setImmediate as nextTurn } from 'node:timers/promises';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { NODE_TYPE, type ContentStore } from './content-store.js';
import { ManifestBuilder, extentsIn, type ExtentSpan } from './manifest.js';
import type { SpliceInput, SpliceResult } from './splice.js';

/** A splice's input, optionally able to read into a buffer it is given (so one buffer serves every piece). */
export interface AppendSpliceInput extends SpliceInput {
  /** Fills `out` with the new content of [start, start + out.length). */
  readonly readInto?: (start: number, out: Buffer) => void;
}

/** Below this many bytes to chunk, the round trip to a worker costs more than chunking here. */
export const APPEND_SPLICE_MIN_BYTES = 1024 * 1024;
/** Bytes handed to the writer between two yields to the event loop, so that other calls are served meanwhile. */
const PIECE = 256 * 1024;

/**
 * The manifest of `input`'s new content, when `input` only appends (every
 * change lies at or past the old content's end) and there are at least
 * `minBytes` to chunk; null otherwise, for spliceManifestAsync to do.
 * New objects are appended unsynced, as with splice.ts.
 */
export async function spliceAppend(store: ContentStore, input: AppendSpliceInput, minBytes = APPEND_SPLICE_MIN_BYTES): Promise<SpliceResult | null> {
  const first = input.changed[0];
  const valid = Math.min(input.baseValid, input.base?.size ?? 0, input.size);
  if (first === undefined || first.start < valid) return null;

  let newBytes = 0;
  let reusedChunks = 0;
  const builder = new ManifestBuilder((encoded) => {
    const r = store.storeObject(NODE_TYPE, encoded);
    newBytes += r.added;
    return r;
  }, store.maxNodeEntries);
  const loadNode = store.loadNode.bind(store);

  // Every old extent but the last is kept; the last is kept too unless it
  // is a chunk that a truncate cut or that the new bytes continue.
  let held: ExtentSpan | null = null;
  const keep = (span: ExtentSpan): void => {
    if (span.extent.kind === 'hole') builder.addHole(span.extent.length);
    else {
      builder.addChunk(span.extent.length, span.extent.id, span.extent.key);
      reusedChunks++;
    }
  };
  let tailStart = valid;
  for (const span of extentsIn(input.base, 0, valid, loadNode)) {
    if (held !== null) keep(held);
    held = span;
  }
  if (held !== null) {
    const { extent, start } = held;
    const cut = start + extent.length > valid;
    if (extent.kind === 'hole' && cut) builder.addHole(valid - start);
    else if (extent.kind === 'chunk' && (cut || first.start === valid)) tailStart = start;
    else keep(held);
  }

  let toChunk = valid - tailStart;
  for (const r of input.changed) toChunk += r.end - r.start;
  if (toChunk < minBytes) return null;

  // One file's stream: spread over the seal workers, or one thread's chunk-and-seal rate bounds the write.
  const writer = store.createWriter({ sync: false, spreadSealing: true });
  const readInto = input.readInto;
  let fed = 0;
  const write = async (start: number, end: number): Promise<void> => {
    for (let at = start; at < end; at += PIECE) {
      const n = Math.min(PIECE, end - at);
      if (readInto !== undefined) {
        // Read straight into the seal pool's slabs: one copy of each byte on this thread, not two.
        const from = at;
        await writer.writeFrom(n, (out, offset) => readInto(from + offset, out));
      } else {
        const data = input.read(at, n);
        if (data.length !== n) throw new BazilError(ErrorCodes.INTERNAL, `splice: read(${at}, ${n}) returned ${data.length} bytes`);
        await writer.write(data);
      }
      fed += n;
      await nextTurn();
    }
  };
  let tail;
  try {
    await write(tailStart, valid);
    let at = valid;
    for (const r of input.changed) {
      if (r.start > at) await writer.hole(r.start - at);
      await write(r.start, r.end);
      at = r.end;
    }
    if (input.size > at) await writer.hole(input.size - at);
    tail = await writer.finish();
  } catch (err) {
    writer.abandon();
    throw err;
  }
  newBytes += tail.newBytes;
  const tailLength = input.size - tailStart;
  if (tail.size !== tailLength) throw new BazilError(ErrorCodes.INTERNAL, `splice: the appended tail holds ${tail.size} bytes, not ${tailLength}`);
  if (tail.manifestRoot === null) builder.addHole(tailLength);
  for (const { extent } of extentsIn(tail.manifestRoot, 0, tailLength, loadNode)) {
    if (extent.kind === 'hole') builder.addHole(extent.length);
    else builder.addChunk(extent.length, extent.id, extent.key);
  }
  const manifest = builder.finish();
  if ((manifest?.size ?? 0) !== input.size) {
    throw new BazilError(ErrorCodes.INTERNAL, `splice built ${manifest?.size ?? 0} bytes, not ${input.size}`);
  }
  return { manifest, size: input.size, newBytes, reusedChunks, rechunkedBytes: fed };
}
