/* Suite files, their grid of cells, and the local runner.
 *
 * A suite file is a JSON object (format_version 1; docs/suites.md has a full example):
 *
 *   format_version  1 (required). A newer version is rejected with a request to update.
 *   name            label of the suite (required); it names the default results folder.
 *   description     free text (optional).
 *   table           the report table the suite feeds, one of EUAR_SUITE_TABLES (default: name,
 *                   which must then be one of them).
 *   models          non-empty array of registered model names (required).
 *   seeds           non-empty array of distinct integers in [0, 2^53] (required).
 *   noise_seed      integer in [0, 2^53] keying every noise draw (default 0).
 *   settings        object of training settings for every cell (optional).
 *   datasets        non-empty array (required) of objects:
 *       label       distinct label of the dataset (required);
 *       path        HDF5 file, relative to the folder euar runs in (required);
 *       nonfinite   "reject" (default) or "zero": NaN and Inf features fail the cell or read
 *                   as 0 (euar train --nonfinite);
 *       settings    object of settings for this dataset's cells (optional);
 *       models      array of model names replacing the suite's models for this dataset
 *                   (optional), for example to add classifiers to a classification dataset;
 *       joint_models  array of models of this dataset (optional) whose cells of the first
 *                   seed also write their joint representations (euar train --joint-out);
 *       conditions  non-empty array (required) of {"label": distinct label (required),
 *                   "noise": noise spec (default "none"), "settings": non-empty object
 *                   (optional) of settings of this condition's cells}.
 *   quick           the variant run by --quick (optional): seeds, models and settings
 *                   replace or extend those above, and datasets is an object
 *                   {"<dataset label>": {"settings": {...}, "models": [...], "skip": true}}
 *                   of per-dataset overrides; a skipped dataset has no quick cells.
 *
 * A settings object maps a key of core/settings.h to a string or a number. Numbers are turned
 * into text, and every value is checked with settings_set_kv() when the file is read. The key
 * seed is rejected because each cell sets it from `seeds`. Unknown keys, wrong types, empty
 * arrays, duplicate labels or keys, unknown models and invalid noise specs are rejected with
 * the file, the JSON path (for example datasets[0].settings.foo) and the value.
 *
 * A condition is test-time when it has no settings and its spec is clean or every term has
 * phase test. Any other condition is a training condition: one with settings (a variant of the
 * model or of training, such as an expert count), a missing term (phase both by default), or a
 * term with phase train or both.
 *
 * A cell is one training run. Each training condition gives one cell per (model, seed), trained
 * and tested under its spec. All test-time conditions of a dataset share one cell per (model,
 * seed), a grouped cell: the model is trained clean and its selected epoch is evaluated on the
 * test split under each test-time spec (`euar train --test-noise LABEL=SPEC`, in suite order).
 * The first clean test-time condition is not passed as --test-noise because the result's
 * metrics.test already holds it; the grouped cell carries its label and index as its condition,
 * or EUAR_SUITE_CLEAN_LABEL and the index of the group's first condition when the group has no
 * clean condition. Cells are ordered dataset, condition, model, seed, with a grouped cell at the
 * position of its first condition.
 *
 * A cell's settings are the defaults, then the suite's settings, the dataset's settings, the
 * condition's settings, the quick settings and the quick dataset settings (--quick only), each
 * overriding the one before, and finally seed = the cell's seed. The models of a dataset are,
 * first found: quick.datasets.<label>.models (--quick), the dataset's models, quick.models
 * (--quick), the suite's models; a cell's model index is its position in that list. The cell's
 * canonical text lists every field and every resolved setting as sorted key=value lines, plus
 * one test_noise.NNN=LABEL=SPEC line per condition of a grouped cell unless its only condition
 * is the clean one, and joint_out=1 for a cell that writes a joint file; 16 hex digits of its
 * 64-bit FNV-1a hash name the result file RESULTS/<hash>.json and the joint file
 * RESULTS/<hash>.joint.h5. */
#ifndef EUAR_SUITE_H
#define EUAR_SUITE_H

#include <stdint.h>

#include "core/settings.h"
#include "noise/noise.h"

