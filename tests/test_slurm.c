/* Shards and the Slurm runner: --shard values, the split of cells into shards, the cell list
 * file, the sbatch script, task status files, option checks, and shard runs with a stand-in
 * worker sharing a results folder through locks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/common.h"
#include "datasets/dataset.h"
#include "suites/suite.h"
#include "suites/suite_slurm.h"

/* Suite file of the repository; the tests run from the repository root. */
#define MISSING_SUITE "suites/missing.json"

static char temp_dir[256];

static int setup_temp(void **state) {
    snprintf(temp_dir, sizeof(temp_dir), "/tmp/euar-test-slurm-XXXXXX");
    return mkdtemp(temp_dir) ? 0 : -1;
}

static int teardown_temp(void **state) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", temp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads the quick variant of the missing suite: 40 cells. */
static void load_missing_quick(Suite *s, SuiteCell **cells, int *n) {
    if (suite_load(MISSING_SUITE, s) != 0)
        fail_msg("%s", err_get());
    assert_int_equal(suite_expand(s, 1, cells, n), 0);
    assert_int_equal(*n, 40);
}

/* Writes a finished result for a cell into dir. */
static void write_result(const char *dir, const SuiteCell *c) {
    char path[400];
    suite_result_path(dir, c, path, sizeof(path));
    write_text(path, "{\"status\": \"ok\"}");
}

/* ---- --shard values ---- */

static void shard_parse_valid(void **state) {
    int i = -1, n = -1;
    assert_int_equal(suite_parse_shard("0/1", &i, &n), 0);
    assert_int_equal(i, 0);
    assert_int_equal(n, 1);
    assert_int_equal(suite_parse_shard("3/4", &i, &n), 0);
    assert_int_equal(i, 3);
    assert_int_equal(n, 4);
    assert_int_equal(suite_parse_shard("999/1000", &i, &n), 0);
    assert_int_equal(i, 999);
    assert_int_equal(n, 1000);
}

static void shard_parse_rejections(void **state) {
    static const struct {
        const char *text, *message;
    } cases[] = {
        {"0/0", "count must be from 1"},    {"3/2", "index must be from 0 to 1"},
        {"2/2", "index must be from 0 to 1"}, {"x", "expected INDEX/COUNT"},
        {"1/", "expected INDEX/COUNT"},      {"/2", "expected INDEX/COUNT"},
        {"-1/2", "expected INDEX/COUNT"},    {"1/2x", "expected INDEX/COUNT"},
        {" 1/2", "expected INDEX/COUNT"},    {"1//2", "expected INDEX/COUNT"},
        {"", "expected INDEX/COUNT"},        {"0/1000001", "count must be from 1"},
        {"1/2/3", "expected INDEX/COUNT"},   {"12345678/2", "expected INDEX/COUNT"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        int i = -1, n = -1;
        err_clear();
        if (suite_parse_shard(cases[k].text, &i, &n) != -1)
            fail_msg("--shard '%s' was accepted", cases[k].text);
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "'%s' for --shard", cases[k].text);
        if (!strstr(err_get(), quoted) || !strstr(err_get(), cases[k].message))
            fail_msg("--shard '%s': message '%s' lacks \"%s\" or \"%s\"", cases[k].text,
                     err_get(), quoted, cases[k].message);
        assert_int_equal(i, -1);
        assert_int_equal(n, -1);
    }
}

/* ---- the split of cells into shards ---- */

/* Every cell is in exactly one shard, each shard keeps suite order, and shard i has the cells
 * at positions k with k % n == i. */
static void shard_split_exact(void **state) {
    Suite s;
    SuiteCell *cells;
    int count;
    load_missing_quick(&s, &cells, &count);
    int selected[40];
    for (int n = 1; n <= 9; n++) {
        int seen[40] = {0};
        for (int i = 0; i < n; i++) {
            SuiteRunOptions opt = {.shard_index = i, .shard_count = n};
            int m = suite_select_cells(cells, count, &opt, selected);
            assert_int_equal(m, (count - i + n - 1) / n);
            for (int k = 0; k < m; k++) {
                assert_int_equal(selected[k], i + k * n);
                seen[selected[k]]++;
            }
        }
        for (int c = 0; c < count; c++)
            if (seen[c] != 1)
                fail_msg("%d shards: cell %d is in %d shards", n, c, seen[c]);
    }
    /* More shards than cells: the shards past the last cell are empty. */
    SuiteRunOptions opt = {.shard_index = 45, .shard_count = 50};
    assert_int_equal(suite_select_cells(cells, count, &opt, selected), 0);
    suite_cells_free(cells, count);
    suite_free(&s);
}

