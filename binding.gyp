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
      # BLAKE3's own C and assembly (scripts/blake3-sources.mjs says where
      # from), compiled with its own flags and linked into the ingest addon.
      # Without the sources it holds only native/blake3-none.c.
      "target_name": "bazil_blake3",
      "type": "static_library",
      "sources": ["native/blake3-none.c", "<!@(node scripts/blake3-sources.mjs sources)"],
      "include_dirs": ["<!@(node scripts/blake3-sources.mjs include)"],
      "defines": ["<!@(node scripts/blake3-sources.mjs defines)"],
      # Node's own Release flags (-O3, -fPIC) apply: no project warnings
      # on code that is not ours.
      "cflags_c": ["-std=gnu11"]
    },
    {
      "target_name": "bazil_ingest",
      "sources": ["native/ingest.c"],
      "dependencies": ["bazil_blake3"],
      "include_dirs": ["<!@(node scripts/blake3-sources.mjs include)"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE", "<!@(node scripts/blake3-sources.mjs defines)"],
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
