{
  "targets": [
    {
      "target_name": "pxebox_native",
      "sources": ["addon.c", "errors.c", "napi-util.c", "sendfile.c", "udp.c", "tftp-runner.c", "udp-batch.c", "netif.c", "sdnotify.c", "readfiles.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
