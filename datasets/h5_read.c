/* Reader and validator of the euar-bench HDF5 layout (docs/format.md). Every failure becomes
 * one err_set() message naming the file, the HDF5 path and the value. Features modalities are
 * streamed in chunks of EUAR_CHUNK_SAMPLES samples, so pooled loading keeps one chunk plus
 * the pooled [N, D] matrix in memory. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "datasets/dataset.h"
#include "datasets/dataset_internal.h"

typedef enum { DTYPE_F32, DTYPE_I32, DTYPE_U8, DTYPE_STRING } Dtype;

static const char *dtype_name(Dtype t) {
    static const char *names[] = {"float32", "int32", "uint8", "string"};
    return names[t];
}

typedef struct {
    const char *path; /* file name, for messages */
    hid_t file;
    const DatasetLoadOptions *opt;
    int header_only; /* dataset_read_info(): no per-sample arrays */
} Reader;

/* Writes a numpy-style name of the HDF5 type `t` ("float64", "int16", "string", ...). */
static void describe_type(hid_t t, char *buf, size_t cap) {
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, cap, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_FLOAT:
        snprintf(buf, cap, "float%zu", bits);
        break;
    case H5T_STRING:
        snprintf(buf, cap, "string");
        break;
    case H5T_COMPOUND:
        snprintf(buf, cap, "compound");
        break;
    case H5T_ENUM:
        snprintf(buf, cap, "enum");
        break;
    default:
        snprintf(buf, cap, "another HDF5 type class (%d)", (int)H5Tget_class(t));
    }
}

static int dtype_matches(hid_t t, Dtype expected) {
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    switch (expected) {
    case DTYPE_F32:
        return cls == H5T_FLOAT && size == 4;
    case DTYPE_I32:
        return cls == H5T_INTEGER && size == 4 && H5Tget_sign(t) == H5T_SGN_2;
    case DTYPE_U8:
        return cls == H5T_INTEGER && size == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    case DTYPE_STRING:
        return cls == H5T_STRING;
    }
    return 0;
}

static void format_dims(char *buf, size_t cap, int rank, const hsize_t *dims) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int r = 0; r < rank && used < cap; r++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%llu", r ? ", " : "",
                                 (unsigned long long)dims[r]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

/* Opens dataset `h5path` and checks its dtype and rank, and dims[0] against `n` when n > 0.
 * `shape` names the expected shape in messages. Returns the dataset id or -1. */
static hid_t open_array(Reader *r, const char *h5path, Dtype dtype, int rank, const char *shape,
                        hsize_t n, hsize_t *dims) {
    if (H5Lexists(r->file, h5path, H5P_DEFAULT) <= 0) {
        err_set("%s: %s: dataset not found; expected %s %s (see docs/format.md)", r->path,
                h5path, dtype_name(dtype), shape);
        return -1;
    }
    hid_t d = H5Dopen2(r->file, h5path, H5P_DEFAULT);
    if (d < 0) {
        err_set("%s: %s: not a dataset or unreadable; expected %s %s", r->path, h5path,
                dtype_name(dtype), shape);
        return -1;
    }
    hid_t t = H5Dget_type(d);
    if (!dtype_matches(t, dtype)) {
        char found[64];
        describe_type(t, found, sizeof(found));
        H5Tclose(t);
        H5Dclose(d);
        err_set("%s: %s: dtype is %s, expected %s; convert the array (with h5py: "
                ".astype(%s)) and write the file again",
                r->path, h5path, found, dtype_name(dtype),
                dtype == DTYPE_STRING ? "h5py.string_dtype()" : dtype_name(dtype));
        return -1;
    }
    H5Tclose(t);
    hid_t space = H5Dget_space(d);
    int found_rank = H5Sget_simple_extent_ndims(space);
    hsize_t found_dims[H5S_MAX_RANK];
    if (found_rank >= 0)
        H5Sget_simple_extent_dims(space, found_dims, NULL);
    H5Sclose(space);
    if (found_rank != rank) {
        char text[160];
        format_dims(text, sizeof(text), found_rank < 0 ? 0 : found_rank, found_dims);
        H5Dclose(d);
        err_set("%s: %s: shape is %s (rank %d), expected rank %d %s", r->path, h5path, text,
                found_rank, rank, shape);
        return -1;
    }
    if (n > 0 && found_dims[0] != n) {
        H5Dclose(d);
        err_set("%s: %s: has %llu samples but /samples/id has %llu; every per-sample array "
                "needs N entries in its first dimension",
                r->path, h5path, (unsigned long long)found_dims[0], (unsigned long long)n);
        return -1;
    }
    for (int i = 0; i < rank; i++)
        dims[i] = found_dims[i];
    return d;
}

