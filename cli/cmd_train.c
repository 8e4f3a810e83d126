/* euar train: one training run (a suite cell) from an HDF5 dataset, written as a result. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/prepare.h"
#include "core/backend.h"
#include "core/checkpoint.h"
#include "core/common.h"
#include "core/file_hash.h"
#include "core/result.h"
#include "report/joint_file.h"

/* Test-time conditions, evaluated by the hook after training. */
typedef struct {
    const char *data_path;
    uint64_t noise_seed;
    NonFinitePolicy nonfinite;
    int count;
    const char *label[EUAR_RESULT_MAX_CONDITIONS];
    const char *spec[EUAR_RESULT_MAX_CONDITIONS];
    char canonical[EUAR_RESULT_MAX_CONDITIONS][EUAR_NOISE_TEXT_LEN];
    MetricSet metrics[EUAR_RESULT_MAX_CONDITIONS];
    RoutingStats routing[EUAR_RESULT_MAX_CONDITIONS];
    int failed;
    const char *joint_out;       /* --joint-out file, or NULL */
    const PreparedData *trained; /* the data the model was trained on */
    JointFile joint;
} TestConditions;

/* Evaluates the clean test split once more to keep its joint representations. */
static float *clean_joint(TestConditions *tc, Model *m) {
    const SplitData *test = &tc->trained->data.test;
    float *joint = xmalloc(sizeof(float) * (size_t)test->n * m->joint_dim);
    MetricSet unused;
    train_evaluate(m, test, &unused, NULL, joint);
    return joint;
}

/* Loads the data again with each test-time spec and evaluates the selected model on its
 * test split. Each load reads the file once; training data is not touched. */
static void evaluate_conditions(void *ctx, Model *m) {
    TestConditions *tc = ctx;
    JointFile *jf = &tc->joint;
    if (tc->joint_out) {
        const Dataset *ds = &tc->trained->ds;
        const SplitData *test = &tc->trained->data.test;
        snprintf(jf->model, sizeof(jf->model), "%s", m->kind->name);
        snprintf(jf->dataset, sizeof(jf->dataset), "%s", ds->name);
        jf->classification = ds->task == EUAR_TASK_CLASSIFICATION;
        jf->num_classes = ds->num_classes;
        jf->n = test->n;
        jf->dim = m->joint_dim;
        jf->labels = test->y ? xmalloc(sizeof(float) * (size_t)test->n) : NULL;
        jf->classes = test->cls ? xmalloc(sizeof(int32_t) * (size_t)test->n) : NULL;
        if (jf->labels)
            memcpy(jf->labels, test->y, sizeof(float) * (size_t)test->n);
        if (jf->classes)
            memcpy(jf->classes, test->cls, sizeof(int32_t) * (size_t)test->n);
        snprintf(jf->names[0], sizeof(jf->names[0]), "clean");
        jf->joint[0] = clean_joint(tc, m);
        jf->count = 1;
    }
    for (int c = 0; c < tc->count && !tc->failed; c++) {
        PreparedData prep;
        if (prepare_data(&prep, tc->data_path, tc->spec[c], tc->noise_seed, tc->nonfinite) != 0) {
            fprintf(stderr, "euar: error: test condition '%s': %s\n", tc->label[c], err_get());
            tc->failed = 1;
            return;
        }
        noise_describe(&prep.noise, tc->canonical[c], sizeof(tc->canonical[c]));
        memset(&m->stats, 0, sizeof(m->stats));
        m->stats.enabled = 1;
        float *joint = NULL;
        if (tc->joint_out && prep.data.test.n == jf->n) {
            joint = xmalloc(sizeof(float) * (size_t)prep.data.test.n * m->joint_dim);
            snprintf(jf->names[jf->count], sizeof(jf->names[0]), "%.63s", tc->label[c]);
            jf->joint[jf->count++] = joint;
        }
        train_evaluate(m, &prep.data.test, &tc->metrics[c], NULL, joint);
        m->stats.enabled = 0;
        m->stats.samples = prep.data.test.n;
        tc->routing[c] = m->stats;
        printf("test condition %s (%s):", tc->label[c], tc->canonical[c]);
        for (int i = 0; i < tc->metrics[c].count && i < 4; i++)
            printf(" %s %.4f", tc->metrics[c].names[i], tc->metrics[c].values[i]);
        printf("\n");
        prepared_data_free(&prep);
    }
}

