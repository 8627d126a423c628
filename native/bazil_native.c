// Bazil's native addon: the two system calls the arena engine needs and
// Node's fs module does not offer.
//
// punchHole frees the blocks of dead records inside a sealed arena while the
// arena keeps its size and every live record keeps its offset. mapFile maps a
// sealed (immutable) arena read-only, so lookups read the page cache without
// a copy or a system call per read.
//
// Written against plain Node-API (C, NAPI_VERSION 8) so one build serves
// every Node release from 20 on without recompiling.

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <node_api.h>

#include "napi-util.h"

// XXH3 inlined from Debian's libxxhash-dev header: the record checksum of
// the arena format, computed here because hash-wasm's per-call cost (~0.8 us
// for a 1 KiB record) made checksums the bulk of append and read time.
#define XXH_INLINE_ALL
#include <xxhash.h>

// Reads argument `value` as an integer in [0, max]. Throws a TypeError for a
// non-number and a RangeError for NaN, fractions, negatives and values past
// `max`, with the codes Node's own validators use. Returns false after
// throwing.
static bool get_index(napi_env env, napi_value value, const char* name, double max,
                      int64_t* out) {
  char message[160];
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  if (type != napi_number) {
    snprintf(message, sizeof message, "The \"%s\" argument must be of type number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  // napi_get_value_int64 alone would truncate 1.5 to 1 and NaN to 0, so the
  // checks run on the double and the conversion happens only after them.
  double number;
  if (napi_get_value_double(env, value, &number) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  if (!isfinite(number) || number != floor(number) || number < 0 || number > max) {
    snprintf(message, sizeof message,
             "The value of \"%s\" is out of range. It must be an integer >= 0 and <= %.0f. "
             "Received %g",
             name, max, number);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  if (napi_get_value_int64(env, value, out) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  return true;
}

// punchHole(fd, offset, length): deallocates [offset, offset + length) and
// keeps the file size. The range reads back as zeros; partial blocks at
// either end are zeroed rather than freed. A zero length does nothing.
static napi_value punch_hole(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, offset, length;
  if (!get_args(env, info, 3, argv) ||
      !get_index(env, argv[0], "fd", INT32_MAX, &fd) ||
      !get_index(env, argv[1], "offset", MAX_SAFE_INTEGER, &offset) ||
      !get_index(env, argv[2], "length", MAX_SAFE_INTEGER, &length)) {
    return NULL;
  }
  if (length == 0) return NULL;
#ifdef __linux__
  int rc;
  // The file system may be interrupted by a signal partway through a large
  // range; punching the same range again is harmless.
  do {
    rc = fallocate((int)fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
                   (off_t)length);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return throw_errno(env, errno, "fallocate");
  return NULL;
#else
  return throw_errno(env, EOPNOTSUPP, "fallocate");
#endif
}

// startWriteback(fd, offset, length): asks the kernel to begin writing the
// range's dirty pages to the device, without waiting
// (sync_file_range(SYNC_FILE_RANGE_WRITE)). It makes nothing durable: a
// later fdatasync still is the commit. It lets the device work while the
// caller goes on appending, where a background fdatasync would need the
// event loop to notice its completion. Best effort: returns false where the
// call is not supported.
static napi_value start_writeback(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, offset, length;
  if (!get_args(env, info, 3, argv) ||
      !get_index(env, argv[0], "fd", INT32_MAX, &fd) ||
      !get_index(env, argv[1], "offset", MAX_SAFE_INTEGER, &offset) ||
      !get_index(env, argv[2], "length", MAX_SAFE_INTEGER, &length)) {
    return NULL;
  }
  bool ok = false;
#ifdef __linux__
  int rc;
  do {
    rc = sync_file_range((int)fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL && errno != ESPIPE) {
    return throw_errno(env, errno, "sync_file_range");
  }
  ok = rc == 0;
#endif
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, ok, &result));
  return result;
}

static void unmap_finalizer(napi_env env, void* data, void* hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

// mapFile(fd, length): a read-only shared map of the file's first `length`
// bytes as an external ArrayBuffer, unmapped when the buffer is collected.
// The map outlives the descriptor, so the caller may close fd at once.
static napi_value map_file(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t fd, length;
  if (!get_args(env, info, 2, argv) ||
      !get_index(env, argv[0], "fd", INT32_MAX, &fd) ||
      !get_index(env, argv[1], "length", MAX_SAFE_INTEGER, &length)) {
    return NULL;
  }

  napi_value result;
  if (length == 0) {
    // mmap rejects a zero length, and there is nothing to map anyway.
    NAPI_CALL(env, napi_create_arraybuffer(env, 0, NULL, &result));
    return result;
  }
  if ((uint64_t)length > SIZE_MAX) return throw_errno(env, ENOMEM, "mmap");

  // Touching a mapped page past the end of the file raises SIGBUS and kills
  // the process, so a map longer than the file is refused here instead.
  struct stat st;
  if (fstat((int)fd, &st) != 0) return throw_errno(env, errno, "fstat");
  if (length > (int64_t)st.st_size) {
    char message[160];
    snprintf(message, sizeof message,
             "The value of \"length\" is out of range. It must be <= the file size %lld. "
             "Received %lld",
             (long long)st.st_size, (long long)length);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return NULL;
  }

  size_t size = (size_t)length;
  void* addr = mmap(NULL, size, PROT_READ, MAP_SHARED, (int)fd, 0);
  if (addr == MAP_FAILED) return throw_errno(env, errno, "mmap");
  // Sealed arenas are read by key through a hash index, so read-ahead past
  // the record would only evict useful pages. The advice is best effort.
  madvise(addr, size, MADV_RANDOM);

  napi_status status = napi_create_external_arraybuffer(
      env, addr, size, unmap_finalizer, (void*)(uintptr_t)size, &result);
  if (status != napi_ok) {
    munmap(addr, size);
    throw_last_napi_error(env);
    return NULL;
  }
  return result;
}

// Resolves argument `value` as a Uint8Array (or Buffer) and checks that
// [start, end) lies inside it. Throws and returns false otherwise.
static bool get_bytes_range(napi_env env, napi_value value, napi_value start_value,
                            napi_value end_value, const uint8_t** data, int64_t* start,
                            int64_t* end) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected a Uint8Array");
    return false;
  }
  napi_typedarray_type type;
  size_t length;
  void* base;
  if (napi_get_typedarray_info(env, value, &type, &length, &base, NULL, NULL) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected a Uint8Array");
    return false;
  }
  if (!get_index(env, start_value, "start", (double)length, start) ||
      !get_index(env, end_value, "end", (double)length, end)) {
    return false;
  }
  if (*end < *start) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "end must not be before start");
    return false;
  }
  *data = (const uint8_t*)base;
  return true;
}

// Reads the common arguments of the XXH3 calls: (src, start, end) and the
// 8-byte slot at dst[at] (dst given by argument `dst_index`, at by
// `at_index`), bounds-checked; computes the canonical XXH3-64 of the range.
static bool xxh3_args(napi_env env, napi_value* argv, size_t dst_index, size_t at_index,
                      uint8_t** slot, XXH64_canonical_t* digest) {
  const uint8_t* src;
  const uint8_t* dst;
  int64_t start, end, at, at_end;
  if (!get_bytes_range(env, argv[0], argv[1], argv[2], &src, &start, &end)) return false;
  if (!get_index(env, argv[at_index], "at", MAX_SAFE_INTEGER, &at)) return false;
  napi_value at_end_value;
  if (napi_create_int64(env, at + 8, &at_end_value) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  if (!get_bytes_range(env, argv[dst_index], argv[at_index], at_end_value, &dst, &at, &at_end)) {
    return false;
  }
  XXH64_canonicalFromHash(digest, XXH3_64bits(src + start, (size_t)(end - start)));
  *slot = (uint8_t*)dst + at;
  return true;
}

// xxh3Into(src, start, end, dst, at): XXH3-64 of src[start, end) written to
// dst[at, at + 8) in canonical (big-endian) order.
static napi_value xxh3_into(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint8_t* slot;
  XXH64_canonical_t c;
  if (!get_args(env, info, 5, argv) || !xxh3_args(env, argv, 3, 4, &slot, &c)) return NULL;
  memcpy(slot, c.digest, 8);
  return NULL;
}

// xxh3Matches(buf, start, end, at): whether buf[at, at + 8) holds the
// canonical XXH3-64 of buf[start, end).
static napi_value xxh3_matches(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint8_t* slot;
  XXH64_canonical_t c;
  if (!get_args(env, info, 4, argv) || !xxh3_args(env, argv, 0, 3, &slot, &c)) return NULL;
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, memcmp(slot, c.digest, 8) == 0, &result));
  return result;
}

// xxh3Frames(buf, start, end): buf[start, end) holds back-to-back record
// frames (len u32 LE | type | key 32 | payload | checksum 8) whose checksum
// fields are still to be filled; fills them all in one call. Appends frame
// records in bulk, and one call per megabyte costs far less than one per
// record (the per-call overhead of N-API is several times the hashing of a
// 1 KiB record).
static napi_value xxh3_frames(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  const uint8_t* buf;
  int64_t start, end;
  if (!get_args(env, info, 3, argv) ||
      !get_bytes_range(env, argv[0], argv[1], argv[2], &buf, &start, &end)) {
    return NULL;
  }
  uint8_t* p = (uint8_t*)buf;
  int64_t at = start;
  while (at < end) {
    if (end - at < 45) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "a frame runs past the end of the range");
      return NULL;
    }
    uint32_t len = (uint32_t)p[at] | ((uint32_t)p[at + 1] << 8) | ((uint32_t)p[at + 2] << 16) |
                   ((uint32_t)p[at + 3] << 24);
    int64_t payload_end = at + 37 + (int64_t)len;
    if (payload_end + 8 > end) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "a frame runs past the end of the range");
      return NULL;
    }
    XXH64_canonical_t c;
    XXH64_canonicalFromHash(&c, XXH3_64bits(p + at, (size_t)(payload_end - at)));
    memcpy(p + payload_end, c.digest, 8);
    at = payload_end + 8;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"punchHole", NULL, punch_hole, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mapFile", NULL, map_file, NULL, NULL, NULL, napi_enumerable, NULL},
      {"xxh3Into", NULL, xxh3_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"xxh3Matches", NULL, xxh3_matches, NULL, NULL, NULL, napi_enumerable, NULL},
      {"xxh3Frames", NULL, xxh3_frames, NULL, NULL, NULL, napi_enumerable, NULL},
      {"startWriteback", NULL, start_writeback, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports,
                                        sizeof properties / sizeof properties[0],
                                        properties));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
