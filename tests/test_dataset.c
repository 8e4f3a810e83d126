/* Tests of datasets/: HDF5 round trip, pooling, streaming callback, every validation error of
 * the reader, the synthetic generator and the Fashion-MNIST two-view builder. Bad files are
 * written here with the HDF5 and zlib APIs in a temporary folder. */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <ftw.h>
#include <hdf5.h>
#include <zlib.h>

#include "core/common.h"
#include "datasets/dataset.h"

#include "tests/tmp_dir.h"

static int setup_dir(void **state) {
    return tmp_dir_setup("dataset");
}

/* A hand-made dataset of 6 samples with one modality of each kind:
 * "feat" features T=3 D=2, "img" image 1x2x2, "tok" tokens T=4 with vocabulary 10. */
static const int32_t small_lengths[6] = {3, 2, 1, 0, 3, 2};

static void make_small(Dataset *ds, TaskKind task) {
    const int n = 6;
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "small");
    ds->task = task;
    ds->n = n;
    ds->ids = xcalloc(n, sizeof(char *));
    ds->split = xmalloc(n);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "s-%d", i);
        ds->ids[i] = xstrdup(id);
        ds->split[i] = (uint8_t)(i / 2);
    }
    if (task == EUAR_TASK_REGRESSION) {
        ds->labels = xmalloc(n * sizeof(float));
        for (int i = 0; i < n; i++)
            ds->labels[i] = -3.0f + 1.2f * (float)i;
    } else {
        ds->num_classes = 3;
        ds->class_names = xcalloc(3, sizeof(char *));
        ds->class_names[0] = xstrdup("neg");
        ds->class_names[1] = xstrdup("neu");
        ds->class_names[2] = xstrdup("pos");
        ds->classes = xmalloc(n * sizeof(int32_t));
        for (int i = 0; i < n; i++)
            ds->classes[i] = i % 3;
    }

    ds->num_modalities = 3;
    Modality *f = &ds->mod[0], *im = &ds->mod[1], *tk = &ds->mod[2];
    snprintf(f->name, sizeof(f->name), "feat");
    f->kind = EUAR_KIND_FEATURES;
    f->t = 3;
    f->d = 2;
    f->features = xcalloc(n * 3 * 2, sizeof(float));
    f->lengths = xmalloc(n * sizeof(int32_t));
    memcpy(f->lengths, small_lengths, sizeof(small_lengths));
    for (int i = 0; i < n; i++)
        for (int s = 0; s < small_lengths[i]; s++)
            for (int j = 0; j < 2; j++)
                f->features[(i * 3 + s) * 2 + j] = (float)(10 * i + 2 * s + j) * 0.5f;

    snprintf(im->name, sizeof(im->name), "img");
    im->kind = EUAR_KIND_IMAGE;
    im->c = 1;
    im->h = 2;
    im->w = 2;
    im->pixels = xmalloc(n * 4);
    for (int k = 0; k < n * 4; k++)
        im->pixels[k] = (uint8_t)(k * 11);

    snprintf(tk->name, sizeof(tk->name), "tok");
    tk->kind = EUAR_KIND_TOKENS;
    tk->t = 4;
    tk->vocab = 10;
    tk->tokens = xcalloc(n * 4, sizeof(int32_t));
    tk->lengths = xmalloc(n * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        tk->lengths[i] = i % 5;
        for (int s = 0; s < tk->lengths[i]; s++)
            tk->tokens[i * 4 + s] = 1 + (i + s) % 9;
    }
    for (int m = 0; m < 3; m++) {
        ds->mod[m].available = xmalloc(n);
        for (int i = 0; i < n; i++)
            ds->mod[m].available[i] = (uint8_t)(i != m);
    }
}

static const char *save_small(const char *name) {
    Dataset ds;
    make_small(&ds, EUAR_TASK_REGRESSION);
    const char *path = tmp_path(name);
    assert_int_equal(dataset_save_h5(path, &ds), 0);
    dataset_free(&ds);
    return path;
}