/* Reads `n` strings from an attribute (is_attr) or dataset `obj` of string type `ftype`,
 * fixed-length or variable-length, into newly allocated out[0..n). */
static int read_strings(hid_t obj, int is_attr, hid_t ftype, size_t n, char **out) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(ftype));
    herr_t rc;
    if (H5Tis_variable_str(ftype) > 0) {
        H5Tset_size(mt, H5T_VARIABLE);
        char **raw = xcalloc(n, sizeof(char *));
        rc = is_attr ? H5Aread(obj, mt, raw) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw);
        for (size_t i = 0; i < n; i++) {
            if (rc >= 0)
                out[i] = xstrdup(raw[i] ? raw[i] : "");
            if (raw[i])
                H5free_memory(raw[i]);
        }
        free(raw);
    } else {
        size_t len = H5Tget_size(ftype) + 1;
        H5Tset_size(mt, len);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        char *buf = xcalloc(n, len);
        rc = is_attr ? H5Aread(obj, mt, buf) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        for (size_t i = 0; i < n && rc >= 0; i++)
            out[i] = xstrdup(buf + i * len);
        free(buf);
    }
    H5Tclose(mt);
    return rc < 0 ? -1 : 0;
}

/* Opens attribute `name` of `obj` (at `objpath`) and returns its id, type and element count
 * (rank 0 counts 1). */
static hid_t open_attr(Reader *r, hid_t obj, const char *objpath, const char *name,
                       const char *expected, hid_t *type, hsize_t *count, int *rank) {
    if (H5Aexists(obj, name) <= 0) {
        err_set("%s: attribute '%s' of %s not found; expected %s (see docs/format.md)",
                r->path, name, objpath, expected);
        return -1;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) {
        err_set("%s: attribute '%s' of %s is unreadable", r->path, name, objpath);
        return -1;
    }
    hid_t space = H5Aget_space(a);
    *rank = H5Sget_simple_extent_ndims(space);
    *count = (hsize_t)H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    *type = H5Aget_type(a);
    return a;
}

static int attr_type_error(Reader *r, hid_t a, hid_t t, const char *name, const char *objpath,
                           const char *expected) {
    char found[64];
    describe_type(t, found, sizeof(found));
    H5Tclose(t);
    H5Aclose(a);
    return err_set("%s: attribute '%s' of %s is %s, expected %s", r->path, name, objpath, found,
                   expected);
}

/* Reads a scalar string attribute into a new string. */
static int read_attr_string(Reader *r, hid_t obj, const char *objpath, const char *name,
                            char **out) {
    hid_t t;
    hsize_t count;
    int rank;
    hid_t a = open_attr(r, obj, objpath, name, "a string", &t, &count, &rank);
    if (a < 0)
        return -1;
    if (H5Tget_class(t) != H5T_STRING || count != 1)
        return attr_type_error(r, a, t, name, objpath, "one string");
    int rc = read_strings(a, 1, t, 1, out);
    H5Tclose(t);
    H5Aclose(a);
    if (rc != 0)
        return err_set("%s: attribute '%s' of %s is unreadable", r->path, name, objpath);
    return 0;
}

