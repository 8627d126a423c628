// Recently read and written projection records, in the clear, by record
// key: OverlayLevel answers a repeated point read from here without asking
// LevelDB, hashing the name into the stored key, or opening the sealed value.
// A metadata operation through the mount reads the same few records several
// times (the kernel's lookup, create's checks, the projector's prefetch, the
// stat after it), and those reads were the largest part of the daemon's time
// per operation after the event itself (docs/mount.md, "Round 4: metadata").
//
// Absence is cached too (null): a create starts with lookups of a name that
// is not there yet. The owner keeps the cache exact: every write of a key
// goes through it (OverlayLevel.batch), and a wholesale change of the
// database (ProjectionStore.clear) drops it.

import { RecentMap } from './recent-map.js';

/** Records kept per generation (two are kept); a record is ~100 bytes, its key ~40 to 300. */
const GENERATION_RECORDS = 16_384;

/** Values longer than this are not kept: the cache is for inodes and entries, not large xattrs or notes. */
const MAX_VALUE_BYTES = 1024;

/** Records in the clear by key, null for a key known absent (two generations: recent-map.ts). */
export class RecordCache {
  private readonly records = new RecentMap<Buffer | null>(GENERATION_RECORDS);

  /** The value (a copy: callers may write into it), null when known absent, undefined when not cached. */
  get(key: string): Buffer | null | undefined {
    const v = this.records.get(key);
    return v === undefined || v === null ? v : Buffer.from(v);
  }

  /** Records what the database now holds for `key` (null: nothing). */
  set(key: string, value: Buffer | null): void {
    if (value !== null && value.length > MAX_VALUE_BYTES) {
      this.forget(key);
      return;
    }
    // A copy: the caller's buffer may be written into after the call.
    this.records.set(key, value === null ? null : Buffer.from(value));
  }

  forget(key: string): void {
    this.records.delete(key);
  }

  clear(): void {
    this.records.clear();
  }
}
