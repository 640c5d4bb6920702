/*
 * Interfaces as the kernel of this network namespace sees them, and the one socket option Node cannot set.
 *   interfaces() -> [{ name, index, mtu, up, running, loopback, ipv4: [{ address, prefix }] }]
 *       every interface, including those without carrier or without an address: getifaddrs(3) (netlink underneath)
 *       lists an AF_PACKET entry per link whatever its state, where Node's os.networkInterfaces() (libuv) drops
 *       any interface that is not both UP and RUNNING, so a bridge whose ports are all down looked absent. Index
 *       from if_nametoindex(3) and MTU from SIOCGIFMTU, both answered by this namespace's kernel, where
 *       /sys/class/net can belong to another namespace (a container sharing the host's /sys).
 *   nameToIndex(name) -> index                 if_nametoindex(3); throws ENODEV when there is no such interface
 *   setsockoptInt(fd, level, option, value)    setsockopt(2) with an int, for SO_BINDTOIFINDEX on the DHCP socket
 *                                              (src/dhcp/pin.ts); throws an Error whose code is the errno name
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include "errors.h"
#include "napi-util.h"
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>

static napi_value js_name_to_index(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value argv[1];
  char name[IF_NAMESIZE + 1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok || len == 0 || len >= IF_NAMESIZE) {
    napi_throw_type_error(env, NULL, "nameToIndex(name): an interface name of 1-15 bytes");
    return NULL;
  }
  unsigned index = if_nametoindex(name);
  if (index == 0) return pxebox_throw_errno(env, errno, "if_nametoindex");
  napi_value result;
  napi_create_uint32(env, index, &result);
  return result;
}

static napi_value js_setsockopt_int(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t v[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  for (size_t i = 0; i < 4; i++) {
    if (i >= argc || napi_get_value_int32(env, argv[i], &v[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "setsockoptInt(fd, level, option, value): four integers");
      return NULL;
    }
  }
  int value = v[3];
  if (setsockopt(v[0], v[1], v[2], &value, sizeof value) != 0) return pxebox_throw_errno(env, errno, "setsockopt");
  return NULL;
}

/* The JS object for interface `name`, created on first sight and kept in `byName`. */
static napi_value entry_for(napi_env env, napi_value list, napi_value byName, const char *name, int sock) {
  napi_value entry;
  bool has = false;
  napi_has_named_property(env, byName, name, &has);
  if (has) {
    napi_get_named_property(env, byName, name, &entry);
    return entry;
  }
  napi_value value, ipv4;
  napi_create_object(env, &entry);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, entry, "name", value);
  napi_create_uint32(env, if_nametoindex(name), &value);
  napi_set_named_property(env, entry, "index", value);
  struct ifreq req;
  memset(&req, 0, sizeof req);
  strncpy(req.ifr_name, name, IF_NAMESIZE - 1);
  napi_create_int32(env, sock >= 0 && ioctl(sock, SIOCGIFMTU, &req) == 0 ? req.ifr_mtu : 0, &value);
  napi_set_named_property(env, entry, "mtu", value);
  napi_create_array(env, &ipv4);
  napi_set_named_property(env, entry, "ipv4", ipv4);
  napi_set_named_property(env, byName, name, entry);
  uint32_t n = 0;
  napi_get_array_length(env, list, &n);
  napi_set_element(env, list, n, entry);
  return entry;
}

static void set_bool(napi_env env, napi_value object, const char *key, bool flag) {
  napi_value value;
  napi_get_boolean(env, flag, &value);
  napi_set_named_property(env, object, key, value);
}

static napi_value js_interfaces(napi_env env, napi_callback_info info) {
  (void)info;
  struct ifaddrs *all = NULL;
  if (getifaddrs(&all) != 0) return pxebox_throw_errno(env, errno, "getifaddrs");
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  napi_value list, byName;
  napi_create_array(env, &list);
  napi_create_object(env, &byName);
  for (struct ifaddrs *a = all; a != NULL; a = a->ifa_next) {
    if (a->ifa_name == NULL) continue;
    napi_value entry = entry_for(env, list, byName, a->ifa_name, sock);
    set_bool(env, entry, "up", (a->ifa_flags & IFF_UP) != 0);
    set_bool(env, entry, "running", (a->ifa_flags & IFF_RUNNING) != 0);
    set_bool(env, entry, "loopback", (a->ifa_flags & IFF_LOOPBACK) != 0);
    if (a->ifa_addr == NULL || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, text, sizeof text);
    int prefix = 32;
    if (a->ifa_netmask != NULL) prefix = __builtin_popcount(((struct sockaddr_in *)a->ifa_netmask)->sin_addr.s_addr);
    napi_value ipv4, address, value;
    uint32_t n = 0;
    napi_get_named_property(env, entry, "ipv4", &ipv4);
    napi_get_array_length(env, ipv4, &n);
    napi_create_object(env, &address);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &value);
    napi_set_named_property(env, address, "address", value);
    napi_create_int32(env, prefix, &value);
    napi_set_named_property(env, address, "prefix", value);
    napi_set_element(env, ipv4, n, address);
  }
  if (sock >= 0) close(sock);
  freeifaddrs(all);
  return list;
}

napi_value pxebox_netif_init(napi_env env, napi_value exports) {
  const pxebox_export_t fns[] = {{"interfaces", js_interfaces}, {"nameToIndex", js_name_to_index}, {"setsockoptInt", js_setsockopt_int}};
  return PXEBOX_EXPORT_ALL(env, exports, fns);
}
