/* Folds of a computational-sequence import: the video ids of each split, either the standard
 * folds of CMU-MOSI or CMU-MOSEI (csd_folds_std.c) or a JSON file of the user's. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "datasets/import_csd.h"

typedef struct {
    const char *id;
    uint8_t split;
} FoldEntry;

static int compare_entries(const void *a, const void *b) {
    return strcmp(((const FoldEntry *)a)->id, ((const FoldEntry *)b)->id);
}

/* Sorts the collected ids, rejects a video listed twice and copies them into `out`. `source`
 * names the folds in messages. */
static int folds_finish(FoldEntry *entries, int n, const char *source, CsdFolds *out) {
    qsort(entries, (size_t)n, sizeof(*entries), compare_entries);
    for (int i = 1; i < n; i++)
        if (strcmp(entries[i - 1].id, entries[i].id) == 0)
            return err_set("folds %s: video '%s' is listed twice (in %s and %s); list each "
                           "video in one split only",
                           source, entries[i].id, split_name((SplitId)entries[i - 1].split),
                           split_name((SplitId)entries[i].split));
    out->n = n;
    out->ids = xmalloc((size_t)EUAR_MAX(n, 1) * sizeof(char *));
    out->split = xmalloc((size_t)EUAR_MAX(n, 1));
    for (int i = 0; i < n; i++) {
        out->ids[i] = xstrdup(entries[i].id);
        out->split[i] = entries[i].split;
    }
    return 0;
}

static int folds_from_lists(const CsdFoldList lists[EUAR_SPLIT_COUNT], const char *source,
                            CsdFolds *out) {
    int n = 0;
    for (int s = 0; s < EUAR_SPLIT_COUNT; s++)
        n += lists[s].count;
    FoldEntry *entries = xmalloc((size_t)n * sizeof(*entries));
    int k = 0;
    for (int s = 0; s < EUAR_SPLIT_COUNT; s++)
        for (int i = 0; i < lists[s].count; i++)
            entries[k++] = (FoldEntry){lists[s].ids[i], (uint8_t)s};
    int rc = folds_finish(entries, n, source, out);
    free(entries);
    return rc;
}

/* Reads {"train": [...], "valid": [...], "test": [...]} from `path`. */
static int folds_from_json(const char *path, CsdFolds *out) {
    char *text = read_file_text(path, NULL);
    if (!text)
        return err_prefix("--folds: '%s' is neither 'mosi', 'mosei' nor a readable file",
                          path);
    const char *error_at = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &error_at, 1);
    if (!root || !cJSON_IsObject(root)) {
        long offset = root || !error_at ? 0 : (long)(error_at - text);
        cJSON_Delete(root);
        free(text);
        return err_set("folds %s: not a JSON object (invalid near byte %ld); expected "
                       "{\"train\": [video ids], \"valid\": [...], \"test\": [...]}",
                       path, offset);
    }

    static const char *const keys[EUAR_SPLIT_COUNT] = {"train", "valid", "test"};
    int rc = 0, seen[EUAR_SPLIT_COUNT] = {0};
    for (const cJSON *item = root->child; item && rc == 0; item = item->next) {
        int known = -1;
        for (int s = 0; s < EUAR_SPLIT_COUNT; s++)
            if (strcmp(item->string, keys[s]) == 0)
                known = s;
        if (known < 0)
            rc = err_set("folds %s: unknown key '%s'; the keys are 'train', 'valid' and "
                         "'test'",
                         path, item->string);
        else if (seen[known]++)
            rc = err_set("folds %s: key '%s' appears twice; give each split once", path,
                         item->string);
    }

    int n = 0, cap = 0;
    FoldEntry *entries = NULL;
    for (int s = 0; s < EUAR_SPLIT_COUNT && rc == 0; s++) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, keys[s]);
        if (!cJSON_IsArray(list)) {
            rc = err_set("folds %s: \"%s\" is %s; expected an array of video ids", path,
                         keys[s], list ? "not an array" : "missing");
            break;
        }
        int index = 0;
        for (const cJSON *v = list->child; v && rc == 0; v = v->next, index++) {
            if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
                rc = err_set("folds %s: \"%s\"[%d] is not a non-empty string; video ids are "
                             "strings such as \"-3g5yACwYnA\" or \"12345\"",
                             path, keys[s], index);
                break;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 256;
                entries = xrealloc(entries, (size_t)cap * sizeof(*entries));
            }
            entries[n++] = (FoldEntry){v->valuestring, (uint8_t)s};
        }
        if (rc == 0 && index == 0)
            rc = err_set("folds %s: \"%s\" is empty; every split needs at least one video",
                         path, keys[s]);
    }

    if (rc == 0)
        rc = folds_finish(entries, n, path, out);
    free(entries);
    cJSON_Delete(root);
    free(text);
    return rc;
}

int csd_folds_load(const char *spec, CsdFolds *out) {
    memset(out, 0, sizeof(*out));
    if (strcmp(spec, "mosi") == 0)
        return folds_from_lists(csd_std_folds_mosi, "mosi", out);
    if (strcmp(spec, "mosei") == 0)
        return folds_from_lists(csd_std_folds_mosei, "mosei", out);
    return folds_from_json(spec, out);
}

int csd_folds_find(const CsdFolds *folds, const char *video) {
    int lo = 0, hi = folds->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(folds->ids[mid], video);
        if (c == 0)
            return folds->split[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

void csd_folds_free(CsdFolds *folds) {
    for (int i = 0; i < folds->n; i++)
        free(folds->ids[i]);
    free(folds->ids);
    free(folds->split);
    memset(folds, 0, sizeof(*folds));
}
