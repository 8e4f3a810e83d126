#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "common.h"
#include "metrics.h"

/* Splits copied to the device once (read in place when the backend shares host memory),
 * plus the gathered batch buffers. */
typedef struct {
    const Backend *be;
    const ModelShape *shape;
    int owned;
    float *x[EUAR_MODEL_MAX_MODALITIES];
    uint8_t *u8[EUAR_MODEL_MAX_MODALITIES];
    int32_t *tok[EUAR_MODEL_MAX_MODALITIES];
    int32_t *len[EUAR_MODEL_MAX_MODALITIES];
} DeviceSplit;

typedef struct {
    float *x[EUAR_MODEL_MAX_MODALITIES];   /* device [max_batch, in_dim] */
    int32_t *tok[EUAR_MODEL_MAX_MODALITIES]; /* device [max_batch, T] */
    int32_t *len[EUAR_MODEL_MAX_MODALITIES]; /* device [max_batch] */
    float *y;                              /* device [max_batch] */
    float *host_y;
    int32_t *cls;
    int32_t *sample;
} BatchBuffers;

static void device_split_upload(DeviceSplit *d, const Backend *be, const ModelShape *shape,
                                const SplitData *s) {
    memset(d, 0, sizeof(*d));
    d->be = be;
    d->shape = shape;
    if (be->shares_host_memory) {
        for (int i = 0; i < shape->num_modalities; i++) {
            d->x[i] = (float *)s->x[i];
            d->u8[i] = (uint8_t *)s->u8[i];
            d->tok[i] = (int32_t *)s->tok[i];
            d->len[i] = (int32_t *)s->len[i];
        }
        return;
    }
    d->owned = 1;
    for (int i = 0; i < shape->num_modalities; i++) {
        size_t count = (size_t)s->n * shape->in_dim[i];
        if (s->tok[i]) {
            d->tok[i] = be->alloc(sizeof(int32_t) * count);
            be->upload(d->tok[i], s->tok[i], sizeof(int32_t) * count);
            d->len[i] = be->alloc(sizeof(int32_t) * (size_t)s->n);
            be->upload(d->len[i], s->len[i], sizeof(int32_t) * (size_t)s->n);
        } else if (s->x[i]) {
            d->x[i] = be->alloc(sizeof(float) * count);
            be->upload(d->x[i], s->x[i], sizeof(float) * count);
        } else {
            d->u8[i] = be->alloc(count);
            be->upload(d->u8[i], s->u8[i], count);
        }
    }
}

static void device_split_release(DeviceSplit *d) {
    if (!d->owned)
        return;
    for (int i = 0; i < EUAR_MODEL_MAX_MODALITIES; i++) {
        if (d->x[i])
            d->be->release(d->x[i]);
        if (d->u8[i])
            d->be->release(d->u8[i]);
        if (d->tok[i])
            d->be->release(d->tok[i]);
        if (d->len[i])
            d->be->release(d->len[i]);
    }
}

static void batch_buffers_init(BatchBuffers *bb, const Backend *be, const ModelShape *shape) {
    int b = shape->max_batch;
    memset(bb, 0, sizeof(*bb));
    for (int i = 0; i < shape->num_modalities; i++) {
        if (shape->input[i] == EUAR_INPUT_TOKENS) {
            bb->tok[i] = be->alloc(sizeof(int32_t) * (size_t)b * shape->in_dim[i]);
            bb->len[i] = be->alloc(sizeof(int32_t) * (size_t)b);
        } else {
            bb->x[i] = be->alloc(sizeof(float) * (size_t)b * shape->in_dim[i]);
        }
    }
    bb->y = be->alloc(sizeof(float) * (size_t)b);
    bb->host_y = xcalloc((size_t)b, sizeof(float));
    bb->cls = xcalloc((size_t)b, sizeof(int32_t));
    bb->sample = xcalloc((size_t)b, sizeof(int32_t));
}

static void batch_buffers_release(BatchBuffers *bb, const Backend *be, const ModelShape *shape) {
    for (int i = 0; i < shape->num_modalities; i++) {
        if (bb->x[i])
            be->release(bb->x[i]);
        if (bb->tok[i]) {
            be->release(bb->tok[i]);
            be->release(bb->len[i]);
        }
    }
    be->release(bb->y);
    free(bb->host_y);
    free(bb->cls);
    free(bb->sample);
}

