// Helpers shared by Bazil's Node-API addons (bazil_native.c, xattr.c):
// error objects shaped like Node's fs errors and argument checks. Functions
// are static inline so each addon compiles only what it uses.

#ifndef BAZIL_NAPI_UTIL_H
#define BAZIL_NAPI_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <node_api.h>

// Number.MAX_SAFE_INTEGER: every JS number up to it is an exact integer, and
// the sum of two of them still fits an off_t, so no range check can overflow.
#define MAX_SAFE_INTEGER 9007199254740991.0

// Evaluates a Node-API call; on failure makes sure an exception is pending
// (Node-API leaves one in most cases, not all) and returns NULL to JS.
#define NAPI_CALL(env, call)                                                   \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      throw_last_napi_error(env);                                              \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

static inline void throw_last_napi_error(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  const char* message = info != NULL && info->error_message != NULL
                            ? info->error_message
                            : "Node-API call failed";
  napi_throw_error(env, NULL, message);
}

// The symbolic name of an errno value, as Node's fs errors spell it in
// `code`. Only the values the addons' calls can return are listed; anything
// else gets Node's own fallback, 'UNKNOWN', and still carries its number.
static inline const char* errno_name(int err) {
  switch (err) {
    case E2BIG: return "E2BIG";
    case EACCES: return "EACCES";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EDQUOT: return "EDQUOT";
    case EEXIST: return "EEXIST";
    case EFAULT: return "EFAULT";
    case EFBIG: return "EFBIG";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case ELOOP: return "ELOOP";
    case EMFILE: return "EMFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
#ifdef ENODATA
    case ENODATA: return "ENODATA";
#endif
#if defined(ENOATTR) && (!defined(ENODATA) || ENOATTR != ENODATA)
    case ENOATTR: return "ENODATA";
#endif
    case ENFILE: return "ENFILE";
    case ENODEV: return "ENODEV";
    case ENOENT: return "ENOENT";
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case ENOSYS: return "ENOSYS";
    case ENOTDIR: return "ENOTDIR";
    case EOPNOTSUPP: return "EOPNOTSUPP";
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
    case ENOTSUP: return "ENOTSUP";
#endif
    case EOVERFLOW: return "EOVERFLOW";
    case EPERM: return "EPERM";
    case ERANGE: return "ERANGE";
    case EROFS: return "EROFS";
    case ESPIPE: return "ESPIPE";
    case ETXTBSY: return "ETXTBSY";
    default: return "UNKNOWN";
  }
}

// Throws an Error shaped like the ones Node's fs module throws, so callers
// map both kinds the same way: message "ENODATA: No data available,
// lgetxattr '/tmp/f'", `code` the errno name, `errno` the negated errno
// value, `syscall`, and `path` when one is given (may be NULL).
static inline napi_value throw_errno_at(napi_env env, int err, const char* syscall, const char* path) {
  const char* name = errno_name(err);
  char message[512];
  if (path != NULL) {
    snprintf(message, sizeof message, "%s: %s, %s '%s'", name, strerror(err), syscall, path);
  } else {
    snprintf(message, sizeof message, "%s: %s, %s", name, strerror(err), syscall);
  }
  napi_value code_value, message_value, error, errno_value, syscall_value, path_value;
  NAPI_CALL(env, napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_value));
  NAPI_CALL(env, napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value));
  NAPI_CALL(env, napi_create_error(env, code_value, message_value, &error));
  NAPI_CALL(env, napi_create_int32(env, -err, &errno_value));
  NAPI_CALL(env, napi_set_named_property(env, error, "errno", errno_value));
  NAPI_CALL(env, napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value));
  NAPI_CALL(env, napi_set_named_property(env, error, "syscall", syscall_value));
  if (path != NULL) {
    NAPI_CALL(env, napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &path_value));
    NAPI_CALL(env, napi_set_named_property(env, error, "path", path_value));
  }
  napi_throw(env, error);
  return NULL;
}

static inline napi_value throw_errno(napi_env env, int err, const char* syscall) {
  return throw_errno_at(env, err, syscall, NULL);
}

// Reads the first `expected` arguments; throws ERR_MISSING_ARGS when fewer came.
static inline bool get_args(napi_env env, napi_callback_info info, size_t expected,
                            napi_value* argv) {
  size_t argc = expected;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  if (argc < expected) {
    char message[64];
    snprintf(message, sizeof message, "Expected %zu arguments, received %zu", expected, argc);
    napi_throw_type_error(env, "ERR_MISSING_ARGS", message);
    return false;
  }
  return true;
}

#endif
