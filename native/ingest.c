// Bazil's ingest addon: the per-chunk and per-byte work of `bazil import`
// that JavaScript and node:crypto do worst (src/cas/ingest-native.ts,
// arena/shared-copy.ts).
//
// gearScan is the chunker's boundary search (src/cas/chunker.ts, Chunker
// .scan) byte for byte: V8 compiles the loop to about three cycles a byte,
// with a bounds check per load; in C it is about half that. copyInto copies
// to or from shared memory: V8 does that with a relaxed-atomic loop, several
// times slower than memcpy, and every new chunk leaves the seal worker
// through a shared output slab.
//
// chunkKeyInto and sealInto are the convergent sealing of a chunk
// (src/cas/convergent.ts: key = HMAC-SHA256(secret, plaintext), object =
// AES-256-GCM(key, zero nonce, plaintext) || tag, id = SHA-256(object)),
// written straight into the caller's buffers: through node:crypto each chunk
// cost an Hmac, a Cipheriv and a Hash object, a buffer per output and a copy
// into the slab.
//
// openInto is the reverse for a read (convergent.ts openObject): the
// read-ahead worker preads a sealed chunk into a slot of shared memory and
// decrypts it there in place, where node:crypto would return the plaintext
// in a fresh buffer to be copied back into the slot (with V8's slow copy
// into shared memory). Export's worker (src/volume/export-worker.ts) uses
// it the same way on the slabs it reads files' chunks into.
//
// All are optional: without this addon the JavaScript versions run, with
// the same results.

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "napi-util.h"

#ifdef BAZIL_HAVE_BLAKE3
#include "blake3.h"
#endif

// OpenSSL here is the one inside the node binary, which exports its
// symbols for addons: the addon links against nothing, so the same library
// (and its CPU dispatch) does the work as for node:crypto.

// The view's bytes and length, or false (with a TypeError thrown) when it is
// not a typed array of `want`.
static bool typed_bytes(napi_env env, napi_value value, napi_typedarray_type want,
                        void** data, size_t* length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  if (!is_typed) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected a typed array");
    return false;
  }
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  if (type != want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          want == napi_uint8_array ? "Expected a Uint8Array" : "Expected an Int32Array");
    return false;
  }
  return true;
}

// An integer argument in [min, max]; a RangeError otherwise.
static bool get_int(napi_env env, napi_value value, int64_t min, int64_t max, int64_t* out) {
  double number;
  if (napi_get_value_double(env, value, &number) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected a number");
    return false;
  }
  if (!(number >= (double)min && number <= (double)max) || number != (double)(int64_t)number) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "an integer argument is out of range");
    return false;
  }
  *out = (int64_t)number;
  return true;
}

// gearScan(gear, data, from, end, length, state): looks for the end of the
// current chunk in data[from, end), the chunk holding `length` bytes before
// `from`. state is an Int32Array [minSize, avgSize, maxSize, maskS, maskL,
// hash]. Returns the index just past the chunk's last byte, or -1 with the
// rolling hash saved in state[5].
static napi_value gear_scan(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "gearScan takes 6 arguments");
    return NULL;
  }
  void* gear_data;
  void* bytes;
  void* state_data;
  size_t gear_length, data_length, state_length;
  int64_t from, end, length;
  if (!typed_bytes(env, argv[0], napi_int32_array, &gear_data, &gear_length) ||
      !typed_bytes(env, argv[1], napi_uint8_array, &bytes, &data_length) ||
      !get_int(env, argv[2], 0, (int64_t)data_length, &from) ||
      !get_int(env, argv[3], from, (int64_t)data_length, &end) ||
      !get_int(env, argv[4], 0, INT32_MAX, &length) ||
      !typed_bytes(env, argv[5], napi_int32_array, &state_data, &state_length)) {
    return NULL;
  }
  if (gear_length != 256 || state_length != 6) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "a gear table is 256 words, the state 6");
    return NULL;
  }
  const uint32_t* gear = (const uint32_t*)gear_data;
  const uint8_t* data = (const uint8_t*)bytes;
  int32_t* state = (int32_t*)state_data;
  const int64_t min_size = state[0], avg_size = state[1], max_size = state[2];
  const uint32_t mask_s = (uint32_t)state[3], mask_l = (uint32_t)state[4];
  // `base` is where the chunk starts, as a (possibly negative) data index.
  const int64_t base = from - length;
  int64_t i = base + min_size > from ? base + min_size : from;
  int64_t cut = -1;
  if (i < end) {
    uint32_t h = (uint32_t)state[5];
    const int64_t normal_end = base + avg_size < end ? base + avg_size : end;
    for (; i < normal_end; i++) {
      h = (h << 1) + gear[data[i]];
      if ((h & mask_s) == 0) {
        cut = i + 1;
        goto done;
      }
    }
    const int64_t hard_end = base + max_size;
    const int64_t limit = hard_end < end ? hard_end : end;
    for (; i < limit; i++) {
      h = (h << 1) + gear[data[i]];
      if ((h & mask_l) == 0) {
        cut = i + 1;
        goto done;
      }
    }
    if (i == hard_end) {
      cut = hard_end;
      goto done;
    }
    state[5] = (int32_t)h;
  }
