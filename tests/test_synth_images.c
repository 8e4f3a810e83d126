/* Tests of the synth-nyud and synth-mvsa generators: determinism, layout, token validity and
 * the intended structure. The structure is checked with simple classifiers fitted on the
 * train split: nearest class mean on pixels for synth-nyud, naive Bayes on word counts and on
 * mean colour for synth-mvsa. */
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

#include "core/common.h"
#include "datasets/dataset.h"

#include "tests/tmp_dir.h"

static int setup_dir(void **state) {
    return tmp_dir_setup("synth-images");
}

/* Reads a whole file; returns its bytes (caller frees) and stores the size. */
static unsigned char *read_bytes(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *size = (size_t)len;
    return buf;
}

static int same_bytes(const char *a, const char *b) {
    size_t na, nb;
    unsigned char *x = read_bytes(a, &na), *y = read_bytes(b, &nb);
    int same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

typedef int (*WriteSizedFn)(const char *path, uint64_t seed, const int sizes[EUAR_SPLIT_COUNT]);

static void check_deterministic(WriteSizedFn write, const char *name) {
    static const int sizes[EUAR_SPLIT_COUNT] = {40, 10, 30};
    char a[64], b[64], c[64];
    snprintf(a, sizeof(a), "%s_a.h5", name);
    snprintf(b, sizeof(b), "%s_b.h5", name);
    snprintf(c, sizeof(c), "%s_c.h5", name);
    const char *pa = tmp_path(a), *pb = tmp_path(b), *pc = tmp_path(c);
    assert_int_equal(write(pa, 7, sizes), 0);
    assert_int_equal(write(pb, 7, sizes), 0);
    assert_int_equal(write(pc, 8, sizes), 0);
    assert_true(same_bytes(pa, pb));
    assert_false(same_bytes(pa, pc));
    Dataset ds;
    assert_int_equal(dataset_load_h5(pa, NULL, &ds), 0);
    for (int s = 0; s < EUAR_SPLIT_COUNT; s++)
        assert_int_equal(dataset_split_count(&ds, (SplitId)s), sizes[s]);
    dataset_free(&ds);
    remove(pa);
    remove(pb);
    remove(pc);
}

static void nyud_deterministic(void **state) {
    check_deterministic(synth_nyud_write_sized, "nyud");
}

static void mvsa_deterministic(void **state) {
    check_deterministic(synth_mvsa_write_sized, "mvsa");
}

static void rejects_empty_split(void **state) {
    static const int sizes[EUAR_SPLIT_COUNT] = {10, 0, 10};
    const char *path = tmp_path("empty_split.h5");
    assert_int_equal(synth_nyud_write_sized(path, 1, sizes), -1);
    assert_non_null(strstr(err_get(), "split valid"));
    assert_false(file_exists(path));
    assert_int_equal(synth_mvsa_write_sized(path, 1, sizes), -1);
    assert_non_null(strstr(err_get(), "synth-mvsa"));
    assert_false(file_exists(path));
}

/* Mean pixel level of an image modality over all samples. */
static double mean_level(const Dataset *ds, const Modality *m) {
    size_t count = (size_t)ds->n * m->c * m->h * m->w;
    double sum = 0;
    for (size_t j = 0; j < count; j++)
        sum += m->pixels[j];
    return sum / (double)count;
}

/* Reads the float32 [n] array at h5path; returns NULL when it is missing. */
static float *read_f32(const char *path, const char *h5path, int n) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, h5path, H5P_DEFAULT);
    float *values = NULL;
    if (d >= 0) {
        values = malloc((size_t)n * sizeof(float));
        assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0);
        H5Dclose(d);
    }
    H5Fclose(f);
    return values;
}

/* Paths of the full-size sets with seed 1, written by the first test that needs them. */
static const char *nyud_full(void) {
    const char *path = tmp_path("nyud_full.h5");
    if (!file_exists(path))
        assert_int_equal(synth_nyud_write(path, 1), 0);
    return path;
}

static const char *mvsa_full(void) {
    const char *path = tmp_path("mvsa_full.h5");
    if (!file_exists(path))
        assert_int_equal(synth_mvsa_write(path, 1), 0);
    return path;
}

