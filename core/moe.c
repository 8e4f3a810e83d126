#include "moe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void moe_declare(MoeBlock *blk, Model *m, const char *name, int modality, ExpertKind expert) {
    const Settings *set = &m->set;
    int h = set->hidden, e = set->experts, k = set->top_k;
    size_t b = (size_t)m->shape.max_batch;
    char full[48];

    memset(blk, 0, sizeof(*blk));
    blk->expert = expert;
    blk->h = h;
    blk->e = e;
    blk->k = k;
    /* With K = E every expert is selected, so the sparse layout would compute the same work
     * in another slot order; normal_experts() reads S = E as the dense layout. */
    blk->sparse = set->moe_compute == EUAR_MOE_SPARSE && k < e;
    blk->s = blk->sparse ? k : e;
    blk->width1 = expert == EUAR_EXPERT_GAUSSIAN ? 2 * h : h;
    blk->modality = modality;
    blk->alpha = set->alpha;
    blk->beta = set->beta;
    blk->lambda = set->lambda;
    blk->lv_min = set->lv_min;
    blk->lv_max = set->lv_max;

    snprintf(full, sizeof(full), "%s.gate", name);
    linear_declare(&blk->gate, &m->params, full, h, e);
    snprintf(full, sizeof(full), "%s.experts1", name);
    linear_declare(&blk->first, &m->params, full, h, e * blk->width1);
    if (expert == EUAR_EXPERT_MLP) {
        snprintf(full, sizeof(full), "%s.experts2", name);
        linear_declare(&blk->second, &m->params, full, h, e * h);
    }

    size_t slots = b * (size_t)blk->s;
    ActTable *t = &m->acts;
    act_declare(t, b * e, &blk->logits);
    act_declare(t, b * e, &blk->p);
    act_declare(t, b * e, &blk->dlogits);
    act_declare(t, b * e, &blk->dp);
    act_declare(t, b * k, &blk->gate_sel);
    act_declare(t, slots, &blk->w);
    act_declare(t, slots, &blk->dw);
    act_declare(t, slots * blk->width1, &blk->y);
    act_declare(t, slots * blk->width1, &blk->dy);
    if (expert == EUAR_EXPERT_MLP) {
        act_declare(t, slots * h, &blk->hid);
        act_declare(t, slots * h, &blk->dhid);
    }
    act_declare(t, slots * h, &blk->z);
    act_declare(t, slots * h, &blk->dz);
    act_declare(t, slots * h, &blk->eps);
    if (expert == EUAR_EXPERT_GAUSSIAN)
        act_declare(t, slots * h, &blk->sd);
    act_declare(t, slots, &blk->kl);
    act_declare(t, slots, &blk->s2);
    act_declare(t, slots, &blk->dkl);
    act_declare(t, slots, &blk->ds2);
    if (blk->sparse) {
        size_t rows = b * k, width = (size_t)2 * h;
        act_declare(t, rows * h, &blk->xg);
        act_declare(t, rows * width, &blk->yg);
        act_declare(t, rows * h, &blk->hg);
        act_declare(t, rows * width, &blk->dg);
    }

    blk->sel = xcalloc(b * k, sizeof(int32_t));
    blk->group_slot = xcalloc(b * k, sizeof(int32_t));
    blk->group_row = xcalloc(b * k, sizeof(int32_t));
    blk->group_start = xcalloc((size_t)e + 1, sizeof(int32_t));
    blk->h_p = xcalloc(b * e, sizeof(float));
    blk->h_dp = xcalloc(b * e, sizeof(float));
    blk->h_w = xcalloc(slots, sizeof(float));
    blk->h_dw = xcalloc(slots, sizeof(float));
    blk->h_kl = xcalloc(slots, sizeof(float));
    blk->h_s2 = xcalloc(slots, sizeof(float));
    blk->h_dkl = xcalloc(slots, sizeof(float));
    blk->h_ds2 = xcalloc(slots, sizeof(float));
    blk->h_share = xcalloc((size_t)e, sizeof(float));
}

void moe_destroy(MoeBlock *blk) {
    free(blk->sel);
    free(blk->group_slot);
    free(blk->group_row);
    free(blk->group_start);
    free(blk->h_p);
    free(blk->h_dp);
    free(blk->h_w);
    free(blk->h_dw);
    free(blk->h_kl);
    free(blk->h_s2);
    free(blk->h_dkl);
    free(blk->h_ds2);
    free(blk->h_share);
}

/* Groups the B K selections by expert (counting sort): group_slot contains slot indices r K + s
 * and group_row the sample rows r, expert j owning [group_start[j], group_start[j + 1]). */
