/* `euar data`: generate the embedded default datasets and inspect dataset files. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/common.h"
#include "datasets/dataset.h"

#define DEFAULT_FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static void usage_data(FILE *f) {
    fprintf(f, "usage: euar data <action> [options]\n\n"
               "actions:\n"
               "  synth mosi|mosei|nyud|mvsa --out FILE [--seed N]\n"
               "        generate synth-mosi (2199 samples, 338 MB of text features),\n"
               "        synth-mosei (22856 samples, 3.5 GB), synth-nyud (1449 rgb and depth\n"
               "        images, 10 scene classes) or synth-mvsa (2592 images with texts,\n"
               "        3 sentiment classes)\n"
               "  fmnist-2view [--idx DIR] --out FILE [--seed N]\n"
               "        build the two-view Fashion-MNIST set from its gzipped IDX files\n"
               "  import-nyud ROOT --out FILE [--size N] [--seed N] [--valid-fraction F]\n"
               "        import NYU Depth V2 class folders of side-by-side RGB and depth PNGs\n"
               "  import-mvsa DIR --out FILE [--size N] [--max-tokens N] [--min-count N]\n"
               "        import MVSA-Single train/dev/test JSONL files with their images\n"
               "  inspect FILE [--nonfinite reject|zero]\n"
               "        validate a dataset file and print its splits, modalities and labels\n"
               "  import-pickle --format mmsa|mib IN.pkl --out FILE\n"
               "        convert an MMSA or MAG-BERT/MIB pickle (needs python3-h5py)\n"
               "  import-csd --labels FILE --folds mosi|mosei|FILE --out FILE [--text FILE]...\n"
               "        convert CMU-MultimodalSDK computational sequences (.csd)\n\n"
               "Run 'euar data <action> --help' for details.\n");
}

static void usage_synth(FILE *f) {
    fprintf(f, "usage: euar data synth mosi|mosei|nyud|mvsa --out FILE [--seed N]\n\n"
               "mosi, mosei: a synthetic regression dataset shaped like CMU-MOSI or CMU-MOSEI\n"
               "features (text 50x768, audio 50x74, vision 50x47 for MOSI and 50x35 for MOSEI;\n"
               "standard split sizes) whose labels depend on a latent sentiment with a\n"
               "per-sample quality per modality.\n"
               "nyud: 10 scene classes like NYU Depth V2, 'rgb' (3x32x32) and 'depth' (1x32x32)\n"
               "images; 636 train, 159 valid, 654 test.\n"
               "mvsa: 3 sentiment classes like MVSA-Single, 'image' (3x32x32) and 'text'\n"
               "(tokens, up to 30 of a 1000-word vocabulary); 1555 train, 518 valid, 519 test.\n"
               "The same seed gives the same file.\n\n"
               "  --out FILE   output HDF5 file (written atomically)\n"
               "  --seed N     random seed, an unsigned integer (default 1)\n");
}

static void usage_fmnist(FILE *f) {
    fprintf(f, "usage: euar data fmnist-2view [--idx DIR] --out FILE [--seed N]\n\n"
               "Writes a 10-class dataset with two image views per sample: 'image' (1x28x28,\n"
               "the sample) and 'thumbnail' (1x14x14, a different image of the same class and\n"
               "split, averaged over 2x2 blocks). The 60000 training images are split 54000\n"
               "train and 6000 valid by the seed; the 10000 test images are the test split.\n\n"
               "  --idx DIR    folder of the gzipped IDX files (default %s,\n"
               "               installed by 'make deps')\n"
               "  --out FILE   output HDF5 file (written atomically)\n"
               "  --seed N     random seed of the split and the pairing (default 1)\n",
            DEFAULT_FMNIST_DIR);
}

static void usage_inspect(FILE *f) {
    fprintf(f, "usage: euar data inspect FILE [--nonfinite reject|zero]\n\n"
               "Validates every attribute and array of a dataset file and prints its name, task,\n"
               "samples per split, modalities with kind and shape, and label statistics.\n\n"
               "  --nonfinite reject|zero   NaN and Inf in features: reject the file (default)\n"
               "                            or replace them with 0\n");
}

static int fail(void) {
    fprintf(stderr, "euar: error: %s\n", err_get());
    return 1;
}

static int is_help(const char *arg) {
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static int parse_seed(const char *text, uint64_t *seed) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return err_set("--seed: '%s' is not an unsigned integer", text);
    *seed = (uint64_t)v;
    return 0;
}

/* Options shared by the generators. */
typedef struct {
    const char *out;
    const char *idx;
    uint64_t seed;
} GenOptions;