/* Gathers samples idx[0..b) of a split into the batch buffers. */
static void gather_batch(Batch *batch, BatchBuffers *bb, const DeviceSplit *d,
                         const SplitData *s, const int32_t *idx, int b, uint32_t step) {
    const Backend *be = d->be;
    const ModelShape *shape = d->shape;
    memset(batch, 0, sizeof(*batch));
    batch->b = b;
    for (int i = 0; i < shape->num_modalities; i++) {
        int w = shape->in_dim[i];
        if (d->tok[i]) {
            be->gather_rows_i32(bb->tok[i], w, d->tok[i], w, idx, b, w);
            be->gather_rows_i32(bb->len[i], 1, d->len[i], 1, idx, b, 1);
            batch->tok[i] = bb->tok[i];
            batch->len[i] = bb->len[i];
            continue;
        }
        if (d->x[i])
            be->gather_rows(bb->x[i], w, d->x[i], w, idx, b, w);
        else
            be->gather_rows_u8(bb->x[i], w, d->u8[i], w, idx, b, w, 1.0f / 255.0f);
        batch->x[i] = bb->x[i];
    }
    for (int r = 0; r < b; r++) {
        bb->sample[r] = idx[r];
        if (s->y)
            bb->host_y[r] = s->y[idx[r]];
        if (s->cls)
            bb->cls[r] = s->cls[idx[r]];
    }
    if (s->y) {
        be->upload(bb->y, bb->host_y, sizeof(float) * (size_t)b);
        batch->y = bb->y;
    }
    batch->cls = bb->cls;
    batch->sample = bb->sample;
    batch->step = step;
}

const char *train_headline_metric(const Settings *s, OutputKind output) {
    if (output == EUAR_OUT_CLASSIFICATION)
        return "acc";
    return s->protocol == EUAR_PROTOCOL_MMSA ? "mmsa_non0_acc2" : "mib_acc2";
}

static double metric_value(const MetricSet *ms, const char *name) {
    for (int i = 0; i < ms->count; i++)
        if (strcmp(ms->names[i], name) == 0)
            return ms->values[i];
    return NAN;
}

static void evaluate_split(Model *m, const SplitData *split, const DeviceSplit *dev,
                           BatchBuffers *bb, float *pred, int32_t *pred_cls, int32_t *idx,
                           MetricSet *out, float *joint) {
    const Backend *be = m->be;
    int c = m->out_dim, max_b = m->shape.max_batch;
    double loss = 0.0;
    for (int start = 0; start < split->n; start += max_b) {
        int b = EUAR_MIN(max_b, split->n - start);
        for (int r = 0; r < b; r++)
            idx[r] = start + r;
        Batch batch;
        gather_batch(&batch, bb, dev, split, idx, b, 0);
        model_forward(m, &batch, 0);
        loss += m->loss.task * b;
        be->download(pred + (size_t)start * c, m->out, sizeof(float) * (size_t)b * c);
        if (joint)
            be->download(joint + (size_t)start * m->joint_dim, m->joint,
                         sizeof(float) * (size_t)b * m->joint_dim);
    }
    memset(out, 0, sizeof(*out));
    out->loss = loss / split->n;
    if (m->shape.output == EUAR_OUT_REGRESSION) {
        RegressionMetrics rm;
        metrics_regression(&rm, pred, split->y, split->n);
        out->count = metrics_regression_list(&rm, out->names, out->values, EUAR_MAX_METRICS);
    } else {
        for (int r = 0; r < split->n; r++) {
            const float *row = pred + (size_t)r * c;
            int best = 0;
            for (int j = 1; j < c; j++)
                if (row[j] > row[best])
                    best = j;
            pred_cls[r] = best;
        }
        ClassMetrics cm;
        metrics_classification(&cm, pred_cls, split->cls, split->n, c);
        out->count = metrics_classification_list(&cm, out->names, out->values, EUAR_MAX_METRICS);
    }
}

