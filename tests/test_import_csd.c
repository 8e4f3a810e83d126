/* Tests of the computational-sequence importer: alignment values, ids, splits and lengths
 * read back with dataset_load_h5, averaging of long segments, the standard folds, the
 * folds file, non-finite values and the failures that leave no output. Fixture .csd files
 * are written here with the HDF5 C API in the layout of the CMU-MultimodalSDK. */
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
#include <hdf5.h>

#include "core/common.h"
#include "datasets/dataset.h"
#include "datasets/import_csd.h"

#include "tests/tmp_dir.h"

static int setup_dir(void **state) {
    return tmp_dir_setup("csd");
}

/* A computational sequence being written: the file and its /<root>/data group. */
typedef struct {
    hid_t file, data;
} CsdWriter;

static CsdWriter csd_create(const char *path, const char *root) {
    CsdWriter w;
    w.file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(w.file >= 0);
    hid_t g = H5Gcreate2(w.file, root, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    w.data = H5Gcreate2(g, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t meta = H5Gcreate2(g, "metadata", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    hsize_t one = 1;
    hid_t space = H5Screate_simple(1, &one, NULL);
    hid_t d = H5Dcreate2(meta, "root name", st, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *value = "\"fixture\"";
    H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value);
    H5Dclose(d);
    H5Sclose(space);
    H5Tclose(st);
    H5Gclose(meta);
    H5Gclose(g);
    return w;
}

/* Writes entry `name` with features [rows, d] stored as `ftype` (gzip when `gzip`) and
 * intervals [rows, 2] as float64. */
static void csd_entry(CsdWriter *w, const char *name, int rows, int d, const double *intervals,
                      const double *features, hid_t ftype, int gzip) {
    hid_t g = H5Gcreate2(w->data, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0);
    hsize_t fdims[2] = {(hsize_t)rows, (hsize_t)d}, idims[2] = {(hsize_t)rows, 2};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (gzip) {
        H5Pset_chunk(dcpl, 2, fdims);
        H5Pset_deflate(dcpl, 4);
    }
    hid_t space = H5Screate_simple(2, fdims, NULL);
    hid_t ds = H5Dcreate2(g, "features", ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, features);
    H5Dclose(ds);
    H5Sclose(space);
    H5Pclose(dcpl);
    space = H5Screate_simple(2, idims, NULL);
    ds = H5Dcreate2(g, "intervals", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                    H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, intervals);
    H5Dclose(ds);
    H5Sclose(space);
    H5Gclose(g);
}

static void csd_finish(CsdWriter *w) {
    H5Gclose(w->data);
    H5Fclose(w->file);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Labels in the CMU-MOSEI layout of 7 columns, each row as [start, end] (sentiment):
 * - "-abc_1": [0, 1] (1.5), [1, 1] (zero duration) and [1, 3] (3.5, clipped to 3);
 * - "12345": [0, 2] (-2);
 * - "nofold": a video in no fold;
 * - "zz_test": [0.5, 1.5] (0.25).
 * The other six columns (9) check that the sentiment is taken from the first. */
static void label_entry(CsdWriter *w, const char *name, int rows, const double *intervals,
                        const double *sentiment) {
    double features[3 * 7];
    assert_true(rows <= 3);
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < 7; k++)
            features[r * 7 + k] = k == 0 ? sentiment[r] : 9;
    csd_entry(w, name, rows, 7, intervals, features, H5T_IEEE_F64LE, 0);
}

static void write_labels(const char *path) {
    CsdWriter w = csd_create(path, "Opinion Labels (v1)");
    double iv_a[] = {0, 1, 1, 1, 1, 3}, y_a[] = {1.5, 0, 3.5};
    double iv_b[] = {0, 2}, y_b[] = {-2};
    double iv_c[] = {0, 1}, y_c[] = {1};
    double iv_d[] = {0.5, 1.5}, y_d[] = {0.25};
    label_entry(&w, "-abc_1", 3, iv_a, y_a);
    label_entry(&w, "12345", 1, iv_b, y_b);
    label_entry(&w, "nofold", 1, iv_c, y_c);
    label_entry(&w, "zz_test", 1, iv_d, y_d);
    csd_finish(&w);
}

/* Audio, float32 with gzip, D = 2: six 0.5 s rows in "-abc_1" with values (r, 10 + r); six
 * 1/3 s rows in "12345" with (100 + r, -r), stored out of order; one row in "zz_test". */
static void write_audio(const char *path, double nan_at_row) {
    CsdWriter w = csd_create(path, "COVAREP");
    double iv_a[12], ft_a[12], iv_b[12], ft_b[12];
    for (int r = 0; r < 6; r++) {
        iv_a[2 * r] = 0.5 * r;
        iv_a[2 * r + 1] = 0.5 * (r + 1);
        ft_a[2 * r] = r;
        ft_a[2 * r + 1] = 10 + r;
        int k = 5 - r; /* reversed storage: the importer sorts rows by start time */
        iv_b[2 * r] = k / 3.0;
        iv_b[2 * r + 1] = (k + 1) / 3.0;
        ft_b[2 * r] = 100 + k;
        ft_b[2 * r + 1] = -k;
    }
    if (nan_at_row >= 0)
        ft_a[2 * (int)nan_at_row] = NAN;
    double iv_c[] = {0, 1}, ft_c[] = {7, 8};
    csd_entry(&w, "-abc_1", 6, 2, iv_a, ft_a, H5T_IEEE_F32LE, 1);
    csd_entry(&w, "12345", 6, 2, iv_b, ft_b, H5T_IEEE_F32LE, 1);
    csd_entry(&w, "zz_test", 1, 2, iv_c, ft_c, H5T_IEEE_F32LE, 1);
    csd_finish(&w);
}

/* Vision, float64 without compression, D = 3, one row per video; "12345" is split over two
 * already aligned entries "12345[0]" and "12345[1]". VISION_NO_TEST leaves out "zz_test" and
 * VISION_SHORT ends the row of "-abc_1" at 1 s, so that segment "-abc_1[2]" has no row. */
enum { VISION_FULL, VISION_NO_TEST, VISION_SHORT };

static void write_vision(const char *path, int mode) {
    CsdWriter w = csd_create(path, "FACET 4.2");
    double iv_a[] = {0, mode == VISION_SHORT ? 1 : 3}, ft_a[] = {1, 2, 3};
    double iv_b0[] = {0, 1}, ft_b0[] = {4, 5, 6};
    double iv_b1[] = {1, 2}, ft_b1[] = {10, 11, 12};
    double iv_c[] = {0.5, 1.5}, ft_c[] = {7, 8, 9};
    csd_entry(&w, "-abc_1", 1, 3, iv_a, ft_a, H5T_IEEE_F64LE, 0);
    csd_entry(&w, "12345[0]", 1, 3, iv_b0, ft_b0, H5T_IEEE_F64LE, 0);
    csd_entry(&w, "12345[1]", 1, 3, iv_b1, ft_b1, H5T_IEEE_F64LE, 0);
    if (mode != VISION_NO_TEST)
        csd_entry(&w, "zz_test", 1, 3, iv_c, ft_c, H5T_IEEE_F64LE, 0);
    csd_finish(&w);
}

static const char *write_folds(void) {
    const char *path = tmp_path("folds.json");
    write_text(path, "{\"train\": [\"-abc_1\"], \"valid\": [\"12345\"], \"test\": [\"zz_test\"]}");
    return path;
}

static CsdImportOptions base_options(const char *out) {
    static char labels[256], audio[256], vision[256];
    snprintf(labels, sizeof(labels), "%s", tmp_path("labels.csd"));
    snprintf(audio, sizeof(audio), "%s", tmp_path("audio.csd"));
    snprintf(vision, sizeof(vision), "%s", tmp_path("vision.csd"));
    write_labels(labels);
    write_audio(audio, -1);
    write_vision(vision, VISION_FULL);
    CsdImportOptions o;
    memset(&o, 0, sizeof(o));
    o.labels_path = labels;
    o.modality_paths[1] = audio;
    o.modality_paths[2] = vision;
    o.folds = write_folds();
    o.out_path = out;
    o.steps = 4;
    return o;
}

static void expect_steps(const Modality *m, int sample, const float *values, int steps) {
    for (int k = 0; k < m->t * m->d; k++) {
        float want = k < steps * m->d ? values[k] : 0.0f;
        assert_float_equal(m->features[(size_t)sample * m->t * m->d + k], want, 1e-5);
    }
}

static void import_aligns_values(void **state) {
    CsdImportOptions o = base_options(tmp_path("out.h5"));
    CsdImportReport r;
    if (csd_import(&o, &r) != 0)
        fail_msg("import failed: %s", err_get());
    assert_int_equal(r.label_segments, 6);
    assert_int_equal(r.zero_length, 1);
    assert_int_equal(r.no_fold_segments, 1);
    assert_int_equal(r.no_fold_videos, 1);
    assert_string_equal(r.first_no_fold, "nofold");
    assert_int_equal(r.clipped_labels, 1);
    /* The extremes of the clipped labels only, not of all labels (-2 to 3.5). */
    assert_float_equal(r.clipped_min, 3.5, 0);
    assert_float_equal(r.clipped_max, 3.5, 0);
    assert_int_equal(r.samples, 4);
    assert_int_equal(r.averaged[1], 1);

    Dataset ds;
    if (dataset_load_h5(o.out_path, NULL, &ds) != 0)
        fail_msg("reading the import failed: %s", err_get());
    assert_int_equal(ds.n, 4);
    const char *ids[] = {"-abc_1[0]", "-abc_1[2]", "12345[0]", "zz_test[0]"};
    const uint8_t splits[] = {0, 0, 1, 2};
    const float labels[] = {1.5f, 3.0f, -2.0f, 0.25f};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(ds.ids[i], ids[i]);
        assert_int_equal(ds.split[i], splits[i]);
        assert_float_equal(ds.labels[i], labels[i], 1e-6);
    }
    assert_string_equal(ds.name, "out");
    assert_int_equal(ds.num_modalities, 2);
    const Modality *a = &ds.mod[0], *v = &ds.mod[1];
    assert_string_equal(a->name, "audio");
    assert_string_equal(v->name, "vision");
    assert_int_equal(a->t, 4);
    assert_int_equal(a->d, 2);
    assert_int_equal(v->d, 3);

    const int32_t audio_lengths[] = {2, 4, 4, 1}, vision_lengths[] = {1, 1, 2, 1};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(a->lengths[i], audio_lengths[i]);
        assert_int_equal(v->lengths[i], vision_lengths[i]);
        assert_int_equal(a->available[i], 1);
    }
    /* [0, 1]: rows 0 and 1; the row [1.0, 1.5] only touches the end, so it is out. */
    expect_steps(a, 0, (const float[]){0, 10, 1, 11}, 2);
    expect_steps(a, 1, (const float[]){2, 12, 3, 13, 4, 14, 5, 15}, 4);
    /* Six rows into four steps: groups {0}, {1, 2}, {3}, {4, 5}. */
    expect_steps(a, 2, (const float[]){100, 0, 101.5f, -1.5f, 103, -3, 104.5f, -4.5f}, 4);
    expect_steps(a, 3, (const float[]){7, 8}, 1);
    expect_steps(v, 0, (const float[]){1, 2, 3}, 1);
    expect_steps(v, 2, (const float[]){4, 5, 6, 10, 11, 12}, 2);
    expect_steps(v, 3, (const float[]){7, 8, 9}, 1);
    dataset_free(&ds);
}

static void import_one_step_is_mean(void **state) {
    CsdImportOptions o = base_options(tmp_path("mean.h5"));
    o.steps = 1;
    o.name = "csd-mean";
    CsdImportReport r;
    if (csd_import(&o, &r) != 0)
        fail_msg("import failed: %s", err_get());
    Dataset ds;
    assert_int_equal(dataset_load_h5(o.out_path, NULL, &ds), 0);
    assert_string_equal(ds.name, "csd-mean");
    assert_int_equal(ds.mod[0].t, 1);
    assert_int_equal(ds.mod[0].lengths[1], 1);
    expect_steps(&ds.mod[0], 1, (const float[]){3.5f, 13.5f}, 1);
    expect_steps(&ds.mod[0], 2, (const float[]){102.5f, -2.5f}, 1);
    dataset_free(&ds);
}

static void import_keeps_aligned_ids(void **state) {
    CsdImportOptions o = base_options(tmp_path("aligned.h5"));
    /* Labels already aligned by the SDK: one entry of one row per segment. */
    CsdWriter w = csd_create(o.labels_path, "aligned labels");
    const char *names[] = {"-abc_1[0]", "-abc_1[2]", "12345[0]", "zz_test[0]"};
    double iv[][2] = {{0, 1}, {1, 3}, {0, 2}, {0.5, 1.5}}, y[] = {1, -1, 0.5, 2};
    for (int i = 0; i < 4; i++)
        csd_entry(&w, names[i], 1, 1, iv[i], &y[i], H5T_IEEE_F32LE, 0);
    csd_finish(&w);
    CsdImportReport r;
    if (csd_import(&o, &r) != 0)
        fail_msg("import failed: %s", err_get());
    Dataset ds;
    assert_int_equal(dataset_load_h5(o.out_path, NULL, &ds), 0);
    assert_int_equal(ds.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(ds.ids[i], names[i]);
        assert_float_equal(ds.labels[i], y[i], 0);
    }
    assert_int_equal(ds.split[1], EUAR_SPLIT_TRAIN);
    assert_int_equal(ds.split[2], EUAR_SPLIT_VALID);
    assert_int_equal(ds.split[3], EUAR_SPLIT_TEST);
    assert_int_equal(ds.mod[0].lengths[1], 4);
    dataset_free(&ds);

    /* An entry "12345" of one row and an aligned entry "12345[0]" both give "12345[0]". */
    w = csd_create(o.labels_path, "aligned labels");
    for (int i = 0; i < 4; i++)
        csd_entry(&w, names[i], 1, 1, iv[i], &y[i], H5T_IEEE_F32LE, 0);
    csd_entry(&w, "12345", 1, 1, iv[2], &y[2], H5T_IEEE_F32LE, 0);
    csd_finish(&w);
    o.out_path = tmp_path("duplicate.h5");
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "entries '12345' and '12345[0]' both give the sample "
                                      "id '12345[0]'"));
    assert_false(file_exists(o.out_path));
}

