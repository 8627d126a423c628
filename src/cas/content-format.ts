// A volume's content format: how its chunks' keys are taken (chunk-keys.ts,
// docs/crypto.md "Content formats"). Named by the volume's create-volume
// event (src/log/event.ts), so every replica of the volume agrees; a volume
// keeps its format for life. Its own module, with no imports, so the event
// codec can check the field without loading the content code.

export type ContentFormat = 1 | 2;
/** HMAC-SHA256 chunk keys: volumes whose create-volume event names no format. */
export const DEFAULT_CONTENT_FORMAT: ContentFormat = 1;
/** Keyed-BLAKE3 chunk keys: what `bazil volume create` gives a new volume. */
export const NEW_VOLUME_CONTENT_FORMAT: ContentFormat = 2;

export function isContentFormat(value: unknown): value is ContentFormat {
  return value === 1 || value === 2;
}
