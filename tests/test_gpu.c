/* The CUDA backend against the CPU backend: every operation on the same inputs, forward and
 * backward of every model, and a 5-epoch training run. Without a device (CUDA not built, no
 * driver, or no GPU) each of those tests prints why and is skipped. Three checks need no GPU
 * and run wherever the CUDA backend was built: cuRAND's Philox round function, compiled for
 * the host from the header the kernels use, against Random123; the backend's eps code against
 * rng_fill_normal; and the host grouping of the scatter-adds, consumed as their kernels do.
 *
 * Tolerances, and why:
 * - bit-equal where both sides do the same IEEE float operations in the same order (copies,
 *   gathers, scatters, bias, scale, ReLU, mixture, softmax backward, the expert backward with
 *   sigma given, Adam): nvcc builds with --fmad=false, sqrtf and division are correctly rounded
 *   on both, and the kernels sum in the CPU's order.
 * - transcendental results (expf, tanhf, logf, sinf, cosf): CUDA's single-precision functions
 *   are within 2 ulp and glibc's within 1 to 2, so 8 ulp of the value (relative 2^-20, with an
 *   absolute floor for values near zero) leaves room for one further rounding step.
 * - GEMM: relative 1e-5 * sqrt(K) of sum_p |a_ip b_pj| (for the batched GEMM K + 1, above
 *   that sum's expected size 2K/pi for N(0, 1) inputs). Rounding errors of a length-K float
 *   dot product add like a random walk, about 6e-8 * sqrt(K) of that sum, and cuBLAS orders
 *   the sum differently from OpenBLAS; 1e-5 leaves a margin of 100 but fails TF32 (2^-11).
 * - sums in double: relative 1e-12 (double rounding in a different order).
 * - models: outputs and gradients relative 1e-3 of the largest magnitude of each array,
 *   because GEMM and transcendental differences pass through several layers.
 * - 5 epochs of training: losses relative 1e-2 and metrics within 0.05 absolute (a few
 *   predictions near a class boundary may flip) of the CPU run. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/backend.h"
#include "core/common.h"
#include "core/trainer.h"
#include "tests/grad_util.h"
#include "tests/mixed_data.h"

static const Backend *gpu;
static char gpu_why[256];

/* Returns the CUDA backend, or skips the calling test with the reason. */
static const Backend *gpu_or_skip(void) {
    if (!gpu) {
        print_message("skipped: %s\n", gpu_why);
        skip();
    }
    return gpu;
}

static void cuda_built_or_skip(void) {
    if (!backend_cuda_built()) {
        print_message("skipped: bin/euar was built without the CUDA backend (no nvcc, or "
                      "GPU=0)\n");
        skip();
    }
}

/* Device copy of a host array. */
static void *to_gpu(const void *host, size_t bytes) {
    void *d = gpu->alloc(bytes);
    gpu->upload(d, host, bytes);
    return d;
}

static float *from_gpu(const float *d, size_t n) {
    float *h = xmalloc(sizeof(float) * (n ? n : 1));
    gpu->download(h, d, sizeof(float) * n);
    return h;
}

static float *random_floats(size_t n, float scale, uint32_t c0) {
    float *x = xmalloc(sizeof(float) * n);
    fill_normal(x, n, scale, c0, 77);
    return x;
}

/* Fails unless a[n] and b[n] are equal to the bit. */
static void expect_equal(const char *what, const float *cpu, const float *dev, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&cpu[i], &dev[i], sizeof(float)) != 0)
            fail_msg("%s[%zu]: cpu %.9g, gpu %.9g (expected equal bits)", what, i, cpu[i],
                     dev[i]);
}

/* Fails unless |a - b| <= rel |a| + abs_tol everywhere; prints the worst ratio. */
static void expect_close(const char *what, const float *cpu, const float *dev, size_t n,
                         double rel, double abs_tol) {
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double bound = rel * fabs((double)cpu[i]) + abs_tol;
        double ratio = fabs((double)cpu[i] - dev[i]) / bound;
        if (isnan(ratio) || ratio > worst) {
            worst = isnan(ratio) ? INFINITY : ratio;
            at = i;
        }
    }
    if (worst > 1.0)
        fail_msg("%s[%zu]: cpu %.9g, gpu %.9g, error %.2f times the tolerance", what, at,
                 cpu[at], dev[at], worst);
}

#define ULP8 (1.0 / 1048576.0) /* 8 ulp of a float relative to its value: 2^-20 */

/* Philox on the host from cuRAND's header against Random123's, over many keys and counters. */
static void philox_matches_random123(void **state) {
    (void)state;
    cuda_built_or_skip();
    for (uint32_t i = 0; i < 4096; i++) {
        RngStream st = rng_stream(0x9E3779B97F4A7C15ull * i, (RngPurpose)(1 + i % 8));
        uint32_t ctr[4] = {i * 2654435761u, ~i, i >> 3, i == 7 ? 0xFFFFFFFFu : i & 3};
        uint32_t expect[4], got[4];
        rng_block(st, ctr[0], ctr[1], ctr[2], ctr[3], expect);
        assert_int_equal(backend_cuda_philox_host(ctr, st.key, got), 0);
        assert_memory_equal(got, expect, sizeof(got));
    }
}