static void import_keeps_nonfinite(void **state) {
    CsdImportOptions o = base_options(tmp_path("nan.h5"));
    write_audio(o.modality_paths[1], 1); /* row 1 of "-abc_1" is in segment "-abc_1[0]" */
    CsdImportReport r;
    if (csd_import(&o, &r) != 0)
        fail_msg("import failed: %s", err_get());
    assert_int_equal((int)r.nonfinite[1], 1);
    assert_int_equal(r.nonfinite_samples[1], 1);
    Dataset ds;
    assert_int_equal(dataset_load_h5(o.out_path, NULL, &ds), -1);
    assert_non_null(strstr(err_get(), "non-finite"));
    DatasetLoadOptions zero = {EUAR_NONFINITE_ZERO, 0, NULL, NULL};
    assert_int_equal(dataset_load_h5(o.out_path, &zero, &ds), 0);
    assert_float_equal(ds.mod[0].features[2], 0.0f, 0);
    dataset_free(&ds);
}

static void import_skips_nonfinite_rows(void **state) {
    /* Steps of one row average all rows of a segment. Row 3 of "-abc_1" is NaN and lies in
     * segment "-abc_1[2]" ([1, 3] s, rows 2 to 5, sample 1). */
    CsdImportOptions o = base_options(tmp_path("skip-keep.h5"));
    o.steps = 1;
    write_audio(o.modality_paths[1], 3);
    CsdImportReport r;
    if (csd_import(&o, &r) != 0)
        fail_msg("import failed: %s", err_get());
    assert_int_equal((int)r.nonfinite[1], 1);
    assert_int_equal((int)r.skipped_rows[1], 0);

    char out[256];
    snprintf(out, sizeof(out), "%s", tmp_path("skip.h5"));
    o.out_path = out;
    o.skip_nonfinite_rows = 1;
    if (csd_import(&o, &r) != 0)
        fail_msg("import failed: %s", err_get());
    assert_int_equal((int)r.nonfinite[1], 0);
    assert_int_equal((int)r.nonfinite_samples[1], 0);
    assert_int_equal((int)r.skipped_rows[1], 1);
    Dataset ds;
    if (dataset_load_h5(out, NULL, &ds) != 0)
        fail_msg("reading the import failed: %s", err_get());
    /* The mean of rows 2, 4 and 5: (2 + 4 + 5) / 3 and (12 + 14 + 15) / 3. */
    expect_steps(&ds.mod[0], 1, (const float[]){11.0f / 3, 41.0f / 3}, 1);
    expect_steps(&ds.mod[0], 2, (const float[]){102.5f, -2.5f}, 1);
    dataset_free(&ds);
}

