/* Shards of a suite and the Slurm runner.
 *
 * A shard i/n (0 <= i < n) runs the cells at positions k with k % n == i of a fixed list:
 * the cell list file when one is given (--cells), otherwise the cells of the suite in canonical
 * order (dataset, condition, model, seed) that match --only. The list, and so each shard's
 * cells, does not depend on which cells are finished; a shard then skips its finished cells.
 *
 * `euar suite FILE --runner slurm` plans the cells, writes the unfinished ones to a cell list
 * DIR/slurm/cells-<tag>.txt and an sbatch script DIR/slurm/job-<tag>.sbatch for a job array
 * of n tasks, task i running `euar suite FILE --shard i/n --cells LIST`. It submits the script
 * with `sbatch --parsable`, follows the job with `squeue` and the result files, and lists the
 * tasks whose status file DIR/slurm/status/<tag>-<task>.rc is missing or non-zero. */
#ifndef EUAR_SUITE_SLURM_H
#define EUAR_SUITE_SLURM_H

#include "suites/suite.h"

/* Default maximum number of array tasks: Slurm's default MaxArraySize of 1001 allows the task
 * ids 0 to 1000. */
#define EUAR_SLURM_MAX_TASKS 1000
#define EUAR_SLURM_MAX_SBATCH_ARGS 32

/* Parses "i/n" with 0 <= i < n <= 1000000. Returns 0, or -1 with err_set() naming the value
 * and the expected form. */
int suite_parse_shard(const char *text, int *index, int *count);

/* Writes the hashes of cells[todo[0..n-1]], one per line after a comment header, atomically
 * to `path`. Line k (not counting comments) goes to shard k % n. Returns 0 or -1. */
int suite_cells_write_list(const char *path, const Suite *s, int quick, const SuiteCell *cells,
                           const int *todo, int n);

/* Reads a cell list and stores in order[] the position in cells[] of each listed hash.
 * Rejects with err_set() naming the file, the line and the value: a line that is not 16 hex
 * digits, a hash that is not a cell of this suite and variant, a repeated hash and a list
 * without hashes. Returns the number of hashes, or -1. order must hold `count` entries. */
int suite_cells_read_list(const char *path, const SuiteCell *cells, int count, int *order);

/* Stores in selected[] the positions of the cells this run covers: the cell list or the cells
 * matching opt->only, then the shard's share of them. Returns their number (0 for a shard
 * without cells), or -1 with err_set(). selected must hold `count` entries. */
int suite_select_cells(const SuiteCell *cells, int count, const SuiteRunOptions *opt,
                       int *selected);

/* Settings of the job array of the Slurm runner. */
typedef struct {
    int array_size;          /* tasks; 0: one per cell, at most EUAR_SLURM_MAX_TASKS */
    const char *partition;   /* --partition, or NULL */
    const char *time_limit;  /* --time, or NULL */
    int cpus_per_task;       /* --cpus-per-task, >= 1; also the --jobs of each task */
    int gpus_per_task;       /* --gpus-per-task; 0: none requested */
    int num_sbatch_args;
    const char *sbatch_args[EUAR_SLURM_MAX_SBATCH_ARGS]; /* extra #SBATCH lines, verbatim */
    double poll_seconds;     /* interval of the squeue polls */
} SlurmOptions;

/* Checks a Slurm time limit: MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS. Returns 0
 * or -1 with err_set(). */
int suite_slurm_check_time(const char *text);

/* Checks the text of --partition or --sbatch-arg for one #SBATCH line (`what` names the
 * option in the message). Returns 0 or -1 with err_set(). */
int suite_slurm_check_line(const char *what, const char *text);

/* Paths of one submission, all under DIR/slurm/. */
typedef struct {
    char tag[64];
    char script[EUAR_SUITE_PATH_LEN + 128];
    char cells[EUAR_SUITE_PATH_LEN + 128];
    char logs[EUAR_SUITE_PATH_LEN + 128];   /* folder of the task logs */
    char status[EUAR_SUITE_PATH_LEN + 128]; /* folder of the task status files */
} SlurmPaths;

/* Fills the paths of a submission tagged `tag` in the results folder `dir`. */
void suite_slurm_paths(const char *dir, const char *tag, SlurmPaths *out);

/* Writes the log path of array task `task` into buf: LOGS/<tag>-<task>.log. */
void suite_slurm_task_log(const SlurmPaths *p, int task, char *buf, int cap);

/* Returns the text of the sbatch script (freed by the caller) of a job array of `tasks` tasks
 * over `num_cells` listed cells, running `exe` from the folder `cwd` on the suite file `file`
 * with the results folder and variant of `opt`. */
char *suite_slurm_script(const Suite *s, const char *file, const SuiteRunOptions *opt,
                         const SlurmOptions *slurm, const SlurmPaths *paths, const char *cwd,
                         int tasks, int num_cells);

/* Checks the status files of tasks 0..tasks-1 and prints one line per failed task, with its
 * log, on stderr. Returns the number of failed tasks. */
int suite_slurm_failed_tasks(const SlurmPaths *paths, int tasks);

/* Runs the suite as a Slurm job array as described above: with opt->dry_run it prints the
 * script and submits nothing. `file` is the suite file as given on the command line. Returns
 * the exit status: 0 when every listed cell finished and every task exited 0, else 1. */
int suite_slurm_run(const Suite *s, const char *file, const SuiteRunOptions *opt,
                    const SlurmOptions *slurm);

#endif
