// Loader for the small native addon (native/bazil_native.c): hole punching
// and read-only memory maps, which Node's fs module does not offer, and the
// XXH3 record checksum without hash-wasm's per-call overhead.
//
// The addon is optional: loadNative() returns null when it is not built, and
// callers fall back to what plain fs offers (pread instead of a map; no
// reclaiming of dead records' blocks short of rewriting the file).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeBindings {
  /**
   * fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length):
   * the range reads back as zeros, whole blocks inside it are freed, the size
   * is unchanged. A zero length does nothing. A failure throws an Error
   * shaped like Node's fs errors: `code` the errno name ('EBADF',
   * 'EOPNOTSUPP'), `errno` the negated errno value, `syscall`. Arguments that
   * are not integers in [0, 2^53) throw a TypeError or RangeError.
   */
  punchHole(fd: number, offset: number, length: number): void;
  /**
   * mmap(PROT_READ, MAP_SHARED) of the first `length` bytes of fd, advised
   * MADV_RANDOM, as an external ArrayBuffer that munmaps when collected. The
   * map outlives fd. Length 0 gives an empty ArrayBuffer without a syscall; a
   * length past the file's end throws a RangeError (touching such pages would
   * kill the process with SIGBUS, as would truncating the file while mapped).
   * Other failures throw like punchHole.
   */
  mapFile(fd: number, length: number): ArrayBuffer;
  /** XXH3-64 of src[start, end) into dst[at, at + 8), canonical (big-endian) order. */
  xxh3Into(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void;
  /** Whether buf[at, at + 8) is the canonical XXH3-64 of buf[start, end). */
  xxh3Matches(buf: Uint8Array, start: number, end: number, at: number): boolean;
  /** Fills the checksum of every record frame in buf[start, end) (frames back to back); RangeError if one overruns. */
  xxh3Frames(buf: Uint8Array, start: number, end: number): void;
  /** sync_file_range(SYNC_FILE_RANGE_WRITE): starts writeback of a range without waiting; durability still needs fdatasync. False where unsupported. */
  startWriteback(fd: number, offset: number, length: number): boolean;
}

const ADDON_FILE = 'bazil_native.node';

// undefined until the first load attempt; null once it found no usable addon.
let cached: NativeBindings | null | undefined;

/**
 * The native bindings, or null when the addon is not built or the
 * environment sets BAZIL_NO_NATIVE=1 (which tests and users use to exercise
 * the fallbacks). The addon is loaded once; the variable is read every call.
 */
export function loadNative(): NativeBindings | null {
  if (process.env['BAZIL_NO_NATIVE'] === '1') return null;
  if (cached === undefined) cached = load();
  return cached;
}

function load(): NativeBindings | null {
  const path = findAddon();
  if (path === null) return null;
  try {
    const addon: unknown = createRequire(import.meta.url)(path);
    if (!isBindings(addon)) throw new Error('the module does not export every expected function (rebuild it: npm run build:native)');
    return addon;
  } catch (err) {
    // A build that exists but does not load (another architecture, a copy
    // from another machine) degrades to the fallbacks like a missing build,
    // but says why once, since it is almost certainly a mistake.
    const reason = err instanceof Error ? err.message : String(err);
    process.emitWarning(`Bazil's native addon at ${path} failed to load: ${reason}`, {
      code: 'BAZIL_NATIVE_LOAD_FAILED',
    });
    return null;
  }
}

/**
 * The built addon file `build/Release/<file>` of this package, searched
 * upward from this module: compiled, it runs from dist/arena/ with the
 * build two levels up; run from source, one level. Null when not built.
 * Other addons of the package (src/fs/xattr.ts) use it too.
 */
export function findAddon(file = ADDON_FILE): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'build', 'Release', file);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function isBindings(value: unknown): value is NativeBindings {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['punchHole'] === 'function' && typeof v['mapFile'] === 'function' &&
    typeof v['xxh3Into'] === 'function' && typeof v['xxh3Matches'] === 'function' && typeof v['xxh3Frames'] === 'function' &&
    typeof v['startWriteback'] === 'function';
}
