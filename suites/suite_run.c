/* Local runner of a suite: worker processes (fork + execv of `euar train`), one per cell,
 * at most opt->jobs at a time. */
#include "suite.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "core/model.h"
#include "datasets/dataset.h"
#include "report/text.h"
#include "suites/suite_slurm.h"

typedef struct {
    pid_t pid;
    int cell;
    double start;
    int lock_fd; /* DIR/locks/<hash>.lock of a shard run, or -1 */
} Worker;

typedef struct {
    int ok, diverged, failed, skipped;
    int busy; /* cells of a shard run whose lock another process holds */
} RunCounts;

/* Appends --checkpoint DIR/<hash>.ckpt.h5 --checkpoint-every S to a worker's arguments.
 * They stay out of the cell's canonical text: checkpoints do not change a result. */
static char **add_checkpoint_args(char **argv, const SuiteCell *c, const char *dir,
                                  double every_s) {
    int n = 0;
    while (argv[n])
        n++;
    argv = xrealloc(argv, sizeof(char *) * (size_t)(n + 5));
    char path[EUAR_SUITE_PATH_LEN + 32], seconds[32];
    suite_checkpoint_path(dir, c, path, sizeof(path));
    snprintf(seconds, sizeof(seconds), "%g", every_s);
    argv[n++] = xstrdup("--checkpoint");
    argv[n++] = xstrdup(path);
    argv[n++] = xstrdup("--checkpoint-every");
    argv[n++] = xstrdup(seconds);
    argv[n] = NULL;
    return argv;
}

/* Starts the worker of one cell with stdout and stderr in DIR/logs/<hash>.log, the command
 * line on the first line of the log, and one BLAS thread. Returns the pid, or -1 with
 * err_set() when fork fails. */
static pid_t worker_start(const SuiteCell *c, const char *exe, const char *dir,
                          const char *device, double checkpoint_every_s) {
    char **argv = suite_cell_argv(c, exe, dir);
    if (checkpoint_every_s >= 0)
        argv = add_checkpoint_args(argv, c, dir, checkpoint_every_s);
    if (device) {
        /* --device is not part of the cell's settings or hash: it picks where the cell runs. */
        size_t n = 0;
        while (argv[n])
            n++;
        argv = xrealloc(argv, (n + 3) * sizeof(char *));
        argv[n] = xstrdup("--device");
        argv[n + 1] = xstrdup(device);
        argv[n + 2] = NULL;
    }
    TextBuf command = {0};
    for (char **p = argv; *p; p++) {
        text_append_quoted(&command, *p);
        text_printf(&command, " ");
    }
    char *command_text = text_finish(&command);
    char log_path[EUAR_SUITE_PATH_LEN + 64];
    snprintf(log_path, sizeof(log_path), "%s/logs/%s.log", dir, c->hash);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        suite_argv_free(argv);
        free(command_text);
        return err_set("cannot start a worker process: fork failed: %s", strerror(errno));
    }
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            dprintf(2, "euar: error: cannot create %s: %s\n", log_path, strerror(errno));
            _exit(127);
        }
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0) {
            dup2(null_fd, 0);
            close(null_fd);
        }
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        dprintf(1, "# %s\n", command_text);
        /* One BLAS thread per worker: the workers already fill the cores. */
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execv(exe, argv);
        dprintf(2, "euar: error: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    suite_argv_free(argv);
    free(command_text);
    return pid;
}

