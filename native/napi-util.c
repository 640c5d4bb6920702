/* See napi-util.h. */
#include "napi-util.h"

napi_value pxebox_export_all(napi_env env, napi_value exports, const pxebox_export_t *fns, size_t count) {
  for (size_t i = 0; i < count; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
  return exports;
}

void pxebox_call_js(napi_env env, napi_async_context async, napi_ref fn_ref, size_t argc, const napi_value *argv) {
  napi_value fn, recv, result;
  if (napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv);
  if (napi_make_callback(env, async, recv, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

void *pxebox_handle_args(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, size_t need, const char *usage,
                         const char *not_handle) {
  if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok || *argc < need) {
    if (usage != NULL) napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  void *data = NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, not_handle);
    return NULL;
  }
  return data;
}
