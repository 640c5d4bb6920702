/*
 * sendfile(2) for pxebox's HTTP assets. Node copies every byte of a file through user space twice (read into a
 * buffer, write into the socket); nginx hands the kernel a file range instead. On a 200 MB initrd the copy path
 * reached about half of nginx's throughput with 8 clients.
 *
 * Exports (all numbers are plain JS numbers):
 *   dup(fd) -> fd          a private duplicate of a socket's descriptor. Node may close its own descriptor at any
 *                          time (client reset, timeout); sending on a duplicate means an in-flight sendfile can never
 *                          write into a descriptor number that was closed and reused by another connection.
 *   close(fd)              closes a descriptor returned by dup.
 *   sendfile(out, in, offset, length) -> Promise<number>
 *                          runs on libuv's thread pool (a cold page-cache read must not stall the event loop) and
 *                          sends until `length` bytes are sent or the non-blocking socket is full (EAGAIN). Resolves
 *                          with the bytes sent, which is less than `length` only when the socket is full or the file
 *                          ended early; the caller waits for the socket to drain. Rejects with an Error whose `code`
 *                          is the errno name (EPIPE, ECONNRESET, ...), with `errno` and `syscall` (errors.h), when
 *                          nothing could be sent; also rejects, never stays pending, when the job cannot be queued.
 * It never waits for the socket itself: a slow client must not hold a thread-pool thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/types.h>
#include <unistd.h>
#include <node_api.h>

#include "errors.h"
#include "failpoint.h"

#define CHECK(call)                                                  \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      napi_throw_error(env, NULL, "pxebox_native: " #call " failed"); \
      return NULL;                                                   \
    }                                                                \
  } while (0)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int out_fd;
  int in_fd;
  off_t offset;
  size_t length;
  size_t sent;
  int error; /* errno when nothing was sent, else 0 */
} job_t;

static int get_fd(napi_env env, napi_value v, int *fd) {
  int32_t n;
  if (napi_get_value_int32(env, v, &n) != napi_ok || n < 0) {
    napi_throw_type_error(env, NULL, "expected a file descriptor");
    return 0;
  }
  *fd = n;
  return 1;
}

/* The one descriptor argument of dup() and close(); throws and returns 0 when it is missing or not a descriptor. */
static int fd_argument(napi_env env, napi_callback_info info, int *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "expected a file descriptor");
    return 0;
  }
  return get_fd(env, argv[0], fd);
}

static napi_value js_dup(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_argument(env, info, &fd)) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return pxebox_throw_errno(env, errno, "dup");
  napi_value result;
  CHECK(napi_create_int32(env, copy, &result));
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_argument(env, info, &fd)) return NULL;
  /* Linux closes the descriptor even when close() reports EINTR; retrying could close someone else's. */
  close(fd);
  return NULL;
}

static void execute(napi_env env, void *data) {
  (void)env;
  job_t *job = data;
  while (job->sent < job->length) {
    size_t want = job->length - job->sent;
    if (want > (size_t)1 << 30) want = (size_t)1 << 30;
    ssize_t n = sendfile(job->out_fd, job->in_fd, &job->offset, want);
    if (n > 0) {
      job->sent += (size_t)n;
      continue;
    }
    if (n == 0) break; /* end of file: the file shrank; the caller notices the short count */
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break; /* socket full: the caller waits for it to drain */
    if (job->sent == 0) job->error = errno;
    break;
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  napi_value value;
  if (status != napi_ok) {
    napi_value msg;
    napi_create_string_utf8(env, "pxebox_native: sendfile job was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &value);
    napi_reject_deferred(env, job->deferred, value);
  } else if (job->error != 0) {
    napi_reject_deferred(env, job->deferred, pxebox_errno_error(env, job->error, "sendfile"));
  } else {
    napi_create_double(env, (double)job->sent, &value);
    napi_resolve_deferred(env, job->deferred, value);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

/*
 * A job that never reached the thread pool: complete() will not run for it, so its work item is deleted and its promise
 * rejected here. The promise already exists, so the caller gets a rejection like any failed send rather than a promise
 * that never settles (a request that hangs until the client gives up, with the file handle held).
 */
static void fail_unqueued(napi_env env, job_t *job, const char *why) {
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  napi_value msg, error;
  if (napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &msg) == napi_ok && napi_create_error(env, NULL, msg, &error) == napi_ok) {
    napi_reject_deferred(env, job->deferred, error);
  }
  free(job);
}

static napi_value js_sendfile(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "sendfile(outFd, inFd, offset, length)");
    return NULL;
  }
  int out_fd, in_fd;
  if (!get_fd(env, argv[0], &out_fd) || !get_fd(env, argv[1], &in_fd)) return NULL;
  double offset, length;
  if (napi_get_value_double(env, argv[2], &offset) != napi_ok || napi_get_value_double(env, argv[3], &length) != napi_ok ||
      !(offset >= 0) || !(length >= 0) || offset > 9007199254740991.0 || length > 9007199254740991.0) {
    napi_throw_range_error(env, NULL, "offset and length must be non-negative safe integers");
    return NULL;
  }
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->out_fd = out_fd;
  job->in_fd = in_fd;
  job->offset = (off_t)offset;
  job->length = (size_t)length;
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    free(job);
    napi_throw_error(env, NULL, "pxebox_native: could not create the sendfile promise");
    return NULL;
  }
  if (napi_create_string_utf8(env, "pxebox:sendfile", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      pxebox_failpoint("sendfile:create") || napi_create_async_work(env, NULL, name, execute, complete, job, &job->work) != napi_ok) {
    job->work = NULL;
    fail_unqueued(env, job, "pxebox_native: could not create the sendfile job");
    return promise;
  }
  if (pxebox_failpoint("sendfile:queue") || napi_queue_async_work(env, job->work) != napi_ok) {
    fail_unqueued(env, job, "pxebox_native: could not queue the sendfile job");
    return promise;
  }
  return promise;
}

napi_value pxebox_sendfile_init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "dup", NAPI_AUTO_LENGTH, js_dup, NULL, &fn);
  napi_set_named_property(env, exports, "dup", fn);
  napi_create_function(env, "close", NAPI_AUTO_LENGTH, js_close, NULL, &fn);
  napi_set_named_property(env, exports, "close", fn);
  napi_create_function(env, "sendfile", NAPI_AUTO_LENGTH, js_sendfile, NULL, &fn);
  napi_set_named_property(env, exports, "sendfile", fn);
  return exports;
}
