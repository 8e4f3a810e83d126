/* tmc: Trusted Multi-view Classification (Han et al., ICLR 2021). Each modality has an
 * encoder, a hidden layer and a Linear head whose softplus is the evidence e of a Dirichlet
 * with alpha = e + 1. With S = sum_k alpha_k the modality states the opinion b_k = e_k / S,
 * u = C / S; the opinions are combined in modality order by the reduced Dempster rule
 * ((m1 + m2) + m3), and the result maps back to a Dirichlet by S = C / u, alpha = b S + 1.
 *
 * Loss, summed over the M modality Dirichlets and the combined one, mean over the batch:
 * sum_k y_k (psi(S) - psi(alpha_k)) + a KL(Dir(alpha~) || Dir(1)), with alpha~ = y + (1 - y)
 * alpha (the target's evidence removed) and a = min(1, epoch / 50) in training. Evaluation
 * uses a = 1, the weight that training reaches, so the validation loss is the loss the model
 * is trained towards. The output is the combined alpha, whose argmax is the prediction, and
 * m->prob its expected probabilities alpha / S.
 *
 * The opinion algebra and the loss run in double precision on host copies of the [B, C]
 * logits. Only the Dense layers and heads run on the backend. */
#include "core/models/tmc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/branches.h"

typedef struct {
    Branches br;
    float *logits, *dlogits; /* device [M, max_batch, C] */
    /* Host copies: logits of the last forward pass, their gradients, the output. */
    float *h_logits, *h_dlogits; /* [M, max_batch, C] */
    float *h_out, *h_prob;       /* [max_batch, C] */
    double anneal;               /* KL weight of the last forward pass */
    /* One row's working values, refilled by row_forward. */
    double *op_b, *op_u, *op_e;  /* modality opinions: b [M, C], u [M], evidence [M, C] */
    double *st_b, *st_u;         /* after combining modalities 0..s: b [M, C], u [M] */
    double *alpha, *dalpha;      /* [C] */
    double *g_b, *g_u;           /* gradients at the modality opinions: [M, C], [M] */
    double *g_sb, *g_prev;       /* gradients at a combined opinion: [C + 1] each, u last */
} TmcModel;

/* Computes a modality's opinion from its logits [C]: e = softplus(l), S = sum e + C,
 * b = e / S, u = C / S. */
static void opinion_from_logits(double *b, double *u, double *e, const float *logits, int c) {
    double s = c;
    for (int k = 0; k < c; k++) {
        e[k] = softplus_d(logits[k]);
        s += e[k];
    }
    for (int k = 0; k < c; k++)
        b[k] = e[k] / s;
    *u = c / s;
}

void tmc_combine(double *b, double *u, const double *b1, double u1, const double *b2,
                 double u2, int c) {
    double sum1 = 0.0, sum2 = 0.0, same = 0.0;
    for (int k = 0; k < c; k++) {
        sum1 += b1[k];
        sum2 += b2[k];
        same += b1[k] * b2[k];
    }
    /* The conflict sums b1_i b2_j over i != j: all pairs minus the diagonal. */
    double keep = 1.0 - (sum1 * sum2 - same);
    for (int k = 0; k < c; k++)
        b[k] = (b1[k] * b2[k] + b1[k] * u2 + b2[k] * u1) / keep;
    *u = u1 * u2 / keep;
}

/* With D = 1 - K, b_k = N_k / D and u = u1 u2 / D:
 * dL/dD = -(sum_k gb_k b_k + gu u) / D, dD/db1_i = -(sum(b2) - b2_i), and symmetrically. */
void tmc_combine_backward(double *gb1, double *gu1, double *gb2, double *gu2, const double *gb,
                          double gu, const double *b1, double u1, const double *b2, double u2,
                          int c) {
    double sum1 = 0.0, sum2 = 0.0, same = 0.0;
    for (int k = 0; k < c; k++) {
        sum1 += b1[k];
        sum2 += b2[k];
        same += b1[k] * b2[k];
    }
    double keep = 1.0 - (sum1 * sum2 - same);
    double dkeep = -gu * (u1 * u2 / keep);
    double via_b2 = 0.0, via_b1 = 0.0;
    for (int k = 0; k < c; k++) {
        double bk = (b1[k] * b2[k] + b1[k] * u2 + b2[k] * u1) / keep;
        dkeep -= gb[k] * bk;
        via_b2 += gb[k] * b2[k];
        via_b1 += gb[k] * b1[k];
    }
    dkeep /= keep;
    for (int k = 0; k < c; k++) {
        gb1[k] += gb[k] * (b2[k] + u2) / keep - dkeep * (sum2 - b2[k]);
        gb2[k] += gb[k] * (b1[k] + u1) / keep - dkeep * (sum1 - b1[k]);
    }
    *gu1 += (via_b2 + gu * u2) / keep;
    *gu2 += (via_b1 + gu * u1) / keep;
}