static void import_checks_label_width(void **state) {
    CsdImportOptions o = base_options(tmp_path("width.h5"));
    char covarep[256];
    snprintf(covarep, sizeof(covarep), "%s", tmp_path("covarep.csd"));
    write_audio(covarep, -1); /* 2 columns: features, not labels */
    o.labels_path = covarep;
    o.modality_paths[1] = NULL;
    CsdImportReport r;
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "--labels "));
    assert_non_null(strstr(err_get(), "covarep.csd: the features of /COVAREP/data have 2 "
                                      "columns"));
    assert_non_null(strstr(err_get(), "1 column (CMU-MOSI opinion labels) or 7"));
    assert_false(file_exists(o.out_path));

    /* One column, as in the CMU-MOSI opinion labels, is accepted. */
    CsdWriter w = csd_create(covarep, "Opinion Segment Labels");
    double iv_a[] = {0, 1, 1, 3}, y_a[] = {1, -1}, iv_b[] = {0, 2}, y_b[] = {0.5};
    double iv_c[] = {0.5, 1.5}, y_c[] = {2};
    csd_entry(&w, "-abc_1", 2, 1, iv_a, y_a, H5T_IEEE_F32LE, 0);
    csd_entry(&w, "12345", 1, 1, iv_b, y_b, H5T_IEEE_F32LE, 0);
    csd_entry(&w, "zz_test", 1, 1, iv_c, y_c, H5T_IEEE_F32LE, 0);
    csd_finish(&w);
    if (csd_import(&o, &r) != 0)
        fail_msg("import failed: %s", err_get());
    assert_int_equal(r.samples, 4);
}

