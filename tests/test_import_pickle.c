/* Tests of datasets/import_pickle.py through the project's reader. The fixture pickles of
 * tests/pickle_fixtures.py are converted with /usr/bin/python3, which needs python3-numpy and
 * python3-h5py, and loaded with dataset_load_h5. Every id, split, label, length, availability
 * bit, feature and token is compared with the formulas of the fixtures. Runs from the
 * repository root, as `make test-unit` does. */
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

#include "core/common.h"
#include "datasets/dataset.h"

#define PYTHON "/usr/bin/python3"

static char tmp_dir[64];

/* The fixture lists of tests/pickle_fixtures.py. */
static const int mmsa_text_lengths[9] = {5, 3, 1, 4, 2, 5, 0, 3, 4};
static const int mmsa_audio_lengths[9] = {4, 6, 2, 4, 9, 1, 3, 4, 0};
static const int mmsa_vision_lengths[9] = {3, 3, 2, 1, 3, 0, 2, 3, 3};
static const float mmsa_labels[9] = {0.4f, -1.2f, 3.5f, -3.2f, 2.0f, 0.0f, -0.6f, 1.8f, -2.4f};
static const char *const mmsa_ids[9] = {"3g5yA-CwYnA$_$0", "a_b-c$_$1", "-leading_dash",
                                        "x_y_z",           "valid-0_A", "valid-1_B",
                                        "test-a_0",        "test_b-1",  "test-c$_$2"};
static const float mib_labels[7] = {1.0f, -2.2f, 3.5f, 0.6f, 0.0f, -3.1f, 2.6f};
static const int mib_words[7] = {4, 2, 4, 3, 0, 3, 1};
static const char *const mib_ids[7] = {"vid-A_b[0]", "vid-A_b[1]", "c_D-e[0]", "dev-x_1",
                                       "dev-y_2",    "t-1_a",      "t_2-b"};
/* Token ids: the training vocabulary in order of first appearance after <pad>, <blank> and
 * <unk> (2): the movie was good bad it - fine_ish. */
static const int32_t mib_tokens[7][4] = {{3, 4, 5, 6}, {7, 4, 0, 0}, {8, 5, 9, 10}, {6, 2, 2, 0},
                                         {0, 0, 0, 0}, {4, 7, 2, 0}, {2, 0, 0, 0}};

static const char *tmp_path(const char *name) {
    static char paths[4][256];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 256, "%s/%s", tmp_dir, name);
    return p;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

static int run_command(const char *fmt, ...) {
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (status %d): %s\n", rc, cmd);
    return rc;
}

/* Writes the fixtures and imports mmsa.pkl and mib.pkl once for all tests. */
static int setup_imports(void **state) {
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/euar-test-pickle-XXXXXX");
    if (!mkdtemp(tmp_dir))
        return -1;
    if (access(PYTHON, X_OK) != 0) {
        fprintf(stderr, "%s not found; install python3, python3-numpy and python3-h5py\n",
                PYTHON);
        return -1;
    }
    if (run_command(PYTHON " tests/pickle_fixtures.py %s", tmp_dir) != 0)
        return -1;
    const char *formats[2] = {"mmsa", "mib"};
    for (int i = 0; i < 2; i++)
        if (run_command(PYTHON " datasets/import_pickle.py --format %s %s/%s.pkl --out %s/%s.h5"
                               " 2>/dev/null >/dev/null",
                        formats[i], tmp_dir, formats[i], tmp_dir, formats[i]) != 0)
            return -1;
    return 0;
}

