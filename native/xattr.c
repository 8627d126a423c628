// Bazil's extended-attribute addon: list, get, set and remove the xattrs
// of a path, which Node's fs module does not offer. Import and export use
// it to carry xattrs between the local filesystem and a volume.
//
// Only the l-variants are used (llistxattr, lgetxattr, lsetxattr,
// lremovexattr): a symlink's own attributes are read and written, never its
// target's. Paths and names are JS strings (UTF-8), values are bytes.
//
// Written against plain Node-API (C, NAPI_VERSION 8) like bazil_native.c,
// with errors shaped like Node's fs errors (`code`, `errno`, `syscall`,
// `path`).

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#ifdef __linux__
#include <sys/xattr.h>
#endif

#include <node_api.h>

#include "napi-util.h"

// A value may not grow between the size query and the read more often than
// this before the call gives up with ERANGE (someone rewriting it in a loop).
#define MAX_ATTEMPTS 8

// Reads argument `value` as a string into a new NUL-terminated UTF-8
// buffer (freed by the caller). A non-string is a TypeError, an empty
// string or one with a NUL inside (which C would cut short) is rejected
// like Node's own path validation does. Returns NULL after throwing.
static char* get_string(napi_env env, napi_value value, const char* name) {
  char message[160];
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) {
    throw_last_napi_error(env);
    return NULL;
  }
  if (type != napi_string) {
    snprintf(message, sizeof message, "The \"%s\" argument must be of type string", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return NULL;
  }
  size_t length;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    throw_last_napi_error(env);
    return NULL;
  }
  char* text = malloc(length + 1);
  if (text == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  size_t copied;
  if (napi_get_value_string_utf8(env, value, text, length + 1, &copied) != napi_ok) {
    free(text);
    throw_last_napi_error(env);
    return NULL;
  }
  if (copied == 0 || strlen(text) != copied) {
    free(text);
    snprintf(message, sizeof message,
             "The argument \"%s\" must be a non-empty string without null bytes", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", message);
    return NULL;
  }
  return text;
}

// Reads (path, name) from argv[0] and argv[1] into strings the caller frees;
// false (with an exception pending and nothing to free) when either is bad.
static bool get_path_and_name(napi_env env, napi_value* argv, char** path, char** name) {
  *path = get_string(env, argv[0], "path");
  if (*path == NULL) return false;
  *name = get_string(env, argv[1], "name");
  if (*name == NULL) {
    free(*path);
    return false;
  }
  return true;
}

// list(path): the names of path's extended attributes (those the caller
// may see), in the order the file system gives them.
static napi_value xattr_list(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char* path = get_string(env, argv[0], "path");
  if (path == NULL) return NULL;
#ifdef __linux__
  char* names = NULL;
  ssize_t size = 0;
  for (int attempt = 0;; attempt++) {
    // Size query first; the list may grow before the read, hence the retry.
    ssize_t wanted = llistxattr(path, NULL, 0);
    if (wanted < 0) {
      int err = errno;
      napi_value r = throw_errno_at(env, err, "llistxattr", path);
      free(path);
      return r;
    }
    if (wanted == 0) {
      size = 0;
      break;
    }
    char* grown = realloc(names, (size_t)wanted);
    if (grown == NULL) {
      free(names);
      napi_value r = throw_errno_at(env, ENOMEM, "llistxattr", path);
      free(path);
      return r;
    }
    names = grown;
    size = llistxattr(path, names, (size_t)wanted);
    if (size >= 0) break;
    int err = errno;
    if (err != ERANGE || attempt + 1 >= MAX_ATTEMPTS) {
      free(names);
      napi_value r = throw_errno_at(env, err, "llistxattr", path);
      free(path);
      return r;
    }
  }
  free(path);

  napi_value result;
  if (napi_create_array(env, &result) != napi_ok) {
    free(names);
    throw_last_napi_error(env);
    return NULL;
  }
  uint32_t index = 0;
  for (ssize_t at = 0; at < size;) {
    size_t length = strnlen(names + at, (size_t)(size - at));
    if (length > 0) {
      napi_value name;
      if (napi_create_string_utf8(env, names + at, length, &name) != napi_ok ||
          napi_set_element(env, result, index++, name) != napi_ok) {
        free(names);
        throw_last_napi_error(env);
        return NULL;
      }
    }
    at += (ssize_t)length + 1;
  }
  free(names);
  return result;
#else
  napi_value r = throw_errno_at(env, EOPNOTSUPP, "llistxattr", path);
  free(path);
  return r;
#endif
}

// get(path, name): the value of one attribute as a Buffer (empty for an
// empty value). A missing attribute throws ENODATA.
static napi_value xattr_get(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char* path;
  char* name;
  if (!get_path_and_name(env, argv, &path, &name)) return NULL;
  napi_value result = NULL;
#ifdef __linux__
  char* value = NULL;
  ssize_t size = 0;
  for (int attempt = 0;; attempt++) {
    ssize_t wanted = lgetxattr(path, name, NULL, 0);
    if (wanted < 0) {
      throw_errno_at(env, errno, "lgetxattr", path);
      goto done;
    }
    if (wanted == 0) {
      size = 0;
      break;
    }
    char* grown = realloc(value, (size_t)wanted);
    if (grown == NULL) {
      throw_errno_at(env, ENOMEM, "lgetxattr", path);
      goto done;
    }
    value = grown;
    size = lgetxattr(path, name, value, (size_t)wanted);
    if (size >= 0) break;
    int err = errno;
    if (err != ERANGE || attempt + 1 >= MAX_ATTEMPTS) {
      throw_errno_at(env, err, "lgetxattr", path);
      goto done;
    }
  }
  if (napi_create_buffer_copy(env, (size_t)size, size > 0 ? value : "", NULL, &result) != napi_ok) {
    result = NULL;
    throw_last_napi_error(env);
  }
done:
  free(value);
#else
  throw_errno_at(env, EOPNOTSUPP, "lgetxattr", path);
#endif
  free(name);
  free(path);
  return result;
}

// set(path, name, value): creates or replaces one attribute (flags 0).
static napi_value xattr_set(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  bool is_typed = false;
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = NULL;
  if (napi_is_typedarray(env, argv[2], &is_typed) != napi_ok) {
    throw_last_napi_error(env);
    return NULL;
  }
  if (is_typed && napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL) != napi_ok) {
    throw_last_napi_error(env);
    return NULL;
  }
  if (!is_typed || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "The \"value\" argument must be an instance of Uint8Array");
    return NULL;
  }
  char* path;
  char* name;
  if (!get_path_and_name(env, argv, &path, &name)) return NULL;