/* Reads a one-dimensional string array attribute into out[0..*n). */
static int read_attr_strings(Reader *r, hid_t obj, const char *objpath, const char *name,
                             char ***out, int *n) {
    hid_t t;
    hsize_t count;
    int rank;
    hid_t a = open_attr(r, obj, objpath, name, "an array of strings", &t, &count, &rank);
    if (a < 0)
        return -1;
    if (H5Tget_class(t) != H5T_STRING || rank != 1)
        return attr_type_error(r, a, t, name, objpath, "a one-dimensional array of strings");
    *n = (int)count;
    *out = xcalloc(count, sizeof(char *));
    int rc = read_strings(a, 1, t, count, *out);
    H5Tclose(t);
    H5Aclose(a);
    if (rc != 0)
        return err_set("%s: attribute '%s' of %s is unreadable", r->path, name, objpath);
    return 0;
}

static int read_attr_int(Reader *r, hid_t obj, const char *objpath, const char *name,
                         long long *out) {
    hid_t t;
    hsize_t count;
    int rank;
    hid_t a = open_attr(r, obj, objpath, name, "an integer", &t, &count, &rank);
    if (a < 0)
        return -1;
    if (H5Tget_class(t) != H5T_INTEGER || count != 1)
        return attr_type_error(r, a, t, name, objpath, "one integer");
    H5Tclose(t);
    herr_t rc = H5Aread(a, H5T_NATIVE_LLONG, out);
    H5Aclose(a);
    if (rc < 0)
        return err_set("%s: attribute '%s' of %s is unreadable", r->path, name, objpath);
    return 0;
}

static void free_strings(char **s, int n) {
    if (!s)
        return;
    for (int i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

static int read_header(Reader *r, Dataset *ds) {
    char *text = NULL;
    if (H5Aexists(r->file, "format") <= 0 && foreign_csd_error(r->file, r->path) != 0)
        return -1;
    if (read_attr_string(r, r->file, "/", "format", &text) != 0)
        return -1;
    if (strcmp(text, EUAR_FORMAT_NAME) != 0) {
        err_set("%s: attribute 'format' of / is '%s', expected '%s'; this is not an "
                "euar-bench dataset file (convert it as docs/format.md describes)",
                r->path, text, EUAR_FORMAT_NAME);
        free(text);
        return -1;
    }
    free(text);

    long long version;
    if (read_attr_int(r, r->file, "/", "format_version", &version) != 0)
        return -1;
    if (version > EUAR_FORMAT_VERSION)
        return err_set("%s: attribute 'format_version' of / is %lld, but this euar-bench "
                       "reads version %d: the file was written by a newer euar-bench; "
                       "regenerate it with this version ('euar data ...') or upgrade",
                       r->path, version, EUAR_FORMAT_VERSION);
    if (version < 1)
        return err_set("%s: attribute 'format_version' of / is %lld; supported version: %d; "
                       "regenerate the file with 'euar data'",
                       r->path, version, EUAR_FORMAT_VERSION);

    if (read_attr_string(r, r->file, "/", "name", &text) != 0)
        return -1;
    if (strlen(text) >= sizeof(ds->name)) {
        err_set("%s: attribute 'name' of / is '%s', longer than %zu characters", r->path, text,
                sizeof(ds->name) - 1);
        free(text);
        return -1;
    }
    snprintf(ds->name, sizeof(ds->name), "%s", text);
    free(text);

    if (read_attr_string(r, r->file, "/", "task", &text) != 0)
        return -1;
    int is_regression = strcmp(text, "regression") == 0;
    int is_classification = strcmp(text, "classification") == 0;
    if (!is_regression && !is_classification) {
        err_set("%s: attribute 'task' of / is '%s'; use 'regression' or 'classification'",
                r->path, text);
        free(text);
        return -1;
    }
    free(text);
    ds->task = is_regression ? EUAR_TASK_REGRESSION : EUAR_TASK_CLASSIFICATION;
    if (is_regression)
        return 0;

    long long classes;
    if (read_attr_int(r, r->file, "/", "num_classes", &classes) != 0)
        return -1;
    if (classes < 2 || classes > 1000000)
        return err_set("%s: attribute 'num_classes' of / is %lld; classification needs 2 "
                       "or more classes",
                       r->path, classes);
    int names = 0;
    int rc = read_attr_strings(r, r->file, "/", "class_names", &ds->class_names, &names);
    ds->num_classes = names;
    if (rc != 0)
        return -1;
    if (names != classes)
        return err_set("%s: attribute 'class_names' of / has %d names but num_classes is %lld",
                       r->path, names, classes);
    return 0;
}

static int read_samples(Reader *r, Dataset *ds) {
    hsize_t dims[1];
    hid_t d = open_array(r, "/samples/id", DTYPE_STRING, 1, "[N]", 0, dims);
    if (d < 0)
        return -1;
    if (dims[0] < 1 || dims[0] > (hsize_t)INT32_MAX) {
        H5Dclose(d);
        return err_set("%s: /samples/id: N = %llu samples; a dataset needs 1 to %d samples",
                       r->path, (unsigned long long)dims[0], INT32_MAX);
    }
    hid_t t = H5Dget_type(d);
    int n = (int)dims[0];
    ds->ids = xcalloc((size_t)n, sizeof(char *));
    ds->n = n;
    int rc = read_strings(d, 0, t, (size_t)n, ds->ids);
    H5Tclose(t);
    H5Dclose(d);
    if (rc != 0)
        return err_set("%s: /samples/id: unreadable", r->path);
    if (check_sample_ids(r->path, ds->ids, n) != 0)
        return -1;

    d = open_array(r, "/samples/split", DTYPE_U8, 1, "[N]", (hsize_t)n, dims);
    if (d < 0)
        return -1;
    ds->split = xmalloc((size_t)n);
    rc = H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->split);
    H5Dclose(d);
    if (rc < 0)
        return err_set("%s: /samples/split: unreadable", r->path);
    if (check_splits(r->path, ds->split, ds->ids, n) != 0)
        return -1;

    int regression = ds->task == EUAR_TASK_REGRESSION;
    d = open_array(r, "/labels", regression ? DTYPE_F32 : DTYPE_I32, 1, "[N]", (hsize_t)n, dims);
    if (d < 0)
        return -1;
    if (regression) {
        ds->labels = xmalloc((size_t)n * sizeof(float));
        rc = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->labels);
    } else {
        ds->classes = xmalloc((size_t)n * sizeof(int32_t));
        rc = H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->classes);
    }
    H5Dclose(d);
    if (rc < 0)
        return err_set("%s: /labels: unreadable", r->path);
    return check_labels(r->path, ds);
}

