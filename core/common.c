#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static EuarLogLevel log_level = EUAR_LOG_INFO;
static char err_buf[2048];

void log_set_level(EuarLogLevel level) {
    log_level = level;
}

void log_msg(EuarLogLevel level, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warning", "error"};
    if (level < log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "euar: %s: ", names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int err_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefix(const char *fmt, ...) {
    char prefix[1024], old[sizeof(err_buf)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof(old));
    snprintf(err_buf, sizeof(err_buf), "%.1000s: %.1000s", prefix, old);
    return -1;
}

const char *err_get(void) {
    return err_buf[0] ? err_buf : "unknown error";
}

void err_clear(void) {
    err_buf[0] = '\0';
}

void euar_fatal(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "euar: fatal: %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

void *euar_malloc_at(size_t bytes, const char *file, int line) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        euar_fatal(file, line, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *euar_calloc_at(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        euar_fatal(file, line, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *euar_realloc_at(void *ptr, size_t bytes, const char *file, int line) {
    void *p = realloc(ptr, bytes ? bytes : 1);
    if (!p)
        euar_fatal(file, line, "out of memory reallocating %zu bytes", bytes);
    return p;
}

char *euar_strdup_at(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = euar_malloc_at(n, file, line);
    memcpy(p, s, n);
    return p;
}

int write_file_atomic(const char *path, const void *data, size_t len) {
    size_t n = strlen(path);
    char *tmp = xmalloc(n + 32);
    snprintf(tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        err_set("cannot create %s: %s; check that the folder exists and is writable", tmp,
                strerror(errno));
        free(tmp);
        return -1;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            err_set("cannot write %s: %s; free some space and run again", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    /* The descriptor is closed whether or not fsync fails. */
    int flushed = fsync(fd) == 0;
    int saved_errno = errno;
    if (close(fd) != 0 && flushed) {
        flushed = 0;
        saved_errno = errno;
    }
    if (!flushed) {
        err_set("cannot flush %s: %s; free some space and run again", tmp,
                strerror(saved_errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        err_set("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

char *read_file_text(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        err_set("cannot read %s", path);
        return NULL;
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

int make_dirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return err_set("path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return err_set("cannot create folder %s: %s", buf, strerror(errno));
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set("%s exists and is not a folder", path);
    return 0;
}

uint64_t hash_fnv1a64(const void *data, size_t len, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

double time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (size_t)ru.ru_maxrss * 1024;
}

int find_program(const char *name, char *path, size_t cap) {
    const char *env = getenv("PATH");
    char *dirs = xstrdup(env && env[0] ? env : "/usr/bin:/bin");
    int found = 0;
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir && !found;
         dir = strtok_r(NULL, ":", &save)) {
        int n = snprintf(path, cap, "%s/%s", dir[0] ? dir : ".", name);
        struct stat st;
        found = n > 0 && (size_t)n < cap && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                access(path, X_OK) == 0;
    }
    free(dirs);
    if (!found && cap > 0)
        path[0] = '\0';
    return found;
}
