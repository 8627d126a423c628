// Worker thread body of the seal pool (seal-pool.ts): chunks and seals the
// slabs writers fill (seal-batch.ts).
//
// The convergence secret, the gear table, the chunking parameters and the
// pool's slabs (shared memory) come once, in workerData. A request names a
// file's stream and an input slab holding its next bytes; the worker
// writes the chunks' objects into the output slab of the same number and
// answers with the chunk list, ids and keys, which are small. A request
// may also ask the worker to read the slab's bytes from a local file first
// (SlabRead: import's files), so the writer's thread does not. Nothing large
// crosses threads by message, so ingest allocates almost nothing per slab.
// A shared counter of finished jobs tells the writers how busy it is.

import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { chunkKeyer } from './chunk-keys.js';
import type { ContentFormat } from './content-format.js';
import { Chunker, type ChunkerParams } from './chunker.js';
import { SlabSealer } from './seal-batch.js';

export interface SealWorkerData {
  chunkKey: Uint8Array;
  /** The volume's content format: how chunk keys are taken (chunk-keys.ts). */
  contentFormat: ContentFormat;
  gear: Int32Array;
  chunking: ChunkerParams;
  done: Int32Array;
  inputs: SharedArrayBuffer[];
  outputs: SharedArrayBuffer[];
}

/**
 * Bytes of a local file the worker reads into the input slab, at `at`,
 * before it chunks the slab's first `at` + (bytes read) bytes (see
 * ContentWriter.writeLocalFile). The writer keeps `fd` open until the reply.
 */
export interface SlabRead {
  fd: number;
  at: number;
  position: number;
  length: number;
}

export type SealRequest =
  | { job: number; stream: number; slab: number; length: number; end: boolean; read?: SlabRead }
  /** The stream's writer gave up: forget its unfinished chunk. No reply. */
  | { job: -1; stream: number; drop: true }
  /** Chunk key → id pairs of objects held (SlabSealer.know). No reply. */
  | { job: -1; know: true; keys: Uint8Array; ids: Uint8Array }
  /** Chunks the slab and seals about `share` of it (SlabSealer.cut); the reply's `rest` is left to a sealRanges elsewhere. */
  | { job: number; stream: number; slab: number; length: number; cut: true; share: number }
  /** Seals the chunks at `ranges` of the slab into its output from `at` (SlabSealer.sealRanges); the reply's items are empty. */
  | { job: number; slab: number; length: number; ranges: Int32Array; at: number };

export interface SealReply {
  job: number;
  items: Int32Array;
  ids: ArrayBuffer;
  keys: ArrayBuffer;
  fresh: Uint8Array;
  /** See SlabResult.inputAt. */
  inputAt: Int32Array;
  /** The chunks' objects are the first `outputLength` bytes of the output slab, or of `overflow` when they outgrew it. */
  outputLength: number;
  overflow: ArrayBuffer | null;
  /** A cut's data chunks left to seal, as [offset, length] pairs of the input slab. */
  rest?: Int32Array;
  /** A sealRanges' objects start here in the output slab (and end at outputLength). */
  outputStart?: number;
  /** With a SlabRead: the bytes read (fewer than asked once the file ended: it shrank since its lstat). */
  read?: number;
  /** With a SlabRead that failed: the error (nothing was chunked); the writer gives the file up. */
  readError?: { message: string; code: string | null };
}

// About 4 GiB of distinct content at the average chunk size, in ~10 MiB.
const KNOWN_CHUNKS = 65_536;

const data = workerData as SealWorkerData;
const inputs = data.inputs.map((b) => new Uint8Array(b));
const outputs = data.outputs.map((b) => new Uint8Array(b));
// Top-level await: without the addon, format 2's hash-wasm instance is made asynchronously, before any request is read.
const sealer = new SlabSealer(await chunkKeyer(data.contentFormat, data.chunkKey), () => new Chunker(data.gear, data.chunking), data.chunking.maxSize, KNOWN_CHUNKS);
const port = parentPort!;
/**
 * Streams whose file ended before the size its writer asked for: later
 * reads of them read nothing, so a file that shrinks and grows again
 * while it is read cannot leave a gap in its content.
 */