/* Loss of one Dirichlet alpha [C] for target class y, and dL/dalpha into dalpha unless NULL:
 * psi(S) - psi(alpha_y) + anneal KL(Dir(a) || Dir(1)) with a = alpha except a_y = 1.
 * KL(Dir(a) || Dir(1)) = lgamma(A) - lgamma(C) - sum lgamma(a_k) + sum (a_k - 1)(psi(a_k)
 * - psi(A)) with A = sum a, and dKL/da_k = (a_k - 1) psi'(a_k)
 * - (A - C) psi'(A). */
static double dirichlet_loss(double *dalpha, const double *alpha, int c, int y, double anneal) {
    double s = 0.0;
    for (int k = 0; k < c; k++)
        s += alpha[k];
    double loss = digamma_d(s) - digamma_d(alpha[y]);
    if (dalpha) {
        double tri_s = trigamma_d(s);
        for (int k = 0; k < c; k++)
            dalpha[k] = tri_s;
        dalpha[y] -= trigamma_d(alpha[y]);
    }
    if (anneal <= 0.0)
        return loss;
    double a_sum = 1.0;
    for (int k = 0; k < c; k++)
        if (k != y)
            a_sum += alpha[k];
    double psi_sum = digamma_d(a_sum);
    double kl = lgamma(a_sum) - lgamma((double)c);
    for (int k = 0; k < c; k++) {
        if (k == y)
            continue;
        kl += -lgamma(alpha[k]) + (alpha[k] - 1.0) * (digamma_d(alpha[k]) - psi_sum);
        if (dalpha)
            dalpha[k] += anneal * ((alpha[k] - 1.0) * trigamma_d(alpha[k]) -
                                   (a_sum - c) * trigamma_d(a_sum));
    }
    return loss + anneal * kl;
}

/* Fills the row's opinions and combination stages from the host logits, writes the
 * combined alpha and its expected probabilities, and returns the row's loss. */
static double row_forward(TmcModel *st, const Model *m, int r, int y, float *out, float *prob) {
    int nm = m->shape.num_modalities, c = m->out_dim;
    size_t plane = (size_t)m->shape.max_batch * c;
    double loss = 0.0;
    for (int i = 0; i < nm; i++) {
        double *b = st->op_b + (size_t)i * c, *e = st->op_e + (size_t)i * c;
        opinion_from_logits(b, &st->op_u[i], e, st->h_logits + i * plane + (size_t)r * c, c);
        for (int k = 0; k < c; k++)
            st->alpha[k] = e[k] + 1.0;
        loss += dirichlet_loss(NULL, st->alpha, c, y, st->anneal);
    }
    memcpy(st->st_b, st->op_b, sizeof(double) * c);
    st->st_u[0] = st->op_u[0];
    for (int i = 1; i < nm; i++)
        tmc_combine(st->st_b + (size_t)i * c, &st->st_u[i], st->st_b + (size_t)(i - 1) * c,
                    st->st_u[i - 1], st->op_b + (size_t)i * c, st->op_u[i], c);
    const double *fb = st->st_b + (size_t)(nm - 1) * c;
    double fu = st->st_u[nm - 1], total = 0.0;
    for (int k = 0; k < c; k++) {
        st->alpha[k] = c * fb[k] / fu + 1.0;
        total += st->alpha[k];
    }
    for (int k = 0; k < c; k++) {
        out[k] = (float)st->alpha[k];
        prob[k] = (float)(st->alpha[k] / total);
    }
    return loss + dirichlet_loss(NULL, st->alpha, c, y, st->anneal);
}

/* Writes the gradient of scale * (the row's loss) with respect to each modality's logits
 * into h_dlogits. Needs the working values of row_forward for the same row. */
static void row_backward(TmcModel *st, const Model *m, int r, int y, double scale) {
    int nm = m->shape.num_modalities, c = m->out_dim;
    size_t plane = (size_t)m->shape.max_batch * c;
    memset(st->g_b, 0, sizeof(double) * (size_t)nm * c);
    memset(st->g_u, 0, sizeof(double) * (size_t)nm);

    /* Combined Dirichlet: alpha_k = C b_k / u + 1, so dalpha_k/db_k = C / u and
     * dalpha_k/du = -C b_k / u^2. */
    const double *fb = st->st_b + (size_t)(nm - 1) * c;
    double fu = st->st_u[nm - 1];
    for (int k = 0; k < c; k++)
        st->alpha[k] = c * fb[k] / fu + 1.0;
    dirichlet_loss(st->dalpha, st->alpha, c, y, st->anneal);
    double *gb = st->g_sb, *gu = st->g_sb + c;
    *gu = 0.0;
    for (int k = 0; k < c; k++) {
        gb[k] = scale * st->dalpha[k] * c / fu;
        *gu -= scale * st->dalpha[k] * c * fb[k] / (fu * fu);
    }
    /* Undo the combinations in reverse: stage i = combine(stage i - 1, opinion i). */
    for (int i = nm - 1; i >= 1; i--) {
        double *pb = st->g_prev, *pu = st->g_prev + c;
        memset(st->g_prev, 0, sizeof(double) * (size_t)(c + 1));
        tmc_combine_backward(pb, pu, st->g_b + (size_t)i * c, &st->g_u[i], gb, *gu,
                             st->st_b + (size_t)(i - 1) * c, st->st_u[i - 1],
                             st->op_b + (size_t)i * c, st->op_u[i], c);
        memcpy(st->g_sb, st->g_prev, sizeof(double) * (size_t)(c + 1));
    }
    for (int k = 0; k < c; k++)
        st->g_b[k] += gb[k];
    st->g_u[0] += *gu;

    /* Each modality: its own loss on alpha = e + 1, and b = e / S, u = C / S with
     * S = sum e + C, so de_k = gb_k / S - (sum_j gb_j b_j + gu u) / S; de/dl = sigmoid(l). */
    for (int i = 0; i < nm; i++) {
        const double *b = st->op_b + (size_t)i * c, *e = st->op_e + (size_t)i * c;
        const float *l = st->h_logits + i * plane + (size_t)r * c;
        float *dl = st->h_dlogits + i * plane + (size_t)r * c;
        double *g = st->g_b + (size_t)i * c;
        double s = c / st->op_u[i], through = st->g_u[i] * st->op_u[i];
        for (int k = 0; k < c; k++) {
            st->alpha[k] = e[k] + 1.0;
            through += g[k] * b[k];
        }
        dirichlet_loss(st->dalpha, st->alpha, c, y, st->anneal);
        for (int k = 0; k < c; k++) {
            double de = (g[k] - through) / s + scale * st->dalpha[k];
            dl[k] = (float)(de * sigmoid_d(l[k]));
        }
    }
}