/* Prints the progress line of a finished worker and counts it. */
static void worker_report(const SuiteCell *c, const Worker *w, int status, int done, int total,
                          const char *dir, RunCounts *counts) {
    double seconds = time_now() - w->start;
    char log_path[EUAR_SUITE_PATH_LEN + 64], result[EUAR_SUITE_PATH_LEN + 32], reason[256];
    snprintf(log_path, sizeof(log_path), "%s/logs/%s.log", dir, c->hash);
    suite_result_path(dir, c, result, sizeof(result));
    char outcome[EUAR_SUITE_PATH_LEN + 160];
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (suite_result_state(result, reason, sizeof(reason)) > 0) {
            snprintf(outcome, sizeof(outcome), "ok %.1f s", seconds);
            counts->ok++;
        } else {
            snprintf(outcome, sizeof(outcome), "failed: the worker exited 0 but wrote no "
                     "finished result, see %s", log_path);
            counts->failed++;
        }
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        snprintf(outcome, sizeof(outcome), "diverged, result recorded as failed, %.1f s, see %s",
                 seconds, log_path);
        counts->diverged++;
    } else if (WIFEXITED(status)) {
        snprintf(outcome, sizeof(outcome), "failed (exit status %d), see %s",
                 WEXITSTATUS(status), log_path);
        counts->failed++;
    } else if (WIFSIGNALED(status)) {
        snprintf(outcome, sizeof(outcome), "crashed (signal %d, %s), see %s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), log_path);
        counts->failed++;
    } else {
        snprintf(outcome, sizeof(outcome), "failed (wait status %d), see %s", status, log_path);
        counts->failed++;
    }
    char conditions[EUAR_SUITE_PATH_LEN];
    suite_cell_conditions_text(c, conditions, sizeof(conditions));
    fprintf(stderr, "[%d/%d] %s %s %s seed %" PRIu64 ": %s\n", done, total, c->dataset,
            conditions, c->model, c->seed, outcome);
}

/* Deletes the result file of a cell planned EUAR_CELL_RERUN. Returns 0 or -1 with err_set(). */
static int delete_corrupt_result(const SuiteCell *c, const char *dir) {
    char path[EUAR_SUITE_PATH_LEN + 32], reason[256];
    suite_result_path(dir, c, path, sizeof(path));
    if (suite_result_state(path, reason, sizeof(reason)) > 0)
        snprintf(reason, sizeof(reason), "status ok without its joint file");
    LOG_WARN("result file %s of %s/%s/%s/%" PRIu64 " is corrupt or incomplete (%s); "
             "deleting it and running the cell again", path, c->dataset, c->condition,
             c->model, c->seed, reason);
    if (unlink(path) != 0 && errno != ENOENT)
        return err_set("cannot delete %s: %s; delete it by hand and run the suite again", path,
                       strerror(errno));
    return 0;
}

/* Deletes DIR/<hash>.json.tmp.* of a cell whose lock this process holds: a worker of another
 * host, whose pid cannot be checked here, left it when it was killed. */
static void remove_cell_temp(const SuiteCell *c, const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    char prefix[40];
    snprintf(prefix, sizeof(prefix), "%s.json.tmp.", c->hash);
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (strncmp(entry->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char path[EUAR_SUITE_PATH_LEN + 300];
        snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
        if (unlink(path) != 0)
            LOG_WARN("cannot delete the stale temporary file %s: %s", path, strerror(errno));
    }
    closedir(d);
}

/* Returns 1 when flock(2) failed because the file system has no locks (NFS without a lock
 * manager, Lustre mounted without -o flock). */
static int lock_unsupported(int err) {
    return err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL;
}

/* Outcome of claim_cell(). */
enum { CLAIM_RUN = 0, CLAIM_BUSY = 1, CLAIM_FINISHED = 2, CLAIM_FAILED = 3 };

/* Takes the exclusive lock DIR/locks/<hash>.lock of a cell for a shard run, then checks its
 * result again, since another shard may have finished it since the plan. Stores the lock
 * descriptor (-1 where locks are unsupported) in *lock_fd. */
static int claim_cell(const SuiteCell *c, const char *dir, int *lock_fd) {
    *lock_fd = -1;
    char path[EUAR_SUITE_PATH_LEN + 64];
    snprintf(path, sizeof(path), "%s/locks/%s.lock", dir, c->hash);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        err_set("cannot create %s: %s; check that the results folder is writable", path,
                strerror(errno));
        return CLAIM_FAILED;
    }
    int locked = 1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        close(fd);
        fd = -1;
        if (err == EWOULDBLOCK)
            return CLAIM_BUSY;
        if (!lock_unsupported(err)) {
            err_set("cannot lock %s: %s", path, strerror(err));
            return CLAIM_FAILED;
        }
        locked = 0;
    }
    SuiteCellPlan plan;
    suite_plan(c, 1, dir, &plan);
    if (plan == EUAR_CELL_SKIP) {
        if (fd >= 0)
            close(fd);
        return CLAIM_FINISHED;
    }
    if (plan == EUAR_CELL_RERUN && delete_corrupt_result(c, dir) != 0) {
        if (fd >= 0)
            close(fd);
        return CLAIM_FAILED;
    }
    if (locked)
        remove_cell_temp(c, dir);
    *lock_fd = fd;
    return CLAIM_RUN;
}

