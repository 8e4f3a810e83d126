/* Helpers shared by the importers: a list of owned strings and folder paths. */
#include "datasets/import_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"

void strlist_push(StrList *l, char *s) {
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->items = xrealloc(l->items, (size_t)l->cap * sizeof(char *));
    }
    l->items[l->count++] = s;
}

void strlist_free(StrList *l) {
    for (int i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *join_path(const char *a, const char *b) {
    size_t len = strlen(a) + strlen(b) + 2;
    char *p = xmalloc(len);
    snprintf(p, len, "%s/%s", a, b);
    return p;
}

int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int import_check_out(const char *out) {
    if (out[0] == '\0')
        return err_set("--out: the path is empty; give the output file, for example "
                       "data/name.h5");
    if (is_dir(out))
        return err_set("--out: %s is a folder; give a file path such as %s/name.h5", out, out);
    const char *slash = strrchr(out, '/');
    if (!slash)
        return 0;
    size_t len = slash == out ? 1 : (size_t)(slash - out);
    char *folder = xmalloc(len + 1);
    memcpy(folder, out, len);
    folder[len] = '\0';
    struct stat st;
    int rc = 0;
    if (stat(folder, &st) != 0)
        rc = errno == ENOENT
                 ? err_set("--out: folder %s does not exist; create it first", folder)
                 : err_set("--out: folder %s: %s", folder, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        rc = err_set("--out: %s is not a folder; choose an output path in a folder", folder);
    free(folder);
    return rc;
}

int import_check_name(const char *name) {
    size_t len = strlen(name);
    if (len == 0 || len > 63)
        return err_set("--name: '%s' has %zu bytes; use 1 to 63 (the dataset format's limit)",
                       name, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c < 0x20 || c == 0x7f)
            return err_set("--name: '%s' contains %s; choose a name without '/' or control "
                           "characters",
                           name, c == '/' ? "'/'" : "a control character");
    }
    return 0;
}

int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}
