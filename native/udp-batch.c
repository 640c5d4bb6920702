/*
 * Batched UDP sockets for the DHCP server (issue 18: per-packet cost at dnsmasq's level). node:dgram costs, per
 * datagram, a JS call through the EventEmitter, a fresh Buffer and an rinfo object from a 64 KiB read buffer, and per
 * reply an address parse, a send request object and a callback. Under a boot storm the DHCP sockets see datagrams in
 * bursts; this socket reads every datagram pending at a wake-up with one recvmmsg(2) into a fixed slab, calls JS once
 * with how many there are, and sends the replies JS queued with one sendmmsg(2).
 *
 * Exports:
 *   batchOpen(bindAddress, port, broadcast, onBatch) -> [handle, port, fd, recv, recvMeta, send, sendMeta]
 *       IPv4. Binds bindAddress:port exclusively (no SO_REUSEADDR, as dgram's exclusive bind); broadcast sets
 *       SO_BROADCAST. `fd` is for setsockopt (SO_BINDTOIFINDEX). onBatch(count) when `count` datagrams are in `recv`
 *       (datagram i at i * BATCH_SLOT), their facts in recvMeta (Int32Array, BATCH_META per datagram: length, or -1
 *       when it was larger than BATCH_SLOT and cut (its bytes are not valid); source address as a host-order uint32
 *       in an int32; source port); onBatch(-errno) when receiving fails. The slab is valid only during the call.
 *   batchSend(handle, count) -> how many were not sent
 *       sends `count` datagrams described by sendMeta (Int32Array, BATCH_META per datagram: offset in `send`, length,
 *       destination address (host-order uint32), port) and writes each one's errno (0 when sent) to its slot's fifth
 *       int. A datagram the kernel refuses (EAGAIN or ENOBUFS with a full queue, EACCES, ENETUNREACH...) is skipped
 *       and the rest still go: one bad destination must not hold back the others' replies.
 *   batchInfo() -> [BATCH, BATCH_SLOT, send slab size, BATCH_META]
 *   batchClose(handle)   idempotent; no callback runs after it
 * Everything runs on the JS thread and never blocks (the socket is non-blocking).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#include "errors.h"
#include "napi-util.h"
#include "failpoint.h"

/* Datagrams per recvmmsg/sendmmsg. A storm's DISCOVERs arrive faster than one JS turn; 32 covers a burst. */
#define BATCH 32
/* Receive slot: a DHCP request is 300-600 bytes; nothing a client sends on one Ethernet frame exceeds 1,500. */
#define BATCH_SLOT 2048
/* Replies are packed one after the other; a UDP datagram can never exceed 64 KiB. */
#define SEND_SLAB 65536
/* Int32s per datagram in recvMeta (length, address, port) and sendMeta (offset, length, address, port, errno). */
#define RECV_META 3
#define SEND_META 5

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref on_batch;
  napi_ref refs[4]; /* recv, recvMeta, send, sendMeta: kept alive as long as the socket */
  napi_async_context async;
  char *recv;
  int32_t *recv_meta;
  char *send;
  int32_t *send_meta;
  int fd;
  int closing;
  int owners; /* the uv handle (until its close callback) and the JS handle (until finalized) */
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in addrs[BATCH];
} batch_t;

static void release(batch_t *b) {
  if (--b->owners > 0) return;
  free(b);
}

static void drop_refs(batch_t *b) {
  if (b->on_batch != NULL) napi_delete_reference(b->env, b->on_batch);
  for (int i = 0; i < 4; i++)
    if (b->refs[i] != NULL) napi_delete_reference(b->env, b->refs[i]);
  if (b->async != NULL) napi_async_destroy(b->env, b->async);
}

/* Runs on a later loop turn, never inside onBatch, so the async context is not in use when it is destroyed. */
static void on_closed(uv_handle_t *handle) {
  batch_t *b = handle->data;
  close(b->fd);
  napi_handle_scope scope;
  if (napi_open_handle_scope(b->env, &scope) == napi_ok) {
    drop_refs(b);
    napi_close_handle_scope(b->env, scope);
  }
  release(b);
}

static void shut(batch_t *b) {
  if (b->closing) return;
  b->closing = 1;
  uv_poll_stop(&b->poll);
  uv_close((uv_handle_t *)&b->poll, on_closed);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  batch_t *b = data;
  if (!b->closing) shut(b); /* dropped without batchClose: close rather than leak the descriptor */
  release(b);
}

