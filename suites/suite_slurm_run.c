/* The Slurm runner: plans the unfinished cells, writes the cell list and the sbatch script,
 * submits the job array with `sbatch --parsable`, follows it with `squeue` and the result
 * files, and checks the status file of every task at the end. */
#include "suite_slurm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

/* Consecutive failed squeue calls after which the runner stops following the job. */
#define SQUEUE_MAX_FAILURES 10

/* Output of a finished command. */
typedef struct {
    int status;     /* wait status */
    char out[4096]; /* stdout, cut at the buffer size */
    char err[4096]; /* stderr, cut at the buffer size */
} CommandOutput;

/* Appends what is readable on fd to buf (up to its capacity). Returns 0 at end of file. */
static int drain(int fd, char *buf, size_t cap, size_t *len) {
    char chunk[1024];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0)
        return errno == EINTR ? 1 : 0;
    if (n == 0)
        return 0;
    size_t copy = EUAR_MIN((size_t)n, cap - 1 - *len);
    memcpy(buf + *len, chunk, copy);
    *len += copy;
    buf[*len] = '\0';
    return 1;
}

/* Runs argv[0] (a path) with stdin from /dev/null and collects its output. Returns 0, or -1
 * with err_set() when the process cannot be started. */
static int run_command(char *const argv[], CommandOutput *out) {
    memset(out, 0, sizeof(*out));

    int out_pipe[2], err_pipe[2];
    if (pipe(out_pipe) != 0)
        return err_set("cannot run %s: pipe failed: %s", argv[0], strerror(errno));
    if (pipe(err_pipe) != 0) {
        close(out_pipe[0]);
        close(out_pipe[1]);
        return err_set("cannot run %s: pipe failed: %s", argv[0], strerror(errno));
    }

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        for (int i = 0; i < 2; i++) {
            close(out_pipe[i]);
            close(err_pipe[i]);
        }
        return err_set("cannot run %s: fork failed: %s", argv[0], strerror(err));
    }
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0)
            dup2(null_fd, 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        close(out_pipe[0]);
        close(err_pipe[0]);
        execv(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }

    /* Both pipes are read as data arrives, so a command that fills one of them cannot block
     * while this process waits on the other. */
    close(out_pipe[1]);
    close(err_pipe[1]);
    struct pollfd fds[2] = {{.fd = out_pipe[0], .events = POLLIN},
                            {.fd = err_pipe[0], .events = POLLIN}};
    size_t out_len = 0, err_len = 0;
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int more = i == 0 ? drain(fds[i].fd, out->out, sizeof(out->out), &out_len)
                              : drain(fds[i].fd, out->err, sizeof(out->err), &err_len);
            if (!more) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }

    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR) {
    }
    return 0;
}

