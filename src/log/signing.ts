// Ed25519 signatures over events (node:crypto).
//
// A writer id is the raw 32-byte public key, so an event carries the key
// that verifies it. node:crypto takes keys as KeyObjects, which it builds
// from DER: the raw key behind a fixed PKCS#8 or SPKI prefix (RFC 8410).
// Building a public KeyObject costs about as much as a verification, so
// verifying keys are cached per writer.

import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { BazilError, ErrorCodes } from '../../errors/index.js';

export const SEED_LENGTH = 32;
export const PUBLIC_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const MAX_CACHED_KEYS = 4096;

/** The local writer's signing capability; `writer` is its public key. */
export interface Signer {
  readonly writer: Buffer;
  sign(data: Uint8Array): Buffer;
}

/** A signer from a 32-byte Ed25519 seed (the private key as RFC 8032 defines it). */
export function signerFromSeed(seed: Uint8Array): Signer {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `an Ed25519 seed is ${SEED_LENGTH} bytes`);
  }
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const writer = Buffer.from(spki.subarray(SPKI_PREFIX.length));
  return {
    writer,
    sign: (data: Uint8Array): Buffer => sign(null, data, key),
  };
}

/** A fresh seed (keep it secret) and its signer. */
export function generateSigner(): { seed: Buffer; signer: Signer } {
  const seed = randomBytes(SEED_LENGTH);
  return { seed, signer: signerFromSeed(seed) };
}

const publicKeys = new Map<string, KeyObject>();

function publicKeyOf(writer: Uint8Array): KeyObject {
  const hex = Buffer.from(writer.buffer, writer.byteOffset, writer.byteLength).toString('hex');
  let key = publicKeys.get(hex);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, writer]), format: 'der', type: 'spki' });
    // A hostile peer can name any number of writers; a full cache starts over rather than grow.
    if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.clear();
    publicKeys.set(hex, key);
  }
  return key;
}

/** Whether `signature` is `writer`'s over `data`. Malformed keys and signatures are simply not valid. */
export function verifySignature(writer: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (writer.length !== PUBLIC_KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) return false;
  try {
    return verify(null, data, publicKeyOf(writer), signature);
  } catch {
    return false;
  }
}
