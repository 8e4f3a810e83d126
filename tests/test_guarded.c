/* Memory discipline without a GPU: every model of the registry trains through the cpu-guarded
 * backend, whose device memory is unreadable from the host outside its own operations and
 * which rejects host pointers passed as device memory. A host access to device memory in a
 * model, the trainer or the metrics ends the run with SIGSEGV or a fatal error, and the run
 * must equal the plain CPU backend's to the bit. The toy data (tests/mixed_data.h) has a
 * dense, an image (uint8) and a token modality, so every gather path of the trainer runs. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/backend.h"
#include "core/common.h"
#include "core/trainer.h"
#include "tests/child_process.h"
#include "tests/mixed_data.h"

/* The finish hook evaluates the selected model once more with joint representations, the
 * path of euar train --test-noise and --joint-out. */
typedef struct {
    const SplitData *test;
    MetricSet metrics;
    float *joint;
    size_t joint_count;
} FinishCapture;

static void capture_finish(void *ctx, Model *m) {
    FinishCapture *fc = ctx;
    fc->joint_count = (size_t)fc->test->n * m->joint_dim;
    fc->joint = xmalloc(sizeof(float) * fc->joint_count);
    memset(&m->stats, 0, sizeof(m->stats));
    m->stats.enabled = 1;
    train_evaluate(m, fc->test, &fc->metrics, NULL, fc->joint);
    m->stats.enabled = 0;
}

static void small_settings(Settings *s, const char *compute) {
    settings_default(s);
    s->epochs = 2;
    s->hidden = 8;
    s->experts = 4;
    s->top_k = 2;
    s->batch = 16;
    settings_set_kv(s, "moe_compute", compute);
}

static void assert_metrics_equal(const char *what, const MetricSet *a, const MetricSet *b) {
    assert_int_equal(a->count, b->count);
    if (memcmp(&a->loss, &b->loss, sizeof(double)) != 0)
        fail_msg("%s loss: cpu %.17g, guarded %.17g", what, a->loss, b->loss);
    for (int i = 0; i < a->count; i++)
        if (memcmp(&a->values[i], &b->values[i], sizeof(double)) != 0)
            fail_msg("%s %s: cpu %.17g, guarded %.17g", what, a->names[i], a->values[i],
                     b->values[i]);
}

/* Trains `model` for two epochs on both backends and compares everything but the times. */
static void compare_model(const char *model, const char *compute, int classification) {
    MixedData t;
    mixed_make(&t, classification);
    Settings s;
    small_settings(&s, compute);
    TrainResult r[2];
    FinishCapture fc[2];
    const Backend *be[2] = {backend_cpu(), backend_cpu_guarded()};
    for (int i = 0; i < 2; i++) {
        memset(&fc[i], 0, sizeof(fc[i]));
        fc[i].test = &t.data.test;
        long ops = backend_cpu_guarded_ops();
        assert_int_equal(train_run_hooked(model, &s, &t.data, be[i], NULL, &r[i], capture_finish,
                                          &fc[i]), 0);
        if (i == 1)
            assert_true(backend_cpu_guarded_ops() > ops);
    }
    print_message("%s (%s): %d epochs, valid loss %.6f on both backends\n", model, compute,
                  r[0].epochs_run, r[0].curve[r[0].epochs_run - 1].valid_loss);
    assert_int_equal(r[0].failed, r[1].failed);
    assert_int_equal(r[0].epochs_run, r[1].epochs_run);
    assert_int_equal(r[0].selected_epoch, r[1].selected_epoch);
    for (int e = 0; e < r[0].epochs_run; e++) {
        const EpochRecord *a = &r[0].curve[e], *b = &r[1].curve[e];
        const double av[] = {a->train_loss, a->train_task, a->train_kl, a->train_balance,
                             a->train_u, a->valid_loss, a->valid_metric};
        const double bv[] = {b->train_loss, b->train_task, b->train_kl, b->train_balance,
                             b->train_u, b->valid_loss, b->valid_metric};
        for (size_t k = 0; k < EUAR_ARRAY_LEN(av); k++)
            if (memcmp(&av[k], &bv[k], sizeof(double)) != 0)
                fail_msg("%s epoch %d value %zu: cpu %.17g, guarded %.17g", model, e + 1, k,
                         av[k], bv[k]);
    }
    assert_metrics_equal("valid", &r[0].valid, &r[1].valid);
    assert_metrics_equal("test", &r[0].test, &r[1].test);
    assert_memory_equal(&r[0].routing, &r[1].routing, sizeof(RoutingStats));
    assert_metrics_equal("finish hook", &fc[0].metrics, &fc[1].metrics);
    assert_int_equal(fc[0].joint_count, fc[1].joint_count);
    assert_memory_equal(fc[0].joint, fc[1].joint, sizeof(float) * fc[0].joint_count);
    for (int i = 0; i < 2; i++) {
        train_result_free(&r[i]);
        free(fc[i].joint);
    }
    mixed_free(&t);
}

