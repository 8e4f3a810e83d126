/* qmf: Quality-aware Multimodal Fusion (Zhang et al., ICML 2023). Each modality has an
 * encoder, a hidden layer and a Linear head giving logits l_m [B, C]. The confidence of a
 * modality is w_m = logsumexp(l_m) / T with T = 10, its negative free energy scaled; the fused
 * logits are sum_m w_m l_m with w_m detached, so no gradient flows through the weights.
 *
 * Loss, mean over the batch: CE(fused) + sum_m CE(l_m) (m->loss.task, also in evaluation)
 * plus, in training only, 1.0 times the ranking regulariser sum_m R_m (m->loss.total). R_m
 * pairs each row r with row r + 1 of the batch (cyclically, as the authors' code does with
 * torch.roll) and adds max(0, -t (c_r - c_j) + |q_r - q_j|) over the pairs, mean over rows,
 * where c = logsumexp(l_m) / T is the confidence with its gradient, q is the sample's
 * quality and t = sign(q_r - q_j): the sample the modality handled better must get the
 * higher confidence, by a margin equal to the quality gap.
 *
 * Quality comes from a per-modality history over the training samples, as in the authors'
 * code: the cross-entropy of the modality on the sample accumulated over past visits, here
 * its mean over completed epochs, min-max normalised over the samples seen so far, and
 * q = 1 - normalised loss. Differences from the authors' code, each to keep the forward pass
 * a pure function of the parameters within an epoch (so finite-difference checks and
 * repeated evaluations agree):
 * - the history contains completed epochs only, so the ranking term is zero in the first
 *   epoch, where the authors' code adds the current batch's losses before ranking;
 * - a forward pass in training mode records each row's loss, overwriting an earlier record
 *   of the same epoch, and the records are added to the history when the epoch changes.
 * NOTE: the authors' code (rank_loss) adds the margin to the second confidence before a
 * margin-0 MarginRankingLoss with negated targets, which turns the margin into a tolerance:
 * max(0, t (c_j - c_r) - margin) in the notation above. Here the margin is a required gap,
 * so a larger quality gap demands a larger confidence gap. */
#include "core/models/qmf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/branches.h"

typedef struct {
    Branches br;
    float *logits, *dlogits; /* device [M, max_batch, C] */
    float *h_logits, *h_dlogits; /* host [M, max_batch, C] */
    float *h_out, *h_prob;       /* host [max_batch, C] */
    double *lse;                 /* [M, max_batch] logsumexp of each modality's logits */
    double *weight;              /* [M, max_batch] detached fusion weights */
    double *dconf;               /* [M, max_batch] gradient of R at each confidence */
    double *fused;               /* [C] one row of fused logits */
    int max_batch;
    int hold;
    /* History, [M, num_train] each: summed loss and visits over completed epochs, the loss
     * recorded in the current epoch and whether it was recorded. */
    int num_train;
    double *hist_sum, *pending;
    int32_t *hist_count;
    uint8_t *visited;
    double hist_min[EUAR_MODEL_MAX_MODALITIES], hist_max[EUAR_MODEL_MAX_MODALITIES];
    int pending_epoch;
} QmfModel;

void qmf_hold_weights(Model *m, int hold) {
    ((QmfModel *)m->state)->hold = hold;
}

int qmf_history(const Model *m, int modality, int sample, double *mean_loss) {
    const QmfModel *st = m->state;
    *mean_loss = 0.0;
    if (sample < 0 || sample >= st->num_train || modality < 0 ||
        modality >= m->shape.num_modalities)
        return 0;
    size_t at = (size_t)modality * st->num_train + sample;
    if (st->hist_count[at] > 0)
        *mean_loss = st->hist_sum[at] / st->hist_count[at];
    return st->hist_count[at];
}

static double logsumexp_row(const float *l, int c) {
    float mx = l[0];
    for (int k = 1; k < c; k++)
        mx = l[k] > mx ? l[k] : mx;
    double total = 0.0;
    for (int k = 0; k < c; k++)
        total += exp((double)l[k] - mx);
    return mx + log(total);
}

/* Adds the losses recorded in the last epoch to the history and refreshes the range of
 * the mean losses that normalises the quality. */
