/* `euar data import-pickle`: converts MMSA and MAG-BERT/MIB pickles by running the Python
 * converter datasets/import_pickle.py, because only Python can read a pickle. The C side checks
 * the arguments, finds the interpreter and the script, and passes the exit status through. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/common.h"
#include "datasets/import_util.h"

#define IMPORT_PICKLE_PYTHON "/usr/bin/python3"
#define IMPORT_PICKLE_SCRIPT "import_pickle.py"

/* Places of the script relative to the folder of bin/euar: a source checkout, then an
 * installation under PREFIX/bin and PREFIX/share/euar-bench. */
static const char *const script_dirs[] = {"../datasets", "../share/euar-bench"};

static void usage_import_pickle(FILE *f) {
    fprintf(f,
            "usage: euar data import-pickle --format mmsa|mib IN.pkl --out OUT.h5\n"
            "                               [--name NAME] [--nonfinite keep|zero]\n"
            "                               [--max-steps T]\n\n"
            "Converts a pickle of precomputed CMU-MOSI or CMU-MOSEI features into a dataset\n"
            "file (docs/import.md). Runs %s on datasets/%s, which needs Debian's\n"
            "python3-numpy and python3-h5py (make deps).\n\n"
            "  --format mmsa     MMSA pickle: dict train/valid/test of text, audio, vision,\n"
            "                    optional audio_lengths and vision_lengths, regression_labels, id\n"
            "  --format mib      MAG-BERT/MIB pickle: dict train/dev/test of lists of\n"
            "                    ((words, visual, acoustic), label, segment); words become a\n"
            "                    tokens modality with a vocabulary built from train\n"
            "  --out FILE        output HDF5 file (written atomically)\n"
            "  --name NAME       dataset name (default: the output file name without .h5)\n"
            "  --nonfinite keep|zero\n"
            "                    NaN and Inf in features: keep them (default; load the file with\n"
            "                    --nonfinite zero) or store 0 (needed by suites)\n"
            "  --max-steps T     mib only: keep at most T words per sample (default: all)\n\n"
            "Environment: EUAR_PYTHON overrides the interpreter (default %s); a name\n"
            "without '/' such as python3 is looked up in PATH.\n",
            IMPORT_PICKLE_PYTHON, IMPORT_PICKLE_SCRIPT, IMPORT_PICKLE_PYTHON);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds import_pickle.py next to the running binary; writes its path into `out`. Returns 0,
 * or -1 with err_set() listing the places searched. */
static int find_script(char *out, size_t cap) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len <= 0)
        return err_set("cannot find the folder of bin/euar (/proc/self/exe: %s); run "
                       "/usr/bin/python3 datasets/%s directly",
                       strerror(errno), IMPORT_PICKLE_SCRIPT);
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    char searched[2 * PATH_MAX] = "";
    for (size_t i = 0; i < EUAR_ARRAY_LEN(script_dirs); i++) {
        snprintf(out, cap, "%s/%s/%s", exe, script_dirs[i], IMPORT_PICKLE_SCRIPT);
        if (is_file(out))
            return 0;
        size_t used = strlen(searched);
        snprintf(searched + used, sizeof(searched) - used, "%s%s", i ? ", " : "", out);
    }
    return err_set("%s not found (searched %s); run euar from a euar-bench checkout, or "
                   "install the script to PREFIX/share/euar-bench next to PREFIX/bin/euar",
                   IMPORT_PICKLE_SCRIPT, searched);
}

static int check_max_steps(const char *text) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 0 || v > INT32_MAX)
        return err_set("--max-steps: '%s' is invalid; use a non-negative integer (0 keeps "
                       "every word)",
                       text);
    return 0;
}

/* Checks one option value the way the script would, so that every bad value gives one
 * "euar: error:" line and exit status 1 before Python starts. */
static int check_value(const char *option, const char *value) {
    if (strcmp(option, "--nonfinite") == 0 && strcmp(value, "keep") != 0 &&
        strcmp(value, "zero") != 0)
        return err_set("--nonfinite: '%s' is invalid; use 'keep' or 'zero' (lowercase)", value);
    if (strcmp(option, "--max-steps") == 0)
        return check_max_steps(value);
    if (strcmp(option, "--name") == 0)
        return import_check_name(value);
    if (strcmp(option, "--out") == 0)
        return import_check_out(value);
    return 0;
}