/* Claims the cell of a shard run before its worker starts. Returns 1 when the cell is to run,
 * 0 when it is skipped or failed (counted and reported here). */
static int claim_or_skip(const SuiteCell *c, const char *dir, int *lock_fd, RunCounts *counts) {
    int claim = claim_cell(c, dir, lock_fd);
    if (claim == CLAIM_RUN)
        return 1;
    if (claim == CLAIM_FAILED) {
        LOG_ERROR("%s", err_get());
        counts->failed++;
    } else if (claim == CLAIM_BUSY) {
        LOG_INFO("%s/%s/%s/%" PRIu64 " (%s) is running in another process; skipping it",
                 c->dataset, c->condition, c->model, c->seed, c->hash);
        counts->busy++;
    } else {
        LOG_INFO("%s/%s/%s/%" PRIu64 " (%s) was finished by another process; skipping it",
                 c->dataset, c->condition, c->model, c->seed, c->hash);
        counts->skipped++;
    }
    return 0;
}

/* Runs the cells listed in `todo` with up to `jobs` workers. With `claim`, each cell is first
 * claimed with claim_or_skip() and its lock is held until its worker ends. */
static int run_cells(const SuiteCell *cells, const int *todo, int n, int jobs, const char *exe,
                     const char *dir, const char *device, double checkpoint_every_s,
                     int claim, RunCounts *counts) {
    jobs = EUAR_MAX(1, EUAR_MIN(jobs, n));
    Worker *workers = xcalloc((size_t)jobs, sizeof(Worker));
    int next = 0, running = 0, done = 0;
    while (next < n || running > 0) {
        while (running < jobs && next < n) {
            int slot = 0;
            while (workers[slot].pid != 0)
                slot++;
            int lock_fd = -1;
            if (claim && !claim_or_skip(&cells[todo[next]], dir, &lock_fd, counts)) {
                done++;
                next++;
                continue;
            }
            pid_t pid = worker_start(&cells[todo[next]], exe, dir, device,
                                     checkpoint_every_s);
            if (pid < 0) {
                /* A failed fork counts as a failed cell; the suite goes on with the others. */
                LOG_ERROR("%s", err_get());
                if (lock_fd >= 0)
                    close(lock_fd);
                counts->failed++;
                done++;
                next++;
                continue;
            }
            workers[slot] = (Worker){.pid = pid, .cell = todo[next], .start = time_now(),
                                     .lock_fd = lock_fd};
            running++;
            next++;
        }
        if (running == 0)
            continue;
        int status = 0;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            euar_fatal(__FILE__, __LINE__, "waitpid failed: %s", strerror(errno));
        }
        for (int i = 0; i < jobs; i++) {
            if (workers[i].pid != pid)
                continue;
            done++;
            worker_report(&cells[workers[i].cell], &workers[i], status, done, n, dir, counts);
            if (workers[i].lock_fd >= 0)
                close(workers[i].lock_fd);
            workers[i].pid = 0;
            running--;
            break;
        }
    }
    free(workers);
    return 0;
}

static const char *plan_name(SuiteCellPlan plan) {
    switch (plan) {
    case EUAR_CELL_RUN:
        return "pending";
    case EUAR_CELL_SKIP:
        return "finished";
    case EUAR_CELL_RERUN:
        return "corrupt";
    case EUAR_CELL_STALE:
        return "changed";
    }
    return "?";
}

/* Checks one dataset against the cells that will run on it. The whole file is read as a worker
 * reads it (metadata, shapes, labels, and NaN or Inf features unless its "nonfinite" is
 * "zero"). Then come the noise spec of each condition, each model against the task, and the
 * rules that tie the settings of each cell together. */