static void import_rejects_same_files(void **state) {
    CsdImportOptions o = base_options(tmp_path("same.h5"));
    CsdImportReport r;
    /* The label file again as text, spelled differently: the label would leak. */
    char labels_again[300];
    snprintf(labels_again, sizeof(labels_again), "%s/./labels.csd", tmp_dir);
    o.modality_paths[0] = labels_again;
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "--text "));
    assert_non_null(strstr(err_get(), "and --labels "));
    assert_non_null(strstr(err_get(), "are the same file"));
    assert_false(file_exists(o.out_path));

    /* Two modalities from one file, through a symbolic link. */
    o.modality_paths[0] = NULL;
    char link[256];
    snprintf(link, sizeof(link), "%s", tmp_path("audio-link.csd"));
    assert_int_equal(symlink(o.modality_paths[1], link), 0);
    o.modality_paths[2] = link;
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "--audio "));
    assert_non_null(strstr(err_get(), "and --vision "));
    assert_non_null(strstr(err_get(), "are the same file"));
    assert_false(file_exists(o.out_path));
}

static void import_checks_out_and_name(void **state) {
    CsdImportOptions o = base_options(tmp_path("unused.h5"));
    CsdImportReport r;
    char out[256];
    snprintf(out, sizeof(out), "%s", tmp_path("no-such-folder/out.h5"));
    o.out_path = out;
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "--out: folder "));
    assert_non_null(strstr(err_get(), "no-such-folder does not exist; create it first"));

    o.out_path = tmp_dir;
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "is a folder"));

    snprintf(out, sizeof(out), "%s", tmp_path("named.h5"));
    o.out_path = out;
    o.name = "cmu/mosi";
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "--name: 'cmu/mosi' contains '/'"));
    o.name = "";
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "--name: '' has 0 bytes"));
    assert_false(file_exists(out));
}