void train_evaluate(Model *m, const SplitData *split, MetricSet *out, float *pred,
                    float *joint) {
    DeviceSplit dev;
    BatchBuffers bb;
    device_split_upload(&dev, m->be, &m->shape, split);
    batch_buffers_init(&bb, m->be, &m->shape);
    float *p = pred ? pred : xmalloc(sizeof(float) * (size_t)split->n * m->out_dim);
    int32_t *cls = xmalloc(sizeof(int32_t) * (size_t)split->n);
    int32_t *idx = xmalloc(sizeof(int32_t) * (size_t)m->shape.max_batch);
    evaluate_split(m, split, &dev, &bb, p, cls, idx, out, joint);
    if (!pred)
        free(p);
    free(cls);
    free(idx);
    batch_buffers_release(&bb, m->be, &m->shape);
    device_split_release(&dev);
}

void train_result_free(TrainResult *r) {
    free(r->curve);
    memset(r, 0, sizeof(*r));
}

static int is_better(const Settings *s, double candidate, double best) {
    if (isnan(best))
        return 1;
    return s->select == EUAR_SELECT_VALID_LOSS ? candidate < best : candidate > best;
}

int train_run(const char *model_name, const Settings *s, const TrainData *data,
              const Backend *be, FILE *log, TrainResult *out) {
    return train_run_hooked(model_name, s, data, be, log, out, NULL, NULL);
}

int train_run_hooked(const char *model_name, const Settings *s, const TrainData *data,
                     const Backend *be, FILE *log, TrainResult *out, TrainFinishFn on_finish,
                     void *ctx) {
    return train_run_resumable(model_name, s, data, be, log, out, on_finish, ctx, NULL);
}

/* Host buffers of the checkpoint written after an epoch, allocated once. */
typedef struct {
    const TrainCheckpoint *opt;
    int enabled;
    double last_write;
    float *value, *adam_m, *adam_v; /* host [params.total] */
} CheckpointState;

/* Evaluation state of the trainer, for the selection done again after a resume. */
typedef struct {
    const TrainData *data;
    const DeviceSplit *valid, *test;
    BatchBuffers *bb;
    float *pred;
    int32_t *pred_cls, *idx;
} EvalState;

/* Sets out->valid, out->test and out->routing as the epoch loop set them at the selected
 * epoch: evaluation is deterministic, so the parameters of that epoch give the same values.
 * Leaves the model's parameters at `current`. */
static void select_again(Model *m, const EvalState *ev, const float *best_params,
                         const float *current, TrainResult *out) {
    const Backend *be = m->be;
    size_t bytes = sizeof(float) * m->params.total;
    be->upload(m->params.value, best_params, bytes);
    evaluate_split(m, &ev->data->valid, ev->valid, ev->bb, ev->pred, ev->pred_cls, ev->idx,
                   &out->valid, NULL);
    memset(&m->stats, 0, sizeof(m->stats));
    m->stats.enabled = 1;
    evaluate_split(m, &ev->data->test, ev->test, ev->bb, ev->pred, ev->pred_cls, ev->idx,
                   &out->test, NULL);
    m->stats.enabled = 0;
    m->stats.samples = ev->data->test.n;
    out->routing = m->stats;
    be->upload(m->params.value, current, bytes);
}

/* Loads the checkpoint of ck->opt when there is one and puts the run in its state. Returns
 * the first epoch to train (1 without a checkpoint), or -1 with err_set(). */
