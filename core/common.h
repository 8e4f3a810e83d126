/* Shared helpers of every layer: logging, error messages for bad input, checked allocation
 * and I/O, and assertions that stay on in release builds. */
#ifndef EUAR_COMMON_H
#define EUAR_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EUAR_VERSION "0.1.0"

/* Log levels; messages at or above the current level go to stderr. */
typedef enum { EUAR_LOG_DEBUG, EUAR_LOG_INFO, EUAR_LOG_WARN, EUAR_LOG_ERROR } EuarLogLevel;

void log_set_level(EuarLogLevel level);
void log_msg(EuarLogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define LOG_DEBUG(...) log_msg(EUAR_LOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) log_msg(EUAR_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...) log_msg(EUAR_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(EUAR_LOG_ERROR, __VA_ARGS__)

/* Bad user input is reported by returning -1 after err_set(); the caller either adds context
 * with err_prefix() or prints err_get() and exits non-zero. One message per process at a time:
 * every process of the suite runner is single-threaded. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *err_get(void);
void err_clear(void);

/* Prints the message, file and line, then exits with status 2. For broken internal invariants
 * and failed system calls, never for bad user input. */
void euar_fatal(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define EUAR_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            euar_fatal(__FILE__, __LINE__, "assertion failed: %s", #cond);                         \
    } while (0)

/* Checked allocation: exits with the size and call site when memory runs out. */
void *euar_malloc_at(size_t bytes, const char *file, int line);
void *euar_calloc_at(size_t count, size_t size, const char *file, int line);
void *euar_realloc_at(void *ptr, size_t bytes, const char *file, int line);
char *euar_strdup_at(const char *s, const char *file, int line);
#define xmalloc(bytes) euar_malloc_at((bytes), __FILE__, __LINE__)
#define xcalloc(count, size) euar_calloc_at((count), (size), __FILE__, __LINE__)
#define xrealloc(ptr, bytes) euar_realloc_at((ptr), (bytes), __FILE__, __LINE__)
#define xstrdup(s) euar_strdup_at((s), __FILE__, __LINE__)

/* Writes `len` bytes to `path` through a temporary file in the same folder, fsync and rename,
 * so readers see either the old file or the whole new one. Returns 0 or -1 with err_set(). */
int write_file_atomic(const char *path, const void *data, size_t len);

/* Reads a whole file into a NUL-terminated buffer. Returns NULL with err_set() on failure. */
char *read_file_text(const char *path, size_t *len_out);

/* Creates a folder and its parents (mode 0755). Returns 0 or -1 with err_set(). */
int make_dirs(const char *path);

/* Searches the folders of PATH (/usr/bin:/bin when unset) for an executable regular file
 * `name` and stores its path. Returns 1 when found, else 0 with path empty. */
int find_program(const char *name, char *path, size_t cap);

/* 64-bit FNV-1a hash of a byte string, used to key random streams by sample id and to name
 * result files (not for security). */
uint64_t hash_fnv1a64(const void *data, size_t len, uint64_t seed);
#define EUAR_FNV_OFFSET 0xcbf29ce484222325ULL

/* Monotonic wall clock in seconds. */
double time_now(void);

/* Peak resident set size of this process in bytes (getrusage), 0 if unknown. */
size_t peak_rss_bytes(void);

#define EUAR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define EUAR_MAX(a, b) ((a) > (b) ? (a) : (b))
#define EUAR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#ifdef __cplusplus
}
#endif

#endif
