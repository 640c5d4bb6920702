/*
 * sendfile(2) for pxebox's HTTP assets, sent by a thread of pxebox's own that owns every asset body in flight, as
 * nginx's worker does. It waits for each socket's writability itself (epoll) and hands the kernel file ranges; the
 * event loop queues a body and hears back once, when it is done. Issue 18: in a boot storm each lock-step TFTP block
 * waited ~5 ms behind asset sends on the one event loop. sendfile jobs on libuv's pool returned at every full socket,
 * and the loop then wrote a 64 KiB piece through Node only to learn when the socket drained: for slow clients that is
 * one round of loop work per few hundred KiB sent, and it was 21-30% of the main thread in bench/storm.sh's profile.
 *
 * Exports:
 *   senderOpen(idleMs) -> handle
 *       starts the thread. A body whose socket takes no byte for idleMs fails with ETIMEDOUT (a stalled client must not
 *       hold its file and socket forever; nothing else times it out, since Node no longer writes to the socket).
 *   senderSend(handle, socketFd, fileFd, offset, length) -> Promise<number>
 *       sends `length` bytes of fileFd from `offset` on a private duplicate of socketFd (Node may close its descriptor
 *       at any time: a client reset; the duplicate is never a reused number). Resolves with the bytes sent: `length`,
 *       or fewer when the file ended early (it shrank). Rejects with an errno Error (errors.h: EPIPE, ECONNRESET,
 *       ETIMEDOUT, ECANCELED when the sender closed first). The caller keeps fileFd open until it settles.
 *   senderClose(handle)
 *       stops the thread, fails what is still in flight with ECANCELED; idempotent. The handle's finalizer does the same.
 * Bodies are served round-robin, at most SEND_QUANTUM bytes per socket per turn, so one fast client on loopback cannot
 * starve the others. A cold page-cache read blocks the thread (as nginx without aio threads): boot assets are read
 * by every machine of a rack, so they are cached after the first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#include "errors.h"
#include "napi-util.h"
#include "failpoint.h"

/* Bytes sent to one socket before the others get their turn. */
#define SEND_QUANTUM (1024 * 1024)
#define EVENTS 256
/* How often stalled bodies are looked for, ms. */
#define SWEEP_MS 1000

typedef struct job {
  struct job *next;           /* incoming or done list */
  struct job *prev_active;    /* the thread's list of bodies it serves */
  struct job *next_active;
  int out_fd;                 /* our duplicate of the socket */
  int in_fd;                  /* the caller's file */
  off_t offset;
  size_t length;
  size_t sent;
  int error;                  /* errno that ended the body, else 0 */
  int64_t progress_ms;        /* when the socket last took bytes */
  napi_deferred deferred;
} job_t;

