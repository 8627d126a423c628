// The rules for text an event carries: entry names, xattr names, symlink
// targets, labels.
//
// Names follow POSIX and Linux limits (NAME_MAX 255 and PATH_MAX 4096
// bytes, no NUL, no '/' inside a name, '.' and '..' reserved), measured in
// UTF-8 bytes. Text must also be well-formed Unicode: a lone surrogate has
// no UTF-8 form, so it would silently become U+FFFD on the way to bytes and
// two different names could collide.

import { BazilError, ErrorCodes } from '../../errors/index.js';

export type TextRule = 'name' | 'xattr-name' | 'symlink-target' | 'label';

export const NAME_MAX_BYTES = 255;
export const SYMLINK_TARGET_MAX_BYTES = 4095;

export interface TextProblem {
  /** True when the only fault is length, which POSIX reports as ENAMETOOLONG. */
  tooLong: boolean;
  reason: string;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with `value` under `rule`, or null when it is acceptable. */
export function textProblem(rule: TextRule, value: string): TextProblem | null {
  if (LONE_SURROGATE.test(value)) return { tooLong: false, reason: 'is not well-formed Unicode (a lone surrogate)' };
  if (value.includes('\0')) return { tooLong: false, reason: 'contains a NUL character' };
  const bytes = Buffer.byteLength(value, 'utf8');
  const max = rule === 'symlink-target' ? SYMLINK_TARGET_MAX_BYTES : NAME_MAX_BYTES;
  if (bytes === 0 && rule !== 'label') return { tooLong: false, reason: 'is empty' };
  if (rule === 'name') {
    if (value.includes('/')) return { tooLong: false, reason: "contains '/'" };
    if (value === '.' || value === '..') return { tooLong: false, reason: `is '${value}', which is reserved` };
  }
  if (bytes > max) return { tooLong: true, reason: `is ${bytes} bytes of UTF-8, more than ${max}` };
  return null;
}

/** Throws NAME_TOO_LONG or BAD_ARGUMENT when `value` breaks `rule`; for text a caller supplies. */
export function checkText(rule: TextRule, value: string, field = rule): void {
  const p = textProblem(rule, value);
  if (p === null) return;
  throw new BazilError(p.tooLong ? ErrorCodes.NAME_TOO_LONG : ErrorCodes.BAD_ARGUMENT, `${field} ${p.reason}`, { field });
}
