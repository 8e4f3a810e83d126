/* qmf: Quality-aware Multimodal Fusion (Zhang et al., "Provable Dynamic Fusion for Low-Quality
 * Multimodal Data", ICML 2023). The constants and the hooks that tests use. */
#ifndef EUAR_MODELS_QMF_H
#define EUAR_MODELS_QMF_H

#include "core/model.h"

/* A modality's confidence is its negative free energy logsumexp(logits) divided by this
 * temperature, as in the authors' public code (energy / 10). */
#define EUAR_QMF_TEMPERATURE 10.0
/* Weight of the ranking regulariser; the authors' code adds it to the classification losses
 * with weight 1. */
#define EUAR_QMF_RANK_WEIGHT 1.0

/* When hold is 1, later forward passes reuse the fusion weights of the last forward pass
 * instead of recomputing them. The weights carry no gradient, so with them held the loss is
 * the function whose gradient backward computes, which is what a finite-difference check
 * needs. */
void qmf_hold_weights(Model *m, int hold);

/* Returns how many completed training epochs of modality `modality` have seen training
 * sample `sample`, and writes the mean of its cross-entropy over those visits into
 * *mean_loss (0 when unseen). */
int qmf_history(const Model *m, int modality, int sample, double *mean_loss);

#endif
