// The sealing worker's thread (see seal-pool.ts): reads an active arena's
// records from disk and computes its seal section.

import { openSync, readSync, closeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { BazilError } from '../errors/index.js';
import { HEADER_LENGTH } from './format.js';
import { computeSealSection } from './seal.js';
import type { SealReply, SealRequest } from './seal-pool.js';

function readRecords(path: string, dataEnd: number): Buffer {
  const data = Buffer.allocUnsafe(dataEnd - HEADER_LENGTH);
  const fd = openSync(path, 'r');
  try {
    let done = 0;
    while (done < data.length) {
      const n = readSync(fd, data, done, data.length - done, HEADER_LENGTH + done);
      if (n === 0) throw new Error(`${path}: the file ends at ${HEADER_LENGTH + done}, before its records (${dataEnd})`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return data;
}

parentPort!.on('message', (req: SealRequest) => {
  let reply: SealReply;
  try {
    const { section, identity } = computeSealSection(readRecords(req.path, req.dataEnd), HEADER_LENGTH, req.offsets, req.dataEnd, req.header, req.path);
    reply = { id: req.id, ok: true, section, identity };
  } catch (err) {
    const e = err instanceof BazilError ? { code: err.code, message: err.message, data: err.data } : { message: err instanceof Error ? err.message : String(err) };
    reply = { id: req.id, ok: false, error: e };
  }
  parentPort!.postMessage(reply);
});