static void group_by_expert(MoeBlock *blk, int b) {
    int e = blk->e, k = blk->k;
    int32_t *start = blk->group_start;
    memset(start, 0, sizeof(int32_t) * (size_t)(e + 1));
    for (int i = 0; i < b * k; i++)
        start[blk->sel[i] + 1]++;
    for (int j = 0; j < e; j++)
        start[j + 1] += start[j];
    int32_t fill[EUAR_MODEL_MAX_EXPERTS];
    memcpy(fill, start, sizeof(int32_t) * (size_t)e);
    for (int i = 0; i < b * k; i++) {
        int at = fill[blk->sel[i]]++;
        blk->group_slot[at] = i;
        blk->group_row[at] = i / k;
    }
}

/* Sparse first layer: y rows of the selected slots = x rows W1_j + b1_j, expert by expert. */
static void sparse_first_forward(const Backend *be, MoeBlock *blk, const float *x, int ldx,
                                 int b) {
    int w1 = blk->width1, ld_w = blk->first.out;
    be->zero(blk->y, sizeof(float) * (size_t)b * blk->s * w1);
    be->gather_rows(blk->xg, blk->h, x, ldx, blk->group_row, b * blk->k, blk->h);
    for (int j = 0; j < blk->e; j++) {
        int at = blk->group_start[j], n = blk->group_start[j + 1] - at;
        if (n == 0)
            continue;
        float *yg = blk->yg + (size_t)at * w1;
        be->gemm(0, 0, n, w1, blk->h, 1.0f, blk->xg + (size_t)at * blk->h, blk->h,
                 blk->first.w + (size_t)j * w1, ld_w, 0.0f, yg, w1);
        be->bias_add(yg, blk->first.b + (size_t)j * w1, n, w1, w1);
    }
    be->scatter_add_rows(blk->y, w1, blk->yg, w1, blk->group_slot, b * blk->k, w1);
}

/* Sparse first layer backward from dy (slot order): dW1_j, db1_j and dx (added). */
static void sparse_first_backward(const Backend *be, MoeBlock *blk, float *dx, int lddx,
                                  const float *dy, int b) {
    int w1 = blk->width1, ld_w = blk->first.out, h = blk->h;
    be->gather_rows(blk->dg, w1, dy, w1, blk->group_slot, b * blk->k, w1);
    for (int j = 0; j < blk->e; j++) {
        int at = blk->group_start[j], n = blk->group_start[j + 1] - at;
        if (n == 0)
            continue;
        const float *dg = blk->dg + (size_t)at * w1;
        const float *xg = blk->xg + (size_t)at * h;
        be->gemm(1, 0, h, w1, n, 1.0f, xg, h, dg, w1, 1.0f, blk->first.dw + (size_t)j * w1,
                 ld_w);
        be->bias_grad(blk->first.db + (size_t)j * w1, dg, n, w1, w1);
        /* xg is no longer needed for this expert: it takes dx of its rows. */
        be->gemm(0, 1, n, h, w1, 1.0f, dg, w1, blk->first.w + (size_t)j * w1, ld_w, 0.0f,
                 blk->hg + (size_t)at * h, h);
    }
    be->scatter_add_rows(dx, lddx, blk->hg, h, blk->group_row, b * blk->k, h);
}

/* MLP second layer, forward: z slot j of each row = hid slot j W2_j + b2_j. In sparse mode
 * each slot's expert comes from sel. */
static void mlp_second_forward(const Backend *be, MoeBlock *blk, int b) {
    int h = blk->h, ld_w = blk->second.out;
    if (!blk->sparse) {
        /* Expert j: z[:, j] = hid[:, j] W2_j, the E products in one call. */
        int ld = blk->e * h;
        be->gemm_strided_batched(0, 0, b, h, h, 1.0f, blk->hid, ld, (size_t)h, blk->second.w,
                                 ld_w, (size_t)h, 0.0f, blk->z, ld, (size_t)h, blk->e);
        be->bias_add(blk->z, blk->second.b, b, ld, ld);
        return;
    }
    be->gather_rows(blk->hg, h, blk->hid, h, blk->group_slot, b * blk->k, h);
    for (int j = 0; j < blk->e; j++) {
        int at = blk->group_start[j], n = blk->group_start[j + 1] - at;
        if (n == 0)
            continue;
        float *out = blk->yg + (size_t)at * h;
        be->gemm(0, 0, n, h, h, 1.0f, blk->hg + (size_t)at * h, h,
                 blk->second.w + (size_t)j * h, ld_w, 0.0f, out, h);
        be->bias_add(out, blk->second.b + (size_t)j * h, n, h, h);
    }
    be->zero(blk->z, sizeof(float) * (size_t)b * blk->s * h);
    be->scatter_add_rows(blk->z, h, blk->yg, h, blk->group_slot, b * blk->k, h);
}

