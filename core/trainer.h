/* The training loop: Adam over shuffled mini-batches, evaluation on the valid split each
 * epoch, model selection, divergence detection and the per-epoch log line. */
#ifndef EUAR_TRAINER_H
#define EUAR_TRAINER_H

#include <stdio.h>

#include "model.h"

#define EUAR_MAX_METRICS 16
/* Divergence bound on the parameters: a run whose parameters have a root mean square above
 * this value (sum of squares above EUAR_PARAM_RMS_MAX^2 times the parameter count) stops as
 * diverged. EUAR on synth-mosi starts near an RMS of 0.05 and was still there after 3 epochs
 * at the default learning rate, while a learning rate of 10 passes 10 within one epoch. */
#define EUAR_PARAM_RMS_MAX 10.0

/* One split as the trainer reads it: per modality a row of in_dim values per sample, either
 * float (pooled features), uint8 pixel levels scaled by 1/255 when a batch is gathered, or
 * int32 token ids with a length. */
typedef struct {
    int n;
    const float *x[EUAR_MODEL_MAX_MODALITIES];   /* host [n, in_dim] or NULL */
    const uint8_t *u8[EUAR_MODEL_MAX_MODALITIES]; /* host [n, in_dim] or NULL */
    const int32_t *tok[EUAR_MODEL_MAX_MODALITIES]; /* host [n, T] token ids or NULL */
    const int32_t *len[EUAR_MODEL_MAX_MODALITIES]; /* host [n] valid tokens */
    const float *y;                              /* [n] regression labels */
    const int32_t *cls;                          /* [n] class indices */
} SplitData;

typedef struct {
    ModelShape shape; /* max_batch is set by the trainer */
    SplitData train, valid, test;
} TrainData;

/* Metrics of one split at one epoch, as name and value pairs (names from core/metrics.h). */
typedef struct {
    int count;
    const char *names[EUAR_MAX_METRICS];
    double values[EUAR_MAX_METRICS];
    double loss; /* task loss */
} MetricSet;

typedef struct {
    int epoch;
    double train_loss, train_task, train_kl, train_balance, train_u;
    double valid_loss, valid_metric;
    double ms;       /* whole epoch, evaluation included */
    double train_ms; /* forward, backward and Adam over the training batches only */
} EpochRecord;

typedef struct {
    int failed;
    int fail_epoch;
    char fail_kind[32];     /* "NaN loss", "Inf loss", "non-finite parameters", "exploded
                             * parameters" */
    char fail_reason[160];  /* the kind with its numbers, one sentence */
    int selected_epoch; /* 0 when no epoch finished */
    int interrupted;    /* 1 when TrainCheckpoint.stop_after_epoch ended the run early */
    MetricSet valid, test;
    EpochRecord *curve; /* [epochs_run] */
    int epochs_run;
    RoutingStats routing; /* over the test split at the selected epoch */
    int has_experts;
    int experts, top_k;
    double time_s;
    double samples_per_s;
} TrainResult;

/* Trains `model_name` on `data` with settings `s` on backend `be`, writing one line per epoch
 * to `log` (may be NULL). Returns 0 when the run finished or diverged (see out->failed), -1
 * with err_set() when the model cannot be built. */
int train_run(const char *model_name, const Settings *s, const TrainData *data,
              const Backend *be, FILE *log, TrainResult *out);

/* Called once after training, with the model's parameters set back to those of the selected
 * epoch, for evaluations beyond the test split (test-time noise). Not called when no epoch
 * was selected. */
typedef void (*TrainFinishFn)(void *ctx, Model *m);

/* train_run with a hook: keeps a host copy of the selected epoch's parameters (one more
 * parameter-sized allocation) and calls on_finish with them restored. */
int train_run_hooked(const char *model_name, const Settings *s, const TrainData *data,
                     const Backend *be, FILE *log, TrainResult *out, TrainFinishFn on_finish,
                     void *ctx);

typedef struct TrainCheckpoint TrainCheckpoint;

/* train_run_hooked that saves its state to a checkpoint file (core/checkpoint.h) after
 * epochs and, when the file exists at the start, resumes from it instead of epoch 1. With
 * checkpoint NULL it is train_run_hooked. Returns 0, or -1 with err_set() when the model
 * cannot be built or the checkpoint cannot be used (out->curve is then still freed by
 * train_result_free). */
int train_run_resumable(const char *model_name, const Settings *s, const TrainData *data,
                        const Backend *be, FILE *log, TrainResult *out, TrainFinishFn on_finish,
                        void *ctx, const TrainCheckpoint *checkpoint);

void train_result_free(TrainResult *r);

/* Name of the metric that `select=valid-metric` and the epoch log use: mib_acc2 or
 * mmsa_non0_acc2 for regression, acc for classification. */
const char *train_headline_metric(const Settings *s, OutputKind output);

/* Evaluates `m` on a split: task loss and metrics, and routing statistics when
 * m->stats.enabled. `pred` receives [n, out_dim] outputs and `joint` the [n, m->joint_dim]
 * fused representations before the output layer, each when not NULL. */
void train_evaluate(Model *m, const SplitData *split, MetricSet *out, float *pred,
                    float *joint);

#endif
