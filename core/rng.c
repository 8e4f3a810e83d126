#include "rng.h"

#include <math.h>

#include <Random123/philox.h>

#include "elementwise.h"

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
    return uniform_from_word_f(w);
}

void rng_fill_normal(RngStream s, uint32_t c0, uint32_t c1, float *out, size_t n) {
    /* Block i / 4 sits at counter (c0, c1, low and high word of i / 4); the CUDA backend
     * draws the same blocks (ops_cuda_random.cu). */
    uint32_t w[4];
    for (size_t i = 0; i < n; i += 4) {
        rng_block(s, c0, c1, (uint32_t)(i >> 2), (uint32_t)((uint64_t)i >> 34), w);
        normal_block_f(out, i, n, w);
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
