/*
 * UDP sockets for TFTP transfers, without node:dgram's per-datagram machinery. In lock-step TFTP (one ACK per DATA,
 * what every BIOS PXE ROM does) the server's cost per packet is the transfer time. node:dgram spent ~27 us of CPU per
 * packet here (a 64 KiB malloc per receive attempt, a Buffer and an rinfo object with an address string per datagram,
 * an address parse and route lookup per send); dnsmasq spends ~12 us. This socket keeps the protocol in TypeScript
 * (src/tftp/transfer.ts) and only moves the I/O: a uv_poll watcher on the main loop reads every pending datagram
 * into one reused Buffer and calls JS with its length; sends go straight to sendto(2) with a prebuilt peer address.
 * The one exception is a lock-step run of an in-memory file (udpRun): the steady part of a transfer, ACK in, next
 * block out, is served by the runner thread (native/tftp-runner.c: "pxebox-tftp", one per JS environment;
 * PXEBOX_TFTP_RUNNER=off keeps runs on the event loop) without JS, and everything else still goes through JS.
 *
 * Exports:
 *   udpOpen(ipv6, bindAddress, onPacket) -> [handle, port, buffer]
 *       binds an ephemeral port; onPacket(length, true, released) for the peer's datagrams, onPacket(length, false, port,
 *       address) for anyone else's (RFC 1350: they get ERROR 5), onPacket(-errno) when receiving fails. The datagram
 *       is in `buffer` (RECV_BUFFER bytes: longer datagrams are cut) only during the call.
 *   udpSetPeer(handle, address, port)
 *   udpSend(handle, buffer, length) -> 0 or errno          to the peer
 *   udpSendTo(handle, buffer, length, address, port) -> 0 or errno
 *   udpStage(handle, buffer, length, ackBlock)           lock-step fast path: when the peer's next datagram is exactly
 *       ACK ackBlock, send buffer[0:length] before calling JS, and pass onPacket(length, true, true). One use; the
 *       buffer is kept alive until then. udpStage(handle) clears it. In lock-step (every BIOS PXE ROM) this takes
 *       JS off the round trip: the DATA leaves while JS records the ACK.
 *   udpRun(handle, file, blksize, sentBlock, totalBlocks)  lock-step without JS: the whole file is in `file`, DATA
 *       `sentBlock` (absolute; 0 = the OACK) is out and its ACK awaited. Each peer datagram that is exactly that ACK
 *       sends the next block (a 4-byte header and the file's bytes, one sendmsg) and is not passed to JS. Anything else
 *       from the peer (the ACK of the last block, a duplicate, an ERROR) ends the run and reaches JS as
 *       onPacket(length, true, false, sentBlock, idleMs): the run's progress and the ms since it last sent; strangers
 *       reach JS as always.
 *       A send the kernel refuses counts as a lost datagram: the JS retransmit timer covers it, as for any loss.
 *   udpRunState(handle, stop) -> [sentBlock, idleMs] | null   a run's progress and the ms since its last ACK (loop
 *       time); `stop` ends it. null when no run is on.
 *   udpClose(handle)                                      idempotent; no callback runs after it
 * All run on the JS thread; nothing here blocks (the socket is non-blocking, a full send buffer is a dropped
 * datagram, which TFTP's retransmission covers).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#include "errors.h"
#include "napi-util.h"
#include "failpoint.h"
#include "udp.h"

/*
 * A transfer socket only ever receives ACKs and ERRORs (pxebox serves reads, never writes): 4 bytes, or 4 and an
 * error text. The buffer was 64 KiB per transfer: 64 MB behind a 1,000-machine storm, garbage once the transfers
 * ended but given back only at V8's next full GC (it lets external memory grow 64 MB before forcing one), so the
 * daemon's RSS climbed storm after storm (bench/storm.sh --repeat). A longer datagram is cut to this size, which can
 * only shorten an ERROR's text; an ACK is never that long.
 */