#define EUAR_SUITE_FORMAT_VERSION 1
#define EUAR_SUITE_LABEL_LEN 64
#define EUAR_SUITE_PATH_LEN 512
#define EUAR_SUITE_VALUE_LEN 64
#define EUAR_SUITE_MAX_SETTINGS 64
/* Condition label of a grouped cell whose test-time conditions include no clean one. */
#define EUAR_SUITE_CLEAN_LABEL "clean"
/* Report tables a suite can feed, comma-separated: EUAR Table 2 (missing), Table 3 (noise),
 * Fig. 4 (experts), Table 4 (ablation), Fig. 5 (convergence), Table 1 and Fig. 6 (main). */
#define EUAR_SUITE_TABLES "missing,noise,experts,ablation,convergence,main"

/* A settings object of a suite file, values as text in file order. */
typedef struct {
    int count;
    char key[EUAR_SUITE_MAX_SETTINGS][32];
    char value[EUAR_SUITE_MAX_SETTINGS][EUAR_SUITE_VALUE_LEN];
} SuiteSettings;

typedef struct {
    char label[EUAR_SUITE_LABEL_LEN];
    char noise[EUAR_NOISE_TEXT_LEN]; /* canonical text of the spec */
    NoiseSpec spec;
    SuiteSettings settings; /* count 0: none */
    int test_time; /* no settings and suite_spec_is_test_time(&spec) */
} SuiteCondition;

typedef struct {
    int num_models;
    char (*models)[EUAR_SUITE_LABEL_LEN];
    int num_seeds;
    uint64_t *seeds;
} SuiteGrid;

typedef struct {
    char label[EUAR_SUITE_LABEL_LEN];
    char path[EUAR_SUITE_PATH_LEN];
    SuiteSettings settings;
    SuiteSettings quick_settings;
    SuiteGrid grid;       /* models of this dataset; num_models 0: the suite's */
    SuiteGrid quick_grid; /* quick.datasets.<label>.models; num_models 0: none given */
    int quick_skip;       /* quick.datasets.<label>.skip */
    SuiteGrid joint;      /* joint_models; num_models 0: none */
    int nonfinite_zero;   /* "nonfinite": "zero": NaN and Inf features read as 0 */
    int num_conditions;
    SuiteCondition *conditions;
} SuiteDataset;

typedef struct {
    char file[EUAR_SUITE_PATH_LEN]; /* path the suite was read from */
    char name[EUAR_SUITE_LABEL_LEN];
    char table[EUAR_SUITE_LABEL_LEN];
    char *description;
    SuiteGrid grid;
    uint64_t noise_seed;
    SuiteSettings settings;
    int num_datasets;
    SuiteDataset *datasets;
    int has_quick;
    SuiteGrid quick_grid; /* counts of 0: use grid */
    SuiteSettings quick_settings;
} Suite;

/* One training run of the grid. Strings point into the Suite, which must outlive the cell. */
typedef struct {
    const char *suite;
    const char *dataset;
    const char *path;
    const char *condition; /* label; for a grouped cell, the condition of metrics.test */
    int condition_index;
    const char *noise; /* canonical spec text of training, "none" when clean */
    int num_tests;     /* conditions of a grouped cell, 0 for a training condition */
    const SuiteCondition **tests; /* [num_tests] in suite order, owned array */
    uint64_t noise_seed;
    const char *model;
    int model_index;
    uint64_t seed;
    Settings settings;
    int joint;       /* 1: the worker writes RESULTS/<hash>.joint.h5 (--joint-out) */
    int nonfinite_zero; /* 1: the worker reads NaN and Inf features as 0 (--nonfinite zero) */
    char *canonical; /* sorted key=value lines, owned */
    char hash[17];   /* 16 hex digits of hash_fnv1a64(canonical) */
} SuiteCell;

/* Returns 1 when a spec is clean or every term has phase test, so that a model trained clean
 * can be evaluated under it without retraining. */
int suite_spec_is_test_time(const NoiseSpec *spec);

/* Reads and validates a suite file. Returns 0, or -1 with err_set() naming the file, the JSON
 * path and the value; `out` is then empty. */
int suite_load(const char *path, Suite *out);

/* Same as suite_load() on text already in memory; `file` names it in messages. */
int suite_parse_text(const char *text, const char *file, Suite *out);

void suite_free(Suite *s);

/* Expands the grid into cells (quick: the quick variant). Returns 0, or -1 with err_set() when
 * quick is requested and the suite has none. *cells is freed with suite_cells_free(). */
