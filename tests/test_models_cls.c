/* Tests of the classification baselines tmc and qmf: the special functions their losses need,
 * the reduced Dempster rule, finite-difference checks of every parameter gradient, QMF's
 * training history, learning on toy data and the rejection of regression data. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/model.h"
#include "core/models/qmf.h"
#include "core/models/tmc.h"
#include "core/trainer.h"
#include "tests/grad_util.h"

#define PI 3.14159265358979323846

/* cmocka's assert_float_equal compares in float; this compares doubles and names the line. */
#define assert_close(a, b, tol) assert_close_at((a), (b), (tol), __LINE__)

static void assert_close_at(double a, double b, double tol, int line) {
    if (!(fabs(a - b) <= tol))
        fail_msg("line %d: %.17g != %.17g (tolerance %.3g)", line, a, b, tol);
}

/* ---- special functions ---- */

static void digamma_known_values(void **state) {
    (void)state;
    /* psi(1) = -gamma (Euler-Mascheroni), psi(1/2) = -gamma - 2 log 2, psi(2) = 1 - gamma,
     * and psi(100) from the first terms of the asymptotic series,
     * log 100 - 1/200 - 1/120000 + 1/(120 1e8), whose next term is below 1e-14. */
    const double gamma = 0.57721566490153286;
    assert_close(digamma_d(1.0), -gamma, 1e-13);
    assert_close(digamma_d(0.5), -gamma - 2.0 * log(2.0), 1e-13);
    assert_close(digamma_d(0.5), -1.9635100260, 1e-9);
    assert_close(digamma_d(2.0), 1.0 - gamma, 1e-13);
    assert_close(digamma_d(100.0), log(100.0) - 0.005 - 1.0 / 120000 + 1.0 / 1.2e10,
                       1e-12);
    assert_close(digamma_d(1e6), log(1e6) - 0.5e-6, 1e-12);
    /* The recurrence psi(x + 1) = psi(x) + 1/x is exact across the switch to the series. */
    for (double x = 0.05; x < 12.0; x += 0.37)
        assert_close(digamma_d(x + 1.0) - digamma_d(x), 1.0 / x, 1e-12);
    assert_true(isnan(digamma_d(0.0)));
    assert_true(isnan(digamma_d(-1.5)));
}

static void trigamma_known_values(void **state) {
    (void)state;
    assert_close(trigamma_d(1.0), PI * PI / 6.0, 1e-13);
    assert_close(trigamma_d(0.5), PI * PI / 2.0, 1e-13);
    /* psi'(2) = pi^2 / 6 - 1; psi'(100) by its series 1/x + 1/(2x^2) + 1/(6x^3) - ... */
    assert_close(trigamma_d(2.0), PI * PI / 6.0 - 1.0, 1e-13);
    assert_close(trigamma_d(100.0), 0.01 + 0.5e-4 + 1.0 / 6e6 - 1.0 / 3e11, 1e-14);
    /* trigamma is the derivative of digamma: central differences at h = 1e-5 carry a
     * truncation error of h^2 / 6 psi'''(x), about 1e-9 relative at x = 0.3 and less above,
     * and a rounding error near 1e-10. */
    for (double x = 0.3; x < 15.0; x += 0.53) {
        double h = 1e-5;
        double numeric = (digamma_d(x + h) - digamma_d(x - h)) / (2.0 * h);
        assert_close(trigamma_d(x), numeric, 1e-8 * trigamma_d(x));
    }
    assert_true(isnan(trigamma_d(0.0)));
}

static void softplus_values(void **state) {
    (void)state;
    assert_close(softplus_d(0.0), log(2.0), 1e-15);
    assert_close(softplus_d(1.0), log(1.0 + exp(1.0)), 1e-15);
    assert_close(softplus_d(-3.0), log(1.0 + exp(-3.0)), 1e-15);
    /* Large arguments neither overflow nor lose the small part. */
    assert_close(softplus_d(1000.0), 1000.0, 1e-12);
    assert_close(softplus_d(-50.0) / exp(-50.0), 1.0, 1e-12);
    assert_close(sigmoid_d(0.0), 0.5, 1e-15);
    assert_close(sigmoid_d(-1000.0), 0.0, 1e-300);
    assert_close(sigmoid_d(1000.0), 1.0, 1e-15);
    for (double x = -8.0; x <= 8.0; x += 0.5) {
        double h = 1e-5;
        double numeric = (softplus_d(x + h) - softplus_d(x - h)) / (2.0 * h);
        assert_close(sigmoid_d(x), numeric, 1e-9);
    }
}