done:;
  napi_value result;
  NAPI_CALL(env, napi_create_int64(env, cut, &result));
  return result;
}

// copyInto(dst, at, src, start, end): copies src[start, end) to dst[at, ...)
// with memmove, whatever memory either view is on.
static napi_value copy_into(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "copyInto takes 5 arguments");
    return NULL;
  }
  void* dst;
  void* src;
  size_t dst_length, src_length;
  int64_t at, start, end;
  if (!typed_bytes(env, argv[0], napi_uint8_array, &dst, &dst_length) ||
      !get_int(env, argv[1], 0, (int64_t)dst_length, &at) ||
      !typed_bytes(env, argv[2], napi_uint8_array, &src, &src_length) ||
      !get_int(env, argv[3], 0, (int64_t)src_length, &start) ||
      !get_int(env, argv[4], start, (int64_t)src_length, &end)) {
    return NULL;
  }
  if (end - start > (int64_t)dst_length - at) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "the copy runs past the end of the target");
    return NULL;
  }
  memmove((uint8_t*)dst + at, (const uint8_t*)src + start, (size_t)(end - start));
  return NULL;
}

// A Uint8Array argument and the range [start, end) of it, checked.
static bool get_range(napi_env env, napi_value* argv, uint8_t** data, int64_t* start, int64_t* end) {
  void* bytes;
  size_t length;
  if (!typed_bytes(env, argv[0], napi_uint8_array, &bytes, &length) ||
      !get_int(env, argv[1], 0, (int64_t)length, start) ||
      !get_int(env, argv[2], *start, (int64_t)length, end)) {
    return false;
  }
  *data = (uint8_t*)bytes;
  return true;
}

// A Uint8Array argument with `need` bytes from argument `at` on, checked.
static bool get_slot(napi_env env, napi_value view, napi_value at_value, int64_t need, uint8_t** slot) {
  void* bytes;
  size_t length;
  int64_t at;
  if (!typed_bytes(env, view, napi_uint8_array, &bytes, &length) ||
      !get_int(env, at_value, 0, (int64_t)length, &at)) {
    return false;
  }
  if ((int64_t)length - at < need) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "the output runs past the end of its buffer");
    return false;
  }
  *slot = (uint8_t*)bytes + at;
  return true;
}

static bool crypto_failed(napi_env env) {
  napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", "an OpenSSL call failed");
  return false;
}

// The arguments (secret, src, start, end, dst, at) of chunkKeyInto and
// blake3KeyedInto, checked: a range of src, and 32 bytes of dst from `at`.
static bool get_key_args(napi_env env, napi_callback_info info, const char* usage, void** secret, size_t* secret_length,
                         uint8_t** src, int64_t* start, int64_t* end, uint8_t** slot) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", usage);
    return false;
  }
  return typed_bytes(env, argv[0], napi_uint8_array, secret, secret_length) &&
         get_range(env, argv + 1, src, start, end) &&
         get_slot(env, argv[4], argv[5], 32, slot);
}

// chunkKeyInto(secret, src, start, end, dst, at): dst[at, at + 32) =
// HMAC-SHA256(secret, src[start, end)): a chunk's key in content format 1.
static napi_value chunk_key_into(napi_env env, napi_callback_info info) {
  void* secret;
  size_t secret_length;
  uint8_t* src;
  uint8_t* slot;
  int64_t start, end;
  if (!get_key_args(env, info, "chunkKeyInto takes 6 arguments", &secret, &secret_length, &src, &start, &end, &slot)) return NULL;
  unsigned int out_length = 0;
  if (end - start > INT32_MAX ||
      HMAC(EVP_sha256(), secret, (int)secret_length, src + start, (size_t)(end - start), slot, &out_length) == NULL ||
      out_length != 32) {
    crypto_failed(env);
  }
  return NULL;
}

#ifdef BAZIL_HAVE_BLAKE3
// blake3KeyedInto(secret, src, start, end, dst, at): dst[at, at + 32) =
// BLAKE3 keyed with the 32-byte secret over src[start, end): a chunk's key
// in content format 2 (src/cas/chunk-keys.ts). BLAKE3's C code picks its
// SSE4.1, AVX2 or AVX-512 kernel by the CPU at run time.
static napi_value blake3_keyed_into(napi_env env, napi_callback_info info) {
  void* secret;
  size_t secret_length;
  uint8_t* src;
  uint8_t* slot;
  int64_t start, end;
  if (!get_key_args(env, info, "blake3KeyedInto takes 6 arguments", &secret, &secret_length, &src, &start, &end, &slot)) return NULL;
  if (secret_length != BLAKE3_KEY_LEN) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "a BLAKE3 key is 32 bytes");
    return NULL;
  }
  blake3_hasher hasher;
  blake3_hasher_init_keyed(&hasher, (const uint8_t*)secret);
  blake3_hasher_update(&hasher, src + start, (size_t)(end - start));
  blake3_hasher_finalize(&hasher, slot, BLAKE3_OUT_LEN);
  return NULL;
}

