/* `euar data import-nyud` and `euar data import-mvsa`: convert the image sets of QMF's noise
 * experiments into dataset files (docs/import.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/common.h"
#include "datasets/import_images.h"
#include "datasets/import_util.h"

static void usage_import_nyud(FILE *f) {
    fprintf(f, "usage: euar data import-nyud ROOT --out FILE [--size N] [--seed N]\n"
               "                             [--valid-fraction F] [--name NAME]\n\n"
               "Imports NYU Depth V2 scene recognition as QMF prepares it: ROOT/train/<class>/\n"
               "and ROOT/test/<class>/ hold PNG files with the RGB image on the left half and\n"
               "the depth image on the right half. Writes modalities 'rgb' [3, N, N] and 'depth'\n"
               "[1, N, N] (the mean of the depth half's three channels), resized by area\n"
               "averaging. Classes are the folder names under train/ in sorted order; sample\n"
               "ids are the paths relative to ROOT.\n\n"
               "  --out FILE            output HDF5 file (written atomically)\n"
               "  --size N              side of the stored images in pixels (default %d)\n"
               "  --seed N              seed of the train/valid cut (default 1)\n"
               "  --valid-fraction F    share of train/ moved to the valid split, in (0, 1)\n"
               "                        (default %g, as in synth-nyud)\n"
               "  --name NAME           dataset name (default nyud-v2; a name starting with\n"
               "                        'nyud' keeps gaussian noise's default scale of 1)\n",
            IMPORT_DEFAULT_SIZE, NYUD_DEFAULT_VALID_FRACTION);
}

static void usage_import_mvsa(FILE *f) {
    fprintf(f, "usage: euar data import-mvsa DIR --out FILE [--size N] [--max-tokens N]\n"
               "                             [--min-count N] [--name NAME]\n\n"
               "Imports MVSA-Single as QMF prepares it: DIR/train.jsonl, dev.jsonl and\n"
               "test.jsonl, one JSON object per line with \"id\", \"label\" (positive, neutral,\n"
               "negative), \"text\" and \"img\" (an image path relative to DIR). dev.jsonl\n"
               "becomes the valid split. Writes modalities 'image' [3, N, N], resized by area\n"
               "averaging, and 'text' (tokens: lowercase runs of ASCII letters and digits, ids\n"
               "over a vocabulary of the training split; 0 padding, 1 blank, 2 unknown word).\n\n"
               "  --out FILE          output HDF5 file (written atomically)\n"
               "  --size N            side of the stored images in pixels (default %d)\n"
               "  --max-tokens N      words kept per text; longer texts are truncated and\n"
               "                      counted (default %d)\n"
               "  --min-count N       words seen fewer than N times in train map to the\n"
               "                      unknown id (default 1)\n"
               "  --name NAME         dataset name (default mvsa-single; a name starting with\n"
               "                      'mvsa' keeps gaussian noise's default scale of 10)\n",
            IMPORT_DEFAULT_SIZE, MVSA_DEFAULT_MAX_TOKENS);
}

/* Returns the plural ending for a count. */
static const char *plural(long n) {
    return n == 1 ? "" : "s";
}

static int fail(void) {
    fprintf(stderr, "euar: error: %s\n", err_get());
    return 1;
}

static int parse_long(const char *option, const char *text, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
        return err_set("%s: '%s' is not an integer in [%ld, %ld]", option, text, lo, hi);
    *out = v;
    return 0;
}

static int parse_name(const char *text, const char **out) {
    if (import_check_name(text) != 0)
        return -1;
    *out = text;
    return 0;
}

/* Options of both importers, parsed from argv[1..argc); `nyud` selects which are known. */
typedef struct {
    const char *input, *out;
    NyudImportOptions nyud;
    MvsaImportOptions mvsa;
} ImportArgs;

static int parse_import_args(int argc, char **argv, int nyud, ImportArgs *a) {
    memset(a, 0, sizeof(*a));
    nyud_import_defaults(&a->nyud);
    mvsa_import_defaults(&a->mvsa);
    OptionsSeen seen = {{0}, 0};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (opt[0] != '-') {
            if (a->input)
                return err_set("unexpected argument '%s'; the importer takes one %s", opt,
                               nyud ? "ROOT folder" : "DIR folder");
            a->input = opt;
            continue;
        }
        int known = strcmp(opt, "--out") == 0 || strcmp(opt, "--size") == 0 ||
                    strcmp(opt, "--name") == 0 ||
                    (nyud && (strcmp(opt, "--seed") == 0 ||
                              strcmp(opt, "--valid-fraction") == 0)) ||
                    (!nyud && (strcmp(opt, "--max-tokens") == 0 ||
                               strcmp(opt, "--min-count") == 0));
        if (!known)
            return err_set("unknown option '%s'; see --help", opt);
        if (options_seen_add(&seen, opt) != 0)
            return -1;
        if (i + 1 >= argc)
            return err_set("%s needs a value", opt);
        const char *v = argv[++i];
        long number = 0;
        int rc = 0;
        if (strcmp(opt, "--out") == 0) {
            a->out = v;
        } else if (strcmp(opt, "--name") == 0) {
            rc = parse_name(v, &a->nyud.name);
            a->mvsa.name = a->nyud.name;
        } else if (strcmp(opt, "--size") == 0) {
            rc = parse_long(opt, v, 1, IMPORT_MAX_SIZE, &number);
            a->nyud.size = a->mvsa.size = (int)number;
        } else if (strcmp(opt, "--seed") == 0) {
            char *end;
            errno = 0;
            a->nyud.seed = strtoull(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0' || v[0] == '-')
                rc = err_set("--seed: '%s' is not an unsigned integer", v);
        } else if (strcmp(opt, "--valid-fraction") == 0) {
            char *end;
            a->nyud.valid_fraction = strtod(v, &end);
            if (end == v || *end != '\0')
                rc = err_set("--valid-fraction: '%s' is not a number", v);
        } else if (strcmp(opt, "--max-tokens") == 0) {
            rc = parse_long(opt, v, 1, 100000, &number);
            a->mvsa.max_tokens = (int)number;
        } else {
            rc = parse_long(opt, v, 1, 1000000000, &number);
            a->mvsa.min_count = (int)number;
        }
        if (rc != 0)
            return -1;
    }
    if (!a->input)
        return err_set("missing the %s argument; see --help", nyud ? "ROOT" : "DIR");
    if (!a->out)
        return err_set("--out FILE is required");
    return 0;
}