static int preflight_dataset(const Suite *s, const SuiteDataset *ds, const SuiteCell *cells,
                             const int *todo, int n) {
    if (access(ds->path, R_OK) != 0)
        return err_set("suite file %s: dataset '%s': cannot read %s: %s; create the file "
                       "('make data' generates the default datasets) or fix its \"path\"",
                       s->file, ds->label, ds->path, strerror(errno));
    for (int i = 0; i < n; i++) {
        const SuiteCell *c = &cells[todo[i]];
        if (strcmp(c->dataset, ds->label) == 0 && settings_check(&c->settings) != 0)
            return err_prefix("suite file %s: dataset '%s', condition '%s'", s->file,
                              ds->label, c->condition);
    }
    /* One streamed pass over the whole file with the dataset's policy for NaN and Inf, as the
     * workers read it. Features are pooled chunk by chunk, so memory keeps [N, D] per
     * modality. */
    DatasetLoadOptions load = {0};
    load.nonfinite = ds->nonfinite_zero ? EUAR_NONFINITE_ZERO : EUAR_NONFINITE_REJECT;
    load.pool_features = 1;
    Dataset info;
    if (dataset_load_h5(ds->path, &load, &info) != 0)
        return err_prefix("suite file %s: dataset '%s'", s->file, ds->label);
    int rc = 0;
    for (int c = 0; c < ds->num_conditions && rc == 0; c++)
        if (noise_check_dataset(&ds->conditions[c].spec, &info) != 0)
            rc = err_prefix("suite file %s: dataset '%s' (%s), condition '%s'", s->file,
                            ds->label, ds->path, ds->conditions[c].label);
    int classification = info.task == EUAR_TASK_CLASSIFICATION;
    for (int i = 0; i < n && rc == 0; i++) {
        const SuiteCell *c = &cells[todo[i]];
        char why[256];
        if (strcmp(c->dataset, ds->label) == 0 &&
            !model_supports_task(c->model, classification, why, sizeof(why)))
            rc = err_set("suite file %s: dataset '%s' (%s), model '%s': %s", s->file,
                         ds->label, ds->path, c->model, why);
    }
    dataset_free(&info);
    return rc;
}

int suite_preflight(const Suite *s, const SuiteCell *cells, const int *todo, int n) {
    for (int d = 0; d < s->num_datasets; d++) {
        const SuiteDataset *ds = &s->datasets[d];
        int used = 0;
        for (int i = 0; i < n && !used; i++)
            used = strcmp(cells[todo[i]].dataset, ds->label) == 0;
        if (used && preflight_dataset(s, ds, cells, todo, n) != 0)
            return -1;
    }
    return 0;
}

int suite_results_lock(const char *dir, int shared) {
    char path[EUAR_SUITE_PATH_LEN + 16];
    snprintf(path, sizeof(path), "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set("cannot create %s: %s; check that the results folder is writable", path,
                       strerror(errno));
    if (flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        int err = errno;
        close(fd);
        if (err == EWOULDBLOCK && shared)
            return err_set("results folder %s is in use by a local 'euar suite'; wait for it "
                           "to finish or choose another --results folder", dir);
        if (err == EWOULDBLOCK)
            return err_set("results folder %s is in use by another 'euar suite'; wait for it "
                           "to finish or choose another --results folder", dir);
        if (shared && lock_unsupported(err)) {
            LOG_WARN("the file system of %s has no flock(2) locks (%s); shards go on without "
                     "them, so run one submission at a time on this folder", dir,
                     strerror(err));
            return EUAR_RESULTS_UNLOCKED;
        }
        return err_set("cannot lock %s: %s", path, strerror(err));
    }
    return fd;
}

/* Returns 1 when name is "<anything>.json.tmp.<pid>" or "<anything>.h5.tmp.<pid>", the
 * temporary names of write_file_atomic() and of the HDF5 writer (checkpoints and joint
 * files), and stores the pid. */
static int temp_result_pid(const char *name, long *pid) {
    const char *tag = strstr(name, ".json.tmp.");
    const char *h5_tag = strstr(name, ".h5.tmp.");
    if (!tag && !h5_tag)
        return 0;
    const char *digits = tag ? tag + strlen(".json.tmp.") : h5_tag + strlen(".h5.tmp.");
    char *end = NULL;
    errno = 0;
    long v = strtol(digits, &end, 10);
    if (errno || end == digits || *end || v <= 0)
        return 0;
    *pid = v;
    return 1;
}

