/* Trainer tests on small in-memory data: runs must learn, be deterministic, and record
 * divergence instead of crashing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hdf5.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/common.h"
#include "core/trainer.h"

#define NUM_MOD 3

typedef struct {
    float *x[3][NUM_MOD];
    float *y[3];
    int32_t *cls[3];
    TrainData data;
} ToyData;

static const int toy_dims[NUM_MOD] = {12, 6, 5};

/* Labels follow a latent s in [-3, 3]; modality 0 sees s with little noise, the others
 * with much more, so a model must use modality 0 to do well. */
static void toy_make(ToyData *t, int classification) {
    const int sizes[3] = {400, 100, 200};
    RngStream st = rng_stream(7, EUAR_RNG_TEST);
    memset(t, 0, sizeof(*t));
    t->data.shape.num_modalities = NUM_MOD;
    t->data.shape.output = classification ? EUAR_OUT_CLASSIFICATION : EUAR_OUT_REGRESSION;
    t->data.shape.num_classes = classification ? 3 : 0;
    for (int m = 0; m < NUM_MOD; m++) {
        t->data.shape.in_dim[m] = toy_dims[m];
        snprintf(t->data.shape.names[m], 32, "m%d", m);
    }
    SplitData *splits[3] = {&t->data.train, &t->data.valid, &t->data.test};
    for (int s = 0; s < 3; s++) {
        int n = sizes[s];
        splits[s]->n = n;
        t->y[s] = xmalloc(sizeof(float) * n);
        t->cls[s] = xmalloc(sizeof(int32_t) * n);
        for (int m = 0; m < NUM_MOD; m++)
            t->x[s][m] = xmalloc(sizeof(float) * n * toy_dims[m]);
        for (int i = 0; i < n; i++) {
            float u[4];
            rng_fill_uniform(st, (uint32_t)s, (uint32_t)i, u, 4);
            float latent = 6.0f * u[0] - 3.0f;
            t->y[s][i] = latent;
            t->cls[s][i] = latent < -1.0f ? 0 : latent < 1.0f ? 1 : 2;
            for (int m = 0; m < NUM_MOD; m++) {
                float noise[16];
                rng_fill_normal(st, (uint32_t)(100 + s * 10 + m), (uint32_t)i, noise, 16);
                float sigma = m == 0 ? 0.2f : 2.0f;
                for (int d = 0; d < toy_dims[m]; d++) {
                    float dir = (d % 2 ? 1.0f : -0.5f) / (1.0f + d);
                    t->x[s][m][i * toy_dims[m] + d] = dir * latent + sigma * noise[d];
                }
            }
        }
        for (int m = 0; m < NUM_MOD; m++)
            splits[s]->x[m] = t->x[s][m];
        if (classification)
            splits[s]->cls = t->cls[s];
        else
            splits[s]->y = t->y[s];
    }
}

static void toy_free(ToyData *t) {
    for (int s = 0; s < 3; s++) {
        free(t->y[s]);
        free(t->cls[s]);
        for (int m = 0; m < NUM_MOD; m++)
            free(t->x[s][m]);
    }
}

static double metric(const MetricSet *ms, const char *name) {
    for (int i = 0; i < ms->count; i++)
        if (strcmp(ms->names[i], name) == 0)
            return ms->values[i];
    fail_msg("metric %s missing", name);
    return NAN;
}

static void small_settings(Settings *s) {
    settings_default(s);
    s->epochs = 15;
    s->hidden = 16;
    s->experts = 4;
    s->top_k = 2;
    s->batch = 16;
    s->lr = 3e-3f;
}

/* Mean absolute error of always predicting the training mean, over the test split. */
static double mean_baseline_mae(const ToyData *t) {
    double mean = 0.0;
    for (int i = 0; i < t->data.train.n; i++)
        mean += t->y[0][i];
    mean /= t->data.train.n;
    double mae = 0.0;
    int n = 0;
    for (int i = 0; i < t->data.test.n; i++)
        if (t->y[2][i] != 0.0f) {
            mae += fabs(t->y[2][i] - mean);
            n++;
        }
    return mae / n;
}