/* With --only, the shards split the matching cells in suite order. */
static void shard_split_only(void **state) {
    Suite s;
    SuiteCell *cells;
    int count;
    load_missing_quick(&s, &cells, &count);
    int all[40], part[40];
    SuiteRunOptions opt = {.only = "fmnist-2view/*"};
    int m = suite_select_cells(cells, count, &opt, all);
    assert_int_equal(m, 12);
    opt.shard_index = 1;
    opt.shard_count = 5;
    int p = suite_select_cells(cells, count, &opt, part);
    assert_int_equal(p, 3);
    assert_int_equal(part[0], all[1]);
    assert_int_equal(part[1], all[6]);
    assert_int_equal(part[2], all[11]);
    suite_cells_free(cells, count);
    suite_free(&s);
}

/* The shards of a cell list keep their cells when cells finish between the submission and the
 * tasks, and the shards of the whole suite do not depend on finished cells either. */
static void shard_list_stable(void **state) {
    Suite s;
    SuiteCell *cells;
    int count;
    load_missing_quick(&s, &cells, &count);
    char dir[300], list[340];
    snprintf(dir, sizeof(dir), "%s/stable", temp_dir);
    assert_int_equal(make_dirs(dir), 0);
    /* Cells 0, 5, 6 and 20 are finished at submission; the other 36 are listed. */
    write_result(dir, &cells[0]);
    write_result(dir, &cells[5]);
    write_result(dir, &cells[6]);
    write_result(dir, &cells[20]);
    SuiteCellPlan plan[40];
    suite_plan(cells, count, dir, plan);
    int todo[40], ntodo = 0;
    for (int i = 0; i < count; i++)
        if (plan[i] != EUAR_CELL_SKIP)
            todo[ntodo++] = i;
    assert_int_equal(ntodo, 36);
    snprintf(list, sizeof(list), "%s/cells.txt", dir);
    assert_int_equal(suite_cells_write_list(list, &s, 1, cells, todo, ntodo), 0);

    int before[4][40], after[4][40], nb[4], na[4];
    int whole_before[4][40], whole_after[4][40], wb[4], wa[4];
    for (int i = 0; i < 4; i++) {
        SuiteRunOptions opt = {.cells = list, .shard_index = i, .shard_count = 4};
        nb[i] = suite_select_cells(cells, count, &opt, before[i]);
        opt.cells = NULL;
        wb[i] = suite_select_cells(cells, count, &opt, whole_before[i]);
    }
    /* Shard 2 finishes cells before shard 0 starts. */
    write_result(dir, &cells[todo[2]]);
    write_result(dir, &cells[todo[6]]);
    for (int i = 0; i < 4; i++) {
        SuiteRunOptions opt = {.cells = list, .shard_index = i, .shard_count = 4};
        na[i] = suite_select_cells(cells, count, &opt, after[i]);
        opt.cells = NULL;
        wa[i] = suite_select_cells(cells, count, &opt, whole_after[i]);
    }
    int seen[40] = {0};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(nb[i], 9);
        assert_int_equal(na[i], nb[i]);
        assert_memory_equal(before[i], after[i], (size_t)nb[i] * sizeof(int));
        assert_int_equal(wa[i], wb[i]);
        assert_memory_equal(whole_before[i], whole_after[i], (size_t)wb[i] * sizeof(int));
        for (int k = 0; k < nb[i]; k++) {
            assert_int_equal(before[i][k], todo[i + 4 * k]);
            seen[before[i][k]]++;
        }
    }
    for (int k = 0; k < ntodo; k++)
        assert_int_equal(seen[todo[k]], 1);
    assert_int_equal(seen[0] + seen[5] + seen[6] + seen[20], 0);
    suite_cells_free(cells, count);
    suite_free(&s);
}

