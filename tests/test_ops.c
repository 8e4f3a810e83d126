/* Values of the CPU backend operations against direct formulas: GEMM with every transpose,
 * bias, activations, row copies, softmax with top-k, Gaussian experts, mixture, the eps
 * draws, task losses, Adam and reductions. The gradients are checked in test_grad.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/ops.h"
#include "tests/grad_util.h"

static double max_abs_diff(const float *a, const double *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

/* C = alpha op(A) op(B) + beta C with padded leading dimensions, all four transposes. */
static void gemm_transposes(void **state) {
    (void)state;
    enum { M = 3, N = 4, K = 5, LD = 9 };
    const Backend *be = backend_cpu();
    float a[LD * LD], b[LD * LD], c[M * LD], c0[M * LD];
    fill_normal(a, LD * LD, 1.0f, 1, 0);
    fill_normal(b, LD * LD, 1.0f, 1, 1);
    fill_normal(c0, M * LD, 1.0f, 1, 2);
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++) {
            memcpy(c, c0, sizeof(c));
            be->gemm(ta, tb, M, N, K, 0.5f, a, LD, b, LD, 2.0f, c, LD);
            double worst = 0.0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double sum = 0.0;
                    for (int p = 0; p < K; p++) {
                        double av = ta ? a[p * LD + i] : a[i * LD + p];
                        double bv = tb ? b[j * LD + p] : b[p * LD + j];
                        sum += av * bv;
                    }
                    double expect = 0.5 * sum + 2.0 * c0[i * LD + j];
                    worst = fmax(worst, fabs(c[i * LD + j] - expect));
                }
            assert_true(worst < 1e-5);
            /* Columns past N belong to the caller and stay untouched. */
            for (int i = 0; i < M; i++)
                assert_memory_equal(c + i * LD + N, c0 + i * LD + N, sizeof(float) * (LD - N));
        }
}

static void bias_add_and_grad(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    float y[2 * 4] = {1, 2, 3, 99, 4, 5, 6, 99};
    float bias[3] = {0.5f, -1.0f, 2.0f};
    be->bias_add(y, bias, 2, 3, 4);
    const float expect[8] = {1.5f, 1.0f, 5.0f, 99, 4.5f, 4.0f, 8.0f, 99};
    assert_memory_equal(y, expect, sizeof(y));
    float dbias[3] = {1.0f, 1.0f, 1.0f};
    be->bias_grad(dbias, y, 2, 3, 4);
    assert_float_equal(dbias[0], 1.0f + 1.5f + 4.5f, 1e-6);
    assert_float_equal(dbias[1], 1.0f + 1.0f + 4.0f, 1e-6);
    assert_float_equal(dbias[2], 1.0f + 5.0f + 8.0f, 1e-6);
}

static void act_forward_values(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    float x[4] = {-2.0f, -0.0f, 0.5f, 1.0f}, y[4];
    be->act_forward(EUAR_ACT_RELU, y, x, 4);
    assert_float_equal(y[0], 0.0f, 0.0f);
    assert_float_equal(y[2], 0.5f, 0.0f);
    be->act_forward(EUAR_ACT_NONE, y, x, 4);
    assert_memory_equal(y, x, sizeof(x));
    /* Tanh-approximate GELU at 1: 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) = 0.841192. */
    be->act_forward(EUAR_ACT_GELU, y, x, 4);
    assert_float_equal(y[3], 0.841192f, 1e-6);
    assert_float_equal(y[1], 0.0f, 0.0f);
    assert_float_equal(y[0], -2.0f * 0.5f * (1.0f + tanhf(0.7978845608f * (-2.0f - 0.357720f))),
                       1e-6);
}

static void rows_gather_scatter_copy(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    float src[3 * 4], dst[4 * 5];
    for (int i = 0; i < 12; i++)
        src[i] = (float)i;
    const int32_t idx[4] = {2, 0, 2, 1};
    be->gather_rows(dst, 5, src, 4, idx, 4, 3);
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++)
            assert_float_equal(dst[i * 5 + c], src[idx[i] * 4 + c], 0.0f);

    float acc[3 * 4] = {0};
    be->scatter_add_rows(acc, 4, dst, 5, idx, 4, 3);
    /* Row 2 is the target twice and sums both copies. */
    assert_float_equal(acc[2 * 4 + 1], 2.0f * src[2 * 4 + 1], 0.0f);
    assert_float_equal(acc[0 * 4 + 2], src[0 * 4 + 2], 0.0f);
    assert_float_equal(acc[1 * 4 + 0], src[1 * 4 + 0], 0.0f);
    assert_float_equal(acc[0 * 4 + 3], 0.0f, 0.0f);

    float block[2 * 3] = {1, 1, 1, 1, 1, 1};
    be->copy_block(block, 3, src, 4, 2, 2, 1);
    assert_float_equal(block[0 * 3 + 1], 1.0f + src[1], 0.0f);
    assert_float_equal(block[1 * 3 + 0], 1.0f + src[4], 0.0f);
    assert_float_equal(block[1 * 3 + 2], 1.0f, 0.0f);
    be->copy_block(block, 3, src, 4, 2, 2, 0);
    assert_float_equal(block[1 * 3 + 1], src[5], 0.0f);
}