/* Removes trailing white space in place. */
static void trim_end(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* Describes a wait status that is not a clean exit 0, for messages. */
static void describe_status(int status, char *buf, int cap) {
    if (WIFEXITED(status))
        snprintf(buf, (size_t)cap, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, (size_t)cap, "signal %d", WTERMSIG(status));
    else
        snprintf(buf, (size_t)cap, "wait status %d", status);
}

/* Submits the script. Stores the job id. Returns 0 or -1 with err_set() quoting sbatch. */
static int slurm_submit(const char *sbatch, const char *script, char *job_id, int cap) {
    char *argv[] = {(char *)sbatch, "--parsable", (char *)script, NULL};
    CommandOutput out;
    if (run_command(argv, &out) != 0)
        return -1;
    trim_end(out.err);
    trim_end(out.out);
    if (!WIFEXITED(out.status) || WEXITSTATUS(out.status) != 0) {
        char how[64];
        describe_status(out.status, how, sizeof(how));
        return err_set("sbatch failed (%s) on %s: %s; fix the options (--partition, --time, "
                       "--sbatch-arg) or the cluster, then run the command again", how, script,
                       out.err[0] ? out.err : "(no message)");
    }
    /* --parsable prints "JOBID" or "JOBID;CLUSTER". */
    size_t n = strspn(out.out, "0123456789");
    if (n == 0 || n >= (size_t)cap || (out.out[n] != '\0' && out.out[n] != ';'))
        return err_set("sbatch printed '%s' instead of a job id for %s; check that sbatch "
                       "is Slurm's", out.out, script);
    memcpy(job_id, out.out, n);
    job_id[n] = '\0';
    return 0;
}

/* Task counts of a job from one squeue call. */
typedef struct {
    int pending, running, other;
} QueueCounts;

/* Queries the tasks of a job still in the queue. Returns 1 while the job has tasks there, 0
 * when it has none (or Slurm no longer knows the id), -1 with err_set() when squeue fails. */
static int slurm_queue(const char *squeue, const char *job_id, QueueCounts *q) {
    char *argv[] = {(char *)squeue, "-h", "-r", "-j", (char *)job_id, "-o", "%t", NULL};
    CommandOutput out;
    memset(q, 0, sizeof(*q));
    if (run_command(argv, &out) != 0)
        return -1;
    trim_end(out.err);
    if (!WIFEXITED(out.status) || WEXITSTATUS(out.status) != 0) {
        if (strstr(out.err, "Invalid job id"))
            return 0;
        char how[64];
        describe_status(out.status, how, sizeof(how));
        return err_set("squeue -j %s failed (%s): %s", job_id, how,
                       out.err[0] ? out.err : "(no message)");
    }
    for (char *line = strtok(out.out, "\n"); line; line = strtok(NULL, "\n")) {
        trim_end(line);
        if (strcmp(line, "PD") == 0)
            q->pending++;
        else if (strcmp(line, "R") == 0 || strcmp(line, "CG") == 0 || strcmp(line, "CF") == 0)
            q->running++;
        else if (line[0])
            q->other++;
    }
    return q->pending + q->running + q->other > 0;
}

/* Counts the listed cells with a finished result. */
static int count_finished(const SuiteCell *cells, const int *list, int n, const char *dir) {
    int finished = 0;
    for (int i = 0; i < n; i++) {
        SuiteCellPlan plan;
        suite_plan(&cells[list[i]], 1, dir, &plan);
        finished += plan == EUAR_CELL_SKIP;
    }
    return finished;
}

static void sleep_seconds(double seconds) {
    struct timespec ts = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Polls squeue until the job leaves the queue, printing a progress line on each change.
 * Returns 0, or -1 with err_set() after SQUEUE_MAX_FAILURES failed calls in a row. */
static int slurm_follow(const char *squeue, const char *job_id, const SuiteCell *cells,
                        const int *list, int n, const char *dir, double poll_seconds) {
    char last[256] = "";
    int failures = 0;
    for (;;) {
        QueueCounts q;
        int queued = slurm_queue(squeue, job_id, &q);
        if (queued < 0) {
            if (++failures >= SQUEUE_MAX_FAILURES)
                return err_prefix("%d squeue calls in a row failed, the last one", failures);
            LOG_WARN("%s; trying again in %.0f s", err_get(), poll_seconds);
        } else {
            failures = 0;
        }
        int finished = count_finished(cells, list, n, dir);
        char line[256];
        snprintf(line, sizeof(line), "slurm job %s: %d task%s running, %d pending%s; %d/%d "
                 "cell%s finished", job_id, q.running, suite_plural(q.running), q.pending,
                 q.other ? ", others in other states" : "", finished, n, suite_plural(n));
        if (queued >= 0 && strcmp(line, last) != 0) {
            fprintf(stderr, "%s\n", line);
            snprintf(last, sizeof(last), "%s", line);
        }
        if (queued == 0)
            return 0;
        sleep_seconds(poll_seconds);
    }
}

/* Stores `path` made absolute against `cwd`, without resolving links. Returns 0, or -1 with
 * err_set() when it does not fit. */
static int absolute_path(const char *path, const char *cwd, char *buf, int cap) {
    int n = path[0] == '/' ? snprintf(buf, (size_t)cap, "%s", path)
                           : snprintf(buf, (size_t)cap, "%s/%s", cwd, path);
    if (n >= cap)
        return err_set("results folder %s is too long as an absolute path (over %d "
                       "characters); choose a shorter --results folder", path, cap - 1);
    return 0;
}

/* Rejects a folder that cannot appear in an #SBATCH line, which has no quoting. */
static int check_sbatch_path(const char *what, const char *path) {
    if (strpbrk(path, " \t\n\r%'\"\\"))
        return err_set("%s '%s' contains a space, quote, backslash or '%%', which the #SBATCH "
                       "lines of the job script cannot hold; use a %s without them", what, path,
                       what);
    return 0;
}

/* Creates the folders of a submission and writes suite.json, the cell list and the script. */
static int write_submission(const Suite *s, const SuiteRunOptions *opt, const SuiteCell *cells,
                            int count, const int *todo, int ntodo, const SlurmPaths *paths,
                            const char *script) {
    char locks[EUAR_SUITE_PATH_LEN + 16], logs[EUAR_SUITE_PATH_LEN + 16];
    snprintf(locks, sizeof(locks), "%s/locks", opt->results);
    snprintf(logs, sizeof(logs), "%s/logs", opt->results);
    if (make_dirs(logs) != 0 || make_dirs(locks) != 0 || make_dirs(paths->logs) != 0 ||
        make_dirs(paths->status) != 0)
        return -1;
    if (suite_write_resolved(s, opt->quick, cells, count, opt->results) != 0 ||
        suite_cells_write_list(paths->cells, s, opt->quick, cells, todo, ntodo) != 0 ||
        write_file_atomic(paths->script, script, strlen(script)) != 0)
        return -1;
    if (chmod(paths->script, 0755) != 0)
        return err_set("cannot make %s executable: %s", paths->script, strerror(errno));
    return 0;
}

/* Finds sbatch and squeue in PATH. Returns 0 or -1 with err_set(). */
static int find_slurm_tools(char *sbatch, char *squeue, int cap) {
    const char *hint = "install the Slurm client (Debian: apt-get install slurm-client) and "
                       "check that PATH reaches it, or run without --runner slurm to use local "
                       "worker processes";
    if (!find_program("sbatch", sbatch, cap))
        return err_set("sbatch not found in PATH; %s", hint);
    if (!find_program("squeue", squeue, cap))
        return err_set("squeue not found in PATH; %s", hint);
    return 0;
}

/* Submits the job array of cells[todo[0..ntodo-1]] and follows it to its end. */
static int submit_and_follow(const Suite *s, const char *file, const SuiteRunOptions *opt,
                             const SlurmOptions *slurm, const SuiteCell *cells, int count,
                             const int *todo, int ntodo, int tasks, const char *cwd) {
    char tag[64], stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", gmtime(&now));
    snprintf(tag, sizeof(tag), "%s-%ld", stamp, (long)getpid());
    char results[EUAR_SUITE_PATH_LEN];
    EUAR_ASSERT(absolute_path(opt->results, cwd, results, sizeof(results)) == 0);
    SuiteRunOptions task_opt = *opt;
    task_opt.results = results;
    task_opt.jobs = slurm->cpus_per_task;
    SlurmPaths paths;
    suite_slurm_paths(results, tag, &paths);
    char *script = suite_slurm_script(s, file, &task_opt, slurm, &paths, cwd, tasks, ntodo);
    if (opt->dry_run) {
        fputs(script, stdout);
        fprintf(stderr, "dry run: %d cell%s in %d task%s; nothing written or submitted\n",
                ntodo, suite_plural(ntodo), tasks, suite_plural(tasks));
        free(script);
        return 0;
    }
    char sbatch[4096], squeue[4096], job_id[64];
    int lock_fd = -1, rc = 1;
    if (find_slurm_tools(sbatch, squeue, sizeof(sbatch)) != 0 || make_dirs(results) != 0)
        goto done;
    /* The shared lock keeps a local runner off the folder while the shards run. */
    lock_fd = suite_results_lock(results, 1);
    if (lock_fd == -1 ||
        write_submission(s, opt, cells, count, todo, ntodo, &paths, script) != 0)
        goto done;
    if (slurm_submit(sbatch, paths.script, job_id, sizeof(job_id)) != 0) {
        /* Nothing was submitted, so the script and the cell list describe no job. */
        unlink(paths.script);
        unlink(paths.cells);
        goto done;
    }
    fprintf(stderr, "suite %s%s: submitted slurm job %s, %d cell%s in %d task%s; task logs in "
            "%s/%s-<task>.log\n(interrupting this command stops following the job, scancel %s "
            "stops the job)\n", s->name, opt->quick ? " (quick)" : "", job_id, ntodo,
            suite_plural(ntodo), tasks, suite_plural(tasks), paths.logs, tag, job_id);
    if (slurm_follow(squeue, job_id, cells, todo, ntodo, results, slurm->poll_seconds) != 0) {
        err_prefix("cannot follow slurm job %s (it may still run; see squeue -j %s, then run "
                   "this command again to report and submit the unfinished cells)", job_id,
                   job_id);
        goto done;
    }
    int failed_tasks = suite_slurm_failed_tasks(&paths, tasks);
    int finished = count_finished(cells, todo, ntodo, results);
    fprintf(stderr, "suite %s: slurm job %s ended: %d of %d cell%s finished, %d of %d task%s "
            "failed; results in %s\n", s->name, job_id, finished, ntodo, suite_plural(ntodo),
            failed_tasks, tasks, suite_plural(tasks), opt->results);
    rc = failed_tasks > 0 || finished < ntodo ? 1 : 0;
    if (rc == 0)
        err_clear();
    else if (finished < ntodo)
        err_set("%d cell%s no finished result; see the task logs above and the cell logs "
                "in %s/logs, then run the command again to submit %s", ntodo - finished,
                ntodo - finished == 1 ? " has" : "s have", opt->results,
                ntodo - finished == 1 ? "it" : "them");
    else
        err_set("%d task%s failed although every cell finished; see %s above",
                failed_tasks, suite_plural(failed_tasks), failed_tasks == 1 ? "its log"
                                                                            : "their logs");
done:
    if (lock_fd >= 0)
        close(lock_fd);
    free(script);
    return rc == 0 ? 0 : -1;
}

int suite_slurm_run(const Suite *s, const char *file, const SuiteRunOptions *opt,
                    const SlurmOptions *slurm) {
    SuiteCell *cells = NULL;
    int count = 0;
    if (suite_expand(s, opt->quick, &cells, &count) != 0) {
        LOG_ERROR("%s", err_get());
        return 1;
    }
    int *selected = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(int));
    int *todo = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(int));
    SuiteCellPlan *plan = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(SuiteCellPlan));
    int rc = 1;
    char cwd[EUAR_SUITE_PATH_LEN];
    int n = suite_select_cells(cells, count, opt, selected);
    if (n < 0)
        goto fail;
    if (n == 0) {
        err_set("no cell of suite '%s' matches --only '%s'; cells are named "
                "DATASET/CONDITION/MODEL/SEED or by hash", s->name, opt->only);
        goto fail;
    }
    if (!getcwd(cwd, sizeof(cwd))) {
        err_set("cannot read the current folder: %s", strerror(errno));
        goto fail;
    }
    if (check_sbatch_path("current folder", cwd) != 0)
        goto fail;
    char results[EUAR_SUITE_PATH_LEN];
    if (absolute_path(opt->results, cwd, results, sizeof(results)) != 0 ||
        check_sbatch_path("results folder", results) != 0 ||
        suite_check_results_dir(s, opt->quick, opt->results) != 0)
        goto fail;
    suite_plan_selected(cells, count, opt->results, opt->dry_run, selected, n, plan);
    int ntodo = 0;
    for (int i = 0; i < n; i++)
        if (plan[selected[i]] != EUAR_CELL_SKIP)
            todo[ntodo++] = selected[i];
    if (ntodo == 0) {
        fprintf(stderr, "suite %s%s: %s %d cell%s finished; nothing to submit; results in "
                "%s\n", s->name, opt->quick ? " (quick)" : "", n == 1 ? "the" : "all", n,
                n == 1 ? " is" : "s are", opt->results);
        rc = 0;
        goto done;
    }
    if (suite_preflight(s, cells, todo, ntodo) != 0)
        goto fail;
    int tasks = slurm->array_size > 0 ? slurm->array_size : EUAR_SLURM_MAX_TASKS;
    if (tasks > ntodo) {
        if (slurm->array_size > 0)
            LOG_INFO("--array-size %d is more than the %d cell%s to run; submitting %d task%s",
                     slurm->array_size, ntodo, suite_plural(ntodo), ntodo,
                     suite_plural(ntodo));
        tasks = ntodo;
    }
    if (submit_and_follow(s, file, opt, slurm, cells, count, todo, ntodo, tasks, cwd) != 0)
        goto fail;
    rc = 0;
    goto done;
fail:
    LOG_ERROR("%s", err_get());
    rc = 1;
done:
    free(plan);
    free(todo);
    free(selected);
    suite_cells_free(cells, count);
    return rc;
}
