/* Noise specs: parsing, validation against a dataset, and the transforms applied while a
 * dataset is read. docs/noise.md gives the definition of every type and option.
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
 *   gaussian:eps=E[,p=P][,scale=S][,range=clip|wrap|cliphigh][,field=fresh|fixed][,phase=P]
 *            [@modality]
 *   saltpepper:eps=E[,p=P][,convention=10|100][,phase=P][@modality]
 *   blank:ratio=R[,p=P][,phase=P][@modality]
 * p defaults to 0.5 and phase to test for gaussian, saltpepper and blank. A term without
 * "@modality" covers every modality of a kind its type applies to: gaussian images and
 * features, saltpepper images, blank tokens and features. Phase train covers the train and
 * valid splits, test covers the test split, both covers all.
 *
 * Every draw of a transform comes from noise_sample_stream() of (noise seed, term index,
 * sample id, modality name), so a sample gets the same noise whatever the chunking, the order
 * of samples or the model being trained. Counters inside a sample's stream:
 *   c0 = 0: the gate, one uniform word at counter (0, 0, 0, 0);
 *   c0 = 1: the Gaussian field, rng_fill_normal(stream, 1, 0, ...) over H*W positions of an
 *           image or T*D values of a features sample;
 *   c0 = 2: the per-position uniforms of salt and pepper (H*W) and blank (T steps),
 *           rng_fill_uniform(stream, 2, 0, ...).
 * A gaussian term with field=fixed draws its field from the stream of the empty sample id
 * instead, so every image of a modality gets the same field; the gate stays per sample. */
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

/* What gaussian noise does with a pixel level outside [0, 255] after truncation toward zero:
 * clip to [0, 255]; wrap modulo 256; or clip above 255 and wrap below 0 (cliphigh), which is
 * what QMF's AddGaussianNoise does (`img[img > 255] = 255`, then `astype('uint8')`). */
typedef enum { EUAR_RANGE_CLIP, EUAR_RANGE_WRAP, EUAR_RANGE_CLIP_HIGH } NoiseRange;

/* Whose Gaussian field a gated sample gets: its own (fresh), or one shared by all samples of
 * the modality (fixed), like QMF's AddGaussianNoise, which calls np.random.seed(0) each time. */
typedef enum { EUAR_FIELD_FRESH, EUAR_FIELD_FIXED } NoiseField;