/* ---- reduced Dempster rule ---- */

/* Two opinions over 3 classes, worked by hand:
 * b1 = (0.5, 0.2, 0.1), u1 = 0.2 and b2 = (0.3, 0.3, 0.2), u2 = 0.2.
 * Conflict K = sum(b1) sum(b2) - sum_k b1_k b2_k = 0.8 * 0.8 - (0.15 + 0.06 + 0.02) = 0.41,
 * so 1 - K = 0.59. Numerators b1 b2 + b1 u2 + b2 u1:
 *   k = 0: 0.15 + 0.10 + 0.06 = 0.31
 *   k = 1: 0.06 + 0.04 + 0.06 = 0.16
 *   k = 2: 0.02 + 0.02 + 0.04 = 0.08
 * and u1 u2 = 0.04. So b = (0.31, 0.16, 0.08) / 0.59, u = 0.04 / 0.59, which sum to 1. */
static void dempster_hand_example(void **state) {
    (void)state;
    const double b1[3] = {0.5, 0.2, 0.1}, b2[3] = {0.3, 0.3, 0.2};
    double b[3], u;
    tmc_combine(b, &u, b1, 0.2, b2, 0.2, 3);
    assert_close(b[0], 0.31 / 0.59, 1e-14);
    assert_close(b[1], 0.16 / 0.59, 1e-14);
    assert_close(b[2], 0.08 / 0.59, 1e-14);
    assert_close(u, 0.04 / 0.59, 1e-14);
    assert_close(b[0] + b[1] + b[2] + u, 1.0, 1e-14);
    /* The rule is symmetric in its two opinions. */
    double bs[3], us;
    tmc_combine(bs, &us, b2, 0.2, b1, 0.2, 3);
    for (int k = 0; k < 3; k++)
        assert_close(bs[k], b[k], 1e-15);
    assert_close(us, u, 1e-15);
}

/* A vacuous opinion (b = 0, u = 1) carries no evidence: combining with it, on either side,
 * returns the other opinion. */
static void dempster_vacuous(void **state) {
    (void)state;
    const double b1[4] = {0.1, 0.4, 0.05, 0.25}, none[4] = {0};
    double b[4], u;
    tmc_combine(b, &u, b1, 0.2, none, 1.0, 4);
    for (int k = 0; k < 4; k++)
        assert_close(b[k], b1[k], 1e-15);
    assert_close(u, 0.2, 1e-15);
    tmc_combine(b, &u, none, 1.0, b1, 0.2, 4);
    for (int k = 0; k < 4; k++)
        assert_close(b[k], b1[k], 1e-15);
    assert_close(u, 0.2, 1e-15);
}

/* tmc_combine_backward against central differences of L = sum_k w_k b_k + w_u u. */
typedef struct {
    double b1[4], u1, b2[4], u2, w[5];
} CombineCase;

static double combine_loss(const CombineCase *cc) {
    double b[4], u, l = 0.0;
    tmc_combine(b, &u, cc->b1, cc->u1, cc->b2, cc->u2, 4);
    for (int k = 0; k < 4; k++)
        l += cc->w[k] * b[k];
    return l + cc->w[4] * u;
}

