// The sealing worker's thread (see seal-pool.ts): computes an active arena's
// seal section, reading from disk, a window at a time, the records whose
// digests the main thread does not know.

import { openSync, readSync, closeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { BazilError } from '../errors/index.js';
import { HEADER_LENGTH } from './format.js';
import { computeSealSection, computeSealSectionWindowed } from './seal.js';
import type { SealReply, SealRequest } from './seal-pool.js';

// Enough that a window costs one read among many records; small beside the
// 64 MiB arena, which used to be read whole.
const WINDOW_BYTES = 4 * 1024 * 1024;

function sealSection(req: SealRequest): ReturnType<typeof computeSealSectionWindowed> {
  // Every digest known (the common case): nothing to read, the file is not opened.
  if (req.known.recovered === 0) return computeSealSection(new Uint8Array(0), HEADER_LENGTH, req.offsets, req.dataEnd, req.header, req.known, req.path);
  const fd = openSync(req.path, 'r');
  try {
    const read = (buf: Buffer, position: number): void => {
      for (let done = 0; done < buf.length;) {
        const n = readSync(fd, buf, done, buf.length - done, position + done);
        if (n === 0) throw new Error(`${req.path}: the file ends at ${position + done}, before its records (${req.dataEnd})`);
        done += n;
      }
    };
    return computeSealSectionWindowed(read, req.offsets, req.dataEnd, req.header, req.known, req.path, WINDOW_BYTES);
  } finally {
    closeSync(fd);
  }
}

parentPort!.on('message', (req: SealRequest) => {
  let reply: SealReply;
  try {
    const { section, identity } = sealSection(req);
    reply = { id: req.id, ok: true, section, identity };
  } catch (err) {
    const e = err instanceof BazilError ? { code: err.code, message: err.message, data: err.data } : { message: err instanceof Error ? err.message : String(err) };
    reply = { id: req.id, ok: false, error: e };
  }
  parentPort!.postMessage(reply);
});