static int resume_from_checkpoint(Model *m, const Settings *s, const EvalState *ev,
                                  float *best_params, CheckpointState *ck, int *step,
                                  double *best, double *time_before, FILE *log,
                                  TrainResult *out) {
    Checkpoint saved;
    int loaded = checkpoint_read(ck->opt->path, ck->opt->fingerprint, m->params.total, &saved);
    if (loaded <= 0)
        return loaded < 0 ? -1 : 1;
    if (saved.epoch > s->epochs) {
        checkpoint_free(&saved);
        return err_set("checkpoint %s is at epoch %d, beyond the %d epochs of this run; delete "
                       "it to start the run from epoch 1", ck->opt->path, saved.epoch,
                       s->epochs);
    }
    const Backend *be = m->be;
    size_t bytes = sizeof(float) * m->params.total;
    be->upload(m->params.value, saved.value, bytes);
    be->upload(m->params.adam_m, saved.adam_m, bytes);
    be->upload(m->params.adam_v, saved.adam_v, bytes);
    memcpy(best_params, saved.best_params, bytes);
    memcpy(out->curve, saved.curve, sizeof(EpochRecord) * (size_t)saved.epochs_run);
    out->epochs_run = saved.epochs_run;
    out->selected_epoch = saved.selected_epoch;
    *step = saved.step;
    *best = saved.best;
    *time_before = saved.time_s;
    if (saved.selected_epoch > 0)
        select_again(m, ev, best_params, saved.value, out);
    if (log)
        fprintf(log, "resumed from checkpoint %s after epoch %d of %d (step %d)\n",
                ck->opt->path, saved.epoch, s->epochs, saved.step);
    int first = saved.epoch + 1;
    checkpoint_free(&saved);
    return first;
}

/* Writes the checkpoint after `epoch` when its interval has passed. A failed write is logged
 * and turns checkpoints off for the rest of the run: training goes on. */
static void checkpoint_after_epoch(Model *m, CheckpointState *ck, int epoch, int step,
                                   double best, double time_s, const float *best_params,
                                   const TrainResult *out) {
    const TrainCheckpoint *opt = ck->opt;
    if (!ck->enabled)
        return;
    if (opt->every_s > 0 && time_now() - ck->last_write < opt->every_s &&
        epoch != opt->stop_after_epoch)
        return;
    const Backend *be = m->be;
    size_t bytes = sizeof(float) * m->params.total;
    be->download(ck->value, m->params.value, bytes);
    be->download(ck->adam_m, m->params.adam_m, bytes);
    be->download(ck->adam_v, m->params.adam_v, bytes);
    Checkpoint saved = {
        .fingerprint = opt->fingerprint,
        .epoch = epoch,
        .step = step,
        .selected_epoch = out->selected_epoch,
        .best = best,
        .time_s = time_s,
        .num_params = m->params.total,
        .value = ck->value,
        .adam_m = ck->adam_m,
        .adam_v = ck->adam_v,
        .best_params = (float *)best_params,
        .epochs_run = out->epochs_run,
        .curve = out->curve,
    };
    if (checkpoint_write(opt->path, &saved) != 0) {
        LOG_WARN("%s; training goes on without checkpoints", err_get());
        ck->enabled = 0;
    }
    ck->last_write = time_now();
}