static void dempster_backward_grad(void **state) {
    (void)state;
    CombineCase cc = {{0.1, 0.4, 0.05, 0.25}, 0.2, {0.3, 0.1, 0.2, 0.1}, 0.3,
                      {0.7, -1.2, 0.4, 2.0, -0.5}};
    double gb1[4] = {0}, gb2[4] = {0}, gu1 = 0.0, gu2 = 0.0;
    tmc_combine_backward(gb1, &gu1, gb2, &gu2, cc.w, cc.w[4], cc.b1, cc.u1, cc.b2, cc.u2, 4);
    /* Each input is perturbed alone, off the simplex: the rule is a rational function of
     * all nine inputs, and the backward pass gives its partial derivatives. */
    double *inputs[10] = {&cc.b1[0], &cc.b1[1], &cc.b1[2], &cc.b1[3], &cc.u1,
                          &cc.b2[0], &cc.b2[1], &cc.b2[2], &cc.b2[3], &cc.u2};
    double analytic[10] = {gb1[0], gb1[1], gb1[2], gb1[3], gu1, gb2[0], gb2[1], gb2[2], gb2[3],
                           gu2};
    GradCheck g = grad_check_start("tmc_combine_backward", 1e-6, 1e-9);
    for (int i = 0; i < 10; i++) {
        double orig = *inputs[i], h = 1e-5;
        *inputs[i] = orig + h;
        double lp = combine_loss(&cc);
        *inputs[i] = orig - h;
        double lm = combine_loss(&cc);
        *inputs[i] = orig;
        grad_check_add(&g, i, analytic[i], (lp - lm) / (2.0 * h));
    }
    assert_true(grad_check_report(&g, 0));
}

/* ---- whole-model gradients ---- */

enum { MB = 5, MAX_BATCH = 8, NUM_TRAIN = 40 };
static const int in_dims[3] = {5, 6, 7};

/* The tolerances of the model checks in test_grad.c: step 1e-3, relative 1e-2 for the
 * truncation error and 1.5e-4 absolute for the float32 rounding of the loss over the step. */
#define MODEL_STEP 1e-3f
#define MODEL_RTOL 1e-2
#define MODEL_ATOL 1.5e-4
/* At most this share of coordinates may be skipped as kinks. */
#define MODEL_MAX_SKIP 0.05

typedef struct {
    float x[3][MAX_BATCH * 8];
    int32_t cls[MAX_BATCH], sample[MAX_BATCH];
    Batch batch;
} BatchData;

static void batch_fill(BatchData *d, int b, int classes, uint32_t seed_row) {
    memset(d, 0, sizeof(*d));
    for (int i = 0; i < 3; i++)
        fill_normal(d->x[i], (size_t)b * in_dims[i], 1.0f, 300 + seed_row, (uint32_t)i);
    for (int r = 0; r < b; r++) {
        d->cls[r] = (r * 7 + (int)seed_row) % classes;
        d->sample[r] = 3 + 5 * r + (int)seed_row;
    }
    d->batch.b = b;
    for (int i = 0; i < 3; i++)
        d->batch.x[i] = d->x[i];
    d->batch.cls = d->cls;
    d->batch.sample = d->sample;
    d->batch.step = 9;
}

static Model *model_new(const char *name, int modalities, int classes, ActKind act) {
    Settings s;
    settings_default(&s);
    s.hidden = 6;
    s.activation = act;
    s.seed = 11;
    ModelShape sh;
    memset(&sh, 0, sizeof(sh));
    sh.num_modalities = modalities;
    for (int i = 0; i < modalities; i++) {
        sh.in_dim[i] = in_dims[i];
        snprintf(sh.names[i], sizeof(sh.names[i]), "m%d", i);
    }
    sh.output = EUAR_OUT_CLASSIFICATION;
    sh.num_classes = classes;
    sh.max_batch = MAX_BATCH;
    sh.num_train = NUM_TRAIN;
    Model *m = model_create(name, &s, &sh, backend_cpu());
    if (!m)
        fprintf(stderr, "model_create %s: %s\n", name, err_get());
    return m;
}

static double model_loss(Model *m, const Batch *batch) {
    model_forward(m, batch, 1);
    return m->loss.total;
}

/* Checks every parameter gradient of model `name` against central differences of
 * m->loss.total. A ReLU kink or a ranking hinge that turns inside the step, with slopes a
 * and b on its sides, leaves the central difference up to |a - b| / 2 from either slope, and
 * the one-sided differences then differ by about |a - b|; a mismatch within half that gap
 * (plus atol) is taken as a kink and skipped. */