/* The eps code of the CUDA backend, run on the host, against rng_fill_normal: the same
 * counters and the same Box-Muller give the same bits with the same libm. */
static void normal_rows_match_cpu(void **state) {
    (void)state;
    cuda_built_or_skip();
    RngStream st = rng_substream(rng_stream(5, EUAR_RNG_REPARAM), 2);
    for (size_t n = 1; n <= 67; n += 11) {
        float expect[67], got[67];
        for (uint32_t row = 0; row < 40; row += 7) {
            rng_fill_normal(st, 123, row, expect, n);
            assert_int_equal(backend_cuda_normal_row_host(st, 123, row, got, n), 0);
            assert_memory_equal(got, expect, sizeof(float) * n);
        }
    }
}

/* The grouping that the CUDA scatter-adds read, consumed on the host the way their kernels
 * do (one destination element adds its sources in list order), against the CPU operations:
 * the result must be equal to the bit. */
static void scatter_grouping_matches_cpu(void **state) {
    (void)state;
    cuda_built_or_skip();
    const Backend *cpu = backend_cpu();
    enum { ROWS = 30, COLS = 7, N = 90 };
    int32_t idx[N], packed[3 * N + 1];
    for (int i = 0; i < N; i++)
        idx[i] = (i * 13 + i / 7) % ROWS;
    idx[5] = ROWS - 1;
    float *src = random_floats(N * COLS, 1.0f, 50), *expect = random_floats(ROWS * COLS, 1.0f, 51);
    float *got = xmalloc(sizeof(float) * ROWS * COLS);
    memcpy(got, expect, sizeof(float) * ROWS * COLS);
    cpu->scatter_add_rows(expect, COLS, src, COLS, idx, N, COLS);
    int groups = 0;
    long total = backend_cuda_group_host(idx, NULL, N, packed, EUAR_ARRAY_LEN(packed), &groups);
    assert_true(total == 2L * groups + 1 + N);
    const int32_t *uniq = packed, *offs = packed + groups, *list = packed + 2 * groups + 1;
    for (int g = 0; g < groups; g++) {
        if (g > 0)
            assert_true(uniq[g] > uniq[g - 1]);
        for (int t = offs[g] + 1; t < offs[g + 1]; t++)
            assert_true(list[t] > list[t - 1]);
        for (int c = 0; c < COLS; c++) {
            float acc = got[uniq[g] * COLS + c];
            for (int t = offs[g]; t < offs[g + 1]; t++)
                acc += src[list[t] * COLS + c];
            got[uniq[g] * COLS + c] = acc;
        }
    }
    expect_equal("grouped scatter_add_rows", expect, got, ROWS * COLS);

    /* Token gradients: positions r T + s with s < len[r], as embedding_mean_backward groups. */
    enum { B = 8, T = 5, H = 4, V = 9 };
    int32_t tok[B * T], len[B];
    unsigned char keep[B * T];
    for (int r = 0; r < B; r++) {
        len[r] = r % (T + 1);
        for (int p = 0; p < T; p++) {
            tok[r * T + p] = (r * 7 + p * 2) % V;
            keep[r * T + p] = p < len[r];
        }
    }
    float *dout = random_floats(B * H, 1.0f, 52), *demb = random_floats(V * H, 1.0f, 53);
    float *demb_got = xmalloc(sizeof(float) * V * H);
    memcpy(demb_got, demb, sizeof(float) * V * H);
    cpu->embedding_mean_backward(demb, dout, tok, len, B, T, H);
    total = backend_cuda_group_host(tok, keep, B * T, packed, EUAR_ARRAY_LEN(packed), &groups);
    assert_true(total > 0);
    offs = packed + groups;
    list = packed + 2 * groups + 1;
    for (int g = 0; g < groups; g++)
        for (int d = 0; d < H; d++) {
            float acc = demb_got[packed[g] * H + d];
            for (int t = offs[g]; t < offs[g + 1]; t++) {
                int r = list[t] / T;
                acc += 1.0f / (float)len[r] * dout[r * H + d];
            }
            demb_got[packed[g] * H + d] = acc;
        }
    expect_equal("grouped embedding_mean_backward", demb, demb_got, V * H);
    free(src);
    free(expect);
    free(got);
    free(dout);
    free(demb);
    free(demb_got);
}