#define RECV_BUFFER 1536
/*
 * Datagrams read per wake-up. One: libuv's poll is level-triggered, so a second pending datagram wakes the loop again
 * at once, while reading until EAGAIN would cost a failing recvfrom per datagram in lock-step, the common case.
 */
#ifndef RECV_BATCH
#define RECV_BATCH 1
#endif

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void unstage(udp_t *u) {
  if (u->staged_ref != NULL) napi_delete_reference(u->env, u->staged_ref);
  u->staged_ref = NULL;
  u->staged = NULL;
}

static void unrun(udp_t *u) {
  if (u->run_ref != NULL) napi_delete_reference(u->env, u->run_ref);
  u->run_ref = NULL;
  u->run_data = NULL;
}

/*
 * The run's answer to an exact ACK of run_sent: DATA run_sent + 1 from the file, header and bytes gathered by sendmsg.
 * Block numbers wrap at 16 bits on the wire (RFC 1350 leaves rollover to the implementation; pxebox counts on).
 */
void udp_run_next(udp_t *u) {
  double block = u->run_sent + 1;
  size_t position = (size_t)(block - 1) * u->run_blksize;
  size_t length = position >= u->run_size ? 0 : u->run_size - position;
  if (length > u->run_blksize) length = u->run_blksize;
  uint16_t wire = (uint16_t)((uint64_t)block & 0xffff);
  unsigned char header[4] = {0, 3, (unsigned char)(wire >> 8), (unsigned char)wire};
  struct iovec iov[2] = {{header, 4}, {(void *)(u->run_data + (length ? position : 0)), length}};
  struct msghdr msg = {.msg_name = &u->peer, .msg_namelen = u->peer_len, .msg_iov = iov, .msg_iovlen = length ? 2 : 1};
  (void)sendmsg(u->fd, &msg, 0);
  u->run_sent = block;
  u->run_moved = now_ms();
}

void udp_hold(udp_t *u) {
  __atomic_add_fetch(&u->owners, 1, __ATOMIC_RELAXED);
}

void udp_release(udp_t *u) {
  if (__atomic_sub_fetch(&u->owners, 1, __ATOMIC_ACQ_REL) > 0) return;
  pthread_mutex_destroy(&u->lock);
  free(u);
}

void udp_release_fd(udp_t *u) {
  if (__atomic_sub_fetch(&u->fd_users, 1, __ATOMIC_ACQ_REL) == 0) close(u->fd);
}

/* Runs on a later loop turn, never inside onPacket, so the async context is not in use when it is destroyed. */
static void on_closed(uv_handle_t *handle) {
  udp_t *u = handle->data;
  udp_release_fd(u);
  napi_handle_scope scope;
  if (napi_open_handle_scope(u->env, &scope) == napi_ok) {
    unstage(u);
    unrun(u);
    napi_delete_reference(u->env, u->on_packet);
    napi_delete_reference(u->env, u->buffer_ref);
    napi_async_destroy(u->env, u->async);
    napi_close_handle_scope(u->env, scope);
  }
  udp_release(u);
}

/* Undoes a udpOpen that failed before uv_poll_init: no loop or JS handle knows the struct yet. */
static void undo_open(udp_t *u) {
  if (u->on_packet != NULL) napi_delete_reference(u->env, u->on_packet);
  if (u->buffer_ref != NULL) napi_delete_reference(u->env, u->buffer_ref);
  if (u->async != NULL) napi_async_destroy(u->env, u->async);
  close(u->fd);
  pthread_mutex_destroy(&u->lock);
  free(u);
}

static void shut(udp_t *u) {
  if (u->closing) return;
  u->closing = 1;
  if (u->runner != NULL) tftp_runner_take_back(u);
  uv_poll_stop(&u->poll);
  uv_close((uv_handle_t *)&u->poll, on_closed);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  udp_t *u = data;
  /* The JS side dropped the handle without closing it: close here rather than leak the descriptor. */
  if (!u->closing) shut(u);
  (void)env;
  udp_release(u);
}

