/* Versions of the data file behind the results of each dataset (report/data_files.h). */
#include "report/data_files.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#define DATA_FILES_MAX_TRACKED 8

/* One (suite, dataset): its first hash and result file, and a result of another hash. */
struct DataFileEntry {
    char *suite, *dataset;
    uint64_t first_hash;
    char *first_path;
    int versions;       /* distinct hashes seen, at most DATA_FILES_MAX_TRACKED tracked */
    uint64_t other_hash; /* valid when versions > 1 */
    char *other_path;
    uint64_t seen[DATA_FILES_MAX_TRACKED];
};

void data_files_note(DataFileCheck *check, const char *suite, const char *dataset,
                     uint64_t hash, const char *path) {
    struct DataFileEntry *e = NULL;
    for (int i = 0; i < check->count && !e; i++)
        if (strcmp(check->items[i].suite, suite) == 0 &&
            strcmp(check->items[i].dataset, dataset) == 0)
            e = &check->items[i];
    if (!e) {
        if (check->count == check->cap) {
            check->cap = check->cap ? 2 * check->cap : 8;
            check->items = xrealloc(check->items, (size_t)check->cap * sizeof(*check->items));
        }
        e = &check->items[check->count++];
        memset(e, 0, sizeof(*e));
        e->suite = xstrdup(suite);
        e->dataset = xstrdup(dataset);
        e->first_hash = hash;
        e->first_path = xstrdup(path);
        e->seen[0] = hash;
        e->versions = 1;
        return;
    }
    int tracked = EUAR_MIN(e->versions, DATA_FILES_MAX_TRACKED);
    for (int k = 0; k < tracked; k++)
        if (e->seen[k] == hash)
            return;
    if (e->versions < DATA_FILES_MAX_TRACKED)
        e->seen[e->versions] = hash;
    e->versions++;
    if (!e->other_path) {
        e->other_hash = hash;
        e->other_path = xstrdup(path);
    }
}

int data_files_warn(const DataFileCheck *check) {
    int mixed = 0;
    for (int i = 0; i < check->count; i++) {
        const struct DataFileEntry *e = &check->items[i];
        if (e->versions < 2)
            continue;
        mixed++;
        LOG_WARN("dataset '%s'%s%s%s: its results were made from %s%d different versions of "
                 "the data file (data_file_hash %016" PRIx64 " in %s, %016" PRIx64 " in %s), "
                 "so its numbers mix data sets; run the suite again to redo the cells of the "
                 "file's earlier versions", e->dataset, e->suite[0] ? " of suite '" : "",
                 e->suite, e->suite[0] ? "'" : "",
                 e->versions > DATA_FILES_MAX_TRACKED ? "at least " : "",
                 EUAR_MIN(e->versions, DATA_FILES_MAX_TRACKED), e->first_hash, e->first_path,
                 e->other_hash, e->other_path);
    }
    return mixed;
}

void data_files_free(DataFileCheck *check) {
    for (int i = 0; i < check->count; i++) {
        free(check->items[i].suite);
        free(check->items[i].dataset);
        free(check->items[i].first_path);
        free(check->items[i].other_path);
    }
    free(check->items);
    memset(check, 0, sizeof(*check));
}