static double megabytes(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
}

/* Runs one importer (`nyud` selects which) from its command line and prints the summary line
 * of the file it wrote. Returns 0 after an import (with `a` and `s` filled), -1 after
 * printing the help, or the exit status of a failure. */
static int run_import(int argc, char **argv, int nyud, ImportArgs *a, ImportSummary *s) {
    void (*usage)(FILE *) = nyud ? usage_import_nyud : usage_import_mvsa;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return -1;
    }
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (parse_import_args(argc, argv, nyud, a) != 0)
        return fail();
    double start = time_now();
    int rc = nyud ? nyud_import(a->input, a->out, &a->nyud, s)
                  : mvsa_import(a->input, a->out, &a->mvsa, s);
    if (rc != 0)
        return fail();
    printf("wrote %s: %d samples (train %d, valid %d, test %d), %d classes, %.1f MB in "
           "%.1f s\n",
           a->out, s->n, s->split_counts[EUAR_SPLIT_TRAIN], s->split_counts[EUAR_SPLIT_VALID],
           s->split_counts[EUAR_SPLIT_TEST], s->num_classes, megabytes(a->out),
           time_now() - start);
    return 0;
}

int cmd_data_import_nyud(int argc, char **argv) {
    ImportArgs a;
    ImportSummary s;
    int rc = run_import(argc, argv, 1, &a, &s);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    printf("modalities rgb [3, %d, %d] and depth [1, %d, %d]; valid split: %g of train by "
           "seed %llu\n",
           a.nyud.size, a.nyud.size, a.nyud.size, a.nyud.size, a.nyud.valid_fraction,
           (unsigned long long)a.nyud.seed);
    if (s.ignored_folders > 0)
        LOG_INFO("%s: ignored %d folder%s besides train/ and test/ (%s); only train/ and "
                 "test/ are read, and valid comes from train/",
                 a.input, s.ignored_folders, plural(s.ignored_folders), s.ignored_names);
    if (s.classes_without_test > 0)
        LOG_WARN("%d class%s of train/ %s no test images (the first is '%s'); the test "
                 "metrics do not cover %s",
                 s.classes_without_test, s.classes_without_test == 1 ? "" : "es",
                 s.classes_without_test == 1 ? "has" : "have", s.first_class_without_test,
                 s.classes_without_test == 1 ? "it" : "them");
    return 0;
}

int cmd_data_import_mvsa(int argc, char **argv) {
    ImportArgs a;
    ImportSummary s;
    int rc = run_import(argc, argv, 0, &a, &s);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    int words = s.vocab - TOKEN_FIRST_WORD;
    printf("modalities image [3, %d, %d] and text [%d] tokens; vocabulary %d: 3 reserved ids "
           "and %d train word%s with count >= %d\n",
           a.mvsa.size, a.mvsa.size, a.mvsa.max_tokens, s.vocab, words, plural(words),
           a.mvsa.min_count);
    printf("text: longest %d word%s; %ld word%s mapped to the unknown id 2 (not in the "
           "vocabulary); %d empty text%s (stored as unavailable)\n",
           s.longest, plural(s.longest), s.unknown_words, plural(s.unknown_words),
           s.empty_texts, plural(s.empty_texts));
    if (s.truncated > 0)
        LOG_WARN("%d text%s %s more than %d word%s and %s truncated (longest %d); raise "
                 "--max-tokens to keep them whole",
                 s.truncated, plural(s.truncated), s.truncated == 1 ? "has" : "have",
                 a.mvsa.max_tokens, plural(a.mvsa.max_tokens),
                 s.truncated == 1 ? "was" : "were", s.longest);
    if (words == 0)
        LOG_WARN("--min-count %d leaves no train word in the vocabulary, so every word maps "
                 "to the unknown id 2; lower --min-count",
                 a.mvsa.min_count);
    if (s.invalid_utf8 > 0)
        LOG_WARN("%d text%s %s not valid UTF-8 (the first in sample '%s'), for example a "
                 "Latin-1 byte; such bytes separate words and never become tokens, so convert "
                 "the files to UTF-8 (iconv -f latin1 -t utf-8)",
                 s.invalid_utf8, plural(s.invalid_utf8), s.invalid_utf8 == 1 ? "is" : "are",
                 s.first_invalid_utf8);
    return 0;
}