/* Softmax rows sum to 1 even at extreme logits. Top-k comes in descending order with ties to
 * the lower index, and the gate values are the kept probabilities. */
static void softmax_topk_order(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    enum { B = 3, E = 5, K = 3 };
    const float logits[B * E] = {
        0.1f, 2.0f, -1.0f, 0.5f, 1.0f,          /* order 1, 4, 3 */
        1.0f, 1.0f, 1.0f, 0.0f, 1.0f,           /* ties: 0, 1, 2 */
        1000.0f, -1000.0f, 999.0f, 0.0f, 998.0f, /* order 0, 2, 4, no overflow */
    };
    float p[B * E], gate[B * K];
    int32_t sel[B * K];
    be->softmax_topk(p, gate, sel, logits, B, E, K);
    const int32_t expect[B * K] = {1, 4, 3, 0, 1, 2, 0, 2, 4};
    assert_memory_equal(sel, expect, sizeof(expect));
    for (int r = 0; r < B; r++) {
        double total = 0.0;
        for (int j = 0; j < E; j++) {
            assert_false(isnan(p[r * E + j]));
            total += p[r * E + j];
        }
        assert_true(fabs(total - 1.0) < 1e-6);
        for (int t = 0; t < K; t++)
            assert_float_equal(gate[r * K + t], p[r * E + sel[r * K + t]], 0.0f);
    }
    /* p_1 / p_0 of the first row is e^1.9. */
    assert_true(fabs(p[1] / p[0] - exp(1.9)) < 1e-4 * exp(1.9));
    assert_float_equal(p[2 * E + 0], 1.0f / (1.0f + expf(-1.0f) + expf(-2.0f)), 1e-6);
}

/* z = mu + exp(lv / 2) eps with lv clamped, kl = sum_d KL, s2 = mean_d exp(lv). */
static void expert_forward_values(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    enum { R = 3, H = 4 };
    const float lo = -2.0f, hi = 1.5f;
    float y[R * 2 * H], eps[R * H], z[R * H], kl[R], s2[R];
    fill_normal(y, R * 2 * H, 1.5f, 2, 0);
    fill_normal(eps, R * H, 1.0f, 2, 1);
    y[H] = -5.0f;    /* below lv_min */
    y[H + 1] = 4.0f; /* above lv_max */
    float sd[R * H];
    be->expert_forward(z, sd, kl, s2, y, eps, R, H, lo, hi);
    double ez[R * H], ekl[R], es2[R];
    for (int r = 0; r < R; r++) {
        ekl[r] = 0.0;
        es2[r] = 0.0;
        for (int d = 0; d < H; d++) {
            double mu = y[r * 2 * H + d], raw = y[r * 2 * H + H + d];
            double lv = raw;
            if (lv < lo)
                lv = lo;
            if (lv > hi)
                lv = hi;
            ez[r * H + d] = mu + exp(lv / 2.0) * eps[r * H + d];
            ekl[r] += 0.5 * (mu * mu + exp(lv) - 1.0 - lv);
            es2[r] += exp(lv) / H;
        }
    }
    assert_true(max_abs_diff(z, ez, R * H) < 1e-5);
    assert_true(max_abs_diff(kl, ekl, R) < 1e-4);
    assert_true(max_abs_diff(s2, es2, R) < 1e-5);
    for (int r = 0; r < R; r++)
        for (int d = 0; d < H; d++) {
            double lv = fmin(fmax(y[r * 2 * H + H + d], lo), hi);
            assert_true(fabs(sd[r * H + d] - exp(lv / 2.0)) < 1e-6);
        }

    /* Without eps, z is the mean, and kl and s2 may be omitted. */
    be->expert_forward(z, NULL, NULL, NULL, y, NULL, R, H, lo, hi);
    for (int r = 0; r < R; r++)
        for (int d = 0; d < H; d++)
            assert_float_equal(z[r * H + d], y[r * 2 * H + d], 0.0f);
}