#endif

// sealInto(key, src, start, end, out, outAt, id, idAt): out[outAt, ...) =
// AES-256-GCM(key, zero nonce, src[start, end)) followed by its 16-byte tag;
// id[idAt, idAt + 32) = SHA-256 of those bytes.
static napi_value seal_into(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "sealInto takes 8 arguments");
    return NULL;
  }
  void* key;
  size_t key_length;
  uint8_t* src;
  uint8_t* out;
  uint8_t* id;
  int64_t start, end;
  if (!typed_bytes(env, argv[0], napi_uint8_array, &key, &key_length) ||
      !get_range(env, argv + 1, &src, &start, &end)) {
    return NULL;
  }
  const int64_t length = end - start;
  if (key_length != 32 || length > INT32_MAX - 16) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "an AES-256 key is 32 bytes, a chunk under 2 GiB");
    return NULL;
  }
  if (!get_slot(env, argv[4], argv[5], length + 16, &out) || !get_slot(env, argv[6], argv[7], 32, &id)) return NULL;
  static const unsigned char zero_iv[12] = {0};
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int n = 0, tail = 0;
  bool ok = ctx != NULL &&
            EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, (const unsigned char*)key, zero_iv) == 1 &&
            EVP_EncryptUpdate(ctx, out, &n, src + start, (int)length) == 1 &&
            EVP_EncryptFinal_ex(ctx, out + n, &tail) == 1 && n + tail == length &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + length) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok || SHA256(out, (size_t)length + 16, id) == NULL) crypto_failed(env);
  return NULL;
}

// openInto(key, src, start, end, out, outAt): authenticates src[start, end)
// as AES-256-GCM(key, zero nonce) ciphertext followed by its 16-byte tag and
// writes the plaintext (end - start - 16 bytes) to out[outAt, ...). The
// output may be the input itself (the same buffer, outAt == start), never
// overlap it otherwise. Returns false when the tag does not verify (the
// output then holds garbage); throws only for bad arguments.
static napi_value open_into(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "openInto takes 6 arguments");
    return NULL;
  }
  void* key;
  size_t key_length;
  uint8_t* src;
  uint8_t* out;
  int64_t start, end;
  if (!typed_bytes(env, argv[0], napi_uint8_array, &key, &key_length) ||
      !get_range(env, argv + 1, &src, &start, &end)) {
    return NULL;
  }
  const int64_t length = end - start - 16;
  if (key_length != 32 || length < 0 || length > INT32_MAX) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "an AES-256 key is 32 bytes, a sealed chunk 16 bytes to 2 GiB");
    return NULL;
  }
  if (!get_slot(env, argv[4], argv[5], length, &out)) return NULL;
  const uint8_t* in = src + start;
  if (out != in && out < in + length && in < out + length) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "the plaintext would partly overlap the ciphertext");
    return NULL;
  }
  // Taken before the decryption, which may overwrite what lies before it.
  unsigned char tag[16];
  memcpy(tag, in + length, 16);
  static const unsigned char zero_iv[12] = {0};
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int n = 0, tail = 0;
  bool set = ctx != NULL &&
             EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, (const unsigned char*)key, zero_iv) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
             EVP_DecryptUpdate(ctx, out, &n, in, (int)length) == 1 && n == length;
  // Final fails exactly when the tag does not match.
  bool authentic = set && EVP_DecryptFinal_ex(ctx, out + n, &tail) == 1 && tail == 0;
  EVP_CIPHER_CTX_free(ctx);
  if (!set) {
    crypto_failed(env);
    return NULL;
  }
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, authentic, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"gearScan", NULL, gear_scan, NULL, NULL, NULL, napi_enumerable, NULL},
      {"copyInto", NULL, copy_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"chunkKeyInto", NULL, chunk_key_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sealInto", NULL, seal_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openInto", NULL, open_into, NULL, NULL, NULL, napi_enumerable, NULL},
#ifdef BAZIL_HAVE_BLAKE3
      {"blake3KeyedInto", NULL, blake3_keyed_into, NULL, NULL, NULL, napi_enumerable, NULL},
#endif
  };
  NAPI_CALL(env, napi_define_properties(env, exports,
                                        sizeof properties / sizeof properties[0],
                                        properties));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
