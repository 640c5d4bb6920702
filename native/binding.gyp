{
  "targets": [
    {
      "target_name": "pxebox_native",
      "sources": ["sendfile.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
