/* Noise specs: parsing, validation against a dataset, and the transforms applied while a
 * dataset is read.
 *
 * Grammar of a spec (whitespace is not allowed):
 *
 *   spec   := "" | "none" | term ("+" term)*
 *   term   := type [":" params] ["@" modality]
 *   params := item ("," item)*
 *   item   := key "=" value | word
 *
 * A bare word (no '=') continues the list value of the key before it, so
 * "missing:keep=text,audio,phase=test" keeps text and audio. Only `keep` takes a list. The
 * gaussian type also takes the bare words `clip` and `wrap` as short forms of range=clip and
 * range=wrap.
 *
 * Types and keys:
 *   missing:keep=M1,M2,...[,phase=P]      default phase both; no "@modality"
 *   gaussian:eps=E[,p=P][,scale=S][,range=clip|wrap][,phase=P][@modality]
 *   saltpepper:eps=E[,p=P][,convention=10|100][,phase=P][@modality]
 *   blank:ratio=R[,p=P][,phase=P][@modality]
 * p defaults to 0.5 and phase to test for gaussian, saltpepper and blank. A term without
 * "@modality" covers every modality of a kind its type applies to: gaussian images and
 * features, saltpepper images, blank tokens and features.
 *
 * Phase train covers the train and valid splits, test covers the test split, both covers all.
 * Only `missing` has a transform so far; the other types parse and validate, and applying them
 * fails with a message saying so. */
#ifndef EUAR_NOISE_H
#define EUAR_NOISE_H

#include <stdint.h>

#include "core/rng.h"
#include "datasets/dataset.h"

#define EUAR_NOISE_MAX_TERMS 8
/* Buffer size for noise_describe(): more than the maximum text of EUAR_NOISE_MAX_TERMS terms. */
#define EUAR_NOISE_TEXT_LEN 2048

typedef enum {
    EUAR_NOISE_MISSING,
    EUAR_NOISE_GAUSSIAN,
    EUAR_NOISE_SALTPEPPER,
    EUAR_NOISE_BLANK,
} NoiseType;

typedef enum { EUAR_PHASE_TRAIN, EUAR_PHASE_TEST, EUAR_PHASE_BOTH } NoisePhase;

/* What gaussian noise does with a pixel level outside [0, 255]. */
typedef enum { EUAR_RANGE_CLIP, EUAR_RANGE_WRAP } NoiseRange;

/* One term of a spec. Fields a type does not use stay at zero. */
typedef struct {
    NoiseType type;
    NoisePhase phase;
    char modality[EUAR_NAME_LEN]; /* target after '@'; empty: every modality of a fitting kind */
    int num_keep;                 /* missing: modalities that stay */
    char keep[EUAR_MAX_MODALITIES][EUAR_NAME_LEN];
    double eps;       /* gaussian, saltpepper: noise level E */
    double p;         /* gaussian, saltpepper, blank: probability that a sample is gated */
    double scale;     /* gaussian: s in N(0, (s E)^2); 0 means the dataset's default */
    NoiseRange range; /* gaussian */
    int convention;   /* saltpepper: 10 or 100, the divisor of p * E */
    double ratio;     /* blank: probability that a token of a gated sample becomes blank */
} NoiseTerm;

/* A parsed spec; count 0 means clean data. Fixed size, so it can be copied and stored. */
typedef struct NoiseSpec {
    int count;
    NoiseTerm term[EUAR_NOISE_MAX_TERMS];
} NoiseSpec;

/* Parses `text` (NULL, "" and "none" give a clean spec). Returns 0, or -1 with err_set()
 * quoting the spec and the part that is wrong; `out` is then clean. */
int noise_parse(const char *text, NoiseSpec *out);

/* Checks a spec against the modalities of a dataset before it is loaded. Every modality named
 * in a keep list or after '@' must exist and have a kind the type applies to. A term without
 * '@' must find at least one such modality. Returns 0, or -1 with err_set() listing the
 * dataset's modalities. */
int noise_check_names(const NoiseSpec *spec, const char *const *names, const ModalityKind *kinds,
                      int count);

/* noise_check_names() on the modalities of a loaded dataset. */
int noise_check_dataset(const NoiseSpec *spec, const Dataset *ds);

/* Writes the canonical text of a spec: terms in their order, every key of a term with its
 * value (defaults included, except a gaussian scale left to the dataset), keep lists in their
 * order. noise_parse() of the text gives the same spec. A clean spec gives "none". */
void noise_describe(const NoiseSpec *spec, char *buf, int cap);

/* Returns 1 when a sample in split `split` lies in `phase`. */
int noise_phase_covers(NoisePhase phase, SplitId split);

/* Returns the stream of draws of one (term, sample, modality): the EUAR_RNG_NOISE stream of
 * `noise_seed`, then substreams keyed by the term index, the FNV-1a hash of the sample id and
 * the FNV-1a hash of the modality name. The draws of a sample therefore do not depend on which
 * other samples are loaded or in what order. */
RngStream noise_sample_stream(uint64_t noise_seed, int term, const char *sample_id,
                              const char *modality);

/* State of noise_apply_chunk(). */
typedef struct {
    const NoiseSpec *spec;
    uint64_t seed;
} NoiseContext;

/* A DatasetChunkFn (ctx is a NoiseContext): applies the spec to samples [first, first + count)
 * of modality `modality`, whose data in `m` starts at sample `first`. For each sample whose
 * split lies in its phase, `missing` zeroes the features, pixels or tokens of every modality
 * outside its keep list and clears the availability bit. Lengths stay as they are. Returns 0,
 * or -1 with err_set() for a term whose transform is not implemented yet. */
int noise_apply_chunk(void *ctx, const Dataset *ds, int modality, int first, int count,
                      Modality *m);

const char *noise_type_name(NoiseType type);
const char *noise_phase_name(NoisePhase phase);

#endif
