{
  "targets": [
    {
      "target_name": "bazil_native",
      "sources": ["native/bazil_native.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wshadow", "-Wconversion", "-Wno-sign-conversion"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2"]
        }
      }
    },
    {
      "target_name": "bazil_ingest",
      "sources": ["native/ingest.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      # OpenSSL's symbols come from the node binary: bound at load, so a node
      # that does not export them fails the load (and the JavaScript paths
      # run) instead of failing at the first call.
      "ldflags": ["-Wl,-z,now"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wshadow", "-Wconversion", "-Wno-sign-conversion"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2"]
        }
      }
    },
    {
      "target_name": "bazil_xattr",
      "sources": ["native/xattr.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wshadow", "-Wconversion", "-Wno-sign-conversion"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2"]
        }
      }
    }
  ]
}