typedef struct {
  pthread_t thread;
  int epfd;
  int wake_fd;
  int idle_ms;
  pthread_mutex_t lock;       /* guards incoming, done, stop */
  job_t *incoming;
  job_t *done;
  int stop;
  job_t *active;              /* the thread's own; read by JS only after the join */
  napi_threadsafe_function tsfn;
  int closed;                 /* senderClose ran (JS thread only) */
  int owners;                 /* the JS handle and the threadsafe function, each until finalized */
} sender_t;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void release(sender_t *s) {
  if (--s->owners > 0) return;
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/*
 * TCP_CORK while a body is sent, as nginx's `tcp_nopush on` (Debian's stock setting): the kernel sends only full
 * segments, where a socket with a little room freed would otherwise push a short one at every sendfile call. Cleared
 * at the end so the body's tail and whatever Node writes next (the next response on a kept-alive connection) leave
 * at once. Not a TCP socket (a test's Unix socket): no effect, no error.
 */
static void cork(int fd, int on) {
  setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

/* Thread side: the body is over (done, short or failed); hand it to the JS thread. */
static void finish(sender_t *s, job_t *j) {
  epoll_ctl(s->epfd, EPOLL_CTL_DEL, j->out_fd, NULL);
  cork(j->out_fd, 0);
  close(j->out_fd);
  j->out_fd = -1;
  if (j->prev_active) j->prev_active->next_active = j->next_active;
  else s->active = j->next_active;
  if (j->next_active) j->next_active->prev_active = j->prev_active;
  pthread_mutex_lock(&s->lock);
  int wake = s->done == NULL;
  j->next = s->done;
  s->done = j;
  pthread_mutex_unlock(&s->lock);
  /* One call per batch: the JS side takes the whole list. */
  if (wake) napi_call_threadsafe_function(s->tsfn, NULL, napi_tsfn_nonblocking);
}

/* Thread side: send up to a quantum; a full socket (EAGAIN) waits for the next EPOLLOUT. */
static void pump(sender_t *s, job_t *j) {
  size_t turn = 0;
  while (j->sent < j->length && turn < SEND_QUANTUM) {
    size_t want = j->length - j->sent;
    if (want > SEND_QUANTUM - turn) want = SEND_QUANTUM - turn;
    ssize_t n = sendfile(j->out_fd, j->in_fd, &j->offset, want);
    if (n > 0) {
      j->sent += (size_t)n;
      turn += (size_t)n;
      continue;
    }
    if (n == 0) break; /* end of file: it shrank; the caller sees the short count */
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (turn > 0) j->progress_ms = now_ms();
      return;
    }
    j->error = errno;
    break;
  }
  if (turn > 0) j->progress_ms = now_ms();
  /* Level-triggered: a socket with room left after its quantum is reported again on the next turn. */
  if (j->sent < j->length && j->error == 0 && turn >= SEND_QUANTUM) return;
  finish(s, j);
}

static void *run(void *arg) {
  sender_t *s = arg;
  /* Named so `top -H` and bench/storm.sh can tell the asset bodies' CPU from the event loop's (threads otherwise
   * inherit "node"). At most 15 characters. */
  pthread_setname_np(pthread_self(), "pxebox-sender");
  struct epoll_event events[EVENTS];
  int64_t next_sweep = now_ms() + SWEEP_MS;
  for (;;) {
    int n = epoll_wait(s->epfd, events, EVENTS, SWEEP_MS);
    /* The wake-up is read before the list is taken: a body queued after the read wakes the next epoll_wait, while one
     * queued between taking the list and reading would wait for the next sweep. */
    for (int i = 0; i < n; i++) {
      uint64_t count;
      if (events[i].data.ptr == NULL && read(s->wake_fd, &count, sizeof count) < 0) { /* EAGAIN: already read */
      }
    }
    pthread_mutex_lock(&s->lock);
    int stop = s->stop;
    job_t *incoming = s->incoming;
    s->incoming = NULL;
    pthread_mutex_unlock(&s->lock);
    if (stop) {
      /* senderClose settles these after the join */
      pthread_mutex_lock(&s->lock);
      s->incoming = incoming;
      pthread_mutex_unlock(&s->lock);
      return NULL;
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr != NULL) pump(s, events[i].data.ptr);
    }
    int64_t now = now_ms();
    while (incoming != NULL) {
      job_t *j = incoming;
      incoming = j->next;
      j->next = NULL;
      j->prev_active = NULL;
      j->next_active = s->active;
      if (s->active) s->active->prev_active = j;
      s->active = j;
      j->progress_ms = now;
      cork(j->out_fd, 1);
      struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = j};
      if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, j->out_fd, &ev) < 0) {
        j->error = errno;
        finish(s, j);
      }
    }
    if (now >= next_sweep) {
      next_sweep = now + SWEEP_MS;
      for (job_t *j = s->active, *next; j != NULL; j = next) {
        next = j->next_active;
        if (now - j->progress_ms >= s->idle_ms) {
          j->error = ETIMEDOUT;
          finish(s, j);
        }
      }
    }
  }
}

/* JS side: settle every finished body. */
static void settle(napi_env env, sender_t *s) {
  pthread_mutex_lock(&s->lock);
  job_t *j = s->done;
  s->done = NULL;
  pthread_mutex_unlock(&s->lock);
  while (j != NULL) {
    job_t *next = j->next;
    napi_value value;
    if (j->error != 0) {
      value = pxebox_errno_error(env, j->error, "sendfile");
      if (value != NULL) napi_reject_deferred(env, j->deferred, value);
    } else if (napi_create_double(env, (double)j->sent, &value) == napi_ok) {
      napi_resolve_deferred(env, j->deferred, value);
    }
    free(j);
    j = next;
  }
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)data;
  if (env == NULL) return; /* being torn down: senderClose settles what is left */
  settle(env, context);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  release(data);
}

/* Stops the thread and fails what it still held; the JS thread, once. */
static void stop_sender(napi_env env, sender_t *s) {
  if (s->closed) return;
  s->closed = 1;
  pthread_mutex_lock(&s->lock);
  s->stop = 1;
  pthread_mutex_unlock(&s->lock);
  uint64_t one = 1;
  if (write(s->wake_fd, &one, sizeof one) < 0) { /* the counter is full: the thread is awake anyway */
  }
  pthread_join(s->thread, NULL);
  job_t *cancelled[2] = {s->active, s->incoming};
  s->active = NULL;
  s->incoming = NULL;
  for (job_t *j = cancelled[0], *next; j != NULL; j = next) {
    next = j->next_active;
    close(j->out_fd);
    j->error = ECANCELED;
    j->next = s->done;
    s->done = j;
  }
  for (job_t *j = cancelled[1], *next; j != NULL; j = next) {
    next = j->next;
    close(j->out_fd);
    j->error = ECANCELED;
    j->next = s->done;
    s->done = j;
  }
  settle(env, s);
  close(s->epfd);
  close(s->wake_fd);
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  sender_t *s = data;
  stop_sender(env, s);
  release(s);
}

