// Event bodies: one per mutation of the filesystem, plus volume-level
// events (snapshots, pins, placement).
//
// References: an inode is named by its id, the id of the event that created
// it (the volume's root directory is the create-volume event). An entry is
// named by (parent inode, name). Events that remove or move an entry also
// name the inode they expect there, so that when concurrent events from
// several writers are replayed in merge order, an unlink or rename meant for
// one file never hits another that a concurrent rename put under the same
// name: the projection applies it to the inode named, or not at all.
//
// Times: every time an event sets implicitly (ctime, and mtime on writes)
// is its hybrid logical clock; the `mtime` fields here carry only times a
// caller sets explicitly, in nanoseconds since the epoch (negative before
// 1970). atime is not logged except when set explicitly with utimens.
//
// A body encodes as a CBOR map whose first key is `type`, followed by the
// fields in the order of SCHEMAS below; optional fields are left out when
// absent. Decoding accepts exactly that form and nothing else.

import { BazilError, ErrorCodes } from '../../errors/index.js';
import { decodeCanonical, encodeCanonical, type DecodedValue, type EncodableValue } from './canonical-cbor.js';
import { textProblem, type TextRule } from './names.js';
import { isContentFormat, type ContentFormat } from '../cas/content-format.js';

/** An event id (SHA-256 of its signed part): also the id of the inode it created. */
export type EventId = Uint8Array;
export const EVENT_ID_LENGTH = 32;

/** Permission bits (with setuid, setgid and sticky): the file type comes from the event type. */
export const MODE_MASK = 0o7777;
export const XATTR_VALUE_MAX_BYTES = 64 * 1024;
/** A file's root manifest rides inside set-content; larger manifests are split into trees (docs/volume.md). */
export const MANIFEST_MAX_BYTES = 512 * 1024;
export const MAX_STORES = 64;

/** An explicit time in ns since the epoch, 'now' for the event's own clock, or null to leave it alone. */
export type TimeSpec = bigint | 'now' | null;

/** `content`: the volume's content format (src/cas/content-format.ts); absent in volumes created before formats were named: format 1. */
export interface CreateVolumeEvent { type: 'create-volume'; label: string; mode: number; uid: number; gid: number; content?: ContentFormat }
export interface MkdirEvent { type: 'mkdir'; parent: EventId; name: string; mode: number; uid: number; gid: number; mtime?: bigint }
/**
 * A new regular file; with `size` and `manifest` it is born with its content
 * (what import writes: one event per file instead of create, set-content and
 * utimens), and `mtime` then stays the file's mtime.
 */
export interface CreateEvent { type: 'create'; parent: EventId; name: string; mode: number; uid: number; gid: number; mtime?: bigint; size?: number; manifest?: Uint8Array | null }
/** New content of a whole file: its manifest (opaque here, from src/cas) and size; an empty file has no manifest. */
export interface SetContentEvent { type: 'set-content'; inode: EventId; size: number; manifest: Uint8Array | null }
export interface TruncateEvent { type: 'truncate'; inode: EventId; size: number }
export interface RenameEvent { type: 'rename'; inode: EventId; parent: EventId; name: string; newParent: EventId; newName: string }
export interface UnlinkEvent { type: 'unlink'; inode: EventId; parent: EventId; name: string }
export interface RmdirEvent { type: 'rmdir'; inode: EventId; parent: EventId; name: string }
/** A new hard link named (parent, name) to an existing inode. */
export interface LinkEvent { type: 'link'; inode: EventId; parent: EventId; name: string }
export interface SymlinkEvent { type: 'symlink'; parent: EventId; name: string; target: string; uid: number; gid: number; mtime?: bigint }
export interface MknodEvent { type: 'mknod'; parent: EventId; name: string; kind: 'fifo' | 'socket'; mode: number; uid: number; gid: number; mtime?: bigint }
export interface ChmodEvent { type: 'chmod'; inode: EventId; mode: number }
/** null leaves that id unchanged (chown's -1), so concurrent chowns of uid and gid both hold. */
export interface ChownEvent { type: 'chown'; inode: EventId; uid: number | null; gid: number | null }
export interface UtimensEvent { type: 'utimens'; inode: EventId; atime: TimeSpec; mtime: TimeSpec }
export interface SetxattrEvent { type: 'setxattr'; inode: EventId; name: string; value: Uint8Array }
export interface RemovexattrEvent { type: 'removexattr'; inode: EventId; name: string }
/** Names the state of the volume at this event (its deps plus itself). */
export interface SnapshotEvent { type: 'snapshot'; name: string }
/** Retires the snapshot of that name; the state it named stays in the log (reachable by position or time). */
export interface SnapshotRmEvent { type: 'snapshot-rm'; name: string }
export interface PinEvent { type: 'pin'; inode: EventId }
export interface UnpinEvent { type: 'unpin'; inode: EventId }
/** The stores that should hold the content under an inode: distinct store names sorted by UTF-8 bytes. */
export interface PlacementEvent { type: 'placement'; inode: EventId; stores: string[] }
/**
 * A copy of the node `inode` (a file, symlink, fifo or socket, or a whole
 * directory tree) named (parent, name), sharing its content: mode, owner,
 * mtime and xattrs are kept; ctime is this event's clock. A tree copy is
 * this one event (docs/reflink.md).
 */