static int parse_address(int family, const char *text, int port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *len = sizeof *a;
    return inet_pton(AF_INET6, text, &a->sin6_addr) == 1;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)out;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  *len = sizeof *a;
  return inet_pton(AF_INET, text, &a->sin_addr) == 1;
}

int udp_same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* Calls onPacket with `argc` arguments; an exception thrown there becomes an uncaught exception, as in node:dgram. */
static void call_js(udp_t *u, size_t argc, napi_value *argv) {
  pxebox_call_js(u->env, u->async, u->on_packet, argc, argv);
}

void udp_on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  udp_t *u = poll->data;
  napi_handle_scope scope;
  if (napi_open_handle_scope(u->env, &scope) != napi_ok) return;
  u->owners++; /* JS may close (and the finalizer run) inside a callback; keep the struct until we return */
  if (status < 0) {
    napi_value argv[1];
    napi_create_int32(u->env, status, &argv[0]);
    call_js(u, 1, argv);
  }
  for (int i = 0; i < RECV_BATCH && !u->closing; i++) {
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(u->fd, u->buffer, RECV_BUFFER, 0, (struct sockaddr *)&from, &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      napi_value argv[1];
      napi_create_int32(u->env, -errno, &argv[0]);
      call_js(u, 1, argv);
      break;
    }
    napi_value argv[5];
    if (u->peer_len != 0 && u->run_data != NULL && udp_same_address(&from, &u->peer)) {
      const unsigned char *p = (const unsigned char *)u->buffer;
      if (n == 4 && p[0] == 0 && p[1] == 4 && ((p[2] << 8) | p[3]) == (int)((uint64_t)u->run_sent & 0xffff) && u->run_sent < u->run_total) {
        udp_run_next(u);
        continue;
      }
      /* Not the awaited ACK: JS takes over, told how far the run got and how long ago it last sent. */
      double sent = u->run_sent;
      uint64_t now = now_ms();
      double idle = now > u->run_moved ? (double)(now - u->run_moved) : 0;
      unrun(u);
      napi_create_int32(u->env, (int32_t)n, &argv[0]);
      napi_get_boolean(u->env, 1, &argv[1]);
      napi_get_boolean(u->env, 0, &argv[2]);
      napi_create_double(u->env, sent, &argv[3]);
      napi_create_double(u->env, idle, &argv[4]);
      call_js(u, 5, argv);
      continue;
    }
    napi_create_int32(u->env, (int32_t)n, &argv[0]);
    if (u->peer_len != 0 && udp_same_address(&from, &u->peer)) {
      /*
       * The ACK the staged DATA waits for (opcode 4, exact block number): send it now, before any JS runs, so the
       * client's next block is on its way while JS does the bookkeeping. JS learns it was sent from the flag.
       */
      const unsigned char *p = (const unsigned char *)u->buffer;
      int released = 0;
      if (u->staged != NULL && n == 4 && p[0] == 0 && p[1] == 4 && ((p[2] << 8) | p[3]) == u->staged_ack) {
        released = sendto(u->fd, u->staged, u->staged_len, 0, (struct sockaddr *)&u->peer, u->peer_len) >= 0;
        unstage(u);
      }
      napi_get_boolean(u->env, 1, &argv[1]);
      napi_get_boolean(u->env, released, &argv[2]);
      call_js(u, 3, argv);
    } else {
      char text[INET6_ADDRSTRLEN] = "";
      int port = 0;
      if (from.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&from;
        inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        port = ntohs(a->sin6_port);
      } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&from;
        inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
        port = ntohs(a->sin_port);
      }
      napi_get_boolean(u->env, 0, &argv[1]);
      napi_create_int32(u->env, port, &argv[2]);
      napi_create_string_utf8(u->env, text, NAPI_AUTO_LENGTH, &argv[3]);
      call_js(u, 4, argv);
    }
  }
  udp_release(u);
  napi_close_handle_scope(u->env, scope);
}

