/* Helpers shared by the importers: a list of owned strings and folder paths. */
#include "datasets/import_util.h"

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