/* Removes the temporary files of processes that no longer run, for example a worker killed
 * by SIGKILL before its rename. A file whose pid is alive is kept, since a worker of an
 * earlier runner may still be writing it. */
static void remove_stale_temp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    int removed = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        long pid;
        if (!temp_result_pid(entry->d_name, &pid))
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
            continue;
        char path[EUAR_SUITE_PATH_LEN + 300];
        snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
        if (unlink(path) == 0)
            removed++;
        else
            LOG_WARN("cannot delete the stale temporary file %s: %s", path, strerror(errno));
    }
    closedir(d);
    if (removed > 0)
        LOG_INFO("deleted %d temporary file%s of killed processes in %s", removed,
                 removed == 1 ? "" : "s", dir);
}

/* Returns 1 when any cell matches the --only pattern. */
static int suite_any_match(const SuiteCell *cells, int count, const char *pattern) {
    for (int i = 0; i < count; i++)
        if (suite_cell_matches(&cells[i], pattern))
            return 1;
    return 0;
}

/* Creates DIR/logs (and DIR/locks for a shard run) and writes DIR/suite.json. A shard writes
 * the record only when it is absent: the submitter of a job array wrote it, and many hosts
 * renaming the same file at once gain nothing. A local run deletes the temporary files of dead
 * workers first. Returns 0 or -1 with err_set(). */