/* What a call given something other than udpOpen's handle throws. */
static const char NOT_HANDLE[] = "expected a UDP handle from udpOpen";

static int get_string(napi_env env, napi_value v, char *out, size_t size) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, out, size, &len) != napi_ok || len + 1 >= size) {
    napi_throw_type_error(env, NULL, "expected an IP address string");
    return 0;
  }
  return 1;
}

static int get_port(napi_env env, napi_value v, int *port) {
  int32_t p;
  if (napi_get_value_int32(env, v, &p) != napi_ok || p < 0 || p > 65535) {
    napi_throw_range_error(env, NULL, "expected a port 0-65535");
    return 0;
  }
  *port = p;
  return 1;
}

/* An address and a port argument as a socket address of the socket's family; throws (naming `who`) and returns 0 if not. */
static int get_sockaddr(napi_env env, udp_t *u, napi_value address_value, napi_value port_value, struct sockaddr_storage *out,
                        socklen_t *out_len, const char *who) {
  char address[INET6_ADDRSTRLEN + 1];
  int port;
  if (!get_string(env, address_value, address, sizeof address) || !get_port(env, port_value, &port)) return 0;
  if (!parse_address(u->family, address, port, out, out_len)) {
    char message[96];
    snprintf(message, sizeof message, "%s: not an IP address of the socket's family", who);
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  return 1;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool ipv6 = false;
  char address[INET6_ADDRSTRLEN + 1];
  napi_valuetype type;
  if (argc < 3 || napi_get_value_bool(env, argv[0], &ipv6) != napi_ok || !get_string(env, argv[1], address, sizeof address) ||
      napi_typeof(env, argv[2], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "udpOpen(ipv6, bindAddress, onPacket)");
    return NULL;
  }
  int family = ipv6 ? AF_INET6 : AF_INET;
  struct sockaddr_storage local;
  socklen_t local_len;
  if (!parse_address(family, address, 0, &local, &local_len)) {
    napi_throw_type_error(env, NULL, "udpOpen: not an IP address of that family");
    return NULL;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return pxebox_throw_errno(env, errno, "socket");
  if (bind(fd, (struct sockaddr *)&local, local_len) < 0) {
    int err = errno;
    close(fd);
    return pxebox_throw_errno(env, err, "bind");
  }
  if (getsockname(fd, (struct sockaddr *)&local, &local_len) < 0) {
    int err = errno;
    close(fd);
    return pxebox_throw_errno(env, err, "getsockname");
  }
  int port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&local)->sin6_port : ((struct sockaddr_in *)&local)->sin_port);

  udp_t *u = calloc(1, sizeof *u);
  if (u == NULL) {
    close(fd);
    return pxebox_throw_errno(env, ENOMEM, "calloc");
  }
  u->env = env;
  u->fd = fd;
  u->family = family;
  u->owners = 2;
  u->fd_users = 1;
  pthread_mutex_init(&u->lock, NULL);
  /* Everything that can fail comes before uv_poll_init: until then a failure is undone here, synchronously. */
  napi_value buffer, handle, name, result, port_value;
  uv_loop_t *loop;
  if (napi_create_buffer(env, RECV_BUFFER, (void **)&u->buffer, &buffer) != napi_ok ||
      napi_create_reference(env, buffer, 1, &u->buffer_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &u->on_packet) != napi_ok ||
      napi_create_string_utf8(env, "pxebox:udp", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &u->async) != napi_ok || pxebox_failpoint("udpOpen:setup") ||
      napi_create_int32(env, port, &port_value) != napi_ok ||
      napi_create_array_with_length(env, 3, &result) != napi_ok || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    undo_open(u);
    napi_throw_error(env, NULL, "udpOpen: could not set up the socket");
    return NULL;
  }
  int err = uv_poll_init(loop, &u->poll, fd);
  if (err != 0) {
    undo_open(u);
    return pxebox_throw_errno(env, -err, "uv_poll_init");
  }
  u->poll.data = u;
  /*
   * From here the uv handle is registered with the loop and can only be closed asynchronously (on_closed releases what
   * the struct holds). If the JS side cannot be built, close it and give up the JS handle's ownership at once.
   */
  if (pxebox_failpoint("udpOpen:handle") || napi_create_external(env, u, finalize, NULL, &handle) != napi_ok) {
    shut(u);
    udp_release(u);
    napi_throw_error(env, NULL, "udpOpen: could not create the handle");
    return NULL;
  }
  if (napi_set_element(env, result, 0, handle) != napi_ok || pxebox_failpoint("udpOpen:result") ||
      napi_set_element(env, result, 1, port_value) != napi_ok || napi_set_element(env, result, 2, buffer) != napi_ok) {
    shut(u); /* the external's finalizer releases the JS handle's share once it is collected */
    napi_throw_error(env, NULL, "udpOpen: could not build the result");
    return NULL;
  }
  err = pxebox_failpoint("udpOpen:poll") ? UV_ENOMEM : uv_poll_start(&u->poll, UV_READABLE, udp_on_readable);
  if (err != 0) {
    shut(u);
    return pxebox_throw_errno(env, -err, "uv_poll_start");
  }
  return result;
}

