/* Helpers shared by the files of datasets/: content checks used by the in-memory validator
 * and the HDF5 reader, and the chunked HDF5 writer used by dataset_save_h5 and the
 * generators. Not part of the public API. */
#ifndef EUAR_DATASET_INTERNAL_H
#define EUAR_DATASET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "datasets/dataset.h"

/* Samples per HDF5 chunk of a features modality, and per read of the streaming reader. */
#define EUAR_CHUNK_SAMPLES 64
/* Samples per HDF5 chunk of an image or tokens modality (gzip-compressed for images). */
#define EUAR_CHUNK_SAMPLES_SMALL 1024
/* Largest regression label magnitude: the sentiment scale of CMU-MOSI and CMU-MOSEI runs from
 * -3 (highly negative) to 3 (highly positive). */
#define EUAR_LABEL_MAX 3.0f

/* Content checks. `where` is the file, or the caller's name for an in-memory dataset. Each
 * message names `where`, the HDF5 path of the array and the offending value. All return 0,
 * or -1 with err_set(). */
int check_sample_ids(const char *where, char *const *ids, int n);
int check_splits(const char *where, const uint8_t *split, char *const *ids, int n);
int check_labels(const char *where, const Dataset *ds);
int check_lengths(const char *where, const char *h5path, const int32_t *lengths, int first,
                  int count, int t, char *const *ids);
int check_available(const char *where, const char *h5path, const uint8_t *available, int n,
                    char *const *ids);
int check_tokens(const char *where, const char *h5path, const int32_t *tokens, int n, int t,
                 int vocab, char *const *ids);

/* Counts the NaN and Inf values of `count` samples of `per_sample` floats and stores the
 * index (within the block) of the first sample that has one in *first_bad, or -1. */
size_t count_nonfinite(const float *values, int count, size_t per_sample, int *first_bad);

/* Element count of one sample of modality `m` (T*D, C*H*W or T). */
size_t modality_sample_elems(const Modality *m);

/* Writes the masked mean over the first lengths[i] steps of each of `count` samples:
 * in [count, T, D], out [count, D]; a sample with length 0 gets zeros. */
void features_masked_mean(float *out, const float *in, const int32_t *lengths, int count, int t,
                          int d);

/* An HDF5 file being written under a temporary name; committed by rename. */
typedef struct {
    hid_t file;
    char *path;     /* final name */
    char *tmp_path; /* name while writing */
} H5Writer;

/* Creates the temporary file next to `path`. Returns 0 or -1 with err_set(). */
int h5_writer_open(H5Writer *w, const char *path);

/* Writes the root attributes, /samples, /labels and each modality group (kind, lengths,
 * available, vocab_size) and creates each modality's data array [N, ...]. The data of a
 * modality whose data pointer is set are written too; the others are written later with
 * h5_writer_write_rows. Returns 0 or -1 with err_set(). */
int h5_writer_write_layout(H5Writer *w, const Dataset *ds);

/* Writes samples [first, first + count) of modality `m`'s data array from `data` (laid out
 * as in Modality). Returns 0 or -1 with err_set(). */
int h5_writer_write_rows(H5Writer *w, const Dataset *ds, int m, int first, int count,
                         const void *data);

/* Writes an extra float32 [n] array at `h5path` (its group must exist). Readers ignore it. */
int h5_writer_write_extra_f32(H5Writer *w, const char *h5path, const float *values, int n);

/* Writes an extra string array [n] at `h5path` (its group must exist). Readers ignore it. */
int h5_writer_write_extra_strings(H5Writer *w, const char *h5path, const char *const *values,
                                  int n);

/* Closes, flushes to disk and renames the file to its final name. Returns 0 or -1. */
int h5_writer_commit(H5Writer *w);

/* Closes and removes the temporary file. Safe after a failed open or commit. */
void h5_writer_abort(H5Writer *w);

/* Turns off HDF5's printing of its error stack; failures become err_set() messages. */
void h5_silence_errors(void);

/* Copies the innermost message of HDF5's current error stack into buf ("" if none). */
void h5_last_error(char *buf, size_t cap);

/* Recognise input files of the importers given to the reader in place of a dataset file
 * (datasets/foreign_file.c). Each returns -1 with err_set() naming the importer to run when
 * `path` is such a file, else 0 and leaves the message alone. */
int foreign_pickle_error(const char *path);
int foreign_csd_error(hid_t file, const char *path);

#endif