export interface CloneEvent { type: 'clone'; inode: EventId; parent: EventId; name: string }

export type EventBody =
  | CreateVolumeEvent | MkdirEvent | CreateEvent | SetContentEvent | TruncateEvent | RenameEvent
  | UnlinkEvent | RmdirEvent | LinkEvent | SymlinkEvent | MknodEvent | ChmodEvent | ChownEvent
  | UtimensEvent | SetxattrEvent | RemovexattrEvent | SnapshotEvent | SnapshotRmEvent | PinEvent | UnpinEvent | PlacementEvent
  | CloneEvent;

export type EventType = EventBody['type'];

type FieldKind =
  | 'id' | 'mode' | 'uint32' | 'uint32-or-null' | 'size' | 'time' | 'time-spec'
  | 'xattr-value' | 'manifest' | 'node-kind' | 'stores' | 'content-format' | TextRule;

interface FieldSpec {
  name: string;
  kind: FieldKind;
  optional?: true;
}

type Schema<E extends EventBody> = readonly (FieldSpec & { name: Exclude<keyof E, 'type'> })[];
type Schemas = { readonly [E in EventBody as E['type']]: Schema<E> };

const nodeAttrs = [
  { name: 'mode', kind: 'mode' }, { name: 'uid', kind: 'uint32' }, { name: 'gid', kind: 'uint32' },
  { name: 'mtime', kind: 'time', optional: true },
] as const;

const SCHEMAS: Schemas = {
  'create-volume': [
    { name: 'label', kind: 'label' }, { name: 'mode', kind: 'mode' }, { name: 'uid', kind: 'uint32' }, { name: 'gid', kind: 'uint32' },
    { name: 'content', kind: 'content-format', optional: true },
  ],
  mkdir: [{ name: 'parent', kind: 'id' }, { name: 'name', kind: 'name' }, ...nodeAttrs],
  create: [
    { name: 'parent', kind: 'id' }, { name: 'name', kind: 'name' }, ...nodeAttrs,
    { name: 'size', kind: 'size', optional: true }, { name: 'manifest', kind: 'manifest', optional: true },
  ],
  'set-content': [{ name: 'inode', kind: 'id' }, { name: 'size', kind: 'size' }, { name: 'manifest', kind: 'manifest' }],
  truncate: [{ name: 'inode', kind: 'id' }, { name: 'size', kind: 'size' }],
  rename: [
    { name: 'inode', kind: 'id' }, { name: 'parent', kind: 'id' }, { name: 'name', kind: 'name' },
    { name: 'newParent', kind: 'id' }, { name: 'newName', kind: 'name' },
  ],
  unlink: [{ name: 'inode', kind: 'id' }, { name: 'parent', kind: 'id' }, { name: 'name', kind: 'name' }],
  rmdir: [{ name: 'inode', kind: 'id' }, { name: 'parent', kind: 'id' }, { name: 'name', kind: 'name' }],
  link: [{ name: 'inode', kind: 'id' }, { name: 'parent', kind: 'id' }, { name: 'name', kind: 'name' }],
  symlink: [
    { name: 'parent', kind: 'id' }, { name: 'name', kind: 'name' }, { name: 'target', kind: 'symlink-target' },
    { name: 'uid', kind: 'uint32' }, { name: 'gid', kind: 'uint32' }, { name: 'mtime', kind: 'time', optional: true },
  ],
  mknod: [{ name: 'parent', kind: 'id' }, { name: 'name', kind: 'name' }, { name: 'kind', kind: 'node-kind' }, ...nodeAttrs],
  chmod: [{ name: 'inode', kind: 'id' }, { name: 'mode', kind: 'mode' }],
  chown: [{ name: 'inode', kind: 'id' }, { name: 'uid', kind: 'uint32-or-null' }, { name: 'gid', kind: 'uint32-or-null' }],
  utimens: [{ name: 'inode', kind: 'id' }, { name: 'atime', kind: 'time-spec' }, { name: 'mtime', kind: 'time-spec' }],
  setxattr: [{ name: 'inode', kind: 'id' }, { name: 'name', kind: 'xattr-name' }, { name: 'value', kind: 'xattr-value' }],
  removexattr: [{ name: 'inode', kind: 'id' }, { name: 'name', kind: 'xattr-name' }],
  snapshot: [{ name: 'name', kind: 'name' }],
  'snapshot-rm': [{ name: 'name', kind: 'name' }],
  pin: [{ name: 'inode', kind: 'id' }],
  unpin: [{ name: 'inode', kind: 'id' }],
  placement: [{ name: 'inode', kind: 'id' }, { name: 'stores', kind: 'stores' }],
  clone: [{ name: 'inode', kind: 'id' }, { name: 'parent', kind: 'id' }, { name: 'name', kind: 'name' }],
};