/* Every registered model, each expert model in both compute modes, on a task it supports. */
static void every_model_matches_cpu(void **state) {
    (void)state;
    char names[512];
    snprintf(names, sizeof(names), "%s", model_names());
    int count = 0;
    for (char *name = strtok(names, ", "); name; name = strtok(NULL, ", ")) {
        char why[256];
        int classification = !model_supports_task(name, 0, why, sizeof(why));
        const ModelKind *kind = model_kind_find(name);
        assert_non_null(kind);
        compare_model(name, "dense", classification);
        if (kind->has_experts)
            compare_model(name, "sparse", classification);
        count++;
    }
    assert_true(count >= 9);
}

/* Models that run on both tasks also train on classification data. */
static void classification_models_match_cpu(void **state) {
    (void)state;
    compare_model("euar", "sparse", 1);
    compare_model("concat", "dense", 1);
    compare_model("late", "dense", 1);
}

/* Runs fn in a child process and returns its wait status. */
static void host_reads_device_memory(void) {
    const Backend *be = backend_cpu_guarded();
    float *x = be->alloc(sizeof(float) * 4);
    volatile float v = x[1];
    (void)v;
}

static void host_pointer_as_device(void) {
    const Backend *be = backend_cpu_guarded();
    float host[4] = {0};
    be->scale(host, 2.0f, 4);
}

static void device_pointer_as_host(void) {
    const Backend *be = backend_cpu_guarded();
    float *p = be->alloc(sizeof(float) * 8), *gate = be->alloc(sizeof(float) * 2);
    int32_t *sel = be->alloc(sizeof(int32_t) * 2);
    be->softmax_topk(p, gate, sel, p, 1, 8, 2);
}

static void read_past_allocation(void) {
    const Backend *be = backend_cpu_guarded();
    float *x = be->alloc(sizeof(float) * 4);
    be->sum(x, 5);
}

static void legal_round_trip(void) {
    const Backend *be = backend_cpu_guarded();
    float host[4] = {1, 2, 3, 4}, back[4];
    float *x = be->alloc(sizeof(host));
    be->upload(x, host, sizeof(host));
    be->scale(x, 2.0f, 4);
    be->download(back, x, sizeof(back));
    if (back[3] != 8.0f || be->sum(x, 4) != 20.0)
        _exit(1);
    be->release(x);
}

/* The guard itself: each misuse must end the child, the legal sequence must not. */
static void guard_catches_misuse(void **state) {
    (void)state;
    int status = run_child(host_reads_device_memory);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    assert_child_exits(host_pointer_as_device, 2);
    assert_child_exits(device_pointer_as_host, 2);
    assert_child_exits(read_past_allocation, 2);
    assert_child_exits(legal_round_trip, 0);
}

int main(void) {
    log_set_level(EUAR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(guard_catches_misuse),
        cmocka_unit_test(every_model_matches_cpu),
        cmocka_unit_test(classification_models_match_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
