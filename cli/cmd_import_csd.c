/* `euar data import-csd`: converts CMU-MultimodalSDK computational sequences into a dataset
 * file and reports what was dropped, clipped or kept as non-finite. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"
#include "datasets/import_csd.h"

static void usage_import_csd(FILE *f) {
    fprintf(f,
            "usage: euar data import-csd [--text FILE] [--audio FILE] [--vision FILE]\n"
            "                            --labels FILE --folds mosi|mosei|FILE --out FILE\n"
            "                            [--steps T] [--name NAME] [--strict]\n"
            "                            [--nonfinite-rows keep|skip]\n\n"
            "Converts CMU-MultimodalSDK computational sequences (.csd) into a regression\n"
            "dataset. Each label row of a video is a sample with id '<video>[<row>]' and its\n"
            "sentiment (the first label column) as label. The rows of a modality that overlap\n"
            "the sample's interval become its steps; more than T rows are averaged into T\n"
            "groups. See docs/import.md.\n\n"
            "  --text FILE     numeric word features, for example GloVe vectors\n"
            "                  (word sequences of strings are rejected)\n"
            "  --audio FILE    acoustic features, for example COVAREP\n"
            "  --vision FILE   visual features, for example FACET\n"
            "  --labels FILE   the label sequence (CMU-MOSI opinion labels, CMU-MOSEI labels)\n"
            "  --folds SPEC    'mosi' or 'mosei' for the standard folds of the SDK, or a JSON\n"
            "                  file {\"train\": [video ids], \"valid\": [...], \"test\": [...]}\n"
            "  --out FILE      output HDF5 file (written atomically)\n"
            "  --steps T       steps per sample, 1 to 10000 (default 50; 1 stores the mean)\n"
            "  --name NAME     dataset name (default cmu-mosi or cmu-mosei for standard\n"
            "                  folds, else the output file name)\n"
            "  --strict        fail on a segment that a modality lacks, instead of dropping\n"
            "                  and counting it\n"
            "  --nonfinite-rows keep|skip\n"
            "                  rows with NaN or Inf (COVAREP's -inf frames) in a step that\n"
            "                  averages several rows: keep them, which makes the step\n"
            "                  non-finite (default), or leave them out of the mean and count\n"
            "                  them\n");
}

static int fail(void) {
    fprintf(stderr, "euar: error: %s\n", err_get());
    return 1;
}

static int parse_steps(const char *text, int *steps) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > CSD_MAX_STEPS)
        return err_set("--steps: '%s' is invalid; use an integer from 1 to %d", text,
                       CSD_MAX_STEPS);
    *steps = (int)v;
    return 0;
}

static int parse_nonfinite_rows(const char *text, int *skip) {
    if (strcmp(text, "keep") != 0 && strcmp(text, "skip") != 0)
        return err_set("--nonfinite-rows: '%s' is invalid; use 'keep' or 'skip'", text);
    *skip = strcmp(text, "skip") == 0;
    return 0;
}

static int parse_options(int argc, char **argv, CsdImportOptions *o) {
    memset(o, 0, sizeof(*o));
    o->steps = 50;
    OptionsSeen seen = {{0}, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) == 0 && options_seen_add(&seen, a) != 0)
            return -1;
        if (strcmp(a, "--strict") == 0) {
            o->strict = 1;
            continue;
        }
        const char **slot = NULL;
        for (int m = 0; m < CSD_MODALITIES; m++)
            if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, csd_modality_names[m]) == 0)
                slot = &o->modality_paths[m];
        if (strcmp(a, "--labels") == 0)
            slot = &o->labels_path;
        else if (strcmp(a, "--folds") == 0)
            slot = &o->folds;
        else if (strcmp(a, "--out") == 0)
            slot = &o->out_path;
        else if (strcmp(a, "--name") == 0)
            slot = &o->name;
        int steps = strcmp(a, "--steps") == 0, rows = strcmp(a, "--nonfinite-rows") == 0;
        if (!slot && !steps && !rows)
            return err_set("unknown option '%s'; see 'euar data import-csd --help'", a);
        if (i + 1 >= argc)
            return err_set("%s needs a value", a);
        const char *v = argv[++i];
        if (slot)
            *slot = v;
        else if (steps && parse_steps(v, &o->steps) != 0)
            return -1;
        else if (rows && parse_nonfinite_rows(v, &o->skip_nonfinite_rows) != 0)
            return -1;
    }
    return 0;
}

/* Returns the plural ending for a count. */
static const char *plural(size_t n) {
    return n == 1 ? "" : "s";
}