/* MLP second layer, backward: dW2, db2 and dhid from dz (all in slot order). */
static void mlp_second_backward(const Backend *be, MoeBlock *blk, int b) {
    int h = blk->h, ld_w = blk->second.out;
    if (!blk->sparse) {
        /* Expert j: dW2_j += hid[:, j]^T dz[:, j], dhid[:, j] = dz[:, j] W2_j^T. */
        int ld = blk->e * h;
        be->gemm_strided_batched(1, 0, h, h, b, 1.0f, blk->hid, ld, (size_t)h, blk->dz, ld,
                                 (size_t)h, 1.0f, blk->second.dw, ld_w, (size_t)h, blk->e);
        be->bias_grad(blk->second.db, blk->dz, b, ld, ld);
        be->gemm_strided_batched(0, 1, b, h, h, 1.0f, blk->dz, ld, (size_t)h, blk->second.w,
                                 ld_w, (size_t)h, 0.0f, blk->dhid, ld, (size_t)h, blk->e);
        return;
    }
    /* hg still contains the grouped hidden rows from forward; dg takes the grouped dz. */
    be->gather_rows(blk->dg, h, blk->dz, h, blk->group_slot, b * blk->k, h);
    for (int j = 0; j < blk->e; j++) {
        int at = blk->group_start[j], n = blk->group_start[j + 1] - at;
        if (n == 0)
            continue;
        const float *dzg = blk->dg + (size_t)at * h;
        be->gemm(1, 0, h, h, n, 1.0f, blk->hg + (size_t)at * h, h, dzg, h, 1.0f,
                 blk->second.dw + (size_t)j * h, ld_w);
        be->bias_grad(blk->second.db + (size_t)j * h, dzg, n, h, h);
        be->gemm(0, 1, n, h, h, 1.0f, dzg, h, blk->second.w + (size_t)j * h, ld_w, 0.0f,
                 blk->yg + (size_t)at * h, h);
    }
    be->zero(blk->dhid, sizeof(float) * (size_t)b * blk->s * h);
    be->scatter_add_rows(blk->dhid, h, blk->yg, h, blk->group_slot, b * blk->k, h);
}

void moe_forward(Model *m, MoeBlock *blk, float *out, int ldo, const float *x, int ldx,
                 const Batch *batch, int training) {
    const Backend *be = m->be;
    int b = batch->b, e = blk->e, k = blk->k, s = blk->s, h = blk->h;
    size_t slots = (size_t)b * s;

    /* Router: p = softmax(x Wg + bg), the k largest kept as slot weights. */
    linear_forward(be, blk->logits, e, x, ldx, &blk->gate, b);
    be->softmax_topk(blk->p, blk->gate_sel, blk->sel, blk->logits, b, e, k);
    be->download(blk->h_p, blk->p, sizeof(float) * (size_t)b * e);

    /* Switch Transformer load balance (Fedus et al., JMLR 2022, section 2.2): E sum_j R_j P_j with R_j
     * the share of samples whose first choice is j and P_j the mean router probability. */
    memset(blk->h_share, 0, sizeof(float) * (size_t)e);
    for (int r = 0; r < b; r++)
        blk->h_share[blk->sel[(size_t)r * k]] += 1.0f / (float)b;
    double balance = 0.0;
    for (int j = 0; j < e; j++) {
        double mean_p = 0.0;
        for (int r = 0; r < b; r++)
            mean_p += blk->h_p[(size_t)r * e + j];
        balance += blk->h_share[j] * (mean_p / b);
    }
    blk->balance_value = e * balance;

    memset(blk->h_w, 0, sizeof(float) * slots);
    for (int r = 0; r < b; r++)
        for (int t = 0; t < k; t++) {
            int32_t j = blk->sel[(size_t)r * k + t];
            size_t slot = blk->sparse ? (size_t)r * s + t : (size_t)r * s + j;
            blk->h_w[slot] = blk->h_p[(size_t)r * e + j];
        }
    be->upload(blk->w, blk->h_w, sizeof(float) * slots);

    /* Experts: every expert on every row (one GEMM), or each row's k experts, grouped. */
    if (blk->sparse) {
        group_by_expert(blk, b);
        sparse_first_forward(be, blk, x, ldx, b);
    } else {
        linear_forward(be, blk->y, blk->first.out, x, ldx, &blk->first, b);
    }

    if (blk->expert == EUAR_EXPERT_GAUSSIAN) {
        const float *eps = NULL;
        blk->used_eps = training;
        if (training) {
            RngStream st = rng_substream(m->reparam, (uint64_t)blk->modality);
            be->normal_experts(blk->eps, st, batch->step, batch->sample, blk->sel, b, s, e, k, h);
            eps = blk->eps;
        }
        be->expert_forward(blk->z, blk->sd, blk->kl, blk->s2, blk->y, eps, (int)slots, h, blk->lv_min,
                           blk->lv_max);
        be->download(blk->h_kl, blk->kl, sizeof(float) * slots);
        be->download(blk->h_s2, blk->s2, sizeof(float) * slots);
        /* KL averaged over the computed (sample, expert) pairs; U-loss: mean over samples of
         * (1/E) sum_j G_j mean_d sigma^2_j. */
        double kl = 0.0, u = 0.0;
        for (size_t i = 0; i < slots; i++) {
            kl += blk->h_kl[i];
            u += (double)blk->h_w[i] * blk->h_s2[i];
        }
        blk->kl_value = kl / (double)slots;
        blk->u_value = u / ((double)b * e);
    } else {
        be->act_forward(EUAR_ACT_RELU, blk->hid, blk->y, slots * h);
        mlp_second_forward(be, blk, b);
        blk->kl_value = 0.0;
        blk->u_value = 0.0;
    }

    be->mixture_forward(out, ldo, blk->w, blk->z, b, s, h);

    if (m->stats.enabled) {
        for (int r = 0; r < b; r++)
            for (int t = 0; t < k; t++) {
                int32_t j = blk->sel[(size_t)r * k + t];
                size_t slot = blk->sparse ? (size_t)r * s + t : (size_t)r * s + j;
                m->stats.load[blk->modality][j] += 1.0;
                if (blk->expert == EUAR_EXPERT_GAUSSIAN)
                    m->stats.sigma2[blk->modality][j] += blk->h_s2[slot];
            }
    }
}