static void assert_modality_equal(const Modality *a, const Modality *b, int n) {
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->kind, b->kind);
    assert_memory_equal(a->available, b->available, n);
    if (a->kind == EUAR_KIND_FEATURES) {
        assert_int_equal(a->t, b->t);
        assert_int_equal(a->d, b->d);
        assert_memory_equal(a->features, b->features, sizeof(float) * n * a->t * a->d);
        assert_memory_equal(a->lengths, b->lengths, sizeof(int32_t) * n);
    } else if (a->kind == EUAR_KIND_IMAGE) {
        assert_int_equal(a->c, b->c);
        assert_int_equal(a->h, b->h);
        assert_int_equal(a->w, b->w);
        assert_memory_equal(a->pixels, b->pixels, n * a->c * a->h * a->w);
    } else {
        assert_int_equal(a->t, b->t);
        assert_int_equal(a->vocab, b->vocab);
        assert_memory_equal(a->tokens, b->tokens, sizeof(int32_t) * n * a->t);
        assert_memory_equal(a->lengths, b->lengths, sizeof(int32_t) * n);
    }
}

static void roundtrip_all_kinds(void **state) {
    Dataset in, out;
    make_small(&in, EUAR_TASK_REGRESSION);
    const char *path = tmp_path("roundtrip.h5");
    assert_int_equal(dataset_save_h5(path, &in), 0);
    assert_int_equal(dataset_load_h5(path, NULL, &out), 0);
    assert_string_equal(out.name, "small");
    assert_int_equal(out.task, EUAR_TASK_REGRESSION);
    assert_int_equal(out.n, in.n);
    for (int i = 0; i < in.n; i++)
        assert_string_equal(out.ids[i], in.ids[i]);
    assert_memory_equal(out.split, in.split, in.n);
    assert_memory_equal(out.labels, in.labels, in.n * sizeof(float));
    assert_null(out.classes);
    assert_int_equal(out.num_modalities, 3);
    for (int m = 0; m < 3; m++)
        assert_modality_equal(&in.mod[m], &out.mod[m], in.n);
    assert_int_equal(dataset_split_count(&out, EUAR_SPLIT_VALID), 2);
    assert_int_equal(dataset_find_modality(&out, "tok"), 2);
    assert_int_equal(dataset_find_modality(&out, "none"), -1);
    dataset_free(&in);
    dataset_free(&out);
}

static void roundtrip_classification(void **state) {
    Dataset in, out;
    make_small(&in, EUAR_TASK_CLASSIFICATION);
    const char *path = tmp_path("roundtrip_class.h5");
    assert_int_equal(dataset_save_h5(path, &in), 0);
    assert_int_equal(dataset_load_h5(path, NULL, &out), 0);
    assert_int_equal(out.task, EUAR_TASK_CLASSIFICATION);
    assert_int_equal(out.num_classes, 3);
    assert_string_equal(out.class_names[2], "pos");
    assert_null(out.labels);
    assert_memory_equal(out.classes, in.classes, in.n * sizeof(int32_t));
    dataset_free(&in);
    dataset_free(&out);
}

static void save_rejects_invalid(void **state) {
    Dataset ds;
    make_small(&ds, EUAR_TASK_REGRESSION);
    ds.mod[0].lengths[2] = 4;
    const char *path = tmp_path("invalid_save.h5");
    assert_int_equal(dataset_save_h5(path, &ds), -1);
    assert_non_null(strstr(err_get(), "/modalities/feat/lengths"));
    assert_false(file_exists(path));
    dataset_free(&ds);
}

static void pool_masked_mean(void **state) {
    const char *path = save_small("pool.h5");
    DatasetLoadOptions opt = {EUAR_NONFINITE_REJECT, 1, NULL, NULL};
    Dataset ds;
    assert_int_equal(dataset_load_h5(path, &opt, &ds), 0);
    const Modality *f = &ds.mod[0];
    assert_int_equal(f->t, 1);
    assert_int_equal(f->d, 2);
    for (int i = 0; i < ds.n; i++) {
        assert_int_equal(f->lengths[i], 1);
        for (int j = 0; j < 2; j++) {
            /* The values of step s are (10 i + 2 s + j) / 2; the mean over s < L is
             * (10 i + (L - 1) + j) / 2, and 0 when L = 0. */
            int len = small_lengths[i];
            float expected = len ? (float)(10 * i + (len - 1) + j) * 0.5f : 0.0f;
            assert_float_equal(f->features[i * 2 + j], expected, 1e-6);
        }
    }
    /* Tokens are not pooled. */
    assert_int_equal(ds.mod[2].t, 4);
    dataset_free(&ds);
}

