/* The in-memory dataset: validation, release, counts and names. The content checks here are
 * shared with the HDF5 reader, so a file and an in-memory dataset obey the same rules. */
#include "datasets/dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "datasets/dataset_internal.h"

const char *split_name(SplitId s) {
    static const char *names[] = {"train", "valid", "test"};
    return (unsigned)s < EUAR_SPLIT_COUNT ? names[s] : "unknown";
}

const char *modality_kind_name(ModalityKind k) {
    static const char *names[] = {"features", "image", "tokens"};
    return (unsigned)k <= EUAR_KIND_TOKENS ? names[k] : "unknown";
}

int dataset_split_count(const Dataset *ds, SplitId s) {
    int count = 0;
    for (int i = 0; i < ds->n; i++)
        count += ds->split[i] == (uint8_t)s;
    return count;
}

int dataset_find_modality(const Dataset *ds, const char *name) {
    for (int m = 0; m < ds->num_modalities; m++)
        if (strcmp(ds->mod[m].name, name) == 0)
            return m;
    return -1;
}

void dataset_free(Dataset *ds) {
    if (ds->class_names)
        for (int c = 0; c < ds->num_classes; c++)
            free(ds->class_names[c]);
    free(ds->class_names);
    if (ds->ids)
        for (int i = 0; i < ds->n; i++)
            free(ds->ids[i]);
    free(ds->ids);
    free(ds->split);
    free(ds->labels);
    free(ds->classes);
    for (int m = 0; m < EUAR_MAX_MODALITIES; m++) {
        Modality *md = &ds->mod[m];
        free(md->features);
        free(md->pixels);
        free(md->tokens);
        free(md->lengths);
        free(md->available);
    }
    memset(ds, 0, sizeof(*ds));
}

size_t modality_sample_elems(const Modality *m) {
    switch (m->kind) {
    case EUAR_KIND_FEATURES:
        return (size_t)m->t * (size_t)m->d;
    case EUAR_KIND_IMAGE:
        return (size_t)m->c * (size_t)m->h * (size_t)m->w;
    case EUAR_KIND_TOKENS:
        return (size_t)m->t;
    }
    return 0;
}

void features_masked_mean(float *out, const float *in, const int32_t *lengths, int count, int t,
                          int d) {
    double *sum = xcalloc((size_t)d, sizeof(double));
    for (int i = 0; i < count; i++) {
        const float *x = in + (size_t)i * (size_t)t * (size_t)d;
        int len = lengths[i];
        memset(sum, 0, (size_t)d * sizeof(double));
        for (int s = 0; s < len; s++)
            for (int j = 0; j < d; j++)
                sum[j] += x[(size_t)s * (size_t)d + (size_t)j];
        for (int j = 0; j < d; j++)
            out[(size_t)i * (size_t)d + (size_t)j] = len > 0 ? (float)(sum[j] / len) : 0.0f;
    }
    free(sum);
}

size_t count_nonfinite(const float *values, int count, size_t per_sample, int *first_bad) {
    size_t bad = 0;
    *first_bad = -1;
    for (int i = 0; i < count; i++) {
        const float *x = values + (size_t)i * per_sample;
        size_t in_sample = 0;
        for (size_t j = 0; j < per_sample; j++)
            in_sample += !isfinite(x[j]);
        if (in_sample > 0 && *first_bad < 0)
            *first_bad = i;
        bad += in_sample;
    }
    return bad;
}

