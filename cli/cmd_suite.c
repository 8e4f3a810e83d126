/* euar suite: runs every cell of a suite file, skipping finished ones, with local worker
 * processes or as a Slurm job array. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/backend.h"
#include "core/checkpoint.h"
#include "core/common.h"
#include "suites/suite.h"
#include "suites/suite_slurm.h"

static void suite_usage(FILE *f) {
    fprintf(f,
            "usage: euar suite FILE [--quick] [--jobs N] [--results DIR] [--dry-run]\n"
            "                  [--only PATTERN | --cells LIST] [--shard INDEX/COUNT]\n"
            "                  [--device NAME]\n"
            "       euar suite FILE --runner slurm [--quick] [--results DIR] [--dry-run]\n"
            "                  [--only PATTERN] [--array-size N] [--partition P]\n"
            "                  [--time HH:MM:SS] [--cpus-per-task C] [--gpus-per-task G]\n"
            "                  [--sbatch-arg OPTION ...] [--poll SECONDS]\n\n"
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
            "  --dry-run       list the cells with their hash and state; run nothing (with\n"
            "                  --runner slurm: print the job script; submit nothing)\n"
            "  --checkpoint-every S\n"
            "                  seconds between the checkpoints of a running cell\n"
            "                  (DIR/<hash>.ckpt.h5; default 60, 0 after every epoch, -1 none);\n"
            "                  a cell that was killed resumes from its checkpoint\n"
            "  --only PATTERN  run only cells whose DATASET/CONDITION/MODEL/SEED matches the\n"
            "                  shell pattern (for example 'synth-mosi/T+A/*/1'), or a hash;\n"
            "                  a shared cell matches under any of its conditions\n"
            "  --device NAME   device of every cell: cpu (default), cuda or auto; not part of\n"
            "                  a cell's hash, so use a separate --results folder per device\n"
            "  --cells LIST    run only the cells whose hashes LIST has, one per line\n"
            "  --shard I/N     run only the cells at positions k with k mod N == I (0 <= I < N)\n"
            "                  of the --cells list, or of all cells (--only: of those matching)\n"
            "                  in suite order; shards may share a results folder\n"
            "\nSlurm (docs/slurm.md):\n"
            "  --runner R      'local' (default) or 'slurm': submit the unfinished cells as a\n"
            "                  job array with sbatch, follow it with squeue and report the end\n"
            "  --array-size N  array tasks (default: one per cell, at most %d)\n"
            "  --partition P   Slurm partition of the tasks (default: the cluster's)\n"
            "  --time T        time limit of each task, for example 02:00:00\n"
            "  --cpus-per-task C  CPUs of each task and its worker processes (default 1)\n"
            "  --gpus-per-task G  GPUs of each task (default: none requested)\n"
            "  --sbatch-arg X  extra sbatch option, one #SBATCH line each, for example\n"
            "                  --sbatch-arg=--account=NAME; repeatable\n"
            "  --poll SECONDS  interval of the squeue polls (default 10)\n"
            "\nExit status: 0 when every cell finished (a diverged run counts as finished),\n"
            "1 for an invalid suite or when a cell failed with bad input or crashed, or a\n"
            "Slurm task failed.\n"
            "Worker logs are in DIR/logs/<hash>.log, Slurm task logs in DIR/slurm/logs/.\n",
            EUAR_SLURM_MAX_TASKS);
}

/* Parses an integer option value in [min, max]. */
static int parse_int(const char *option, const char *text, int min, int max, int *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return err_set("invalid value '%s' for %s: expected an integer from %d to %d", text,
                       option, min, max);
    *out = (int)v;
    return 0;
}

/* Parses the --poll interval in seconds. */
static int parse_poll(const char *text, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= 0.1 && v <= 3600))
        return err_set("invalid value '%s' for --poll: expected seconds from 0.1 to 3600",
                       text);
    *out = v;
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

/* Options of the command line besides the run options. */
typedef struct {
    const char *file;
    const char *runner;
    const char *slurm_only; /* first Slurm option given, for the check against the runner */
    int jobs_given;
} SuiteArgs;