static void check_model_learns(const char *model, const char *compute) {
    ToyData t;
    toy_make(&t, 0);
    Settings s;
    small_settings(&s);
    if (compute)
        assert_int_equal(settings_set_kv(&s, "moe_compute", compute), 0);
    TrainResult r;
    assert_int_equal(train_run(model, &s, &t.data, backend_cpu(), NULL, &r), 0);
    assert_false(r.failed);
    assert_true(r.selected_epoch >= 1);
    double mae = metric(&r.test, "mib_mae"), baseline = mean_baseline_mae(&t);
    double acc2 = metric(&r.test, "mib_acc2");
    print_message("%s %s: test MAE %.3f (mean predictor %.3f), Acc2 %.3f\n", model,
                  compute ? compute : "dense", mae, baseline, acc2);
    assert_true(mae < 0.5 * baseline);
    assert_true(acc2 > 0.85);
    train_result_free(&r);
    toy_free(&t);
}

static void euar_learns(void **state) {
    check_model_learns("euar", NULL);
}

static void euar_sparse_learns(void **state) {
    check_model_learns("euar", "sparse");
}

static void baselines_learn(void **state) {
    check_model_learns("concat", NULL);
    check_model_learns("late", NULL);
    check_model_learns("mlp-moe", NULL);
    check_model_learns("mlp-moe", "sparse");
}

static void classification_learns(void **state) {
    ToyData t;
    toy_make(&t, 1);
    Settings s;
    small_settings(&s);
    TrainResult r;
    assert_int_equal(train_run("euar", &s, &t.data, backend_cpu(), NULL, &r), 0);
    double acc = metric(&r.test, "acc");
    print_message("euar classification: test accuracy %.3f\n", acc);
    /* Three balanced-ish classes: chance is about 0.33. */
    assert_true(acc > 0.8);
    train_result_free(&r);
    toy_free(&t);
}

static void same_seed_same_result(void **state) {
    ToyData t;
    toy_make(&t, 0);
    Settings s;
    small_settings(&s);
    s.epochs = 3;
    TrainResult a, b;
    assert_int_equal(train_run("euar", &s, &t.data, backend_cpu(), NULL, &a), 0);
    assert_int_equal(train_run("euar", &s, &t.data, backend_cpu(), NULL, &b), 0);
    assert_int_equal(a.epochs_run, b.epochs_run);
    for (int i = 0; i < a.epochs_run; i++) {
        assert_memory_equal(&a.curve[i].train_loss, &b.curve[i].train_loss, sizeof(double));
        assert_memory_equal(&a.curve[i].valid_loss, &b.curve[i].valid_loss, sizeof(double));
    }
    assert_memory_equal(a.test.values, b.test.values, sizeof(double) * a.test.count);
    s.seed = 2;
    TrainResult c;
    assert_int_equal(train_run("euar", &s, &t.data, backend_cpu(), NULL, &c), 0);
    assert_true(a.curve[0].train_loss != c.curve[0].train_loss);
    train_result_free(&a);
    train_result_free(&b);
    train_result_free(&c);
    toy_free(&t);
}

static void divergence_is_recorded(void **state) {
    ToyData t;
    toy_make(&t, 0);
    Settings s;
    small_settings(&s);
    s.epochs = 5;
    /* A NaN label makes the task loss NaN on the first batch that contains it. */
    t.y[0][3] = NAN;
    TrainResult r;
    assert_int_equal(train_run("concat", &s, &t.data, backend_cpu(), NULL, &r), 0);
    assert_true(r.failed);
    assert_int_equal(r.fail_epoch, 1);
    assert_non_null(strstr(r.fail_reason, "NaN"));
    assert_string_equal(r.fail_kind, "NaN loss");
    train_result_free(&r);
    toy_free(&t);
}

static void exploding_parameters_recorded(void **state) {
    ToyData t;
    toy_make(&t, 0);
    Settings s;
    small_settings(&s);
    s.epochs = 5;
    /* Adam moves each parameter by about lr per step, so lr = 10 passes an RMS of 10 (the
     * bound) within the first epoch while the loss stays finite. */
    s.lr = 10.0f;
    TrainResult r;
    assert_int_equal(train_run("concat", &s, &t.data, backend_cpu(), NULL, &r), 0);
    assert_true(r.failed);
    assert_int_equal(r.fail_epoch, 1);
    assert_string_equal(r.fail_kind, "exploded parameters");
    assert_int_equal(r.epochs_run, 0);
    train_result_free(&r);
    toy_free(&t);
}

