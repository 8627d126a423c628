// The byte format of events (docs/log.md has it byte by byte).
//
//   signed part  = CBOR [v=1, volume(32), writer(32), seq, hlc, prev(32), deps, body]
//   body         = nonce(12) ‖ AES-256-GCM(Ke, nonce, CBOR(body map), aad) ‖ tag(16)
//   stored event = CBOR [signed part bytes, Ed25519 signature(64)]
//   event id     = SHA-256(signed part bytes)
//
// Reading verifies in layers, so each holder checks what it can:
// `parseEnvelope` checks structure only (for events read back from local
// arenas, which were verified when they arrived and are checksummed on
// disk); `decodeEnvelope` adds the signature, which anyone can check, with
// no volume secret; `openBody` decrypts and validates the body, which needs
// the event key. Every encoding is canonical, so an accepted event has one
// byte form: the one encodeEvent writes.

import { createHash } from 'node:crypto';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { bodyAad, openSealedBody, sealBody, NONCE_LENGTH, TAG_LENGTH } from './body-cipher.js';
import { decodeCanonical, encodeCanonical, type DecodedValue } from './canonical-cbor.js';
import { decodeBody, encodeBody, EVENT_ID_LENGTH, type EventBody } from './event.js';
import { MAX_HLC, type Hlc } from './hlc.js';
import { SIGNATURE_LENGTH, verifySignature, type Signer } from './signing.js';
import { VersionVector, WRITER_LENGTH } from './version-vector.js';

export const EVENT_VERSION = 1;
export const VOLUME_ID_LENGTH = 32;
/** Far above any real event (a root manifest is at most 512 KiB), far below what would strain memory. */
export const MAX_EVENT_BYTES = 1024 * 1024;
/** The `prev` of a writer's first event. */
export const ZERO_ID: Buffer = Buffer.alloc(EVENT_ID_LENGTH);
const MAX_SEQ = (1n << 64n) - 1n;

/** What anyone can read of an event without the volume secret. */
export interface EventHeader {
  volume: Buffer;
  writer: Buffer;
  seq: bigint;
  hlc: Hlc;
  /** The id of the writer's previous event; ZERO_ID for its first. */
  prev: Buffer;
  /** What the writer had seen of the other writers (its own entry is implied by seq and left out). */
  deps: VersionVector;
}

/** A parsed event with its body still sealed. */
export interface Envelope extends EventHeader {
  id: Buffer;
  sealedBody: Buffer;
  signedPart: Buffer;
  signature: Buffer;
  /** The stored form. */
  bytes: Buffer;
}

/** An event with its body opened. */
export interface LogEvent extends EventHeader {
  id: Buffer;
  body: EventBody;
}

/** What a writer supplies to make an event; the writer id is its signer's. */
export interface EventDraft {
  volume: Uint8Array;
  seq: bigint;
  hlc: Hlc;
  prev: Uint8Array;
  deps: VersionVector;
  body: EventBody;
}

export function eventId(signedPart: Uint8Array): Buffer {
  return createHash('sha256').update(signedPart).digest();
}

/** Encrypts, encodes and signs an event. Invalid input throws BAD_ARGUMENT (or NAME_TOO_LONG). */
export function encodeEvent(draft: EventDraft, signer: Signer, eventKey: Uint8Array): Envelope {
  return encodeEventOpened(draft, signer, eventKey).envelope;
}

/**
 * encodeEvent, and the event as openBody would give it back (the body
 * decoded from the plaintext that was sealed, not the draft's object), so
 * a writer can project its own event without decrypting it again.
 */
export function encodeEventOpened(draft: EventDraft, signer: Signer, eventKey: Uint8Array): { envelope: Envelope; event: LogEvent } {
  const volume = bytesArg(draft.volume, VOLUME_ID_LENGTH, 'volume id');
  const prev = bytesArg(draft.prev, EVENT_ID_LENGTH, 'prev');
  const writer = signer.writer;
  const { seq, hlc, deps } = draft;
  if (typeof seq !== 'bigint' || seq < 1n || seq > MAX_SEQ) throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'seq is a bigint in 1..2^64-1');
  if (typeof hlc !== 'bigint' || hlc < 0n || hlc > MAX_HLC) throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'hlc is a bigint in 0..2^64-1');
  if ((seq === 1n) !== prev.equals(ZERO_ID)) throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'prev is all zeros exactly for seq 1');
  if (deps.get(writer) !== 0n) throw new BazilError(ErrorCodes.BAD_ARGUMENT, "deps leave out the writer's own entry");
  const plaintext = encodeBody(draft.body);
  const sealedBody = sealBody(eventKey, bodyAad(volume, writer, seq), plaintext);
  const signedPart = encodeCanonical([EVENT_VERSION, volume, writer, seq, hlc, prev, deps.toCbor(), sealedBody]);
  const signature = signer.sign(signedPart);
  const bytes = encodeCanonical([signedPart, signature]);
  if (bytes.length > MAX_EVENT_BYTES) {
    throw new BazilError(ErrorCodes.RECORD_TOO_LARGE, `an event of ${bytes.length} bytes exceeds ${MAX_EVENT_BYTES}`, { bytes: bytes.length });
  }
  const id = eventId(signedPart);
  return {
    envelope: { volume, writer, seq, hlc, prev, deps, id, sealedBody, signedPart, signature, bytes },
    event: { volume, writer, seq, hlc, prev, deps, id, body: decodeBody(plaintext) },
  };
}