static void mixture_forward_values(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    enum { B = 2, S = 3, H = 2, LDO = 4 };
    const float w[B * S] = {0.5f, 0.0f, 0.25f, 0.0f, 1.0f, 0.0f};
    float z[B * S * H];
    fill_normal(z, B * S * H, 1.0f, 3, 0);
    float out[B * LDO] = {7, 7, 9, 9, 7, 7, 9, 9};
    be->mixture_forward(out, LDO, w, z, B, S, H);
    for (int d = 0; d < H; d++) {
        assert_float_equal(out[d], 0.5f * z[d] + 0.25f * z[2 * H + d], 1e-6);
        assert_float_equal(out[LDO + d], z[(S + 1) * H + d], 0.0f);
    }
    assert_float_equal(out[2], 9.0f, 0.0f);
    assert_float_equal(out[LDO + 3], 9.0f, 0.0f);
}

/* The eps of (step, sample, expert) is the same whether all experts run (slot = expert,
 * unselected slots zero) or only the selected ones (slot t contains expert sel[t]), and other
 * steps or samples draw other values. */
static void normal_experts_keys(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    enum { B = 2, E = 4, K = 2, H = 6 };
    RngStream st = rng_stream(5, EUAR_RNG_REPARAM);
    const int32_t sample[B] = {17, 3};
    const int32_t sel[B * K] = {3, 1, 0, 2};
    float dense[B * E * H], sparse[B * K * H], later[B * E * H];
    be->normal_experts(dense, st, 4, sample, sel, B, E, E, K, H);
    be->normal_experts(sparse, st, 4, sample, sel, B, K, E, K, H);
    for (int r = 0; r < B; r++)
        for (int t = 0; t < K; t++)
            assert_memory_equal(sparse + (r * K + t) * H, dense + (r * E + sel[r * K + t]) * H,
                                sizeof(float) * H);
    /* Row 0 leaves experts 0 and 2 unselected, row 1 experts 1 and 3. */
    const int unselected[B * K] = {0, 2, 1, 3};
    for (int r = 0; r < B; r++)
        for (int t = 0; t < K; t++)
            for (int d = 0; d < H; d++)
                assert_float_equal(dense[(r * E + unselected[r * K + t]) * H + d], 0.0f, 0.0f);
    be->normal_experts(later, st, 5, sample, sel, B, E, E, K, H);
    assert_memory_not_equal(dense, later, sizeof(dense));

    /* With K = E every expert is selected and S = E is the dense layout: slot j holds expert
     * j whatever the order of sel, the same draw as when only expert j is selected. */
    enum { E2 = 2 };
    const int32_t sel_all[E2] = {1, 0}, sel_one[1] = {0};
    float all[E2 * H], one_expert[H];
    be->normal_experts(all, st, 4, sample, sel_all, 1, E2, E2, E2, H);
    be->normal_experts(one_expert, st, 4, sample, sel_one, 1, 1, E2, 1, H);
    assert_memory_equal(all, one_expert, sizeof(one_expert));
    /* Rows 0 and 1 select different experts and have other samples: their draws differ. */
    assert_memory_not_equal(sparse, sparse + K * H, sizeof(float) * K * H);

    /* Mean and variance of many draws are near 0 and 1 (standard errors 0.01 and 0.014). */
    enum { N = 10000 };
    float *many = malloc(sizeof(float) * N);
    assert_non_null(many);
    const int32_t one[1] = {0}, first[1] = {0};
    be->normal_experts(many, st, 0, one, first, 1, 1, 1, 1, N);
    double mean = be->sum(many, N) / N;
    double var = be->sum_squares(many, N) / N - mean * mean;
    assert_true(fabs(mean) < 0.05);
    assert_true(fabs(var - 1.0) < 0.07);
    free(many);
}

