/* The Slurm job array of a suite: option checks, the paths of a submission, the sbatch
 * script and the status files of its tasks. Submission and polling are in
 * suite_slurm_run.c. */
#include "suite_slurm.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "report/text.h"

/* Returns the number of leading digits of text. */
static int count_digits(const char *text) {
    int n = 0;
    while (isdigit((unsigned char)text[n]))
        n++;
    return n;
}

int suite_slurm_check_time(const char *text) {
    /* Slurm's forms: MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. */
    const char *p = text;
    int days = 0;
    const char *dash = strchr(text, '-');
    if (dash) {
        int n = count_digits(p);
        days = 1;
        if (n == 0 || p + n != dash)
            days = -1;
        p = dash + 1;
    }
    int groups = 0, ok = days >= 0;
    while (ok) {
        int n = count_digits(p);
        if (n == 0 || n > 4) {
            ok = 0;
            break;
        }
        groups++;
        p += n;
        if (*p == '\0')
            break;
        if (*p != ':')
            ok = 0;
        p++;
    }
    if (groups > 3)
        ok = 0;
    if (!ok)
        return err_set("invalid value '%s' for --time: expected a Slurm time limit such as "
                       "HH:MM:SS, MINUTES, MM:SS or D-HH:MM:SS (for example 02:00:00)", text);
    return 0;
}

int suite_slurm_check_line(const char *what, const char *text) {
    if (text[0] == '\0')
        return err_set("empty value for %s; give the text of one sbatch option", what);
    for (const char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r' || !isprint((unsigned char)*p))
            return err_set("invalid value for %s: it contains a line break or a control "
                           "character; give one sbatch option per %s", what, what);
    if (strcmp(what, "--sbatch-arg") == 0 && text[0] != '-')
        return err_set("invalid value '%s' for --sbatch-arg: expected an sbatch option such as "
                       "--account=NAME or --qos=NAME", text);
    if (strcmp(what, "--partition") == 0 && strpbrk(text, " \t#'\""))
        return err_set("invalid value '%s' for --partition: expected a partition name, or a "
                       "comma-separated list of names, without spaces or quotes", text);
    return 0;
}

void suite_slurm_paths(const char *dir, const char *tag, SlurmPaths *out) {
    memset(out, 0, sizeof(*out));
    snprintf(out->tag, sizeof(out->tag), "%s", tag);
    snprintf(out->script, sizeof(out->script), "%s/slurm/job-%s.sbatch", dir, tag);
    snprintf(out->cells, sizeof(out->cells), "%s/slurm/cells-%s.txt", dir, tag);
    snprintf(out->logs, sizeof(out->logs), "%s/slurm/logs", dir);
    snprintf(out->status, sizeof(out->status), "%s/slurm/status", dir);
}

void suite_slurm_task_log(const SlurmPaths *p, int task, char *buf, int cap) {
    int n = snprintf(buf, (size_t)cap, "%s/%s-%d.log", p->logs, p->tag, task);
    EUAR_ASSERT(n < cap);
}

char *suite_slurm_script(const Suite *s, const char *file, const SuiteRunOptions *opt,
                         const SlurmOptions *slurm, const SlurmPaths *paths, const char *cwd,
                         int tasks, int num_cells) {
    TextBuf t = {0};
    const char *variant = opt->quick ? "quick" : "full";
    text_printf(&t, "#!/bin/bash\n");
    text_printf(&t, "# euar-bench job array: suite %s, %s variant, %d cell%s in %d task%s.\n",
                s->name, variant, num_cells, suite_plural(num_cells), tasks, suite_plural(tasks));
    text_printf(&t, "# Task i runs the cells on lines k of %s with k mod %d == i,\n",
                paths->cells, tasks);
    text_printf(&t, "# then writes its exit status to %s/%s-<i>.rc.\n", paths->status,
                paths->tag);
    text_printf(&t, "#SBATCH --job-name=euar-%s%s\n", s->name, opt->quick ? "-quick" : "");
    text_printf(&t, "#SBATCH --array=0-%d\n", tasks - 1);
    text_printf(&t, "#SBATCH --output=%s/%s-%%a.log\n", paths->logs, paths->tag);
    text_printf(&t, "#SBATCH --chdir=%s\n", cwd);
    text_printf(&t, "#SBATCH --cpus-per-task=%d\n", slurm->cpus_per_task);
    if (slurm->partition)
        text_printf(&t, "#SBATCH --partition=%s\n", slurm->partition);
    if (slurm->time_limit)
        text_printf(&t, "#SBATCH --time=%s\n", slurm->time_limit);
    if (slurm->gpus_per_task > 0)
        text_printf(&t, "#SBATCH --gpus-per-task=%d\n", slurm->gpus_per_task);
    for (int i = 0; i < slurm->num_sbatch_args; i++)
        text_printf(&t, "#SBATCH %s\n", slurm->sbatch_args[i]);
    text_printf(&t, "task=${SLURM_ARRAY_TASK_ID:?this script runs as a task of a Slurm job "
                "array}\n");
    text_append_quoted(&t, opt->exe);
    text_printf(&t, " suite ");
    text_append_quoted(&t, file);
    text_printf(&t, "%s --results ", opt->quick ? " --quick" : "");
    text_append_quoted(&t, opt->results);
    if (opt->device) {
        text_printf(&t, " --device ");
        text_append_quoted(&t, opt->device);
    }
    text_printf(&t, " --jobs %d \\\n    --shard \"$task/%d\" --cells ", opt->jobs, tasks);
    text_append_quoted(&t, paths->cells);
    text_printf(&t, "\nrc=$?\necho \"$rc\" > ");
    text_append_quoted(&t, paths->status);
    text_printf(&t, "\"/%s-$task.rc\"\nexit \"$rc\"\n", paths->tag);
    return text_finish(&t);
}

/* Reads the exit status of a task from its status file. Returns 0 and stores it, or -1 when
 * the file is missing or contains no integer. */
static int read_task_status(const SlurmPaths *p, int task, int *rc) {
    char path[sizeof(p->status) + sizeof(p->tag) + 16];
    snprintf(path, sizeof(path), "%s/%s-%d.rc", p->status, p->tag, task);
    char *text = read_file_text(path, NULL);
    if (!text)
        return -1;
    char *end = NULL;
    long v = strtol(text, &end, 10);
    int ok = end != text && (*end == '\0' || *end == '\n');
    free(text);
    if (!ok)
        return -1;
    *rc = (int)v;
    return 0;
}

int suite_slurm_failed_tasks(const SlurmPaths *paths, int tasks) {
    int failed = 0;
    for (int task = 0; task < tasks; task++) {
        int rc = 0;
        char log[EUAR_SUITE_PATH_LEN + 200];
        suite_slurm_task_log(paths, task, log, sizeof(log));
        if (read_task_status(paths, task, &rc) != 0) {
            fprintf(stderr, "task %d: failed, it wrote no exit status (cancelled, killed at "
                    "its time limit or lost with its node); see %s\n", task, log);
            failed++;
        } else if (rc != 0) {
            fprintf(stderr, "task %d: failed with exit status %d; see %s\n", task, rc, log);
            failed++;
        }
    }
    return failed;
}
