/*
 * The TFTP runner: one thread per JS environment ("pxebox-tftp") that serves the lock-step runs of native/udp.c's
 * transfer sockets (udpRun) without JS. The event loop hands a socket over (tftp_runner_enqueue) and the thread answers
 * each exact ACK with the next block; anything else hands the socket back, and JS sees it as ever. PXEBOX_TFTP_RUNNER=off
 * keeps runs on the event loop. The struct and the functions both files share are in udp.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#include "udp.h"

/*
 * The runner: one thread per JS environment that serves lock-step runs off the event loop, so a block never waits
 * behind JS work (an HTTP request, a GC pause) for its ACK to be read (issue 18: in a 200-machine storm a TFTP block
 * waited ~30 ms for the loop, and TFTP was two thirds of the boot). While a run is on the runner the socket's uv_poll
 * is stopped and the runner's epoll watches it; the runner only peeks at a datagram that is not the awaited ACK and
 * hands the socket back, so the event loop reads it and JS sees it as ever.
 */
struct runner {
  pthread_t thread;
  int epfd;
  int wake_fd;
  pthread_mutex_t lock;   /* guards queue, back, stop */
  udp_t **queue;          /* sockets whose on_runner changed, for the thread to add to or remove from its epoll */
  size_t queued, queue_cap;
  udp_t **back;           /* sockets the thread gave back, for the event loop to poll again */
  size_t backs, back_cap;
  int stop;
  napi_threadsafe_function tsfn;
};

/* Appends to a runner list (under the runner's lock); 0 when memory ran out. */
static int push(udp_t ***list, size_t *count, size_t *cap, udp_t *u) {
  if (*count == *cap) {
    size_t want = *cap ? *cap * 2 : 64;
    udp_t **grown = realloc(*list, want * sizeof **list);
    if (grown == NULL) return 0;
    *list = grown;
    *cap = want;
  }
  (*list)[(*count)++] = u;
  return 1;
}

/* Tells the runner that u's on_runner changed; the queue entry holds a share of u. 0 when it could not be queued. */
int tftp_runner_enqueue(runner_t *r, udp_t *u) {
  udp_hold(u);
  pthread_mutex_lock(&r->lock);
  int ok = push(&r->queue, &r->queued, &r->queue_cap, u);
  pthread_mutex_unlock(&r->lock);
  if (!ok) {
    udp_release(u);
    return 0;
  }
  uint64_t one = 1;
  if (write(r->wake_fd, &one, sizeof one) < 0) { /* the counter is full: the thread is awake anyway */
  }
  return 1;
}

/*
 * Takes a run back from the runner (JS thread): the event loop polls the socket again at once; the runner, which
 * no longer reads it (on_runner is 0), drops it from its epoll when it gets to the queue. 1 when it was on the runner.
 */
int tftp_runner_take_back(udp_t *u) {
  pthread_mutex_lock(&u->lock);
  int was = u->on_runner;
  u->on_runner = 0;
  pthread_mutex_unlock(&u->lock);
  if (!was) return 0;
  if (!u->closing) uv_poll_start(&u->poll, UV_READABLE, udp_on_readable);
  /* Out of memory for the queue entry: the runner drops the socket from its epoll at its next readiness instead (see
   * serve); one that never becomes readable again stays registered until the runner stops. */
  tftp_runner_enqueue(u->runner, u);
  return 1;
}

/*
 * Runner thread, u locked and on the runner: answers every exact ACK waiting in the socket with the next block. A
 * datagram that is anything else is left unread (MSG_PEEK) and the socket handed back to the event loop, whose
 * udp_on_readable reads it and ends the run there, or answers it if it is the awaited ACK after all.
 */
static void serve(udp_t *u) {
  for (;;) {
    unsigned char p[8];
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(u->fd, p, sizeof p, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT, (struct sockaddr *)&from, &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      break; /* a receive error: the event loop reads it and tells JS */
    }
    if (n == 4 && p[0] == 0 && p[1] == 4 && ((p[2] << 8) | p[3]) == (int)((uint64_t)u->run_sent & 0xffff) &&
        u->run_sent < u->run_total && udp_same_address(&from, &u->peer)) {
      (void)recv(u->fd, p, sizeof p, MSG_DONTWAIT);
      udp_run_next(u);
      continue;
    }
    break;
  }
  u->on_runner = 0;
  u->handed_back = 1;
}

