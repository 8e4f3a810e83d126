/* The tokens encoder: mean of learned embeddings over the valid tokens. Gradient checks of
 * every model with a tokens modality, padding that never matters, and a run that learns. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/trainer.h"
#include "tests/grad_util.h"

enum { B = 5, T = 6, V = 9, D = 4, H = 5 };

/* Two modalities: token ids (modality 0) and a dense row (modality 1). */
typedef struct {
    int32_t tok[B * T], len[B], cls[B];
    float x[B * D], y[B];
    Batch batch;
} TokenBatch;

static ModelShape token_shape(int classification) {
    ModelShape s;
    memset(&s, 0, sizeof(s));
    s.num_modalities = 2;
    s.in_dim[0] = T;
    s.input[0] = EUAR_INPUT_TOKENS;
    s.vocab[0] = V;
    s.in_dim[1] = D;
    snprintf(s.names[0], 32, "text");
    snprintf(s.names[1], 32, "image");
    s.output = classification ? EUAR_OUT_CLASSIFICATION : EUAR_OUT_REGRESSION;
    s.num_classes = classification ? 3 : 0;
    s.max_batch = B;
    s.num_train = B;
    return s;
}

static void token_batch_fill(TokenBatch *tb) {
    memset(tb, 0, sizeof(*tb));
    RngStream st = rng_stream(5, EUAR_RNG_TEST);
    for (int r = 0; r < B; r++) {
        tb->len[r] = r == 0 ? 0 : 1 + (int)rng_below(st, 1, (uint32_t)r, 0, T);
        for (int t = 0; t < tb->len[r]; t++)
            tb->tok[r * T + t] = 1 + (int)rng_below(st, 2, (uint32_t)r, (uint32_t)t, V - 1);
        tb->cls[r] = r % 3;
    }
    fill_normal(tb->x, B * D, 1.0f, 30, 0);
    fill_normal(tb->y, B, 1.0f, 31, 0);
    Batch *b = &tb->batch;
    b->b = B;
    b->tok[0] = tb->tok;
    b->len[0] = tb->len;
    b->x[1] = tb->x;
    b->y = tb->y;
    b->cls = tb->cls;
    static int32_t samples[B] = {0, 1, 2, 3, 4};
    b->sample = samples;
    b->step = 3;
    b->epoch = 1;
    b->epochs = 2;
}

static void check_model(const char *name, int classification) {
    Settings s;
    settings_default(&s);
    s.hidden = H;
    s.experts = 4;
    s.top_k = 2;
    s.alpha = 0.3f;
    s.beta = 0.2f;
    s.lambda = 0.5f;
    s.activation = EUAR_ACT_GELU;
    ModelShape shape = token_shape(classification);
    Model *m = model_create(name, &s, &shape, backend_cpu());
    assert_non_null(m);
    TokenBatch tb;
    token_batch_fill(&tb);

    model_forward(m, &tb.batch, 1);
    model_zero_grad(m);
    model_backward(m, &tb.batch);
    /* Every coordinate of the embedding and its bias against central differences. */
    const ParamEntry *emb = NULL, *bias = NULL;
    for (int i = 0; i < m->params.count; i++) {
        if (strcmp(m->params.entries[i].name, "text.encoder.embedding") == 0)
            emb = &m->params.entries[i];
        if (strcmp(m->params.entries[i].name, "text.encoder.b") == 0)
            bias = &m->params.entries[i];
    }
    assert_non_null(emb);
    assert_non_null(bias);
    char what[64];
    snprintf(what, sizeof(what), "%s tokens encoder", name);
    GradCheck g = grad_check_start(what, 1e-2, 1.5e-4);
    const ParamEntry *check[2] = {emb, bias};
    double grad_norm = 0.0;
    for (int c = 0; c < 2; c++)
        for (size_t j = 0; j < check[c]->count; j++) {
            float *p = m->params.value + check[c]->offset + j;
            double analytic = m->params.grad[check[c]->offset + j];
            float saved = *p, step = 1e-3f;
            *p = saved + step;
            model_forward(m, &tb.batch, 1);
            double plus = m->loss.total;
            *p = saved - step;
            model_forward(m, &tb.batch, 1);
            double minus = m->loss.total;
            *p = saved;
            grad_check_add(&g, (long)j, analytic, (plus - minus) / (2.0 * step));
            grad_norm += analytic * analytic;
        }
    print_message("%s: worst ratio %.3f at %ld (analytic %.3g, numeric %.3g)\n", what,
                  g.worst_ratio, g.worst_index, g.worst_analytic, g.worst_numeric);
    assert_true(g.worst_ratio <= 1.0);
    assert_true(grad_norm > 1e-8);

    /* Rows of tokens that no sample uses get no gradient: token 0 is padding only. */
    for (int d = 0; d < H; d++)
        assert_true(m->params.grad[emb->offset + d] == 0.0f);
    model_free(m);
}

