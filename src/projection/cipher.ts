// The projection's cipher (docs/projection.md, "Encryption"): the local
// LevelDB and the checkpoints hold no name, symlink target or xattr in the
// clear, yet must stay canonical (the same events give the same bytes, so
// fsck and checkpoints can compare dumps) and keep point lookups by name.
//
// Names in keys become a keyed hash: HMAC-SHA256(nameKey, scope ‖ name)
// cut to 16 bytes, where scope is the directory (or inode) id, so the same
// name in two directories does not show as the same bytes. Values are
// sealed with a synthetic IV (the SIV construction, RFC 5297's shape with
// HMAC-SHA256 as the PRF): iv = HMAC(macKey, u32 len(ad) ‖ ad ‖ plaintext)
// cut to 16 bytes, ciphertext = AES-256-CTR(encKey, iv, plaintext), stored
// as iv ‖ ciphertext. It is deterministic by design (a dump must be), costs
// 16 bytes per value, and stays safe when the same key seals many values:
// equal ciphertexts reveal only equal (record key, value) pairs, which the
// record keys already make unique. The associated data is the record's
// stored key, so a value moved to another record does not open.

import { createCipheriv, createDecipheriv, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { BazilError, ErrorCodes } from '../../errors/index.js';

/** Bytes of a name's keyed hash in a stored key. */
export const NAME_TAG_BYTES = 16;
/** Bytes a sealed value adds to its plaintext: the synthetic IV, which is also its tag. */
export const SEAL_OVERHEAD = 16;

export class ProjectionCipher {
  private readonly nameKey: Buffer;
  private readonly macKey: Buffer;
  private readonly encKey: Buffer;

  /** `projectionKey` is VolumeKeys.projectionKey: 32 bytes derived from the volume secret. */
  constructor(projectionKey: Uint8Array) {
    if (projectionKey.length !== 32) throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'a projection key is 32 bytes');
    const sub = (label: string): Buffer => Buffer.from(hkdfSync('sha256', projectionKey, Buffer.alloc(0), `bazil/v1/projection/${label}`, 32));
    this.nameKey = sub('name');
    this.macKey = sub('mac');
    this.encKey = sub('enc');
  }

  /** The name's keyed hash within `scope` (the id of the directory or inode it belongs to). */
  nameTag(scope: Uint8Array, name: Uint8Array): Buffer {
    return createHmac('sha256', this.nameKey).update(scope).update(name).digest().subarray(0, NAME_TAG_BYTES);
  }

  seal(ad: Uint8Array, plain: Uint8Array): Buffer {
    const iv = this.syntheticIv(ad, plain);
    const c = createCipheriv('aes-256-ctr', this.encKey, iv);
    return Buffer.concat([iv, c.update(plain), c.final()]);
  }

  /** The plaintext of `sealed`; CORRUPT_METADATA when it was not sealed by this key for this record. */
  open(ad: Uint8Array, sealed: Uint8Array): Buffer {
    if (sealed.length < SEAL_OVERHEAD) throw notOurs('a sealed value is shorter than its tag');
    const iv = sealed.subarray(0, SEAL_OVERHEAD);
    const d = createDecipheriv('aes-256-ctr', this.encKey, iv);
    const plain = Buffer.concat([d.update(sealed.subarray(SEAL_OVERHEAD)), d.final()]);
    if (!timingSafeEqual(this.syntheticIv(ad, plain), iv)) throw notOurs('a sealed value does not open with this volume\'s key');
    return plain;
  }

  /** A value only this key gives, stored in the projection so a projection sealed with another key is caught at open. */
  keyCheck(): Buffer {
    return createHmac('sha256', this.macKey).update('bazil projection key check').digest().subarray(0, 16);
  }

  private syntheticIv(ad: Uint8Array, plain: Uint8Array): Buffer {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(ad.length);
    return createHmac('sha256', this.macKey).update(len).update(ad).update(plain).digest().subarray(0, SEAL_OVERHEAD);
  }
}

function notOurs(why: string): BazilError {
  return new BazilError(ErrorCodes.CORRUPT_METADATA, `projection: ${why}`);
}