/* Reads a per-sample array [N] of `dtype` at `h5path` into a new buffer. */
static void *read_per_sample(Reader *r, const char *h5path, Dtype dtype, int n) {
    hsize_t dims[1];
    hid_t d = open_array(r, h5path, dtype, 1, "[N]", (hsize_t)n, dims);
    if (d < 0)
        return NULL;
    size_t elem = dtype == DTYPE_U8 ? 1 : 4;
    void *buf = xmalloc((size_t)n * elem);
    hid_t mt = dtype == DTYPE_U8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_INT32;
    herr_t rc = H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    if (rc < 0) {
        free(buf);
        err_set("%s: %s: unreadable", r->path, h5path);
        return NULL;
    }
    return buf;
}

/* Calls the on_chunk callback for samples [first, first + count) of modality k, whose data
 * pointers `chunk` already point at the chunk, then rechecks the lengths it may have set. */
static int call_on_chunk(Reader *r, const Dataset *ds, int k, int first, int count,
                         Modality *chunk) {
    if (!r->opt->on_chunk)
        return 0;
    if (r->opt->on_chunk(r->opt->ctx, ds, k, first, count, chunk) != 0)
        return err_prefix("%s: /modalities/%s", r->path, ds->mod[k].name);
    if (chunk->lengths) {
        char path[96];
        snprintf(path, sizeof(path), "/modalities/%s/lengths (after on_chunk)", chunk->name);
        return check_lengths(r->path, path, chunk->lengths, first, count, chunk->t, ds->ids);
    }
    return 0;
}