/* Streaming callback of the on_chunk test: counts visits and changes the data. */
typedef struct {
    int visits[EUAR_MAX_MODALITIES][200];
    int max_count;
} ChunkLog;

static int log_chunk(void *ctx, const Dataset *ds, int k, int first, int count, Modality *m) {
    ChunkLog *log = ctx;
    log->max_count = EUAR_MAX(log->max_count, count);
    for (int i = 0; i < count; i++) {
        log->visits[k][first + i]++;
        if ((first + i) % 2)
            m->available[i] = 0;
        if (m->kind == EUAR_KIND_FEATURES)
            m->features[(size_t)i * m->t * m->d] = 1000.0f + (float)(first + i);
        else if (m->kind == EUAR_KIND_TOKENS)
            m->tokens[(size_t)i * m->t] = 7;
    }
    return 0;
}

/* A dataset of n samples with features T=2 D=3 and tokens T=2, for streaming tests. */
static void make_streaming(Dataset *ds, int n) {
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "stream");
    ds->task = EUAR_TASK_REGRESSION;
    ds->n = n;
    ds->ids = xcalloc(n, sizeof(char *));
    ds->split = xmalloc(n);
    ds->labels = xcalloc(n, sizeof(float));
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "x-%03d", i);
        ds->ids[i] = xstrdup(id);
        ds->split[i] = (uint8_t)(i % 3);
    }

    ds->num_modalities = 2;
    Modality *f = &ds->mod[0], *tk = &ds->mod[1];
    snprintf(f->name, sizeof(f->name), "f");
    f->kind = EUAR_KIND_FEATURES;
    f->t = 2;
    f->d = 3;
    f->features = xcalloc(n * 6, sizeof(float));
    f->lengths = xmalloc(n * sizeof(int32_t));

    snprintf(tk->name, sizeof(tk->name), "t");
    tk->kind = EUAR_KIND_TOKENS;
    tk->t = 2;
    tk->vocab = 8;
    tk->tokens = xcalloc(n * 2, sizeof(int32_t));
    tk->lengths = xmalloc(n * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        f->lengths[i] = 1;
        tk->lengths[i] = 2;
        tk->tokens[i * 2] = 2;
        tk->tokens[i * 2 + 1] = 3;
    }
    for (int m = 0; m < 2; m++) {
        ds->mod[m].available = xmalloc(n);
        memset(ds->mod[m].available, 1, n);
    }
}

static void on_chunk_visits_once(void **state) {
    const int n = 150;
    Dataset in, out;
    make_streaming(&in, n);
    const char *path = tmp_path("stream.h5");
    assert_int_equal(dataset_save_h5(path, &in), 0);
    static ChunkLog log;
    memset(&log, 0, sizeof(log));
    DatasetLoadOptions opt = {EUAR_NONFINITE_REJECT, 1, log_chunk, &log};
    assert_int_equal(dataset_load_h5(path, &opt, &out), 0);
    assert_true(log.max_count < n);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < n; i++)
            assert_int_equal(log.visits[k][i], 1);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out.mod[0].available[i], i % 2 == 0);
        assert_int_equal(out.mod[1].available[i], i % 2 == 0);
        /* Pooling over length 1 keeps step 0, which the callback changed. */
        assert_float_equal(out.mod[0].features[i * 3], 1000.0f + (float)i, 1e-3);
        assert_int_equal(out.mod[1].tokens[i * 2], 7);
    }
    dataset_free(&in);
    dataset_free(&out);
}