/* Parses --out, --seed and (when allow_idx) --idx from argv[first..argc). */
static int parse_gen_options(int argc, char **argv, int first, int allow_idx, GenOptions *o) {
    o->out = NULL;
    o->idx = DEFAULT_FMNIST_DIR;
    o->seed = 1;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        int known = strcmp(a, "--out") == 0 || strcmp(a, "--seed") == 0 ||
                    (allow_idx && strcmp(a, "--idx") == 0);
        if (!known)
            return err_set("unknown option '%s'; see --help", a);
        if (i + 1 >= argc)
            return err_set("%s needs a value", a);
        const char *v = argv[++i];
        if (strcmp(a, "--out") == 0)
            o->out = v;
        else if (strcmp(a, "--idx") == 0)
            o->idx = v;
        else if (parse_seed(v, &o->seed) != 0)
            return -1;
    }
    if (!o->out)
        return err_set("--out FILE is required");
    return 0;
}

static double file_megabytes(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
}

static int cmd_data_synth(int argc, char **argv) {
    if (argc >= 2 && is_help(argv[1])) {
        usage_synth(stdout);
        return 0;
    }
    if (argc < 2) {
        usage_synth(stderr);
        return 1;
    }
    const char *variant = argv[1];
    int is_sentiment = strcmp(variant, "mosi") == 0 || strcmp(variant, "mosei") == 0;
    int is_nyud = strcmp(variant, "nyud") == 0, is_mvsa = strcmp(variant, "mvsa") == 0;
    if (!is_sentiment && !is_nyud && !is_mvsa) {
        err_set("unknown synthetic variant '%s'; use 'mosi', 'mosei', 'nyud' or 'mvsa'",
                variant);
        return fail();
    }
    GenOptions o;
    if (parse_gen_options(argc, argv, 2, 0, &o) != 0)
        return fail();
    double start = time_now();
    int rc = is_nyud   ? synth_nyud_write(o.out, o.seed)
             : is_mvsa ? synth_mvsa_write(o.out, o.seed)
                       : synth_sentiment_write(o.out, variant, o.seed);
    if (rc != 0)
        return fail();
    printf("wrote synth-%s to %s: %.1f MB in %.1f s (seed %llu)\n", variant, o.out,
           file_megabytes(o.out), time_now() - start, (unsigned long long)o.seed);
    return 0;
}

static int cmd_data_fmnist(int argc, char **argv) {
    if (argc >= 2 && is_help(argv[1])) {
        usage_fmnist(stdout);
        return 0;
    }
    GenOptions o;
    if (parse_gen_options(argc, argv, 1, 1, &o) != 0)
        return fail();
    double start = time_now();
    if (fmnist_2view_write(o.out, o.idx, o.seed) != 0)
        return fail();
    printf("wrote fmnist-2view to %s: %.1f MB in %.1f s (seed %llu)\n", o.out,
           file_megabytes(o.out), time_now() - start, (unsigned long long)o.seed);
    return 0;
}

/* Per-modality facts recorded while the reader streams the raw data. */
typedef struct {
    int steps[EUAR_MAX_MODALITIES]; /* T before pooling */
    int min_length[EUAR_MAX_MODALITIES], max_length[EUAR_MAX_MODALITIES];
    double sum_length[EUAR_MAX_MODALITIES];
} InspectStats;

static int record_chunk(void *ctx, const Dataset *ds, int k, int first, int count, Modality *m) {
    InspectStats *st = ctx;
    st->steps[k] = m->t;
    if (!m->lengths)
        return 0;
    for (int i = 0; i < count; i++) {
        int len = m->lengths[i];
        if (first + i == 0 || len < st->min_length[k])
            st->min_length[k] = len;
        if (first + i == 0 || len > st->max_length[k])
            st->max_length[k] = len;
        st->sum_length[k] += len;
    }
    return 0;
}

static void print_modalities(const Dataset *ds, const InspectStats *st) {
    for (int k = 0; k < ds->num_modalities; k++) {
        const Modality *m = &ds->mod[k];
        int present = 0;
        for (int i = 0; i < ds->n; i++)
            present += m->available[i];
        printf("modality  %-10s %-8s ", m->name, modality_kind_name(m->kind));
        if (m->kind == EUAR_KIND_IMAGE)
            printf("[%d, %d, %d, %d]", ds->n, m->c, m->h, m->w);
        else if (m->kind == EUAR_KIND_FEATURES)
            printf("[%d, %d, %d]", ds->n, st->steps[k], m->d);
        else
            printf("[%d, %d] vocab %d", ds->n, st->steps[k], m->vocab);
        if (m->kind != EUAR_KIND_IMAGE)
            printf("  lengths %d..%d (mean %.1f)", st->min_length[k], st->max_length[k],
                   st->sum_length[k] / ds->n);
        printf("  available %d/%d\n", present, ds->n);
    }
}

static void print_regression_labels(const Dataset *ds) {
    for (int s = 0; s < EUAR_SPLIT_COUNT; s++) {
        double sum = 0, sum_sq = 0, lo = INFINITY, hi = -INFINITY;
        int count = 0, zeros = 0, positive = 0;
        for (int i = 0; i < ds->n; i++) {
            if (ds->split[i] != s)
                continue;
            double y = ds->labels[i];
            sum += y;
            sum_sq += y * y;
            lo = fmin(lo, y);
            hi = fmax(hi, y);
            zeros += y == 0;
            positive += y > 0;
            count++;
        }
        double mean = sum / count, var = fmax(sum_sq / count - mean * mean, 0.0);
        printf("labels    %-5s min %.2f  max %.2f  mean %.3f  std %.3f  zero %.1f%%  "
               "positive %.1f%%\n",
               split_name((SplitId)s), lo, hi, mean, sqrt(var), 100.0 * zeros / count,
               100.0 * positive / count);
    }
}