function bytesArg(b: Uint8Array, length: number, what: string): Buffer {
  if (!(b instanceof Uint8Array) || b.length !== length) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `${what} is ${length} bytes`);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Checks structure only (no signature): for events read back from this
 * volume's own arenas. CORRUPT_EVENT when malformed, UNSUPPORTED_FORMAT
 * for an event format newer than this build.
 */
export function parseEnvelope(bytes: Uint8Array): Envelope {
  if (!(bytes instanceof Uint8Array)) throw corrupt('an event is a byte string');
  if (bytes.length > MAX_EVENT_BYTES) throw corrupt(`an event of ${bytes.length} bytes exceeds ${MAX_EVENT_BYTES}`);
  const outer = decodeCanonical(bytes);
  if (!Array.isArray(outer) || outer.length !== 2) throw corrupt('a stored event is a 2-element array');
  const [signedPart, signature] = outer;
  if (!Buffer.isBuffer(signedPart)) throw corrupt('the signed part is a byte string');
  if (!Buffer.isBuffer(signature) || signature.length !== SIGNATURE_LENGTH) throw corrupt(`the signature is ${SIGNATURE_LENGTH} bytes`);
  const part = decodeCanonical(signedPart);
  if (!Array.isArray(part) || part.length < 1) throw corrupt('the signed part is an array');
  const v = part[0];
  if (typeof v !== 'number') throw corrupt('the format version is an integer');
  if (v !== EVENT_VERSION) {
    throw new BazilError(ErrorCodes.UNSUPPORTED_FORMAT, `event format version ${v} is not known to this version of Bazil`, { version: v });
  }
  if (part.length !== 8) throw corrupt('the signed part has 8 fields');
  const volume = idField(part[1], VOLUME_ID_LENGTH, 'volume');
  const writer = idField(part[2], WRITER_LENGTH, 'writer');
  const seq = uintField(part[3], 'seq');
  const hlc = uintField(part[4], 'hlc');
  const prev = idField(part[5], EVENT_ID_LENGTH, 'prev');
  const deps = VersionVector.fromCbor(part[6]);
  const sealedBody = part[7];
  if (seq < 1n) throw corrupt('seq starts at 1');
  if ((seq === 1n) !== prev.equals(ZERO_ID)) throw corrupt('prev is all zeros exactly for seq 1');
  if (deps.get(writer) !== 0n) throw corrupt("deps name the event's own writer");
  if (!Buffer.isBuffer(sealedBody) || sealedBody.length < NONCE_LENGTH + TAG_LENGTH) {
    throw corrupt(`the body is a byte string of at least ${NONCE_LENGTH + TAG_LENGTH} bytes`);
  }
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { volume, writer, seq, hlc, prev, deps, id: eventId(signedPart), sealedBody, signedPart, signature, bytes: b };
}

/** parseEnvelope, then the signature: what a peer without the volume secret can check. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const env = parseEnvelope(bytes);
  if (!verifySignature(env.writer, env.signedPart, env.signature)) {
    throw new BazilError(ErrorCodes.BAD_SIGNATURE, `event ${env.seq} of writer ${env.writer.toString('hex')} has a bad signature`, { writer: env.writer.toString('hex'), seq: env.seq.toString() });
  }
  return env;
}

/** Decrypts and validates the body: DECRYPT_FAILED, CORRUPT_EVENT or UNSUPPORTED_FORMAT on failure. */
export function openBody(envelope: Envelope, eventKey: Uint8Array): LogEvent {
  const plaintext = openSealedBody(eventKey, bodyAad(envelope.volume, envelope.writer, envelope.seq), envelope.sealedBody);
  const { volume, writer, seq, hlc, prev, deps, id } = envelope;
  return { volume, writer, seq, hlc, prev, deps, id, body: decodeBody(plaintext) };
}

function idField(v: DecodedValue, length: number, what: string): Buffer {
  if (!Buffer.isBuffer(v) || v.length !== length) throw corrupt(`${what} is ${length} bytes`);
  return v;
}

function uintField(v: DecodedValue, what: string): bigint {
  if ((typeof v !== 'number' && typeof v !== 'bigint') || v < 0) throw corrupt(`${what} is an unsigned integer`);
  return BigInt(v);
}

function corrupt(message: string): BazilError {
  return new BazilError(ErrorCodes.CORRUPT_EVENT, message);
}