/* Runner thread: brings its epoll in line with a queued socket's on_runner, then drops the entry's share. */
static void settle_entry(runner_t *r, udp_t *u) {
  pthread_mutex_lock(&u->lock);
  int want = u->on_runner;
  int back = u->handed_back;
  if (!want) u->handed_back = 0;
  pthread_mutex_unlock(&u->lock);
  if (want && !u->in_epoll) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = u};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, u->fd, &ev) == 0) {
      u->in_epoll = 1;
      udp_hold(u);
      __atomic_add_fetch(&u->fd_users, 1, __ATOMIC_RELAXED);
    } else {
      /* Cannot watch it: give the run back to the event loop, which serves runs itself. */
      pthread_mutex_lock(&u->lock);
      u->on_runner = 0;
      pthread_mutex_unlock(&u->lock);
      back = 1;
    }
  } else if (!want && u->in_epoll) {
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, u->fd, NULL);
    u->in_epoll = 0;
    udp_release_fd(u);
    udp_release(u);
  }
  if (!want && back) {
    /* The event loop polls the socket again; the entry's share goes with it. */
    pthread_mutex_lock(&r->lock);
    int ok = push(&r->back, &r->backs, &r->back_cap, u);
    pthread_mutex_unlock(&r->lock);
    if (ok) {
      napi_call_threadsafe_function(r->tsfn, NULL, napi_tsfn_nonblocking);
      return;
    }
  }
  udp_release(u);
}

static void *runner_main(void *arg) {
  runner_t *r = arg;
  pthread_setname_np(pthread_self(), "pxebox-tftp");
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(r->epfd, events, 64, -1);
    for (int i = 0; i < n; i++) {
      udp_t *u = events[i].data.ptr;
      if (u == NULL) {
        uint64_t count;
        if (read(r->wake_fd, &count, sizeof count) < 0) { /* EAGAIN: already read */
        }
        continue;
      }
      pthread_mutex_lock(&u->lock);
      int mine = u->on_runner;
      if (mine) serve(u);
      int gone = !u->on_runner;
      pthread_mutex_unlock(&u->lock);
      /* Handed back, or taken back by JS without a queue entry reaching us yet: stop watching it now. */
      if (gone && u->in_epoll) {
        udp_hold(u);
        settle_entry(r, u);
      }
    }
    pthread_mutex_lock(&r->lock);
    int stop = r->stop;
    udp_t **queue = r->queue;
    size_t queued = r->queued;
    r->queue = NULL;
    r->queued = r->queue_cap = 0;
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < queued; i++) settle_entry(r, queue[i]);
    free(queue);
    if (stop) return NULL;
  }
}

/* Event loop: polls the sockets the runner gave back, so their waiting datagram reaches JS. */
static void runner_back(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)data;
  if (env == NULL) return;
  runner_t *r = context;
  pthread_mutex_lock(&r->lock);
  udp_t **back = r->back;
  size_t backs = r->backs;
  r->back = NULL;
  r->backs = r->back_cap = 0;
  pthread_mutex_unlock(&r->lock);
  for (size_t i = 0; i < backs; i++) {
    udp_t *u = back[i];
    /* Unless JS has started another run on the runner since (its retransmit timer), or closed the socket. */
    pthread_mutex_lock(&u->lock);
    int on_runner = u->on_runner;
    pthread_mutex_unlock(&u->lock);
    if (!u->closing && !on_runner) uv_poll_start(&u->poll, UV_READABLE, udp_on_readable);
    udp_release(u);
  }
  free(back);
}

/* At environment teardown (process exit, a worker ending): stops the thread. Sockets it held are not freed. */
static void runner_stop(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  runner_t *r = data;
  pthread_mutex_lock(&r->lock);
  r->stop = 1;
  pthread_mutex_unlock(&r->lock);
  uint64_t one = 1;
  if (write(r->wake_fd, &one, sizeof one) < 0) {
  }
  pthread_join(r->thread, NULL);
  napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
  close(r->epfd);
  close(r->wake_fd);
  free(r->back);
  /* r itself is left: the threadsafe function's pending calls may still name it while the environment goes. */
}

/* The environment's runner, started on first use; NULL when it cannot be (runs then stay on the event loop). */
runner_t *tftp_runner_for(napi_env env) {
  runner_t *r = NULL;
  if (napi_get_instance_data(env, (void **)&r) == napi_ok && r != NULL) return r;
  const char *mode = getenv("PXEBOX_TFTP_RUNNER");
  if (mode != NULL && strcmp(mode, "off") == 0) return NULL;
  r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  napi_value name;
  if (r->epfd < 0 || r->wake_fd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wake_fd, &ev) < 0 ||
      napi_create_string_utf8(env, "pxebox:tftp-runner", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, r, runner_back, &r->tsfn) != napi_ok) {
    if (r->epfd >= 0) close(r->epfd);
    if (r->wake_fd >= 0) close(r->wake_fd);
    free(r);
    return NULL;
  }
  napi_unref_threadsafe_function(env, r->tsfn);
  pthread_mutex_init(&r->lock, NULL);
  if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
    close(r->epfd);
    close(r->wake_fd);
    pthread_mutex_destroy(&r->lock);
    /* r stays: the threadsafe function's finalizer may still run; it names r only as context */
    return NULL;
  }
  if (napi_set_instance_data(env, r, runner_stop, NULL) != napi_ok) {
    runner_stop(env, r, NULL);
    return NULL;
  }
  return r;
}