/* Checks before training that the result can be written: the folder of `path` exists and
 * is writable, and `path` itself is not a folder. Returns 0 or -1 with err_set(). */
static int check_out_path(const char *option, const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return err_set("%s %s is a folder; give a file name inside it", option, path);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (stat(dir, &st) != 0)
        return err_set("%s %s: folder %s does not exist (%s); create it first", option, path,
                       dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return err_set("%s %s: %s is not a folder", option, path, dir);
    if (access(dir, W_OK) != 0)
        return err_set("%s %s: folder %s is not writable (%s)", option, path, dir,
                       strerror(errno));
    return 0;
}

/* Parses a number of seconds for --checkpoint-every: a decimal from 0 to one day. */
static int parse_seconds(const char *text, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= 0.0 && v <= 86400.0))
        return err_set("invalid value '%s' for --checkpoint-every: expected seconds from 0 "
                       "to 86400", text);
    *out = v;
    return 0;
}

/* Identifies a run for its checkpoint: FNV-1a over the model, every setting, the applied
 * noise, the noise seed and the checksum of the prepared data. */
static uint64_t run_fingerprint(const char *model, const Settings *set, const char *noise,
                                uint64_t noise_seed, uint64_t data_checksum) {
    char text[8192];
    int len = snprintf(text, sizeof(text), "model=%s\nnoise=%s\nnoise_seed=%" PRIu64
                       "\ndata=%016" PRIx64 "\n", model, noise, noise_seed, data_checksum);
    settings_format(set, text + len, sizeof(text) - (size_t)len);
    return hash_fnv1a64(text, strlen(text), EUAR_FNV_OFFSET);
}

/* Frees what the option parser allocated. */
static void free_options(ResultInfo *info, TestConditions *tc) {
    for (int i = 0; i < info->meta_count; i++)
        free((char *)info->meta_key[i]);
    for (int c = 0; c < tc->count; c++)
        free((char *)tc->label[c]);
}

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: euar train --data FILE --model NAME [options]\n\n"
            "  --data FILE        dataset in the euar-bench HDF5 format (docs/format.md)\n"
            "  --model NAME       one of: %s\n"
            "  --noise SPEC       noise spec, for example missing:keep=text,audio (default: "
            "none)\n"
            "  --noise-seed N     seed of the noise fields (default 0)\n"
            "  --test-noise LABEL=SPEC\n"
            "                     after training, evaluate the selected epoch's model on the "
            "test split\n"
            "                     corrupted by SPEC; repeatable, one result entry per LABEL\n"
            "  --set KEY=VALUE    training or model setting, repeatable (euar train "
            "--settings lists them)\n"
            "  --out FILE         result JSON (default: print the summary only)\n"
            "  --meta KEY=VALUE   label copied into the result's cell object, repeatable\n"
            "  --joint-out FILE   write the fused representation of every test sample at the\n"
            "                     selected epoch, clean and per --test-noise condition (HDF5)\n"
            "  --nonfinite zero   replace NaN and Inf features by 0 instead of rejecting them\n"
            "  --device NAME      cpu (default), cuda (GPU 0; an error without one) or auto "
            "(cuda when\n"
            "                     a GPU is present, cpu otherwise)\n"
            "  --data-hash-cache FILE\n"
            "                     look up the hash of --data that --out records in FILE, keyed\n"
            "                     by path, size and modification time (suites pass one)\n"
            "  --checkpoint FILE  save the training state to FILE (HDF5) after epochs and\n"
            "                     resume from it when it exists; deleted once the result is\n"
            "                     written\n"
            "  --checkpoint-every S\n"
            "                     seconds between checkpoints, 0 for every epoch (default 60)\n"
            "  --quiet            no settings table and no per-epoch lines\n"
            "  --settings         print every setting with its default and exit\n\n"
            "Exit status: 0 finished, 1 bad input (no result written), 3 diverged (result "
            "written with status failed).\n",
            model_names());
}

