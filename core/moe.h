/* The mixture-of-experts block of one modality: a softmax router with top-k selection over E
 * experts, Gaussian experts (EUAR) or two-layer MLP experts (mlp-moe), and the auxiliary
 * losses of EUAR: KL to N(0, I), the Switch Transformer load-balance term and the U-loss. */
#ifndef EUAR_MOE_H
#define EUAR_MOE_H

#include "layers.h"

typedef enum { EUAR_EXPERT_GAUSSIAN, EUAR_EXPERT_MLP } ExpertKind;

typedef struct {
    ExpertKind expert;
    int h, e, k, s;    /* width, experts, top-k, slots per sample (E dense, K sparse) */
    int sparse;
    int width1;        /* columns of the first expert layer per expert: 2H or H */
    int modality;
    float alpha, beta, lambda, lv_min, lv_max;
    Linear gate;       /* H -> E */
    Linear first;      /* H -> E * width1, expert j owns columns [j width1, (j+1) width1) */
    Linear second;     /* MLP experts: H -> E * H, expert j owns columns [j H, (j+1) H) */
    /* device activations */
    float *logits, *p, *dlogits, *dp; /* [B, E] */
    float *gate_sel;                  /* [B, K] */
    float *w, *dw;                    /* [B, S] slot weights: gate value, 0 when unselected */
    float *y, *dy;                    /* [B, S, width1] first-layer output per slot */
    float *hid, *dhid;                /* MLP: [B, S, H] */
    float *z, *dz;                    /* [B, S, H] expert outputs */
    float *eps;                       /* [B, S, H] */
    float *sd;                        /* [B, S, H] exp(lv / 2) from forward */
    float *kl, *s2, *dkl, *ds2;       /* [B, S] */
    float *xg, *yg, *hg, *dg;         /* sparse: rows grouped by expert [B K, max(2H, H)] */
    /* host scratch */
    int32_t *sel;                     /* [B, K] selected experts, best first */
    int32_t *group_slot, *group_row;  /* [B K] slot index and sample row, grouped by expert */
    int32_t *group_start;             /* [E + 1] */
    float *h_p, *h_w, *h_dw, *h_dp, *h_kl, *h_s2, *h_dkl, *h_ds2;
    float *h_share;                   /* [E] R_j: share of samples whose first choice is j */
    int used_eps;                     /* the last forward drew eps (training) */
    double kl_value, balance_value, u_value;
} MoeBlock;

/* Declares the block's parameters and buffers for modality `modality` of model m. */
void moe_declare(MoeBlock *blk, Model *m, const char *name, int modality, ExpertKind expert);

/* out[B, :H] (row stride ldo) = mixture of the selected experts on x [B, H]. Sets the
 * block's kl_value, balance_value and u_value (unweighted). */
void moe_forward(Model *m, MoeBlock *blk, float *out, int ldo, const float *x, int ldx,
                 const Batch *batch, int training);

/* Writes dx [B, H] from dout [B, H] (stride ldo) plus the weighted auxiliary terms. */
void moe_backward(Model *m, MoeBlock *blk, float *dx, int lddx, const float *dout, int ldo,
                  const float *x, int ldx, const Batch *batch);

/* Releases the host scratch of the block. */
void moe_destroy(MoeBlock *blk);

#endif
