/* Counter-based random streams (Philox4x32-10 from Random123). A stream is keyed by the run's
 * seed and a purpose, and every draw is addressed by a counter, so a value depends only on
 * (seed, purpose, counter): the same initialisation, shuffle or noise field comes out whatever
 * order the work is done in. */
#ifndef EUAR_RNG_H
#define EUAR_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Purposes keep the streams of one seed independent of each other. */
typedef enum {
    EUAR_RNG_INIT = 1,    /* parameter initialisation */
    EUAR_RNG_SHUFFLE,     /* order of training samples per epoch */
    EUAR_RNG_REPARAM,     /* eps of the Gaussian experts */
    EUAR_RNG_NOISE,       /* noise transforms */
    EUAR_RNG_SYNTH,       /* generated datasets */
    EUAR_RNG_PAIRING,     /* pairing of images in fmnist-2view */
    EUAR_RNG_SPLIT,       /* split assignment */
    EUAR_RNG_TEST,        /* tests */
} RngPurpose;

typedef struct {
    uint32_t key[2];
} RngStream;

/* Returns the stream of `purpose` under `seed` (all 64 bits of the seed are used). */
RngStream rng_stream(uint64_t seed, RngPurpose purpose);

/* Returns a stream derived from `s` for a sub-purpose `tag` (a sample id hash, a modality). */
RngStream rng_substream(RngStream s, uint64_t tag);

/* Writes the four 32-bit words at counter (c0, c1, c2, c3). */
void rng_block(RngStream s, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t out[4]);

/* Uniform in (0, 1), never 0 or 1, from one 32-bit word. */
float rng_word_to_uniform(uint32_t w);

/* Fills out[0..n) with independent N(0, 1) draws (Box-Muller on Philox words). Draw i depends
 * only on (stream, c0, c1, i), so a row of a matrix can be regenerated alone. */
void rng_fill_normal(RngStream s, uint32_t c0, uint32_t c1, float *out, size_t n);

/* Fills out[0..n) with uniform (0, 1) draws addressed like rng_fill_normal. */
void rng_fill_uniform(RngStream s, uint32_t c0, uint32_t c1, float *out, size_t n);

/* Uniform integer in [0, n) at counter (c0, c1, c2), by rejection so it is unbiased. */
uint32_t rng_below(RngStream s, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t n);

/* Fisher-Yates permutation of 0..n-1 drawn from counter (c0, ...). */
void rng_permutation(RngStream s, uint32_t c0, uint32_t c1, int32_t *perm, int32_t n);

#ifdef __cplusplus
}
#endif

#endif
