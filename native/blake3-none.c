// Keeps the bazil_blake3 library (binding.gyp) from being empty where
// BLAKE3's sources are missing; the ingest addon is then built without it.
typedef int bazil_blake3_library_t;