/* What a call given something other than senderOpen's handle throws. */
static const char NOT_SENDER[] = "expected a sender handle from senderOpen";

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t idle_ms = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &idle_ms) != napi_ok || idle_ms <= 0) {
    napi_throw_type_error(env, NULL, "senderOpen(idleMs): idleMs must be a positive integer");
    return NULL;
  }
  sender_t *s = calloc(1, sizeof *s);
  if (s == NULL) return pxebox_throw_errno(env, ENOMEM, "senderOpen");
  s->idle_ms = idle_ms;
  s->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (s->epfd < 0) {
    int err = errno;
    free(s);
    return pxebox_throw_errno(env, err, "epoll_create1");
  }
  s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (s->wake_fd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_fd, &ev) < 0) {
    int err = errno;
    if (s->wake_fd >= 0) close(s->wake_fd);
    close(s->epfd);
    free(s);
    return pxebox_throw_errno(env, err, "eventfd");
  }
  pthread_mutex_init(&s->lock, NULL);
  napi_value name, handle;
  if (napi_create_string_utf8(env, "pxebox:sender", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      pxebox_failpoint("senderOpen:callback") ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, s, tsfn_finalize, s, call_js, &s->tsfn) != napi_ok) {
    close(s->wake_fd);
    close(s->epfd);
    pthread_mutex_destroy(&s->lock);
    free(s);
    napi_throw_error(env, NULL, "pxebox_native: could not create the sender's callback");
    return NULL;
  }
  /* The HTTP server keeps the loop alive while bodies are in flight; the sender itself must not. */
  napi_unref_threadsafe_function(env, s->tsfn);
  s->owners = 2;
  int err = pxebox_failpoint("senderOpen:thread") ? EAGAIN : pthread_create(&s->thread, NULL, run, s);
  if (err != 0) {
    close(s->wake_fd);
    close(s->epfd);
    s->closed = 1;
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort); /* its finalizer releases one owner */
    release(s);
    return pxebox_throw_errno(env, err, "pthread_create");
  }
  if (napi_create_external(env, s, finalize, NULL, &handle) != napi_ok) {
    stop_sender(env, s);
    release(s);
    napi_throw_error(env, NULL, "pxebox_native: could not create the sender handle");
    return NULL;
  }
  return handle;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  sender_t *s = pxebox_handle_args(env, info, &argc, argv, 5, "senderSend(handle, socketFd, fileFd, offset, length)", NOT_SENDER);
  if (s == NULL) return NULL;
  int32_t out_fd, in_fd;
  double offset, length;
  if (napi_get_value_int32(env, argv[1], &out_fd) != napi_ok || out_fd < 0 || napi_get_value_int32(env, argv[2], &in_fd) != napi_ok || in_fd < 0) {
    napi_throw_type_error(env, NULL, "expected a file descriptor");
    return NULL;
  }
  if (napi_get_value_double(env, argv[3], &offset) != napi_ok || napi_get_value_double(env, argv[4], &length) != napi_ok || !(offset >= 0) ||
      !(length >= 0) || offset > 9007199254740991.0 || length > 9007199254740991.0) {
    napi_throw_range_error(env, NULL, "offset and length must be non-negative safe integers");
    return NULL;
  }
  napi_deferred deferred;
  napi_value promise;
  if (napi_create_promise(env, &deferred, &promise) != napi_ok) {
    napi_throw_error(env, NULL, "pxebox_native: could not create the send promise");
    return NULL;
  }
  if (s->closed) {
    napi_reject_deferred(env, deferred, pxebox_errno_error(env, ECANCELED, "sendfile"));
    return promise;
  }
  int copy = fcntl(out_fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    napi_reject_deferred(env, deferred, pxebox_errno_error(env, errno, "dup"));
    return promise;
  }
  job_t *j = calloc(1, sizeof *j);
  if (j == NULL) {
    close(copy);
    napi_reject_deferred(env, deferred, pxebox_errno_error(env, ENOMEM, "sendfile"));
    return promise;
  }
  j->out_fd = copy;
  j->in_fd = in_fd;
  j->offset = (off_t)offset;
  j->length = (size_t)length;
  j->deferred = deferred;
  pthread_mutex_lock(&s->lock);
  j->next = s->incoming;
  s->incoming = j;
  pthread_mutex_unlock(&s->lock);
  uint64_t one = 1;
  if (write(s->wake_fd, &one, sizeof one) < 0) { /* the counter is full: the thread is awake anyway */
  }
  return promise;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  sender_t *s = pxebox_handle_args(env, info, &argc, argv, 1, "senderClose(handle)", NOT_SENDER);
  if (s == NULL) return NULL;
  stop_sender(env, s);
  return NULL;
}

napi_value pxebox_sendfile_init(napi_env env, napi_value exports) {
  const pxebox_export_t fns[] = {{"senderOpen", js_open}, {"senderSend", js_send}, {"senderClose", js_close}};
  return PXEBOX_EXPORT_ALL(env, exports, fns);
}
