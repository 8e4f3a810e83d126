/* Joint representation files: round trip, and the errors of damaged files. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "core/common.h"
#include "report/joint_file.h"

static char dir[64];

static int make_dir(void **state) {
    snprintf(dir, sizeof(dir), "/tmp/euar-joint-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void fill(JointFile *jf, int classification) {
    memset(jf, 0, sizeof(*jf));
    snprintf(jf->model, sizeof(jf->model), "euar");
    snprintf(jf->dataset, sizeof(jf->dataset), "toy");
    jf->classification = classification;
    jf->num_classes = classification ? 3 : 0;
    jf->n = 5;
    jf->dim = 4;
    if (classification) {
        jf->classes = malloc(sizeof(int32_t) * 5);
        for (int i = 0; i < 5; i++)
            jf->classes[i] = i % 3;
    } else {
        jf->labels = malloc(sizeof(float) * 5);
        for (int i = 0; i < 5; i++)
            jf->labels[i] = 0.5f * (float)i - 1.0f;
    }
    const char *names[3] = {"clean", "noA", "g10"};
    jf->count = 3;
    for (int c = 0; c < 3; c++) {
        snprintf(jf->names[c], sizeof(jf->names[c]), "%s", names[c]);
        jf->joint[c] = malloc(sizeof(float) * 20);
        for (int i = 0; i < 20; i++)
            jf->joint[c][i] = (float)(c * 100 + i) / 7.0f;
    }
}

static void round_trip(void **state) {
    for (int classification = 0; classification < 2; classification++) {
        JointFile a, b;
        fill(&a, classification);
        char path[128];
        snprintf(path, sizeof(path), "%s/j%d.h5", dir, classification);
        assert_int_equal(joint_file_write(path, &a), 0);
        assert_int_equal(joint_file_read(path, &b), 0);
        assert_string_equal(b.model, "euar");
        assert_string_equal(b.dataset, "toy");
        assert_int_equal(b.classification, classification);
        assert_int_equal(b.n, 5);
        assert_int_equal(b.dim, 4);
        assert_int_equal(b.count, 3);
        /* Conditions come back in the order they were written, not alphabetically. */
        assert_string_equal(b.names[0], "clean");
        assert_string_equal(b.names[1], "noA");
        assert_string_equal(b.names[2], "g10");
        for (int c = 0; c < 3; c++)
            assert_memory_equal(a.joint[c], b.joint[c], sizeof(float) * 20);
        if (classification)
            assert_memory_equal(a.classes, b.classes, sizeof(int32_t) * 5);
        else
            assert_memory_equal(a.labels, b.labels, sizeof(float) * 5);
        joint_file_free(&a);
        joint_file_free(&b);
    }
}

static void missing_file_rejected(void **state) {
    JointFile b;
    char path[128];
    snprintf(path, sizeof(path), "%s/absent.h5", dir);
    assert_int_equal(joint_file_read(path, &b), -1);
    assert_non_null(strstr(err_get(), "absent.h5"));
}

static void text_file_rejected(void **state) {
    char path[128];
    snprintf(path, sizeof(path), "%s/text.h5", dir);
    FILE *f = fopen(path, "w");
    fputs("not hdf5\n", f);
    fclose(f);
    JointFile b;
    assert_int_equal(joint_file_read(path, &b), -1);
    assert_non_null(strstr(err_get(), "not an HDF5 file"));
}

/* Rewrites one integer attribute of / in an existing file. */
static void set_int_attr(const char *path, const char *name, int value) {
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_INT, &value);
    H5Aclose(attr);
    H5Fclose(file);
}

static void newer_version_rejected(void **state) {
    JointFile a, b;
    fill(&a, 1);
    char path[128];
    snprintf(path, sizeof(path), "%s/v2.h5", dir);
    assert_int_equal(joint_file_write(path, &a), 0);
    set_int_attr(path, "format_version", 2);
    assert_int_equal(joint_file_read(path, &b), -1);
    assert_non_null(strstr(err_get(), "format_version 2"));
    joint_file_free(&a);
}

static void wrong_dim_rejected(void **state) {
    JointFile a, b;
    fill(&a, 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/dim.h5", dir);
    assert_int_equal(joint_file_write(path, &a), 0);
    set_int_attr(path, "joint_dim", 6);
    assert_int_equal(joint_file_read(path, &b), -1);
    assert_non_null(strstr(err_get(), "conditions/clean/joint"));
    assert_non_null(strstr(err_get(), "wrong shape"));
    joint_file_free(&a);
}

static void nan_rejected(void **state) {
    JointFile a, b;
    fill(&a, 0);
    a.joint[1][7] = NAN;
    char path[128];
    snprintf(path, sizeof(path), "%s/nan.h5", dir);
    assert_int_equal(joint_file_write(path, &a), 0);
    assert_int_equal(joint_file_read(path, &b), -1);
    assert_non_null(strstr(err_get(), "conditions/noA/joint"));
    joint_file_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(missing_file_rejected),
        cmocka_unit_test(text_file_rejected),
        cmocka_unit_test(newer_version_rejected),
        cmocka_unit_test(wrong_dim_rejected),
        cmocka_unit_test(nan_rejected),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