static int teardown_imports(void **state) {
    return nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void load(const char *name, NonFinitePolicy nonfinite, Dataset *ds) {
    DatasetLoadOptions opt = {nonfinite, 0, NULL, NULL};
    int rc = dataset_load_h5(tmp_path(name), &opt, ds);
    if (rc != 0)
        fail_msg("%s", err_get());
}

static float clip3(float y) {
    return fminf(fmaxf(y, -3.0f), 3.0f);
}

/* Split of sample g when the valid split starts at `valid` and the test split at `test`. */
static int split_of(int g, int valid, int test) {
    if (g < valid)
        return EUAR_SPLIT_TRAIN;
    return g < test ? EUAR_SPLIT_VALID : EUAR_SPLIT_TEST;
}

static void mmsa_samples_and_labels(void **state) {
    Dataset ds;
    load("mmsa.h5", EUAR_NONFINITE_ZERO, &ds);
    assert_int_equal(ds.n, 9);
    assert_int_equal(ds.task, EUAR_TASK_REGRESSION);
    assert_string_equal(ds.name, "mmsa");
    for (int g = 0; g < 9; g++) {
        assert_string_equal(ds.ids[g], mmsa_ids[g]);
        assert_int_equal(ds.split[g], split_of(g, 4, 6));
        assert_float_equal(ds.labels[g], clip3(mmsa_labels[g]), 1e-6);
    }
    dataset_free(&ds);
}

static void mmsa_features_and_lengths(void **state) {
    Dataset ds;
    load("mmsa.h5", EUAR_NONFINITE_ZERO, &ds);
    assert_int_equal(ds.num_modalities, 3);
    const Modality *text = &ds.mod[0], *audio = &ds.mod[1], *vision = &ds.mod[2];
    assert_string_equal(text->name, "text");
    assert_string_equal(audio->name, "audio");
    assert_string_equal(vision->name, "vision");
    assert_int_equal(text->t, 5);
    assert_int_equal(text->d, 6);
    assert_int_equal(audio->t, 4);
    assert_int_equal(audio->d, 3);
    assert_int_equal(vision->t, 3);
    assert_int_equal(vision->d, 2);

    int neginf_seen = 0;
    for (int g = 0; g < 9; g++) {
        assert_int_equal(text->lengths[g], mmsa_text_lengths[g]);
        assert_int_equal(audio->lengths[g], EUAR_MIN(mmsa_audio_lengths[g], 4));
        assert_int_equal(vision->lengths[g], mmsa_vision_lengths[g]);
        assert_int_equal(text->available[g], mmsa_text_lengths[g] > 0);
        assert_int_equal(audio->available[g], mmsa_audio_lengths[g] > 0);
        assert_int_equal(vision->available[g], mmsa_vision_lengths[g] > 0);
        for (int t = 0; t < 5; t++)
            for (int d = 0; d < 6; d++)
                assert_float_equal(text->features[(g * 5 + t) * 6 + d], 1000 * g + 10 * t + d,
                                   0);
        for (int t = 0; t < 4; t++)
            for (int d = 0; d < 3; d++) {
                float want = 1000 * g + 10 * t + d + 0.5f;
                int neginf = (g == 1 && t == 0 && d == 0) || (g == 5 && t == 3 && d == 2) ||
                             (g == 7 && t == 1 && d == 1);
                neginf_seen += neginf;
                /* The file keeps -inf; the reader's zero policy turns it into 0. */
                assert_float_equal(audio->features[(g * 4 + t) * 3 + d], neginf ? 0 : want, 0);
            }
        for (int t = 0; t < 3; t++)
            for (int d = 0; d < 2; d++)
                assert_float_equal(vision->features[(g * 3 + t) * 2 + d],
                                   -(1000 * g + 10 * t + d) - 0.25f, 0);
    }
    assert_int_equal(neginf_seen, 3);
    dataset_free(&ds);
}

static void mmsa_nonfinite_kept(void **state) {
    Dataset ds;
    DatasetLoadOptions opt = {EUAR_NONFINITE_REJECT, 0, NULL, NULL};
    assert_int_equal(dataset_load_h5(tmp_path("mmsa.h5"), &opt, &ds), -1);
    assert_non_null(strstr(err_get(), "/modalities/audio/data: 3 non-finite values"));
    assert_non_null(strstr(err_get(), "a_b-c$_$1"));
}

static void mib_samples_and_tokens(void **state) {
    Dataset ds;
    load("mib.h5", EUAR_NONFINITE_ZERO, &ds);
    assert_int_equal(ds.n, 7);
    assert_string_equal(ds.name, "mib");
    assert_int_equal(ds.num_modalities, 3);
    const Modality *text = &ds.mod[0];
    assert_string_equal(text->name, "text");
    assert_int_equal(text->kind, EUAR_KIND_TOKENS);
    assert_int_equal(text->vocab, 11);
    assert_int_equal(text->t, 4);
    for (int g = 0; g < 7; g++) {
        assert_string_equal(ds.ids[g], mib_ids[g]);
        assert_int_equal(ds.split[g], split_of(g, 3, 5));
        assert_float_equal(ds.labels[g], clip3(mib_labels[g]), 1e-6);
        assert_int_equal(text->lengths[g], mib_words[g]);
        assert_int_equal(text->available[g], mib_words[g] > 0);
        assert_memory_equal(text->tokens + g * 4, mib_tokens[g], sizeof(mib_tokens[g]));
    }
    dataset_free(&ds);
}

static void mib_features(void **state) {
    Dataset ds;
    load("mib.h5", EUAR_NONFINITE_ZERO, &ds);
    const Modality *audio = &ds.mod[1], *vision = &ds.mod[2];
    assert_string_equal(audio->name, "audio");
    assert_string_equal(vision->name, "vision");
    assert_int_equal(audio->d, 4);
    assert_int_equal(vision->d, 5);
    assert_int_equal(audio->t, 4);
    assert_int_equal(vision->t, 4);
    for (int g = 0; g < 7; g++) {
        assert_int_equal(audio->lengths[g], mib_words[g]);
        assert_int_equal(vision->available[g], mib_words[g] > 0);
        for (int t = 0; t < 4; t++) {
            int valid = t < mib_words[g];
            for (int d = 0; d < 5; d++)
                assert_float_equal(vision->features[(g * 4 + t) * 5 + d],
                                   valid ? 100 * g + 10 * t + d + 0.125f : 0, 0);
            for (int d = 0; d < 4; d++) {
                float want = valid && !(g == 5 && t == 1 && d == 2) ? -(100 * g + 10 * t + d) : 0;
                assert_float_equal(audio->features[(g * 4 + t) * 4 + d], want, 0);
            }
        }
    }
    dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mmsa_samples_and_labels), cmocka_unit_test(mmsa_features_and_lengths),
        cmocka_unit_test(mmsa_nonfinite_kept),     cmocka_unit_test(mib_samples_and_tokens),
        cmocka_unit_test(mib_features),
    };
    return cmocka_run_group_tests(tests, setup_imports, teardown_imports);
}