#ifdef __linux__
  // An empty typed array may have no backing store; the kernel still wants
  // a valid pointer for a zero-length value.
  static const char empty = 0;
  if (lsetxattr(path, name, length > 0 ? data : &empty, length, 0) != 0) {
    throw_errno_at(env, errno, "lsetxattr", path);
  }
#else
  (void)data;
  (void)length;
  throw_errno_at(env, EOPNOTSUPP, "lsetxattr", path);
#endif
  free(name);
  free(path);
  return NULL;
}

// remove(path, name): removes one attribute; a missing one throws ENODATA.
static napi_value xattr_remove(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char* path;
  char* name;
  if (!get_path_and_name(env, argv, &path, &name)) return NULL;
#ifdef __linux__
  if (lremovexattr(path, name) != 0) throw_errno_at(env, errno, "lremovexattr", path);
#else
  throw_errno_at(env, EOPNOTSUPP, "lremovexattr", path);
#endif
  free(name);
  free(path);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"list", NULL, xattr_list, NULL, NULL, NULL, napi_enumerable, NULL},
      {"get", NULL, xattr_get, NULL, NULL, NULL, napi_enumerable, NULL},
      {"set", NULL, xattr_set, NULL, NULL, NULL, napi_enumerable, NULL},
      {"remove", NULL, xattr_remove, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports,
                                        sizeof properties / sizeof properties[0],
                                        properties));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
