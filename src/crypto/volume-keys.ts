// Keys of a volume, all derived from its one secret (docs/volume.md).
//
// Deriving every key with its own HKDF label means a leak of one (say the
// chunker's gear key, which shapes chunk sizes) reveals nothing of the
// others, and a peer needs to hold and transfer only the secret.

import { hkdfSync } from 'node:crypto';
import { BazilError, ErrorCodes } from '../../errors/index.js';

export const SECRET_LENGTH = 32;
export const VOLUME_ID_LENGTH = 32;

export interface VolumeKeys {
  /** The convergence secret: chunk keys are HMAC-SHA256(chunkKey, plaintext). */
  readonly chunkKey: Buffer;
  /** Seeds the content-defined chunker's gear table. */
  readonly gearKey: Buffer;
  /** Encrypts event bodies (AES-256-GCM). */
  readonly eventKey: Buffer;
  /** Seals the local projection's names and values (src/projection/cipher.ts). */
  readonly projectionKey: Buffer;
}

function derive(secret: Uint8Array, volumeId: Uint8Array, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, volumeId, `bazil/v1/${label}`, 32));
}

export function deriveVolumeKeys(secret: Uint8Array, volumeId: Uint8Array): VolumeKeys {
  if (secret.length !== SECRET_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `a volume secret is ${SECRET_LENGTH} bytes`);
  }
  if (volumeId.length !== VOLUME_ID_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `a volume id is ${VOLUME_ID_LENGTH} bytes`);
  }
  return {
    chunkKey: derive(secret, volumeId, 'chunk-key'),
    gearKey: derive(secret, volumeId, 'gear'),
    eventKey: derive(secret, volumeId, 'event'),
    projectionKey: derive(secret, volumeId, 'projection'),
  };
}
