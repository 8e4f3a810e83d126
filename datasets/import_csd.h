/* Importer of CMU-MultimodalSDK computational sequences (.csd files) into the euar-bench
 * HDF5 layout, with the standard folds of CMU-MOSI and CMU-MOSEI (docs/import.md). */
#ifndef EUAR_IMPORT_CSD_H
#define EUAR_IMPORT_CSD_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "datasets/dataset.h"

/* Modalities an import can have, in the order models see them. */
#define CSD_MODALITIES 3
extern const char *const csd_modality_names[CSD_MODALITIES]; /* "text", "audio", "vision" */

/* Intervals (in seconds) closer than this are equal, as in the SDK's alignment (its
 * `epsilon` in mmsdk/mmdatasdk/dataset/dataset.py). */
#define CSD_EPSILON 1e-5

/* Largest T: the writer buffers 64 samples of [T, D] floats, about 2.6 GB at T = 10000 and a
 * width of 1024. */
#define CSD_MAX_STEPS 10000

/* The video ids of one split of a standard fold. */
typedef struct {
    const char *const *ids;
    int count;
} CsdFoldList;

/* The standard folds (train, valid, test) of CMU-MOSI and CMU-MOSEI. */
extern const CsdFoldList csd_std_folds_mosi[EUAR_SPLIT_COUNT];
extern const CsdFoldList csd_std_folds_mosei[EUAR_SPLIT_COUNT];

/* Video ids mapped to their split, sorted by id for binary search. */
typedef struct {
    int n;
    char **ids;
    uint8_t *split;
} CsdFolds;

/* Loads folds from `spec`: "mosi" or "mosei" for the standard folds, otherwise the path of a
 * JSON file {"train": [ids], "valid": [ids], "test": [ids]}. A video listed twice is an
 * error. Returns 0, or -1 with err_set(). */
int csd_folds_load(const char *spec, CsdFolds *out);

/* Returns the split of `video`, or -1 when it is in no fold. */
int csd_folds_find(const CsdFolds *folds, const char *video);

void csd_folds_free(CsdFolds *folds);

/* A computational sequence opened for reading. Entries are the children of
 * /<root>/data, in name order; an entry's video id is its name up to the first '['. */
typedef struct {
    const char *path; /* for messages, not owned */
    const char *option; /* the command-line option that named the file, for messages */
    hid_t file;
    hid_t data;       /* the /<root>/data group */
    char *root;       /* name of the only top-level group */
    int num_entries;
    char **entries;
    int dim;          /* feature width D, the same in every entry */
} CsdFile;

/* Opens `path` and checks its layout: one top-level group with a `data` group of entries,
 * each with `features` [n, D] of a numeric type and `intervals` [n, 2]. Messages start with
 * `option`, the command-line option that named the file ("--audio", "--labels"). Returns 0,
 * or -1 with err_set() and nothing open. */
int csd_open(CsdFile *f, const char *path, const char *option);

/* Reads entry `e`: intervals [rows, 2] (seconds; start <= end, finite) and, when `features`
 * is not NULL, features [rows, D], both as doubles the caller frees. */
int csd_read_entry(const CsdFile *f, int e, int *rows, double **intervals, double **features);

void csd_close(CsdFile *f);

typedef struct {
    const char *modality_paths[CSD_MODALITIES]; /* NULL when the modality is not imported */
    const char *labels_path;
    const char *folds;    /* "mosi", "mosei" or a JSON file, see csd_folds_load() */
    const char *out_path;
    const char *name;     /* dataset name; NULL derives it from the folds or the file name */
    int steps;            /* T of each features modality, 1 to CSD_MAX_STEPS */
    int strict;           /* a segment without rows in some modality is an error */
    int skip_nonfinite_rows; /* leave rows with NaN or Inf out of averaged steps */
} CsdImportOptions;

/* What an import read, dropped and wrote; the caller prints it. */
typedef struct {
    char name[64];
    int label_segments;     /* label rows read */
    int zero_length;        /* label rows of zero duration, skipped as the SDK's align does */
    int no_fold_segments;   /* segments of videos in no fold, dropped */
    int no_fold_videos;
    char first_no_fold[128];            /* one such video id, for the warning */
    int missing[CSD_MODALITIES];        /* segments with no row in the modality */
    char first_missing[CSD_MODALITIES][160];
    int dropped_missing;                /* segments dropped because a modality had no row */
    int averaged[CSD_MODALITIES];       /* segments with more than T rows, averaged to T */
    size_t nonfinite[CSD_MODALITIES];   /* NaN and Inf values kept in the output */
    int nonfinite_samples[CSD_MODALITIES];
    size_t skipped_rows[CSD_MODALITIES]; /* rows with NaN or Inf left out of averaged steps */
    int clipped_labels;                 /* labels outside [-3, 3], clipped */
    double clipped_min, clipped_max;    /* extremes of the clipped labels, before clipping */
    int samples;
    int split_samples[EUAR_SPLIT_COUNT];
    int dims[CSD_MODALITIES];           /* D of each imported modality, 0 when absent */
} CsdImportReport;

/* Aligns each modality to the label segments and writes the dataset to opt->out_path
 * atomically. Returns 0, or -1 with err_set() and no output file. */
int csd_import(const CsdImportOptions *opt, CsdImportReport *report);

#endif
