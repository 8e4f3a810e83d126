/* Finite-difference checks of every backward pass: the backend operations one by one, the
 * Linear layer, and every registered model end to end with its auxiliary losses. Also the
 * properties the gradient checks rely on: dense and sparse expert compute agree, a sample's
 * prediction does not depend on its batch-mates, and a seed fixes outputs and gradients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/layers.h"
#include "core/model.h"
#include "core/ops.h"
#include "core/settings.h"
#include "tests/grad_util.h"

/* Tolerances of the per-operation checks. Perturbing one input changes only the outputs that
 * depend on it, and the others round identically in both evaluations. So a difference carries
 * the float32 rounding (relative 6e-8) of a few outputs, which a step of 1e-3 turns into well
 * under 1e-4. The truncation error, step^2 / 6 times the third derivative, is below 1e-5. */
#define OP_STEP 1e-3f
#define OP_RTOL 5e-3
#define OP_ATOL 2e-4

/* ---- operations ---- */

typedef struct {
    ActKind kind;
    float *x, *y, *c;
    size_t n;
} ActCase;

static double act_loss(void *ctx) {
    ActCase *a = ctx;
    backend_cpu()->act_forward(a->kind, a->y, a->x, a->n);
    double l = 0.0;
    for (size_t i = 0; i < a->n; i++)
        l += (double)a->c[i] * a->y[i];
    return l;
}

static void check_act(ActKind kind, const char *what) {
    enum { N = 64 };
    const Backend *be = backend_cpu();
    float x[N], y[N], c[N], dx[N];
    fill_uniform(x, N, -3.0f, 3.0f, 1, (uint32_t)kind);
    fill_normal(c, N, 1.0f, 2, (uint32_t)kind);
    /* ReLU has a kink at 0: keep every input at least 50 steps away from it. */
    for (int i = 0; i < N; i++)
        if (fabsf(x[i]) < 0.05f)
            x[i] = x[i] < 0.0f ? -0.05f : 0.05f;
    ActCase a = {kind, x, y, c, N};
    be->act_backward(kind, dx, c, x, N);
    GradCheck g = grad_check_start(what, OP_RTOL, OP_ATOL);
    for (int i = 0; i < N; i++)
        grad_check_add(&g, i, dx[i], numeric_grad(act_loss, &a, &x[i], OP_STEP));
    assert_true(grad_check_report(&g, 0));
}

static void act_relu_grad(void **state) {
    (void)state;
    check_act(EUAR_ACT_RELU, "act_backward relu");
}

static void act_gelu_grad(void **state) {
    (void)state;
    check_act(EUAR_ACT_GELU, "act_backward gelu");
}

static void act_none_grad(void **state) {
    (void)state;
    check_act(EUAR_ACT_NONE, "act_backward none");
}

/* dx may alias dy, as the header allows. */
static void act_backward_aliased(void **state) {
    (void)state;
    enum { N = 16 };
    float x[N], d[N], ref[N];
    fill_uniform(x, N, -2.0f, 2.0f, 3, 0);
    fill_normal(d, N, 1.0f, 3, 1);
    backend_cpu()->act_backward(EUAR_ACT_GELU, ref, d, x, N);
    backend_cpu()->act_backward(EUAR_ACT_GELU, d, d, x, N);
    assert_memory_equal(ref, d, sizeof(ref));
}

/* Compares gelu_grad_f with a central difference of gelu_f. The step is 1e-2 because gelu_f
 * rounds to float32 (relative 6e-8), which a 1e-3 step would turn into 3e-5 on the
 * derivative. At 1e-2 the rounding part is 3e-6 and the truncation error about 2e-5. */
static void gelu_grad_f_matches(void **state) {
    (void)state;
    GradCheck g = grad_check_start("gelu_grad_f", 1e-3, 1e-4);
    for (int i = 0; i <= 160; i++) {
        float x = -8.0f + 0.1f * (float)i;
        float h = 1e-2f, up = x + h, down = x - h;
        double numeric = ((double)gelu_f(up) - gelu_f(down)) / ((double)up - down);
        grad_check_add(&g, i, gelu_grad_f(x), numeric);
    }
    assert_true(grad_check_report(&g, 0));
}

/* kl_normal_dmu_f and kl_normal_dlv_f against central differences of kl_normal_f. */
static void kl_normal_derivatives(void **state) {
    (void)state;
    GradCheck gmu = grad_check_start("kl_normal d/dmu", 1e-3, 2e-4);
    GradCheck glv = grad_check_start("kl_normal d/dlv", 1e-3, 2e-4);
    for (int i = 0; i < 21; i++)
        for (int j = 0; j < 21; j++) {
            float mu = -2.0f + 0.2f * (float)i, lv = -4.0f + 0.4f * (float)j, h = 1e-2f;
            double nmu = ((double)kl_normal_f(mu + h, lv) - kl_normal_f(mu - h, lv)) /
                         ((double)(mu + h) - (mu - h));
            double nlv = ((double)kl_normal_f(mu, lv + h) - kl_normal_f(mu, lv - h)) /
                         ((double)(lv + h) - (lv - h));
            grad_check_add(&gmu, i * 21 + j, kl_normal_dmu_f(mu), nmu);
            grad_check_add(&glv, i * 21 + j, kl_normal_dlv_f(lv), nlv);
        }
    assert_true(grad_check_report(&gmu, 0));
    assert_true(grad_check_report(&glv, 0));
    /* KL(N(0, 1) || N(0, 1)) is zero. */
    assert_float_equal(kl_normal_f(0.0f, 0.0f), 0.0f, 0.0f);
}

