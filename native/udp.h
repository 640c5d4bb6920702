/*
 * What native/udp.c (the TFTP transfer socket) and native/tftp-runner.c (the thread that serves its lock-step runs)
 * share: the socket's struct, which both read and write under the rules in its comments, and each file's functions
 * the other calls. Internal to the addon; JS sees neither.
 */
#ifndef PXEBOX_UDP_H
#define PXEBOX_UDP_H

#include <stdint.h>
#include <pthread.h>
#include <sys/socket.h>
#include <node_api.h>
#include <uv.h>

typedef struct udp udp_t;
typedef struct runner runner_t;

struct udp {
  uv_poll_t poll;
  napi_env env;
  napi_ref on_packet;
  napi_ref buffer_ref;
  napi_async_context async;
  char *buffer;
  int fd;
  int family;
  int closing;     /* udpClose was called: no more callbacks, no more sends */
  /*
   * Who still needs the struct: the uv handle (until its close callback), the JS handle (until finalized), the runner
   * while the socket is in its epoll, each runner queue entry. Atomic: the runner thread releases its shares.
   */
  int owners;
  /* Who still needs the descriptor: the uv handle (until its close callback) and the runner while it is in its epoll.
   * The last closes it, so its number cannot be reused while the runner's epoll may still name it. */
  int fd_users;
  struct sockaddr_storage peer;
  socklen_t peer_len;
  /* Lock-step fast path (udpStage): the next DATA packet and the ACK block number that releases it. */
  napi_ref staged_ref;
  const char *staged;
  size_t staged_len;
  int staged_ack;
  /* Lock-step run (udpRun): the file, its block size and count, the last block sent and when the run last moved. */
  napi_ref run_ref;
  const unsigned char *run_data;
  size_t run_size;
  size_t run_blksize;
  double run_sent;
  double run_total;
  uint64_t run_moved;
  /* Runner state: `on_runner` (under `lock`) says the runner serves the run; `in_epoll` is the runner's own. */
  runner_t *runner;
  pthread_mutex_t lock;
  int on_runner;
  int handed_back;
  int in_epoll;
};

/* udp.c: the struct's shares (hold/release), its descriptor's, a run's next block, and the event loop's reader. */
void udp_hold(udp_t *u);
void udp_release(udp_t *u);
void udp_release_fd(udp_t *u);
void udp_run_next(udp_t *u);
int udp_same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
void udp_on_readable(uv_poll_t *poll, int status, int events);

/* tftp-runner.c: the environment's runner (NULL when it cannot start), and handing a run to it and back. */
runner_t *tftp_runner_for(napi_env env);
int tftp_runner_enqueue(runner_t *r, udp_t *u);
int tftp_runner_take_back(udp_t *u);

#endif
