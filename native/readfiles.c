/*
 * Many small files read in one call, off the event loop (issue 16: a Matchbox folder of 100,000 group files).
 * Node reads a file with four system calls (open, fstat, read, close), each a trip through its fs binding that builds
 * a Stats object or an exception; at 100,000 files that was ~2.5 s of the main thread, a third of the start. Here a
 * libuv pool thread opens each name relative to one directory descriptor (no path walk per file), fstat's, reads and
 * closes it, and the loop hears back once per batch.
 *
 * Exports:
 *   readFilesAt(dir, names, maxBytes) -> Promise<[Buffer, Float64Array]>
 *       reads `dir`/name for each name, under the same rule as src/host/read-file.ts: opened O_NONBLOCK (a FIFO never
 *       blocks the open), fstat'ed on the descriptor, only a regular file, at most maxBytes even when its size is
 *       wrong. The Buffer holds the contents one after another; results[2i], results[2i+1] are name i's offset and
 *       length in it, or -1 and the errno (or 0 when it is not a regular file or over maxBytes) when it was not read.
 *       JS reads such a file again through read-file.ts for the error it reports, so messages stay Node's. Never
 *       rejects for a file; rejects with a TypeError for bad arguments and ENOMEM when the buffer cannot grow.
 *   listDir(dir) -> Promise<Buffer>
 *       the names in `dir` (not "." and ".."), each followed by a NUL byte, in the directory's own order. Node's
 *       readdir hands 100,000 names to the loop as one array built in one piece (a 70-230 ms stall of a reload);
 *       a Buffer is split by the caller in slices. Rejects with an errno Error (errors.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <node_api.h>

#include "errors.h"
#include "napi-util.h"

/* A growing byte buffer; cap 0 and data NULL when empty. */
typedef struct {
  char *data;
  size_t len, cap;
} bytes_t;

/* Room for `more` bytes after len; 0 or ENOMEM. */
static int reserve(bytes_t *b, size_t more) {
  if (b->cap - b->len >= more) return 0;
  size_t cap = b->cap < 64 * 1024 ? 64 * 1024 : b->cap;
  while (cap - b->len < more) cap *= 2;
  char *data = realloc(b->data, cap);
  if (data == NULL) return ENOMEM;
  b->data = data;
  b->cap = cap;
  return 0;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *dir;
  char **names;
  size_t count;
  double max;
  bytes_t out;
  double *results; /* 2 per name */
  int err;         /* a failure of the whole call (ENOMEM), else 0 */
} read_job_t;

/* Read one file into job->out; its result pair. A file not read leaves out.len as it was. */
static void read_one(read_job_t *job, int dirfd, size_t i) {
  double *r = &job->results[2 * i];
  size_t start = job->out.len;
  r[0] = -1;
  r[1] = 0;
  int fd = openat(dirfd, job->names[i], O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    r[1] = errno;
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    r[1] = errno;
    close(fd);
    return;
  }
  if (!S_ISREG(st.st_mode) || (double)st.st_size > job->max) {
    close(fd);
    return;
  }
  size_t total = 0;
  int failed = 0;
  for (;;) {
    /* First read sized to the file plus one byte (to see it end); a file that grew is read on in 64 KiB steps. */
    size_t want = total == 0 ? (size_t)st.st_size + 1 : 64 * 1024;
    if (reserve(&job->out, want) != 0) {
      job->err = ENOMEM;
      failed = 1;
      break;
    }
    ssize_t n = read(fd, job->out.data + start + total, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r[1] = errno;
      failed = 1;
      break;
    }
    if (n == 0) break;
    total += (size_t)n;
    job->out.len = start + total;
    if ((double)total > job->max) {
      failed = 1;
      break;
    }
    /* As read-file.ts: a regular file that gave exactly its fstat size, short of what was asked, has ended. */
    if ((size_t)n < want && total == (size_t)st.st_size) break;
  }
  close(fd);
  if (failed) {
    job->out.len = start;
    return;
  }
  r[0] = (double)start;
  r[1] = (double)total;
}

static void read_execute(napi_env env, void *data) {
  (void)env;
  read_job_t *job = data;
  int dirfd = open(job->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; i < job->count; i++) {
    if (dirfd < 0) {
      job->results[2 * i] = -1;
      job->results[2 * i + 1] = errno;
      continue;
    }
    if (job->err == 0) read_one(job, dirfd, i);
    else job->results[2 * i] = -1, job->results[2 * i + 1] = job->err;
  }
  if (dirfd >= 0) close(dirfd);
}