/* Helpers that damage a valid file with the HDF5 API. */
static hid_t open_rw(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

static void replace_array(const char *path, const char *h5path, hid_t type, int rank,
                          const hsize_t *dims, const void *data) {
    hid_t f = open_rw(path);
    assert_true(H5Ldelete(f, h5path, H5P_DEFAULT) >= 0);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, h5path, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
}

static void overwrite_array(const char *path, const char *h5path, hid_t type, const void *data) {
    hid_t f = open_rw(path);
    hid_t d = H5Dopen2(f, h5path, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(d);
    H5Fclose(f);
}

static void set_root_attr_int(const char *path, const char *name, int value) {
    hid_t f = open_rw(path);
    H5Adelete(f, name);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    long long v = value;
    assert_true(H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0);
    H5Aclose(a);
    H5Sclose(space);
    H5Fclose(f);
}

static void set_root_attr_string(const char *path, const char *name, const char *value) {
    hid_t f = open_rw(path);
    H5Adelete(f, name);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Awrite(a, t, value) >= 0);
    H5Aclose(a);
    H5Sclose(space);
    H5Tclose(t);
    H5Fclose(f);
}

/* Loads `path` and checks that it fails, names the file and contains `key`, and leaves the
 * output empty. */
static void expect_load_error(const char *path, const DatasetLoadOptions *opt, const char *key) {
    Dataset ds;
    err_clear();
    assert_int_equal(dataset_load_h5(path, opt, &ds), -1);
    const char *msg = err_get();
    if (!strstr(msg, path) || !strstr(msg, key))
        print_error("message '%s' lacks '%s' or '%s'\n", msg, path, key);
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, key));
    assert_int_equal(ds.n, 0);
    assert_null(ds.ids);
    assert_null(ds.mod[0].features);
}

static void error_missing_file(void **state) {
    expect_load_error(tmp_path("absent.h5"), NULL, "not found");
}

static void error_not_hdf5(void **state) {
    const char *path = tmp_path("text.h5");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is a text file, not HDF5\n", f);
    fclose(f);
    expect_load_error(path, NULL, "not an HDF5 file or truncated");
}

static void error_truncated(void **state) {
    const char *path = save_small("truncated.h5");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    expect_load_error(path, NULL, "not an HDF5 file or truncated");
}

