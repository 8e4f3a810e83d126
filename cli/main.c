/* bin/euar: one binary with subcommands for data, training, suites and reports. */
#include <stdio.h>
#include <string.h>

#include <hdf5.h>

#include "cli/cli.h"
#include "core/common.h"

static void usage(FILE *f) {
    fprintf(f, "euar-bench %s: reproducibility suite for EUAR and its baselines\n\n"
               "usage: euar <command> [options]\n\n"
               "commands:\n"
               "  data     generate, import or inspect datasets (euar data --help)\n"
               "  train    train one model on one dataset and write its result\n"
               "  suite    run a suite file: every cell of its grid, resumable\n"
               "  report   aggregate a results folder into tables\n"
               "  check    compare results with a stored baseline (exit 1 on a regression)\n"
               "  bench    time training epochs and report peak memory\n\n"
               "Run 'euar <command> --help' for the options of a command.\n",
            EUAR_VERSION);
}

int main(int argc, char **argv) {
    /* libhdf5 1.10.8 crashes in its exit handler after a failed write of a file on disk (a
     * full disk or a file-size limit). Every file is closed explicitly, so the handler is not
     * needed; it must be turned off before the first HDF5 call. */
    H5dont_atexit();
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("euar-bench %s\n", EUAR_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {
        {"data", cmd_data},     {"train", cmd_train}, {"suite", cmd_suite},
        {"report", cmd_report}, {"bench", cmd_bench}, {"check", cmd_check},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "euar: error: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 1;
}