static void history_fold(QmfModel *st, int nm) {
    for (int i = 0; i < nm; i++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int s = 0; s < st->num_train; s++) {
            size_t at = (size_t)i * st->num_train + s;
            if (st->visited[at]) {
                st->hist_sum[at] += st->pending[at];
                st->hist_count[at]++;
                st->visited[at] = 0;
            }
            if (st->hist_count[at] > 0) {
                double mean = st->hist_sum[at] / st->hist_count[at];
                lo = fmin(lo, mean);
                hi = fmax(hi, mean);
            }
        }
        st->hist_min[i] = lo;
        st->hist_max[i] = hi;
    }
}

/* Quality of training sample s for modality i in [0, 1], 1 for the lowest mean loss; -1
 * when the history has no visit of the sample. */
static double history_quality(const QmfModel *st, int i, int s) {
    if (s < 0 || s >= st->num_train)
        return -1.0;
    size_t at = (size_t)i * st->num_train + s;
    if (st->hist_count[at] == 0)
        return -1.0;
    double range = st->hist_max[i] - st->hist_min[i];
    if (!(range > 0.0))
        return 1.0;
    return 1.0 - (st->hist_sum[at] / st->hist_count[at] - st->hist_min[i]) / range;
}

/* Ranking regulariser of modality i over the batch: returns R_i and writes dR_i/dc for each
 * row's confidence c = lse / T into dconf [B]. */
static double rank_modality(QmfModel *st, int i, const Batch *batch, double *dconf) {
    int b = batch->b;
    const double *lse = st->lse + (size_t)i * st->max_batch;
    double total = 0.0;
    for (int r = 0; r < b; r++)
        dconf[r] = 0.0;
    for (int r = 0; r < b; r++) {
        int j = (r + 1) % b;
        if (j == r)
            continue;
        double qr = history_quality(st, i, batch->sample[r]);
        double qj = history_quality(st, i, batch->sample[j]);
        if (qr < 0.0 || qj < 0.0 || qr == qj)
            continue;
        double t = qr > qj ? 1.0 : -1.0;
        double cr = lse[r] / EUAR_QMF_TEMPERATURE, cj = lse[j] / EUAR_QMF_TEMPERATURE;
        double hinge = -t * (cr - cj) + fabs(qr - qj);
        if (hinge <= 0.0)
            continue;
        total += hinge;
        dconf[r] -= t / b;
        dconf[j] += t / b;
    }
    return total / b;
}

static int qmf_build(Model *m) {
    /* model_create has checked the task and the class count (classification_only). */
    QmfModel *st = xcalloc(1, sizeof(QmfModel));
    m->state = st;
    int nm = m->shape.num_modalities, c = m->out_dim;
    size_t b = (size_t)m->shape.max_batch, plane = (size_t)nm * b * c;
    branches_declare(&st->br, m, c);
    act_declare(&m->acts, plane, &st->logits);
    act_declare(&m->acts, plane, &st->dlogits);

    st->h_logits = xcalloc(plane, sizeof(float));
    st->h_dlogits = xcalloc(plane, sizeof(float));
    st->h_out = xcalloc(b * c, sizeof(float));
    st->h_prob = xcalloc(b * c, sizeof(float));
    st->max_batch = (int)b;
    st->lse = xcalloc((size_t)nm * b, sizeof(double));
    st->weight = xcalloc((size_t)nm * b, sizeof(double));
    st->dconf = xcalloc(b, sizeof(double));
    st->fused = xcalloc((size_t)c, sizeof(double));
    /* Without training samples (a model built for evaluation only) there is no history. */
    st->num_train = EUAR_MAX(m->shape.num_train, 0);
    size_t hist = (size_t)nm * st->num_train + 1;
    st->hist_sum = xcalloc(hist, sizeof(double));
    st->pending = xcalloc(hist, sizeof(double));
    st->hist_count = xcalloc(hist, sizeof(int32_t));
    st->visited = xcalloc(hist, sizeof(uint8_t));
    return 0;
}

