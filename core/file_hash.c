/* File hashing for data file identities (core/file_hash.h). */
#include "core/file_hash.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"

#define FILE_HASH_BLOCK (4u << 20)
#define FILE_HASH_LANES 4

/* Multipliers: odd 64-bit constants with bits spread over the whole word (2^64 / phi rounded
 * to odd, and two 64-bit primes), so that a product carries low input bits into high bits. */
#define MIX_A 0x9e3779b97f4a7c15ULL
#define MIX_B 0xc2b2ae3d27d4eb4fULL
#define MIX_C 0x165667b19e3779f9ULL

static uint64_t rotl64(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

static uint64_t lane_round(uint64_t lane, uint64_t word) {
    lane += word * MIX_B;
    lane = rotl64(lane, 31);
    return lane * MIX_A;
}

/* Final avalanche of the 64-bit state. */
static uint64_t mix_final(uint64_t h) {
    h ^= h >> 33;
    h *= MIX_B;
    h ^= h >> 29;
    h *= MIX_C;
    h ^= h >> 32;
    return h;
}

static uint64_t load_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int file_hash_compute(const char *path, uint64_t *hash) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set("cannot open %s: %s", path, strerror(errno));
    unsigned char *buf = xmalloc(FILE_HASH_BLOCK);
    uint64_t lane[FILE_HASH_LANES] = {MIX_A, MIX_B, MIX_C, MIX_A ^ MIX_B};
    uint64_t total = 0;
    size_t carry = 0; /* bytes at the start of buf left over from the last block */
    int rc = 0;
    for (;;) {
        size_t got = fread(buf + carry, 1, FILE_HASH_BLOCK - carry, f);
        total += got;
        size_t have = carry + got;
        size_t stripe = 8 * FILE_HASH_LANES;
        size_t full = have / stripe * stripe;
        for (size_t at = 0; at < full; at += stripe)
            for (int k = 0; k < FILE_HASH_LANES; k++)
                lane[k] = lane_round(lane[k], load_le64(buf + at + 8 * (size_t)k));
        carry = have - full;
        memmove(buf, buf + full, carry);
        if (got == 0 || feof(f) || ferror(f))
            break;
    }
    if (ferror(f))
        rc = err_set("cannot read %s: %s", path, strerror(errno));
    fclose(f);
    uint64_t h = total * MIX_C;
    for (int k = 0; k < FILE_HASH_LANES; k++)
        h = rotl64(h ^ mix_final(lane[k]), 27) * MIX_A;
    h = hash_fnv1a64(buf, carry, h);
    free(buf);
    *hash = mix_final(h);
    return rc;
}

/* Key of a file in the cache: size and modification time in nanoseconds. */
typedef struct {
    uint64_t size;
    int64_t mtime_s;
    int64_t mtime_ns;
} FileStamp;

/* Appends `line` and a newline to the growing buffer *out of length *len. */
static void append_line(char **out, size_t *len, const char *line) {
    size_t n = strlen(line);
    *out = xrealloc(*out, *len + n + 2);
    memcpy(*out + *len, line, n);
    (*out)[*len + n] = '\n';
    *len += n + 1;
    (*out)[*len] = '\0';
}

/* Looks `path` up in the cache text and copies every line of other files into *kept. Returns
 * 1 with *hash set when a line matches the path and its stamp. */
static int cache_lookup(char *text, const char *path, const FileStamp *stamp, uint64_t *hash,
                        char **kept, size_t *kept_len) {
    int found = 0;
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        uint64_t h, size;
        int64_t sec, nsec;
        int used = 0;
        if (sscanf(line, "%16" SCNx64 " %" SCNu64 " %" SCNd64 " %" SCNd64 " %n", &h, &size,
                   &sec, &nsec, &used) != 4 || used == 0)
            continue; /* a damaged line is dropped */
        if (strcmp(line + used, path) != 0) {
            append_line(kept, kept_len, line);
            continue;
        }
        if (size == stamp->size && sec == stamp->mtime_s && nsec == stamp->mtime_ns) {
            *hash = h;
            found = 1;
        }
    }
    return found;
}

/* Looks up or computes the hash of `path`, and with `update` writes a computed one into the
 * cache. */
static int hash_with_cache(const char *path, const char *cache, int update, uint64_t *hash) {
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set("cannot read %s: %s", path, strerror(errno));
    if (!cache)
        return file_hash_compute(path, hash);
    FileStamp stamp = {(uint64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
                       (int64_t)st.st_mtim.tv_nsec};
    struct stat cache_st;
    char *text = stat(cache, &cache_st) == 0 ? read_file_text(cache, NULL) : NULL;
    char *kept = NULL;
    size_t kept_len = 0;
    int found = cache_lookup(text, path, &stamp, hash, &kept, &kept_len);
    free(text);
    if (!found && file_hash_compute(path, hash) == 0) {
        char line[1200];
        snprintf(line, sizeof(line), "%016" PRIx64 " %" PRIu64 " %" PRId64 " %" PRId64 " %s",
                 *hash, stamp.size, stamp.mtime_s, stamp.mtime_ns, path);
        append_line(&kept, &kept_len, line);
        if (update && write_file_atomic(cache, kept, kept_len) != 0)
            LOG_WARN("%s; the hash of %s is computed again next time", err_get(), path);
    } else if (!found) {
        free(kept);
        return -1;
    }
    free(kept);
    return 0;
}

int file_hash_cached(const char *path, const char *cache, uint64_t *hash) {
    return hash_with_cache(path, cache, 1, hash);
}

int file_hash_cached_read_only(const char *path, const char *cache, uint64_t *hash) {
    return hash_with_cache(path, cache, 0, hash);
}