int train_run_resumable(const char *model_name, const Settings *s, const TrainData *data,
                        const Backend *be, FILE *log, TrainResult *out, TrainFinishFn on_finish,
                        void *ctx, const TrainCheckpoint *checkpoint) {
    memset(out, 0, sizeof(*out));
    ModelShape shape = data->shape;
    /* Evaluation runs in batches of at least 64: predictions do not depend on batch-mates,
     * and larger batches make evaluation cheaper. */
    shape.max_batch = EUAR_MAX(s->batch, 64);
    shape.num_train = data->train.n;
    Model *m = model_create(model_name, s, &shape, be);
    if (!m)
        return -1;
    out->has_experts = m->kind->has_experts;
    out->experts = s->experts;
    out->top_k = s->top_k;

    const SplitData *train = &data->train;
    int n_train = train->n;
    int32_t *subset = NULL;
    if (s->max_train > 0 && s->max_train < n_train) {
        /* A fixed subset per seed, so every model of a seed sees the same samples. */
        subset = xmalloc(sizeof(int32_t) * (size_t)n_train);
        rng_permutation(rng_stream(s->seed, EUAR_RNG_SPLIT), 0, 0, subset, n_train);
        n_train = s->max_train;
    }

    DeviceSplit dev_train, dev_valid, dev_test;
    device_split_upload(&dev_train, be, &m->shape, train);
    device_split_upload(&dev_valid, be, &m->shape, &data->valid);
    device_split_upload(&dev_test, be, &m->shape, &data->test);
    BatchBuffers bb;
    batch_buffers_init(&bb, be, &m->shape);
    int max_eval = EUAR_MAX(data->valid.n, data->test.n);
    float *pred = xmalloc(sizeof(float) * (size_t)max_eval * m->out_dim);
    int32_t *pred_cls = xmalloc(sizeof(int32_t) * (size_t)max_eval);
    int32_t *eval_idx = xmalloc(sizeof(int32_t) * (size_t)m->shape.max_batch);
    int32_t *perm = xmalloc(sizeof(int32_t) * (size_t)n_train);
    int32_t *batch_idx = xmalloc(sizeof(int32_t) * (size_t)s->batch);
    out->curve = xcalloc((size_t)s->epochs, sizeof(EpochRecord));
    CheckpointState ck = {.opt = checkpoint};
    ck.enabled = checkpoint && checkpoint->path;
    /* Zeroed, since a checkpoint written before any selection stores it as well. */
    float *best_params = on_finish || ck.enabled ? xcalloc(m->params.total, sizeof(float))
                                                 : NULL;
    if (ck.enabled) {
        ck.value = xmalloc(sizeof(float) * m->params.total);
        ck.adam_m = xmalloc(sizeof(float) * m->params.total);
        ck.adam_v = xmalloc(sizeof(float) * m->params.total);
    }

    const char *headline = train_headline_metric(s, m->shape.output);
    RngStream shuffle = rng_stream(s->seed, EUAR_RNG_SHUFFLE);
    double best = NAN;
    int step = 0;
    double time_before = 0.0;
    int first_epoch = 1;
    if (ck.enabled) {
        EvalState ev = {data, &dev_valid, &dev_test, &bb, pred, pred_cls, eval_idx};
        first_epoch = resume_from_checkpoint(m, s, &ev, best_params, &ck, &step, &best,
                                             &time_before, log, out);
    }
    double t_start = time_now();
    ck.last_write = t_start;

    for (int epoch = first_epoch; epoch > 0 && epoch <= s->epochs; epoch++) {
        double t0 = time_now();
        rng_permutation(shuffle, (uint32_t)epoch, 0, perm, n_train);
        if (subset)
            for (int i = 0; i < n_train; i++)
                perm[i] = subset[perm[i]];
        double sum_total = 0, sum_task = 0, sum_kl = 0, sum_bal = 0, sum_u = 0;
        int diverged = 0;
        for (int start = 0; start < n_train; start += s->batch) {
            int b = EUAR_MIN(s->batch, n_train - start);
            memcpy(batch_idx, perm + start, sizeof(int32_t) * (size_t)b);
            Batch batch;
            gather_batch(&batch, &bb, &dev_train, train, batch_idx, b, (uint32_t)step);
            batch.epoch = epoch;
            batch.epochs = s->epochs;
            model_forward(m, &batch, 1);
            if (!isfinite(m->loss.total)) {
                const char *value = isnan(m->loss.total) ? "NaN" : "Inf";
                snprintf(out->fail_kind, sizeof(out->fail_kind), "%s loss", value);
                snprintf(out->fail_reason, sizeof(out->fail_reason),
                         "training loss is %s at step %d", value, step + 1);
                diverged = 1;
                break;
            }
            model_backward(m, &batch);
            step++;
            model_adam_step(m, step);
            sum_total += m->loss.total * b;
            sum_task += m->loss.task * b;
            sum_kl += m->loss.kl * b;
            sum_bal += m->loss.balance * b;
            sum_u += m->loss.u * b;
        }
        if (!diverged) {
            /* Parameters this large mean the run has blown up even if the loss is finite. */
            double norm2 = be->sum_squares(m->params.value, m->params.total);
            double bound = EUAR_PARAM_RMS_MAX * EUAR_PARAM_RMS_MAX * (double)m->params.total;
            if (!isfinite(norm2)) {
                snprintf(out->fail_kind, sizeof(out->fail_kind), "non-finite parameters");
                snprintf(out->fail_reason, sizeof(out->fail_reason),
                         "parameters are not finite (sum of squares %g)", norm2);
                diverged = 1;
            } else if (norm2 > bound) {
                snprintf(out->fail_kind, sizeof(out->fail_kind), "exploded parameters");
                snprintf(out->fail_reason, sizeof(out->fail_reason),
                         "parameters exploded: sum of squares %.3g over %zu parameters, above "
                         "the bound %.3g (RMS %g)", norm2, (size_t)m->params.total, bound,
                         EUAR_PARAM_RMS_MAX);
                diverged = 1;
            }
        }
        if (diverged) {
            out->failed = 1;
            out->fail_epoch = epoch;
            if (log)
                fprintf(log, "epoch %d/%d diverged: %s\n", epoch, s->epochs, out->fail_reason);
            break;
        }
        double train_ms = 1e3 * (time_now() - t0);

        EpochRecord *rec = &out->curve[out->epochs_run++];
        rec->epoch = epoch;
        rec->train_ms = train_ms;
        rec->train_loss = sum_total / n_train;
        rec->train_task = sum_task / n_train;
        rec->train_kl = sum_kl / n_train;
        rec->train_balance = sum_bal / n_train;
        rec->train_u = sum_u / n_train;
        rec->valid_loss = NAN;
        rec->valid_metric = NAN;

        int evaluate = epoch % s->eval_every == 0 || epoch == s->epochs;
        if (evaluate) {
            MetricSet valid;
            evaluate_split(m, &data->valid, &dev_valid, &bb, pred, pred_cls, eval_idx, &valid,
                           NULL);
            rec->valid_loss = valid.loss;
            rec->valid_metric = metric_value(&valid, headline);
            MetricSet test;
            double score;
            if (s->select == EUAR_SELECT_TEST_ACC2) {
                evaluate_split(m, &data->test, &dev_test, &bb, pred, pred_cls, eval_idx, &test,
                               NULL);
                score = metric_value(&test, headline);
            } else {
                score = s->select == EUAR_SELECT_VALID_LOSS ? valid.loss : rec->valid_metric;
            }
            if (isfinite(score) && is_better(s, score, best)) {
                best = score;
                memset(&m->stats, 0, sizeof(m->stats));
                m->stats.enabled = 1;
                evaluate_split(m, &data->test, &dev_test, &bb, pred, pred_cls, eval_idx, &test,
                               NULL);
                m->stats.enabled = 0;
                m->stats.samples = data->test.n;
                out->selected_epoch = epoch;
                out->valid = valid;
                out->test = test;
                out->routing = m->stats;
                if (best_params)
                    be->download(best_params, m->params.value, sizeof(float) * m->params.total);
            }
        }
        rec->ms = 1e3 * (time_now() - t0);
        if (log) {
            fprintf(log,
                    "epoch %3d/%d  loss %.4f  task %.4f  kl %.3f  balance %.4f  u %.4f  "
                    "valid loss %.4f  %s %.4f  %.0f ms  %.0f samples/s%s\n",
                    epoch, s->epochs, rec->train_loss, rec->train_task, rec->train_kl,
                    rec->train_balance, rec->train_u, rec->valid_loss, headline,
                    rec->valid_metric, rec->ms, n_train / (train_ms / 1e3),
                    out->selected_epoch == epoch ? "  *" : "");
            fflush(log);
        }
        /* No checkpoint after the last epoch: the result is written next. */
        if (ck.enabled && (epoch < s->epochs || epoch == checkpoint->stop_after_epoch))
            checkpoint_after_epoch(m, &ck, epoch, step, best,
                                   time_before + time_now() - t_start, best_params, out);
        if (checkpoint && epoch == checkpoint->stop_after_epoch) {
            out->interrupted = 1;
            break;
        }
    }
    int rc = 0;
    if (first_epoch < 0) {
        rc = -1;
        out->interrupted = 1;
    }
    out->time_s = time_before + time_now() - t_start;
    out->samples_per_s = out->epochs_run ? (double)n_train * out->epochs_run / out->time_s : 0;
    if (on_finish && !out->interrupted && out->selected_epoch > 0) {
        be->upload(m->params.value, best_params, sizeof(float) * m->params.total);
        on_finish(ctx, m);
    }
    free(best_params);
    free(ck.value);
    free(ck.adam_m);
    free(ck.adam_v);

    free(subset);
    free(pred);
    free(pred_cls);
    free(eval_idx);
    free(perm);
    free(batch_idx);
    batch_buffers_release(&bb, be, &m->shape);
    device_split_release(&dev_train);
    device_split_release(&dev_valid);
    device_split_release(&dev_test);
    model_free(m);
    return rc;
}
