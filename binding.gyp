{
  "targets": [
    {
      "target_name": "cnm_native",
      "sources": ["native/cnm_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "libraries": ["-l:libnftables.so.1", "-lpthread"]
    }
  ]
}