static int prepare_folder(const Suite *s, const SuiteRunOptions *opt, const SuiteCell *cells,
                          int count, int shard) {
    const char *dir = opt->results;
    if (!shard)
        remove_stale_temp(dir);
    char path[EUAR_SUITE_PATH_LEN + 16];
    snprintf(path, sizeof(path), "%s/logs", dir);
    if (make_dirs(path) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/locks", dir);
    if (shard && make_dirs(path) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/suite.json", dir);
    if (shard && access(path, F_OK) == 0)
        return 0;
    return suite_write_resolved(s, opt->quick, cells, count, dir);
}

/* Deletes the checkpoint of each finished cell: a worker killed after writing its result and
 * before deleting its checkpoint leaves one behind. */
static void remove_finished_checkpoints(const SuiteCell *cells, const int *selected, int n,
                                        const SuiteCellPlan *plan, const char *dir) {
    for (int i = 0; i < n; i++) {
        if (plan[selected[i]] != EUAR_CELL_SKIP)
            continue;
        char path[EUAR_SUITE_PATH_LEN + 32];
        suite_checkpoint_path(dir, &cells[selected[i]], path, sizeof(path));
        if (unlink(path) == 0)
            LOG_INFO("deleted the checkpoint %s of a finished cell", path);
        else if (errno != ENOENT)
            LOG_WARN("cannot delete the checkpoint %s: %s", path, strerror(errno));
    }
}

static void print_dry_run(const SuiteCell *cells, const int *selected, int n,
                          const SuiteCellPlan *plan) {
    int finished = 0;
    for (int i = 0; i < n; i++) {
        const SuiteCell *c = &cells[selected[i]];
        printf("%s  %-8s  %s/%s/%s/%" PRIu64, c->hash, plan_name(plan[selected[i]]),
               c->dataset, c->condition, c->model, c->seed);
        if (c->num_tests > 1 || (c->num_tests == 1 && suite_cell_test_noise(c, 0))) {
            char conditions[EUAR_SUITE_PATH_LEN];
            suite_cell_conditions_text(c, conditions, sizeof(conditions));
            printf("  trained clean, tested under %s", conditions);
        }
        if (c->joint)
            printf("  writes %s.joint.h5", c->hash);
        printf("\n");
        finished += plan[selected[i]] == EUAR_CELL_SKIP;
    }
    printf("%d cell%s, %d finished, %d to run\n", n, suite_plural(n), finished, n - finished);
}

int suite_run(const Suite *s, const SuiteRunOptions *opt) {
    SuiteCell *cells = NULL;
    int count = 0;
    if (suite_expand(s, opt->quick, &cells, &count) != 0) {
        LOG_ERROR("%s", err_get());
        return 1;
    }
    int *selected = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(int));
    int n = suite_select_cells(cells, count, opt, selected);
    int rc = 0;
    SuiteCellPlan *plan = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(SuiteCellPlan));
    int *todo = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(int));
    int lock_fd = -1;
    /* Shards share the folder: per-cell locks replace the exclusive lock of a local run. */
    int shard = opt->shard_count > 0 || opt->cells;
    if (n < 0) {
        LOG_ERROR("%s", err_get());
        rc = 1;
        goto done;
    }
    if (n == 0 && shard && !(opt->only && !suite_any_match(cells, count, opt->only))) {
        fprintf(stderr, "suite %s: shard %d/%d has no cells\n", s->name, opt->shard_index,
                opt->shard_count);
        goto done;
    }
    if (n == 0) {
        LOG_ERROR("no cell of suite '%s' matches --only '%s'; cells are named "
                  "DATASET/CONDITION/MODEL/SEED, for example '%s/%s/%s/%" PRIu64 "', or by hash",
                  s->name, opt->only, cells[0].dataset, cells[0].condition, cells[0].model,
                  cells[0].seed);
        rc = 1;
        goto done;
    }
    if (suite_check_results_dir(s, opt->quick, opt->results) != 0) {
        LOG_ERROR("%s", err_get());
        rc = 1;
        goto done;
    }
    suite_plan_selected(cells, count, opt->results, opt->dry_run, selected, n, plan);
    if (opt->dry_run) {
        print_dry_run(cells, selected, n, plan);
        goto done;
    }

    RunCounts counts = {0};
    int ntodo = 0;
    for (int i = 0; i < n; i++) {
        if (plan[selected[i]] == EUAR_CELL_SKIP)
            counts.skipped++;
        else
            todo[ntodo++] = selected[i];
    }
    /* Nothing is written before the suite passes these checks. */
    if (suite_preflight(s, cells, todo, ntodo) != 0 || make_dirs(opt->results) != 0) {
        LOG_ERROR("%s", err_get());
        rc = 1;
        goto done;
    }
    lock_fd = suite_results_lock(opt->results, shard);
    if (lock_fd == -1 || prepare_folder(s, opt, cells, count, shard) != 0) {
        LOG_ERROR("%s", err_get());
        rc = 1;
        goto done;
    }
    remove_finished_checkpoints(cells, selected, n, plan, opt->results);
    /* A shard deletes a corrupt result only once it holds the cell's lock, in run_cells(). A
     * result of another version of the data file is replaced when its worker writes. */
    for (int i = 0; i < ntodo && !shard; i++) {
        if (plan[todo[i]] == EUAR_CELL_RERUN &&
            delete_corrupt_result(&cells[todo[i]], opt->results) != 0) {
            LOG_ERROR("%s", err_get());
            rc = 1;
            goto done;
        }
    }

    int workers = EUAR_MAX(1, EUAR_MIN(opt->jobs, ntodo));
    char shard_text[48] = "";
    if (opt->shard_count > 0)
        snprintf(shard_text, sizeof(shard_text), " shard %d/%d", opt->shard_index,
                 opt->shard_count);
    fprintf(stderr, "suite %s%s%s: %d cell%s, %d finished, %d to run with %d worker process%s; "
            "results in %s\n", s->name, opt->quick ? " (quick)" : "", shard_text, n,
            suite_plural(n), counts.skipped, ntodo, workers, workers == 1 ? "" : "es",
            opt->results);
    run_cells(cells, todo, ntodo, opt->jobs, opt->exe, opt->results, opt->device,
              opt->checkpoint_every_s, shard, &counts);
    char busy[64] = "";
    if (counts.busy > 0)
        snprintf(busy, sizeof(busy), ", skipped %d running in another process", counts.busy);
    fprintf(stderr, "suite %s: ran %d (%d ok, %d diverged, %d failed), skipped %d finished%s; "
            "results in %s\n", s->name, counts.ok + counts.diverged + counts.failed, counts.ok,
            counts.diverged, counts.failed, counts.skipped, busy, opt->results);
    rc = counts.failed > 0 ? 1 : 0;

done:
    if (lock_fd >= 0)
        close(lock_fd);
    free(todo);
    free(plan);
    free(selected);
    suite_cells_free(cells, count);
    return rc;
}