static void check_model(const char *name, int modalities, int classes, ActKind act) {
    Model *m = model_new(name, modalities, classes, act);
    assert_non_null(m);
    int is_qmf = strcmp(name, "qmf") == 0;
    BatchData d;
    /* A first pass on another batch leaves stale values in every buffer, so a backward that
     * adds where it should overwrite shows up as a mismatch. For qmf this epoch-1 pass and
     * one on the checked batch also fill the history, which epoch 2 then ranks by. */
    batch_fill(&d, MB, classes, 1);
    d.batch.epoch = 1;
    model_forward(m, &d.batch, 1);
    model_backward(m, &d.batch);
    batch_fill(&d, MB, classes, 0);
    d.batch.epoch = 1;
    model_forward(m, &d.batch, 1);
    /* Epoch 25 of 50 annealing epochs puts the KL term of tmc at weight 0.5. */
    d.batch.epoch = is_qmf ? 2 : 25;

    double base = model_loss(m, &d.batch);
    if (is_qmf) {
        /* The ranking term must be active, or its gradient goes unchecked. */
        assert_true(m->loss.total > m->loss.task + 1e-3);
        qmf_hold_weights(m, 1);
    }
    model_zero_grad(m);
    model_backward(m, &d.batch);
    size_t total = m->params.total;
    float *grad = malloc(sizeof(float) * total);
    assert_non_null(grad);
    memcpy(grad, m->params.grad, sizeof(float) * total);

    char what[96];
    snprintf(what, sizeof(what), "%s M=%d C=%d %s", name, modalities, classes,
             act == EUAR_ACT_RELU ? "relu" : "gelu");
    GradCheck all = grad_check_start(what, MODEL_RTOL, MODEL_ATOL);
    for (int e = 0; e < m->params.count; e++) {
        ParamEntry *p = &m->params.entries[e];
        for (size_t j = 0; j < p->count; j++) {
            float *v = m->params.value + p->offset + j;
            float orig = *v, up = orig + MODEL_STEP, down = orig - MODEL_STEP;
            *v = up;
            double lp = model_loss(m, &d.batch);
            *v = down;
            double lm = model_loss(m, &d.batch);
            *v = orig;
            double fwd = (lp - base) / ((double)up - orig);
            double bwd = (base - lm) / ((double)orig - down);
            double gap = fabs(fwd - bwd);
            double numeric = (lp - lm) / ((double)up - down);
            double analytic = grad[p->offset + j];
            double err = fabs(analytic - numeric);
            double bound = MODEL_RTOL * fmax(fabs(analytic), fabs(numeric)) + MODEL_ATOL;
            if (err > bound && err <= 0.5 * gap + MODEL_ATOL) {
                all.skipped++;
                continue;
            }
            grad_check_add(&all, (long)(p->offset + j), analytic, numeric);
        }
    }
    int ok = grad_check_report(&all, getenv("EUAR_TEST_VERBOSE") != NULL);
    for (int e = 0; !ok && e < m->params.count; e++) {
        ParamEntry *p = &m->params.entries[e];
        size_t at = (size_t)all.worst_index;
        if (at >= p->offset && at < p->offset + p->count)
            fprintf(stderr, "%s: worst coordinate is %s[%zu]\n", what, p->name, at - p->offset);
    }
    assert_true(ok);
    assert_true(all.skipped <= MODEL_MAX_SKIP * (all.checked + all.skipped));
    free(grad);
    model_free(m);
}

static void tmc_grad_two(void **state) {
    (void)state;
    check_model("tmc", 2, 3, EUAR_ACT_GELU);
    check_model("tmc", 2, 4, EUAR_ACT_RELU);
}

static void tmc_grad_three(void **state) {
    (void)state;
    check_model("tmc", 3, 4, EUAR_ACT_GELU);
    check_model("tmc", 3, 3, EUAR_ACT_RELU);
}

static void qmf_grad_two(void **state) {
    (void)state;
    check_model("qmf", 2, 3, EUAR_ACT_GELU);
    check_model("qmf", 2, 4, EUAR_ACT_RELU);
}

static void qmf_grad_three(void **state) {
    (void)state;
    check_model("qmf", 3, 4, EUAR_ACT_GELU);
    check_model("qmf", 3, 3, EUAR_ACT_RELU);
}

/* ---- model behaviour ---- */

