/* Encoders: the first layer of every model, one per modality. A dense modality (pooled
 * features, flattened image) gets act(x W + b); a tokens modality gets act(mean of learned
 * embeddings over its valid tokens + b). Both give [B, H]. */
#ifndef EUAR_ENCODER_H
#define EUAR_ENCODER_H

#include "layers.h"

typedef struct {
    int modality;
    InputKind input;
    Dense dense;           /* dense input */
    float *emb, *demb;     /* tokens: [V, H] */
    float *bias, *dbias;   /* tokens: [H] */
    float *pre, *y, *dpre; /* tokens: [max_batch, H] */
    int vocab, steps, h;
    ActKind act;
} Encoder;

/* Declares the encoder of modality `modality` of m, of width m->set.hidden. */
void encoder_declare(Encoder *enc, Model *m, int modality);

/* Encodes the modality's rows of `batch`; the result is encoder_output(enc) [B, H]. */
void encoder_forward(Model *m, Encoder *enc, const Batch *batch);

/* Adds the parameter gradients from dy [B, H] (contiguous). */
void encoder_backward(Model *m, Encoder *enc, const float *dy, const Batch *batch);

float *encoder_output(Encoder *enc);

#endif
