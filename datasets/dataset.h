/* The in-memory dataset and its HDF5 file format (documented in docs/format.md). */
#ifndef EUAR_DATASET_H
#define EUAR_DATASET_H

#include <stdint.h>

#define EUAR_FORMAT_NAME "euar-bench"
#define EUAR_FORMAT_VERSION 1
#define EUAR_MAX_MODALITIES 4
#define EUAR_NAME_LEN 32

typedef enum { EUAR_SPLIT_TRAIN, EUAR_SPLIT_VALID, EUAR_SPLIT_TEST, EUAR_SPLIT_COUNT } SplitId;
typedef enum { EUAR_TASK_REGRESSION, EUAR_TASK_CLASSIFICATION } TaskKind;
typedef enum { EUAR_KIND_FEATURES, EUAR_KIND_IMAGE, EUAR_KIND_TOKENS } ModalityKind;

/* One modality of all N samples. Exactly one of features, pixels, tokens is set, by kind. */
typedef struct {
    char name[EUAR_NAME_LEN]; /* "text", "audio", "vision", "image", "depth", ... */
    ModalityKind kind;
    int t, d;           /* features: steps and width; tokens: steps (d = 1) */
    int c, h, w;        /* image: channels, height, width */
    int vocab;          /* tokens: vocabulary size; id 0 is padding and id 1 the blank token */
    float *features;    /* [N, T, D] */
    uint8_t *pixels;    /* [N, C, H, W], levels 0..255 */
    int32_t *tokens;    /* [N, T] */
    int32_t *lengths;   /* [N] valid steps of features and tokens, NULL for images */
    uint8_t *available; /* [N] 1 when the sample has this modality */
} Modality;

typedef struct {
    char name[64];         /* dataset name, for example "synth-mosi" */
    TaskKind task;
    int num_classes;       /* classification only */
    char **class_names;    /* [num_classes] */
    int n;                 /* number of samples */
    char **ids;            /* [N] sample ids, kept verbatim */
    uint8_t *split;        /* [N] SplitId */
    float *labels;         /* [N] regression labels, NULL for classification */
    int32_t *classes;      /* [N] class indices, NULL for regression */
    int num_modalities;
    Modality mod[EUAR_MAX_MODALITIES];
} Dataset;

/* Policy for NaN and Inf in features on load. */
typedef enum { EUAR_NONFINITE_REJECT, EUAR_NONFINITE_ZERO } NonFinitePolicy;

/* Called by the reader on each chunk of consecutive samples [first, first + count) of one
 * modality after it is read and validated, before features are pooled, so that noise can be
 * applied to the raw values. `m` points at the modality with its data pointers set to the
 * chunk (sample `first` is at index 0). Returns 0, or -1 with err_set() to abort the load. */
typedef int (*DatasetChunkFn)(void *ctx, const Dataset *ds, int modality, int first, int count,
                              Modality *m);

typedef struct {
    NonFinitePolicy nonfinite;
    /* Replaces every features modality [N, T, D] by its masked mean over the valid steps
     * ([N, 1, D], lengths 1; a sample with length 0 gets zeros). Reading then streams the
     * file in chunks, so memory holds the pooled matrix only. */
    int pool_features;
    DatasetChunkFn on_chunk; /* optional */
    void *ctx;
} DatasetLoadOptions;

/* Reads and validates an HDF5 dataset file. Every error names the file, the dataset path and
 * the offending value. Returns 0, or -1 with err_set() and `out` left empty. */
int dataset_load_h5(const char *path, const DatasetLoadOptions *opt, Dataset *out);

/* Reads only the metadata of an HDF5 dataset file: name, task, classes, and the name, kind and
 * vocabulary size of each modality, with the checks of dataset_load_h5() on them. Sample
 * arrays are not read, so n is 0 and every data pointer NULL. Returns 0, or -1 with err_set();
 * free `out` with dataset_free(). */
int dataset_read_info(const char *path, Dataset *out);

/* Writes `ds` to `path` atomically (temporary file, then rename). Returns 0 or -1. */
int dataset_save_h5(const char *path, const Dataset *ds);

/* Checks the in-memory invariants (shapes, lengths within T, labels in range, splits not
 * empty, finite values). Returns 0 or -1 with err_set() naming `where`. */
int dataset_validate(const Dataset *ds, const char *where);

/* Frees everything `ds` owns and zeroes it. */
void dataset_free(Dataset *ds);

/* Number of samples in split `s`. */
int dataset_split_count(const Dataset *ds, SplitId s);

/* Index of the modality named `name`, or -1. */
int dataset_find_modality(const Dataset *ds, const char *name);

const char *split_name(SplitId s);
const char *modality_kind_name(ModalityKind k);

/* Generators of the embedded default data. Each writes an HDF5 file and returns 0 or -1. */
int synth_sentiment_write(const char *path, const char *variant /* "mosi" or "mosei" */,
                          uint64_t seed);
int fmnist_2view_write(const char *path, const char *idx_folder, uint64_t seed);

/* Writes a synthetic sentiment set like synth_sentiment_write but with split_sizes[s] samples
 * in split s (train, valid, test), for tests and quick runs. Returns 0 or -1. */
int synth_sentiment_write_sized(const char *path, const char *variant, uint64_t seed,
                                const int split_sizes[EUAR_SPLIT_COUNT]);

/* Writes synth-nyud: 10 scene classes named like the NYU Depth V2 scene classes, modalities
 * "rgb" (3x32x32) and "depth" (1x32x32), 636 train, 159 valid and 654 test samples. Returns
 * 0 or -1 with err_set(). */
int synth_nyud_write(const char *path, uint64_t seed);

/* Writes synth-nyud with split_sizes[s] samples in split s (train, valid, test). */
int synth_nyud_write_sized(const char *path, uint64_t seed,
                           const int split_sizes[EUAR_SPLIT_COUNT]);

/* Writes synth-mvsa: classes positive, neutral and negative, modalities "image" (3x32x32) and
 * "text" (tokens, T 30, vocabulary 1000), 1555 train, 518 valid and 519 test samples.
 * Returns 0 or -1 with err_set(). */
int synth_mvsa_write(const char *path, uint64_t seed);

/* Writes synth-mvsa with split_sizes[s] samples in split s (train, valid, test). */
int synth_mvsa_write_sized(const char *path, uint64_t seed,
                           const int split_sizes[EUAR_SPLIT_COUNT]);

#endif