void moe_backward(Model *m, MoeBlock *blk, float *dx, int lddx, const float *dout, int ldo,
                  const float *x, int ldx, const Batch *batch) {
    const Backend *be = m->be;
    int b = batch->b, e = blk->e, k = blk->k, s = blk->s, h = blk->h;
    size_t slots = (size_t)b * s;

    be->mixture_backward(blk->dz, blk->dw, dout, ldo, blk->w, blk->z, b, s, h);
    be->download(blk->h_dw, blk->dw, sizeof(float) * slots);

    if (blk->expert == EUAR_EXPERT_GAUSSIAN) {
        /* U = (1/(B E)) sum w s2: dU/dw = s2 / (B E), dU/ds2 = w / (B E). */
        float u_scale = blk->lambda / ((float)b * (float)e);
        float kl_scale = blk->alpha / (float)slots;
        for (size_t i = 0; i < slots; i++) {
            blk->h_dw[i] += u_scale * blk->h_s2[i];
            blk->h_ds2[i] = u_scale * blk->h_w[i];
            blk->h_dkl[i] = kl_scale;
        }
        be->upload(blk->dkl, blk->h_dkl, sizeof(float) * slots);
        be->upload(blk->ds2, blk->h_ds2, sizeof(float) * slots);
        be->expert_backward(blk->dy, blk->dz, blk->dkl, blk->ds2, blk->y, blk->sd,
                            blk->used_eps ? blk->eps : NULL, (int)slots, h, blk->lv_min,
                            blk->lv_max);
    } else {
        mlp_second_backward(be, blk, b);
        be->act_backward(EUAR_ACT_RELU, blk->dy, blk->dhid, blk->y, slots * h);
    }

    /* Router: dp from the selected slots (top-k passes the gradient of the kept entries
     * only) plus the load-balance term, then softmax backward. */
    memset(blk->h_dp, 0, sizeof(float) * (size_t)b * e);
    for (int r = 0; r < b; r++)
        for (int t = 0; t < k; t++) {
            int32_t j = blk->sel[(size_t)r * k + t];
            size_t slot = blk->sparse ? (size_t)r * s + t : (size_t)r * s + j;
            blk->h_dp[(size_t)r * e + j] += blk->h_dw[slot];
        }
    float bal_scale = blk->beta * (float)e / (float)b;
    for (int r = 0; r < b; r++)
        for (int j = 0; j < e; j++)
            blk->h_dp[(size_t)r * e + j] += bal_scale * blk->h_share[j];
    be->upload(blk->dp, blk->h_dp, sizeof(float) * (size_t)b * e);
    be->softmax_backward(blk->dlogits, blk->dp, blk->p, b, e);
    linear_backward(be, dx, lddx, 0, &blk->gate, blk->dlogits, e, x, ldx, b);

    if (blk->sparse)
        sparse_first_backward(be, blk, dx, lddx, blk->dy, b);
    else
        linear_backward(be, dx, lddx, 1, &blk->first, blk->dy, blk->first.out, x, ldx, b);
}