static void nyud_layout(void **state) {
    const char *path = nyud_full();
    Dataset ds;
    assert_int_equal(dataset_load_h5(path, NULL, &ds), 0);
    assert_string_equal(ds.name, "synth-nyud");
    assert_int_equal(ds.task, EUAR_TASK_CLASSIFICATION);
    assert_int_equal(ds.n, 1449);
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_TRAIN), 636);
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_VALID), 159);
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_TEST), 654);
    assert_int_equal(ds.num_classes, 10);
    assert_string_equal(ds.class_names[0], "bedroom");
    assert_string_equal(ds.class_names[9], "others");
    assert_int_equal(ds.num_modalities, 2);
    const Modality *rgb = &ds.mod[0], *depth = &ds.mod[1];
    assert_string_equal(rgb->name, "rgb");
    assert_int_equal(rgb->kind, EUAR_KIND_IMAGE);
    assert_int_equal(rgb->c, 3);
    assert_int_equal(rgb->h, 32);
    assert_int_equal(rgb->w, 32);
    assert_string_equal(depth->name, "depth");
    assert_int_equal(depth->c, 1);
    assert_int_equal(depth->h, 32);
    int seen[10] = {0};
    for (int i = 0; i < ds.n; i++)
        seen[ds.classes[i]]++;
    for (int c = 0; c < 10; c++)
        assert_true(seen[c] > 80);
    /* Mid-range levels leave room for noise in both directions. */
    double rgb_mean = mean_level(&ds, rgb), depth_mean = mean_level(&ds, depth);
    print_message("mean level: rgb %.1f, depth %.1f\n", rgb_mean, depth_mean);
    assert_true(rgb_mean > 96.0);
    assert_true(rgb_mean < 160.0);
    assert_true(depth_mean > 96.0);
    assert_true(depth_mean < 160.0);
    dataset_free(&ds);
}

static void nyud_ambiguity_independent(void **state) {
    const char *path = nyud_full();
    const int n = 1449;
    float *rgb = read_f32(path, "/modalities/rgb/quality", n);
    float *depth = read_f32(path, "/modalities/depth/quality", n);
    assert_non_null(rgb);
    assert_non_null(depth);
    int rgb_only = 0, depth_only = 0, both = 0;
    for (int i = 0; i < n; i++) {
        assert_true(rgb[i] > 0.0f);
        assert_true(rgb[i] <= 1.0f);
        assert_true(depth[i] > 0.0f);
        assert_true(depth[i] <= 1.0f);
        rgb_only += rgb[i] < 1.0f && depth[i] == 1.0f;
        depth_only += depth[i] < 1.0f && rgb[i] == 1.0f;
        both += rgb[i] < 1.0f && depth[i] < 1.0f;
    }
    /* Expected with a share of 0.25 each, independently: 0.1875, 0.1875 and 0.0625. */
    assert_true(rgb_only > n / 8);
    assert_true(rgb_only < n / 4);
    assert_true(depth_only > n / 8);
    assert_true(depth_only < n / 4);
    assert_true(both > n / 40);
    assert_true(both < n / 10);
    free(rgb);
    free(depth);
}

/* Returns the test accuracy of a nearest class mean classifier on the pixels of the synth-nyud
 * modalities flagged in `use`. Class means come from the train split. The squared distance of
 * each modality is divided by its mean within-class squared distance on train, so that both
 * modalities weigh the same. */
static double nyud_ncm_accuracy(const Dataset *ds, const int use[2]) {
    enum { C = 10 };
    double *means[2], scatter[2] = {0, 0};
    size_t dims[2];
    int counts[C] = {0};
    for (int i = 0; i < ds->n; i++)
        if (ds->split[i] == EUAR_SPLIT_TRAIN)
            counts[ds->classes[i]]++;
    for (int k = 0; k < 2; k++) {
        const Modality *m = &ds->mod[k];
        dims[k] = (size_t)m->c * m->h * m->w;
        means[k] = calloc(C * dims[k], sizeof(double));
        for (int i = 0; i < ds->n; i++)
            if (ds->split[i] == EUAR_SPLIT_TRAIN)
                for (size_t j = 0; j < dims[k]; j++)
                    means[k][ds->classes[i] * dims[k] + j] += m->pixels[i * dims[k] + j];
        for (int c = 0; c < C; c++)
            for (size_t j = 0; j < dims[k]; j++)
                means[k][c * dims[k] + j] /= counts[c];
        int n_train = 0;
        for (int i = 0; i < ds->n; i++) {
            if (ds->split[i] != EUAR_SPLIT_TRAIN)
                continue;
            for (size_t j = 0; j < dims[k]; j++) {
                double diff = m->pixels[i * dims[k] + j] - means[k][ds->classes[i] * dims[k] + j];
                scatter[k] += diff * diff;
            }
            n_train++;
        }
        scatter[k] /= n_train;
    }
    int correct = 0, total = 0;
    for (int i = 0; i < ds->n; i++) {
        if (ds->split[i] != EUAR_SPLIT_TEST)
            continue;
        int best = -1;
        double best_distance = INFINITY;
        for (int c = 0; c < C; c++) {
            double distance = 0;
            for (int k = 0; k < 2; k++) {
                if (!use[k])
                    continue;
                double sum = 0;
                for (size_t j = 0; j < dims[k]; j++) {
                    double diff = ds->mod[k].pixels[i * dims[k] + j] - means[k][c * dims[k] + j];
                    sum += diff * diff;
                }
                distance += sum / scatter[k];
            }
            if (distance < best_distance) {
                best_distance = distance;
                best = c;
            }
        }
        correct += best == ds->classes[i];
        total++;
    }
    free(means[0]);
    free(means[1]);
    return (double)correct / total;
}