/* Asserts that two runs agree to the bit on everything but time. */
static void assert_same_run(const TrainResult *a, const TrainResult *b) {
    assert_int_equal(a->epochs_run, b->epochs_run);
    assert_int_equal(a->selected_epoch, b->selected_epoch);
    for (int e = 0; e < a->epochs_run; e++) {
        const EpochRecord *x = &a->curve[e], *y = &b->curve[e];
        assert_int_equal(x->epoch, y->epoch);
        assert_memory_equal(&x->train_loss, &y->train_loss, sizeof(double));
        assert_memory_equal(&x->train_kl, &y->train_kl, sizeof(double));
        assert_memory_equal(&x->train_u, &y->train_u, sizeof(double));
        assert_memory_equal(&x->valid_loss, &y->valid_loss, sizeof(double));
        assert_memory_equal(&x->valid_metric, &y->valid_metric, sizeof(double));
    }
    assert_int_equal(a->test.count, b->test.count);
    assert_memory_equal(a->test.values, b->test.values, sizeof(double) * a->test.count);
    assert_memory_equal(a->valid.values, b->valid.values, sizeof(double) * a->valid.count);
    assert_memory_equal(&a->test.loss, &b->test.loss, sizeof(double));
    assert_memory_equal(a->routing.load, b->routing.load, sizeof(a->routing.load));
    assert_memory_equal(a->routing.sigma2, b->routing.sigma2, sizeof(a->routing.sigma2));
}

/* A run stopped after epoch `stop` and resumed from its checkpoint ends exactly where an
 * uninterrupted run ends. */
static void check_resume(const char *model, int stop) {
    ToyData t;
    toy_make(&t, 0);
    Settings s;
    small_settings(&s);
    s.epochs = 5;
    char path[] = "/tmp/euar-test-ckpt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    TrainResult whole, first, rest;
    assert_int_equal(train_run(model, &s, &t.data, backend_cpu(), NULL, &whole), 0);
    TrainCheckpoint ck = {.path = path, .every_s = 0, .fingerprint = 42, .stop_after_epoch = stop};
    assert_int_equal(train_run_resumable(model, &s, &t.data, backend_cpu(), NULL, &first, NULL,
                                         NULL, &ck), 0);
    assert_true(first.interrupted);
    assert_int_equal(first.epochs_run, stop);
    assert_int_equal(access(path, R_OK), 0);
    ck.stop_after_epoch = 0;
    assert_int_equal(train_run_resumable(model, &s, &t.data, backend_cpu(), NULL, &rest, NULL,
                                         NULL, &ck), 0);
    assert_false(rest.interrupted);
    assert_same_run(&whole, &rest);
    unlink(path);
    train_result_free(&whole);
    train_result_free(&first);
    train_result_free(&rest);
    toy_free(&t);
}

static void resume_euar_bitwise(void **state) {
    check_resume("euar", 2);
}

static void resume_concat_bitwise(void **state) {
    check_resume("concat", 3);
}

/* Writes a small checkpoint at path with the given fingerprint. */
static void write_small_checkpoint(const char *path, uint64_t fingerprint) {
    float values[4] = {1, 2, 3, 4};
    EpochRecord curve[1] = {{.epoch = 1, .train_loss = 0.5}};
    Checkpoint ck = {.fingerprint = fingerprint, .epoch = 1, .step = 7, .selected_epoch = 1,
                     .best = 0.25, .num_params = 4, .value = values, .adam_m = values,
                     .adam_v = values, .best_params = values, .epochs_run = 1, .curve = curve};
    assert_int_equal(checkpoint_write(path, &ck), 0);
}