static int compare_id_refs(const void *a, const void *b) {
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

int check_sample_ids(const char *where, char *const *ids, int n) {
    for (int i = 0; i < n; i++)
        if (!ids[i] || ids[i][0] == '\0')
            return err_set("%s: /samples/id: sample %d has an empty id; give every sample a "
                           "unique non-empty id",
                           where, i);
    /* Sorting pointers to the ids finds duplicates in O(N log N) without copying strings. */
    char *const **refs = xmalloc((size_t)n * sizeof(*refs));
    for (int i = 0; i < n; i++)
        refs[i] = &ids[i];
    qsort(refs, (size_t)n, sizeof(*refs), compare_id_refs);
    for (int i = 1; i < n; i++) {
        if (strcmp(*refs[i - 1], *refs[i]) == 0) {
            int a = (int)(refs[i - 1] - ids), b = (int)(refs[i] - ids);
            err_set("%s: /samples/id: id '%s' is used by samples %d and %d; sample ids must be "
                    "unique",
                    where, *refs[i], EUAR_MIN(a, b), EUAR_MAX(a, b));
            free(refs);
            return -1;
        }
    }
    free(refs);
    return 0;
}

int check_splits(const char *where, const uint8_t *split, char *const *ids, int n) {
    int counts[EUAR_SPLIT_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        if (split[i] >= EUAR_SPLIT_COUNT)
            return err_set("%s: /samples/split: value %u of sample '%s' is invalid; use 0 "
                           "(train), 1 (valid) or 2 (test)",
                           where, split[i], ids[i]);
        counts[split[i]]++;
    }
    for (int s = 0; s < EUAR_SPLIT_COUNT; s++)
        if (counts[s] == 0)
            return err_set("%s: /samples/split: split %d (%s) has no samples; every split "
                           "needs at least one sample",
                           where, s, split_name((SplitId)s));
    return 0;
}

int check_labels(const char *where, const Dataset *ds) {
    if (ds->task == EUAR_TASK_REGRESSION) {
        if (!ds->labels)
            return err_set("%s: /labels: missing regression labels", where);
        for (int i = 0; i < ds->n; i++) {
            float y = ds->labels[i];
            if (!isfinite(y) || y < -EUAR_LABEL_MAX || y > EUAR_LABEL_MAX)
                return err_set("%s: /labels: value %g of sample '%s' is outside [-3, 3]; "
                               "sentiment labels must be finite and within [-3, 3]",
                               where, (double)y, ds->ids[i]);
        }
        return 0;
    }
    if (!ds->classes)
        return err_set("%s: /labels: missing class labels", where);
    for (int i = 0; i < ds->n; i++) {
        int32_t c = ds->classes[i];
        if (c < 0 || c >= ds->num_classes)
            return err_set("%s: /labels: class %d of sample '%s' is outside [0, %d); "
                           "num_classes is %d",
                           where, (int)c, ds->ids[i], ds->num_classes, ds->num_classes);
    }
    return 0;
}

int check_lengths(const char *where, const char *h5path, const int32_t *lengths, int first,
                  int count, int t, char *const *ids) {
    for (int i = 0; i < count; i++) {
        int32_t len = lengths[i];
        if (len < 0 || len > t)
            return err_set("%s: %s: length %d of sample '%s' is outside [0, %d]; a length "
                           "counts the valid steps and cannot exceed T",
                           where, h5path, (int)len, ids[first + i], t);
    }
    return 0;
}

int check_available(const char *where, const char *h5path, const uint8_t *available, int n,
                    char *const *ids) {
    for (int i = 0; i < n; i++)
        if (available[i] > 1)
            return err_set("%s: %s: value %u of sample '%s' is invalid; use 1 (present) or 0 "
                           "(missing)",
                           where, h5path, available[i], ids[i]);
    return 0;
}

int check_tokens(const char *where, const char *h5path, const int32_t *tokens, int n, int t,
                 int vocab, char *const *ids) {
    for (int i = 0; i < n; i++)
        for (int s = 0; s < t; s++) {
            int32_t id = tokens[(size_t)i * (size_t)t + (size_t)s];
            if (id < 0 || id >= vocab)
                return err_set("%s: %s: token %d at step %d of sample '%s' is outside [0, %d); "
                               "raise vocab_size or fix the token ids",
                               where, h5path, (int)id, s, ids[i], vocab);
        }
    return 0;
}

/* Checks one modality's description and data; `where` names the dataset. */
static int validate_modality(const char *where, const Dataset *ds, int k) {
    const Modality *m = &ds->mod[k];
    char path[96];
    if (m->name[0] == '\0' || memchr(m->name, '\0', EUAR_NAME_LEN) == NULL ||
        strchr(m->name, '/'))
        return err_set("%s: modality %d has an empty or invalid name; use a short name "
                       "without '/'",
                       where, k);
    for (int j = 0; j < k; j++)
        if (strcmp(ds->mod[j].name, m->name) == 0)
            return err_set("%s: modality name '%s' is used twice; modality names must be "
                           "unique",
                           where, m->name);

    if (!m->available)
        return err_set("%s: /modalities/%s/available: missing", where, m->name);
    snprintf(path, sizeof(path), "/modalities/%s/available", m->name);
    if (check_available(where, path, m->available, ds->n, ds->ids) != 0)
        return -1;

    snprintf(path, sizeof(path), "/modalities/%s/data", m->name);
    switch (m->kind) {
    case EUAR_KIND_FEATURES: {
        if (m->t < 1 || m->d < 1 || !m->features || !m->lengths)
            return err_set("%s: %s: features need T >= 1, D >= 1, data and lengths (found "
                           "T=%d, D=%d)",
                           where, path, m->t, m->d);
        int first_bad;
        size_t bad = count_nonfinite(m->features, ds->n, (size_t)m->t * (size_t)m->d,
                                     &first_bad);
        if (bad > 0)
            return err_set("%s: %s: %zu non-finite value%s (NaN or Inf), the first in "
                           "sample '%s'; clean the features or load with the non-finite policy "
                           "'zero'", where, path, bad, bad == 1 ? "" : "s", ds->ids[first_bad]);
        break;
    }
    case EUAR_KIND_IMAGE:
        if (m->c < 1 || m->h < 1 || m->w < 1 || !m->pixels)
            return err_set("%s: %s: images need C, H, W >= 1 and pixels (found C=%d, H=%d, "
                           "W=%d)",
                           where, path, m->c, m->h, m->w);
        break;
    case EUAR_KIND_TOKENS:
        if (m->t < 1 || m->vocab < 2 || !m->tokens || !m->lengths)
            return err_set("%s: %s: tokens need T >= 1, vocab_size >= 2, data and lengths "
                           "(found T=%d, vocab_size=%d)",
                           where, path, m->t, m->vocab);
        if (check_tokens(where, path, m->tokens, ds->n, m->t, m->vocab, ds->ids) != 0)
            return -1;
        break;
    default:
        return err_set("%s: /modalities/%s: unknown kind %d", where, m->name, (int)m->kind);
    }
    if (m->kind != EUAR_KIND_IMAGE) {
        snprintf(path, sizeof(path), "/modalities/%s/lengths", m->name);
        if (check_lengths(where, path, m->lengths, 0, ds->n, m->t, ds->ids) != 0)
            return -1;
    }
    return 0;
}

int dataset_validate(const Dataset *ds, const char *where) {
    if (ds->n < 1 || !ds->ids || !ds->split)
        return err_set("%s: the dataset has no samples (N=%d)", where, ds->n);
    if (ds->task != EUAR_TASK_REGRESSION && ds->task != EUAR_TASK_CLASSIFICATION)
        return err_set("%s: unknown task %d", where, (int)ds->task);
    if (ds->task == EUAR_TASK_CLASSIFICATION) {
        if (ds->num_classes < 2 || !ds->class_names)
            return err_set("%s: num_classes %d is invalid; classification needs at least 2 "
                           "classes and their names",
                           where, ds->num_classes);
        for (int c = 0; c < ds->num_classes; c++)
            if (!ds->class_names[c])
                return err_set("%s: class_names[%d] is missing", where, c);
    }
    if (ds->num_modalities < 1 || ds->num_modalities > EUAR_MAX_MODALITIES)
        return err_set("%s: %d modalities; a dataset has 1 to %d", where, ds->num_modalities,
                       EUAR_MAX_MODALITIES);
    if (check_sample_ids(where, ds->ids, ds->n) != 0 ||
        check_splits(where, ds->split, ds->ids, ds->n) != 0 || check_labels(where, ds) != 0)
        return -1;
    for (int k = 0; k < ds->num_modalities; k++)
        if (validate_modality(where, ds, k) != 0)
            return -1;
    return 0;
}