static void import_drops_or_rejects_missing(void **state) {
    CsdImportOptions o = base_options(tmp_path("drop.h5"));
    write_vision(o.modality_paths[2], VISION_SHORT);
    CsdImportReport r;
    if (csd_import(&o, &r) != 0)
        fail_msg("import failed: %s", err_get());
    assert_int_equal(r.missing[1], 0);
    assert_int_equal(r.missing[2], 1);
    assert_string_equal(r.first_missing[2], "-abc_1[2]");
    assert_int_equal(r.dropped_missing, 1);
    assert_int_equal(r.samples, 3);
    Dataset ds;
    assert_int_equal(dataset_load_h5(o.out_path, NULL, &ds), 0);
    assert_string_equal(ds.ids[0], "-abc_1[0]");
    assert_string_equal(ds.ids[1], "12345[0]");
    dataset_free(&ds);

    o.out_path = tmp_path("strict.h5");
    o.strict = 1;
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "--vision"));
    assert_non_null(strstr(err_get(), "'-abc_1[2]'"));
    assert_false(file_exists(o.out_path));

    /* Without the only test video the test split is empty: an error, not a file. */
    o.strict = 0;
    o.out_path = tmp_path("empty-split.h5");
    write_vision(o.modality_paths[2], VISION_NO_TEST);
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "no segment of the test split remains"));
    assert_false(file_exists(o.out_path));
}