int cmd_train(int argc, char **argv) {
    const char *data_path = NULL, *model = NULL, *noise = "", *out_path = NULL;
    const char *device = "cpu";
    const char *hash_cache = NULL;
    uint64_t noise_seed = 0;
    int quiet = 0;
    Settings set;
    settings_default(&set);
    ResultInfo info;
    memset(&info, 0, sizeof(info));
    NonFinitePolicy nonfinite = EUAR_NONFINITE_REJECT;
    static TestConditions tc;
    memset(&tc, 0, sizeof(tc));
    TrainCheckpoint checkpoint = {.every_s = EUAR_CHECKPOINT_EVERY_S};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = strcmp(a, "--data") == 0 || strcmp(a, "--model") == 0 ||
                          strcmp(a, "--noise") == 0 || strcmp(a, "--noise-seed") == 0 ||
                          strcmp(a, "--set") == 0 || strcmp(a, "--out") == 0 ||
                          strcmp(a, "--meta") == 0 || strcmp(a, "--nonfinite") == 0 ||
                          strcmp(a, "--test-noise") == 0 || strcmp(a, "--joint-out") == 0 ||
                          strcmp(a, "--device") == 0 ||
                          strcmp(a, "--data-hash-cache") == 0 ||
                          strcmp(a, "--checkpoint") == 0 || strcmp(a, "--checkpoint-every") == 0;
        if (takes_value && !v) {
            fprintf(stderr, "euar: error: %s needs a value; see euar train --help\n", a);
            return 1;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            train_usage(stdout);
            return 0;
        } else if (strcmp(a, "--settings") == 0) {
            char buf[4096];
            settings_format(&set, buf, sizeof(buf));
            fputs(buf, stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--data") == 0) {
            data_path = v;
            i++;
        } else if (strcmp(a, "--model") == 0) {
            model = v;
            i++;
        } else if (strcmp(a, "--noise") == 0) {
            noise = strcmp(v, "none") == 0 ? "" : v;
            i++;
        } else if (strcmp(a, "--noise-seed") == 0) {
            char *end;
            noise_seed = strtoull(v, &end, 10);
            if (*end || v[0] == '-' || !v[0]) {
                fprintf(stderr, "euar: error: invalid --noise-seed '%s': expected a "
                                "non-negative integer\n", v);
                return 1;
            }
            i++;
        } else if (strcmp(a, "--set") == 0) {
            if (settings_set(&set, v) != 0) {
                fprintf(stderr, "euar: error: --set %s: %s\n", v, err_get());
                return 1;
            }
            i++;
        } else if (strcmp(a, "--out") == 0) {
            out_path = v;
            i++;
        } else if (strcmp(a, "--device") == 0) {
            device = v;
            i++;
        } else if (strcmp(a, "--nonfinite") == 0) {
            if (strcmp(v, "zero") == 0)
                nonfinite = EUAR_NONFINITE_ZERO;
            else if (strcmp(v, "reject") != 0) {
                fprintf(stderr, "euar: error: invalid --nonfinite '%s': expected reject or "
                                "zero\n", v);
                return 1;
            }
            i++;
        } else if (strcmp(a, "--joint-out") == 0) {
            tc.joint_out = v;
            i++;
        } else if (strcmp(a, "--checkpoint") == 0) {
            checkpoint.path = v;
            i++;
        } else if (strcmp(a, "--checkpoint-every") == 0) {
            if (parse_seconds(v, &checkpoint.every_s) != 0) {
                fprintf(stderr, "euar: error: %s\n", err_get());
                return 1;
            }
            i++;
        } else if (strcmp(a, "--test-noise") == 0) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                fprintf(stderr, "euar: error: invalid --test-noise '%s': expected LABEL=SPEC, "
                                "for example sp5=saltpepper:eps=5@rgb\n", v);
                return 1;
            }
            if (tc.count == EUAR_RESULT_MAX_CONDITIONS) {
                fprintf(stderr, "euar: error: too many --test-noise conditions: at most %d per "
                                "run\n", EUAR_RESULT_MAX_CONDITIONS);
                return 1;
            }
            char *label = xstrdup(v);
            label[eq - v] = '\0';
            /* Labels name groups of the --joint-out file: HDF5 forbids '/' and the names "."
             * and "..", and "clean" is the test split as trained. */
            if (strlen(label) > 63 || strchr(label, '/') || strcmp(label, ".") == 0 ||
                strcmp(label, "..") == 0 || strcmp(label, "clean") == 0) {
                fprintf(stderr, "euar: error: invalid --test-noise label '%s': use at most 63 "
                                "characters without '/', other than '.', '..' and 'clean'\n",
                        label);
                free(label);
                return 1;
            }
            NoiseSpec check;
            if (noise_parse(eq + 1, &check) != 0) {
                fprintf(stderr, "euar: error: --test-noise %s: %s\n", label, err_get());
                free(label);
                return 1;
            }
            int reaches_test = check.count == 0;
            for (int t = 0; t < check.count; t++)
                reaches_test |= check.term[t].phase != EUAR_PHASE_TRAIN;
            if (!reaches_test) {
                fprintf(stderr, "euar: error: --test-noise %s: every term has phase=train, so "
                                "the test split would stay clean; use phase=test or both\n",
                        label);
                free(label);
                return 1;
            }
            for (int c = 0; c < tc.count; c++)
                if (strcmp(tc.label[c], label) == 0) {
                    fprintf(stderr, "euar: error: --test-noise label '%s' given twice; use "
                                    "distinct labels\n", label);
                    free(label);
                    return 1;
                }
            tc.label[tc.count] = label;
            tc.spec[tc.count] = eq + 1;
            tc.count++;
            i++;
        } else if (strcmp(a, "--data-hash-cache") == 0) {
            hash_cache = v;
            i++;
        } else if (strcmp(a, "--meta") == 0) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || info.meta_count == EUAR_RESULT_MAX_META) {
                fprintf(stderr, "euar: error: invalid --meta '%s': expected key=value (at most "
                                "%d)\n", v, EUAR_RESULT_MAX_META);
                return 1;
            }
            info.meta_key[info.meta_count] = xstrdup(v);
            ((char *)info.meta_key[info.meta_count])[eq - v] = '\0';
            info.meta_value[info.meta_count] = eq + 1;
            info.meta_count++;
            i++;
        } else {
            fprintf(stderr, "euar: error: unknown option '%s'; see euar train --help\n", a);
            return 1;
        }
    }
    if (!data_path || !model) {
        fprintf(stderr, "euar: error: --data and --model are required; see euar train --help\n");
        return 1;
    }
    if ((out_path && check_out_path("--out", out_path) != 0) ||
        (tc.joint_out && check_out_path("--joint-out", tc.joint_out) != 0) ||
        (checkpoint.path && check_out_path("--checkpoint", checkpoint.path) != 0)) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        return 1;
    }
    if (!model_exists(model)) {
        fprintf(stderr, "euar: error: unknown model '%s'; valid models are: %s\n", model,
                model_names());
        return 1;
    }

    static BackendInfo device_info;
    const Backend *be = backend_select(device, &device_info);
    if (!be) {
        fprintf(stderr, "euar: error: --device %s: %s\n", device, err_get());
        return 1;
    }

    /* The identity of the file as it is before reading it, so that a suite can tell this
     * result from one of a file regenerated at the same path. */
    if (out_path && file_hash_cached(data_path, hash_cache, &info.data_file_hash) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        return 1;
    }
    info.has_data_file_hash = out_path != NULL;
    PreparedData prep;
    if (prepare_data(&prep, data_path, noise, noise_seed, nonfinite) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        return 1;
    }
    char why[256];
    if (!model_supports_task(model, prep.ds.task == EUAR_TASK_CLASSIFICATION, why, sizeof(why))) {
        fprintf(stderr, "euar: error: %s: %s\n", data_path, why);
        prepared_data_free(&prep);
        return 1;
    }
    for (int c = 0; c < tc.count; c++) {
        NoiseSpec spec;
        noise_parse(tc.spec[c], &spec);
        if (noise_check_dataset(&spec, &prep.ds) != 0) {
            fprintf(stderr, "euar: error: --test-noise %s: %s: %s\n", tc.label[c], data_path,
                    err_get());
            prepared_data_free(&prep);
            return 1;
        }
    }
    tc.data_path = data_path;
    tc.trained = &prep;
    tc.noise_seed = noise_seed;
    tc.nonfinite = nonfinite;
    backend_cpu_set_threads(set.threads);

    if (!quiet) {
        char buf[4096];
        settings_format(&set, buf, sizeof(buf));
        printf("euar train: model %s, data %s (%s), noise %s (seed %" PRIu64 "), backend %s "
               "(%s)\nsamples: train %d, valid %d, test %d\nsettings:\n",
               model, data_path, prep.ds.name, noise[0] ? noise : "none", noise_seed, be->name,
               device_info.name,
               prep.data.train.n,
               prep.data.valid.n, prep.data.test.n);
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
            printf("  %s\n", line);
        fflush(stdout);
    }

    /* The noise as applied, every option and default scale resolved. */
    static char applied_noise[EUAR_NOISE_TEXT_LEN];
    noise_describe(&prep.noise, applied_noise, sizeof(applied_noise));
    if (checkpoint.path)
        checkpoint.fingerprint = run_fingerprint(model, &set, applied_noise, noise_seed,
                                                 prep.checksum);
    TrainResult result;
    if (train_run_resumable(model, &set, &prep.data, be, quiet ? NULL : stdout,
                            &result, tc.count || tc.joint_out ? evaluate_conditions : NULL, &tc,
                            &checkpoint) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        train_result_free(&result);
        prepared_data_free(&prep);
        free_options(&info, &tc);
        return 1;
    }

    info.model = model;
    info.data_path = data_path;
    info.dataset_name = prep.ds.name;
    info.noise = applied_noise;
    info.noise_seed = noise_seed;
    info.regression = prep.ds.task == EUAR_TASK_REGRESSION;
    info.num_classes = prep.ds.num_classes;
    info.num_modalities = prep.ds.num_modalities;
    for (int m = 0; m < prep.ds.num_modalities; m++)
        info.modality_names[m] = prep.ds.mod[m].name;
    info.data_checksum = prep.checksum;
    info.backend = be->name;
    info.device = &device_info;

    if (tc.failed) {
        train_result_free(&result);
        prepared_data_free(&prep);
        return 1;
    }
    if (result.selected_epoch > 0) {
        info.condition_count = tc.count;
        for (int c = 0; c < tc.count; c++) {
            info.condition_label[c] = tc.label[c];
            info.condition_noise[c] = tc.canonical[c];
        }
        info.condition_metrics = tc.metrics;
        info.condition_routing = tc.routing;
    }

    int status = 0;
    if (result.failed) {
        fprintf(stderr, "euar: warning: run diverged at epoch %d: %s\n", result.fail_epoch,
                result.fail_reason);
        status = 3;
    } else {
        printf("test split at the selected epoch %d (selected on %s):", result.selected_epoch,
               set.select == EUAR_SELECT_VALID_LOSS    ? "valid loss"
               : set.select == EUAR_SELECT_VALID_METRIC ? "valid metric"
                                                        : "test acc2");
        for (int i = 0; i < result.test.count; i++)
            printf(" %s %.4f", result.test.names[i], result.test.values[i]);
        printf("\n");
    }
    /* The joint file goes first: a run whose outputs are incomplete writes no result, so a
     * suite reruns it. */
    if (tc.joint_out && tc.joint.count > 0 && joint_file_write(tc.joint_out, &tc.joint) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        status = 1;
    }
    if (status != 1 && out_path && result_write(out_path, &info, &set, &result) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        status = 1;
    }
    /* The checkpoint stays when no result was written, so a rerun resumes from it. */
    if (status != 1 && checkpoint.path && unlink(checkpoint.path) != 0 && errno != ENOENT)
        fprintf(stderr, "euar: warning: cannot delete the checkpoint %s: %s\n",
                checkpoint.path, strerror(errno));
    joint_file_free(&tc.joint);
    train_result_free(&result);
    prepared_data_free(&prep);
    free_options(&info, &tc);
    return status;
}