typedef struct {
    float *logits, *p, *gate, *c;
    int32_t *sel;
    int b, e, k;
} SoftmaxCase;

static double softmax_loss(void *ctx) {
    SoftmaxCase *s = ctx;
    backend_cpu()->softmax_topk(s->p, s->gate, s->sel, s->logits, s->b, s->e, s->k);
    double l = 0.0;
    for (int i = 0; i < s->b * s->e; i++)
        l += (double)s->c[i] * s->p[i];
    return l;
}

static void softmax_backward_grad(void **state) {
    (void)state;
    enum { B = 4, E = 6, K = 2 };
    float logits[B * E], p[B * E], gate[B * K], c[B * E], dl[B * E];
    int32_t sel[B * K];
    fill_normal(logits, B * E, 2.0f, 4, 0);
    fill_normal(c, B * E, 1.0f, 4, 1);
    SoftmaxCase s = {logits, p, gate, c, sel, B, E, K};
    softmax_loss(&s);
    backend_cpu()->softmax_backward(dl, c, p, B, E);
    GradCheck g = grad_check_start("softmax_backward", OP_RTOL, OP_ATOL);
    for (int i = 0; i < B * E; i++)
        grad_check_add(&g, i, dl[i], numeric_grad(softmax_loss, &s, &logits[i], OP_STEP));
    assert_true(grad_check_report(&g, 0));
}

/* Expert check: L = sum dz z + sum dkl kl + sum ds2 s2 over rows slots of width H. */
enum { EXP_ROWS = 6, EXP_H = 5 };
#define EXP_LV_MIN -1.5f
#define EXP_LV_MAX 1.0f

typedef struct {
    float y[EXP_ROWS * 2 * EXP_H], eps[EXP_ROWS * EXP_H];
    float wz[EXP_ROWS * EXP_H], wkl[EXP_ROWS], ws2[EXP_ROWS];
    float z[EXP_ROWS * EXP_H], sd[EXP_ROWS * EXP_H], kl[EXP_ROWS], s2[EXP_ROWS];
    int use_eps, use_dz;
} ExpertCase;

static double expert_loss(void *ctx) {
    ExpertCase *c = ctx;
    backend_cpu()->expert_forward(c->z, c->sd, c->kl, c->s2, c->y, c->use_eps ? c->eps : NULL,
                                  EXP_ROWS, EXP_H, EXP_LV_MIN, EXP_LV_MAX);
    double l = 0.0;
    for (int r = 0; r < EXP_ROWS; r++) {
        l += (double)c->wkl[r] * c->kl[r] + (double)c->ws2[r] * c->s2[r];
        for (int d = 0; c->use_dz && d < EXP_H; d++)
            l += (double)c->wz[r * EXP_H + d] * c->z[r * EXP_H + d];
    }
    return l;
}

static void check_expert(int use_eps, int use_dz, const char *what) {
    ExpertCase c;
    memset(&c, 0, sizeof(c));
    c.use_eps = use_eps;
    c.use_dz = use_dz;
    /* Raw log-variances are drawn in [-3, 2.5], so some fall outside [-1.5, 1]. None lies
     * within 50 steps of a clamp edge, where the difference would straddle it. */
    fill_normal(c.y, sizeof(c.y) / sizeof(float), 1.0f, 5, 0);
    int outside = 0;
    for (int r = 0; r < EXP_ROWS; r++)
        for (int d = 0; d < EXP_H; d++) {
            float *raw = &c.y[r * 2 * EXP_H + EXP_H + d];
            fill_uniform(raw, 1, -3.0f, 2.5f, 6, (uint32_t)(r * EXP_H + d));
            if (fabsf(*raw - EXP_LV_MIN) < 0.05f || fabsf(*raw - EXP_LV_MAX) < 0.05f)
                *raw += 0.1f;
            outside += *raw < EXP_LV_MIN || *raw > EXP_LV_MAX;
        }
    assert_true(outside >= 3);
    fill_normal(c.eps, EXP_ROWS * EXP_H, 1.0f, 7, 0);
    fill_normal(c.wz, EXP_ROWS * EXP_H, 1.0f, 8, 0);
    fill_uniform(c.wkl, EXP_ROWS, 0.1f, 1.0f, 9, 0);
    fill_uniform(c.ws2, EXP_ROWS, 0.1f, 1.0f, 10, 0);

    float dy[EXP_ROWS * 2 * EXP_H];
    expert_loss(&c);
    /* With eps the saved sd is used; without, backward recomputes it: both paths run. */
    backend_cpu()->expert_backward(dy, use_dz ? c.wz : NULL, c.wkl, c.ws2, c.y,
                                   use_eps ? c.sd : NULL, use_eps ? c.eps : NULL, EXP_ROWS, EXP_H, EXP_LV_MIN,
                                   EXP_LV_MAX);
    GradCheck g = grad_check_start(what, OP_RTOL, OP_ATOL);
    int clamped_nonzero = 0;
    for (int i = 0; i < EXP_ROWS * 2 * EXP_H; i++) {
        int is_raw = i % (2 * EXP_H) >= EXP_H;
        if (is_raw && (c.y[i] < EXP_LV_MIN || c.y[i] > EXP_LV_MAX))
            clamped_nonzero += dy[i] != 0.0f;
        grad_check_add(&g, i, dy[i], numeric_grad(expert_loss, &c, &c.y[i], OP_STEP));
    }
    assert_true(grad_check_report(&g, 0));
    /* Outside the clamp range the gradient is exactly zero, not merely small. */
    assert_int_equal(clamped_nonzero, 0);
}

