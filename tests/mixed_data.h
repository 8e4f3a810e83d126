/* Toy data for backend comparisons: a dense, an image (uint8) and a token modality whose
 * labels follow a latent value, so every gather path of the trainer runs. Header-only, included
 * by test_guarded.c and test_gpu.c. */
#ifndef EUAR_TESTS_MIXED_DATA_H
#define EUAR_TESTS_MIXED_DATA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/trainer.h"

enum { DENSE_DIM = 9, IMAGE_DIM = 12, TOKEN_STEPS = 6, VOCAB = 20 };

typedef struct {
    float *x[3];
    uint8_t *u8[3];
    int32_t *tok[3], *len[3];
    float *y[3];
    int32_t *cls[3];
    TrainData data;
} MixedData;

/* Labels follow a latent value that every modality sees through noise. */
static inline void mixed_make(MixedData *t, int classification) {
    const int sizes[3] = {70, 30, 40};
    RngStream st = rng_stream(11, EUAR_RNG_TEST);
    memset(t, 0, sizeof(*t));
    ModelShape *sh = &t->data.shape;
    sh->num_modalities = 3;
    sh->output = classification ? EUAR_OUT_CLASSIFICATION : EUAR_OUT_REGRESSION;
    sh->num_classes = classification ? 3 : 0;
    sh->in_dim[0] = DENSE_DIM;
    sh->in_dim[1] = IMAGE_DIM;
    sh->in_dim[2] = TOKEN_STEPS;
    sh->input[2] = EUAR_INPUT_TOKENS;
    sh->vocab[2] = VOCAB;
    snprintf(sh->names[0], 32, "dense");
    snprintf(sh->names[1], 32, "image");
    snprintf(sh->names[2], 32, "text");
    SplitData *splits[3] = {&t->data.train, &t->data.valid, &t->data.test};
    for (int s = 0; s < 3; s++) {
        int n = sizes[s];
        t->x[s] = xmalloc(sizeof(float) * n * DENSE_DIM);
        t->u8[s] = xmalloc((size_t)n * IMAGE_DIM);
        t->tok[s] = xcalloc((size_t)n * TOKEN_STEPS, sizeof(int32_t));
        t->len[s] = xmalloc(sizeof(int32_t) * n);
        t->y[s] = xmalloc(sizeof(float) * n);
        t->cls[s] = xmalloc(sizeof(int32_t) * n);
        for (int i = 0; i < n; i++) {
            float u[16];
            rng_fill_uniform(st, (uint32_t)s, (uint32_t)i, u, 16);
            float latent = 6.0f * u[0] - 3.0f;
            t->y[s][i] = latent;
            t->cls[s][i] = latent < -1.0f ? 0 : latent < 1.0f ? 1 : 2;
            for (int d = 0; d < DENSE_DIM; d++)
                t->x[s][i * DENSE_DIM + d] = latent / (1.0f + d) + u[1 + d % 8] - 0.5f;
            for (int d = 0; d < IMAGE_DIM; d++)
                t->u8[s][i * IMAGE_DIM + d] = (uint8_t)(127.5f + 40.0f * latent * u[2 + d % 8]);
            /* Lengths 0 .. TOKEN_STEPS, so empty sequences occur too. */
            int len = (int)(u[9] * (TOKEN_STEPS + 1));
            t->len[s][i] = len;
            for (int p = 0; p < len; p++)
                t->tok[s][i * TOKEN_STEPS + p] = 2 + (int)((latent + 3.0f) * 2.9f) + p % 2;
        }
        splits[s]->n = n;
        splits[s]->x[0] = t->x[s];
        splits[s]->u8[1] = t->u8[s];
        splits[s]->tok[2] = t->tok[s];
        splits[s]->len[2] = t->len[s];
        if (classification)
            splits[s]->cls = t->cls[s];
        else
            splits[s]->y = t->y[s];
    }
}

static inline void mixed_free(MixedData *t) {
    for (int s = 0; s < 3; s++) {
        free(t->x[s]);
        free(t->u8[s]);
        free(t->tok[s]);
        free(t->len[s]);
        free(t->y[s]);
        free(t->cls[s]);
    }
}

#endif
