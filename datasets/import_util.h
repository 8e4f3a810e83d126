/* Small helpers shared by the importers of datasets/: a growable list of owned strings and
 * folder paths. Not part of the public API. */
#ifndef EUAR_IMPORT_UTIL_H
#define EUAR_IMPORT_UTIL_H

/* A growable array of strings that the list owns (freed by strlist_free). */
typedef struct {
    char **items;
    int count, cap;
} StrList;

/* Appends `s`, taking ownership of it. */
void strlist_push(StrList *l, char *s);
void strlist_free(StrList *l);

/* qsort comparator of two char * by strcmp (byte order). */
int compare_strings(const void *a, const void *b);

/* Returns a new string "a/b". */
char *join_path(const char *a, const char *b);

/* Returns 1 when `path` is a folder (after following links). */
int is_dir(const char *path);

#endif
