// Worker thread body of the export pool (export-pool.ts): takes batches,
// each a shared slab holding segments of one or more files' sealed chunks
// (or room for them, which it reads from the arena files first, checking
// each record's checksum); decrypts each chunk where it lies (in place
// with the ingest addon, open-in-place.ts), checking its tag and length;
// writes the plaintext with pwritev at the file's offset (holes are
// skipped, and the final size set with ftruncate, so they stay holes); and
// on a file's last segment sets its owner, mode and times through the
// descriptor and closes it; then answers
// once for the batch. Everything here is a plain system call on this
// thread: no thread-pool round trips. The main thread opened the file; from
// its first segment on, the descriptor is this thread's to close.

import { closeSync, fchmodSync, fchownSync, ftruncateSync, futimesSync, readSync, writevSync } from 'node:fs';
import { checksumMatches } from '../../arena/checksum.js';
import { FRAME_HEAD_LENGTH, FRAME_OVERHEAD, readPayloadLength } from '../../arena/format.js';
import { parentPort, workerData } from 'node:worker_threads';
import { BazilError, ErrorCodes, ioError, isBazilError } from '../../errors/index.js';
import { OBJECT_ID_LENGTH, OBJECT_KEY_LENGTH } from '../cas/convergent.js';
import { openObjectInPlace } from '../cas/open-in-place.js';
import { ITEM_FIELDS, type ErrorMessage, type ExportReply, type ExportRequest, type FileClose, type Segment } from './export-protocol.js';

/** Plaintext gathered before a write: large writes, few system calls. */
const WRITE_BYTES = 1024 * 1024;

interface OpenFile {
  fd: number;
  path: string;
  failed: boolean;
  /** Where the next part starts (past any holes), and where the bytes written so far end. */
  position: number;
  written: number;
}

const slabs = (workerData as { slabs: SharedArrayBuffer[] }).slabs.map((b) => Buffer.from(b));
const files = new Map<number, OpenFile>();
const port = parentPort!;

port.on('message', (req: ExportRequest) => {
  if ('closeAll' in req) {
    for (const file of [...files.keys()]) {
      try {
        end(file);
      } catch {
        // Files whose writers gave up: their close errors add nothing.
      }
    }
    port.postMessage({ job: req.job, errors: [] } satisfies ExportReply);
    return;
  }
  const errors: ExportReply['errors'] = [];
  for (const seg of req.segments) {
    if (seg.open !== null) files.set(seg.file, { fd: seg.open.fd, path: seg.open.path, failed: false, position: 0, written: 0 });
    if (seg.drop) {
      try {
        end(seg.file);
      } catch {
        // The writer already failed; a close error adds nothing to its error.
      }
      continue;
    }
    let failed = false;
    try {
      part(req, seg);
    } catch (err) {
      failed = true;
      errors.push({ file: seg.file, error: toMessage(err) });
      // Later segments of the file are skipped.
      const f = files.get(seg.file);
      if (f !== undefined) f.failed = true;
    }
    if (seg.close !== null) {
      try {
        end(seg.file);
      } catch (err) {
        if (!failed) errors.push({ file: seg.file, error: toMessage(err) });
      }
    }
  }
  port.postMessage({ job: req.job, errors } satisfies ExportReply);
});

function part(req: Exclude<ExportRequest, { closeAll: true }>, seg: Segment): void {
  const f = files.get(seg.file);
  if (f === undefined) throw new BazilError(ErrorCodes.INTERNAL, 'an export part for a file that is not open', { file: seg.file });
  // An earlier part failed and said so; the rest of the file is not written.
  if (f.failed) return;
  const input = slabs[req.slab]!;
  const { items, keys, ids } = req;
  let position = f.position;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = (): void => {
    if (pendingBytes === 0) return;
    write(f, pending, pendingBytes, position);
    position += pendingBytes;
    f.written = position;
    pending = [];
    pendingBytes = 0;
  };
  for (let i = seg.from * ITEM_FIELDS; i < seg.to * ITEM_FIELDS; i += ITEM_FIELDS) {
    const length = items[i]!;
    if (length < 0) {
      flush();
      position += -length;
      continue;
    }
    const sealedLength = items[i + 1]!;
    const take = items[i + 2]!;
    const at = items[i + 3]!;
    const d = items[i + 4]!;
    const arenaFd = items[i + 5]!;
    if (arenaFd >= 0) readRecord(req, input, arenaFd, items[i + 6]!, at - FRAME_HEAD_LENGTH, sealedLength);
    const id = ids.subarray(d * OBJECT_ID_LENGTH, (d + 1) * OBJECT_ID_LENGTH);
    const key = keys.subarray(d * OBJECT_KEY_LENGTH, (d + 1) * OBJECT_KEY_LENGTH);
    let plain: Buffer;
    try {
      // In place where the addon allows: the plaintext is then a view of the slab, written below before the slab goes back.
      plain = openObjectInPlace(input, at, at + sealedLength, key);
    } catch (err) {
      if (isBazilError(err) && err.data['id'] === undefined) err.data['id'] = Buffer.from(id).toString('hex');
      throw err;
    }
    if (plain.length !== length) {
      const hex = Buffer.from(id).toString('hex');
      throw new BazilError(ErrorCodes.CORRUPT_MANIFEST, `chunk ${hex} holds ${plain.length} bytes, not the ${length} its manifest claims`, { id: hex });
    }
    pending.push(take === length ? plain : plain.subarray(0, take));
    pendingBytes += take;
    if (pendingBytes >= WRITE_BYTES) flush();
  }
  flush();
  f.position = position;
  if (seg.close !== null) finish(f, seg.close);
}

