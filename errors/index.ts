// Bazil's errors: one class, stable codes, structured data and a cause.
//
// This package stands alone (like arena/) so that every layer, including the
// arena engine that may not import from src/, raises the same kind of error.
// Codes are part of the public contract: scripts match on them and `--json`
// prints them, so a code is never renamed or reused once released.

export const ErrorCodes = {
  /** A caller passed a value the API does not accept. */
  BAD_ARGUMENT: 'BAZIL_BAD_ARGUMENT',
  /** The key, arena, volume or file does not exist. */
  NOT_FOUND: 'BAZIL_NOT_FOUND',
  /** The record existed but its space was reclaimed by hole punching. */
  DELETED: 'BAZIL_DELETED',
  /** A record with this key is already stored where keys must be unique. */
  DUPLICATE_KEY: 'BAZIL_DUPLICATE_KEY',
  /** A record's frame or checksum does not match its bytes. */
  CORRUPT_RECORD: 'BAZIL_CORRUPT_RECORD',
  /** An arena's header, footer or index is damaged. */
  CORRUPT_ARENA: 'BAZIL_CORRUPT_ARENA',
  /** An arena's recomputed identity differs from the one claimed. */
  IDENTITY_MISMATCH: 'BAZIL_IDENTITY_MISMATCH',
  /** A format version newer than this build understands. */
  UNSUPPORTED_FORMAT: 'BAZIL_UNSUPPORTED_FORMAT',
  /** A directory holds a different kind of Bazil data than the caller expected. */
  FORMAT_MISMATCH: 'BAZIL_FORMAT_MISMATCH',
  /** A small metadata file (a format record, a config) is unreadable or malformed. */
  CORRUPT_METADATA: 'BAZIL_CORRUPT_METADATA',
  /** Two arenas claim the same sequence numbers of one writer with different contents. */
  CONFLICT: 'BAZIL_CONFLICT',
  /** A record larger than an arena may hold. */
  RECORD_TOO_LARGE: 'BAZIL_RECORD_TOO_LARGE',
  /** The object was closed or sealed and no longer takes this call. */
  CLOSED: 'BAZIL_CLOSED',
  /** An operating-system I/O call failed; `cause` carries the OS error. */
  IO: 'BAZIL_IO',
  /** Another process holds the lock on this directory. */
  LOCKED: 'BAZIL_LOCKED',
  /** A numbered migration failed; nothing was recorded as applied. */
  MIGRATION_FAILED: 'BAZIL_MIGRATION_FAILED',
  /** The operation was cancelled through its AbortSignal. */
  ABORTED: 'BAZIL_ABORTED',
  /** A feature needs the native addon, which is not built. */
  NATIVE_UNAVAILABLE: 'BAZIL_NATIVE_UNAVAILABLE',
  /** A content object fails authentication (GCM tag): damaged, truncated, or not sealed with this key. */
  CORRUPT_OBJECT: 'BAZIL_CORRUPT_OBJECT',
  /** A content object's bytes do not hash to the id it was asked for or stored under. */
  OBJECT_MISMATCH: 'BAZIL_OBJECT_MISMATCH',
  /** A file manifest (or manifest node) is malformed: bad CBOR, unknown version, lengths that do not add up. */
  CORRUPT_MANIFEST: 'BAZIL_CORRUPT_MANIFEST',
  /** An unexpected failure: a bug in Bazil. The CLI reports any non-BazilError with it. */
  INTERNAL: 'BAZIL_INTERNAL',
  /**
   * An event naming content was about to be appended before that content
   * was durable (the content rule of volume/write-batch.ts): a bug in
   * Bazil, refused rather than committed, since a crash could then leave
   * an event whose objects are lost.
   */
  CONTENT_NOT_DURABLE: 'BAZIL_CONTENT_NOT_DURABLE',
  /** An event's bytes are malformed: not canonical CBOR, a field of the wrong type or range, a bad name. */
  CORRUPT_EVENT: 'BAZIL_CORRUPT_EVENT',
  /** An event's signature does not verify under its writer's key. */
  BAD_SIGNATURE: 'BAZIL_BAD_SIGNATURE',
  /** An event body fails authenticated decryption: the wrong volume key, or altered bytes. */
  DECRYPT_FAILED: 'BAZIL_DECRYPT_FAILED',
  /** An event does not follow its writer's previous one (seq, prev or clock), or breaks causal order. */
  BROKEN_CHAIN: 'BAZIL_BROKEN_CHAIN',
  /** Events are missing before this one (a gap in a writer's sequence, or an unmet dependency): fetch them first. */
  LOG_GAP: 'BAZIL_LOG_GAP',
  /** An event belongs to a different volume than the log it was offered to. */
  WRONG_VOLUME: 'BAZIL_WRONG_VOLUME',
  /** A clock reading lies further in the future than the allowed drift. */
  CLOCK_SKEW: 'BAZIL_CLOCK_SKEW',
  /** A file or attribute name is longer than 255 bytes of UTF-8 (ENAMETOOLONG). */
  NAME_TOO_LONG: 'BAZIL_NAME_TOO_LONG',
  /** Something by this name already exists where names must be unique (a volume name in a home, a path in a volume: EEXIST). */
  ALREADY_EXISTS: 'BAZIL_ALREADY_EXISTS',
  /** A path component that must be a directory is not one (ENOTDIR). */
  NOT_A_DIRECTORY: 'BAZIL_NOT_A_DIRECTORY',
  /** A file operation named a directory (EISDIR). */
  IS_A_DIRECTORY: 'BAZIL_IS_A_DIRECTORY',
  /** A directory to remove or replace still has entries (ENOTEMPTY). */
  NOT_EMPTY: 'BAZIL_NOT_EMPTY',
  /** A point in history before the volume's first event (a time before it existed, or @0). */
  BEFORE_HISTORY: 'BAZIL_BEFORE_HISTORY',
  /** No snapshot of that name exists in the volume (never made, or removed). */
  UNKNOWN_SNAPSHOT: 'BAZIL_UNKNOWN_SNAPSHOT',
  /** A local history checkpoint does not hash to its name or does not match a replay; it is dropped and rebuilt. */
  BAD_CHECKPOINT: 'BAZIL_BAD_CHECKPOINT',
  /** A write or truncate past the largest file size a volume holds (EFBIG). */
  FILE_TOO_LARGE: 'BAZIL_FILE_TOO_LARGE',
  /** A copy or move between two volumes, which share no content (EXDEV). */
  CROSS_VOLUME: 'BAZIL_CROSS_VOLUME',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export type ErrorData = Record<string, string | number | boolean | null | undefined>;

export interface BazilErrorJSON {
  code: ErrorCode;
  message: string;
  data: ErrorData;
  cause?: { code?: string; message: string };
}

export class BazilError extends Error {
  readonly code: ErrorCode;
  readonly data: ErrorData;

  constructor(code: ErrorCode, message: string, data: ErrorData = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'BazilError';
    this.code = code;
    this.data = data;
  }

  toJSON(): BazilErrorJSON {
    const json: BazilErrorJSON = { code: this.code, message: this.message, data: this.data };
    const cause = this.cause;
    if (cause instanceof Error) {
      const c: { code?: string; message: string } = { message: cause.message };
      const osCode = (cause as NodeJS.ErrnoException).code;
      if (typeof osCode === 'string') c.code = osCode;
      json.cause = c;
    }
    return json;
  }
}

export function isBazilError(err: unknown, code?: ErrorCode): err is BazilError {
  return err instanceof BazilError && (code === undefined || err.code === code);
}

/**
 * Wraps an operating-system failure at the boundary where it arises, so
 * callers see one code and the path, with the OS error kept as the cause.
 */
export function ioError(op: string, path: string, cause: unknown): BazilError {
  if (cause instanceof BazilError) return cause;
  const osCode = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (osCode === 'ENOENT') {
    return new BazilError(ErrorCodes.NOT_FOUND, `${op} ${path}: no such file`, { op, path }, cause);
  }
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new BazilError(ErrorCodes.IO, `${op} ${path}: ${msg}`, { op, path, os: osCode ?? null }, cause);
}
