/*
 * Errors from failed system calls, shaped as Node's own (fs, net): an Error whose `code` is the errno name
 * ('EBADF'), with `errno` (the positive number; compare with os.constants.errno) and `syscall`, and strerror(3)'s
 * text in the message. Shared by every file of the addon so JS can handle them like any Node system error.
 */
#ifndef PXEBOX_ERRORS_H
#define PXEBOX_ERRORS_H

#include <node_api.h>

/* The Error for errno `err` from `syscall`; NULL only when N-API itself failed (an exception is then pending). */
napi_value pxebox_errno_error(napi_env env, int err, const char *syscall);

/* Throws pxebox_errno_error(env, err, syscall); returns NULL, the value a failing N-API callback returns. */
napi_value pxebox_throw_errno(napi_env env, int err, const char *syscall);

#endif