export const EVENT_TYPES = Object.keys(SCHEMAS) as EventType[];

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

interface Problem {
  field: string;
  reason: string;
  tooLong?: boolean;
}

/** Why `value` is not a valid `kind`, or null; `value` is either a caller's or a decoded one. */
function fieldProblem(kind: FieldKind, value: unknown): string | Omit<Problem, 'field'> | null {
  switch (kind) {
    case 'id':
      return value instanceof Uint8Array && value.length === EVENT_ID_LENGTH ? null : `is not a ${EVENT_ID_LENGTH}-byte id`;
    case 'mode':
      return isIntIn(value, 0n, BigInt(MODE_MASK)) ? null : 'is not a mode in 0..0o7777';
    case 'uint32':
      return isIntIn(value, 0n, 0xffff_ffffn) ? null : 'is not an integer in 0..2^32-1';
    case 'uint32-or-null':
      return value === null || isIntIn(value, 0n, 0xffff_ffffn) ? null : 'is neither null nor an integer in 0..2^32-1';
    case 'size':
      return isIntIn(value, 0n, BigInt(Number.MAX_SAFE_INTEGER)) ? null : 'is not a size in 0..2^53-1';
    case 'time':
      return isIntIn(value, INT64_MIN, INT64_MAX) ? null : 'is not a time in signed 64-bit nanoseconds';
    case 'time-spec':
      return value === null || value === 'now' || isIntIn(value, INT64_MIN, INT64_MAX) ? null : "is neither null, 'now' nor a time in signed 64-bit nanoseconds";
    case 'xattr-value':
      return value instanceof Uint8Array && value.length <= XATTR_VALUE_MAX_BYTES ? null : `is not a byte string of at most ${XATTR_VALUE_MAX_BYTES} bytes`;
    case 'manifest':
      return value === null || (value instanceof Uint8Array && value.length > 0 && value.length <= MANIFEST_MAX_BYTES) ? null : `is neither null nor a byte string of 1..${MANIFEST_MAX_BYTES} bytes`;
    case 'node-kind':
      return value === 'fifo' || value === 'socket' ? null : "is neither 'fifo' nor 'socket'";
    case 'content-format':
      return isContentFormat(typeof value === 'bigint' ? Number(value) : value) ? null : 'is not a content format (1 or 2)';
    case 'stores': {
      if (!Array.isArray(value) || value.length > MAX_STORES) return `is not an array of at most ${MAX_STORES} store names`;
      for (let i = 0; i < value.length; i++) {
        const s: unknown = value[i];
        if (typeof s !== 'string') return 'holds a store name that is not text';
        const p = textProblem('name', s);
        if (p !== null) return { reason: `holds a store name that ${p.reason}`, tooLong: p.tooLong };
        if (i > 0 && Buffer.compare(Buffer.from(String(value[i - 1])), Buffer.from(s)) >= 0) return 'must list store names sorted by their UTF-8 bytes and distinct';
      }
      return null;
    }
    default: {
      if (typeof value !== 'string') return 'is not text';
      const p = textProblem(kind, value);
      return p === null ? null : { reason: p.reason, tooLong: p.tooLong };
    }
  }
}

function isIntIn(value: unknown, min: bigint, max: bigint): boolean {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) return false;
    value = BigInt(value);
  }
  return typeof value === 'bigint' && value >= min && value <= max;
}

/** Fields that must not all be left alone: an event that changes nothing is a caller's mistake. */
function crossProblem(body: EventBody): Problem | null {
  if (body.type === 'chown' && body.uid === null && body.gid === null) return { field: 'uid', reason: 'and gid are both null' };
  if (body.type === 'utimens' && body.atime === null && body.mtime === null) return { field: 'atime', reason: 'and mtime are both null' };
  return null;
}