static void task_loss_values(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    const float pred[2] = {1.0f, 2.0f}, y[2] = {0.0f, 0.0f};
    float dpred[2];
    assert_true(fabs(be->mse(dpred, pred, y, 2, 3.0f) - 2.5) < 1e-12);
    /* d/dpred of 3 mean (pred - y)^2 = 3 * 2 (pred - y) / B. */
    assert_float_equal(dpred[0], 3.0f, 1e-6);
    assert_float_equal(dpred[1], 6.0f, 1e-6);

    /* Logits (0, ln 3) give p = (1/4, 3/4); class 1 costs ln(4/3), class 0 ln 4. A logit of
     * 1000 must not overflow. */
    const float logits[3 * 2] = {0.0f, logf(3.0f), 0.0f, logf(3.0f), 1000.0f, 0.0f};
    const int32_t cls[3] = {1, 0, 0};
    float prob[6], dl[6];
    double loss = be->cross_entropy(dl, prob, logits, cls, 3, 2, 1.0f);
    assert_true(fabs(loss - (log(4.0 / 3.0) + log(4.0) + 0.0) / 3.0) < 1e-6);
    assert_float_equal(prob[0], 0.25f, 1e-6);
    assert_float_equal(prob[1], 0.75f, 1e-6);
    assert_float_equal(dl[0], 0.25f / 3.0f, 1e-6);
    assert_float_equal(dl[1], (0.75f - 1.0f) / 3.0f, 1e-6);
    assert_float_equal(dl[2], (0.25f - 1.0f) / 3.0f, 1e-6);
    assert_false(isnan(dl[4]));
    assert_float_equal(dl[4], 0.0f, 1e-6);

    /* Without a gradient buffer only the loss is computed. */
    assert_true(fabs(be->cross_entropy(NULL, prob, logits, cls, 3, 2, 1.0f) - loss) < 1e-12);
}

/* Two Adam steps against Kingma and Ba (2015), algorithm 1, with decoupled decay. */
static void adam_two_steps(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    float p[2] = {1.0f, -2.0f}, m[2] = {0}, v[2] = {0};
    const float g1[2] = {0.5f, -1.0f}, g2[2] = {0.25f, 2.0f};
    float g[2];
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
    double ep[2] = {1.0, -2.0}, em[2] = {0}, ev[2] = {0};
    const float *gs[2] = {g1, g2};
    for (int t = 1; t <= 2; t++) {
        memcpy(g, gs[t - 1], sizeof(g));
        be->adam(p, m, v, g, 2, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, t);
        /* Adam consumes the gradient: it is zero afterwards. */
        assert_true(g[0] == 0.0f);
        assert_true(g[1] == 0.0f);
        for (int i = 0; i < 2; i++) {
            double grad = gs[t - 1][i];
            em[i] = b1 * em[i] + (1 - b1) * grad;
            ev[i] = b2 * ev[i] + (1 - b2) * grad * grad;
            double mhat = em[i] / (1 - pow(b1, t)), vhat = ev[i] / (1 - pow(b2, t));
            ep[i] -= lr * (mhat / (sqrt(vhat) + eps) + wd * ep[i]);
        }
    }
    assert_true(max_abs_diff(p, ep, 2) < 1e-6);
    assert_true(max_abs_diff(m, em, 2) < 1e-6);
    /* 1 - 0.999f is 1.3e-5 off 1e-3 in float32, so v (about 5e-3) is off by up to 7e-8. */
    assert_true(max_abs_diff(v, ev, 2) < 2e-7);
}

static void sum_and_nan(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    float x[4] = {1.0f, -2.0f, 3.0f, 0.5f};
    assert_true(be->sum(x, 4) == 2.5);
    assert_true(be->sum_squares(x, 4) == 14.25);
    x[2] = NAN;
    assert_true(isnan(be->sum(x, 4)));
    assert_true(isnan(be->sum_squares(x, 4)));
}

static void alloc_zero_filled(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    float *p = be->alloc(sizeof(float) * 37);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    for (int i = 0; i < 37; i++)
        assert_float_equal(p[i], 0.0f, 0.0f);
    p[3] = 2.0f;
    be->zero(p, sizeof(float) * 37);
    assert_float_equal(p[3], 0.0f, 0.0f);
    float host[2] = {4.0f, 5.0f}, back[2];
    be->upload(p, host, sizeof(host));
    be->download(back, p, sizeof(back));
    assert_memory_equal(host, back, sizeof(host));
    be->scale(p, -2.0f, 2);
    assert_float_equal(p[1], -10.0f, 0.0f);
    be->release(p);
}

int main(void) {
    backend_cpu_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gemm_transposes),
        cmocka_unit_test(bias_add_and_grad),
        cmocka_unit_test(act_forward_values),
        cmocka_unit_test(rows_gather_scatter_copy),
        cmocka_unit_test(softmax_topk_order),
        cmocka_unit_test(expert_forward_values),
        cmocka_unit_test(mixture_forward_values),
        cmocka_unit_test(normal_experts_keys),
        cmocka_unit_test(task_loss_values),
        cmocka_unit_test(adam_two_steps),
        cmocka_unit_test(sum_and_nan),
        cmocka_unit_test(alloc_zero_filled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