static void qmf_forward(Model *m, const Batch *batch, int training) {
    QmfModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, c = m->out_dim, b = batch->b;
    size_t mb = (size_t)m->shape.max_batch, plane = mb * c;
    branches_forward(m, &st->br, batch, st->logits, plane);
    for (int i = 0; i < nm; i++)
        be->download(st->h_logits + i * plane, st->logits + i * plane,
                     sizeof(float) * (size_t)b * c);
    if (training && batch->epoch != st->pending_epoch) {
        history_fold(st, nm);
        st->pending_epoch = batch->epoch;
    }

    /* Fusion and the cross-entropies, with their gradients (scaled by 1/B for the mean)
     * written into h_dlogits. */
    double task = 0.0;
    for (int r = 0; r < b; r++) {
        int y = batch->cls[r];
        for (int i = 0; i < nm; i++) {
            double lse = logsumexp_row(st->h_logits + i * plane + (size_t)r * c, c);
            st->lse[(size_t)i * mb + r] = lse;
            if (!st->hold)
                st->weight[(size_t)i * mb + r] = lse / EUAR_QMF_TEMPERATURE;
        }
        for (int k = 0; k < c; k++) {
            double f = 0.0;
            for (int i = 0; i < nm; i++)
                f += st->weight[(size_t)i * mb + r] * st->h_logits[i * plane + (size_t)r * c + k];
            st->fused[k] = f;
            st->h_out[(size_t)r * c + k] = (float)f;
        }
        double mx = st->fused[0], total = 0.0;
        for (int k = 1; k < c; k++)
            mx = fmax(mx, st->fused[k]);
        for (int k = 0; k < c; k++)
            total += exp(st->fused[k] - mx);
        task += mx + log(total) - st->fused[y];
        for (int k = 0; k < c; k++)
            st->h_prob[(size_t)r * c + k] = (float)(exp(st->fused[k] - mx) / total);
        for (int i = 0; i < nm; i++) {
            const float *l = st->h_logits + i * plane + (size_t)r * c;
            float *dl = st->h_dlogits + i * plane + (size_t)r * c;
            double lse = st->lse[(size_t)i * mb + r], w = st->weight[(size_t)i * mb + r];
            task += lse - l[y];
            for (int k = 0; k < c; k++) {
                double onehot = k == y ? 1.0 : 0.0;
                double dfused = exp(st->fused[k] - mx) / total - onehot;
                double dself = exp(l[k] - lse) - onehot;
                dl[k] = (float)((w * dfused + dself) / b);
            }
        }
    }
    be->upload(m->out, st->h_out, sizeof(float) * (size_t)b * c);
    be->upload(m->prob, st->h_prob, sizeof(float) * (size_t)b * c);
    m->loss.task = task / b;
    m->loss.total = m->loss.task;
    if (!training)
        return;

    /* Ranking regulariser: dc/dl = softmax(l) / T. Then each row's loss is recorded. */
    double rank = 0.0;
    for (int i = 0; i < nm; i++) {
        rank += rank_modality(st, i, batch, st->dconf);
        for (int r = 0; r < b; r++) {
            const float *l = st->h_logits + i * plane + (size_t)r * c;
            float *dl = st->h_dlogits + i * plane + (size_t)r * c;
            double lse = st->lse[(size_t)i * mb + r];
            double g = EUAR_QMF_RANK_WEIGHT * st->dconf[r] / EUAR_QMF_TEMPERATURE;
            if (g != 0.0)
                for (int k = 0; k < c; k++)
                    dl[k] += (float)(g * exp(l[k] - lse));
            int s = batch->sample[r];
            if (s >= 0 && s < st->num_train) {
                size_t at = (size_t)i * st->num_train + s;
                st->pending[at] = lse - l[batch->cls[r]];
                st->visited[at] = 1;
            }
        }
    }
    m->loss.total = m->loss.task + EUAR_QMF_RANK_WEIGHT * rank;
}

static void qmf_backward(Model *m, const Batch *batch) {
    QmfModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, c = m->out_dim, b = batch->b;
    size_t plane = (size_t)m->shape.max_batch * c;
    for (int i = 0; i < nm; i++)
        be->upload(st->dlogits + i * plane, st->h_dlogits + i * plane,
                   sizeof(float) * (size_t)b * c);
    branches_backward(m, &st->br, batch, st->dlogits, plane);
}

static void qmf_destroy(Model *m) {
    QmfModel *st = m->state;
    if (!st)
        return;
    free(st->h_logits);
    free(st->h_dlogits);
    free(st->h_out);
    free(st->h_prob);
    free(st->lse);
    free(st->weight);
    free(st->dconf);
    free(st->fused);
    free(st->hist_sum);
    free(st->pending);
    free(st->hist_count);
    free(st->visited);
}

const ModelKind model_qmf = {"qmf",
                             "quality-aware fusion: logits weighted by energy-based "
                             "confidence, with a confidence ranking regulariser",
                             0, qmf_build, qmf_forward, qmf_backward, qmf_destroy, 1};
