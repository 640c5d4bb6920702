/*
 * sd_notify(3) without libsystemd: one datagram to the service manager's socket.
 *   sdNotify(state) -> true if sent, false when NOTIFY_SOCKET is unset (not started by systemd with Type=notify*);
 *                      throws an Error whose code is the errno name when the socket refuses it
 * Node has no AF_UNIX datagram sockets, and this is the whole protocol (systemd's sd_notify(3), "NOTIFY_SOCKET"):
 * the state ("READY=1\nSTATUS=...") as one datagram to the path in $NOTIFY_SOCKET, where a leading '@' names a
 * socket in the abstract namespace (sun_path starting with a NUL byte, its length given by the address length, not
 * NUL-terminated). systemd credits the message to the sending PID (SCM_CREDENTIALS are attached by the kernel), so it
 * must come from the main process itself, which is why this is not a spawned `systemd-notify`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <node_api.h>
#include "errors.h"
#include "napi-util.h"

static napi_value js_sd_notify(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value argv[1], result;
  char state[4096];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], state, sizeof state, &len) != napi_ok || len == 0 ||
      len >= sizeof state - 1) {
    napi_throw_type_error(env, NULL, "sdNotify(state): a non-empty string under 4 KiB");
    return NULL;
  }
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || path[0] == '\0') {
    napi_get_boolean(env, false, &result);
    return result;
  }
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t path_len = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || path_len >= sizeof addr.sun_path) return pxebox_throw_errno(env, EINVAL, "NOTIFY_SOCKET");
  memcpy(addr.sun_path, path, path_len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  /* Abstract names are exactly path_len bytes; a path name carries its NUL (the zeroed byte after it). */
  socklen_t addr_len = offsetof(struct sockaddr_un, sun_path) + path_len + (path[0] == '/' ? 1 : 0);

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return pxebox_throw_errno(env, errno, "socket");
  ssize_t sent = sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
  int err = errno;
  close(fd);
  if (sent < 0) return pxebox_throw_errno(env, err, "sendto");
  napi_get_boolean(env, true, &result);
  return result;
}

napi_value pxebox_sdnotify_init(napi_env env, napi_value exports) {
  const pxebox_export_t fns[] = {{"sdNotify", js_sd_notify}};
  return PXEBOX_EXPORT_ALL(env, exports, fns);
}