/* ---- the cell list file ---- */

static void cell_list_round_trip(void **state) {
    Suite s;
    SuiteCell *cells;
    int count;
    load_missing_quick(&s, &cells, &count);
    char path[300];
    snprintf(path, sizeof(path), "%s/round.txt", temp_dir);
    int todo[3] = {39, 2, 17};
    assert_int_equal(suite_cells_write_list(path, &s, 1, cells, todo, 3), 0);
    char *text = read_file_text(path, NULL);
    assert_non_null(text);
    assert_true(strncmp(text, "# euar-bench cell list: suite missing, quick variant, 3 cells\n",
                        61) == 0);
    assert_non_null(strstr(text, cells[39].hash));
    free(text);
    int order[40];
    assert_int_equal(suite_cells_read_list(path, cells, count, order), 3);
    assert_int_equal(order[0], 39);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 17);
    suite_cells_free(cells, count);
    suite_free(&s);
}

static void cell_list_rejections(void **state) {
    Suite s;
    SuiteCell *cells;
    int count;
    load_missing_quick(&s, &cells, &count);
    char path[300], text[256];
    snprintf(path, sizeof(path), "%s/bad.txt", temp_dir);
    const struct {
        const char *body, *message;
    } cases[] = {
        {"# header\n0123\n", "line 2: '0123' is not a cell hash"},
        {"0123456789ABCDEF\n", "line 1: '0123456789ABCDEF' is not a cell hash"},
        {"0123456789abcdef\n", "line 1: hash 0123456789abcdef is not a cell of this suite"},
        {"%s\n\n%s\n", "line 3: hash %s is listed twice"},
        {"# only a comment\n\n", "lists no cell hash"},
    };
    int order[40];
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        snprintf(text, sizeof(text), cases[k].body, cells[4].hash, cells[4].hash);
        write_text(path, text);
        char message[128];
        snprintf(message, sizeof(message), cases[k].message, cells[4].hash);
        err_clear();
        assert_int_equal(suite_cells_read_list(path, cells, count, order), -1);
        if (!strstr(err_get(), message) || !strstr(err_get(), path))
            fail_msg("case %zu: message '%s' lacks '%s' or the file", k, err_get(), message);
    }
    /* A hash of the full variant is not a cell of the quick one. */
    SuiteCell *full;
    int nfull;
    assert_int_equal(suite_expand(&s, 0, &full, &nfull), 0);
    snprintf(text, sizeof(text), "%s\n", full[0].hash);
    write_text(path, text);
    assert_int_equal(suite_cells_read_list(path, cells, count, order), -1);
    assert_non_null(strstr(err_get(), "not a cell of this suite and variant"));
    char missing[320];
    snprintf(missing, sizeof(missing), "%s/none.txt", temp_dir);
    assert_int_equal(suite_cells_read_list(missing, cells, count, order), -1);
    assert_non_null(strstr(err_get(), "cannot open cell list"));
    /* suite_select_cells passes the error on. */
    SuiteRunOptions opt = {.cells = missing, .shard_count = 2};
    assert_int_equal(suite_select_cells(cells, count, &opt, order), -1);
    suite_cells_free(full, nfull);
    suite_cells_free(cells, count);
    suite_free(&s);
}

/* ---- the sbatch script and the task status files ---- */