static void import_rejects_bad_inputs(void **state) {
    CsdImportOptions o = base_options(tmp_path("bad.h5"));
    CsdImportReport r;
    const char *audio = o.modality_paths[1];

    /* Mismatched widths across entries. */
    CsdWriter w = csd_create(audio, "COVAREP");
    double iv[] = {0, 1}, f2[] = {1, 2}, f3[] = {1, 2, 3};
    csd_entry(&w, "-abc_1", 1, 2, iv, f2, H5T_IEEE_F32LE, 0);
    csd_entry(&w, "12345", 1, 3, iv, f3, H5T_IEEE_F32LE, 0);
    csd_finish(&w);
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "/COVAREP/data/12345/features has width 3"));

    /* An entry without intervals. */
    hid_t f = H5Fcreate(audio, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(f, "seq/data/-abc_1", lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Pclose(lcpl);
    H5Fclose(f);
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "/seq/data/-abc_1/features is missing"));

    /* Intervals whose end comes before their start. */
    w = csd_create(audio, "COVAREP");
    double backwards[] = {2, 1};
    csd_entry(&w, "-abc_1", 1, 2, backwards, f2, H5T_IEEE_F32LE, 0);
    csd_finish(&w);
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "/COVAREP/data/-abc_1/intervals: row 0 is [2, 1]"));

    /* A non-finite label. */
    write_audio(audio, -1);
    w = csd_create(o.labels_path, "labels");
    double nan_label[] = {NAN};
    csd_entry(&w, "-abc_1", 1, 1, iv, nan_label, H5T_IEEE_F64LE, 0);
    csd_finish(&w);
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "/labels/data/-abc_1/features: row 0 has sentiment nan"));
    write_labels(o.labels_path);

    /* A web page saved as .csd. */
    write_text(audio, "\n<!DOCTYPE html><html><body>404</body></html>\n");
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "HTML page"));

    /* A folds file that lists a video twice. */
    write_audio(audio, -1);
    write_text(o.folds, "{\"train\": [\"-abc_1\", \"12345\"], \"valid\": [\"12345\"], "
                        "\"test\": [\"zz_test\"]}");
    assert_int_equal(csd_import(&o, &r), -1);
    assert_non_null(strstr(err_get(), "'12345' is listed twice"));
    assert_false(file_exists(o.out_path));
}

