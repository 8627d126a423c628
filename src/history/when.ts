// Points in a volume's history as users write them (`--at WHEN`, `diff A
// B`): a position in the log's merge order, a time, or a snapshot name.
// Parsing is strict: text that looks like a time but is not a valid one is
// an error here, never silently read as a snapshot name, so a typo in a
// date cannot name some other state.

import { BazilError, ErrorCodes } from '../../errors/index.js';
import { textProblem } from '../log/names.js';

export type Point =
  /** The volume as it is now: the whole log. */
  | { kind: 'now' }
  /** After the first `count` events of the merge order. */
  | { kind: 'position'; count: bigint }
  /** After every event whose clock reads at most `ms` (milliseconds since the epoch). */
  | { kind: 'time'; ms: number; text: string }
  | { kind: 'snapshot'; name: string };

const UNIT_MS: Record<string, number> = {
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
};

const RELATIVE = /^(\d+)\s*([a-z]+)\s+ago$/i;
const ABSOLUTE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;
/** Snapshot names cannot look like any other point, so a bare word is never ambiguous. */
const LOOKS_LIKE_TIME = /^\d|\sago$|^@/i;
const SNAPSHOT_PREFIX = 'snap:';

/**
 * Reads a point. `nowMs` is the wall clock relative times count back from
 * (passed in, so tests and callers agree on one instant).
 */
export function parseWhen(text: string, nowMs: number = Date.now()): Point {
  const t = text.trim();
  if (t === '') throw bad(text, 'is empty');
  if (t.toLowerCase() === 'now') return { kind: 'now' };
  if (t.startsWith('@')) {
    if (!/^@\d{1,19}$/.test(t)) throw bad(text, 'is not a position: write @N, N the number of events (e.g. @1234)');
    return { kind: 'position', count: BigInt(t.slice(1)) };
  }
  if (t.startsWith(SNAPSHOT_PREFIX)) return { kind: 'snapshot', name: checkSnapshotName(t.slice(SNAPSHOT_PREFIX.length)) };
  if (t.toLowerCase() === 'yesterday') return { kind: 'time', ms: nowMs - UNIT_MS.d!, text: t };
  const rel = RELATIVE.exec(t);
  if (rel !== null) {
    const unit = UNIT_MS[rel[2]!.toLowerCase()];
    if (unit === undefined) throw bad(text, `has an unknown unit '${rel[2]}' (use s, m, h, d or w, or their names)`);
    return { kind: 'time', ms: nowMs - Number(rel[1]) * unit, text: t };
  }
  const abs = ABSOLUTE.exec(t);
  if (abs !== null) return { kind: 'time', ms: absoluteMs(text, abs), text: t };
  if (LOOKS_LIKE_TIME.test(t)) {
    throw bad(text, "is not a time: write e.g. '2026-11-20 14:00', '2026-11-20T14:00:00Z', '3h ago', '2 days ago' or 'yesterday'");
  }
  return { kind: 'snapshot', name: checkSnapshotName(t) };
}

/** A snapshot name: a valid file name that cannot be read as another kind of point. */
export function checkSnapshotName(name: string): string {
  const p = textProblem('name', name);
  if (p !== null) {
    throw new BazilError(p.tooLong ? ErrorCodes.NAME_TOO_LONG : ErrorCodes.BAD_ARGUMENT, `snapshot name ${JSON.stringify(name)} ${p.reason}`, { name });
  }
  if (LOOKS_LIKE_TIME.test(name) || name.toLowerCase() === 'now' || name.toLowerCase() === 'yesterday' || name.includes(':')) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `snapshot name ${JSON.stringify(name)} could be read as a time or position: start it with a letter, without ':' or a trailing ' ago'`, { name });
  }
  return name;
}

/** How a point is shown in messages and --json. */
export function describePoint(p: Point): string {
  switch (p.kind) {
    case 'now': return 'now';
    case 'position': return `@${p.count}`;
    case 'time': return `${p.text} (${new Date(p.ms).toISOString()})`;
    case 'snapshot': return `snapshot ${p.name}`;
  }
}

function absoluteMs(text: string, m: RegExpExecArray): number {
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [hour, minute, second] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  const daysInMonth = month >= 1 && month <= 12 ? new Date(Date.UTC(year, month, 0)).getUTCDate() : 0;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    throw bad(text, 'is not a valid date and time');
  }
  const zone = m[8];
  if (zone === undefined) {
    // No zone written: local time, as date(1) and git read it.
    return new Date(year, month - 1, day, hour, minute, second, ms).getTime();
  }
  let offsetMin = 0;
  if (zone.toUpperCase() !== 'Z') {
    const digits = zone.replace(':', '');
    const oh = Number(digits.slice(1, 3));
    const om = Number(digits.slice(3, 5));
    if (oh > 23 || om > 59) throw bad(text, 'has an invalid time zone offset');
    offsetMin = (digits[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMin * 60_000;
}

function bad(text: string, why: string): BazilError {
  return new BazilError(ErrorCodes.BAD_ARGUMENT, `point in history ${JSON.stringify(text)} ${why}`, { when: text });
}