static void sbatch_script_text(void **state) {
    Suite s;
    SuiteCell *cells;
    int count;
    load_missing_quick(&s, &cells, &count);
    SuiteRunOptions opt = {.quick = 1, .jobs = 2, .results = "/shared/res", .exe = "/opt/euar"};
    SlurmOptions slurm = {.cpus_per_task = 2, .partition = "gpu", .time_limit = "01:30:00",
                          .gpus_per_task = 1, .num_sbatch_args = 2,
                          .sbatch_args = {"--account=lab", "--qos=it's"}};
    SlurmPaths paths;
    suite_slurm_paths("/shared/res", "T1", &paths);
    assert_string_equal(paths.script, "/shared/res/slurm/job-T1.sbatch");
    assert_string_equal(paths.cells, "/shared/res/slurm/cells-T1.txt");
    char *text = suite_slurm_script(&s, "suites/missing.json", &opt, &slurm, &paths, "/home/u",
                                    7, 40);
    static const char *const lines[] = {
        "#!/bin/bash\n",
        "\n#SBATCH --job-name=euar-missing-quick\n",
        "\n#SBATCH --array=0-6\n",
        "\n#SBATCH --output=/shared/res/slurm/logs/T1-%a.log\n",
        "\n#SBATCH --chdir=/home/u\n",
        "\n#SBATCH --cpus-per-task=2\n",
        "\n#SBATCH --partition=gpu\n",
        "\n#SBATCH --time=01:30:00\n",
        "\n#SBATCH --gpus-per-task=1\n",
        "\n#SBATCH --account=lab\n",
        "\n#SBATCH --qos=it's\n",
        "'/opt/euar' suite 'suites/missing.json' --quick --results '/shared/res' --jobs 2",
        "--shard \"$task/7\" --cells '/shared/res/slurm/cells-T1.txt'\n",
        "echo \"$rc\" > '/shared/res/slurm/status'\"/T1-$task.rc\"\nexit \"$rc\"\n",
        "40 cells in 7 tasks",
    };
    for (size_t k = 0; k < sizeof(lines) / sizeof(lines[0]); k++)
        if (!strstr(text, lines[k]))
            fail_msg("script lacks '%s':\n%s", lines[k], text);
    /* The #SBATCH lines come before the first command, where sbatch reads them. */
    char *first_command = strstr(text, "\ntask=");
    assert_non_null(first_command);
    assert_null(strstr(first_command, "#SBATCH"));
    free(text);

    /* Without the optional settings there are no lines for them. */
    SlurmOptions plain = {.cpus_per_task = 1};
    opt.quick = 0;
    text = suite_slurm_script(&s, "x.json", &opt, &plain, &paths, "/home/u", 1, 1);
    assert_non_null(strstr(text, "#SBATCH --array=0-0\n"));
    assert_non_null(strstr(text, "#SBATCH --job-name=euar-missing\n"));
    assert_null(strstr(text, "--partition"));
    assert_null(strstr(text, "--time"));
    assert_null(strstr(text, "--gpus-per-task"));
    assert_null(strstr(text, " --quick"));
    free(text);
    suite_cells_free(cells, count);
    suite_free(&s);
}

