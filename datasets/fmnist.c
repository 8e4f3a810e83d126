/* Generator of fmnist-2view: a two-view classification set built from Fashion-MNIST (Xiao,
 * Rasul and Vollgraf, 2017), read from the gzipped IDX files of Debian's dataset-fashion-mnist.
 * View "image" is the 28x28 sample itself. View "thumbnail" is a different image of the same
 * class and split, chosen by a seeded pairing and reduced to 14x14 by 2x2 averaging. The
 * official training images are split 90/10 into train and valid by the seed; the official
 * test images are the test split. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "core/common.h"
#include "core/rng.h"
#include "datasets/dataset.h"
#include "datasets/dataset_internal.h"

#define FMNIST_CLASSES 10
#define FMNIST_SIDE 28
#define FMNIST_THUMB_SIDE 14
/* Magic numbers of the IDX files in dataset-fashion-mnist: byte 3 (0x08) is the unsigned-byte
 * element type and byte 4 the number of dimensions, each size following as a big-endian
 * 32-bit word. */
#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAX_ITEMS 10000000u

/* Class names of Fashion-MNIST labels 0 to 9, from the table in its README
 * (/usr/share/doc/dataset-fashion-mnist/README.md.gz). */
static const char *const fmnist_class_names[FMNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

typedef struct {
    uint32_t count;
    uint8_t *images; /* [count, 28, 28] */
    uint8_t *labels; /* [count] */
} IdxPair;

static int read_exact(gzFile f, const char *path, void *buf, size_t len, const char *part) {
    uint8_t *p = buf;
    while (len > 0) {
        unsigned step = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        int got = gzread(f, p, step);
        if (got <= 0) {
            int code;
            const char *msg = gzerror(f, &code);
            return err_set("%s: %s is truncated or damaged (%s); reinstall dataset-fashion-mnist "
                           "with 'make deps'",
                           path, part, code != Z_OK && msg ? msg : "unexpected end of file");
        }
        p += got;
        len -= (size_t)got;
    }
    return 0;
}

static uint32_t be32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Reads a gzipped IDX file of `dims` dimensions with magic `magic`. For images, checks that
 * each item is 28x28. Stores the item count and a new buffer of the items. */
static int read_idx(const char *path, uint32_t magic, int dims, uint32_t *count,
                    uint8_t **items) {
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set("%s: file not found; install Fashion-MNIST with 'make deps' (Debian "
                       "package dataset-fashion-mnist) or pass --idx with the folder of its "
                       "IDX files",
                       path);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return err_set("%s: cannot open for reading", path);
    uint8_t header[16];
    size_t header_len = 4 + 4 * (size_t)dims;
    int rc = read_exact(f, path, header, header_len, "the IDX header");
    if (rc == 0 && be32(header) != magic)
        rc = err_set("%s: IDX magic number is 0x%08x, expected 0x%08x (%s); the file is not a "
                     "Fashion-MNIST %s file",
                     path, be32(header), magic, dims == 3 ? "unsigned bytes, 3 dimensions"
                                                         : "unsigned bytes, 1 dimension",
                     dims == 3 ? "image" : "label");
    uint32_t n = rc == 0 ? be32(header + 4) : 0;
    if (rc == 0 && (n < 1 || n > IDX_MAX_ITEMS))
        rc = err_set("%s: IDX item count is %u; expected 1 to %u", path, n, IDX_MAX_ITEMS);
    if (rc == 0 && dims == 3 &&
        (be32(header + 8) != FMNIST_SIDE || be32(header + 12) != FMNIST_SIDE))
        rc = err_set("%s: IDX image size is %ux%u, expected %dx%d", path, be32(header + 8),
                     be32(header + 12), FMNIST_SIDE, FMNIST_SIDE);
    if (rc == 0) {
        size_t len = (size_t)n * (dims == 3 ? FMNIST_SIDE * FMNIST_SIDE : 1);
        *items = xmalloc(len);
        rc = read_exact(f, path, *items, len, dims == 3 ? "the image data" : "the label data");
        if (rc != 0) {
            free(*items);
            *items = NULL;
        }
    }
    gzclose(f);
    *count = n;
    return rc;
}

/* Reads "<prefix>-images-idx3-ubyte.gz" and "<prefix>-labels-idx1-ubyte.gz" from `folder`. */
static int read_idx_pair(const char *folder, const char *prefix, IdxPair *out) {
    char images[4096], labels[4096];
    snprintf(images, sizeof(images), "%s/%s-images-idx3-ubyte.gz", folder, prefix);
    snprintf(labels, sizeof(labels), "%s/%s-labels-idx1-ubyte.gz", folder, prefix);
    memset(out, 0, sizeof(*out));
    uint32_t image_count, label_count;
    if (read_idx(images, IDX_MAGIC_IMAGES, 3, &image_count, &out->images) != 0)
        return -1;
    if (read_idx(labels, IDX_MAGIC_LABELS, 1, &label_count, &out->labels) != 0) {
        free(out->images);
        out->images = NULL;
        return -1;
    }
    out->count = image_count;
    if (image_count != label_count)
        return err_set("%s: %u labels, but %s has %u images; the files must come from the "
                       "same release",
                       labels, label_count, images, image_count);
    for (uint32_t i = 0; i < label_count; i++)
        if (out->labels[i] >= FMNIST_CLASSES)
            return err_set("%s: label %u of item %u is outside [0, %d)", labels,
                           out->labels[i], i, FMNIST_CLASSES);
    return 0;
}

/* Reduces a 28x28 image to 14x14 by averaging each 2x2 block, rounding halves up. */
static void downsample_2x2(uint8_t *out, const uint8_t *in) {
    for (int y = 0; y < FMNIST_THUMB_SIDE; y++)
        for (int x = 0; x < FMNIST_THUMB_SIDE; x++) {
            const uint8_t *p = in + (2 * y) * FMNIST_SIDE + 2 * x;
            unsigned sum = p[0] + p[1] + p[FMNIST_SIDE] + p[FMNIST_SIDE + 1];
            out[y * FMNIST_THUMB_SIDE + x] = (uint8_t)((sum + 2) / 4);
        }
}

/* Stores in partner[i] a sample of the same split and class as i, other than i, drawn
 * uniformly from the pairing stream at counter i. */
static int pair_samples(int32_t *partner, const uint8_t *split, const int32_t *classes, int n,
                        RngStream s) {
    int32_t *members = xmalloc((size_t)n * sizeof(int32_t));
    int rc = 0;
    for (int sp = 0; sp < EUAR_SPLIT_COUNT && rc == 0; sp++)
        for (int c = 0; c < FMNIST_CLASSES && rc == 0; c++) {
            int g = 0;
            for (int i = 0; i < n; i++)
                if (split[i] == sp && classes[i] == c)
                    members[g++] = i;
            if (g == 1)
                rc = err_set("class '%s' has one image in split %s, so it cannot be paired "
                             "with a different image; use a larger IDX set",
                             fmnist_class_names[c], split_name((SplitId)sp));
            for (int p = 0; p < g && rc == 0; p++) {
                int i = members[p];
                int r = (int)rng_below(s, (uint32_t)i, 0, 0, (uint32_t)(g - 1));
                partner[i] = members[r < p ? r : r + 1];
            }
        }
    free(members);
    return rc;
}

static void set_image_modality(Modality *m, const char *name, int side, int n) {
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->kind = EUAR_KIND_IMAGE;
    m->c = 1;
    m->h = side;
    m->w = side;
    m->pixels = xmalloc((size_t)n * (size_t)side * (size_t)side);
    m->available = xmalloc((size_t)n);
    memset(m->available, 1, (size_t)n);
}

/* Builds the two-view dataset from the official train and test sets. */
static int build_2view(Dataset *ds, const IdxPair *train, const IdxPair *test, uint64_t seed) {
    int n_train_all = (int)train->count, n = (int)(train->count + test->count);
    int n_valid = n_train_all / 10;
    if (n_valid < 1 || n_train_all - n_valid < 1)
        return err_set("the IDX training set has %d images; at least 10 are needed to split it "
                       "into train and valid",
                       n_train_all);
    snprintf(ds->name, sizeof(ds->name), "fmnist-2view");
    ds->task = EUAR_TASK_CLASSIFICATION;
    ds->num_classes = FMNIST_CLASSES;
    ds->class_names = xcalloc(FMNIST_CLASSES, sizeof(char *));
    for (int c = 0; c < FMNIST_CLASSES; c++)
        ds->class_names[c] = xstrdup(fmnist_class_names[c]);

    ds->n = n;
    ds->ids = xcalloc((size_t)n, sizeof(char *));
    ds->split = xmalloc((size_t)n);
    ds->classes = xmalloc((size_t)n * sizeof(int32_t));

    int32_t *perm = xmalloc((size_t)n_train_all * sizeof(int32_t));
    rng_permutation(rng_stream(seed, EUAR_RNG_SPLIT), 0, 0, perm, n_train_all);
    for (int j = 0; j < n_train_all; j++)
        ds->split[perm[j]] = j < n_train_all - n_valid ? EUAR_SPLIT_TRAIN : EUAR_SPLIT_VALID;
    free(perm);

    ds->num_modalities = 2;
    set_image_modality(&ds->mod[0], "image", FMNIST_SIDE, n);
    set_image_modality(&ds->mod[1], "thumbnail", FMNIST_THUMB_SIDE, n);
    const size_t image_size = FMNIST_SIDE * FMNIST_SIDE;
    for (int i = 0; i < n; i++) {
        int official_train = i < n_train_all;
        int item = official_train ? i : i - n_train_all;
        const IdxPair *src = official_train ? train : test;
        char id[64];
        snprintf(id, sizeof(id), "fmnist-%s-%05d", official_train ? "train" : "test", item);
        ds->ids[i] = xstrdup(id);
        if (!official_train)
            ds->split[i] = EUAR_SPLIT_TEST;
        ds->classes[i] = src->labels[item];
        memcpy(ds->mod[0].pixels + (size_t)i * image_size, src->images + (size_t)item * image_size,
               image_size);
    }

    int32_t *partner = xmalloc((size_t)n * sizeof(int32_t));
    int rc = pair_samples(partner, ds->split, ds->classes, n, rng_stream(seed, EUAR_RNG_PAIRING));
    const size_t thumb_size = FMNIST_THUMB_SIDE * FMNIST_THUMB_SIDE;
    for (int i = 0; i < n && rc == 0; i++)
        downsample_2x2(ds->mod[1].pixels + (size_t)i * thumb_size,
                       ds->mod[0].pixels + (size_t)partner[i] * image_size);
    free(partner);
    return rc;
}

int fmnist_2view_write(const char *path, const char *idx_folder, uint64_t seed) {
    IdxPair train, test;
    memset(&test, 0, sizeof(test));
    int rc = read_idx_pair(idx_folder, "train", &train);
    if (rc == 0)
        rc = read_idx_pair(idx_folder, "t10k", &test);
    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    if (rc == 0)
        rc = build_2view(&ds, &train, &test, seed);
    free(train.images);
    free(train.labels);
    free(test.images);
    free(test.labels);
    if (rc == 0)
        rc = dataset_save_h5(path, &ds);
    dataset_free(&ds);
    return rc;
}