static void expert_grad_eps(void **state) {
    (void)state;
    check_expert(1, 1, "expert_backward with eps");
}

static void expert_grad_no_eps(void **state) {
    (void)state;
    check_expert(0, 1, "expert_backward without eps");
}

static void expert_grad_no_dz(void **state) {
    (void)state;
    check_expert(1, 0, "expert_backward without dz");
}

/* Mixture check: L = sum c out with out = sum_s w z, out stored with a padded row stride. */
enum { MIX_B = 3, MIX_S = 4, MIX_H = 5, MIX_LDO = 7 };

typedef struct {
    float w[MIX_B * MIX_S], z[MIX_B * MIX_S * MIX_H], c[MIX_B * MIX_LDO], out[MIX_B * MIX_LDO];
} MixCase;

static double mix_loss(void *ctx) {
    MixCase *m = ctx;
    backend_cpu()->mixture_forward(m->out, MIX_LDO, m->w, m->z, MIX_B, MIX_S, MIX_H);
    double l = 0.0;
    for (int r = 0; r < MIX_B; r++)
        for (int d = 0; d < MIX_H; d++)
            l += (double)m->c[r * MIX_LDO + d] * m->out[r * MIX_LDO + d];
    return l;
}

static void mixture_backward_grad(void **state) {
    (void)state;
    MixCase m;
    fill_uniform(m.w, MIX_B * MIX_S, 0.1f, 1.0f, 11, 0);
    fill_normal(m.z, MIX_B * MIX_S * MIX_H, 1.0f, 11, 1);
    fill_normal(m.c, MIX_B * MIX_LDO, 1.0f, 11, 2);
    float dz[MIX_B * MIX_S * MIX_H], dw[MIX_B * MIX_S];
    backend_cpu()->mixture_backward(dz, dw, m.c, MIX_LDO, m.w, m.z, MIX_B, MIX_S, MIX_H);
    GradCheck gz = grad_check_start("mixture_backward dz", OP_RTOL, OP_ATOL);
    GradCheck gw = grad_check_start("mixture_backward dw", OP_RTOL, OP_ATOL);
    for (int i = 0; i < MIX_B * MIX_S * MIX_H; i++)
        grad_check_add(&gz, i, dz[i], numeric_grad(mix_loss, &m, &m.z[i], OP_STEP));
    for (int i = 0; i < MIX_B * MIX_S; i++)
        grad_check_add(&gw, i, dw[i], numeric_grad(mix_loss, &m, &m.w[i], OP_STEP));
    assert_true(grad_check_report(&gz, 0));
    assert_true(grad_check_report(&gw, 0));
}

typedef struct {
    float pred[7], y[7], logits[7 * 3], prob[7 * 3];
    int32_t cls[7];
    float scale;
} TaskCase;

static double mse_loss(void *ctx) {
    TaskCase *t = ctx;
    return t->scale * backend_cpu()->mse(NULL, t->pred, t->y, 7, 1.0f);
}

static double ce_loss(void *ctx) {
    TaskCase *t = ctx;
    return t->scale * backend_cpu()->cross_entropy(NULL, t->prob, t->logits, t->cls, 7, 3, 1.0f);
}

static void mse_grad(void **state) {
    (void)state;
    TaskCase t = {.scale = 2.5f};
    fill_normal(t.pred, 7, 1.0f, 12, 0);
    fill_normal(t.y, 7, 1.0f, 12, 1);
    float d[7];
    backend_cpu()->mse(d, t.pred, t.y, 7, t.scale);
    GradCheck g = grad_check_start("mse gradient", OP_RTOL, OP_ATOL);
    for (int i = 0; i < 7; i++)
        grad_check_add(&g, i, d[i], numeric_grad(mse_loss, &t, &t.pred[i], OP_STEP));
    assert_true(grad_check_report(&g, 0));
}