/* Prints `text` left-aligned in `width` columns, counting UTF-8 code points instead of
 * bytes, so that names such as "café" keep the columns after them aligned. */
static void print_padded(const char *text, int width) {
    int points = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        points += (*p & 0xC0) != 0x80; /* continuation bytes do not start a code point */
    printf("%s%*s", text, EUAR_MAX(width - points, 0), "");
}

static void print_class_labels(const Dataset *ds) {
    int *counts = xcalloc((size_t)ds->num_classes * EUAR_SPLIT_COUNT, sizeof(int));
    for (int i = 0; i < ds->n; i++)
        counts[ds->split[i] * ds->num_classes + ds->classes[i]]++;
    printf("%-29s %7s %7s %7s\n", "classes", "train", "valid", "test");
    for (int c = 0; c < ds->num_classes; c++) {
        printf("  %2d ", c);
        print_padded(ds->class_names[c], 24);
        printf(" %7d %7d %7d\n", counts[c], counts[ds->num_classes + c],
               counts[2 * ds->num_classes + c]);
    }
    free(counts);
}

static int cmd_data_inspect(int argc, char **argv) {
    if (argc >= 2 && is_help(argv[1])) {
        usage_inspect(stdout);
        return 0;
    }
    const char *path = NULL;
    DatasetLoadOptions opt = {EUAR_NONFINITE_REJECT, 1, record_chunk, NULL};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--nonfinite") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "reject") == 0)
                opt.nonfinite = EUAR_NONFINITE_REJECT;
            else if (strcmp(v, "zero") == 0)
                opt.nonfinite = EUAR_NONFINITE_ZERO;
            else {
                err_set("--nonfinite: '%s' is invalid; use 'reject' or 'zero'", v);
                return fail();
            }
        } else if (argv[i][0] == '-') {
            err_set("unknown option or missing value '%s'; see --help", argv[i]);
            return fail();
        } else if (!path) {
            path = argv[i];
        } else {
            err_set("unexpected argument '%s'; inspect takes one file", argv[i]);
            return fail();
        }
    }

    if (!path) {
        usage_inspect(stderr);
        return 1;
    }

    InspectStats st;
    memset(&st, 0, sizeof(st));
    opt.ctx = &st;
    Dataset ds;
    if (dataset_load_h5(path, &opt, &ds) != 0)
        return fail();

    printf("file      %s (%.1f MB, format %s version %d)\n", path, file_megabytes(path),
           EUAR_FORMAT_NAME, EUAR_FORMAT_VERSION);
    printf("name      %s\n", ds.name);
    printf("task      %s", ds.task == EUAR_TASK_REGRESSION ? "regression" : "classification");
    if (ds.task == EUAR_TASK_CLASSIFICATION)
        printf(" (%d classes)", ds.num_classes);
    printf("\nsamples   %d (train %d, valid %d, test %d)\n", ds.n,
           dataset_split_count(&ds, EUAR_SPLIT_TRAIN), dataset_split_count(&ds, EUAR_SPLIT_VALID),
           dataset_split_count(&ds, EUAR_SPLIT_TEST));
    print_modalities(&ds, &st);
    if (ds.task == EUAR_TASK_REGRESSION)
        print_regression_labels(&ds);
    else
        print_class_labels(&ds);
    printf("valid: every attribute and array passed the checks\n");
    dataset_free(&ds);
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2) {
        usage_data(stderr);
        return 1;
    }
    const char *action = argv[1];
    if (is_help(action)) {
        usage_data(stdout);
        return 0;
    }
    if (strcmp(action, "synth") == 0)
        return cmd_data_synth(argc - 1, argv + 1);
    if (strcmp(action, "fmnist-2view") == 0)
        return cmd_data_fmnist(argc - 1, argv + 1);
    if (strcmp(action, "import-nyud") == 0)
        return cmd_data_import_nyud(argc - 1, argv + 1);
    if (strcmp(action, "import-mvsa") == 0)
        return cmd_data_import_mvsa(argc - 1, argv + 1);
    if (strcmp(action, "inspect") == 0)
        return cmd_data_inspect(argc - 1, argv + 1);
    if (strcmp(action, "import-pickle") == 0)
        return cmd_data_import_pickle(argc - 1, argv + 1);
    if (strcmp(action, "import-csd") == 0)
        return cmd_data_import_csd(argc - 1, argv + 1);
    fprintf(stderr, "euar: error: unknown data action '%s'\n\n", action);
    usage_data(stderr);
    return 1;
}
