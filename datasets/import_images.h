/* Importers of the image sets of QMF's noise experiments (docs/import.md). NYU Depth V2 comes
 * as scene folders of PNGs with RGB on the left half and depth on the right. MVSA-Single comes
 * as JSONL splits with an image path and a text per post. Both importers resize every image
 * to size x size by area averaging and write the euar-bench HDF5 layout atomically. */
#ifndef EUAR_IMPORT_IMAGES_H
#define EUAR_IMPORT_IMAGES_H

#include <stdint.h>

#include "datasets/dataset.h"

/* Side of the imported images by default, the side of synth-nyud and synth-mvsa. */
#define IMPORT_DEFAULT_SIZE 32
/* Largest accepted --size. All images stay in memory, at 3*size*size bytes each. */
#define IMPORT_MAX_SIZE 1024
/* Share of the training images that become the valid split of NYU Depth V2 by default:
 * synth-nyud keeps 159 of the 795 standard training images (20%) for validation. */
#define NYUD_DEFAULT_VALID_FRACTION 0.2
/* Tokens kept per MVSA-Single text by default. Longer texts are truncated and counted. */
#define MVSA_DEFAULT_MAX_TOKENS 50
/* Reserved token ids of an imported text: 0 padding and 1 blank (docs/format.md), and 2 for
 * words that the vocabulary of the training split does not contain. */
#define TOKEN_ID_PAD 0
#define TOKEN_ID_BLANK 1
#define TOKEN_ID_UNKNOWN 2
#define TOKEN_FIRST_WORD 3

typedef struct {
    int size;              /* side of the stored images */
    uint64_t seed;         /* seed of the train/valid cut */
    double valid_fraction; /* share of the train folder moved to the valid split, in (0, 1) */
    const char *name;      /* dataset name; NULL for "nyud-v2" */
} NyudImportOptions;

typedef struct {
    int size;          /* side of the stored images */
    int max_tokens;    /* T of the text modality */
    int min_count;     /* words seen fewer times in train map to TOKEN_ID_UNKNOWN */
    const char *name;  /* dataset name; NULL for "mvsa-single" */
} MvsaImportOptions;

/* What an import wrote, for the command's summary line. */
typedef struct {
    int n;
    int split_counts[EUAR_SPLIT_COUNT];
    int num_classes;
    int vocab;          /* MVSA: vocabulary size V including the reserved ids */
    int truncated;      /* MVSA: texts with more than max_tokens words */
    int longest;        /* MVSA: most words in one text */
    int empty_texts;    /* MVSA: texts without a word */
    long unknown_words; /* MVSA: words of all splits mapped to TOKEN_ID_UNKNOWN */
    int invalid_utf8;   /* MVSA: texts that are not valid UTF-8 (a Latin-1 byte, say) */
    char first_invalid_utf8[64];       /* MVSA: id of the first such text */
    int ignored_folders;               /* NYU: folders of the root besides train/ and test/ */
    char ignored_names[256];           /* NYU: their names, comma-separated, cut to fit */
    int classes_without_test;          /* NYU: classes of train/ without test images */
    char first_class_without_test[64]; /* NYU: the first such class */
} ImportSummary;

void nyud_import_defaults(NyudImportOptions *o);
void mvsa_import_defaults(MvsaImportOptions *o);

/* Imports `root`/train/<class>/ and `root`/test/<class>/ PNG folders into `out`. Returns 0,
 * or -1 with err_set() naming the file and value; `out` is then not created. */
int nyud_import(const char *root, const char *out, const NyudImportOptions *o,
                ImportSummary *summary);

/* Imports `dir`/train.jsonl, dev.jsonl and test.jsonl into `out`. Returns 0, or -1 with
 * err_set() naming the file, line and value; `out` is then not created. */
int mvsa_import(const char *dir, const char *out, const MvsaImportOptions *o,
                ImportSummary *summary);

/* An image decoded to 8-bit RGB, interleaved: pixel (x, y) channel c at rgb[(y*w + x)*3 + c]. */
typedef struct {
    int w, h;
    uint8_t *rgb;
} RgbImage;

/* Decodes the PNG, JPEG, BMP, GIF, TGA or PNM file `path` with stb_image. Grey images are
 * replicated to three channels, alpha is dropped and 16-bit samples keep their high byte.
 * Returns 0, or -1 with err_set() naming the file; free `img->rgb` with free(). */
int image_load_rgb(const char *path, RgbImage *img);

/* Resizes the `sw` x `sh` window of an interleaved image with `channels` channels per pixel
 * and `stride` bytes per row to `dw` x `dh` by area averaging, and writes planar output
 * dst[c][y][x]. Output pixel (x, y) is the mean of the source over the rectangle
 * [x*sw/dw, (x+1)*sw/dw) x [y*sh/dh, (y+1)*sh/dh), each source pixel weighted by the area it
 * covers, rounded half up. The sums are exact integers, so a constant block maps to its level
 * and a downscale by an integer factor is the plain block mean. */
void image_resize_area(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh,
                       int channels, int stride);

#endif