int suite_expand(const Suite *s, int quick, SuiteCell **cells, int *count);

void suite_cells_free(SuiteCell *cells, int count);

/* Resolves the settings of a dataset's cells before the condition's settings and the seed:
 * defaults, the suite's, the dataset's, and with quick the quick settings and the quick
 * dataset settings. */
void suite_dataset_settings(const Suite *s, const SuiteDataset *d, int quick, Settings *out);

/* Returns the models of a dataset in the variant (quick or not) and stores their count. */
char (*suite_dataset_models(const Suite *s, const SuiteDataset *d, int quick,
                            int *count))[EUAR_SUITE_LABEL_LEN];

/* Returns 1 when the dataset has cells in the variant, 0 when quick skips it. */
int suite_dataset_included(const SuiteDataset *d, int quick);

/* Writes the canonical text of a cell (sorted key=value lines) into a new string. */
char *suite_cell_canonical(const SuiteCell *c);

/* Returns 1 when a cell matches an --only pattern: fnmatch(3) against
 * "DATASET/CONDITION/MODEL/SEED" with the cell's condition or, for a grouped cell, any of its
 * conditions, or the pattern equals the cell's hash. */
int suite_cell_matches(const SuiteCell *c, const char *pattern);

/* What the runner does with a cell. */
typedef enum {
    EUAR_CELL_RUN,   /* no result file */
    EUAR_CELL_SKIP,  /* a finished result (status ok or failed) exists */
    EUAR_CELL_RERUN, /* the result file is corrupt or incomplete and must be replaced */
    EUAR_CELL_STALE, /* a finished result records another data_file_hash than the file has */
} SuiteCellPlan;

/* Returns "" when n is 1 and "s" otherwise, for counts in messages ("1 cell", "2 cells"). */
const char *suite_plural(int n);

/* Cache of data file hashes in a results folder (core/file_hash.h), shared by the planner and
 * the workers so that each version of a file is read for its hash once. */
#define EUAR_SUITE_HASH_CACHE "data-hashes.txt"

/* Path of the hash cache of a results folder: DIR/data-hashes.txt. */
void suite_hash_cache_path(const char *dir, char *buf, int cap);

/* Plans every cell with suite_plan(), or suite_plan_read_only() for a dry run. Then prints
 * on stderr one line per dataset with cells planned EUAR_CELL_STALE among the `n` cells at
 * `selected`, saying how many finished cells run again because the file changed. */
void suite_plan_selected(const SuiteCell *cells, int count, const char *dir, int dry_run,
                         const int *selected, int n, SuiteCellPlan *plan);

/* Result file of a cell: DIR/<hash>.json. */
void suite_result_path(const char *dir, const SuiteCell *c, char *buf, int cap);

/* Checkpoint of a cell while it trains: DIR/<hash>.ckpt.h5. */
void suite_checkpoint_path(const char *dir, const SuiteCell *c, char *buf, int cap);

/* Joint file of a cell: DIR/<hash>.joint.h5 (written only when c->joint is 1). */
void suite_joint_path(const char *dir, const SuiteCell *c, char *buf, int cap);

/* Classifies a result file: 1 finished (valid JSON with status "ok" or "failed"), 0 absent,
 * -1 corrupt or incomplete, with the reason in `reason`. */
int suite_result_state(const char *path, char *reason, int cap);

/* Plans each cell from the files in `dir`. A cell that requests a joint file and has a result
 * with status "ok" but no joint file is planned EUAR_CELL_RERUN. A finished result whose
 * "data_file_hash" differs from the hash of the cell's data file now is planned
 * EUAR_CELL_STALE; a result without the field (written by an older euar) stays finished. The
 * hashes come from the cache DIR/data-hashes.txt when DIR exists. Deleting corrupt files is
 * up to the caller. */
void suite_plan(const SuiteCell *cells, int count, const char *dir, SuiteCellPlan *plan);

/* Same as suite_plan(), but writes nothing: data files missing from the hash cache are hashed
 * and the cache is left as it is (for dry runs). */
void suite_plan_read_only(const SuiteCell *cells, int count, const char *dir,
                          SuiteCellPlan *plan);

/* Returns 1 when condition i of a grouped cell is passed to the worker as --test-noise, 0 for
 * the clean condition that the result's metrics.test reports. */