static void cross_entropy_grad(void **state) {
    (void)state;
    TaskCase t = {.scale = 2.5f, .cls = {0, 2, 1, 1, 0, 2, 2}};
    fill_normal(t.logits, 21, 2.0f, 13, 0);
    float d[21];
    backend_cpu()->cross_entropy(d, t.prob, t.logits, t.cls, 7, 3, t.scale);
    GradCheck g = grad_check_start("cross_entropy gradient", OP_RTOL, OP_ATOL);
    for (int i = 0; i < 21; i++)
        grad_check_add(&g, i, d[i], numeric_grad(ce_loss, &t, &t.logits[i], OP_STEP));
    assert_true(grad_check_report(&g, 0));
}

/* Linear check with padded strides on x, y and dx: L = sum c y. */
enum { LIN_B = 4, LIN_IN = 5, LIN_OUT = 3, LIN_LDX = 7, LIN_LDY = 6, LIN_LDDX = 8 };

typedef struct {
    Linear l;
    float w[LIN_IN * LIN_OUT], b[LIN_OUT], dw[LIN_IN * LIN_OUT], db[LIN_OUT];
    float x[LIN_B * LIN_LDX], y[LIN_B * LIN_LDY], c[LIN_B * LIN_LDY];
} LinCase;

static double lin_loss(void *ctx) {
    LinCase *t = ctx;
    linear_forward(backend_cpu(), t->y, LIN_LDY, t->x, LIN_LDX, &t->l, LIN_B);
    double l = 0.0;
    for (int r = 0; r < LIN_B; r++)
        for (int o = 0; o < LIN_OUT; o++)
            l += (double)t->c[r * LIN_LDY + o] * t->y[r * LIN_LDY + o];
    return l;
}

static void linear_backward_grad(void **state) {
    (void)state;
    LinCase *t = calloc(1, sizeof(LinCase));
    assert_non_null(t);
    t->l = (Linear){LIN_IN, LIN_OUT, t->w, t->b, t->dw, t->db};
    fill_normal(t->w, LIN_IN * LIN_OUT, 0.5f, 14, 0);
    fill_normal(t->b, LIN_OUT, 0.5f, 14, 1);
    fill_normal(t->x, LIN_B * LIN_LDX, 1.0f, 14, 2);
    fill_normal(t->c, LIN_B * LIN_LDY, 1.0f, 14, 3);
    /* Parameter gradients accumulate and dx accumulates when asked: start from known values
     * and check the increments. */
    float dw0[LIN_IN * LIN_OUT], db0[LIN_OUT], dx[LIN_B * LIN_LDDX], dx0[LIN_B * LIN_LDDX];
    fill_normal(dw0, LIN_IN * LIN_OUT, 1.0f, 14, 4);
    fill_normal(db0, LIN_OUT, 1.0f, 14, 5);
    fill_normal(dx0, LIN_B * LIN_LDDX, 1.0f, 14, 6);
    memcpy(t->dw, dw0, sizeof(dw0));
    memcpy(t->db, db0, sizeof(db0));
    memcpy(dx, dx0, sizeof(dx0));
    linear_backward(backend_cpu(), dx, LIN_LDDX, 1, &t->l, t->c, LIN_LDY, t->x, LIN_LDX, LIN_B);

    GradCheck gw = grad_check_start("linear_backward dW", OP_RTOL, OP_ATOL);
    GradCheck gb = grad_check_start("linear_backward db", OP_RTOL, OP_ATOL);
    GradCheck gx = grad_check_start("linear_backward dx", OP_RTOL, OP_ATOL);
    for (int i = 0; i < LIN_IN * LIN_OUT; i++)
        grad_check_add(&gw, i, (double)t->dw[i] - dw0[i],
                       numeric_grad(lin_loss, t, &t->w[i], OP_STEP));
    for (int i = 0; i < LIN_OUT; i++)
        grad_check_add(&gb, i, (double)t->db[i] - db0[i],
                       numeric_grad(lin_loss, t, &t->b[i], OP_STEP));
    int padding_changed = 0;
    for (int r = 0; r < LIN_B; r++)
        for (int i = 0; i < LIN_LDDX; i++) {
            int at = r * LIN_LDDX + i;
            if (i >= LIN_IN) {
                padding_changed += dx[at] != dx0[at];
                continue;
            }
            grad_check_add(&gx, at, (double)dx[at] - dx0[at],
                           numeric_grad(lin_loss, t, &t->x[r * LIN_LDX + i], OP_STEP));
        }
    assert_true(grad_check_report(&gw, 0));
    assert_true(grad_check_report(&gb, 0));
    assert_true(grad_check_report(&gx, 0));
    assert_int_equal(padding_changed, 0);

    /* accumulate = 0 overwrites dx. */
    float dx_add[LIN_B * LIN_LDDX];
    memcpy(dx_add, dx, sizeof(dx));
    linear_backward(backend_cpu(), dx, LIN_LDDX, 0, &t->l, t->c, LIN_LDY, t->x, LIN_LDX, LIN_B);
    double worst = 0.0;
    for (int r = 0; r < LIN_B; r++)
        for (int i = 0; i < LIN_IN; i++) {
            int at = r * LIN_LDDX + i;
            worst = fmax(worst, fabs((double)dx[at] - ((double)dx_add[at] - dx0[at])));
        }
    assert_true(worst < 1e-5);
    free(t);
}