/* Calls onBatch with `value` (a count or a negative errno); an exception thrown there becomes an uncaught one. */
static void call_js(batch_t *b, int32_t value) {
  napi_value arg;
  napi_create_int32(b->env, value, &arg);
  pxebox_call_js(b->env, b->async, b->on_batch, 1, &arg);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  batch_t *b = poll->data;
  napi_handle_scope scope;
  if (napi_open_handle_scope(b->env, &scope) != napi_ok) return;
  b->owners++; /* JS may close (and the finalizer run) inside the callback; keep the struct until we return */
  if (status < 0) {
    call_js(b, status);
  } else {
    for (int i = 0; i < BATCH; i++) {
      b->iov[i] = (struct iovec){.iov_base = b->recv + (size_t)i * BATCH_SLOT, .iov_len = BATCH_SLOT};
      b->msgs[i].msg_hdr = (struct msghdr){.msg_name = &b->addrs[i], .msg_namelen = sizeof b->addrs[i], .msg_iov = &b->iov[i], .msg_iovlen = 1};
      b->msgs[i].msg_len = 0;
    }
    int n;
    do n = recvmmsg(b->fd, b->msgs, BATCH, MSG_DONTWAIT, NULL);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      /* EAGAIN: another reader or a spurious wake-up; level-triggered poll calls again when there is data. */
      if (errno != EAGAIN && errno != EWOULDBLOCK) call_js(b, -errno);
    } else if (n > 0) {
      for (int i = 0; i < n; i++) {
        int32_t *m = b->recv_meta + i * RECV_META;
        m[0] = (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? -1 : (int32_t)b->msgs[i].msg_len;
        m[1] = (int32_t)ntohl(b->addrs[i].sin_addr.s_addr);
        m[2] = ntohs(b->addrs[i].sin_port);
      }
      call_js(b, n);
    }
  }
  release(b);
  napi_close_handle_scope(b->env, scope);
}