/* Parses one option that takes a value. Returns 0, or -1 with err_set(). */
static int parse_value(const char *a, const char *v, SuiteArgs *args, SuiteRunOptions *opt,
                       SlurmOptions *slurm) {
    int is_slurm = strcmp(a, "--array-size") == 0 || strcmp(a, "--partition") == 0 ||
                   strcmp(a, "--time") == 0 || strcmp(a, "--cpus-per-task") == 0 ||
                   strcmp(a, "--gpus-per-task") == 0 || strcmp(a, "--sbatch-arg") == 0 ||
                   strcmp(a, "--poll") == 0;
    if (is_slurm && !args->slurm_only)
        args->slurm_only = a;
    if (strcmp(a, "--jobs") == 0) {
        args->jobs_given = 1;
        return parse_int(a, v, 1, 4096, &opt->jobs);
    }
    if (strcmp(a, "--results") == 0)
        opt->results = v;
    else if (strcmp(a, "--only") == 0)
        opt->only = v;
    else if (strcmp(a, "--cells") == 0)
        opt->cells = v;
    else if (strcmp(a, "--device") == 0)
        opt->device = v;
    else if (strcmp(a, "--checkpoint-every") == 0)
        return parse_checkpoint_every(v, &opt->checkpoint_every_s);
    else if (strcmp(a, "--shard") == 0)
        return suite_parse_shard(v, &opt->shard_index, &opt->shard_count);
    else if (strcmp(a, "--runner") == 0) {
        if (strcmp(v, "local") != 0 && strcmp(v, "slurm") != 0)
            return err_set("invalid value '%s' for --runner: expected 'local' or 'slurm'", v);
        args->runner = v;
    } else if (strcmp(a, "--array-size") == 0)
        return parse_int(a, v, 1, 1000000, &slurm->array_size);
    else if (strcmp(a, "--partition") == 0) {
        slurm->partition = v;
        return suite_slurm_check_line(a, v);
    } else if (strcmp(a, "--time") == 0) {
        slurm->time_limit = v;
        return suite_slurm_check_time(v);
    } else if (strcmp(a, "--cpus-per-task") == 0)
        return parse_int(a, v, 1, 4096, &slurm->cpus_per_task);
    else if (strcmp(a, "--gpus-per-task") == 0)
        return parse_int(a, v, 0, 64, &slurm->gpus_per_task);
    else if (strcmp(a, "--sbatch-arg") == 0) {
        if (slurm->num_sbatch_args == EUAR_SLURM_MAX_SBATCH_ARGS)
            return err_set("more than %d --sbatch-arg options; put the rest in the "
                           "cluster's defaults", EUAR_SLURM_MAX_SBATCH_ARGS);
        slurm->sbatch_args[slurm->num_sbatch_args++] = v;
        return suite_slurm_check_line(a, v);
    } else if (strcmp(a, "--poll") == 0)
        return parse_poll(v, &slurm->poll_seconds);
    else
        return err_set("unknown option '%s'", a);
    return 0;
}

static int takes_value(const char *a) {
    static const char *const names[] = {
        "--jobs", "--results", "--only", "--cells", "--shard", "--runner", "--array-size",
        "--partition", "--time", "--cpus-per-task", "--gpus-per-task", "--sbatch-arg",
        "--poll", "--device", "--checkpoint-every"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(a, names[i]) == 0)
            return 1;
    return 0;
}

/* Rejects combinations of options that contradict each other. */
static int check_combination(const SuiteArgs *args, const SuiteRunOptions *opt) {
    int slurm = args->runner && strcmp(args->runner, "slurm") == 0;
    if (!slurm && args->slurm_only)
        return err_set("%s applies only to --runner slurm", args->slurm_only);
    if (slurm && (opt->shard_count > 0 || opt->cells))
        return err_set("--shard and --cells select the cells of one task; --runner slurm "
                       "writes them into the job script itself");
    if (slurm && args->jobs_given)
        return err_set("--jobs does not apply to --runner slurm: each task runs "
                       "--cpus-per-task worker processes");
    if (opt->only && opt->cells)
        return err_set("--only and --cells both select cells; give one of them");
    /* Checked once here, so a missing GPU is one error and not one per cell. The tasks of a
     * Slurm job check it on their own nodes, since a login node often has no GPU. */
    if (opt->device && !slurm && backend_check(opt->device) != 0)
        return err_prefix("--device %s: ", opt->device);
    return 0;
}

int cmd_suite(int argc, char **argv) {
    SuiteRunOptions opt = {0};
    SlurmOptions slurm = {.cpus_per_task = 1, .poll_seconds = 10};
    SuiteArgs args = {0};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    opt.jobs = cpus > 0 ? (int)cpus : 1;
    opt.checkpoint_every_s = EUAR_CHECKPOINT_EVERY_S;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* --option=value is the same as --option value. */
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        char name[32];
        if (eq && (size_t)(eq - a) < sizeof(name)) {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
            if (takes_value(name)) {
                if (parse_value(name, eq + 1, &args, &opt, &slurm) != 0) {
                    fprintf(stderr, "euar: error: %s\n", err_get());
                    return 1;
                }
                continue;
            }
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            suite_usage(stdout);
            return 0;
        } else if (strcmp(a, "--quick") == 0) {
            opt.quick = 1;
        } else if (strcmp(a, "--dry-run") == 0) {
            opt.dry_run = 1;
        } else if (takes_value(a) && i + 1 < argc) {
            if (parse_value(a, argv[++i], &args, &opt, &slurm) != 0) {
                fprintf(stderr, "euar: error: %s\n", err_get());
                return 1;
            }
        } else if (strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "euar: error: %s '%s'\n\n",
                    takes_value(a) ? "missing value for option" : "unknown option", a);
            suite_usage(stderr);
            return 1;
        } else if (!args.file) {
            args.file = a;
        } else {
            fprintf(stderr, "euar: error: more than one suite file ('%s' and '%s')\n\n",
                    args.file, a);
            suite_usage(stderr);
            return 1;
        }
    }
    if (!args.file) {
        fprintf(stderr, "euar: error: missing suite FILE\n\n");
        suite_usage(stderr);
        return 1;
    }
    if (check_combination(&args, &opt) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        return 1;
    }

    Suite suite;
    if (suite_load(args.file, &suite) != 0) {
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
    int rc = args.runner && strcmp(args.runner, "slurm") == 0
                 ? suite_slurm_run(&suite, args.file, &opt, &slurm)
                 : suite_run(&suite, &opt);
    suite_free(&suite);
    return rc;
}
