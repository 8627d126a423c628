// One worker thread that computes seal sections (the perfect hash, slot and
// fingerprint tables, and the digests of records an earlier process
// appended) off the main thread: on two cores, sealing an arena of many
// small records no longer stalls appends. The worker reads any records it
// must digest from the file itself, so nothing is copied between threads
// but the tables and the result.

import { Worker } from 'node:worker_threads';
import { BazilError, ErrorCodes } from '../errors/index.js';
import type { KnownDigests, SealSection } from './seal.js';

export interface SealRequest {
  id: number;
  path: string;
  offsets: Uint32Array;
  dataEnd: number;
  header: Uint8Array;
  known: KnownDigests;
}

export type SealReply =
  | { id: number; ok: true; section: Uint8Array; identity: Uint8Array }
  | { id: number; ok: false; error: { code?: string; message: string; data?: Record<string, unknown> } };

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, { resolve: (s: SealSection) => void; reject: (e: unknown) => void }>();

function failAll(err: unknown): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  worker = null;
}

function getWorker(): Worker {
  if (worker !== null) return worker;
  const w = new Worker(new URL('./seal-worker.js', import.meta.url));
  w.on('message', (reply: SealReply) => {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    // An idle worker must not keep the process alive.
    if (pending.size === 0) w.unref();
    if (reply.ok) {
      p.resolve({ section: reply.section, identity: Buffer.from(reply.identity) });
    } else {
      const e = reply.error;
      const code = Object.values(ErrorCodes).find((c) => c === e.code) ?? ErrorCodes.IO;
      p.reject(new BazilError(code, e.message, (e.data ?? {}) as Record<string, string | number | boolean | null>));
    }
  });
  w.on('error', (err) => failAll(new BazilError(ErrorCodes.IO, `the sealing worker failed: ${err.message}`, {}, err)));
  w.on('exit', (code) => {
    if (pending.size > 0) failAll(new BazilError(ErrorCodes.IO, `the sealing worker exited with code ${code}`));
    worker = null;
  });
  worker = w;
  return w;
}

export function sealInWorker(path: string, offsets: Uint32Array, dataEnd: number, header: Uint8Array, known: KnownDigests): Promise<SealSection> {
  const w = getWorker();
  const id = nextId++;
  return new Promise<SealSection>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    const request: SealRequest = { id, path, offsets, dataEnd, header, known };
    w.postMessage(request);
  });
}