static void checkpoint_round_trip(void **state) {
    const char *path = "/tmp/euar-test-ckpt-round.h5";
    Checkpoint ck;
    unlink(path);
    assert_int_equal(checkpoint_read(path, 9, 4, &ck), 0);
    write_small_checkpoint(path, 9);
    assert_int_equal(checkpoint_read(path, 9, 4, &ck), 1);
    assert_int_equal(ck.step, 7);
    assert_int_equal(ck.epochs_run, 1);
    assert_true(ck.adam_v[3] == 4.0f);
    assert_true(ck.curve[0].train_loss == 0.5);
    checkpoint_free(&ck);
    assert_int_equal(checkpoint_read(path, 10, 4, &ck), -1);
    assert_non_null(strstr(err_get(), "belongs to another run"));
    assert_non_null(strstr(err_get(), "delete it"));
    assert_int_equal(checkpoint_read(path, 9, 5, &ck), -1);
    assert_non_null(strstr(err_get(), "/value has shape [4], expected [5]"));
    unlink(path);
}

static void checkpoint_newer_version(void **state) {
    const char *path = "/tmp/euar-test-ckpt-version.h5";
    write_small_checkpoint(path, 9);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    int32_t version = EUAR_CHECKPOINT_VERSION + 1;
    assert_true(H5Awrite(a, H5T_NATIVE_INT32, &version) >= 0);
    H5Aclose(a);
    H5Fclose(f);
    Checkpoint ck;
    assert_int_equal(checkpoint_read(path, 9, 4, &ck), -1);
    assert_non_null(strstr(err_get(), "format version 2, and this build reads version 1"));
    assert_non_null(strstr(err_get(), "delete it"));
    unlink(path);
}

typedef struct {
    const SplitData *test;
    MetricSet metrics;
    int calls;
} HookState;

static void evaluate_in_hook(void *ctx, Model *m) {
    HookState *hs = ctx;
    hs->calls++;
    train_evaluate(m, hs->test, &hs->metrics, NULL, NULL);
}

/* The hook sees the parameters of the selected epoch: evaluating the clean test split there
 * reproduces the test metrics recorded at that epoch, even when later epochs were worse. */
static void hook_sees_selected_epoch(void **state) {
    ToyData t;
    toy_make(&t, 0);
    Settings s;
    small_settings(&s);
    /* 24 training samples and many epochs overfit, so a late epoch is worse than the best. */
    s.epochs = 40;
    s.max_train = 24;
    s.lr = 1e-2f;
    HookState hs = {&t.data.test, {0}, 0};
    TrainResult r;
    assert_int_equal(train_run_hooked("euar", &s, &t.data, backend_cpu(), NULL, &r,
                                      evaluate_in_hook, &hs),
                     0);
    assert_int_equal(hs.calls, 1);
    print_message("selected epoch %d of %d\n", r.selected_epoch, r.epochs_run);
    assert_true(r.selected_epoch < r.epochs_run);
    assert_int_equal(hs.metrics.count, r.test.count);
    for (int i = 0; i < r.test.count; i++)
        assert_true(hs.metrics.values[i] == r.test.values[i]);
    assert_true(hs.metrics.loss == r.test.loss);
    train_result_free(&r);
    toy_free(&t);
}

static void unknown_model_rejected(void **state) {
    ToyData t;
    toy_make(&t, 0);
    Settings s;
    small_settings(&s);
    TrainResult r;
    assert_int_equal(train_run("transformer", &s, &t.data, backend_cpu(), NULL, &r), -1);
    assert_non_null(strstr(err_get(), "transformer"));
    s.top_k = 9;
    assert_int_equal(train_run("euar", &s, &t.data, backend_cpu(), NULL, &r), -1);
    assert_non_null(strstr(err_get(), "top_k"));
    toy_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(euar_learns),
        cmocka_unit_test(euar_sparse_learns),
        cmocka_unit_test(baselines_learn),
        cmocka_unit_test(classification_learns),
        cmocka_unit_test(same_seed_same_result),
        cmocka_unit_test(divergence_is_recorded),
        cmocka_unit_test(exploding_parameters_recorded),
        cmocka_unit_test(resume_euar_bitwise),
        cmocka_unit_test(resume_concat_bitwise),
        cmocka_unit_test(checkpoint_round_trip),
        cmocka_unit_test(checkpoint_newer_version),
        cmocka_unit_test(hook_sees_selected_epoch),
        cmocka_unit_test(unknown_model_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
