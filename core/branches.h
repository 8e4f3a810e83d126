/* One branch per modality: encoder, hidden Dense layer and a Linear head. Late fusion, TMC
 * and QMF build the same branches and differ only in how they combine the heads' outputs. */
#ifndef EUAR_BRANCHES_H
#define EUAR_BRANCHES_H

#include "encoder.h"

typedef struct {
    int count;
    Encoder enc[EUAR_MODEL_MAX_MODALITIES];
    Dense hidden[EUAR_MODEL_MAX_MODALITIES];
    Linear head[EUAR_MODEL_MAX_MODALITIES];
    float *dhid, *dh; /* [B, H] gradients at a hidden layer's output and at an encoder's */
    float *joint;     /* [B, M H] the hidden layers side by side */
} Branches;

/* Declares the branches of every modality of m, each head with `out` columns. Parameters are
 * declared modality by modality (encoder, hidden, head), which fixes their initialisation. */
void branches_declare(Branches *br, Model *m, int out);

/* Runs every branch: head i writes [B, out] at out + i * plane (row stride out), and
 * br->joint receives the hidden layers. */
void branches_forward(Model *m, Branches *br, const Batch *batch, float *out, size_t plane);

/* Adds the parameter gradients from dout, laid out as in branches_forward; plane 0 gives
 * every head the same gradient. */
void branches_backward(Model *m, Branches *br, const Batch *batch, const float *dout,
                       size_t plane);

#endif