/* What a call given something other than batchOpen's handle throws. */
static const char NOT_HANDLE[] = "expected a UDP handle from batchOpen";

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char address[INET_ADDRSTRLEN + 1];
  size_t len;
  int32_t port;
  bool broadcast = false;
  napi_valuetype type;
  if (argc < 4 || napi_get_value_string_utf8(env, argv[0], address, sizeof address, &len) != napi_ok || len + 1 >= sizeof address ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 0 || port > 65535 || napi_get_value_bool(env, argv[2], &broadcast) != napi_ok ||
      napi_typeof(env, argv[3], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "batchOpen(bindAddress, port 0-65535, broadcast, onBatch)");
    return NULL;
  }
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, address, &local.sin_addr) != 1) {
    napi_throw_type_error(env, NULL, "batchOpen: not an IPv4 address");
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return pxebox_throw_errno(env, errno, "socket");
  int one = 1;
  if (broadcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0) {
    int err = errno;
    close(fd);
    return pxebox_throw_errno(env, err, "setsockopt");
  }
  socklen_t local_len = sizeof local;
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0 || getsockname(fd, (struct sockaddr *)&local, &local_len) < 0) {
    int err = errno;
    close(fd);
    return pxebox_throw_errno(env, err, "bind");
  }
  batch_t *b = calloc(1, sizeof *b);
  if (b == NULL) {
    close(fd);
    return pxebox_throw_errno(env, ENOMEM, "calloc");
  }
  b->env = env;
  b->fd = fd;
  b->owners = 2;
  napi_value recv_ab, recv, recv_meta, send_ab, send, send_meta, meta_ab, smeta_ab, name, handle, result;
  uv_loop_t *loop;
  /* Everything that can fail comes before uv_poll_init: until then a failure is undone here, synchronously. */
  if (napi_create_arraybuffer(env, (size_t)BATCH * BATCH_SLOT, (void **)&b->recv, &recv_ab) != napi_ok ||
      napi_create_typedarray(env, napi_uint8_array, (size_t)BATCH * BATCH_SLOT, recv_ab, 0, &recv) != napi_ok ||
      napi_create_reference(env, recv, 1, &b->refs[0]) != napi_ok ||
      napi_create_arraybuffer(env, (size_t)BATCH * RECV_META * 4, (void **)&b->recv_meta, &meta_ab) != napi_ok ||
      napi_create_typedarray(env, napi_int32_array, (size_t)BATCH * RECV_META, meta_ab, 0, &recv_meta) != napi_ok ||
      napi_create_reference(env, recv_meta, 1, &b->refs[1]) != napi_ok ||
      napi_create_arraybuffer(env, SEND_SLAB, (void **)&b->send, &send_ab) != napi_ok ||
      napi_create_typedarray(env, napi_uint8_array, SEND_SLAB, send_ab, 0, &send) != napi_ok ||
      napi_create_reference(env, send, 1, &b->refs[2]) != napi_ok ||
      napi_create_arraybuffer(env, (size_t)BATCH * SEND_META * 4, (void **)&b->send_meta, &smeta_ab) != napi_ok ||
      napi_create_typedarray(env, napi_int32_array, (size_t)BATCH * SEND_META, smeta_ab, 0, &send_meta) != napi_ok ||
      napi_create_reference(env, send_meta, 1, &b->refs[3]) != napi_ok || napi_create_reference(env, argv[3], 1, &b->on_batch) != napi_ok ||
      napi_create_string_utf8(env, "pxebox:udp-batch", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &b->async) != napi_ok || pxebox_failpoint("batchOpen:setup") ||
      napi_create_array_with_length(env, 7, &result) != napi_ok || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    drop_refs(b);
    close(fd);
    free(b);
    napi_throw_error(env, NULL, "batchOpen: could not set up the socket");
    return NULL;
  }
  int err = uv_poll_init(loop, &b->poll, fd);
  if (err != 0) {
    drop_refs(b);
    close(fd);
    free(b);
    return pxebox_throw_errno(env, -err, "uv_poll_init");
  }
  b->poll.data = b;
  /* From here the uv handle belongs to the loop and closes asynchronously (on_closed releases what the struct holds). */
  if (napi_create_external(env, b, finalize, NULL, &handle) != napi_ok) {
    shut(b);
    release(b);
    napi_throw_error(env, NULL, "batchOpen: could not create the handle");
    return NULL;
  }
  napi_value values[7] = {handle, NULL, NULL, recv, recv_meta, send, send_meta};
  napi_create_int32(env, ntohs(local.sin_port), &values[1]);
  napi_create_int32(env, fd, &values[2]);
  for (uint32_t i = 0; i < 7; i++) {
    if (values[i] == NULL || napi_set_element(env, result, i, values[i]) != napi_ok) {
      shut(b); /* the external's finalizer releases the JS handle's share once it is collected */
      napi_throw_error(env, NULL, "batchOpen: could not build the result");
      return NULL;
    }
  }
  err = uv_poll_start(&b->poll, UV_READABLE, on_readable);
  if (err != 0) {
    shut(b);
    return pxebox_throw_errno(env, -err, "uv_poll_start");
  }
  return result;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  batch_t *b = pxebox_handle_args(env, info, &argc, argv, 2, NULL, NOT_HANDLE);
  if (b == NULL) return NULL;
  int32_t count;
  if (napi_get_value_int32(env, argv[1], &count) != napi_ok || count < 0 || count > BATCH) {
    napi_throw_range_error(env, NULL, "batchSend(handle, count 0-32)");
    return NULL;
  }
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in to[BATCH];
  int n = 0; /* datagrams handed to the kernel, in slot order; map[k] is the slot of msgs[k] */
  int map[BATCH];
  int dropped = 0;
  for (int i = 0; i < count; i++) {
    int32_t *m = b->send_meta + i * SEND_META;
    int valid = m[0] >= 0 && m[1] >= 0 && (int64_t)m[0] + m[1] <= SEND_SLAB && m[3] >= 0 && m[3] <= 65535;
    m[4] = b->closing ? EBADF : valid ? 0 : EINVAL;
    if (m[4] != 0) {
      dropped++;
      continue;
    }
    to[n] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)m[3]), .sin_addr = {htonl((uint32_t)m[2])}};
    iov[n] = (struct iovec){.iov_base = b->send + m[0], .iov_len = (size_t)m[1]};
    msgs[n].msg_hdr = (struct msghdr){.msg_name = &to[n], .msg_namelen = sizeof to[n], .msg_iov = &iov[n], .msg_iovlen = 1};
    msgs[n].msg_len = 0;
    map[n++] = i;
  }
  /* sendmmsg stops at the first datagram that fails: record its errno, skip it, and send the rest. */
  for (int k = 0; k < n;) {
    int sent = pxebox_failpoint("batchSend:eagain") ? (errno = EAGAIN, -1) : sendmmsg(b->fd, msgs + k, (unsigned)(n - k), MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      b->send_meta[map[k] * SEND_META + 4] = errno;
      dropped++;
      k++;
    } else {
      k += sent;
    }
  }
  napi_value result;
  napi_create_int32(env, dropped, &result);
  return result;
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, v;
  const int32_t values[4] = {BATCH, BATCH_SLOT, SEND_SLAB, SEND_META};
  napi_create_array_with_length(env, 4, &result);
  for (uint32_t i = 0; i < 4; i++) {
    napi_create_int32(env, values[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  batch_t *b = pxebox_handle_args(env, info, &argc, argv, 1, NULL, NOT_HANDLE);
  if (b != NULL) shut(b);
  return NULL;
}

napi_value pxebox_udp_batch_init(napi_env env, napi_value exports) {
  const pxebox_export_t fns[] = {{"batchOpen", js_open}, {"batchSend", js_send}, {"batchInfo", js_info}, {"batchClose", js_close}};
  return PXEBOX_EXPORT_ALL(env, exports, fns);
}
