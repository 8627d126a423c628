// The name a conflict's loser gets, the same on every peer:
// `name.conflict-<writer hex prefix 8>-<hlc>`, then `-2`, `-3`, ... when even
// that is taken. The base is cut (at a UTF-8 character boundary) so the
// whole name stays within NAME_MAX_BYTES.

import { NAME_MAX_BYTES } from '../log/names.js';

export function conflictName(name: string, writer: Uint8Array, hlc: bigint, attempt: number): string {
  const suffix = `.conflict-${Buffer.from(writer).subarray(0, 4).toString('hex')}-${hlc}${attempt > 1 ? `-${attempt}` : ''}`;
  return cutUtf8(name, NAME_MAX_BYTES - Buffer.byteLength(suffix)) + suffix;
}

function cutUtf8(s: string, maxBytes: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= maxBytes) return s;
  let end = maxBytes;
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString('utf8');
}