static void gemm_matches_cpu(void **state) {
    (void)state;
    gpu_or_skip();
    const Backend *cpu = backend_cpu();
    enum { M = 37, N = 53, K = 129, LD = 140 };
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++) {
            float *a = random_floats(LD * LD, 1.0f, 1), *b = random_floats(LD * LD, 1.0f, 2);
            float *c = random_floats(M * LD, 1.0f, 3);
            float *da = to_gpu(a, sizeof(float) * LD * LD);
            float *db = to_gpu(b, sizeof(float) * LD * LD);
            float *dc = to_gpu(c, sizeof(float) * M * LD);
            cpu->gemm(ta, tb, M, N, K, 0.75f, a, LD, b, LD, 0.5f, c, LD);
            gpu->gemm(ta, tb, M, N, K, 0.75f, da, LD, db, LD, 0.5f, dc, LD);
            float *got = from_gpu(dc, M * LD);
            double worst = 0.0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double mag = 0.0;
                    for (int p = 0; p < K; p++) {
                        double av = ta ? a[p * LD + i] : a[i * LD + p];
                        double bv = tb ? b[j * LD + p] : b[p * LD + j];
                        mag += fabs(av * bv);
                    }
                    double bound = 1e-5 * sqrt((double)K) * (0.75 * mag + 1.0);
                    worst = fmax(worst, fabs(got[i * LD + j] - c[i * LD + j]) / bound);
                }
            print_message("gemm ta=%d tb=%d: worst error %.3f of the tolerance\n", ta, tb, worst);
            assert_true(worst <= 1.0);
            /* Columns past N stay untouched. */
            for (int i = 0; i < M; i++)
                expect_equal("gemm padding", c + i * LD + N, got + i * LD + N, LD - N);
            gpu->release(da);
            gpu->release(db);
            gpu->release(dc);
            free(a);
            free(b);
            free(c);
            free(got);
        }
}

/* The experts' layout: E products side by side in the columns of shared matrices. */
static void gemm_batched_matches_cpu(void **state) {
    (void)state;
    gpu_or_skip();
    const Backend *cpu = backend_cpu();
    enum { E = 5, B = 21, H = 48, LD = E * H };
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++) {
            int rows_a = ta ? H : B; /* a is [B, H] per expert, or [H, B] transposed */
            float *a = random_floats((size_t)rows_a * LD + H, 1.0f, 5);
            float *b = random_floats((size_t)H * LD, 1.0f, 6);
            float *c = random_floats((size_t)B * LD, 1.0f, 7);
            float *da = to_gpu(a, sizeof(float) * ((size_t)rows_a * LD + H));
            float *db = to_gpu(b, sizeof(float) * H * LD);
            float *dc = to_gpu(c, sizeof(float) * B * LD);
            int m = B, k = H;
            cpu->gemm_strided_batched(ta, tb, m, H, k, 1.0f, a, LD, H, b, LD, H, 0.5f, c, LD, H,
                                      E);
            gpu->gemm_strided_batched(ta, tb, m, H, k, 1.0f, da, LD, H, db, LD, H, 0.5f, dc, LD,
                                      H, E);
            float *got = from_gpu(dc, B * LD);
            /* Entries are sums of H products of N(0, 1) values plus half of one. */
            expect_close("gemm_strided_batched", c, got, B * LD, 0.0,
                         1e-5 * sqrt((double)H) * (H + 1.0));
            gpu->release(da);
            gpu->release(db);
            gpu->release(dc);
            free(a);
            free(b);
            free(c);
            free(got);
        }
}