static void error_missing_dataset(void **state) {
    const char *path = save_small("missing.h5");
    hid_t f = open_rw(path);
    assert_true(H5Ldelete(f, "/modalities/feat/lengths", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_load_error(path, NULL, "/modalities/feat/lengths");
}

static void error_wrong_dtype(void **state) {
    const char *path = save_small("dtype.h5");
    double labels[6] = {0};
    hsize_t dims[1] = {6};
    replace_array(path, "/labels", H5T_NATIVE_DOUBLE, 1, dims, labels);
    expect_load_error(path, NULL, "/labels");
    expect_load_error(path, NULL, "dtype is float64, expected float32");
}

static void error_wrong_shape(void **state) {
    const char *path = save_small("shape.h5");
    float data[6 * 6] = {0};
    hsize_t dims[2] = {6, 6};
    replace_array(path, "/modalities/feat/data", H5T_NATIVE_FLOAT, 2, dims, data);
    expect_load_error(path, NULL, "/modalities/feat/data");
    expect_load_error(path, NULL, "expected rank 3");
}

static void error_n_mismatch(void **state) {
    const char *path = save_small("count.h5");
    uint8_t available[7] = {1, 1, 1, 1, 1, 1, 1};
    hsize_t dims[1] = {7};
    replace_array(path, "/modalities/img/available", H5T_NATIVE_UINT8, 1, dims, available);
    expect_load_error(path, NULL, "/modalities/img/available");
    expect_load_error(path, NULL, "has 7 samples");
}

static void error_nan_features(void **state) {
    const char *path = save_small("nan.h5");
    Dataset ds;
    make_small(&ds, EUAR_TASK_REGRESSION);
    ds.mod[0].features[2 * 6 + 1] = NAN;
    ds.mod[0].features[4 * 6] = INFINITY;
    overwrite_array(path, "/modalities/feat/data", H5T_NATIVE_FLOAT, ds.mod[0].features);
    dataset_free(&ds);
    expect_load_error(path, NULL, "/modalities/feat/data");
    expect_load_error(path, NULL, "2 non-finite values");
    expect_load_error(path, NULL, "'s-2'");
    DatasetLoadOptions zero = {EUAR_NONFINITE_ZERO, 0, NULL, NULL};
    assert_int_equal(dataset_load_h5(path, &zero, &ds), 0);
    assert_float_equal(ds.mod[0].features[2 * 6 + 1], 0.0f, 0.0);
    assert_float_equal(ds.mod[0].features[4 * 6], 0.0f, 0.0);
    assert_float_equal(ds.mod[0].features[4 * 6 + 1], 20.5f, 1e-6);
    dataset_free(&ds);
}

static void error_label_range(void **state) {
    const char *path = save_small("label.h5");
    float labels[6] = {0, 1, 2, 3.5f, -1, 0};
    overwrite_array(path, "/labels", H5T_NATIVE_FLOAT, labels);
    expect_load_error(path, NULL, "/labels");
    expect_load_error(path, NULL, "3.5");
}

static void error_class_range(void **state) {
    Dataset ds;
    make_small(&ds, EUAR_TASK_CLASSIFICATION);
    const char *path = tmp_path("class.h5");
    assert_int_equal(dataset_save_h5(path, &ds), 0);
    dataset_free(&ds);
    int32_t classes[6] = {0, 1, 2, 3, 0, 1};
    overwrite_array(path, "/labels", H5T_NATIVE_INT32, classes);
    expect_load_error(path, NULL, "/labels");
    expect_load_error(path, NULL, "class 3");
}

static void error_empty_split(void **state) {
    const char *path = save_small("split_empty.h5");
    uint8_t split[6] = {0, 0, 0, 0, 2, 2};
    overwrite_array(path, "/samples/split", H5T_NATIVE_UINT8, split);
    expect_load_error(path, NULL, "/samples/split");
    expect_load_error(path, NULL, "valid");
}

static void error_split_value(void **state) {
    const char *path = save_small("split_value.h5");
    uint8_t split[6] = {0, 0, 1, 3, 2, 2};
    overwrite_array(path, "/samples/split", H5T_NATIVE_UINT8, split);
    expect_load_error(path, NULL, "/samples/split");
    expect_load_error(path, NULL, "value 3");
}

static void error_newer_version(void **state) {
    const char *path = save_small("version.h5");
    set_root_attr_int(path, "format_version", EUAR_FORMAT_VERSION + 1);
    expect_load_error(path, NULL, "format_version");
    expect_load_error(path, NULL, "newer euar-bench");
}

static void error_format_name(void **state) {
    const char *path = save_small("format.h5");
    set_root_attr_string(path, "format", "other-format");
    expect_load_error(path, NULL, "'format'");
    expect_load_error(path, NULL, "other-format");
}

static void error_duplicate_ids(void **state) {
    const char *path = save_small("dup.h5");
    const char *ids[6] = {"a", "b", "c", "d", "b", "f"};
    hsize_t dims[1] = {6};
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    replace_array(path, "/samples/id", t, 1, dims, ids);
    H5Tclose(t);
    expect_load_error(path, NULL, "/samples/id");
    expect_load_error(path, NULL, "'b'");
}

static void error_length_over_t(void **state) {
    const char *path = save_small("length.h5");
    int32_t lengths[6] = {3, 2, 1, 4, 3, 2};
    overwrite_array(path, "/modalities/feat/lengths", H5T_NATIVE_INT32, lengths);
    expect_load_error(path, NULL, "/modalities/feat/lengths");
    expect_load_error(path, NULL, "length 4");
}

static void error_token_range(void **state) {
    const char *path = save_small("token.h5");
    int32_t tokens[6 * 4] = {0};
    tokens[5] = 10;
    overwrite_array(path, "/modalities/tok/data", H5T_NATIVE_INT32, tokens);
    expect_load_error(path, NULL, "/modalities/tok/data");
    expect_load_error(path, NULL, "token 10");
}

/* Reads a whole file into memory. */
static char *slurp(const char *path, size_t *len) {
    char *text = read_file_text(path, len);
    assert_non_null(text);
    return text;
}

static const int tiny_sizes[EUAR_SPLIT_COUNT] = {60, 20, 40};

static void synth_deterministic(void **state) {
    const char *a = tmp_path("synth_a.h5"), *b = tmp_path("synth_b.h5");
    const char *c = tmp_path("synth_c.h5");
    assert_int_equal(synth_sentiment_write_sized(a, "mosi", 7, tiny_sizes), 0);
    assert_int_equal(synth_sentiment_write_sized(b, "mosi", 7, tiny_sizes), 0);
    assert_int_equal(synth_sentiment_write_sized(c, "mosi", 8, tiny_sizes), 0);
    size_t la, lb, lc;
    char *da = slurp(a, &la), *db = slurp(b, &lb), *dc = slurp(c, &lc);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la);
    assert_true(la != lc || memcmp(da, dc, la) != 0);
    free(da);
    free(db);
    free(dc);
}

static void synth_rejects_bad_variant(void **state) {
    const char *path = tmp_path("synth_bad.h5");
    assert_int_equal(synth_sentiment_write_sized(path, "iemocap", 1, tiny_sizes), -1);
    assert_non_null(strstr(err_get(), "iemocap"));
    assert_false(file_exists(path));
}

/* Checks of raw synthetic chunks: padding beyond the length is zero, valid steps are not. */
typedef struct {
    int padding_nonzero;
    int valid_all_zero;
} PaddingCheck;

static int check_padding(void *ctx, const Dataset *ds, int k, int first, int count,
                         Modality *m) {
    PaddingCheck *pc = ctx;
    for (int i = 0; i < count; i++) {
        const float *x = m->features + (size_t)i * m->t * m->d;
        float valid_abs = 0;
        for (int s = 0; s < m->t; s++)
            for (int j = 0; j < m->d; j++) {
                float v = x[(size_t)s * m->d + j];
                if (s >= m->lengths[i] && v != 0.0f)
                    pc->padding_nonzero++;
                if (s < m->lengths[i])
                    valid_abs += fabsf(v);
            }
        pc->valid_all_zero += m->lengths[i] > 0 && valid_abs == 0.0f;
    }
    return 0;
}

/* Fits ridge regression (lambda 100, centred features plus intercept) of the labels on the
 * pooled features of modality k over the train split, and returns the sign accuracy on the
 * test samples with non-zero labels. */
static double ridge_test_acc2(const Dataset *ds, int k) {
    const Modality *m = &ds->mod[k];
    const int d = m->d, p = d + 1;
    double *mean = calloc(d, sizeof(double));
    double *ata = calloc((size_t)p * p, sizeof(double)), *aty = calloc(p, sizeof(double));
    double *row = malloc(p * sizeof(double));
    int n_train = 0;
    for (int i = 0; i < ds->n; i++)
        if (ds->split[i] == EUAR_SPLIT_TRAIN) {
            n_train++;
            for (int j = 0; j < d; j++)
                mean[j] += m->features[(size_t)i * d + j];
        }
    for (int j = 0; j < d; j++)
        mean[j] /= n_train;
    for (int i = 0; i < ds->n; i++) {
        if (ds->split[i] != EUAR_SPLIT_TRAIN)
            continue;
        for (int j = 0; j < d; j++)
            row[j] = m->features[(size_t)i * d + j] - mean[j];
        row[d] = 1.0;
        for (int a = 0; a < p; a++) {
            aty[a] += row[a] * ds->labels[i];
            for (int b = 0; b <= a; b++)
                ata[(size_t)a * p + b] += row[a] * row[b];
        }
    }

    for (int a = 0; a < p; a++)
        ata[(size_t)a * p + a] += 100.0;
    /* Cholesky factorisation in place (lower triangle), then two triangular solves. */
    for (int j = 0; j < p; j++) {
        double s = ata[(size_t)j * p + j];
        for (int q = 0; q < j; q++)
            s -= ata[(size_t)j * p + q] * ata[(size_t)j * p + q];
        double diag = sqrt(s);
        ata[(size_t)j * p + j] = diag;
        for (int i = j + 1; i < p; i++) {
            double t = ata[(size_t)i * p + j];
            for (int q = 0; q < j; q++)
                t -= ata[(size_t)i * p + q] * ata[(size_t)j * p + q];
            ata[(size_t)i * p + j] = t / diag;
        }
    }
    for (int i = 0; i < p; i++) {
        double s = aty[i];
        for (int q = 0; q < i; q++)
            s -= ata[(size_t)i * p + q] * aty[q];
        aty[i] = s / ata[(size_t)i * p + i];
    }
    for (int i = p - 1; i >= 0; i--) {
        double s = aty[i];
        for (int q = i + 1; q < p; q++)
            s -= ata[(size_t)q * p + i] * aty[q];
        aty[i] = s / ata[(size_t)i * p + i];
    }

    int correct = 0, total = 0;
    for (int i = 0; i < ds->n; i++) {
        if (ds->split[i] != EUAR_SPLIT_TEST || ds->labels[i] == 0.0f)
            continue;
        double pred = aty[d];
        for (int j = 0; j < d; j++)
            pred += (m->features[(size_t)i * d + j] - mean[j]) * aty[j];
        correct += (pred >= 0) == (ds->labels[i] >= 0);
        total++;
    }
    free(mean);
    free(ata);
    free(aty);
    free(row);
    return (double)correct / total;
}

static void synth_text_most_informative(void **state) {
    static const int sizes[EUAR_SPLIT_COUNT] = {1284, 229, 686};
    const char *path = tmp_path("synth_structure.h5");
    assert_int_equal(synth_sentiment_write_sized(path, "mosi", 1, sizes), 0);
    PaddingCheck pc = {0, 0};
    DatasetLoadOptions opt = {EUAR_NONFINITE_REJECT, 1, check_padding, &pc};
    Dataset ds;
    assert_int_equal(dataset_load_h5(path, &opt, &ds), 0);
    assert_int_equal(pc.padding_nonzero, 0);
    assert_int_equal(pc.valid_all_zero, 0);
    int zeros = 0;
    for (int i = 0; i < ds.n; i++)
        zeros += ds.labels[i] == 0.0f;
    assert_true(zeros > ds.n / 50);
    assert_true(zeros < ds.n / 10);
    assert_int_equal(ds.mod[2].d, 47);
    double text = ridge_test_acc2(&ds, 0), audio = ridge_test_acc2(&ds, 1);
    double vision = ridge_test_acc2(&ds, 2);
    print_message("ridge Acc2 on pooled features: text %.3f, audio %.3f, vision %.3f\n", text,
                  audio, vision);
    assert_true(text > 0.75);
    assert_true(text < 0.92);
    assert_true(audio > 0.58);
    assert_true(vision > 0.58);
    assert_true(text > audio + 0.05);
    assert_true(text > vision + 0.05);
    dataset_free(&ds);
    remove(path);
}

/* Writes a gzipped IDX file with the given magic, dims and payload. */
static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int rank,
                      const uint8_t *payload, size_t len) {
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    uint8_t header[16];
    uint32_t words[4] = {magic, 0, 0, 0};
    for (int r = 0; r < rank; r++)
        words[1 + r] = dims[r];
    for (int w = 0; w <= rank; w++)
        for (int b = 0; b < 4; b++)
            header[w * 4 + b] = (uint8_t)(words[w] >> (24 - 8 * b));
    assert_int_equal(gzwrite(f, header, 4 * (rank + 1)), 4 * (rank + 1));
    assert_int_equal(gzwrite(f, payload, (unsigned)len), (int)len);
    gzclose(f);
}