static void folds_file_errors(void **state) {
    CsdFolds folds;
    const char *path = tmp_path("f.json");
    write_text(path, "{\"train\": [\"a\"], \"valid\": [\"b\"]");
    assert_int_equal(csd_folds_load(path, &folds), -1);
    assert_non_null(strstr(err_get(), "not a JSON object"));
    write_text(path, "{\"train\": [\"a\"], \"valid\": \"b\", \"test\": [\"c\"]}");
    assert_int_equal(csd_folds_load(path, &folds), -1);
    assert_non_null(strstr(err_get(), "\"valid\" is not an array"));
    write_text(path, "{\"train\": [\"a\"], \"valid\": [\"b\"], \"test\": [3]}");
    assert_int_equal(csd_folds_load(path, &folds), -1);
    assert_non_null(strstr(err_get(), "\"test\"[0] is not a non-empty string"));
    write_text(path, "{\"train\": [\"a\"], \"dev\": [\"b\"], \"test\": [\"c\"]}");
    assert_int_equal(csd_folds_load(path, &folds), -1);
    assert_non_null(strstr(err_get(), "unknown key 'dev'"));
    write_text(path, "{\"train\": [\"a\"], \"valid\": [\"b\"], \"test\": [\"c\"], "
                     "\"train\": [\"d\"]}");
    assert_int_equal(csd_folds_load(path, &folds), -1);
    assert_non_null(strstr(err_get(), "key 'train' appears twice"));
    write_text(path, "{\"train\": [\"a\"], \"valid\": [], \"test\": [\"c\"]}");
    assert_int_equal(csd_folds_load(path, &folds), -1);
    assert_non_null(strstr(err_get(), "\"valid\" is empty"));
    assert_int_equal(csd_folds_load(tmp_path("none.json"), &folds), -1);
    assert_non_null(strstr(err_get(), "neither 'mosi', 'mosei' nor a readable file"));
}

static void standard_folds_sizes(void **state) {
    const int mosi[] = {52, 10, 31}, mosei[] = {2249, 300, 678};
    for (int s = 0; s < EUAR_SPLIT_COUNT; s++) {
        assert_int_equal(csd_std_folds_mosi[s].count, mosi[s]);
        assert_int_equal(csd_std_folds_mosei[s].count, mosei[s]);
    }
    CsdFolds folds;
    assert_int_equal(csd_folds_load("mosei", &folds), 0); /* no video in two splits */
    assert_int_equal(folds.n, 3227);
    assert_int_equal(csd_folds_find(&folds, "-3g5yACwYnA"), EUAR_SPLIT_TRAIN);
    assert_int_equal(csd_folds_find(&folds, "91276"), EUAR_SPLIT_TRAIN);
    assert_int_equal(csd_folds_find(&folds, "--qXJuDtHPw"), EUAR_SPLIT_VALID);
    assert_int_equal(csd_folds_find(&folds, "vR90Pdx9wxs"), EUAR_SPLIT_TEST);
    assert_int_equal(csd_folds_find(&folds, "not-a-video"), -1);
    csd_folds_free(&folds);
    assert_int_equal(csd_folds_load("mosi", &folds), 0);
    assert_int_equal(folds.n, 93);
    assert_int_equal(csd_folds_find(&folds, "03bSnISJMiM"), EUAR_SPLIT_TRAIN);
    assert_int_equal(csd_folds_find(&folds, "_dI--eQ6qVU"), EUAR_SPLIT_VALID);
    assert_int_equal(csd_folds_find(&folds, "c7UH_rxdZv4"), EUAR_SPLIT_TEST);
    csd_folds_free(&folds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(import_aligns_values),
        cmocka_unit_test(import_one_step_is_mean),
        cmocka_unit_test(import_keeps_aligned_ids),
        cmocka_unit_test(import_keeps_nonfinite),
        cmocka_unit_test(import_skips_nonfinite_rows),
        cmocka_unit_test(import_checks_label_width),
        cmocka_unit_test(import_rejects_same_files),
        cmocka_unit_test(import_checks_out_and_name),
        cmocka_unit_test(import_drops_or_rejects_missing),
        cmocka_unit_test(import_rejects_bad_inputs),
        cmocka_unit_test(folds_file_errors),
        cmocka_unit_test(standard_folds_sizes),
    };
    return cmocka_run_group_tests(tests, setup_dir, tmp_dir_teardown);
}
