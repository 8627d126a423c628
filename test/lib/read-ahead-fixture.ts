// What the read-ahead tests share: a home holding one big random file,
// the chunk at an offset of it and damage to that chunk's record, a paced
// read of a handle, and the walk of a sequential reader up to a damaged
// chunk, which the read-ahead worker must meet (and refuse) first, the
// reader then failing with `code` each time it asks, and reading on past it.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeManifest, extentsIn, type ChunkExtent } from '../../src/cas/manifest.js';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import type { FileHandle } from '../../src/volume/file-handle.js';
import { readAheadCounts } from '../../src/volume/read-ahead.js';
import { Volume } from '../../src/volume/volume.js';
import { volumeDir } from './acceptance.js';
import { flipPayloadByte, framesOf } from './arena-frames.js';

/** A home with volume v holding /big (`size` random bytes, so every chunk differs); `fn` gets it closed, to reopen. */
export async function withBigFile(size: number, fn: (homeDir: string, data: Buffer) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-read-ahead-test-'));
  try {
    const homeDir = join(dir, 'home');
    const { home } = await initHome(homeDir);
    await createVolume(home, 'v').finally(() => home.close());
    const data = randomBytes(size);
    const v = await Volume.open(homeDir, 'v');
    try {
      await v.writeFile('/big', data);
    } finally {
      await v.close();
    }
    await fn(homeDir, data);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The chunk holding byte `at` of /big in `v`: its id and where it starts. */
export async function chunkAt(v: Volume, at: number): Promise<{ id: Buffer; start: number }> {
  const m = decodeManifest((await v.stat('/big')).manifest!);
  const e = [...extentsIn(m, at, 1, () => {
    throw new Error('a one-level manifest expected');
  })][0]!;
  assert.equal(e.extent.kind, 'chunk');
  return { id: (e.extent as ChunkExtent).id, start: e.start };
}

/** Volume v's arena directory (asked of the CLI: call it while the volume is closed). */
export function arenasOf(homeDir: string): string {
  return join(volumeDir(homeDir, 'v'), 'arenas');
}

/** Flips a byte of the record of object `id` in the arenas of `arenas` (at `fraction` of its payload; `fixChecksum` recomputes the frame's checksum). */
export async function damageChunk(arenas: string, id: Buffer, fraction: number, fixChecksum: boolean): Promise<void> {
  for (const file of await readdir(arenas)) {
    const frame = framesOf(await readFile(join(arenas, file))).find((f) => f.key.equals(id));
    if (frame === undefined) continue;
    await flipPayloadByte(join(arenas, file), frame, fraction, fixChecksum);
    return;
  }
  assert.fail('the chunk\'s record is in none of the arenas');
}

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