/* The output is the combined alpha: every entry is at least 1, m->prob is alpha / S, and
 * evaluation weighs the KL term by 1 where epoch 0 of training weighs it by 0. */
static void tmc_output_alpha(void **state) {
    (void)state;
    Model *m = model_new("tmc", 3, 4, EUAR_ACT_GELU);
    assert_non_null(m);
    BatchData d;
    batch_fill(&d, MB, 4, 2);
    model_forward(m, &d.batch, 0);
    double eval_loss = m->loss.task;
    for (int r = 0; r < MB; r++) {
        double s = 0.0;
        for (int k = 0; k < 4; k++) {
            assert_true(m->out[r * 4 + k] >= 1.0f);
            s += m->out[r * 4 + k];
        }
        for (int k = 0; k < 4; k++)
            assert_close(m->prob[r * 4 + k], m->out[r * 4 + k] / s, 1e-6);
    }
    assert_true(m->loss.total == m->loss.task);
    d.batch.epoch = 0;
    model_forward(m, &d.batch, 1);
    assert_true(eval_loss > m->loss.task);
    model_free(m);
}

/* The history changes only through training passes: a training pass records each row's
 * loss, a repeated pass in the same epoch overwrites the record, and the records enter the
 * history when the epoch changes. Evaluation passes, whose sample indices name samples of
 * another split, leave it alone. */
static void qmf_history_training_only(void **state) {
    (void)state;
    Model *m = model_new("qmf", 2, 3, EUAR_ACT_GELU);
    assert_non_null(m);
    BatchData train, other;
    batch_fill(&train, MB, 3, 0);
    batch_fill(&other, MB, 3, 1);
    double mean;
    train.batch.epoch = 1;
    model_forward(m, &train.batch, 1);
    model_forward(m, &train.batch, 1);
    assert_int_equal(qmf_history(m, 0, train.sample[0], &mean), 0);
    model_forward(m, &other.batch, 0);
    model_forward(m, &train.batch, 0);

    train.batch.epoch = 2;
    model_forward(m, &train.batch, 1);
    for (int i = 0; i < 2; i++)
        for (int r = 0; r < MB; r++) {
            assert_int_equal(qmf_history(m, i, train.sample[r], &mean), 1);
            assert_true(isfinite(mean));
            assert_true(mean > 0.0);
        }
    /* batch_fill gives the two batches disjoint sample indices. */
    for (int r = 0; r < MB; r++) {
        assert_int_equal(qmf_history(m, 0, other.sample[r], &mean), 0);
        assert_true(mean == 0.0);
    }
    model_forward(m, &other.batch, 0);
    model_forward(m, &train.batch, 0);
    assert_int_equal(qmf_history(m, 0, train.sample[0], &mean), 1);

    /* The second epoch's record enters at epoch 3. */
    train.batch.epoch = 3;
    model_forward(m, &train.batch, 1);
    assert_int_equal(qmf_history(m, 1, train.sample[2], &mean), 2);
    model_free(m);
}

/* ---- learning and input checks ---- */

enum { TOY_MOD = 2 };
static const int toy_dims[TOY_MOD] = {8, 6};

typedef struct {
    float *x[3][TOY_MOD];
    int32_t *cls[3];
    TrainData data;
} ToyData;

/* Three classes from a latent s uniform in [-3, 3] (cut at -1 and 1). Modality 0 carries s
 * with noise 0.2, modality 1 with noise 2, so good predictions need modality 0. */
