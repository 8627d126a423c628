// Convergent encryption of content objects (docs/volume.md, docs/crypto.md).
//
// For a plaintext P (a chunk, or an encoded manifest node):
//   key k      = HMAC-SHA256(Kc, P)            Kc: the volume's convergence secret
//                (content format 1; format 2 keys with BLAKE3: chunk-keys.ts)
//   object     = AES-256-GCM(k, iv = 0^96, P) ‖ tag(16)
//   object id  = SHA-256(object)
// Equal plaintexts in one volume give equal objects, so they dedup; the id
// is a hash of what a store holds, so a store (or a peer without the secret)
// can check an object against its id without any key; a reader with k also
// checks the GCM tag. The IV is fixed because k is a function of P: one key
// never encrypts two different plaintexts, and re-encrypting the same P
// yields the same bytes, which is the point.

import { createCipheriv, createDecipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { BazilError, ErrorCodes } from '../../errors/index.js';

export const OBJECT_ID_LENGTH = 32;
export const OBJECT_KEY_LENGTH = 32;
export const TAG_LENGTH = 16;
const ZERO_IV = Buffer.alloc(12);

export interface SealedObject {
  /** SHA-256 of `sealed`: the object's name in every store. */
  readonly id: Buffer;
  /** The per-object key, kept in the manifest that refers to it. */
  readonly key: Buffer;
  /** Ciphertext followed by the 16-byte GCM tag. */
  readonly sealed: Buffer;
}

export interface OpenOptions {
  /** Also check the object against this id (for objects from untrusted stores). */
  verifyId?: Uint8Array;
}

function checkLength(name: string, value: Uint8Array, length: number): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `${name} must be ${length} bytes`);
  }
}

/** Encrypts `plaintext` convergently under the convergence secret `chunkKey`, its key taken as content format 1 does. */
export function sealObject(chunkKey: Uint8Array, plaintext: Uint8Array): SealedObject {
  checkLength('a convergence secret', chunkKey, 32);
  return sealWithKey(createHmac('sha256', chunkKey).update(plaintext).digest(), plaintext);
}

/** Encrypts `plaintext` under its chunk key `key` (chunk-keys.ts: the key depends on the volume's content format). */
export function sealWithKey(key: Buffer, plaintext: Uint8Array): SealedObject {
  checkLength('an object key', key, OBJECT_KEY_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', key, ZERO_IV);
  const sealed = Buffer.allocUnsafe(plaintext.length + TAG_LENGTH);
  // GCM is a stream mode: update() returns exactly as many bytes as it is given.
  const body = cipher.update(plaintext);
  body.copy(sealed, 0);
  cipher.final();
  cipher.getAuthTag().copy(sealed, plaintext.length);
  return { id: objectId(sealed), key, sealed };
}

/** The id of a sealed object: SHA-256 of its bytes. */
export function objectId(sealed: Uint8Array): Buffer {
  return createHash('sha256').update(sealed).digest();
}

/** Whether `sealed` hashes to `id`: the check a store can make without keys. */
export function objectIdMatches(id: Uint8Array, sealed: Uint8Array): boolean {
  return id.length === OBJECT_ID_LENGTH && timingSafeEqual(objectId(sealed), id);
}

/** Throws BAZIL_OBJECT_MISMATCH unless `sealed` hashes to `id`. */
export function checkObjectId(id: Uint8Array, sealed: Uint8Array): void {
  checkLength('an object id', id, OBJECT_ID_LENGTH);
  if (!objectIdMatches(id, sealed)) {
    const hex = Buffer.from(id).toString('hex');
    throw new BazilError(ErrorCodes.OBJECT_MISMATCH, `object ${hex} does not hash to its id`, { id: hex });
  }
}

/**
 * Decrypts and authenticates a sealed object. Throws BAZIL_CORRUPT_OBJECT
 * when the tag does not verify (any changed byte, a wrong key, a truncated
 * object) and BAZIL_OBJECT_MISMATCH when `verifyId` is given and differs.
 * The id check comes first: a store that returns the wrong object is told
 * apart from damage to the right one.
 */
export function openObject(sealed: Uint8Array, key: Uint8Array, options: OpenOptions = {}): Buffer {
  checkLength('an object key', key, OBJECT_KEY_LENGTH);
  if (options.verifyId !== undefined) checkObjectId(options.verifyId, sealed);
  const idData = options.verifyId === undefined ? {} : { id: Buffer.from(options.verifyId).toString('hex') };
  if (!(sealed instanceof Uint8Array) || sealed.length < TAG_LENGTH) {
    throw new BazilError(ErrorCodes.CORRUPT_OBJECT, 'a sealed object is shorter than its tag', { ...idData, length: sealed?.length ?? 0 });
  }
  const bodyLength = sealed.length - TAG_LENGTH;
  const decipher = createDecipheriv('aes-256-gcm', key, ZERO_IV);
  decipher.setAuthTag(sealed.subarray(bodyLength));
  const plaintext = decipher.update(sealed.subarray(0, bodyLength));
  try {
    decipher.final();
  } catch (err) {
    throw new BazilError(ErrorCodes.CORRUPT_OBJECT, 'object fails authentication: damaged, or not encrypted with this key', { ...idData, length: sealed.length }, err);
  }
  return plaintext;
}