static void elementwise_matches_cpu(void **state) {
    (void)state;
    gpu_or_skip();
    const Backend *cpu = backend_cpu();
    enum { R = 33, C = 70, LD = 75, N = R * LD };
    float *y = random_floats(N, 2.0f, 10), *bias = random_floats(C, 1.0f, 11);
    float *dy = to_gpu(y, sizeof(float) * N), *dbias = to_gpu(bias, sizeof(float) * C);
    cpu->bias_add(y, bias, R, C, LD);
    gpu->bias_add(dy, dbias, R, C, LD);
    float *got = from_gpu(dy, N);
    expect_equal("bias_add", y, got, N);
    free(got);
    cpu->bias_grad(bias, y, R, C, LD);
    gpu->bias_grad(dbias, dy, R, C, LD);
    got = from_gpu(dbias, C);
    expect_equal("bias_grad", bias, got, C);
    free(got);
    cpu->scale(y, -0.37f, N);
    gpu->scale(dy, -0.37f, N);
    got = from_gpu(dy, N);
    expect_equal("scale", y, got, N);
    free(got);

    float *out = xmalloc(sizeof(float) * N), *dout = gpu->alloc(sizeof(float) * N);
    const ActKind kinds[] = {EUAR_ACT_RELU, EUAR_ACT_GELU, EUAR_ACT_NONE};
    for (size_t k = 0; k < EUAR_ARRAY_LEN(kinds); k++) {
        cpu->act_forward(kinds[k], out, y, N);
        gpu->act_forward(kinds[k], dout, dy, N);
        got = from_gpu(dout, N);
        /* GELU's 1 + tanh(u) cancels for negative x, so its error is absolute there: 8 ulp
         * of 1 times 0.5 |x|, with |x| < 10 here. */
        if (kinds[k] == EUAR_ACT_GELU)
            expect_close("act_forward gelu", out, got, N, ULP8, 8e-6);
        else
            expect_equal("act_forward", out, got, N);
        free(got);
        /* In place, as dense_backward may call it. */
        float *g = random_floats(N, 1.0f, 12);
        float *dg = to_gpu(g, sizeof(float) * N);
        cpu->act_backward(kinds[k], g, g, y, N);
        gpu->act_backward(kinds[k], dg, dg, dy, N);
        got = from_gpu(dg, N);
        if (kinds[k] == EUAR_ACT_GELU)
            expect_close("act_backward gelu", g, got, N, ULP8, 8e-6);
        else
            expect_equal("act_backward", g, got, N);
        free(got);
        free(g);
        gpu->release(dg);
    }

    float *src = random_floats(N, 1.0f, 13), *dsrc = to_gpu(src, sizeof(float) * N);
    for (int accumulate = 0; accumulate <= 1; accumulate++) {
        cpu->copy_block(y, LD, src, LD, R, C, accumulate);
        gpu->copy_block(dy, LD, dsrc, LD, R, C, accumulate);
        got = from_gpu(dy, N);
        expect_equal("copy_block", y, got, N);
        free(got);
    }

    /* Adam over three steps, then g must be zero. */
    float *p = random_floats(N, 1.0f, 14), *m = xcalloc(N, sizeof(float));
    float *v = xcalloc(N, sizeof(float)), *g = random_floats(N, 0.1f, 15);
    float *dp = to_gpu(p, sizeof(float) * N), *dm = gpu->alloc(sizeof(float) * N);
    float *dv = gpu->alloc(sizeof(float) * N), *dgr = gpu->alloc(sizeof(float) * N);
    for (int t = 1; t <= 3; t++) {
        fill_normal(g, N, 0.1f, 16, (uint32_t)t);
        gpu->upload(dgr, g, sizeof(float) * N);
        cpu->adam(p, m, v, g, N, 1e-3f, 0.9f, 0.999f, 1e-8f, t == 3 ? 0.01f : 0.0f, t);
        gpu->adam(dp, dm, dv, dgr, N, 1e-3f, 0.9f, 0.999f, 1e-8f, t == 3 ? 0.01f : 0.0f, t);
    }
    got = from_gpu(dp, N);
    expect_equal("adam p", p, got, N);
    free(got);
    got = from_gpu(dv, N);
    expect_equal("adam v", v, got, N);
    free(got);
    got = from_gpu(dgr, N);
    expect_equal("adam g (zeroed)", g, got, N);
    free(got);

    /* Sums in double, with NaN propagated. */
    double s_cpu = cpu->sum(src, N), s_gpu = gpu->sum(dsrc, N);
    assert_true(fabs(s_cpu - s_gpu) <= 1e-12 * fmax(1.0, fabs(s_cpu)) * N);
    double q_cpu = cpu->sum_squares(src, N), q_gpu = gpu->sum_squares(dsrc, N);
    assert_true(fabs(q_cpu - q_gpu) <= 1e-12 * q_cpu);
    src[N / 2] = NAN;
    gpu->upload(dsrc, src, sizeof(float) * N);
    assert_true(isnan(gpu->sum(dsrc, N)));
    assert_true(isnan(gpu->sum_squares(dsrc, N)));
    assert_true(gpu->sum(dsrc, 0) == 0.0);

    const void *released[] = {dy, dbias, dout, dsrc, dp, dm, dv, dgr};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(released); i++)
        gpu->release((void *)released[i]);
    const void *freed[] = {y, bias, out, src, p, m, v, g};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(freed); i++)
        free((void *)freed[i]);
}

