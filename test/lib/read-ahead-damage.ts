// What the read-ahead tests share: a paced read of a handle, and the walk
// of a sequential reader up to a damaged chunk, which the read-ahead
// worker must meet (and refuse) first, the reader then failing with `code`
// each time it asks, and reading on past it.

import assert from 'node:assert/strict';
import type { FileHandle } from '../../src/volume/file-handle.js';
import { readAheadCounts } from '../../src/volume/read-ahead.js';

/** A read of `length` bytes at `offset`, after a tick's pause (so read-ahead runs as it would between a reader's requests). */
export async function readAt(h: FileHandle, offset: number, length: number): Promise<Buffer> {
  await new Promise((resolve) => setTimeout(resolve, 1));
  const out = Buffer.alloc(length, 0xee);
  const n = await h.readInto(out, offset);
  return out.subarray(0, n);
}

/** Reads `data` (the file's bytes) in `request`-sized steps up to the damaged chunk at `damagedAt`, then checks the failure and the bytes after it. */
export async function readPastDamage(h: FileHandle, data: Buffer, damagedAt: number, request: number, code: string): Promise<void> {
  const before = readAheadCounts();
  let at = 0;
  for (; at + request <= damagedAt; at += request) {
    assert.ok((await readAt(h, at, request)).equals(data.subarray(at, at + request)), `bytes at ${at}`);
    // Not vacuous: the worker meets the damaged chunk (read ahead) before the reader does.
    if (at + 2 * request > damagedAt) {
      for (let waited = 0; readAheadCounts().refused === before.refused && waited < 10_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    }
  }
  assert.equal(readAheadCounts().refused - before.refused, 1, 'the worker refused the damaged chunk');
  await assert.rejects(readAt(h, at, request), (err: unknown) => (err as { code?: string }).code === code);
  // Again, and past it the file reads on.
  await assert.rejects(readAt(h, at, request), (err: unknown) => (err as { code?: string }).code === code);
  const after = Math.ceil((damagedAt + 256 * 1024 + 1) / request) * request;
  assert.ok((await readAt(h, after, request)).equals(data.subarray(after, after + request)), `bytes at ${after}`);
}
