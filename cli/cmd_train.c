/* euar train: one training run (a suite cell) from an HDF5 dataset, written as a result. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/prepare.h"
#include "core/common.h"
#include "core/result.h"

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: euar train --data FILE --model NAME [options]\n\n"
            "  --data FILE        dataset in the euar-bench HDF5 format (docs/format.md)\n"
            "  --model NAME       one of: %s\n"
            "  --noise SPEC       noise spec, for example missing:keep=text,audio (default: "
            "none)\n"
            "  --noise-seed N     seed of the noise fields (default 0)\n"
            "  --set KEY=VALUE    training or model setting, repeatable (euar train "
            "--settings lists them)\n"
            "  --out FILE         result JSON (default: print the summary only)\n"
            "  --meta KEY=VALUE   label copied into the result's cell object, repeatable\n"
            "  --nonfinite zero   replace NaN and Inf features by 0 instead of rejecting them\n"
            "  --quiet            no per-epoch lines\n"
            "  --settings         print every setting with its default and exit\n\n"
            "Exit status: 0 finished, 1 bad input (no result written), 3 diverged (result "
            "written with status failed).\n",
            model_names());
}

int cmd_train(int argc, char **argv) {
    const char *data_path = NULL, *model = NULL, *noise = "", *out_path = NULL;
    uint64_t noise_seed = 0;
    int quiet = 0;
    Settings set;
    settings_default(&set);
    ResultInfo info;
    memset(&info, 0, sizeof(info));
    NonFinitePolicy nonfinite = EUAR_NONFINITE_REJECT;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = strcmp(a, "--data") == 0 || strcmp(a, "--model") == 0 ||
                          strcmp(a, "--noise") == 0 || strcmp(a, "--noise-seed") == 0 ||
                          strcmp(a, "--set") == 0 || strcmp(a, "--out") == 0 ||
                          strcmp(a, "--meta") == 0 || strcmp(a, "--nonfinite") == 0;
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
        } else if (strcmp(a, "--nonfinite") == 0) {
            if (strcmp(v, "zero") == 0)
                nonfinite = EUAR_NONFINITE_ZERO;
            else if (strcmp(v, "reject") != 0) {
                fprintf(stderr, "euar: error: invalid --nonfinite '%s': expected reject or "
                                "zero\n", v);
                return 1;
            }
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
    if (!model_exists(model)) {
        fprintf(stderr, "euar: error: unknown model '%s'; valid models are: %s\n", model,
                model_names());
        return 1;
    }

    PreparedData prep;
    if (prepare_data(&prep, data_path, noise, noise_seed, nonfinite) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        return 1;
    }
    backend_cpu_set_threads(set.threads);

    if (!quiet) {
        char buf[4096];
        settings_format(&set, buf, sizeof(buf));
        printf("euar train: model %s, data %s (%s), noise '%s' (seed %" PRIu64 "), backend cpu\n"
               "samples: train %d, valid %d, test %d\nsettings:\n",
               model, data_path, prep.ds.name, noise, noise_seed, prep.data.train.n,
               prep.data.valid.n, prep.data.test.n);
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
            printf("  %s\n", line);
        fflush(stdout);
    }

    TrainResult result;
    if (train_run(model, &set, &prep.data, backend_cpu(), quiet ? NULL : stdout, &result) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        prepared_data_free(&prep);
        return 1;
    }

    info.model = model;
    info.data_path = data_path;
    info.dataset_name = prep.ds.name;
    info.noise = noise;
    info.noise_seed = noise_seed;
    info.regression = prep.ds.task == EUAR_TASK_REGRESSION;
    info.num_classes = prep.ds.num_classes;
    info.num_modalities = prep.ds.num_modalities;
    for (int m = 0; m < prep.ds.num_modalities; m++)
        info.modality_names[m] = prep.ds.mod[m].name;
    info.data_checksum = prep.checksum;
    info.backend = "cpu";

    int status = 0;
    if (result.failed) {
        fprintf(stderr, "euar: warning: run diverged at epoch %d: %s\n", result.fail_epoch,
                result.fail_reason);
        status = 3;
    } else if (!quiet) {
        printf("selected epoch %d (%s):", result.selected_epoch,
               set.select == EUAR_SELECT_VALID_LOSS    ? "valid loss"
               : set.select == EUAR_SELECT_VALID_METRIC ? "valid metric"
                                                        : "test acc2");
        for (int i = 0; i < result.test.count; i++)
            printf(" %s %.4f", result.test.names[i], result.test.values[i]);
        printf("\n");
    }
    if (out_path && result_write(out_path, &info, &set, &result) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        status = 1;
    }
    train_result_free(&result);
    prepared_data_free(&prep);
    for (int i = 0; i < info.meta_count; i++)
        free((char *)info.meta_key[i]);
    return status;
}
