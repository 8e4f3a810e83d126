/* Identity of a data file: a 64-bit hash of its bytes. It distinguishes results made from one
 * version of a file from results of a file regenerated at the same path. */
#ifndef EUAR_FILE_HASH_H
#define EUAR_FILE_HASH_H

#include <stdint.h>

/* Hashes every byte of the file at `path` (read in 4 MiB blocks, four 64-bit lanes over
 * 8-byte little-endian words, the tail bytes and the length mixed in at the end) into *hash.
 * Returns 0 or -1 with err_set() naming the file. */
int file_hash_compute(const char *path, uint64_t *hash);

/* Computes the hash of file_hash_compute(), first looking the file up in the cache file `cache`
 * (lines "HASH SIZE MTIME_S MTIME_NS PATH"). A line with the same path, size and modification
 * time gives the hash without reading the file. Otherwise the file is hashed and its line is
 * replaced, written atomically; a cache that cannot be written costs the next caller a rehash.
 * With cache NULL, the file is always hashed. Returns 0 or -1 with err_set(). */
int file_hash_cached(const char *path, const char *cache, uint64_t *hash);

/* Same as file_hash_cached(), but never writes the cache (for dry runs). */
int file_hash_cached_read_only(const char *path, const char *cache, uint64_t *hash);

#endif