/* Streams features data [N, T, D] in chunks: checks non-finite values, calls on_chunk, and
 * pools (pool_features) or keeps each chunk in place. */
static int stream_features(Reader *r, Dataset *ds, int k, hid_t d) {
    Modality *m = &ds->mod[k];
    const int n = ds->n, t = m->t, dim = m->d;
    const size_t per_sample = (size_t)t * (size_t)dim;
    const int pool = r->opt->pool_features;
    char path[96];
    snprintf(path, sizeof(path), "/modalities/%s/data", m->name);
    float *chunk_buf = NULL;
    if (pool) {
        m->features = xcalloc((size_t)n * (size_t)dim, sizeof(float));
        chunk_buf = xmalloc((size_t)EUAR_MIN(n, EUAR_CHUNK_SAMPLES) * per_sample * sizeof(float));
    } else {
        m->features = xmalloc((size_t)n * per_sample * sizeof(float));
    }

    hid_t fspace = H5Dget_space(d);
    size_t bad_total = 0;
    int first_bad = -1, rc = 0;
    for (int first = 0; first < n && rc == 0; first += EUAR_CHUNK_SAMPLES) {
        int count = EUAR_MIN(EUAR_CHUNK_SAMPLES, n - first);
        float *buf = pool ? chunk_buf : m->features + (size_t)first * per_sample;
        hsize_t start[3] = {(hsize_t)first, 0, 0};
        hsize_t block[3] = {(hsize_t)count, (hsize_t)t, (hsize_t)dim};
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, block, NULL);
        hid_t mspace = H5Screate_simple(3, block, NULL);
        herr_t hr = H5Dread(d, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, buf);
        H5Sclose(mspace);
        if (hr < 0) {
            char why[256];
            h5_last_error(why, sizeof(why));
            rc = err_set("%s: %s: reading samples %d to %d failed (%s); the file may be "
                         "truncated or damaged, regenerate it",
                         r->path, path, first, first + count - 1, why);
            break;
        }

        int bad_in_chunk;
        size_t bad = count_nonfinite(buf, count, per_sample, &bad_in_chunk);
        if (bad > 0) {
            if (first_bad < 0)
                first_bad = first + bad_in_chunk;
            bad_total += bad;
            if (r->opt->nonfinite == EUAR_NONFINITE_ZERO) {
                for (size_t j = 0; j < (size_t)count * per_sample; j++)
                    if (!isfinite(buf[j]))
                        buf[j] = 0.0f;
            }
        }
        /* A rejected file is still read to the end so the message can give the total. */
        if (bad_total > 0 && r->opt->nonfinite == EUAR_NONFINITE_REJECT)
            continue;

        Modality chunk = *m;
        chunk.features = buf;
        chunk.lengths = m->lengths + first;
        chunk.available = m->available + first;
        rc = call_on_chunk(r, ds, k, first, count, &chunk);
        if (rc == 0 && pool)
            features_masked_mean(m->features + (size_t)first * (size_t)dim, buf,
                                 m->lengths + first, count, t, dim);
    }
    H5Sclose(fspace);
    free(chunk_buf);
    if (rc != 0)
        return -1;
    if (bad_total > 0 && r->opt->nonfinite == EUAR_NONFINITE_REJECT)
        return err_set("%s: %s: %zu non-finite value%s (NaN or Inf), the first in sample "
                       "'%s'; clean the features, or read them as 0 with --nonfinite zero (euar "
                       "train, euar data inspect) or \"nonfinite\": \"zero\" (a suite's dataset)",
                       r->path, path, bad_total, bad_total == 1 ? "" : "s",
                       ds->ids[first_bad]);
    if (bad_total > 0)
        LOG_WARN("%s: %s: replaced %zu non-finite value%s (NaN or Inf) with 0, the first in "
                 "sample '%s'",
                 r->path, path, bad_total, bad_total == 1 ? "" : "s", ds->ids[first_bad]);
    if (pool) {
        m->t = 1;
        for (int i = 0; i < n; i++)
            m->lengths[i] = 1;
    }
    return 0;
}

