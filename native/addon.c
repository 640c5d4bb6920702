/*
 * pxebox's native addon: the places where Node's own APIs fall short.
 *   sendfile.c  zero-copy HTTP asset bodies (issue 5: 90% of nginx) sent by a thread of their own that also waits for
 *               the sockets (issue 18: boot work never waits behind bulk transfers on the event loop)
 *   udp.c       TFTP transfer sockets without node:dgram's per-datagram overhead (issue 4: lock-step TFTP as fast as
 *               the C servers)
 *   tftp-runner.c  their lock-step runs on a thread of their own (issue 18: a block never waits for JS)
 *   udp-batch.c DHCP sockets reading and sending in batches, recvmmsg/sendmmsg (issue 18: DHCP per-packet cost)
 *   netif.c     interfaces, indexes and addresses from this namespace's kernel, and setsockopt for SO_BINDTOIFINDEX
 *   readfiles.c many small files read and a large folder listed off the event loop (issue 16: 100,000 group files)
 * All optional at run time: without the addon pxebox falls back to Node's APIs and logs why.
 */
#include <node_api.h>

napi_value pxebox_sendfile_init(napi_env env, napi_value exports);
napi_value pxebox_udp_init(napi_env env, napi_value exports);
napi_value pxebox_udp_batch_init(napi_env env, napi_value exports);
napi_value pxebox_netif_init(napi_env env, napi_value exports);
napi_value pxebox_sdnotify_init(napi_env env, napi_value exports);
napi_value pxebox_readfiles_init(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  pxebox_sendfile_init(env, exports);
  pxebox_udp_init(env, exports);
  pxebox_udp_batch_init(env, exports);
  pxebox_netif_init(env, exports);
  pxebox_sdnotify_init(env, exports);
  pxebox_readfiles_init(env, exports);
#ifdef PXEBOX_FAILPOINTS
  /* failpoint.h: tells test/host/native-failpoints.test.ts that this build can fail on request. */
  napi_value yes;
  napi_get_boolean(env, true, &yes);
  napi_set_named_property(env, exports, "failpoints", yes);
#endif
  return exports;
}