/* Writes a fake Fashion-MNIST folder: n_train and n_test 28x28 images, image k filled with
 * the value k + 1 (so a thumbnail identifies its source), classes k % 2. */
static const char *write_fake_fmnist(const char *name, int n_train, int n_test,
                                     uint32_t image_magic) {
    const char *dir = tmp_path(name);
    assert_int_equal(mkdir(dir, 0755), 0);
    char path[512];
    for (int part = 0; part < 2; part++) {
        int n = part == 0 ? n_train : n_test, offset = part == 0 ? 0 : n_train;
        uint8_t *images = malloc((size_t)n * 784), *labels = malloc(n);
        for (int k = 0; k < n; k++) {
            memset(images + (size_t)k * 784, offset + k + 1, 784);
            labels[k] = (uint8_t)(k % 2);
        }
        const char *prefix = part == 0 ? "train" : "t10k";
        uint32_t image_dims[3] = {(uint32_t)n, 28, 28}, label_dims[1] = {(uint32_t)n};
        snprintf(path, sizeof(path), "%s/%s-images-idx3-ubyte.gz", dir, prefix);
        write_idx(path, image_magic, image_dims, 3, images, (size_t)n * 784);
        snprintf(path, sizeof(path), "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
        write_idx(path, 0x00000801u, label_dims, 1, labels, n);
        free(images);
        free(labels);
    }
    return dir;
}

static void fmnist_bad_magic(void **state) {
    const char *dir = write_fake_fmnist("fmnist_bad", 20, 10, 0x00000802u);
    const char *out = tmp_path("fmnist_bad.h5");
    assert_int_equal(fmnist_2view_write(out, dir, 1), -1);
    assert_non_null(strstr(err_get(), "train-images-idx3-ubyte.gz"));
    assert_non_null(strstr(err_get(), "magic"));
    assert_false(file_exists(out));
}

static void fmnist_missing_files(void **state) {
    const char *out = tmp_path("fmnist_missing.h5");
    assert_int_equal(fmnist_2view_write(out, tmp_path("no-such-folder"), 1), -1);
    assert_non_null(strstr(err_get(), "make deps"));
    assert_false(file_exists(out));
}

static void fmnist_pairing_keeps_class(void **state) {
    const int n_train = 200, n_test = 40;
    const char *dir = write_fake_fmnist("fmnist_fake", n_train, n_test, 0x00000803u);
    const char *out = tmp_path("fmnist_fake.h5");
    assert_int_equal(fmnist_2view_write(out, dir, 3), 0);
    Dataset ds;
    assert_int_equal(dataset_load_h5(out, NULL, &ds), 0);
    assert_int_equal(ds.n, n_train + n_test);
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_VALID), n_train / 10);
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_TEST), n_test);
    assert_string_equal(ds.class_names[9], "Ankle boot");
    assert_string_equal(ds.ids[n_train + 7], "fmnist-test-00007");
    const Modality *image = &ds.mod[0], *thumb = &ds.mod[1];
    assert_string_equal(thumb->name, "thumbnail");
    assert_int_equal(thumb->h, 14);
    for (int i = 0; i < ds.n; i++) {
        assert_int_equal(image->pixels[(size_t)i * 784], i + 1);
        int partner = thumb->pixels[(size_t)i * 196] - 1;
        assert_int_equal(thumb->pixels[(size_t)i * 196 + 195], partner + 1);
        assert_true(partner >= 0);
        assert_true(partner < ds.n);
        assert_true(partner != i);
        assert_int_equal(ds.classes[partner], ds.classes[i]);
        assert_int_equal(ds.split[partner], ds.split[i]);
    }
    dataset_free(&ds);
}