/* Reads a whole image or tokens array, then calls on_chunk per chunk of samples. */
static int read_whole(Reader *r, Dataset *ds, int k, hid_t d) {
    Modality *m = &ds->mod[k];
    char path[96];
    snprintf(path, sizeof(path), "/modalities/%s/data", m->name);
    size_t total = (size_t)ds->n * modality_sample_elems(m);
    herr_t hr;
    if (m->kind == EUAR_KIND_IMAGE) {
        m->pixels = xmalloc(total);
        hr = H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->pixels);
    } else {
        m->tokens = xmalloc(total * sizeof(int32_t));
        hr = H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->tokens);
    }
    if (hr < 0) {
        char why[256];
        h5_last_error(why, sizeof(why));
        return err_set("%s: %s: reading failed (%s); the file may be truncated or damaged, "
                       "regenerate it",
                       r->path, path, why);
    }
    if (m->kind == EUAR_KIND_TOKENS &&
        check_tokens(r->path, path, m->tokens, ds->n, m->t, m->vocab, ds->ids) != 0)
        return -1;
    size_t per_sample = modality_sample_elems(m);
    for (int first = 0; first < ds->n; first += EUAR_CHUNK_SAMPLES) {
        int count = EUAR_MIN(EUAR_CHUNK_SAMPLES, ds->n - first);
        Modality chunk = *m;
        if (m->pixels)
            chunk.pixels = m->pixels + (size_t)first * per_sample;
        if (m->tokens)
            chunk.tokens = m->tokens + (size_t)first * per_sample;
        if (m->lengths)
            chunk.lengths = m->lengths + first;
        chunk.available = m->available + first;
        if (call_on_chunk(r, ds, k, first, count, &chunk) != 0)
            return -1;
    }
    return 0;
}

static int parse_kind(Reader *r, const char *group, const char *text, ModalityKind *kind) {
    for (int k = EUAR_KIND_FEATURES; k <= EUAR_KIND_TOKENS; k++)
        if (strcmp(text, modality_kind_name((ModalityKind)k)) == 0) {
            *kind = (ModalityKind)k;
            return 0;
        }
    return err_set("%s: attribute 'kind' of %s is '%s'; use 'features', 'image' or 'tokens'",
                   r->path, group, text);
}