/* One term of a spec. Fields a type does not use stay at zero. */
typedef struct {
    NoiseType type;
    NoisePhase phase;
    char modality[EUAR_NAME_LEN]; /* target after '@'; empty: every modality of a fitting kind */
    int num_keep;                 /* missing: modalities that stay */
    char keep[EUAR_MAX_MODALITIES][EUAR_NAME_LEN];
    double eps;       /* gaussian, saltpepper: noise level E */
    double p;         /* gaussian, saltpepper, blank: probability that a sample is gated */
    double scale;     /* gaussian on images: s in N(0, (s E)^2); 0 means the dataset's default */
    NoiseRange range; /* gaussian on images */
    NoiseField field; /* gaussian */
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
 * '@' must find at least one such modality. A gaussian term naming a features modality takes
 * no scale= and no range= other than clip. Returns 0, or -1 with err_set() (listing the
 * dataset's modalities where a name or kind is wrong). */
int noise_check_names(const NoiseSpec *spec, const char *const *names, const ModalityKind *kinds,
                      int count);

/* noise_check_names() on the modalities of a loaded dataset; also fails when a gaussian term
 * reaches an image modality without scale= and the dataset has no default scale. */
int noise_check_dataset(const NoiseSpec *spec, const Dataset *ds);

/* Writes the canonical text of a spec: terms in their order, every key of a term with its
 * value (defaults included, except a gaussian scale left to the dataset until
 * noise_resolve_scales() fills it), keep lists in their order. noise_parse() of the text gives the same spec. A clean spec gives "none". */
void noise_describe(const NoiseSpec *spec, char *buf, int cap);

/* Returns 1 when a sample in split `split` lies in `phase`. */
int noise_phase_covers(NoisePhase phase, SplitId split);

/* Returns the stream of draws of one (term, sample, modality): the EUAR_RNG_NOISE stream of
 * `noise_seed`, then substreams keyed by the term index, the FNV-1a hash of the sample id and
 * the FNV-1a hash of the modality name. The draws of a sample therefore do not depend on which
 * other samples are loaded or in what order. */
RngStream noise_sample_stream(uint64_t noise_seed, int term, const char *sample_id,
                              const char *modality);

/* Returns 1 when a term of `type` can act on a modality of `kind`. */
int noise_type_fits_kind(NoiseType type, ModalityKind kind);

/* Returns 1 when term `t` acts on a modality `name` of `kind`. Missing acts on every modality
 * and a term with "@modality" on that one, whatever its kind. Any other term acts on every
 * modality of a kind its type applies to. */
int noise_term_targets(const NoiseTerm *t, const char *name, ModalityKind kind);

/* Returns the default scale s of gaussian noise on the images of a dataset, chosen by the
 * prefix of its name (case-insensitive): "synth-mvsa" and "mvsa" give 10, QMF's MVSA-Single
 * setting (AddGaussianNoise(variance=severity * 10)); "synth-nyud" and "nyud" give 1, QMF's
 * NYU Depth V2 scripts; "fmnist-2view" gives 10 (docs/noise.md gives the reason). Other names give 0:
 * such a spec needs scale=S. */
double noise_default_image_scale(const char *dataset_name);

/* Writes the default scale into every gaussian term of `spec` that has no scale and reaches an
 * image modality of `ds`, so that noise_describe() records it. Returns 0, or -1 with err_set()
 * when the dataset has no default. */
int noise_resolve_scales(NoiseSpec *spec, const Dataset *ds);

/* State of noise_apply_chunk(). */
typedef struct {
    const NoiseSpec *spec;
    uint64_t seed;
    /* feature_std[m]: [D] standard deviation of each dimension of features modality m over the
     * valid steps of the training split (noise_feature_std() or NoiseFeatureStats). Gaussian
     * noise on a features modality needs it; NULL elsewhere. */
    const float *feature_std[EUAR_MAX_MODALITIES];
} NoiseContext;

/* A DatasetChunkFn (ctx is a NoiseContext): applies the spec to samples [first, first + count)
 * of modality `modality`, whose data in `m` starts at sample `first`. Terms apply in their
 * order, each to the samples whose split lies in its phase:
 *   missing zeroes the values of every modality outside its keep list and clears the
 *     availability bit;
 *   gaussian, saltpepper and blank change only available samples, each gated with its own
 *     probability, and leave lengths and availability as they are.
 * A term with eps = 0 or ratio = 0 leaves the data unchanged to the bit. Returns 0, or -1
 * with err_set() when a term names a modality of a kind its type does not apply to, a gaussian
 * term has no scale for an image modality, or feature_std is missing for a features one. */
int noise_apply_chunk(void *ctx, const Dataset *ds, int modality, int first, int count,
                      Modality *m);

/* Returns 1 when some gaussian term of `spec` with eps > 0 reaches features modality
 * `modality` of `ds`, so that NoiseContext.feature_std[modality] must be set. */
int noise_needs_feature_std(const NoiseSpec *spec, const Dataset *ds, int modality);

/* Per-dimension running mean and variance (Welford) of features over the valid steps of the
 * available training samples, one accumulator per modality. */
typedef struct {
    int d[EUAR_MAX_MODALITIES];        /* width; 0 until the modality's first chunk */
    long long count[EUAR_MAX_MODALITIES]; /* steps seen */
    double *mean[EUAR_MAX_MODALITIES];    /* [D] */
    double *m2[EUAR_MAX_MODALITIES];      /* [D] sum of squared deviations from the mean */
} NoiseFeatureStats;

/* A DatasetChunkFn (ctx is a NoiseFeatureStats, zeroed before the first call): adds the valid
 * steps of the training samples of a features chunk to the accumulator of `modality`. The
 * reader calls it before pooling, so a pass with pool_features set still reads every step. */
int noise_stats_chunk(void *ctx, const Dataset *ds, int modality, int first, int count,
                      Modality *m);

/* Writes the population standard deviation (divisor: number of steps) of each of the D
 * dimensions of modality `modality` into out[0..D). Returns 0, or -1 with err_set() when no
 * valid training step was seen. */
int noise_stats_std(const NoiseFeatureStats *st, const Dataset *ds, int modality, float *out);

/* Frees the accumulators and zeroes `st`. */
void noise_stats_free(NoiseFeatureStats *st);

/* Writes the population standard deviation of each dimension of features modality `modality`
 * of a loaded dataset over the valid steps of its available training samples into out[0..D).
 * Load without pool_features: on pooled data it is the deviation of the per-sample means.
 * Returns 0, or -1 with err_set() when the modality is not features or has no valid step. */
int noise_feature_std(const Dataset *ds, int modality, float *out);

const char *noise_type_name(NoiseType type);
const char *noise_phase_name(NoisePhase phase);

#endif
