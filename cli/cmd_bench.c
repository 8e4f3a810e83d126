/* euar bench: times training epochs of one model on one dataset and reports peak memory, as
 * one JSON line that bench/run.sh compares with the PyTorch reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/prepare.h"
#include "core/backend.h"
#include "core/common.h"

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One JSON line describing the device, for bench/run.sh's page. Names hold no quotes. */
static void print_device_info(const Backend *be, const BackendInfo *d) {
    printf("{\"device\": \"%s\", \"name\": \"%s\"", be->name, d->name);
    if (strcmp(be->name, "cuda") == 0)
        printf(", \"driver_version\": \"%d.%d\", \"runtime_version\": \"%d.%d\", "
               "\"compute_capability\": \"%d.%d\", \"memory_mb\": %zu",
               d->driver_version / 1000, (d->driver_version % 1000) / 10,
               d->runtime_version / 1000, (d->runtime_version % 1000) / 10, d->compute_major,
               d->compute_minor, d->memory_bytes >> 20);
    printf("}\n");
}

int cmd_bench(int argc, char **argv) {
    const char *data_path = "data/synth-mosi.h5", *model = "euar", *device = "cpu";
    int device_info_only = 0;
    Settings set;
    settings_default(&set);
    set.epochs = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: euar bench [--data FILE] [--model NAME] [--epochs N] "
                   "[--device cpu|cuda|auto] [--set KEY=VALUE]...\n"
                   "       euar bench --device NAME --device-info\n"
                   "Trains for N epochs (default 5) without per-epoch evaluation and prints one "
                   "JSON line:\nseconds per epoch (forward, backward and Adam over all training "
                   "batches) and peak resident memory.\n"
                   "--device picks cpu (default), cuda (GPU 0) or auto (cuda when a GPU is "
                   "present).\n--device-info prints the device as one JSON line and exits, "
                   "with status 1 when it is not usable.\n");
            return 0;
        }
        if (strcmp(a, "--device-info") == 0) {
            device_info_only = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "euar: error: %s needs a value; see euar bench --help\n", a);
            return 1;
        }
        if (strcmp(a, "--data") == 0) {
            data_path = v;
        } else if (strcmp(a, "--model") == 0) {
            model = v;
        } else if (strcmp(a, "--epochs") == 0) {
            if (settings_set_kv(&set, "epochs", v) != 0) {
                fprintf(stderr, "euar: error: --epochs: %s\n", err_get());
                return 1;
            }
        } else if (strcmp(a, "--device") == 0) {
            device = v;
        } else if (strcmp(a, "--set") == 0) {
            if (settings_set(&set, v) != 0) {
                fprintf(stderr, "euar: error: --set %s: %s\n", v, err_get());
                return 1;
            }
        } else {
            fprintf(stderr, "euar: error: unknown option '%s'; see euar bench --help\n", a);
            return 1;
        }
        i++;
    }
    set.eval_every = set.epochs;

    BackendInfo info;
    const Backend *be = backend_select(device, &info);
    if (!be) {
        fprintf(stderr, "euar: error: --device %s: %s\n", device, err_get());
        return 1;
    }
    if (device_info_only) {
        print_device_info(be, &info);
        return 0;
    }
    PreparedData prep;
    if (prepare_data(&prep, data_path, "", 0, EUAR_NONFINITE_REJECT) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        return 1;
    }
    backend_cpu_set_threads(set.threads);
    TrainResult r;
    if (train_run(model, &set, &prep.data, be, NULL, &r) != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        prepared_data_free(&prep);
        return 1;
    }
    double *secs = xmalloc(sizeof(double) * (size_t)(r.epochs_run + 1));
    /* The device name goes through %s unescaped: GPU and CPU model names hold no quotes. */
    printf("{\"impl\": \"euar-%s-%s\", \"model\": \"%s\", \"device\": \"%s\", "
           "\"device_name\": \"%s\", \"threads\": %d, \"experts\": %d, \"hidden\": %d, "
           "\"batch\": %d, \"train_samples\": %d, \"epoch_s\": [",
           be->name, set.moe_compute == EUAR_MOE_SPARSE ? "sparse" : "dense", model, be->name,
           info.name, set.threads, set.experts, set.hidden, set.batch, prep.data.train.n);
    for (int i = 0; i < r.epochs_run; i++) {
        secs[i] = r.curve[i].train_ms / 1e3;
        printf("%s%.5f", i ? ", " : "", secs[i]);
    }
    qsort(secs, (size_t)r.epochs_run, sizeof(double), compare_double);
    double median = r.epochs_run == 0 ? 0
                    : r.epochs_run % 2 ? secs[r.epochs_run / 2]
                                       : 0.5 * (secs[r.epochs_run / 2 - 1] + secs[r.epochs_run / 2]);
    printf("], \"median_epoch_s\": %.5f, \"peak_rss_mb\": %.1f, \"status\": \"%s\"}\n", median,
           (double)peak_rss_bytes() / 1048576.0, r.failed ? "failed" : "ok");
    free(secs);
    train_result_free(&r);
    prepared_data_free(&prep);
    return 0;
}