function schemaOf(type: string): readonly FieldSpec[] | undefined {
  return Object.prototype.hasOwnProperty.call(SCHEMAS, type) ? (SCHEMAS as Record<string, readonly FieldSpec[]>)[type] : undefined;
}

/**
 * The canonical CBOR of a body. Throws BAD_ARGUMENT (NAME_TOO_LONG for
 * over-long names) when the body breaks a rule, so nothing invalid is signed.
 */
export function encodeBody(body: EventBody): Buffer {
  const schema = body !== null && typeof body === 'object' ? schemaOf(body.type) : undefined;
  if (schema === undefined) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `unknown event type ${JSON.stringify((body as { type?: unknown } | null)?.type)}`);
  const fields = body as unknown as Record<string, unknown>;
  const out: Record<string, EncodableValue> = { type: body.type };
  for (const f of schema) {
    const v = fields[f.name];
    if (v === undefined && f.optional) continue;
    const p = fieldProblem(f.kind, v);
    if (p !== null) throw localError(body.type, { field: f.name, ...(typeof p === 'string' ? { reason: p } : p) });
    out[f.name] = v as EncodableValue;
  }
  for (const k of Object.keys(fields)) {
    if (k !== 'type' && fields[k] !== undefined && !schema.some((f) => f.name === k)) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, `${body.type} event: unknown field '${k}'`, { type: body.type, field: k });
    }
  }
  const cross = crossProblem(body);
  if (cross !== null) throw localError(body.type, cross);
  return encodeCanonical(out);
}

// The errno lets a POSIX front end answer a refused argument (a mode out of range, an empty name) as the kernel would.
function localError(type: string, p: Problem): BazilError {
  return new BazilError(p.tooLong ? ErrorCodes.NAME_TOO_LONG : ErrorCodes.BAD_ARGUMENT, `${type} event: ${p.field} ${p.reason}`, {
    type, field: p.field, errno: p.tooLong ? 'ENAMETOOLONG' : 'EINVAL',
  });
}

/**
 * Reads a body, accepting only what encodeBody writes. Malformed bodies
 * throw CORRUPT_EVENT; a well-formed body of a type this build does not
 * know throws UNSUPPORTED_FORMAT (a newer peer wrote it).
 */
export function decodeBody(bytes: Uint8Array): EventBody {
  const map = decodeCanonical(bytes);
  if (!(map instanceof Map)) throw corrupt('a body is a CBOR map');
  const entries = [...map];
  if (entries.length === 0 || entries[0][0] !== 'type' || typeof entries[0][1] !== 'string') throw corrupt("a body's first key is 'type', a text");
  const type = entries[0][1];
  const schema = schemaOf(type);
  if (schema === undefined) {
    const shown = type.length > 64 ? `${type.slice(0, 64)}…` : type;
    throw new BazilError(ErrorCodes.UNSUPPORTED_FORMAT, `event type '${shown}' is not known to this version of Bazil`, { type: shown });
  }
  const out: Record<string, unknown> = { type };
  let i = 1;
  for (const f of schema) {
    if (i < entries.length && entries[i][0] === f.name) {
      const v = entries[i][1];
      const p = fieldProblem(f.kind, v);
      if (p !== null) throw corrupt(`${type} event: ${f.name} ${typeof p === 'string' ? p : p.reason}`, type, f.name);
      out[f.name] = toApi(f.kind, v);
      i++;
    } else if (!f.optional) {
      throw corrupt(`${type} event: field '${f.name}' is missing or out of order`, type, f.name);
    }
  }
  if (i < entries.length) throw corrupt(`${type} event: unexpected field '${entries[i][0]}'`, type, entries[i][0]);
  const body = out as unknown as EventBody;
  const cross = crossProblem(body);
  if (cross !== null) throw corrupt(`${type} event: ${cross.field} ${cross.reason}`, type, cross.field);
  return body;
}

/** Decoded integers come back as the CBOR reader's numbers or bigints; the API types fix one of them. */
function toApi(kind: FieldKind, v: DecodedValue): unknown {
  if (kind === 'time' || (kind === 'time-spec' && v !== null && v !== 'now')) return BigInt(v as number | bigint);
  if (kind === 'mode' || kind === 'uint32' || kind === 'size' || kind === 'content-format' || (kind === 'uint32-or-null' && v !== null)) return Number(v);
  return v;
}

function corrupt(message: string, type?: string, field?: string): BazilError {
  return new BazilError(ErrorCodes.CORRUPT_EVENT, message, { type, field });
}