int suite_cell_test_noise(const SuiteCell *c, int i);

/* Writes the condition labels of a cell into buf: its label, or for a grouped cell the labels
 * of its conditions joined by ','. */
void suite_cell_conditions_text(const SuiteCell *c, char *buf, int cap);

/* Builds the argument vector of the worker that runs a cell:
 *   EXE train --data PATH --model M --noise SPEC --noise-seed S
 *       [--test-noise LABEL=SPEC ...] --set key=value ... [--joint-out DIR/<hash>.joint.h5]
 *       [--nonfinite zero] --data-hash-cache DIR/data-hashes.txt --out DIR/<hash>.json --meta suite=NAME --meta dataset=LABEL --meta condition=LABEL
 *       --meta condition_index=I --meta model_index=J --meta hash=H
 * with one --set per setting and, for a grouped cell, one --test-noise per condition in suite
 * order except the clean condition that metrics.test reports. Returns a NULL-terminated array
 * freed by suite_argv_free(). */
char **suite_cell_argv(const SuiteCell *c, const char *exe, const char *dir);
void suite_argv_free(char **argv);

/* Writes DIR/suite.json atomically: the resolved suite (quick or not), its datasets with their
 * models and the settings their cells share before condition settings and the seed, and the
 * list of every cell with its hash, resolved settings apart from the seed and joint file name.
 * Returns 0 or -1 with err_set(). */
int suite_write_resolved(const Suite *s, int quick, const SuiteCell *cells, int count,
                         const char *dir);

/* Checks that DIR/suite.json, when present, belongs to the same suite and variant, so two
 * suites never share a results folder. Returns 0 or -1 with err_set(). */
int suite_check_results_dir(const Suite *s, int quick, const char *dir);

typedef struct {
    int quick;
    int jobs;            /* worker processes, >= 1 */
    int dry_run;
    const char *results; /* results folder */
    const char *only;    /* pattern of suite_cell_matches(), or NULL */
    const char *exe;     /* binary run by the workers */
    int shard_index;     /* with shard_count > 0: run only the selected cells at positions */
    int shard_count;     /* k with k % shard_count == shard_index (suites/suite_slurm.h) */
    const char *cells;   /* cell list file of suite_cells_write_list() replacing --only, or NULL */
    const char *device;  /* --device of every cell, or NULL for the train default (cpu) */
    /* Seconds between the checkpoints of a worker (DIR/<hash>.ckpt.h5, `euar train
     * --checkpoint-every`); 0 after every epoch, negative for none. */
    double checkpoint_every_s;
} SuiteRunOptions;

/* Checks every dataset with cells[todo[0..n-1]] to run before anything is written, so that an
 * invalid cell fails the suite at once instead of failing in every worker: the whole file
 * reads as the workers read it (one streamed pass per dataset, with its "nonfinite" policy),
 * its metadata fits each condition's noise spec and each model's task, and each cell's
 * settings pass settings_check(). Returns 0 or -1 with err_set(). */
int suite_preflight(const Suite *s, const SuiteCell *cells, const int *todo, int n);

/* Returned by suite_results_lock() when the file system has no locks and a shared lock was
 * requested: the caller goes on without one. */
#define EUAR_RESULTS_UNLOCKED (-2)

/* Takes a flock(2) on DIR/.lock without waiting: exclusive for a local runner, so that two
 * runners never share a results folder, or shared for shards and the Slurm submitter, which
 * then exclude only a local runner. The descriptor is close-on-exec, so workers do not hold
 * the lock. Returns the descriptor, EUAR_RESULTS_UNLOCKED, or -1 with err_set(). */
int suite_results_lock(const char *dir, int shared);

/* Runs every unfinished cell of the suite with opt->jobs worker processes and prints one
 * progress line per finished cell on stderr. A shard run (shard_count > 0 or a cell list)
 * shares the results folder with other shards: it takes a shared lock on DIR/.lock and an
 * exclusive lock on DIR/locks/<hash>.lock per cell, so only a local runner excludes it. A
 * shard skips a cell whose lock another process holds. Returns the process exit status: 0,
 * or 1 when the suite is invalid or a cell failed with bad input, crashed or wrote no result.
 * A cell that diverged (worker exit 3, result recorded as failed) does not make the status
 * 1. */
int suite_run(const Suite *s, const SuiteRunOptions *opt);

#endif
