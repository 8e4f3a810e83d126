/* euar suite: runs every cell of a suite file, skipping finished ones. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/checkpoint.h"
#include "core/common.h"
#include "suites/suite.h"

static void suite_usage(FILE *f) {
    fprintf(f,
            "usage: euar suite FILE [--quick] [--jobs N] [--results DIR] [--dry-run]\n"
            "                  [--only PATTERN]\n\n"
            "Runs each cell of the suite FILE (dataset x condition x model x seed) as a\n"
            "separate 'euar train' process and writes DIR/<hash>.json per cell. The\n"
            "test-time conditions of a dataset (clean, or noise with phase test only) share\n"
            "one cell per model and seed: trained clean, then tested under each of them.\n"
            "Cells whose result file is finished are skipped, so an interrupted suite resumes.\n"
            "\n"
            "options:\n"
            "  --quick         run the suite's quick variant (fewer seeds, short training)\n"
            "  --jobs N        worker processes at a time (default: online CPUs)\n"
            "  --results DIR   results folder (default: results/NAME, or results/NAME-quick)\n"
            "  --dry-run       list the cells with their hash and state; run nothing\n"
            "  --checkpoint-every S\n"
            "                  seconds between the checkpoints of a running cell\n"
            "                  (DIR/<hash>.ckpt.h5; default 60, 0 after every epoch, -1 none);\n"
            "                  a cell that was killed resumes from its checkpoint\n"
            "  --only PATTERN  run only cells whose DATASET/CONDITION/MODEL/SEED matches the\n"
            "                  shell pattern (for example 'synth-mosi/T+A/*/1'), or a hash;\n"
            "                  a shared cell matches under any of its conditions\n"
            "\nExit status: 0 when every cell finished (a diverged run counts as finished),\n"
            "1 for an invalid suite or when a cell failed with bad input or crashed.\n"
            "Worker logs are in DIR/logs/<hash>.log.\n");
}

/* Parses a positive integer option value. */
static int parse_jobs(const char *text, int *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 1 || v > 4096)
        return err_set("invalid value '%s' for --jobs: expected an integer from 1 to 4096", text);
    *out = (int)v;
    return 0;
}

/* Parses --checkpoint-every: seconds from 0 to one day, or -1 for none. */
static int parse_checkpoint_every(const char *text, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v <= 86400.0) || (v < 0 && v != -1))
        return err_set("invalid value '%s' for --checkpoint-every: expected seconds from 0 to "
                       "86400, or -1 for no checkpoints", text);
    *out = v;
    return 0;
}

int cmd_suite(int argc, char **argv) {
    SuiteRunOptions opt = {0};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    opt.jobs = cpus > 0 ? (int)cpus : 1;
    opt.checkpoint_every_s = EUAR_CHECKPOINT_EVERY_S;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            suite_usage(stdout);
            return 0;
        } else if (strcmp(a, "--quick") == 0) {
            opt.quick = 1;
        } else if (strcmp(a, "--dry-run") == 0) {
            opt.dry_run = 1;
        } else if (strcmp(a, "--jobs") == 0 && has_value) {
            if (parse_jobs(argv[++i], &opt.jobs) != 0) {
                fprintf(stderr, "euar: error: %s\n", err_get());
                return 1;
            }
        } else if (strcmp(a, "--results") == 0 && has_value) {
            opt.results = argv[++i];
        } else if (strcmp(a, "--only") == 0 && has_value) {
            opt.only = argv[++i];
        } else if (strcmp(a, "--checkpoint-every") == 0 && has_value) {
            if (parse_checkpoint_every(argv[++i], &opt.checkpoint_every_s) != 0) {
                fprintf(stderr, "euar: error: %s\n", err_get());
                return 1;
            }
        } else if (strncmp(a, "--", 2) == 0) {
            int known = strcmp(a, "--jobs") == 0 || strcmp(a, "--results") == 0 ||
                        strcmp(a, "--only") == 0 || strcmp(a, "--checkpoint-every") == 0;
            fprintf(stderr, "euar: error: %s '%s'\n\n",
                    known ? "missing value for option" : "unknown option", a);
            suite_usage(stderr);
            return 1;
        } else if (!file) {
            file = a;
        } else {
            fprintf(stderr, "euar: error: more than one suite file ('%s' and '%s')\n\n",
                    file, a);
            suite_usage(stderr);
            return 1;
        }
    }
    if (!file) {
        fprintf(stderr, "euar: error: missing suite FILE\n\n");
        suite_usage(stderr);
        return 1;
    }

    Suite suite;
    if (suite_load(file, &suite) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        return 1;
    }
    char results[EUAR_SUITE_PATH_LEN];
    if (!opt.results) {
        snprintf(results, sizeof(results), "results/%s%s", suite.name,
                 opt.quick ? "-quick" : "");
        opt.results = results;
    }
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len <= 0) {
        fprintf(stderr, "euar: error: cannot find the euar binary through "
                "/proc/self/exe: %s\n", strerror(errno));
        suite_free(&suite);
        return 1;
    }
    exe[len] = '\0';
    opt.exe = exe;
    int rc = suite_run(&suite, &opt);
    suite_free(&suite);
    return rc;
}