static void rows_match_cpu(void **state) {
    (void)state;
    gpu_or_skip();
    const Backend *cpu = backend_cpu();
    enum { ROWS = 40, COLS = 19, LD = 23, N = 57 };
    int32_t idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = (i * 7 + i / 5) % ROWS; /* repeats, out of order */
    float *src = random_floats(ROWS * LD, 1.0f, 20), *dsrc = to_gpu(src, sizeof(float) * ROWS * LD);
    float *dst = xcalloc(N * LD, sizeof(float)), *ddst = gpu->alloc(sizeof(float) * N * LD);
    cpu->gather_rows(dst, LD, src, LD, idx, N, COLS);
    gpu->gather_rows(ddst, LD, dsrc, LD, idx, N, COLS);
    float *got = from_gpu(ddst, N * LD);
    expect_equal("gather_rows", dst, got, N * LD);
    free(got);

    uint8_t u8[ROWS * LD];
    for (int i = 0; i < ROWS * LD; i++)
        u8[i] = (uint8_t)(i * 37);
    uint8_t *du8 = to_gpu(u8, sizeof(u8));
    cpu->gather_rows_u8(dst, LD, u8, LD, idx, N, COLS, 1.0f / 255.0f);
    gpu->gather_rows_u8(ddst, LD, du8, LD, idx, N, COLS, 1.0f / 255.0f);
    got = from_gpu(ddst, N * LD);
    expect_equal("gather_rows_u8", dst, got, N * LD);
    free(got);

    int32_t i32[ROWS * LD], gi_cpu[N * LD] = {0}, gi_gpu[N * LD];
    for (int i = 0; i < ROWS * LD; i++)
        i32[i] = i * 3 - 100;
    int32_t *di32 = to_gpu(i32, sizeof(i32)), *dgi = gpu->alloc(sizeof(gi_cpu));
    cpu->gather_rows_i32(gi_cpu, LD, i32, LD, idx, N, COLS);
    gpu->gather_rows_i32(dgi, LD, di32, LD, idx, N, COLS);
    gpu->download(gi_gpu, dgi, sizeof(gi_gpu));
    for (int r = 0; r < N; r++)
        assert_memory_equal(gi_cpu + r * LD, gi_gpu + r * LD, sizeof(int32_t) * COLS);

    /* Scatter with repeated destinations: the GPU must add in the CPU's order. */
    float *add = random_floats(N * LD, 1.0f, 21), *dadd = to_gpu(add, sizeof(float) * N * LD);
    cpu->scatter_add_rows(src, LD, add, LD, idx, N, COLS);
    gpu->scatter_add_rows(dsrc, LD, dadd, LD, idx, N, COLS);
    got = from_gpu(dsrc, ROWS * LD);
    expect_equal("scatter_add_rows", src, got, ROWS * LD);
    free(got);

    /* Token means, lengths 0 .. T, repeated tokens. */
    enum { B = 9, T = 6, H = 11, V = 13 };
    int32_t tok[B * T], len[B];
    for (int r = 0; r < B; r++) {
        len[r] = r % (T + 1);
        for (int s = 0; s < T; s++)
            tok[r * T + s] = (r * 5 + s * 3) % V;
    }
    float *emb = random_floats(V * H, 1.0f, 22), *demb_dev = to_gpu(emb, sizeof(float) * V * H);
    int32_t *dtok = to_gpu(tok, sizeof(tok)), *dlen = to_gpu(len, sizeof(len));
    float out[B * H], *dout = gpu->alloc(sizeof(out));
    cpu->embedding_mean_forward(out, emb, tok, len, B, T, H);
    gpu->embedding_mean_forward(dout, demb_dev, dtok, dlen, B, T, H);
    got = from_gpu(dout, B * H);
    expect_equal("embedding_mean_forward", out, got, B * H);
    free(got);
    cpu->embedding_mean_backward(emb, out, tok, len, B, T, H);
    gpu->embedding_mean_backward(demb_dev, dout, dtok, dlen, B, T, H);
    got = from_gpu(demb_dev, V * H);
    expect_equal("embedding_mean_backward", emb, got, V * H);
    free(got);

    const void *released[] = {dsrc, ddst, du8, di32, dgi, dadd, demb_dev, dtok, dlen, dout};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(released); i++)
        gpu->release((void *)released[i]);
    free(src);
    free(dst);
    free(add);
    free(emb);
}

static void router_and_losses_match_cpu(void **state) {
    (void)state;
    gpu_or_skip();
    const Backend *cpu = backend_cpu();
    enum { B = 45, E = 32, K = 3, C = 5 };
    float *logits = random_floats(B * E, 2.0f, 30), *dlog = to_gpu(logits, sizeof(float) * B * E);
    float p[B * E], gate[B * K], *dp = gpu->alloc(sizeof(p)), *dgate = gpu->alloc(sizeof(gate));
    int32_t sel[B * K], sel_gpu[B * K];
    cpu->softmax_topk(p, gate, sel, logits, B, E, K);
    gpu->softmax_topk(dp, dgate, sel_gpu, dlog, B, E, K);
    assert_memory_equal(sel, sel_gpu, sizeof(sel));
    float *got = from_gpu(dp, B * E);
    expect_close("softmax p", p, got, B * E, ULP8, 1e-12);
    free(got);
    got = from_gpu(dgate, B * K);
    expect_close("top-k gate", gate, got, B * K, ULP8, 1e-12);
    free(got);

    float *grad = random_floats(B * E, 1.0f, 31), *dgrad = to_gpu(grad, sizeof(float) * B * E);
    float dl[B * E], *ddl = gpu->alloc(sizeof(dl));
    gpu->upload(dp, p, sizeof(p)); /* the same p on both sides: the backward is exact */
    cpu->softmax_backward(dl, grad, p, B, E);
    gpu->softmax_backward(ddl, dgrad, dp, B, E);
    got = from_gpu(ddl, B * E);
    expect_equal("softmax_backward", dl, got, B * E);
    free(got);

    float *pred = random_floats(B, 1.0f, 32), *y = random_floats(B, 1.0f, 33);
    float *dpred_dev = to_gpu(pred, sizeof(float) * B), *dy = to_gpu(y, sizeof(float) * B);
    float dpred[B], *ddp = gpu->alloc(sizeof(dpred));
    double l_cpu = cpu->mse(dpred, pred, y, B, 0.5f);
    double l_gpu = gpu->mse(ddp, dpred_dev, dy, B, 0.5f);
    assert_true(fabs(l_cpu - l_gpu) <= 1e-12 * l_cpu);
    got = from_gpu(ddp, B);
    expect_equal("mse gradient", dpred, got, B);
    free(got);

    float *cl = random_floats(B * C, 3.0f, 34), *dcl = to_gpu(cl, sizeof(float) * B * C);
    int32_t cls[B];
    for (int r = 0; r < B; r++)
        cls[r] = (r * 3) % C;
    float prob[B * C], dce[B * C];
    float *dprob = gpu->alloc(sizeof(prob)), *ddce = gpu->alloc(sizeof(dce));
    l_cpu = cpu->cross_entropy(dce, prob, cl, cls, B, C, 2.0f);
    l_gpu = gpu->cross_entropy(ddce, dprob, dcl, cls, B, C, 2.0f);
    assert_true(fabs(l_cpu - l_gpu) <= 1e-6 * l_cpu);
    got = from_gpu(dprob, B * C);
    expect_close("cross_entropy prob", prob, got, B * C, ULP8, 1e-12);
    free(got);
    /* prob - 1 cancels where prob is near 1: 8 ulp of 1, times scale / B. */
    got = from_gpu(ddce, B * C);
    expect_close("cross_entropy gradient", dce, got, B * C, ULP8, 1e-6 * 2.0 / B);
    free(got);

    const void *released[] = {dlog, dp, dgate, dgrad, ddl, dpred_dev, dy, ddp, dcl, dprob, ddce};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(released); i++)
        gpu->release((void *)released[i]);
    free(logits);
    free(grad);
    free(pred);
    free(y);
    free(cl);
}

