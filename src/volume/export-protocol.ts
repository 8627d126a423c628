// The messages between the export pool (export-pool.ts, main thread) and
// its worker (export-worker.ts): a module of its own, so that neither
// thread loads the other's code to share them.

import type { ErrorCode, ErrorData } from '../../errors/index.js';

/**
 * What the last part of a file sets once its content is written; `attrs`
 * null leaves them to the caller. `attrs.owned`: the new file already has
 * owner `uid` and group `gid` (the caller knows whom the files it creates
 * belong to), so no fchown is made. `attrs.createMode`: the file is created
 * with `mode`, which the caller knows the umask leaves as it is (no
 * set-ID or sticky bits), so no fchmod is made.
 */
export interface FileClose {
  size: number;
  attrs: { mode: number; uid: number; gid: number; atime: number | string; mtime: number | string; owned?: boolean; createMode?: boolean } | null;
}

/** Numbers per extent in a batch's `items`: see ExportRequest. */
export const ITEM_FIELDS = 7;

/** One file's share of a batch: its extents `items[from, to)` (counted in extents). */
export interface Segment {
  file: number;
  /** On a file's first segment: the new file, opened by the main thread (export-pool.ts says why), and its path for messages. */
  open: { fd: number; path: string } | null;
  from: number;
  to: number;
  /** On a file's last segment: what to set before closing it. */
  close: FileClose | null;
  /** The writer gave up on this file: close it, write nothing more. */
  drop: boolean;
}

export type ExportRequest =
  | {
    job: number;
    slab: number;
    /**
     * Per extent, ITEM_FIELDS numbers: plaintext length (negative: a hole
     * of that length), sealed length, bytes of the plaintext written, where
     * the sealed bytes start in the slab, the chunk's index in `keys` and
     * `ids` (-1 for a hole), and where the worker is to read the chunk's
     * record from: a descriptor of its arena file (-1: the main thread
     * put the sealed bytes in the slab already) and the record frame's
     * offset there. The frame goes to the slab so that its payload lands
     * where the sealed bytes are said to start.
     */
    items: Float64Array;
    /** The arena files behind the descriptors `items` names, for messages. */
    arenaPaths: Array<[fd: number, path: string]>;
    keys: Uint8Array;
    ids: Uint8Array;
    /** In order: several files' segments share a slab and a reply. */
    segments: Segment[];
  }
  /** The pool is closing: close every file still open (their writers gave up), then reply. */
  | { job: number; closeAll: true };

/** The batch's reply: the files that failed in it, each with its first error here. */
export interface ExportReply {
  job: number;
  errors: Array<{ file: number; error: ErrorMessage }>;
}

/** A BazilError as it crosses from the worker. */
export interface ErrorMessage {
  code: ErrorCode;
  message: string;
  data: ErrorData;
  cause: { code: string | undefined; message: string } | null;
}