/* ---- whole models ---- */

enum { MB = 5, MAX_BATCH = 8, NUM_CLASSES = 3 };
static const int in_dims[3] = {5, 6, 7};

/* Model-level tolerance. A forward pass runs about ten float32 layers, so the loss carries a
 * rounding error near 1e-7. Over a central difference of step 1e-3 this gave a noise of up to
 * 6e-5 on these models, measured over all their coordinates, and atol 1.5e-4 leaves a factor
 * 2.5 above it. The relative part covers the truncation error, step^2 / 6 times the third
 * derivative of GELU and exp. */
#define MODEL_STEP 1e-3f
#define MODEL_RTOL 1e-2
#define MODEL_ATOL 1.5e-4
/* A top-k or first-choice flip inside the step moves the loss by a jump, which the one-sided
 * differences turn into a gap of jump / step. For a smooth loss the gap is step times the
 * second derivative, below 2.1e-3 here. Coordinates with a larger gap, or whose selection
 * counts change, are skipped. */
#define MODEL_JUMP 2e-2
/* At most this share of coordinates may be skipped; many skips would make the check vacuous,
 * or hide a systematic error. */
#define MODEL_MAX_SKIP 0.05

static void model_settings(Settings *s, MoeCompute compute) {
    settings_default(s);
    s->experts = 4;
    s->top_k = 2;
    s->hidden = 6;
    /* The auxiliary weights are raised from 1e-3, 1e-5, 1e-3 so that their gradients are a
     * visible part of every router and expert gradient. */
    s->alpha = 0.3f;
    s->beta = 0.2f;
    s->lambda = 0.5f;
    s->activation = EUAR_ACT_GELU;
    s->moe_compute = compute;
    s->seed = 11;
}

static void model_shape(ModelShape *sh, OutputKind out, int modalities) {
    memset(sh, 0, sizeof(*sh));
    sh->num_modalities = modalities;
    for (int i = 0; i < modalities; i++) {
        sh->in_dim[i] = in_dims[i];
        snprintf(sh->names[i], sizeof(sh->names[i]), "m%d", i);
    }
    sh->output = out;
    sh->num_classes = NUM_CLASSES;
    sh->max_batch = MAX_BATCH;
}

/* Host data of one batch (the CPU backend's device memory is host memory). */
typedef struct {
    float x[3][MAX_BATCH * 8];
    float y[MAX_BATCH];
    int32_t cls[MAX_BATCH], sample[MAX_BATCH];
    Batch batch;
} BatchData;

static void batch_fill(BatchData *d, int b, uint32_t seed_row) {
    memset(d, 0, sizeof(*d));
    for (int i = 0; i < 3; i++)
        fill_normal(d->x[i], (size_t)b * in_dims[i], 1.0f, 100 + seed_row, (uint32_t)i);
    fill_normal(d->y, (size_t)b, 1.0f, 200 + seed_row, 0);
    for (int r = 0; r < b; r++) {
        d->cls[r] = (r * 7 + (int)seed_row) % NUM_CLASSES;
        d->sample[r] = 3 + 5 * r + (int)seed_row;
    }
    d->batch.b = b;
    for (int i = 0; i < 3; i++)
        d->batch.x[i] = d->x[i];
    d->batch.y = d->y;
    d->batch.cls = d->cls;
    d->batch.sample = d->sample;
    d->batch.step = 9;
}

static Model *model_new(const char *name, const Settings *s, OutputKind out) {
    ModelShape sh;
    model_shape(&sh, out, 3);
    Model *m = model_create(name, s, &sh, backend_cpu());
    if (!m)
        fprintf(stderr, "model_create %s: %s\n", name, err_get());
    return m;
}

typedef struct {
    Model *m;
    const Batch *batch;
} ModelLossCtx;

static double model_loss(void *ctx) {
    ModelLossCtx *c = ctx;
    memset(&c->m->stats, 0, sizeof(c->m->stats));
    c->m->stats.enabled = 1;
    model_forward(c->m, c->batch, 1);
    return c->m->loss.total;
}