/* Reads the modality group /modalities/<name> into ds->mod[k]. */
static int read_modality(Reader *r, Dataset *ds, int k, const char *name) {
    Modality *m = &ds->mod[k];
    char group[80], path[96];
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(group, sizeof(group), "/modalities/%s", name);
    if (H5Lexists(r->file, "/modalities", H5P_DEFAULT) <= 0 ||
        H5Lexists(r->file, group, H5P_DEFAULT) <= 0)
        return err_set("%s: %s: group not found, but attribute 'modalities' of / lists '%s'",
                       r->path, group, name);
    hid_t g = H5Gopen2(r->file, group, H5P_DEFAULT);
    if (g < 0)
        return err_set("%s: %s: not a group", r->path, group);
    char *kind_text = NULL;
    int rc = read_attr_string(r, g, group, "kind", &kind_text);
    if (rc == 0)
        rc = parse_kind(r, group, kind_text, &m->kind);
    free(kind_text);
    long long vocab = 0;
    if (rc == 0 && m->kind == EUAR_KIND_TOKENS) {
        rc = read_attr_int(r, g, group, "vocab_size", &vocab);
        if (rc == 0 && (vocab < 2 || vocab > INT32_MAX))
            rc = err_set("%s: attribute 'vocab_size' of %s is %lld; it must be at least 2 "
                         "(id 0 is padding, id 1 the blank token)",
                         r->path, group, vocab);
        m->vocab = (int)vocab;
    }
    H5Gclose(g);
    if (rc != 0)
        return -1;
    if (r->header_only)
        return 0;

    const int n = ds->n;
    snprintf(path, sizeof(path), "%s/available", group);
    m->available = read_per_sample(r, path, DTYPE_U8, n);
    if (!m->available || check_available(r->path, path, m->available, n, ds->ids) != 0)
        return -1;

    hsize_t dims[4];
    hid_t d;
    snprintf(path, sizeof(path), "%s/data", group);
    if (m->kind == EUAR_KIND_FEATURES)
        d = open_array(r, path, DTYPE_F32, 3, "[N, T, D]", (hsize_t)n, dims);
    else if (m->kind == EUAR_KIND_IMAGE)
        d = open_array(r, path, DTYPE_U8, 4, "[N, C, H, W]", (hsize_t)n, dims);
    else
        d = open_array(r, path, DTYPE_I32, 2, "[N, T]", (hsize_t)n, dims);
    if (d < 0)
        return -1;
    if (m->kind == EUAR_KIND_IMAGE) {
        m->c = (int)dims[1];
        m->h = (int)dims[2];
        m->w = (int)dims[3];
    } else {
        m->t = (int)dims[1];
        m->d = m->kind == EUAR_KIND_FEATURES ? (int)dims[2] : 1;
    }

    int rank = 2;
    if (m->kind == EUAR_KIND_IMAGE)
        rank = 4;
    else if (m->kind == EUAR_KIND_FEATURES)
        rank = 3;
    for (int i = 1; i < rank; i++)
        if (dims[i] < 1 || dims[i] > 1000000) {
            H5Dclose(d);
            return err_set("%s: %s: dimension %d is %llu; each dimension must be 1 to 1000000",
                           r->path, path, i, (unsigned long long)dims[i]);
        }
    if (m->kind != EUAR_KIND_IMAGE) {
        snprintf(path, sizeof(path), "%s/lengths", group);
        m->lengths = read_per_sample(r, path, DTYPE_I32, n);
        if (!m->lengths || check_lengths(r->path, path, m->lengths, 0, n, m->t, ds->ids) != 0) {
            H5Dclose(d);
            return -1;
        }
    }
    rc = m->kind == EUAR_KIND_FEATURES ? stream_features(r, ds, k, d) : read_whole(r, ds, k, d);
    H5Dclose(d);
    return rc;
}

static int read_modalities(Reader *r, Dataset *ds) {
    char **names = NULL;
    int count = 0;
    if (read_attr_strings(r, r->file, "/", "modalities", &names, &count) != 0)
        return -1;
    int rc = 0;
    if (count < 1 || count > EUAR_MAX_MODALITIES)
        rc = err_set("%s: attribute 'modalities' of / lists %d modalities; a dataset has 1 to "
                     "%d",
                     r->path, count, EUAR_MAX_MODALITIES);
    for (int k = 0; k < count && rc == 0; k++) {
        size_t len = strlen(names[k]);
        if (len == 0 || len >= EUAR_NAME_LEN || strchr(names[k], '/'))
            rc = err_set("%s: attribute 'modalities' of / has the name '%s'; modality names "
                         "have 1 to %d characters and no '/'",
                         r->path, names[k], EUAR_NAME_LEN - 1);
        for (int j = 0; j < k && rc == 0; j++)
            if (strcmp(names[j], names[k]) == 0)
                rc = err_set("%s: attribute 'modalities' of / lists '%s' twice", r->path,
                             names[k]);
    }
    for (int k = 0; k < count && rc == 0; k++) {
        ds->num_modalities = k + 1;
        rc = read_modality(r, ds, k, names[k]);
    }
    free_strings(names, count);
    return rc;
}

/* What load_file() reads: the root attributes and each modality's name, kind and vocabulary
 * size (LOAD_HEADER), those and the per-sample arrays of /samples and /labels (LOAD_PROBE),
 * or everything (LOAD_ALL). */
typedef enum { LOAD_HEADER, LOAD_PROBE, LOAD_ALL } LoadScope;

static int load_file(const char *path, const DatasetLoadOptions *opt, LoadScope scope,
                     Dataset *out);

