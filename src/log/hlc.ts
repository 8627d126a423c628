// Hybrid logical clock (Kulkarni et al.): wall-clock milliseconds plus a
// 16-bit counter, packed as `ms · 2^16 + counter` into one unsigned integer.
//
// The packed value is a bigint: today's milliseconds times 2^16 already
// exceed 2^53, so a JavaScript number would round it. Packed this way the
// clock orders as the pair (ms, counter) does, and the classic update rules
// become one `max`: sending is max(prev + 1, wall · 2^16), receiving is
// max(local + 1, remote + 1, wall · 2^16). A counter that would pass 0xffff
// carries into the milliseconds, which keeps the clock strictly monotonic
// however many events one millisecond holds.
//
// The wall clock is always passed in: applying and replaying events must
// read no clock (DESIGN.md, invariant 1), and tests choose their own time.

import { BazilError, ErrorCodes } from '../../errors/index.js';

export type Hlc = bigint;

const HLC_COUNTER_BITS = 16n;
/** Milliseconds fit in 48 bits (until the year 10889), so a packed clock fits a CBOR uint64. */
export const MAX_HLC_MS = 2 ** 48 - 1;
export const MAX_HLC: Hlc = (1n << 64n) - 1n;

export function packHlc(ms: number, counter: number): Hlc {
  checkWall(ms);
  if (!Number.isInteger(counter) || counter < 0 || counter > 0xffff) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `an HLC counter is 0..65535, got ${counter}`);
  }
  return (BigInt(ms) << HLC_COUNTER_BITS) | BigInt(counter);
}

export function hlcMs(h: Hlc): number {
  return Number(h >> HLC_COUNTER_BITS);
}

export function hlcCounter(h: Hlc): number {
  return Number(h & 0xffffn);
}

/**
 * The clock as a time in nanoseconds since the epoch, for times an event
 * sets (mtime, ctime): the counter fills the sub-millisecond digits, so
 * events of one millisecond still get distinct, ordered times.
 */
export function hlcToNanoseconds(h: Hlc): bigint {
  return (h >> HLC_COUNTER_BITS) * 1_000_000n + (h & 0xffffn);
}

/** The clock of a local event: after `prev` and no earlier than the wall clock. */
export function now(prev: Hlc, wallMs: number): Hlc {
  checkWall(wallMs);
  return bounded(max(prev + 1n, BigInt(wallMs) << HLC_COUNTER_BITS));
}

/**
 * The clock after seeing `remote`: after both clocks and no earlier than
 * the wall clock. With `maxDriftMs`, a remote clock further ahead of the
 * wall clock than that is refused (CLOCK_SKEW) instead of dragging the
 * local clock into the future.
 */
export function receive(local: Hlc, remote: Hlc, wallMs: number, maxDriftMs?: number): Hlc {
  checkWall(wallMs);
  if (maxDriftMs !== undefined) checkDrift(remote, wallMs, maxDriftMs);
  return bounded(max(max(local, remote) + 1n, BigInt(wallMs) << HLC_COUNTER_BITS));
}

/** Throws CLOCK_SKEW when `h` lies more than `maxDriftMs` after `wallMs`. */
export function checkDrift(h: Hlc, wallMs: number, maxDriftMs: number): void {
  const ahead = hlcMs(h) - wallMs;
  if (ahead > maxDriftMs) {
    throw new BazilError(ErrorCodes.CLOCK_SKEW, `a clock reads ${ahead} ms ahead of this machine's (at most ${maxDriftMs} allowed)`, { aheadMs: ahead, maxDriftMs });
  }
}

function checkWall(ms: number): void {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_HLC_MS) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `a wall-clock time is a whole number of milliseconds in 0..2^48-1, got ${ms}`);
  }
}

function bounded(h: Hlc): Hlc {
  if (h > MAX_HLC) throw new BazilError(ErrorCodes.CLOCK_SKEW, 'the hybrid logical clock would pass its 64-bit range');
  return h;
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