static void toy_make(ToyData *t) {
    const int sizes[3] = {300, 100, 200};
    RngStream st = rng_stream(17, EUAR_RNG_TEST);
    memset(t, 0, sizeof(*t));
    t->data.shape.num_modalities = TOY_MOD;
    t->data.shape.output = EUAR_OUT_CLASSIFICATION;
    t->data.shape.num_classes = 3;
    for (int m = 0; m < TOY_MOD; m++) {
        t->data.shape.in_dim[m] = toy_dims[m];
        snprintf(t->data.shape.names[m], 32, "m%d", m);
    }
    SplitData *splits[3] = {&t->data.train, &t->data.valid, &t->data.test};
    for (int s = 0; s < 3; s++) {
        int n = sizes[s];
        splits[s]->n = n;
        t->cls[s] = xmalloc(sizeof(int32_t) * n);
        for (int m = 0; m < TOY_MOD; m++)
            t->x[s][m] = xmalloc(sizeof(float) * n * toy_dims[m]);
        for (int i = 0; i < n; i++) {
            float u;
            rng_fill_uniform(st, (uint32_t)s, (uint32_t)i, &u, 1);
            float latent = 6.0f * u - 3.0f;
            if (latent < -1.0f)
                t->cls[s][i] = 0;
            else if (latent < 1.0f)
                t->cls[s][i] = 1;
            else
                t->cls[s][i] = 2;
            for (int m = 0; m < TOY_MOD; m++) {
                float noise[8];
                rng_fill_normal(st, (uint32_t)(50 + s * 10 + m), (uint32_t)i, noise, 8);
                float sigma = m == 0 ? 0.2f : 2.0f;
                for (int k = 0; k < toy_dims[m]; k++) {
                    float dir = (k % 2 ? 1.0f : -0.5f) / (1.0f + k);
                    t->x[s][m][i * toy_dims[m] + k] = dir * latent + sigma * noise[k];
                }
            }
        }
        for (int m = 0; m < TOY_MOD; m++)
            splits[s]->x[m] = t->x[s][m];
        splits[s]->cls = t->cls[s];
    }
}

static void toy_free(ToyData *t) {
    for (int s = 0; s < 3; s++) {
        free(t->cls[s]);
        for (int m = 0; m < TOY_MOD; m++)
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

static void check_learns(const char *name) {
    ToyData t;
    toy_make(&t);
    Settings s;
    settings_default(&s);
    s.epochs = 15;
    s.hidden = 16;
    s.batch = 16;
    s.lr = 3e-3f;
    TrainResult r;
    assert_int_equal(train_run(name, &s, &t.data, backend_cpu(), NULL, &r), 0);
    assert_false(r.failed);
    double acc = metric(&r.test, "acc");
    print_message("%s: test accuracy %.3f\n", name, acc);
    /* Three classes of about equal size: chance is about 0.33. */
    assert_true(acc > 0.8);
    train_result_free(&r);
    toy_free(&t);
}

static void tmc_learns(void **state) {
    (void)state;
    check_learns("tmc");
}

static void qmf_learns(void **state) {
    (void)state;
    check_learns("qmf");
}

static void regression_rejected(void **state) {
    (void)state;
    const char *names[2] = {"tmc", "qmf"};
    for (int i = 0; i < 2; i++) {
        Settings s;
        settings_default(&s);
        ModelShape sh;
        memset(&sh, 0, sizeof(sh));
        sh.num_modalities = 2;
        sh.in_dim[0] = 4;
        sh.in_dim[1] = 3;
        sh.output = EUAR_OUT_REGRESSION;
        sh.max_batch = 8;
        assert_null(model_create(names[i], &s, &sh, backend_cpu()));
        char expect[64];
        snprintf(expect, sizeof(expect), "model '%s' needs a classification dataset", names[i]);
        assert_non_null(strstr(err_get(), expect));
        /* One class is no classification either. */
        sh.output = EUAR_OUT_CLASSIFICATION;
        sh.num_classes = 1;
        assert_null(model_create(names[i], &s, &sh, backend_cpu()));
        assert_non_null(strstr(err_get(), "at least 2 classes"));
    }
}

int main(void) {
    backend_cpu_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digamma_known_values),
        cmocka_unit_test(trigamma_known_values),
        cmocka_unit_test(softplus_values),
        cmocka_unit_test(dempster_hand_example),
        cmocka_unit_test(dempster_vacuous),
        cmocka_unit_test(dempster_backward_grad),
        cmocka_unit_test(tmc_grad_two),
        cmocka_unit_test(tmc_grad_three),
        cmocka_unit_test(qmf_grad_two),
        cmocka_unit_test(qmf_grad_three),
        cmocka_unit_test(tmc_output_alpha),
        cmocka_unit_test(qmf_history_training_only),
        cmocka_unit_test(tmc_learns),
        cmocka_unit_test(qmf_learns),
        cmocka_unit_test(regression_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