static napi_value js_set_peer(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  udp_t *u = pxebox_handle_args(env, info, &argc, argv, 3, NULL, NOT_HANDLE);
  if (u != NULL && !get_sockaddr(env, u, argv[1], argv[2], &u->peer, &u->peer_len, "udpSetPeer")) u->peer_len = 0;
  return NULL;
}

static napi_value send_common(napi_env env, udp_t *u, napi_value buf, napi_value len, const struct sockaddr_storage *to, socklen_t to_len) {
  void *data;
  size_t size;
  int32_t length;
  if (napi_get_buffer_info(env, buf, &data, &size) != napi_ok || napi_get_value_int32(env, len, &length) != napi_ok || length < 0 ||
      (size_t)length > size) {
    napi_throw_range_error(env, NULL, "expected a Buffer and a length within it");
    return NULL;
  }
  int err = 0;
  if (u->closing) err = EBADF;
  else if (sendto(u->fd, data, (size_t)length, 0, (const struct sockaddr *)to, to_len) < 0) err = errno;
  napi_value result;
  napi_create_int32(env, err, &result);
  return result;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  udp_t *u = pxebox_handle_args(env, info, &argc, argv, 3, NULL, NOT_HANDLE);
  if (u == NULL) return NULL;
  if (u->peer_len == 0) {
    napi_throw_error(env, NULL, "udpSend before udpSetPeer");
    return NULL;
  }
  return send_common(env, u, argv[1], argv[2], &u->peer, u->peer_len);
}

static napi_value js_send_to(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  udp_t *u = pxebox_handle_args(env, info, &argc, argv, 5, NULL, NOT_HANDLE);
  struct sockaddr_storage to;
  socklen_t to_len;
  if (u == NULL || !get_sockaddr(env, u, argv[3], argv[4], &to, &to_len, "udpSendTo")) return NULL;
  return send_common(env, u, argv[1], argv[2], &to, to_len);
}

static napi_value js_stage(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  udp_t *u = pxebox_handle_args(env, info, &argc, argv, 1, NULL, NOT_HANDLE);
  if (u == NULL) return NULL;
  unstage(u);
  if (argc < 4 || u->closing) return NULL; /* udpStage(handle): clear */
  void *data;
  size_t size;
  int32_t length, ack;
  if (napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok || napi_get_value_int32(env, argv[2], &length) != napi_ok ||
      napi_get_value_int32(env, argv[3], &ack) != napi_ok || length < 0 || (size_t)length > size || ack < 0 || ack > 65535) {
    napi_throw_range_error(env, NULL, "udpStage(handle, buffer, length, ackBlock 0-65535)");
    return NULL;
  }
  if (napi_create_reference(env, argv[1], 1, &u->staged_ref) != napi_ok) return NULL;
  u->staged = data;
  u->staged_len = (size_t)length;
  u->staged_ack = ack;
  return NULL;
}