const ended = new Set<number>();

/** Reads `length` bytes at `position` into `into` at `at`, fewer only at the end of the file. */
function readFully(r: SlabRead, into: Uint8Array): number {
  let got = 0;
  while (got < r.length) {
    const n = readSync(r.fd, into, r.at + got, r.length - got, r.position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

port.on('message', (req: SealRequest) => {
  if ('drop' in req) {
    sealer.drop(req.stream);
    ended.delete(req.stream);
    return;
  }
  if ('know' in req) {
    sealer.know(req.keys, req.ids);
    return;
  }
  if ('ranges' in req) {
    const r = sealer.sealRanges(inputs[req.slab]!.subarray(0, req.length), req.ranges, outputs[req.slab]!, req.at);
    const reply: SealReply = {
      job: req.job, items: new Int32Array(0), ids: r.ids.buffer as ArrayBuffer, keys: r.keys.buffer as ArrayBuffer, fresh: r.fresh, inputAt: r.inputAt,
      outputLength: req.at + r.output.length, overflow: null, outputStart: req.at,
    };
    port.postMessage(reply);
    Atomics.add(data.done, 0, 1);
    return;
  }
  if ('cut' in req) {
    const output = outputs[req.slab]!;
    const r = sealer.cut(req.stream, inputs[req.slab]!.subarray(0, req.length), output, req.share);
    const overflow = r.output.buffer === output.buffer ? null : r.output.buffer.slice(r.output.byteOffset, r.output.byteOffset + r.output.length) as ArrayBuffer;
    const reply: SealReply = {
      job: req.job, items: r.items, ids: r.ids.buffer as ArrayBuffer, keys: r.keys.buffer as ArrayBuffer, fresh: r.fresh, inputAt: r.inputAt,
      outputLength: r.output.length, overflow, rest: r.rest,
    };
    port.postMessage(reply, overflow === null ? [] : [overflow]);
    Atomics.add(data.done, 0, 1);
    return;
  }
  const output = outputs[req.slab]!;
  const input = inputs[req.slab]!;
  let length = req.length;
  let read: number | undefined;
  if (req.read !== undefined) {
    read = 0;
    if (!ended.has(req.stream)) {
      try {
        read = readFully(req.read, input);
      } catch (err) {
        // The writer gives the file up at this reply: its slabs already sent read nothing more.
        sealer.drop(req.stream);
        if (req.end) ended.delete(req.stream);
        else ended.add(req.stream);
        const e = err as NodeJS.ErrnoException;
        const failed: SealReply = {
          job: req.job, items: new Int32Array(0), ids: new ArrayBuffer(0), keys: new ArrayBuffer(0), fresh: new Uint8Array(0), inputAt: new Int32Array(0),
          outputLength: 0, overflow: null, readError: { message: e.message ?? String(err), code: typeof e.code === 'string' ? e.code : null },
        };
        port.postMessage(failed);
        Atomics.add(data.done, 0, 1);
        return;
      }
      if (read < req.read.length) ended.add(req.stream);
    }
    length = req.read.at + read;
  }
  const r = sealer.run(req.stream, input.subarray(0, length), req.end, output);
  if (req.end) ended.delete(req.stream);
  const overflow = r.output.buffer === output.buffer ? null : r.output.buffer.slice(r.output.byteOffset, r.output.byteOffset + r.output.length) as ArrayBuffer;
  const reply: SealReply = {
    job: req.job, items: r.items, ids: r.ids.buffer as ArrayBuffer, keys: r.keys.buffer as ArrayBuffer, fresh: r.fresh, inputAt: r.inputAt,
    outputLength: r.output.length, overflow, read,
  };
  port.postMessage(reply, overflow === null ? [] : [overflow]);
  // Seen by the writer at once, even while its event loop is busy (seal-pool.ts, `unfinished`).
  Atomics.add(data.done, 0, 1);
});