/* Checks the arguments that the script would reject only after loading the pickle. */
static int check_arguments(int argc, char **argv, const char **out_path) {
    const char *format = NULL, *in = NULL, *out = NULL;
    OptionsSeen seen = {{0}, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int takes_value = strcmp(a, "--format") == 0 || strcmp(a, "--out") == 0 ||
                          strcmp(a, "--name") == 0 || strcmp(a, "--nonfinite") == 0 ||
                          strcmp(a, "--max-steps") == 0;
        if (takes_value && options_seen_add(&seen, a) != 0)
            return -1;
        if (takes_value && i + 1 >= argc)
            return err_set("%s needs a value; see --help", a);
        if (takes_value && check_value(a, argv[i + 1]) != 0)
            return -1;
        if (strcmp(a, "--format") == 0)
            format = argv[++i];
        else if (strcmp(a, "--out") == 0)
            out = argv[++i];
        else if (takes_value)
            i++;
        else if (a[0] == '-' && a[1] != '\0')
            return err_set("unknown option '%s'; see --help", a);
        else if (in)
            return err_set("unexpected argument '%s'; import-pickle takes one input file", a);
        else
            in = a;
    }
    if (!format)
        return err_set("--format mmsa|mib is required");
    if (strcmp(format, "mmsa") != 0 && strcmp(format, "mib") != 0)
        return err_set("--format: '%s' is invalid; use 'mmsa' (train/valid/test of arrays) or "
                       "'mib' (MAG-BERT/MIB lists of ((words, visual, acoustic), label, "
                       "segment))",
                       format);
    if (!in)
        return err_set("the input pickle is missing; pass IN.pkl");
    if (!out)
        return err_set("--out FILE is required");
    if (!is_file(in))
        return err_set("%s: not found or not a regular file; check the path", in);
    *out_path = out;
    return 0;
}

int cmd_data_import_pickle(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage_import_pickle(stdout);
            return 0;
        }
    if (argc < 2) {
        usage_import_pickle(stderr);
        return 1;
    }
    char script[PATH_MAX + 64];
    const char *out = NULL;
    if (check_arguments(argc, argv, &out) != 0 || find_script(script, sizeof(script)) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        return 1;
    }
    const char *python = getenv("EUAR_PYTHON");
    if (!python || !python[0])
        python = IMPORT_PICKLE_PYTHON;
    char found[PATH_MAX];
    if (!strchr(python, '/')) {
        if (!find_program(python, found, sizeof(found))) {
            fprintf(stderr,
                    "euar: error: EUAR_PYTHON=%s: not found in PATH; set EUAR_PYTHON to the "
                    "full path of a Python 3 with numpy and h5py, or unset it to use %s\n",
                    python, IMPORT_PICKLE_PYTHON);
            return 1;
        }
        python = found;
    }
    if (access(python, X_OK) != 0) {
        fprintf(stderr,
                "euar: error: %s: %s; install Debian's python3, python3-numpy and "
                "python3-h5py (make deps), or set EUAR_PYTHON to a Python 3 with numpy and "
                "h5py\n",
                python, strerror(errno));
        return 1;
    }

    /* argv for the script: python script <the user's arguments>. */
    char **args = xcalloc((size_t)argc + 2, sizeof(char *));
    args[0] = (char *)python;
    args[1] = script;
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "euar: error: cannot start %s: %s\n", python, strerror(errno));
        free(args);
        return 1;
    }
    if (pid == 0) {
        execv(python, args);
        fprintf(stderr, "euar: error: cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    free(args);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "euar: error: waiting for %s failed: %s\n", python, strerror(errno));
            return 1;
        }
    if (WIFSIGNALED(status)) {
        /* The script writes OUT.tmp.<its pid> and renames it only when complete. */
        char tmp[PATH_MAX + 32];
        snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", out, (long)pid);
        unlink(tmp);
        fprintf(stderr, "euar: error: %s %s was killed by signal %d; %s was not written\n",
                python, script, WTERMSIG(status), out);
        return 1;
    }
    return WEXITSTATUS(status);
}
