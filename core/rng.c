#include "rng.h"

#include <math.h>

#include <Random123/philox.h>

RngStream rng_stream(uint64_t seed, RngPurpose purpose) {
    /* The seed fills the key; the purpose is folded into the high word through a multiply
     * by the golden-ratio constant so neighbouring purposes give unrelated keys. */
    RngStream s;
    s.key[0] = (uint32_t)seed;
    s.key[1] = (uint32_t)(seed >> 32) ^ ((uint32_t)purpose * 0x9E3779B9u);
    return s;
}

RngStream rng_substream(RngStream s, uint64_t tag) {
    uint32_t out[4];
    rng_block(s, 0xFFFFFFFFu, (uint32_t)tag, (uint32_t)(tag >> 32), 0x5EEDu, out);
    RngStream r = {{out[0], out[1]}};
    return r;
}

void rng_block(RngStream s, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t out[4]) {
    philox4x32_ctr_t ctr = {{c0, c1, c2, c3}};
    philox4x32_key_t key = {{s.key[0], s.key[1]}};
    philox4x32_ctr_t r = philox4x32(ctr, key);
    for (int i = 0; i < 4; i++)
        out[i] = r.v[i];
}

float rng_word_to_uniform(uint32_t w) {
    /* 24 high bits, offset by half a step: values lie in (0, 1) exclusive. */
    return ((float)(w >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

void rng_fill_normal(RngStream s, uint32_t c0, uint32_t c1, float *out, size_t n) {
    uint32_t w[4];
    for (size_t i = 0; i < n; i += 4) {
        rng_block(s, c0, c1, (uint32_t)(i >> 2), (uint32_t)((uint64_t)i >> 34), w);
        for (int pair = 0; pair < 2; pair++) {
            float u1 = rng_word_to_uniform(w[2 * pair]);
            float u2 = rng_word_to_uniform(w[2 * pair + 1]);
            float r = sqrtf(-2.0f * logf(u1));
            float t = 6.28318530717958647692f * u2;
            size_t j = i + 2 * (size_t)pair;
            if (j < n)
                out[j] = r * cosf(t);
            if (j + 1 < n)
                out[j + 1] = r * sinf(t);
        }
    }
}

void rng_fill_uniform(RngStream s, uint32_t c0, uint32_t c1, float *out, size_t n) {
    uint32_t w[4];
    for (size_t i = 0; i < n; i += 4) {
        rng_block(s, c0, c1, (uint32_t)(i >> 2), (uint32_t)((uint64_t)i >> 34), w);
        for (size_t k = 0; k < 4 && i + k < n; k++)
            out[i + k] = rng_word_to_uniform(w[k]);
    }
}

uint32_t rng_below(RngStream s, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t n) {
    uint32_t limit = (uint32_t)(0x100000000ULL - (0x100000000ULL % n));
    for (uint32_t attempt = 0;; attempt++) {
        uint32_t w[4];
        rng_block(s, c0, c1, c2, attempt, w);
        for (int k = 0; k < 4; k++)
            if (limit == 0 || w[k] < limit)
                return w[k] % n;
    }
}

void rng_permutation(RngStream s, uint32_t c0, uint32_t c1, int32_t *perm, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        perm[i] = i;
    for (int32_t i = n - 1; i > 0; i--) {
        int32_t j = (int32_t)rng_below(s, c0, c1, (uint32_t)i, (uint32_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