static int tmc_build(Model *m) {
    /* model_create has checked the task and the class count (classification_only). */
    TmcModel *st = xcalloc(1, sizeof(TmcModel));
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
    st->op_b = xcalloc((size_t)nm * c, sizeof(double));
    st->op_e = xcalloc((size_t)nm * c, sizeof(double));
    st->op_u = xcalloc((size_t)nm, sizeof(double));
    st->st_b = xcalloc((size_t)nm * c, sizeof(double));
    st->st_u = xcalloc((size_t)nm, sizeof(double));
    st->alpha = xcalloc((size_t)c, sizeof(double));
    st->dalpha = xcalloc((size_t)c, sizeof(double));
    st->g_b = xcalloc((size_t)nm * c, sizeof(double));
    st->g_u = xcalloc((size_t)nm, sizeof(double));
    st->g_sb = xcalloc((size_t)c + 1, sizeof(double));
    st->g_prev = xcalloc((size_t)c + 1, sizeof(double));
    return 0;
}

static void tmc_forward(Model *m, const Batch *batch, int training) {
    TmcModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, c = m->out_dim, b = batch->b;
    size_t plane = (size_t)m->shape.max_batch * c;
    branches_forward(m, &st->br, batch, st->logits, plane);
    for (int i = 0; i < nm; i++)
        be->download(st->h_logits + i * plane, st->logits + i * plane,
                     sizeof(float) * (size_t)b * c);
    st->anneal = training ? fmin(1.0, (double)batch->epoch / EUAR_TMC_ANNEALING_EPOCHS) : 1.0;
    double loss = 0.0;
    for (int r = 0; r < b; r++)
        loss += row_forward(st, m, r, batch->cls[r], st->h_out + (size_t)r * c,
                            st->h_prob + (size_t)r * c);
    be->upload(m->out, st->h_out, sizeof(float) * (size_t)b * c);
    be->upload(m->prob, st->h_prob, sizeof(float) * (size_t)b * c);
    m->loss.task = loss / b;
    m->loss.total = m->loss.task;
}

static void tmc_backward(Model *m, const Batch *batch) {
    TmcModel *st = m->state;
    const Backend *be = m->be;
    int nm = m->shape.num_modalities, c = m->out_dim, b = batch->b;
    size_t plane = (size_t)m->shape.max_batch * c;
    for (int r = 0; r < b; r++) {
        row_forward(st, m, r, batch->cls[r], st->h_out + (size_t)r * c,
                    st->h_prob + (size_t)r * c);
        row_backward(st, m, r, batch->cls[r], 1.0 / b);
    }
    for (int i = 0; i < nm; i++)
        be->upload(st->dlogits + i * plane, st->h_dlogits + i * plane,
                   sizeof(float) * (size_t)b * c);
    branches_backward(m, &st->br, batch, st->dlogits, plane);
}

static void tmc_destroy(Model *m) {
    TmcModel *st = m->state;
    if (!st)
        return;
    free(st->h_logits);
    free(st->h_dlogits);
    free(st->h_out);
    free(st->h_prob);
    free(st->op_b);
    free(st->op_e);
    free(st->op_u);
    free(st->st_b);
    free(st->st_u);
    free(st->alpha);
    free(st->dalpha);
    free(st->g_b);
    free(st->g_u);
    free(st->g_sb);
    free(st->g_prev);
}

const ModelKind model_tmc = {"tmc",
                             "trusted multi-view classification: Dirichlet evidence per "
                             "modality, combined by the reduced Dempster rule",
                             0, tmc_build, tmc_forward, tmc_backward, tmc_destroy, 1};