static void names_of_enums(void **state) {
    assert_string_equal(split_name(EUAR_SPLIT_VALID), "valid");
    assert_string_equal(modality_kind_name(EUAR_KIND_TOKENS), "tokens");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_all_kinds),
        cmocka_unit_test(roundtrip_classification),
        cmocka_unit_test(save_rejects_invalid),
        cmocka_unit_test(pool_masked_mean),
        cmocka_unit_test(on_chunk_visits_once),
        cmocka_unit_test(error_missing_file),
        cmocka_unit_test(error_not_hdf5),
        cmocka_unit_test(error_truncated),
        cmocka_unit_test(error_missing_dataset),
        cmocka_unit_test(error_wrong_dtype),
        cmocka_unit_test(error_wrong_shape),
        cmocka_unit_test(error_n_mismatch),
        cmocka_unit_test(error_nan_features),
        cmocka_unit_test(error_label_range),
        cmocka_unit_test(error_class_range),
        cmocka_unit_test(error_empty_split),
        cmocka_unit_test(error_split_value),
        cmocka_unit_test(error_newer_version),
        cmocka_unit_test(error_format_name),
        cmocka_unit_test(error_duplicate_ids),
        cmocka_unit_test(error_length_over_t),
        cmocka_unit_test(error_token_range),
        cmocka_unit_test(synth_deterministic),
        cmocka_unit_test(synth_rejects_bad_variant),
        cmocka_unit_test(synth_text_most_informative),
        cmocka_unit_test(fmnist_bad_magic),
        cmocka_unit_test(fmnist_missing_files),
        cmocka_unit_test(fmnist_pairing_keeps_class),
        cmocka_unit_test(names_of_enums),
    };
    return cmocka_run_group_tests(tests, setup_dir, tmp_dir_teardown);
}
