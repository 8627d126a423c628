// Reading and damaging arena files the way a failing disk or a hostile store
// would, for the acceptance tests: the record frames of an arena file
// (docs/formats.md, "Record frame"), a flipped byte inside one, and the same
// flip with the frame checksum recomputed (damage the checksum cannot see,
// which only the layers above it can catch).

import { readdir, readFile, writeFile } from 'node:fs/promises';
import { ArenaSet } from '../../arena/arena-set.js';
import { checksumInto } from '../../arena/checksum.js';
import { nodeFileSystem } from '../../arena/node-fs.js';

const HEADER_BYTES = 128;
/** len u32, type u8, key 32 bytes. */
const FRAME_HEAD = 37;
const CHECKSUM_BYTES = 8;

export interface Frame {
  /** File offset of the frame. */
  offset: number;
  type: number;
  key: Buffer;
  /** Payload bytes. */
  length: number;
}

/** The frames of an active arena's bytes, up to the first that is not whole. */
export function framesOf(bytes: Buffer): Frame[] {
  const out: Frame[] = [];
  for (let at = HEADER_BYTES; at + FRAME_HEAD + CHECKSUM_BYTES <= bytes.length;) {
    const length = bytes.readUInt32LE(at);
    const type = bytes[at + 4]!;
    if (type === 0 || at + FRAME_HEAD + length + CHECKSUM_BYTES > bytes.length) break;
    out.push({ offset: at, type, key: Buffer.from(bytes.subarray(at + 5, at + FRAME_HEAD)), length });
    at += FRAME_HEAD + length + CHECKSUM_BYTES;
  }
  return out;
}

/**
 * Flips one bit of the payload byte at `within` (a fraction of the payload)
 * of `frame` in the file at `path`; with `fixChecksum`, rewrites the frame's
 * checksum so the frame itself still looks whole.
 */
export async function flipPayloadByte(path: string, frame: Frame, within: number, fixChecksum: boolean): Promise<number> {
  const bytes = await readFile(path);
  const at = frame.offset + FRAME_HEAD + Math.min(frame.length - 1, Math.floor(frame.length * within));
  bytes[at] = bytes[at]! ^ 0x10;
  if (fixChecksum) {
    const end = frame.offset + FRAME_HEAD + frame.length;
    checksumInto(bytes, frame.offset, end, bytes, end);
  }
  await writeFile(path, bytes);
  return at;
}

/**
 * Seals every active arena of a volume's arenas directory (nothing else
 * holds the home): their records are then read as a sealed arena's are,
 * checked on each read, where an active arena's are checked when it is
 * opened and a damaged one set aside there.
 */
export async function sealAllArenas(arenasDir: string): Promise<void> {
  const writer = Buffer.from((await readdir(arenasDir)).find((n) => n.endsWith('.active'))!.split('.')[1]!, 'hex');
  const set = await ArenaSet.open(arenasDir, { fs: nodeFileSystem, writer });
  try {
    await set.sealNow();
    await set.waitForSeals();
  } finally {
    await set.close();
  }
}
