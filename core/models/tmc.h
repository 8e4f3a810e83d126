/* tmc: Trusted Multi-view Classification (Han et al., "Trusted Multi-View Classification",
 * ICLR 2021). The opinion algebra is public so that tests can check it on known values. */
#ifndef EUAR_MODELS_TMC_H
#define EUAR_MODELS_TMC_H

/* Epochs over which the KL weight of the TMC loss grows linearly from 0 to 1: the default of
 * the --lambda-epochs option of TMC's public training script. */
#define EUAR_TMC_ANNEALING_EPOCHS 50

/* Combines two opinions over c classes by the reduced Dempster rule of TMC:
 * conflict K = sum_{i != j} b1_i b2_j, b = (b1 b2 + b1 u2 + b2 u1) / (1 - K),
 * u = u1 u2 / (1 - K). Beliefs b1, b2, b [c] with sum(b) + u = 1; b may not alias b1 or b2. */
void tmc_combine(double *b, double *u, const double *b1, double u1, const double *b2,
                 double u2, int c);

/* Adds into gb1 [c], gu1, gb2 [c], gu2 the gradient of a loss through tmc_combine, given
 * the loss's gradient gb [c], gu with respect to the combined opinion. */
void tmc_combine_backward(double *gb1, double *gu1, double *gb2, double *gu2, const double *gb,
                          double gu, const double *b1, double u1, const double *b2, double u2,
                          int c);

#endif