/* Exit status of a probe child whose read failed with an error message. */
#define PROBE_READ_ERROR 3
/* Time limit of the probe child, unless the environment variable EUAR_H5_PROBE_SECONDS sets
 * another. Reading the metadata of the 4 GB synth-mosei file takes well under a second, and
 * libhdf5 loops forever on some damaged files. */
#define PROBE_SECONDS 20

static unsigned probe_seconds(void) {
    const char *text = getenv("EUAR_H5_PROBE_SECONDS");
    char *end = NULL;
    long v = text ? strtol(text, &end, 10) : 0;
    return text && *text && !*end && v > 0 && v <= 3600 ? (unsigned)v : PROBE_SECONDS;
}

/* Reads the metadata of `path` (LOAD_PROBE) in a child process first. libhdf5 1.10.8 can
 * crash on a damaged file, for example in H5HG_read on a variable-length string whose stored
 * length is corrupt, or loop forever, and no check before the read can rule that out. The
 * child takes the crash or is stopped after PROBE_SECONDS, and the caller then reads the same
 * parts safely. Returns 0 when the child read the
 * file or reported an error (the caller's own read reports it again), or -1 with err_set()
 * when the child crashed. */
static int probe_file(const char *path) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        /* The child's messages and sanitizer reports would only repeat or confuse. */
        int null_fd = open("/dev/null", O_WRONLY);
        if (null_fd >= 0) {
            dup2(null_fd, 1);
            dup2(null_fd, 2);
            close(null_fd);
        }
        signal(SIGALRM, SIG_DFL);
        alarm(probe_seconds());
        Dataset ds;
        int rc = load_file(path, NULL, LOAD_PROBE, &ds);
        _exit(rc == 0 ? 0 : PROBE_READ_ERROR);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 0;
    if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == PROBE_READ_ERROR))
        return 0;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        return err_set("%s: the HDF5 library did not finish reading the file's metadata in %d "
                       "s, so the file is damaged; regenerate it with 'euar data' or copy it "
                       "again", path, probe_seconds());
    char how[64];
    if (WIFSIGNALED(status))
        snprintf(how, sizeof(how), "signal %d, %s", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(status));
    return err_set("%s: the HDF5 library crashed (%s) while reading the file's metadata, so the "
                   "file is damaged; regenerate it with 'euar data' or copy it again",
                   path, how);
}

/* Reads a whole file, or with LOAD_HEADER or LOAD_PROBE the parts that LoadScope names. */
static int load_file(const char *path, const DatasetLoadOptions *opt, LoadScope scope,
                     Dataset *out) {
    static const DatasetLoadOptions defaults = {EUAR_NONFINITE_REJECT, 0, NULL, NULL};
    memset(out, 0, sizeof(*out));
    h5_silence_errors();
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set("%s: %s; check the path, or generate the file with 'euar data'", path,
                       errno == ENOENT ? "file not found" : strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set("%s: not a regular file", path);
    if (scope != LOAD_PROBE && probe_file(path) != 0)
        return -1;

    int header_only = scope != LOAD_ALL;
    Reader r = {path, H5I_INVALID_HID, opt ? opt : &defaults, header_only};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    r.file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (r.file < 0 && foreign_pickle_error(path) != 0)
        return -1;
    if (r.file < 0)
        return err_set("%s: not an HDF5 file or truncated; regenerate it with 'euar data' or "
                       "copy it again",
                       path);

    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    int rc = read_header(&r, &ds);
    if (rc == 0 && scope != LOAD_HEADER)
        rc = read_samples(&r, &ds);
    if (rc == 0)
        rc = read_modalities(&r, &ds);
    H5Fclose(r.file);
    if (rc != 0) {
        dataset_free(&ds);
        return -1;
    }
    *out = ds;
    return 0;
}

int dataset_load_h5(const char *path, const DatasetLoadOptions *opt, Dataset *out) {
    return load_file(path, opt, LOAD_ALL, out);
}

int dataset_read_info(const char *path, Dataset *out) {
    return load_file(path, NULL, LOAD_HEADER, out);
}
