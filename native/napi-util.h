/*
 * The N-API plumbing the files of the addon share: registering their functions on `exports`, taking the handle (an
 * external made by the open function) from a call's first argument, and calling a JS callback from libuv. Each file
 * keeps its own error texts (the tests check them), so the helpers take them as arguments.
 */
#ifndef PXEBOX_NAPI_UTIL_H
#define PXEBOX_NAPI_UTIL_H

#include <stddef.h>
#include <node_api.h>

/* One exported function: the name JS sees and the C callback. */
typedef struct {
  const char *name;
  napi_callback fn;
} pxebox_export_t;

/* Sets each of the `count` functions of `fns` on `exports` under its name; returns `exports`. */
napi_value pxebox_export_all(napi_env env, napi_value exports, const pxebox_export_t *fns, size_t count);

/* pxebox_export_all over a whole array, counting it. */
#define PXEBOX_EXPORT_ALL(env, exports, fns) pxebox_export_all((env), (exports), (fns), sizeof(fns) / sizeof((fns)[0]))

/*
 * The call's arguments and the handle in its first one. On entry *argc is argv's length; napi_get_cb_info sets it to
 * how many came. Fewer than `need` (at least 1; or napi_get_cb_info failing): a TypeError `usage` is thrown, or, where `usage` is
 * NULL, nothing (the function quietly returns undefined, as udp.c's and udp-batch.c's always have). A first argument
 * that is not a handle: a TypeError `not_handle`. NULL in every failing case, so the caller only returns.
 */
void *pxebox_handle_args(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, size_t need, const char *usage,
                         const char *not_handle);

/*
 * Calls the JS function held by `fn_ref` from a libuv callback, in async context `async`, with `argc` arguments. An
 * exception it throws becomes an uncaught exception, as node:dgram's handlers do; a function already collected (or a
 * reference N-API cannot read) is skipped. The caller has a handle scope open.
 */
void pxebox_call_js(napi_env env, napi_async_context async, napi_ref fn_ref, size_t argc, const napi_value *argv);

#endif