static void print_warnings(const CsdImportOptions *o, const CsdImportReport *r) {
    if (r->no_fold_segments > 0)
        LOG_WARN("dropped %d label segment%s of %d video%s in no fold of '%s' (the first "
                 "such video is '%s')",
                 r->no_fold_segments, plural(r->no_fold_segments), r->no_fold_videos,
                 plural(r->no_fold_videos), o->folds, r->first_no_fold);
    for (int m = 0; m < CSD_MODALITIES; m++)
        if (r->missing[m] > 0)
            LOG_WARN("%s: dropped %d label segment%s without %s rows (the first is '%s'); "
                     "--strict makes this an error",
                     csd_modality_names[m], r->missing[m], plural(r->missing[m]),
                     csd_modality_names[m], r->first_missing[m]);
    if (r->clipped_labels > 0)
        LOG_WARN("clipped %d label%s outside [-3, 3] (min %.3g, max %.3g of the clipped) to "
                 "the range that the dataset format allows",
                 r->clipped_labels, plural(r->clipped_labels), r->clipped_min, r->clipped_max);
    for (int m = 0; m < CSD_MODALITIES; m++)
        if (r->skipped_rows[m] > 0)
            LOG_WARN("%s: left %zu row%s with NaN or Inf out of averaged steps "
                     "(--nonfinite-rows skip)",
                     csd_modality_names[m], r->skipped_rows[m], plural(r->skipped_rows[m]));
    for (int m = 0; m < CSD_MODALITIES; m++)
        if (r->nonfinite[m] > 0)
            LOG_WARN("%s: kept %zu non-finite value%s (NaN or Inf) in %d sample%s; load the "
                     "file with '--nonfinite zero' (euar train, euar data inspect) to replace "
                     "them with 0, or clean the source features%s",
                     csd_modality_names[m], r->nonfinite[m], plural(r->nonfinite[m]),
                     r->nonfinite_samples[m], plural((size_t)r->nonfinite_samples[m]),
                     o->skip_nonfinite_rows ? ""
                                            : "; '--nonfinite-rows skip' leaves such rows "
                                              "out of averaged steps");
}

static void print_summary(const CsdImportOptions *o, const CsdImportReport *r) {
    printf("labels    %d segments read, %d of zero duration skipped, %d in no fold, "
           "%d without rows in a modality\n",
           r->label_segments, r->zero_length, r->no_fold_segments, r->dropped_missing);
    for (int m = 0; m < CSD_MODALITIES; m++) {
        if (!o->modality_paths[m])
            continue;
        printf("modality  %-7s [%d, %d, %d] from %s", csd_modality_names[m], r->samples,
               o->steps, r->dims[m], o->modality_paths[m]);
        if (r->averaged[m] > 0)
            printf(" (%d sample%s with more than %d row%s averaged)", r->averaged[m],
                   plural((size_t)r->averaged[m]), o->steps, plural((size_t)o->steps));
        printf("\n");
    }
    printf("wrote %s to %s: %d samples (train %d, valid %d, test %d)\n", r->name, o->out_path,
           r->samples, r->split_samples[EUAR_SPLIT_TRAIN], r->split_samples[EUAR_SPLIT_VALID],
           r->split_samples[EUAR_SPLIT_TEST]);
}

int cmd_data_import_csd(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage_import_csd(stdout);
        return 0;
    }
    if (argc < 2) {
        usage_import_csd(stderr);
        return 1;
    }
    CsdImportOptions o;
    CsdImportReport r;
    if (parse_options(argc, argv, &o) != 0 || csd_import(&o, &r) != 0)
        return fail();
    print_warnings(&o, &r);
    print_summary(&o, &r);
    return 0;
}