static void nyud_fusion_beats_each(void **state) {
    const char *path = nyud_full();
    Dataset ds;
    assert_int_equal(dataset_load_h5(path, NULL, &ds), 0);
    static const int rgb_only[2] = {1, 0}, depth_only[2] = {0, 1}, both[2] = {1, 1};
    double rgb = nyud_ncm_accuracy(&ds, rgb_only), depth = nyud_ncm_accuracy(&ds, depth_only);
    double fused = nyud_ncm_accuracy(&ds, both);
    print_message("nearest class mean accuracy: rgb %.3f, depth %.3f, both %.3f\n", rgb, depth,
                  fused);
    /* Chance is 0.1. */
    assert_true(rgb > 0.3);
    assert_true(rgb < 0.85);
    assert_true(depth > 0.3);
    assert_true(depth < 0.85);
    assert_true(fused > rgb + 0.05);
    assert_true(fused > depth + 0.05);
    dataset_free(&ds);
}

static void mvsa_layout(void **state) {
    const char *path = mvsa_full();
    Dataset ds;
    assert_int_equal(dataset_load_h5(path, NULL, &ds), 0);
    assert_string_equal(ds.name, "synth-mvsa");
    assert_int_equal(ds.n, 2592);
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_TRAIN), 1555);
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_VALID), 518);
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_TEST), 519);
    assert_int_equal(ds.num_classes, 3);
    assert_string_equal(ds.class_names[0], "positive");
    assert_string_equal(ds.class_names[1], "neutral");
    assert_string_equal(ds.class_names[2], "negative");
    assert_int_equal(ds.num_modalities, 2);
    const Modality *image = &ds.mod[0], *text = &ds.mod[1];
    assert_string_equal(image->name, "image");
    assert_int_equal(image->kind, EUAR_KIND_IMAGE);
    assert_int_equal(image->c, 3);
    assert_int_equal(image->h, 32);
    assert_int_equal(image->w, 32);
    assert_string_equal(text->name, "text");
    assert_int_equal(text->kind, EUAR_KIND_TOKENS);
    assert_int_equal(text->t, 30);
    assert_int_equal(text->vocab, 1000);
    double level = mean_level(&ds, image);
    print_message("mean image level %.1f\n", level);
    assert_true(level > 96.0);
    assert_true(level < 160.0);
    dataset_free(&ds);
}

static void mvsa_tokens_valid(void **state) {
    const char *path = mvsa_full();
    Dataset ds;
    assert_int_equal(dataset_load_h5(path, NULL, &ds), 0);
    const Modality *text = &ds.mod[1];
    int min_length = text->t, max_length = 0;
    for (int i = 0; i < ds.n; i++) {
        int length = text->lengths[i];
        min_length = length < min_length ? length : min_length;
        max_length = length > max_length ? length : max_length;
        for (int t = 0; t < text->t; t++) {
            int32_t token = text->tokens[(size_t)i * text->t + t];
            assert_true(token >= 0);
            assert_true(token < text->vocab);
            if (t >= length)
                assert_int_equal(token, 0);
            else
                assert_true(token >= 2); /* a generated text has no padding and no blank */
        }
    }
    assert_int_equal(min_length, 8);
    assert_int_equal(max_length, 30);
    dataset_free(&ds);
}

/* Computes per-class log-likelihoods [N, 3] of every synth-mvsa sample. Text scores come from
 * multinomial naive Bayes on word counts (Laplace smoothing 1), image scores from Gaussian
 * naive Bayes on the three mean channel levels (per-class means, shared variance per
 * channel). Both are fitted on train, and `prior` receives the log class shares of train. */