static void experts_match_cpu(void **state) {
    (void)state;
    gpu_or_skip();
    const Backend *cpu = backend_cpu();
    enum { B = 7, E = 6, K = 2, H = 37 };
    RngStream st = rng_substream(rng_stream(9, EUAR_RNG_REPARAM), 1);
    int32_t sample[B], sel[B * K];
    for (int r = 0; r < B; r++) {
        sample[r] = 100 + 13 * r;
        sel[r * K] = (r * 5) % E;
        sel[r * K + 1] = (r * 5 + 1 + r % 3) % E;
    }
    for (int sparse = 0; sparse <= 1; sparse++) {
        int s = sparse ? K : E;
        size_t rows = (size_t)B * s, plane = rows * H;
        float *eps = xmalloc(sizeof(float) * plane), *deps = gpu->alloc(sizeof(float) * plane);
        cpu->normal_experts(eps, st, 42, sample, sel, B, s, E, K, H);
        gpu->normal_experts(deps, st, 42, sample, sel, B, s, E, K, H);
        float *got = from_gpu(deps, plane);
        /* Box-Muller through logf, sqrtf, cosf and sinf: |eps| < 6, 8 ulp of 6. */
        expect_close("normal_experts", eps, got, plane, ULP8, 4e-6);
        free(got);
        gpu->upload(deps, eps, sizeof(float) * plane);

        float *y = random_floats(2 * plane, 1.5f, 40);
        float *dy_in = to_gpu(y, sizeof(float) * 2 * plane);
        float *z = xmalloc(sizeof(float) * plane), *sd = xmalloc(sizeof(float) * plane);
        float *kl = xmalloc(sizeof(float) * rows), *s2 = xmalloc(sizeof(float) * rows);
        float *dz = gpu->alloc(sizeof(float) * plane), *dsd = gpu->alloc(sizeof(float) * plane);
        float *dkl = gpu->alloc(sizeof(float) * rows), *ds2 = gpu->alloc(sizeof(float) * rows);
        cpu->expert_forward(z, sd, kl, s2, y, eps, (int)rows, H, -4.0f, 4.0f);
        gpu->expert_forward(dz, dsd, dkl, ds2, dy_in, deps, (int)rows, H, -4.0f, 4.0f);
        /* mu + sigma eps may cancel: 8 ulp of |sigma eps| < e^2 * 6 = 44. */
        got = from_gpu(dz, plane);
        expect_close("expert z", z, got, plane, ULP8, 4e-5);
        free(got);
        got = from_gpu(dsd, plane);
        expect_close("expert sd", sd, got, plane, ULP8, 0.0);
        free(got);
        /* KL and s2 sum H terms, each within 8 ulp. */
        got = from_gpu(dkl, rows);
        expect_close("expert kl", kl, got, rows, 1e-5, 1e-5);
        free(got);
        got = from_gpu(ds2, rows);
        expect_close("expert s2", s2, got, rows, 1e-5, 0.0);
        free(got);

        /* Backward with forward's sd on both sides is exact; without it, exp differs. */
        float *gz = random_floats(plane, 1.0f, 41), *dgz = to_gpu(gz, sizeof(float) * plane);
        float *wk = random_floats(rows, 1.0f, 42), *dwk = to_gpu(wk, sizeof(float) * rows);
        float *dyo = xmalloc(sizeof(float) * 2 * plane);
        float *ddyo = gpu->alloc(sizeof(float) * 2 * plane);
        gpu->upload(dsd, sd, sizeof(float) * plane);
        cpu->expert_backward(dyo, gz, wk, wk, y, sd, eps, (int)rows, H, -4.0f, 4.0f);
        gpu->expert_backward(ddyo, dgz, dwk, dwk, dy_in, dsd, deps, (int)rows, H, -4.0f, 4.0f);
        got = from_gpu(ddyo, 2 * plane);
        expect_equal("expert_backward", dyo, got, 2 * plane);
        free(got);
        cpu->expert_backward(dyo, NULL, wk, NULL, y, NULL, NULL, (int)rows, H, -4.0f, 4.0f);
        gpu->expert_backward(ddyo, NULL, dwk, NULL, dy_in, NULL, NULL, (int)rows, H, -4.0f, 4.0f);
        /* Its two terms, each up to about 100 here, may cancel: 8 ulp of 100. */
        got = from_gpu(ddyo, 2 * plane);
        expect_close("expert_backward without sd", dyo, got, 2 * plane, ULP8, 1e-4);
        free(got);

        /* Mixture over the slots, zero weights included. */
        float *w = random_floats(rows, 1.0f, 43);
        for (size_t i = 0; i < rows; i += 3)
            w[i] = 0.0f;
        float *dw_in = to_gpu(w, sizeof(float) * rows);
        gpu->upload(dz, z, sizeof(float) * plane);
        enum { LDO = H + 5 };
        float out[B * LDO] = {0}, *dout = to_gpu(out, sizeof(out));
        cpu->mixture_forward(out, LDO, w, z, B, s, H);
        gpu->mixture_forward(dout, LDO, dw_in, dz, B, s, H);
        got = from_gpu(dout, B * LDO);
        expect_equal("mixture_forward", out, got, B * LDO);
        free(got);
        float *gw = xmalloc(sizeof(float) * rows), *dgw = gpu->alloc(sizeof(float) * rows);
        cpu->mixture_backward(gz, gw, out, LDO, w, z, B, s, H);
        gpu->mixture_backward(dgz, dgw, dout, LDO, dw_in, dz, B, s, H);
        got = from_gpu(dgz, plane);
        expect_equal("mixture_backward dz", gz, got, plane);
        free(got);
        got = from_gpu(dgw, rows);
        expect_equal("mixture_backward dw", gw, got, rows);
        free(got);

        const void *released[] = {deps, dy_in, dz, dsd, dkl, ds2, dgz, dwk, ddyo, dw_in, dout, dgw};
        for (size_t i = 0; i < EUAR_ARRAY_LEN(released); i++)
            gpu->release((void *)released[i]);
        const void *freed[] = {eps, y, z, sd, kl, s2, gz, wk, dyo, w, gw};
        for (size_t i = 0; i < EUAR_ARRAY_LEN(freed); i++)
            free((void *)freed[i]);
    }
}

