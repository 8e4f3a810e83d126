/* Subcommands of bin/euar. Each parses its own arguments (argv[0] is the subcommand name)
 * and returns the process exit status: 0 success, 1 bad input or usage (message printed),
 * 3 a training run that diverged (result recorded as failed). */
#ifndef EUAR_CLI_H
#define EUAR_CLI_H

int cmd_data(int argc, char **argv);
int cmd_data_import_csd(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_suite(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_check(int argc, char **argv);

/* `euar data import-pickle` (argv[0] is "import-pickle"): runs datasets/import_pickle.py. */
int cmd_data_import_pickle(int argc, char **argv);
/* `euar data import-nyud` and `euar data import-mvsa` (cli/cmd_import_images.c). */
int cmd_data_import_nyud(int argc, char **argv);
int cmd_data_import_mvsa(int argc, char **argv);

/* The options a parser has met so far, for rejecting an option given twice (instead of
 * keeping the last value silently). Zero-initialise before use. */
typedef struct {
    const char *names[32];
    int count;
} OptionsSeen;

/* Records `option`. Returns 0, or -1 with err_set() ("--text given twice") when it was
 * recorded before. */
int options_seen_add(OptionsSeen *seen, const char *option);

#endif