/* Checks every parameter of model `name` against central differences of loss.total. */
static void check_model(const char *name, OutputKind out, MoeCompute compute, ActKind act) {
    Settings s;
    model_settings(&s, compute);
    s.activation = act;
    /* ReLU layers (the encoders under act=relu, the experts of mlp-moe) have kinks. A kink
     * inside the step, with slopes a and b on its sides, leaves the central difference up to
     * |a - b| / 2 from either slope, and the one-sided gap is then about |a - b|. Under ReLU a
     * mismatch within half the gap (plus atol) is taken as a kink and skipped. */
    int kinks = act == EUAR_ACT_RELU || strcmp(name, "mlp-moe") == 0;
    Model *m = model_new(name, &s, out);
    assert_non_null(m);
    BatchData d;
    /* A first pass on another batch leaves stale values in every activation and gradient
     * buffer, so a backward that adds where it should overwrite shows up as a mismatch. */
    batch_fill(&d, MB, 5);
    model_forward(m, &d.batch, 1);
    model_backward(m, &d.batch);
    batch_fill(&d, MB, 0);
    ModelLossCtx ctx = {m, &d.batch};

    double base = model_loss(&ctx);
    RoutingStats base_stats = m->stats;
    model_zero_grad(m);
    model_backward(m, &d.batch);
    size_t total = m->params.total;
    float *grad = malloc(sizeof(float) * total);
    assert_non_null(grad);
    memcpy(grad, m->params.grad, sizeof(float) * total);

    char what[128];
    snprintf(what, sizeof(what), "%s %s %s %s", name,
             out == EUAR_OUT_REGRESSION ? "regression" : "classification",
             compute == EUAR_MOE_SPARSE ? "sparse" : "dense",
             act == EUAR_ACT_RELU ? "relu" : "gelu");
    GradCheck all = grad_check_start(what, MODEL_RTOL, MODEL_ATOL);
    char gate_what[160];
    snprintf(gate_what, sizeof(gate_what), "%s router gate", what);
    GradCheck gate = grad_check_start(gate_what, MODEL_RTOL, MODEL_ATOL);

    for (int e = 0; e < m->params.count; e++) {
        ParamEntry *p = &m->params.entries[e];
        int is_gate = strstr(p->name, ".gate.w") != NULL;
        for (size_t j = 0; j < p->count; j++) {
            float *v = m->params.value + p->offset + j;
            float orig = *v, up = orig + MODEL_STEP, down = orig - MODEL_STEP;
            *v = up;
            double lp = model_loss(&ctx);
            int flipped = memcmp(m->stats.load, base_stats.load, sizeof(base_stats.load)) != 0;
            *v = down;
            double lm = model_loss(&ctx);
            flipped |= memcmp(m->stats.load, base_stats.load, sizeof(base_stats.load)) != 0;
            *v = orig;
            double fwd = (lp - base) / ((double)up - orig);
            double bwd = (base - lm) / ((double)orig - down);
            double gap = fabs(fwd - bwd);
            if (flipped || gap > MODEL_JUMP) {
                all.skipped++;
                continue;
            }
            double numeric = (lp - lm) / ((double)up - down);
            double analytic = grad[p->offset + j];
            double err = fabs(analytic - numeric);
            double bound = MODEL_RTOL * fmax(fabs(analytic), fabs(numeric)) + MODEL_ATOL;
            if (kinks && err > bound && err <= 0.5 * gap + MODEL_ATOL) {
                all.skipped++;
                continue;
            }
            grad_check_add(&all, (long)(p->offset + j), analytic, numeric);
            if (is_gate)
                grad_check_add(&gate, (long)(p->offset + j), analytic, numeric);
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
    /* Non-smooth coordinates are rare; many of them would make the check vacuous. */
    assert_true(all.skipped <= MODEL_MAX_SKIP * (all.checked + all.skipped));
    if (m->kind->has_experts) {
        /* The router is trained through the kept gate values, so its weights must carry
         * gradients of a size the check resolves, and they must match. */
        assert_true(grad_check_report(&gate, getenv("EUAR_TEST_VERBOSE") != NULL));
        assert_true(gate.max_abs_analytic > 10 * MODEL_ATOL);
    }
    free(grad);
    model_free(m);
}

static const char *const all_models[] = {
    "euar", "concat", "late", "mlp-moe", "euar-no-kl", "euar-no-u", "euar-no-kl-no-u",
};

static void model_grad_all(OutputKind out, MoeCompute compute) {
    for (size_t i = 0; i < EUAR_ARRAY_LEN(all_models); i++) {
        /* Models without experts ignore moe_compute: check them once, under dense. */
        const ModelKind *kind = model_kind_find(all_models[i]);
        assert_non_null(kind);
        if (compute == EUAR_MOE_SPARSE && !kind->has_experts)
            continue;
        check_model(all_models[i], out, compute, EUAR_ACT_GELU);
    }
}

static void model_grad_reg_dense(void **state) {
    (void)state;
    model_grad_all(EUAR_OUT_REGRESSION, EUAR_MOE_DENSE);
}

static void model_grad_reg_sparse(void **state) {
    (void)state;
    model_grad_all(EUAR_OUT_REGRESSION, EUAR_MOE_SPARSE);
}

static void model_grad_cls_dense(void **state) {
    (void)state;
    model_grad_all(EUAR_OUT_CLASSIFICATION, EUAR_MOE_DENSE);
}

static void model_grad_cls_sparse(void **state) {
    (void)state;
    model_grad_all(EUAR_OUT_CLASSIFICATION, EUAR_MOE_SPARSE);
}

/* ReLU encoders and hidden layers, with kinks skipped as described in check_model. */
static void model_grad_relu(void **state) {
    (void)state;
    for (size_t i = 0; i < EUAR_ARRAY_LEN(all_models); i++) {
        check_model(all_models[i], EUAR_OUT_REGRESSION, EUAR_MOE_DENSE, EUAR_ACT_RELU);
        check_model(all_models[i], EUAR_OUT_CLASSIFICATION, EUAR_MOE_SPARSE, EUAR_ACT_RELU);
    }
}

/* The loss terms of the models are those declared: total = task + alpha KL + beta balance
 * + lambda U, with the ablations zeroing their terms' weights. */
static void model_loss_terms(void **state) {
    (void)state;
    for (size_t i = 0; i < EUAR_ARRAY_LEN(all_models); i++) {
        Settings s;
        model_settings(&s, EUAR_MOE_DENSE);
        Model *m = model_new(all_models[i], &s, EUAR_OUT_REGRESSION);
        assert_non_null(m);
        BatchData d;
        batch_fill(&d, MB, 0);
        model_forward(m, &d.batch, 1);
        LossTerms l = m->loss;
        double expect = l.task + m->set.alpha * l.kl + m->set.beta * l.balance +
                        m->set.lambda * l.u;
        assert_true(fabs(l.total - expect) <= 1e-9 * fabs(expect));
        int gaussian = strncmp(all_models[i], "euar", 4) == 0;
        int no_kl = strstr(all_models[i], "no-kl") != NULL;
        int no_u = strstr(all_models[i], "no-u") != NULL;
        if (m->kind->has_experts) {
            assert_true(l.balance > 0.0);
            assert_true(m->set.beta == s.beta);
        } else {
            assert_true(l.balance == 0.0);
        }
        assert_true(gaussian ? l.kl > 0.0 : l.kl == 0.0);
        assert_true(gaussian ? l.u > 0.0 : l.u == 0.0);
        if (m->kind->has_experts) {
            assert_true(m->set.alpha == (gaussian && !no_kl ? s.alpha : 0.0f));
            assert_true(m->set.lambda == (gaussian && !no_u ? s.lambda : 0.0f));
        }
        model_free(m);
    }
}

/* ---- dense and sparse compute ---- */

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

static void check_dense_sparse(const char *name, OutputKind out) {
    Settings sd, ss;
    model_settings(&sd, EUAR_MOE_DENSE);
    model_settings(&ss, EUAR_MOE_SPARSE);
    Model *dense = model_new(name, &sd, out);
    Model *sparse = model_new(name, &ss, out);
    assert_non_null(dense);
    assert_non_null(sparse);
    assert_int_equal(dense->params.total, sparse->params.total);
    assert_memory_equal(dense->params.value, sparse->params.value,
                        sizeof(float) * dense->params.total);
    BatchData d;
    batch_fill(&d, MB, 1);
    size_t n_out = (size_t)MB * dense->out_dim;

    model_forward(dense, &d.batch, 0);
    model_forward(sparse, &d.batch, 0);
    double eval_diff = max_abs_diff(dense->out, sparse->out, n_out);
    if (eval_diff > 1e-5)
        fprintf(stderr, "%s: eval outputs differ by %.3g between dense and sparse\n", name,
                eval_diff);
    assert_true(eval_diff <= 1e-5);

    model_forward(dense, &d.batch, 1);
    model_forward(sparse, &d.batch, 1);
    double train_diff = max_abs_diff(dense->out, sparse->out, n_out);
    if (train_diff > 1e-5)
        fprintf(stderr, "%s: training outputs differ by %.3g between dense and sparse\n", name,
                train_diff);
    assert_true(train_diff <= 1e-5);
    assert_true(fabs(dense->loss.task - sparse->loss.task) <= 1e-5);
    assert_true(fabs(dense->loss.balance - sparse->loss.balance) <= 1e-5);
    assert_true(fabs(dense->loss.u - sparse->loss.u) <= 1e-5);
    if (strncmp(name, "euar", 4) == 0) {
        /* Dense averages the KL over all B E slots, sparse over the B K selected ones. The
         * dense sum covers the selected slots and more, every KL being positive, so
         * E kl_dense > K kl_sparse. */
        double dense_sum = dense->loss.kl * sd.experts, sparse_sum = sparse->loss.kl * sd.top_k;
        assert_true(dense_sum > sparse_sum);
    }
    assert_true(sparse->loss.kl == 0.0 || fabs(dense->loss.kl - sparse->loss.kl) > 1e-6);

    /* Without a KL term the unselected experts get no gradient in dense mode, so both
     * compute modes yield the same gradients. */
    if (dense->set.alpha == 0.0f) {
        model_zero_grad(dense);
        model_zero_grad(sparse);
        model_backward(dense, &d.batch);
        model_backward(sparse, &d.batch);
        double worst = 0.0;
        for (size_t i = 0; i < dense->params.total; i++) {
            double a = dense->params.grad[i], b = sparse->params.grad[i];
            worst = fmax(worst, fabs(a - b) / (1e-4 * fmax(fabs(a), fabs(b)) + 1e-6));
        }
        if (worst > 1.0)
            fprintf(stderr, "%s: dense and sparse gradients differ (%.3g of tolerance)\n", name,
                    worst);
        assert_true(worst <= 1.0);
    }
    model_free(dense);
    model_free(sparse);
}

static void dense_sparse_equal(void **state) {
    (void)state;
    for (size_t i = 0; i < EUAR_ARRAY_LEN(all_models); i++) {
        const ModelKind *kind = model_kind_find(all_models[i]);
        if (!kind->has_experts)
            continue;
        check_dense_sparse(all_models[i], EUAR_OUT_REGRESSION);
        check_dense_sparse(all_models[i], EUAR_OUT_CLASSIFICATION);
    }
}

/* ---- batch independence ---- */

/* Places row `row` of a batch of 5 at position 1 of a batch of 3 with other neighbours. Its
 * prediction must not change in evaluation. Nor in training, because eps is keyed by sample. */
static void check_batch_independent(const char *name, OutputKind out, int training) {
    Settings s;
    model_settings(&s, EUAR_MOE_DENSE);
    Model *m = model_new(name, &s, out);
    assert_non_null(m);
    int c = m->out_dim, row = 2;
    BatchData big, small;
    batch_fill(&big, MB, 2);
    batch_fill(&small, 3, 3);
    for (int i = 0; i < 3; i++)
        memcpy(small.x[i] + in_dims[i], big.x[i] + row * in_dims[i],
               sizeof(float) * in_dims[i]);
    small.y[1] = big.y[row];
    small.cls[1] = big.cls[row];
    small.sample[1] = big.sample[row];

    model_forward(m, &big.batch, training);
    float ref[NUM_CLASSES];
    memcpy(ref, m->out + (size_t)row * c, sizeof(float) * c);
    model_forward(m, &small.batch, training);
    double diff = max_abs_diff(ref, m->out + c, (size_t)c);
    if (diff > 1e-6)
        fprintf(stderr, "%s (%s): prediction moves by %.3g with its batch-mates\n", name,
                training ? "training" : "evaluation", diff);
    assert_true(diff <= 1e-6);
    model_free(m);
}

static void batch_independent(void **state) {
    (void)state;
    for (size_t i = 0; i < EUAR_ARRAY_LEN(all_models); i++)
        for (int training = 0; training <= 1; training++) {
            check_batch_independent(all_models[i], EUAR_OUT_REGRESSION, training);
            check_batch_independent(all_models[i], EUAR_OUT_CLASSIFICATION, training);
        }
}

/* ---- determinism ---- */

static void check_deterministic(const char *name, MoeCompute compute) {
    Settings s;
    model_settings(&s, compute);
    Model *a = model_new(name, &s, EUAR_OUT_CLASSIFICATION);
    Model *b = model_new(name, &s, EUAR_OUT_CLASSIFICATION);
    s.seed += 1;
    Model *other = model_new(name, &s, EUAR_OUT_CLASSIFICATION);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(other);
    BatchData d;
    batch_fill(&d, MB, 4);
    Model *ms[3] = {a, b, other};
    for (int i = 0; i < 3; i++) {
        model_forward(ms[i], &d.batch, 1);
        model_zero_grad(ms[i]);
        model_backward(ms[i], &d.batch);
    }
    size_t n_out = (size_t)MB * a->out_dim, n_par = a->params.total;
    assert_memory_equal(a->out, b->out, sizeof(float) * n_out);
    assert_memory_equal(a->params.value, b->params.value, sizeof(float) * n_par);
    assert_memory_equal(a->params.grad, b->params.grad, sizeof(float) * n_par);
    assert_true(a->loss.total == b->loss.total);
    /* Another seed gives other parameters, so the comparison above is not vacuous. */
    assert_memory_not_equal(a->params.value, other->params.value, sizeof(float) * n_par);
    model_free(a);
    model_free(b);
    model_free(other);
}

static void models_deterministic(void **state) {
    (void)state;
    for (size_t i = 0; i < EUAR_ARRAY_LEN(all_models); i++) {
        check_deterministic(all_models[i], EUAR_MOE_DENSE);
        check_deterministic(all_models[i], EUAR_MOE_SPARSE);
    }
}

int main(void) {
    backend_cpu_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(act_relu_grad),
        cmocka_unit_test(act_gelu_grad),
        cmocka_unit_test(act_none_grad),
        cmocka_unit_test(act_backward_aliased),
        cmocka_unit_test(gelu_grad_f_matches),
        cmocka_unit_test(kl_normal_derivatives),
        cmocka_unit_test(softmax_backward_grad),
        cmocka_unit_test(expert_grad_eps),
        cmocka_unit_test(expert_grad_no_eps),
        cmocka_unit_test(expert_grad_no_dz),
        cmocka_unit_test(mixture_backward_grad),
        cmocka_unit_test(mse_grad),
        cmocka_unit_test(cross_entropy_grad),
        cmocka_unit_test(linear_backward_grad),
        cmocka_unit_test(model_loss_terms),
        cmocka_unit_test(model_grad_reg_dense),
        cmocka_unit_test(model_grad_reg_sparse),
        cmocka_unit_test(model_grad_cls_dense),
        cmocka_unit_test(model_grad_cls_sparse),
        cmocka_unit_test(model_grad_relu),
        cmocka_unit_test(dense_sparse_equal),
        cmocka_unit_test(batch_independent),
        cmocka_unit_test(models_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