/* Uploads the first `b` training samples of d as a batch. Returns the device buffers to free
 * in bufs[0..3). */
static Batch batch_upload(const Backend *be, const MixedData *t, int b, void *bufs[4]) {
    const SplitData *s = &t->data.train;
    Batch batch;
    memset(&batch, 0, sizeof(batch));
    batch.b = b;
    float *x0 = be->alloc(sizeof(float) * b * DENSE_DIM);
    be->upload(x0, s->x[0], sizeof(float) * b * DENSE_DIM);
    float *x1 = be->alloc(sizeof(float) * b * IMAGE_DIM);
    float *img = xmalloc(sizeof(float) * b * IMAGE_DIM);
    for (int i = 0; i < b * IMAGE_DIM; i++)
        img[i] = s->u8[1][i] / 255.0f;
    be->upload(x1, img, sizeof(float) * b * IMAGE_DIM);
    free(img);
    int32_t *tok = be->alloc(sizeof(int32_t) * b * (TOKEN_STEPS + 1));
    be->upload(tok, s->tok[2], sizeof(int32_t) * b * TOKEN_STEPS);
    be->upload(tok + b * TOKEN_STEPS, s->len[2], sizeof(int32_t) * b);
    float *y = be->alloc(sizeof(float) * b);
    if (s->y)
        be->upload(y, s->y, sizeof(float) * b);
    batch.x[0] = x0;
    batch.x[1] = x1;
    batch.tok[2] = tok;
    batch.len[2] = tok + b * TOKEN_STEPS;
    batch.y = s->y ? y : NULL;
    batch.cls = s->cls;
    static int32_t sample[64];
    for (int i = 0; i < b; i++)
        sample[i] = i;
    batch.sample = sample;
    batch.step = 3;
    batch.epoch = 2;
    batch.epochs = 5;
    bufs[0] = x0;
    bufs[1] = x1;
    bufs[2] = tok;
    bufs[3] = y;
    return batch;
}

/* Compares an array relative to its largest magnitude. */
static void expect_close_scaled(const char *what, const char *model, const float *cpu,
                                const float *dev, size_t n, double rel) {
    double scale = 0.0, worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)cpu[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)cpu[i] - dev[i]);
        if (isnan(d) || d > worst) {
            worst = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    if (worst > rel * scale + 1e-12)
        fail_msg("%s %s[%zu]: cpu %.9g, gpu %.9g; error %.3g over the scale %.3g", model, what,
                 at, cpu[at], dev[at], worst, scale);
}