static napi_value js_run(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  udp_t *u = pxebox_handle_args(env, info, &argc, argv, 5, NULL, NOT_HANDLE);
  if (u == NULL) return NULL;
  void *data;
  size_t size;
  int32_t blksize;
  double sent, total;
  if (napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok || napi_get_value_int32(env, argv[2], &blksize) != napi_ok ||
      napi_get_value_double(env, argv[3], &sent) != napi_ok || napi_get_value_double(env, argv[4], &total) != napi_ok ||
      blksize < 8 || blksize > 65464 || total != (double)(size / (size_t)blksize + 1) || !(sent >= 0) || sent > total ||
      sent != (double)(uint64_t)sent) {
    napi_throw_range_error(env, NULL, "udpRun(handle, file, blksize 8-65464, sentBlock, totalBlocks = floor(size / blksize) + 1)");
    return NULL;
  }
  if (u->peer_len == 0) {
    napi_throw_error(env, NULL, "udpRun before udpSetPeer");
    return NULL;
  }
  if (u->runner != NULL) tftp_runner_take_back(u);
  unrun(u);
  unstage(u);
  if (u->closing) return NULL;
  if (napi_create_reference(env, argv[1], 1, &u->run_ref) != napi_ok) return NULL;
  u->run_data = data;
  u->run_size = size;
  u->run_blksize = (size_t)blksize;
  u->run_sent = sent;
  u->run_total = total;
  u->run_moved = now_ms();
  /* On the runner thread when there is one; else on the event loop (udp_on_readable). */
  if (u->runner == NULL) u->runner = tftp_runner_for(env);
  if (u->runner != NULL) {
    uv_poll_stop(&u->poll);
    pthread_mutex_lock(&u->lock);
    u->on_runner = 1;
    pthread_mutex_unlock(&u->lock);
    if (!tftp_runner_enqueue(u->runner, u)) tftp_runner_take_back(u);
  }
  return NULL;
}

static napi_value js_run_state(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  udp_t *u = pxebox_handle_args(env, info, &argc, argv, 2, NULL, NOT_HANDLE);
  if (u == NULL) return NULL;
  bool stop = false;
  napi_get_value_bool(env, argv[1], &stop);
  napi_value result;
  if (u->run_data == NULL) {
    napi_get_null(env, &result);
    return result;
  }
  if (stop && u->runner != NULL) tftp_runner_take_back(u);
  pthread_mutex_lock(&u->lock);
  double run_sent = u->run_sent;
  uint64_t moved = u->run_moved;
  pthread_mutex_unlock(&u->lock);
  uint64_t now = now_ms();
  napi_value sent, idle;
  napi_create_double(env, run_sent, &sent);
  napi_create_double(env, now > moved ? (double)(now - moved) : 0, &idle);
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, sent);
  napi_set_element(env, result, 1, idle);
  if (stop) unrun(u);
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  udp_t *u = pxebox_handle_args(env, info, &argc, argv, 1, NULL, NOT_HANDLE);
  if (u != NULL) shut(u);
  return NULL;
}

napi_value pxebox_udp_init(napi_env env, napi_value exports) {
  const pxebox_export_t fns[] = {{"udpOpen", js_open}, {"udpSetPeer", js_set_peer}, {"udpSend", js_send}, {"udpSendTo", js_send_to}, {"udpStage", js_stage}, {"udpRun", js_run}, {"udpRunState", js_run_state}, {"udpClose", js_close}};
  return PXEBOX_EXPORT_ALL(env, exports, fns);
}