static void free_bytes(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void read_job_free(read_job_t *job) {
  for (size_t i = 0; i < job->count; i++) free(job->names[i]);
  free(job->names);
  free(job->dir);
  free(job->results);
  free(job->out.data);
  free(job);
}

/* The Buffer over `b`, taking it (external, no copy) where the runtime allows, else a copy. NULL on failure. */
static napi_value take_buffer(napi_env env, bytes_t *b) {
  napi_value buf;
  if (b->len > 0 && napi_create_external_buffer(env, b->len, b->data, free_bytes, NULL, &buf) == napi_ok) {
    b->data = NULL;
    b->len = b->cap = 0;
    return buf;
  }
  /* Empty, or external buffers refused (a sandboxed V8): a copy. The pending-exception state is cleared first. */
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  void *copy;
  if (napi_create_buffer_copy(env, b->len, b->len > 0 ? b->data : "", &copy, &buf) != napi_ok) return NULL;
  return buf;
}

static void read_complete(napi_env env, napi_status status, void *data) {
  read_job_t *job = data;
  napi_value result = NULL;
  if (status == napi_ok && job->err == 0) {
    napi_value buf = take_buffer(env, &job->out), ab, arr, pair;
    void *abdata;
    if (buf != NULL && napi_create_arraybuffer(env, 16 * job->count, &abdata, &ab) == napi_ok &&
        napi_create_typedarray(env, napi_float64_array, 2 * job->count, ab, 0, &arr) == napi_ok &&
        napi_create_array_with_length(env, 2, &pair) == napi_ok && napi_set_element(env, pair, 0, buf) == napi_ok &&
        napi_set_element(env, pair, 1, arr) == napi_ok) {
      if (job->count > 0) memcpy(abdata, job->results, 16 * job->count);
      result = pair;
    }
  }
  if (result != NULL) napi_resolve_deferred(env, job->deferred, result);
  else napi_reject_deferred(env, job->deferred, pxebox_errno_error(env, job->err != 0 ? job->err : ENOMEM, "readFilesAt"));
  napi_delete_async_work(env, job->work);
  read_job_free(job);
}

/* A JS string as a malloc'ed C string; NULL (nothing thrown) when it is not a string or memory is short. */
static char *c_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) { /* an embedded NUL would name another file */
    free(s);
    return NULL;
  }
  return s;
}

static napi_value js_read_files_at(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], promise, name;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_array = false;
  uint32_t count = 0;
  double max = -1;
  if (argc < 3 || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &count) != napi_ok || napi_get_value_double(env, argv[2], &max) != napi_ok ||
      !(max >= 0)) {
    napi_throw_type_error(env, NULL, "readFilesAt(dir, names, maxBytes): a string, an array of strings, a number >= 0");
    return NULL;
  }
  read_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return pxebox_throw_errno(env, ENOMEM, "readFilesAt");
  job->max = max;
  job->dir = c_string(env, argv[0]);
  job->names = calloc(count > 0 ? count : 1, sizeof *job->names);
  job->results = calloc(count > 0 ? 2 * (size_t)count : 1, sizeof *job->results);
  bool bad = job->dir == NULL || job->names == NULL || job->results == NULL;
  for (uint32_t i = 0; !bad && i < count; i++) {
    if (napi_get_element(env, argv[1], i, &name) != napi_ok || (job->names[i] = c_string(env, name)) == NULL) bad = true;
    job->count = i + 1;
  }
  napi_value resource;
  if (bad || napi_create_string_utf8(env, "pxebox.readFilesAt", NAPI_AUTO_LENGTH, &resource) != napi_ok ||
      napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_async_work(env, NULL, resource, read_execute, read_complete, job, &job->work) != napi_ok) {
    read_job_free(job);
    napi_throw_type_error(env, NULL, "readFilesAt(dir, names, maxBytes): a string, an array of strings, a number >= 0");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    read_job_free(job);
    return pxebox_throw_errno(env, EAGAIN, "readFilesAt");
  }
  return promise;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *dir;
  bytes_t out;
  int err;
  const char *syscall;
} list_job_t;

static void list_execute(napi_env env, void *data) {
  (void)env;
  list_job_t *job = data;
  DIR *d = opendir(job->dir);
  if (d == NULL) {
    job->err = errno;
    job->syscall = "opendir";
    return;
  }
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (e == NULL) {
      if (errno != 0) job->err = errno, job->syscall = "readdir";
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    size_t n = strlen(e->d_name) + 1;
    if (reserve(&job->out, n) != 0) {
      job->err = ENOMEM;
      job->syscall = "listDir";
      break;
    }
    memcpy(job->out.data + job->out.len, e->d_name, n);
    job->out.len += n;
  }
  closedir(d);
}

static void list_complete(napi_env env, napi_status status, void *data) {
  list_job_t *job = data;
  napi_value buf = NULL;
  if (status == napi_ok && job->err == 0) buf = take_buffer(env, &job->out);
  if (buf != NULL) napi_resolve_deferred(env, job->deferred, buf);
  else napi_reject_deferred(env, job->deferred, pxebox_errno_error(env, job->err != 0 ? job->err : ENOMEM, job->syscall != NULL ? job->syscall : "listDir"));
  napi_delete_async_work(env, job->work);
  free(job->out.data);
  free(job->dir);
  free(job);
}

static napi_value js_list_dir(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise, resource;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  list_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return pxebox_throw_errno(env, ENOMEM, "listDir");
  if (argc < 1 || (job->dir = c_string(env, argv[0])) == NULL ||
      napi_create_string_utf8(env, "pxebox.listDir", NAPI_AUTO_LENGTH, &resource) != napi_ok ||
      napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_async_work(env, NULL, resource, list_execute, list_complete, job, &job->work) != napi_ok) {
    free(job->dir);
    free(job);
    napi_throw_type_error(env, NULL, "listDir(dir): a string");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    free(job->dir);
    free(job);
    return pxebox_throw_errno(env, EAGAIN, "listDir");
  }
  return promise;
}

napi_value pxebox_readfiles_init(napi_env env, napi_value exports) {
  const pxebox_export_t fns[] = {{"readFilesAt", js_read_files_at}, {"listDir", js_list_dir}};
  return PXEBOX_EXPORT_ALL(env, exports, fns);
}
