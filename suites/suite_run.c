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

typedef struct {
    pid_t pid;
    int cell;
    double start;
} Worker;

typedef struct {
    int ok, diverged, failed, skipped;
} RunCounts;

/* Writes `arg` to fd in single quotes, as a shell reads it back. */
static void write_quoted(int fd, const char *arg) {
    dprintf(fd, "'");
    for (const char *p = arg; *p; p++) {
        if (*p == '\'')
            dprintf(fd, "'\\''");
        else
            dprintf(fd, "%c", *p);
    }
    dprintf(fd, "' ");
}

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
                          double checkpoint_every_s) {
    char **argv = suite_cell_argv(c, exe, dir);
    if (checkpoint_every_s >= 0)
        argv = add_checkpoint_args(argv, c, dir, checkpoint_every_s);
    char log_path[EUAR_SUITE_PATH_LEN + 64];
    snprintf(log_path, sizeof(log_path), "%s/logs/%s.log", dir, c->hash);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        suite_argv_free(argv);
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
        dprintf(1, "# ");
        for (char **p = argv; *p; p++)
            write_quoted(1, *p);
        dprintf(1, "\n");
        /* One BLAS thread per worker: the workers already fill the cores. */
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execv(exe, argv);
        dprintf(2, "euar: error: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    suite_argv_free(argv);
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

/* Runs the cells listed in `todo` with up to `jobs` workers. */
static int run_cells(const SuiteCell *cells, const int *todo, int n, int jobs, const char *exe,
                     const char *dir, double checkpoint_every_s, RunCounts *counts) {
    jobs = EUAR_MAX(1, EUAR_MIN(jobs, n));
    Worker *workers = xcalloc((size_t)jobs, sizeof(Worker));
    int next = 0, running = 0, done = 0;
    while (next < n || running > 0) {
        while (running < jobs && next < n) {
            int slot = 0;
            while (workers[slot].pid != 0)
                slot++;
            pid_t pid = worker_start(&cells[todo[next]], exe, dir, checkpoint_every_s);
            if (pid < 0) {
                /* A failed fork counts as a failed cell; the suite goes on with the others. */
                LOG_ERROR("%s", err_get());
                counts->failed++;
                done++;
                next++;
                continue;
            }
            workers[slot] = (Worker){.pid = pid, .cell = todo[next], .start = time_now()};
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
    }
    return "?";
}

/* Checks one dataset against the cells that will run on it: its metadata (modality names and
 * kinds, task), the noise spec of each condition, each model against the task, and the rules
 * that tie the settings of each cell together. */
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
    Dataset info;
    if (dataset_read_info(ds->path, &info) != 0)
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

/* Checks every dataset with cells to run before anything is written, so that an invalid cell
 * fails the suite at once instead of failing in every worker. */
static int preflight(const Suite *s, const SuiteCell *cells, const int *todo, int n) {
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

/* Takes an exclusive flock(2) on DIR/.lock, held until suite_run() returns, so that two
 * runners never share a results folder. The descriptor is close-on-exec, so the workers do
 * not hold the lock. Returns the descriptor, or -1 with err_set(). */
static int results_lock(const char *dir) {
    char path[EUAR_SUITE_PATH_LEN + 16];
    snprintf(path, sizeof(path), "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set("cannot create %s: %s; check that the results folder is writable", path,
                       strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        if (busy)
            return err_set("results folder %s is in use by another 'euar suite'; wait for it "
                           "to finish or choose another --results folder", dir);
        return err_set("cannot lock %s: %s", path, strerror(errno));
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
    printf("%d cells, %d finished, %d to run\n", n, finished, n - finished);
}

int suite_run(const Suite *s, const SuiteRunOptions *opt) {
    SuiteCell *cells = NULL;
    int count = 0;
    if (suite_expand(s, opt->quick, &cells, &count) != 0) {
        LOG_ERROR("%s", err_get());
        return 1;
    }
    int *selected = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(int));
    int n = 0;
    for (int i = 0; i < count; i++)
        if (!opt->only || suite_cell_matches(&cells[i], opt->only))
            selected[n++] = i;
    int rc = 0;
    SuiteCellPlan *plan = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(SuiteCellPlan));
    int *todo = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(int));
    int lock_fd = -1;
    if (n == 0) {
        LOG_ERROR("no cell of suite '%s' matches --only '%s'; cells are named "
                  "DATASET/CONDITION/MODEL/SEED, for example '%s/%s/%s/%" PRIu64 "', or by hash",
                  s->name, opt->only, cells[0].dataset, cells[0].condition, cells[0].model,
                  cells[0].seed);
        rc = 1;
        goto done;
    }
    suite_plan(cells, count, opt->results, plan);
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
    if (preflight(s, cells, todo, ntodo) != 0 ||
        suite_check_results_dir(s, opt->quick, opt->results) != 0 ||
        make_dirs(opt->results) != 0) {
        LOG_ERROR("%s", err_get());
        rc = 1;
        goto done;
    }
    lock_fd = results_lock(opt->results);
    if (lock_fd < 0) {
        LOG_ERROR("%s", err_get());
        rc = 1;
        goto done;
    }
    remove_stale_temp(opt->results);
    char logs[EUAR_SUITE_PATH_LEN + 16];
    snprintf(logs, sizeof(logs), "%s/logs", opt->results);
    if (make_dirs(logs) != 0 || suite_write_resolved(s, opt->quick, cells, count,
                                                     opt->results) != 0) {
        LOG_ERROR("%s", err_get());
        rc = 1;
        goto done;
    }
    remove_finished_checkpoints(cells, selected, n, plan, opt->results);
    for (int i = 0; i < ntodo; i++) {
        const SuiteCell *c = &cells[todo[i]];
        if (plan[todo[i]] != EUAR_CELL_RERUN)
            continue;
        char path[EUAR_SUITE_PATH_LEN + 32], reason[256];
        suite_result_path(opt->results, c, path, sizeof(path));
        suite_result_state(path, reason, sizeof(reason));
        LOG_WARN("result file %s of %s/%s/%s/%" PRIu64 " is corrupt or incomplete (%s); "
                 "deleting it and running the cell again", path, c->dataset, c->condition,
                 c->model, c->seed, reason);
        if (unlink(path) != 0 && errno != ENOENT) {
            LOG_ERROR("cannot delete %s: %s; delete it by hand and run the suite again",
                      path, strerror(errno));
            rc = 1;
            goto done;
        }
    }

    int workers = EUAR_MAX(1, EUAR_MIN(opt->jobs, ntodo));
    fprintf(stderr, "suite %s%s: %d cells, %d finished, %d to run with %d worker process%s; "
            "results in %s\n", s->name, opt->quick ? " (quick)" : "", n, counts.skipped, ntodo,
            workers, workers == 1 ? "" : "es", opt->results);
    run_cells(cells, todo, ntodo, opt->jobs, opt->exe, opt->results, opt->checkpoint_every_s,
              &counts);
    fprintf(stderr, "suite %s: ran %d (%d ok, %d diverged, %d failed), skipped %d finished; "
            "results in %s\n", s->name, ntodo, counts.ok, counts.diverged,
            counts.failed, counts.skipped, opt->results);
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
