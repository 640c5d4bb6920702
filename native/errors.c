/* See errors.h. */
#define _GNU_SOURCE
#include "errors.h"

#include <stdio.h>
#include <string.h>

napi_value pxebox_errno_error(napi_env env, int err, const char *syscall) {
  /* strerrorname_np (glibc 2.32) knows every errno of this libc, where a hand-written table went stale. */
  const char *name = strerrorname_np(err);
  char message[192];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_value code, msg, error, number, call;
  if (napi_create_string_utf8(env, name != NULL ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_error(env, code, msg, &error) != napi_ok || napi_create_int32(env, err, &number) != napi_ok ||
      napi_set_named_property(env, error, "errno", number) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &call) != napi_ok ||
      napi_set_named_property(env, error, "syscall", call) != napi_ok) {
    return NULL;
  }
  return error;
}

napi_value pxebox_throw_errno(napi_env env, int err, const char *syscall) {
  napi_value error = pxebox_errno_error(env, err, syscall);
  if (error != NULL) napi_throw(env, error);
  return NULL;
}