static void model_pass_matches(const char *name, const char *compute, int classification) {
    MixedData t;
    mixed_make(&t, classification);
    Settings s;
    settings_default(&s);
    s.hidden = 16;
    s.experts = 6;
    s.top_k = 3;
    settings_set_kv(&s, "moe_compute", compute);
    ModelShape shape = t.data.shape;
    shape.max_batch = 24;
    shape.num_train = t.data.train.n;
    const Backend *be[2] = {backend_cpu(), gpu};
    Model *m[2];
    void *bufs[2][4];
    for (int i = 0; i < 2; i++) {
        m[i] = model_create(name, &s, &shape, be[i]);
        assert_non_null(m[i]);
        Batch batch = batch_upload(be[i], &t, 24, bufs[i]);
        model_forward(m[i], &batch, 1);
        model_backward(m[i], &batch);
    }
    double lc = m[0]->loss.total, lg = m[1]->loss.total;
    print_message("%s (%s): loss cpu %.9g, gpu %.9g\n", name, compute, lc, lg);
    assert_true(fabs(lc - lg) <= 1e-4 * fabs(lc) + 1e-9);
    size_t n_out = (size_t)24 * m[0]->out_dim, n_par = m[0]->params.total;
    float *out_gpu = from_gpu(m[1]->out, n_out), *grad_gpu = from_gpu(m[1]->params.grad, n_par);
    expect_close_scaled("output", name, m[0]->out, out_gpu, n_out, 1e-3);
    /* Each parameter tensor on its own scale, so small tensors are not hidden by large. */
    for (int e = 0; e < m[0]->params.count; e++) {
        const ParamEntry *p = &m[0]->params.entries[e];
        expect_close_scaled(p->name, name, m[0]->params.grad + p->offset, grad_gpu + p->offset,
                            p->count, 1e-3);
    }
    free(out_gpu);
    free(grad_gpu);
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < 4; k++)
            be[i]->release(bufs[i][k]);
        model_free(m[i]);
    }
    mixed_free(&t);
}

static void models_match_cpu(void **state) {
    (void)state;
    gpu_or_skip();
    char names[512];
    snprintf(names, sizeof(names), "%s", model_names());
    for (char *name = strtok(names, ", "); name; name = strtok(NULL, ", ")) {
        char why[256];
        int classification = !model_supports_task(name, 0, why, sizeof(why));
        model_pass_matches(name, "dense", classification);
        if (model_kind_find(name)->has_experts)
            model_pass_matches(name, "sparse", classification);
    }
}

static void training_matches_cpu(void **state) {
    (void)state;
    gpu_or_skip();
    const char *models[] = {"euar", "tmc"};
    for (int c = 0; c < 2; c++) {
        MixedData t;
        mixed_make(&t, c);
        Settings s;
        settings_default(&s);
        s.epochs = 5;
        s.hidden = 16;
        s.experts = 4;
        s.top_k = 2;
        TrainResult r[2];
        assert_int_equal(train_run(models[c], &s, &t.data, backend_cpu(), NULL, &r[0]), 0);
        assert_int_equal(train_run(models[c], &s, &t.data, gpu, NULL, &r[1]), 0);
        assert_int_equal(r[0].epochs_run, 5);
        assert_int_equal(r[1].epochs_run, 5);
        for (int e = 0; e < 5; e++) {
            double a = r[0].curve[e].valid_loss, b = r[1].curve[e].valid_loss;
            print_message("%s epoch %d: valid loss cpu %.6f, gpu %.6f\n", models[c], e + 1, a, b);
            assert_true(fabs(a - b) <= 1e-2 * fabs(a));
            a = r[0].curve[e].train_loss;
            b = r[1].curve[e].train_loss;
            assert_true(fabs(a - b) <= 1e-2 * fabs(a));
        }
        for (int i = 0; i < r[0].test.count; i++) {
            double a = r[0].test.values[i], b = r[1].test.values[i];
            if (strstr(r[0].test.names[i], "mae") || strstr(r[0].test.names[i], "corr"))
                assert_true(fabs(a - b) <= 1e-2 * fmax(1.0, fabs(a)));
            else if (fabs(a - b) > 0.05)
                fail_msg("%s test %s: cpu %.4f, gpu %.4f", models[c], r[0].test.names[i], a, b);
        }
        train_result_free(&r[0]);
        train_result_free(&r[1]);
        mixed_free(&t);
    }
}

int main(void) {
    log_set_level(EUAR_LOG_WARN);
    if (backend_cuda_device_count(gpu_why, sizeof(gpu_why)) > 0) {
        gpu = backend_cuda();
        if (!gpu)
            snprintf(gpu_why, sizeof(gpu_why), "%s", err_get());
    }
    if (!gpu)
        printf("test_gpu: no GPU tests will run: %s\n", gpu_why);
    /* The operation-level tests come first; TEST_GPU_OPS=1 runs only those, a short pass for
     * EUAR_CUDA_SYNC=1 or compute-sanitizer. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(philox_matches_random123),
        cmocka_unit_test(normal_rows_match_cpu),
        cmocka_unit_test(scatter_grouping_matches_cpu),
        cmocka_unit_test(gemm_matches_cpu),
        cmocka_unit_test(gemm_batched_matches_cpu),
        cmocka_unit_test(elementwise_matches_cpu),
        cmocka_unit_test(rows_match_cpu),
        cmocka_unit_test(router_and_losses_match_cpu),
        cmocka_unit_test(experts_match_cpu),
        cmocka_unit_test(models_match_cpu),
        cmocka_unit_test(training_matches_cpu),
    };
    size_t count = sizeof(tests) / sizeof(tests[0]);
    const char *ops_only = getenv("TEST_GPU_OPS");
    if (ops_only && strcmp(ops_only, "1") == 0)
        count -= 2;
    return _cmocka_run_group_tests("test_gpu", tests, count, NULL, NULL);
}