/**
 * Reads a chunk's record frame (`sealedLength` bytes of payload) from the
 * arena file `fd` at `position` into `slab` at `at`, and checks it as the
 * arena does on a read (ArenaSet.readFrameInto): its length and checksum,
 * BAZIL_CORRUPT_RECORD otherwise. The GCM tag is checked when it is opened.
 */
function readRecord(req: Exclude<ExportRequest, { closeAll: true }>, slab: Buffer, fd: number, position: number, at: number, sealedLength: number): void {
  const length = sealedLength + FRAME_OVERHEAD;
  // Only messages name the file.
  const pathOf = (): string => req.arenaPaths.find(([d]) => d === fd)?.[1] ?? `arena descriptor ${fd}`;
  let done = 0;
  try {
    while (done < length) {
      const n = readSync(fd, slab, at + done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
  } catch (err) {
    throw ioError('read', pathOf(), err);
  }
  if (done !== length) {
    const path = pathOf();
    throw new BazilError(ErrorCodes.CORRUPT_RECORD, `${path}: short read at ${position}`, { path, offset: position });
  }
  const payloadEnd = at + FRAME_HEAD_LENGTH + sealedLength;
  if (readPayloadLength(slab, at) !== sealedLength || !checksumMatches(slab, at, payloadEnd, payloadEnd)) {
    const path = pathOf();
    throw new BazilError(ErrorCodes.CORRUPT_RECORD, `${path}: record at offset ${position} fails its checksum`, { path, offset: position });
  }
}

function write(f: OpenFile, parts: Buffer[], bytes: number, position: number): void {
  try {
    for (let done = 0; done < bytes;) {
      done += writevSync(f.fd, done === 0 ? parts : remainder(parts, done), position + done);
    }
  } catch (err) {
    throw ioError('write', f.path, err);
  }
}

function finish(f: OpenFile, close: FileClose): void {
  const op = (name: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      throw ioError(name, f.path, err);
    }
  };
  // Holes at the end, and a size past the manifest's end (a truncate that grew the file), are zeros.
  if (f.written < close.size) op('truncate', () => ftruncateSync(f.fd, close.size));
  const attrs = close.attrs;
  if (attrs === null) return;
  if (attrs.owned !== true) {
    try {
      fchownSync(f.fd, attrs.uid, attrs.gid);
    } catch (err) {
      // Not root: the files stay the exporter's, as with cp -a.
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw ioError('chown', f.path, err);
    }
  }
  // chmod after chown, which clears setuid and setgid.
  if (attrs.createMode !== true) op('chmod', () => fchmodSync(f.fd, attrs.mode));
  op('utimes', () => futimesSync(f.fd, attrs.atime, attrs.mtime));
}

function end(file: number): void {
  const f = files.get(file);
  files.delete(file);
  if (f === undefined) return;
  try {
    closeSync(f.fd);
  } catch (err) {
    throw ioError('close', f.path, err);
  }
}

/** What is left of `parts` after its first `skip` bytes. */
function remainder(parts: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    out.push(skip > 0 ? p.subarray(skip) : p);
    skip = 0;
  }
  return out;
}

function toMessage(err: unknown): ErrorMessage {
  const e = isBazilError(err) ? err : new BazilError(ErrorCodes.INTERNAL, err instanceof Error ? err.message : String(err), {}, err);
  const cause = e.cause instanceof Error ? { code: (e.cause as NodeJS.ErrnoException).code, message: e.cause.message } : null;
  return { code: e.code, message: e.message, data: e.data, cause };
}
