// Encryption of event bodies: nonce(12) ‖ AES-256-GCM(Ke, nonce, body, aad) ‖ tag(16).
//
// The nonce is synthetic, as in SIV: the first 12 bytes of an HMAC over the
// additional data and the plaintext, under a key derived from Ke for this
// use alone. A random nonce would make the encoding of an event depend on
// chance; a counter would repeat after a crash that loses unsynced events
// and re-issues their sequence numbers with other bodies, which under GCM
// leaks the XOR of plaintexts and the authentication key. With a synthetic
// nonce two encryptions share a nonce only if they encrypt the same body
// under the same (volume, writer, seq), and then they are the same bytes.
//
// The additional data binds a body to its place, volume ‖ writer ‖ seq (seq
// as 8 bytes big-endian), so a body cannot be moved into another event; the
// signature covers the rest of the header.

import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { BazilError, ErrorCodes } from '../../errors/index.js';

export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;
export const EVENT_KEY_LENGTH = 32;
const NONCE_KEY_LABEL = 'bazil/v1/event-nonce';

/** The additional data of an event body: volume(32) ‖ writer(32) ‖ seq (u64 big-endian). */
export function bodyAad(volume: Uint8Array, writer: Uint8Array, seq: bigint): Buffer {
  const aad = Buffer.allocUnsafe(volume.length + writer.length + 8);
  aad.set(volume, 0);
  aad.set(writer, volume.length);
  aad.writeBigUInt64BE(seq, volume.length + writer.length);
  return aad;
}

export function sealBody(eventKey: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  checkKey(eventKey);
  const nonceKey = nonceKeyOf(eventKey);
  const nonce = createHmac('sha256', nonceKey).update(aad).update(plaintext).digest().subarray(0, NONCE_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', eventKey, nonce);
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return Buffer.concat([nonce, head, tail, cipher.getAuthTag()]);
}

/** The plaintext of a sealed body; DECRYPT_FAILED when the key is wrong or a byte was altered. */
export function openSealedBody(eventKey: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Buffer {
  checkKey(eventKey);
  if (sealed.length < NONCE_LENGTH + TAG_LENGTH) {
    throw new BazilError(ErrorCodes.CORRUPT_EVENT, `a sealed body is at least ${NONCE_LENGTH + TAG_LENGTH} bytes`);
  }
  const decipher = createDecipheriv('aes-256-gcm', eventKey, sealed.subarray(0, NONCE_LENGTH));
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
  const head = decipher.update(sealed.subarray(NONCE_LENGTH, sealed.length - TAG_LENGTH));
  try {
    return Buffer.concat([head, decipher.final()]);
  } catch (err) {
    throw new BazilError(ErrorCodes.DECRYPT_FAILED, 'an event body does not decrypt: wrong volume key, or altered bytes', {}, err);
  }
}

/** The last event key's nonce key: a writer seals every event under one key, so this saves an HMAC per event. */
let lastNonceKey: { eventKey: Buffer; nonceKey: Buffer } | null = null;

function nonceKeyOf(eventKey: Uint8Array): Buffer {
  if (lastNonceKey !== null && lastNonceKey.eventKey.equals(eventKey)) return lastNonceKey.nonceKey;
  const nonceKey = createHmac('sha256', eventKey).update(NONCE_KEY_LABEL).digest();
  lastNonceKey = { eventKey: Buffer.from(eventKey), nonceKey };
  return nonceKey;
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== EVENT_KEY_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `an event key is ${EVENT_KEY_LENGTH} bytes`);
  }
}