static void euar_tokens_gradients(void **state) {
    check_model("euar", 0);
    check_model("euar", 1);
}

static void baselines_tokens_gradients(void **state) {
    check_model("concat", 1);
    check_model("late", 0);
    check_model("mlp-moe", 1);
    check_model("tmc", 1);
}

static void padding_never_matters(void **state) {
    Settings s;
    settings_default(&s);
    s.hidden = H;
    s.experts = 4;
    s.top_k = 2;
    ModelShape shape = token_shape(0);
    Model *m = model_create("euar", &s, &shape, backend_cpu());
    TokenBatch tb;
    token_batch_fill(&tb);
    model_forward(m, &tb.batch, 0);
    float before[B];
    memcpy(before, m->out, sizeof(before));
    for (int r = 0; r < B; r++)
        for (int t = tb.len[r]; t < T; t++)
            tb.tok[r * T + t] = V - 1;
    model_forward(m, &tb.batch, 0);
    assert_memory_equal(before, m->out, sizeof(before));
    model_free(m);
}

/* The class is the token range a sample draws from; the dense row is pure noise. */
static void tokens_model_learns(void **state) {
    enum { N = 300, TT = 8, VV = 40 };
    static int32_t tok[3][N * TT], len[3][N], cls[3][N];
    static float x[3][N * 3];
    TrainData d;
    memset(&d, 0, sizeof(d));
    d.shape.num_modalities = 2;
    d.shape.in_dim[0] = TT;
    d.shape.input[0] = EUAR_INPUT_TOKENS;
    d.shape.vocab[0] = VV;
    d.shape.in_dim[1] = 3;
    snprintf(d.shape.names[0], 32, "text");
    snprintf(d.shape.names[1], 32, "noise");
    d.shape.output = EUAR_OUT_CLASSIFICATION;
    d.shape.num_classes = 3;
    SplitData *splits[3] = {&d.train, &d.valid, &d.test};
    RngStream st = rng_stream(9, EUAR_RNG_TEST);
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < N; i++) {
            cls[s][i] = (int)rng_below(st, (uint32_t)s, (uint32_t)i, 0, 3);
            len[s][i] = 2 + (int)rng_below(st, (uint32_t)s, (uint32_t)i, 1, TT - 1);
            for (int t = 0; t < len[s][i]; t++) {
                /* Two of three tokens come from the class's range, the rest from anywhere. */
                int informative = rng_below(st, (uint32_t)s, (uint32_t)i, 10 + t, 3) < 2;
                int base = informative ? 2 + 12 * cls[s][i] : 2;
                int span = informative ? 12 : VV - 2;
                tok[s][i * TT + t] = base + (int)rng_below(st, (uint32_t)s, (uint32_t)i,
                                                           100 + t, (uint32_t)span);
            }
        }
        rng_fill_normal(st, 50, (uint32_t)s, x[s], N * 3);
        splits[s]->n = N;
        splits[s]->tok[0] = tok[s];
        splits[s]->len[0] = len[s];
        splits[s]->x[1] = x[s];
        splits[s]->cls = cls[s];
    }
    Settings set;
    settings_default(&set);
    set.epochs = 15;
    set.hidden = 16;
    set.experts = 4;
    set.top_k = 2;
    set.lr = 5e-3f;
    TrainResult r;
    assert_int_equal(train_run("euar", &set, &d, backend_cpu(), NULL, &r), 0);
    double acc = 0.0;
    for (int i = 0; i < r.test.count; i++)
        if (strcmp(r.test.names[i], "acc") == 0)
            acc = r.test.values[i];
    print_message("euar on tokens: test accuracy %.3f (chance 0.33)\n", acc);
    assert_true(acc > 0.85);
    train_result_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(euar_tokens_gradients),
        cmocka_unit_test(baselines_tokens_gradients),
        cmocka_unit_test(padding_never_matters),
        cmocka_unit_test(tokens_model_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