/* Runs suite_slurm_failed_tasks() with stderr in a file and returns the file's text. */
static char *failed_tasks_output(const SlurmPaths *paths, int tasks, int *failed) {
    char out_path[300];
    snprintf(out_path, sizeof(out_path), "%s/failed.txt", temp_dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    *failed = suite_slurm_failed_tasks(paths, tasks);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return read_file_text(out_path, NULL);
}

static void task_status_files(void **state) {
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/status-run", temp_dir);
    SlurmPaths paths;
    suite_slurm_paths(dir, "T2", &paths);
    assert_int_equal(make_dirs(paths.status), 0);
    char path[1024];
    const char *statuses[] = {"0\n", "1\n", NULL, "oops\n", "0\n"};
    for (int task = 0; task < 5; task++) {
        if (!statuses[task])
            continue;
        snprintf(path, sizeof(path), "%s/T2-%d.rc", paths.status, task);
        write_text(path, statuses[task]);
    }
    /* A status file of another submission does not count. */
    snprintf(path, sizeof(path), "%s/T1-2.rc", paths.status);
    write_text(path, "0\n");
    int failed = -1;
    char *out = failed_tasks_output(&paths, 5, &failed);
    assert_non_null(out);
    assert_int_equal(failed, 3);
    char expect[700];
    snprintf(expect, sizeof(expect), "task 1: failed with exit status 1; see %s/T2-1.log\n",
             paths.logs);
    if (!strstr(out, expect))
        fail_msg("output lacks '%s':\n%s", expect, out);
    snprintf(expect, sizeof(expect), "task 2: failed, it wrote no exit status");
    assert_non_null(strstr(out, expect));
    assert_non_null(strstr(out, "task 3: failed, it wrote no exit status"));
    assert_null(strstr(out, "task 0:"));
    assert_null(strstr(out, "task 4:"));
    free(out);
    out = failed_tasks_output(&paths, 1, &failed);
    assert_int_equal(failed, 0);
    assert_string_equal(out, "");
    free(out);
}

/* ---- option checks ---- */

static void slurm_option_checks(void **state) {
    static const char *const good_times[] = {"30", "10:00", "02:00:00", "1-00", "1-12:00",
                                             "2-00:00:00"};
    static const char *const bad_times[] = {"", "x", "1:2:3:4", "-1", "1-", "02:00:", "1h",
                                            "1-2-3", " 10"};
    for (size_t k = 0; k < sizeof(good_times) / sizeof(good_times[0]); k++)
        if (suite_slurm_check_time(good_times[k]) != 0)
            fail_msg("--time '%s' rejected: %s", good_times[k], err_get());
    for (size_t k = 0; k < sizeof(bad_times) / sizeof(bad_times[0]); k++) {
        if (suite_slurm_check_time(bad_times[k]) != -1)
            fail_msg("--time '%s' accepted", bad_times[k]);
        assert_non_null(strstr(err_get(), "for --time"));
    }
    assert_int_equal(suite_slurm_check_line("--partition", "gpu,cpu"), 0);
    assert_int_equal(suite_slurm_check_line("--partition", "a b"), -1);
    assert_non_null(strstr(err_get(), "'a b' for --partition"));
    assert_int_equal(suite_slurm_check_line("--sbatch-arg", "--qos=high"), 0);
    assert_int_equal(suite_slurm_check_line("--sbatch-arg", "qos=high"), -1);
    assert_non_null(strstr(err_get(), "expected an sbatch option"));
    assert_int_equal(suite_slurm_check_line("--sbatch-arg", "--a\n#SBATCH --b"), -1);
    assert_non_null(strstr(err_get(), "line break"));
    assert_int_equal(suite_slurm_check_line("--sbatch-arg", ""), -1);
}

/* ---- shard runs sharing a results folder ---- */

static const char fake_worker[] =
    "#!/bin/sh\n"
    "out=''\n"
    "while [ $# -gt 0 ]; do\n"
    "  case \"$1\" in --out) out=\"$2\"; shift;; esac\n"
    "  shift\n"
    "done\n"
    "printf '{\"status\": \"ok\"}' > \"$out\"\n";

/* Writes a suite of 6 cells (3 models x 2 seeds) on a small synth-mosi and a stand-in
 * worker. */
static void load_shard_suite(Suite *s, char *exe, size_t cap) {
    static const int sizes[EUAR_SPLIT_COUNT] = {8, 4, 4};
    char data[300], path[300], text[1024];
    snprintf(data, sizeof(data), "%s/shard.h5", temp_dir);
    if (access(data, F_OK) != 0 && synth_sentiment_write_sized(data, "mosi", 1, sizes) != 0)
        fail_msg("%s", err_get());
    snprintf(exe, cap, "%s/fake-euar.sh", temp_dir);
    write_text(exe, fake_worker);
    assert_int_equal(chmod(exe, 0755), 0);
    snprintf(text, sizeof(text),
             "{\"format_version\": 1, \"name\": \"sharded\", \"table\": \"main\", "
             "\"models\": [\"euar\", \"concat\", \"late\"], \"seeds\": [1, 2], "
             "\"datasets\": [{\"label\": \"d\", \"path\": \"%s\", \"conditions\": "
             "[{\"label\": \"T\", \"noise\": \"missing:keep=text\"}]}]}", data);
    snprintf(path, sizeof(path), "%s/sharded.json", temp_dir);
    write_text(path, text);
    if (suite_load(path, s) != 0)
        fail_msg("%s", err_get());
}

/* Two shards run while another process holds a shared lock on DIR/.lock, as the Slurm
 * submitter does. A cell whose lock is held elsewhere is skipped. An exclusive lock on
 * DIR/.lock, which a local runner takes, stops a shard. */
static void shard_run_locks(void **state) {
    Suite s;
    char exe[300], dir[300], lock_path[340], cell_lock[400];
    load_shard_suite(&s, exe, sizeof(exe));
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 6);
    snprintf(dir, sizeof(dir), "%s/shard-results", temp_dir);
    assert_int_equal(make_dirs(dir), 0);
    int shared = suite_results_lock(dir, 1);
    assert_true(shared >= 0);

    /* Cell 2 (shard 0 of 2) is running elsewhere: its lock is held. */
    char locks[320];
    snprintf(locks, sizeof(locks), "%s/locks", dir);
    assert_int_equal(make_dirs(locks), 0);
    snprintf(cell_lock, sizeof(cell_lock), "%s/%s.lock", locks, cells[2].hash);
    int held = open(cell_lock, O_RDWR | O_CREAT, 0644);
    assert_true(held >= 0);
    assert_int_equal(flock(held, LOCK_EX | LOCK_NB), 0);

    SuiteRunOptions opt = {.jobs = 2, .results = dir, .exe = exe, .shard_index = 0,
                           .shard_count = 2};
    assert_int_equal(suite_run(&s, &opt), 0);
    char path[400];
    for (int i = 0; i < n; i++) {
        suite_result_path(dir, &cells[i], path, sizeof(path));
        int expect = i == 0 || i == 4;
        if ((access(path, F_OK) == 0) != expect)
            fail_msg("after shard 0/2: result of cell %d exists %d, expected %d", i, !expect,
                     expect);
    }
    snprintf(path, sizeof(path), "%s/suite.json", dir);
    assert_int_equal(access(path, F_OK), 0);

    /* A corrupt result and a temporary file of a killed worker of another host are replaced
     * once the shard holds the cell's lock. */
    suite_result_path(dir, &cells[1], path, sizeof(path));
    write_text(path, "{\"stat");
    char temp[420];
    snprintf(temp, sizeof(temp), "%s.tmp.%d", path, 4194305);
    write_text(temp, "{");
    opt.shard_index = 1;
    assert_int_equal(suite_run(&s, &opt), 0);
    for (int i = 1; i < n; i += 2) {
        char reason[128];
        suite_result_path(dir, &cells[i], path, sizeof(path));
        assert_int_equal(suite_result_state(path, reason, sizeof(reason)), 1);
    }
    assert_int_equal(access(temp, F_OK), -1);

    /* Released, the cell runs in its shard. */
    close(held);
    opt.shard_index = 0;
    assert_int_equal(suite_run(&s, &opt), 0);
    suite_result_path(dir, &cells[2], path, sizeof(path));
    assert_int_equal(access(path, F_OK), 0);
    close(shared);

    /* An exclusive lock stops a shard before it writes anything. */
    snprintf(lock_path, sizeof(lock_path), "%s/.lock", dir);
    int local = open(lock_path, O_RDWR);
    assert_true(local >= 0);
    assert_int_equal(flock(local, LOCK_EX | LOCK_NB), 0);
    unlink(path);
    err_clear();
    assert_int_equal(suite_run(&s, &opt), 1);
    assert_non_null(strstr(err_get(), "in use by a local 'euar suite'"));
    assert_int_equal(access(path, F_OK), -1);
    /* And shards keep a local runner off the folder. */
    close(local);
    shared = suite_results_lock(dir, 1);
    assert_true(shared >= 0);
    SuiteRunOptions local_opt = {.jobs = 1, .results = dir, .exe = exe};
    assert_int_equal(suite_run(&s, &local_opt), 1);
    assert_non_null(strstr(err_get(), "in use by another 'euar suite'"));
    close(shared);
    suite_cells_free(cells, n);
    suite_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shard_parse_valid),
        cmocka_unit_test(shard_parse_rejections),
        cmocka_unit_test(shard_split_exact),
        cmocka_unit_test(shard_split_only),
        cmocka_unit_test(shard_list_stable),
        cmocka_unit_test(cell_list_round_trip),
        cmocka_unit_test(cell_list_rejections),
        cmocka_unit_test(sbatch_script_text),
        cmocka_unit_test(task_status_files),
        cmocka_unit_test(slurm_option_checks),
        cmocka_unit_test(shard_run_locks),
    };
    return cmocka_run_group_tests(tests, setup_temp, teardown_temp);
}
