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

/* Checks the --out path of an importer before any input is read: its folder must exist and
 * the path itself must not be a folder. Returns 0, or -1 with err_set() saying what to do. */
int import_check_out(const char *out);

/* Checks a --name value: 1 to 63 bytes (the reader's limit), no '/' and no control
 * characters. Returns 0, or -1 with err_set(). */
int import_check_name(const char *name);

/* Returns 1 when `a` and `b` name the same file (same device and inode), 0 otherwise or when
 * either cannot be stat()ed. */
int same_file(const char *a, const char *b);

#endif