static void mvsa_scores(const Dataset *ds, double *text_score, double *image_score,
                        double prior[3]) {
    const Modality *image = &ds->mod[0], *text = &ds->mod[1];
    const int v = text->vocab, t_max = text->t;
    double *counts = calloc((size_t)3 * v, sizeof(double)), totals[3] = {0, 0, 0};
    double colour_sum[3][3] = {{0}};
    double (*colour)[3] = calloc((size_t)ds->n, sizeof(*colour));
    int n_class[3] = {0, 0, 0}, n_train = 0;
    for (int i = 0; i < ds->n; i++)
        for (int ch = 0; ch < 3; ch++) {
            double sum = 0;
            for (int j = 0; j < 32 * 32; j++)
                sum += image->pixels[((size_t)i * 3 + ch) * 1024 + j];
            colour[i][ch] = sum / 1024.0;
        }
    for (int i = 0; i < ds->n; i++) {
        if (ds->split[i] != EUAR_SPLIT_TRAIN)
            continue;
        int c = ds->classes[i];
        n_class[c]++;
        n_train++;
        for (int t = 0; t < text->lengths[i]; t++) {
            counts[c * v + text->tokens[(size_t)i * t_max + t]] += 1;
            totals[c] += 1;
        }
        for (int ch = 0; ch < 3; ch++)
            colour_sum[c][ch] += colour[i][ch];
    }
    double colour_var[3] = {0, 0, 0};
    for (int c = 0; c < 3; c++) {
        prior[c] = log((double)n_class[c] / n_train);
        for (int ch = 0; ch < 3; ch++)
            colour_sum[c][ch] /= n_class[c];
    }
    for (int i = 0; i < ds->n; i++)
        if (ds->split[i] == EUAR_SPLIT_TRAIN)
            for (int ch = 0; ch < 3; ch++) {
                double diff = colour[i][ch] - colour_sum[ds->classes[i]][ch];
                colour_var[ch] += diff * diff / n_train;
            }
    for (int i = 0; i < ds->n; i++)
        for (int c = 0; c < 3; c++) {
            double log_text = 0, log_image = 0;
            for (int t = 0; t < text->lengths[i]; t++) {
                int token = text->tokens[(size_t)i * t_max + t];
                log_text += log((counts[c * v + token] + 1.0) / (totals[c] + v));
            }
            for (int ch = 0; ch < 3; ch++) {
                double diff = colour[i][ch] - colour_sum[c][ch];
                log_image -= 0.5 * diff * diff / colour_var[ch];
            }
            text_score[i * 3 + c] = log_text;
            image_score[i * 3 + c] = log_image;
        }
    free(counts);
    free(colour);
}

/* Test accuracy of argmax over classes of prior + w_text * text + w_image * image. */
static double mvsa_accuracy(const Dataset *ds, const double *text, const double *image,
                            const double prior[3], double w_text, double w_image) {
    int correct = 0, total = 0;
    for (int i = 0; i < ds->n; i++) {
        if (ds->split[i] != EUAR_SPLIT_TEST)
            continue;
        int best = 0;
        double best_score = -INFINITY;
        for (int c = 0; c < 3; c++) {
            double score = prior[c] + w_text * text[i * 3 + c] + w_image * image[i * 3 + c];
            if (score > best_score) {
                best_score = score;
                best = c;
            }
        }
        correct += best == ds->classes[i];
        total++;
    }
    return (double)correct / total;
}

static void mvsa_text_beats_image(void **state) {
    const char *path = mvsa_full();
    Dataset ds;
    assert_int_equal(dataset_load_h5(path, NULL, &ds), 0);
    double *text = malloc((size_t)ds.n * 3 * sizeof(double));
    double *image = malloc((size_t)ds.n * 3 * sizeof(double)), prior[3];
    mvsa_scores(&ds, text, image, prior);
    double text_acc = mvsa_accuracy(&ds, text, image, prior, 1, 0);
    double image_acc = mvsa_accuracy(&ds, text, image, prior, 0, 1);
    double fused = mvsa_accuracy(&ds, text, image, prior, 1, 1);
    int majority = 0, test = 0;
    for (int i = 0; i < ds.n; i++)
        if (ds.split[i] == EUAR_SPLIT_TEST) {
            majority += ds.classes[i] == 0;
            test++;
        }
    double majority_acc = (double)majority / test;
    print_message("naive Bayes accuracy: text %.3f, image %.3f, both %.3f (majority %.3f)\n",
                  text_acc, image_acc, fused, majority_acc);
    assert_true(image_acc > majority_acc + 0.05);
    assert_true(text_acc > image_acc + 0.1);
    assert_true(text_acc < 0.9);
    assert_true(fused > text_acc + 0.02);
    free(text);
    free(image);
    dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nyud_deterministic),
        cmocka_unit_test(mvsa_deterministic),
        cmocka_unit_test(rejects_empty_split),
        cmocka_unit_test(nyud_layout),
        cmocka_unit_test(nyud_ambiguity_independent),
        cmocka_unit_test(nyud_fusion_beats_each),
        cmocka_unit_test(mvsa_layout),
        cmocka_unit_test(mvsa_tokens_valid),
        cmocka_unit_test(mvsa_text_beats_image),
    };
    return cmocka_run_group_tests(tests, setup_dir, tmp_dir_teardown);
}
