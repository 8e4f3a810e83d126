/* Training and model settings: one struct with defaults, set by `--set key=value` and by the
 * `settings` objects of suite files, written into every result. */
#ifndef EUAR_SETTINGS_H
#define EUAR_SETTINGS_H

#include <stdint.h>

#include "elementwise.h"

typedef enum { EUAR_SELECT_VALID_LOSS, EUAR_SELECT_VALID_METRIC, EUAR_SELECT_TEST_ACC2 } SelectKind;
typedef enum { EUAR_PROTOCOL_MIB, EUAR_PROTOCOL_MMSA } ProtocolKind;
typedef enum { EUAR_MOE_DENSE, EUAR_MOE_SPARSE } MoeCompute;

typedef struct {
    /* model */
    int experts;         /* experts per modality */
    int top_k;           /* experts selected per sample */
    int hidden;          /* width H of encoders and experts */
    float alpha;         /* weight of the KL term */
    float beta;          /* weight of the load-balance term */
    float lambda;        /* weight of the U-loss */
    float lv_min, lv_max; /* clamp of the experts' log-variance */
    ActKind activation;
    MoeCompute moe_compute;
    /* training */
    int batch;
    int epochs;
    float lr;
    float weight_decay;
    float adam_beta1, adam_beta2, adam_eps;
    float init_scale;     /* uniform init bound = init_scale / sqrt(fan_in) */
    uint64_t seed;
    SelectKind select;
    ProtocolKind protocol;
    int threads;          /* BLAS threads */
    int max_train;        /* use at most this many training samples (0: all) */
    int eval_every;       /* evaluate on valid every this many epochs */
} Settings;

/* Fills the defaults of the EUAR paper (8 experts, top-3, hidden 128, alpha 1e-3,
 * beta 1e-5, lambda 1e-3, batch 16, 100 epochs, lr 1e-3). */
void settings_default(Settings *s);

/* Applies one "key=value". Returns 0, or -1 with err_set() naming the key and the value and
 * listing the valid keys or values. */
int settings_set(Settings *s, const char *assignment);

/* Applies key and value as separate strings (for JSON objects). */
int settings_set_kv(Settings *s, const char *key, const char *value);

/* Checks the rules that tie settings together: top_k at most experts, lv_min below lv_max.
 * Returns 0, or -1 with err_set() naming the settings, their values and the fix. */
int settings_check(const Settings *s);

/* Writes every setting as "key=value" lines, in table order, into buf. Returns the length. */
int settings_format(const Settings *s, char *buf, int cap);

/* Number of settings and the name of setting i, for writers of JSON objects. */
int settings_count(void);
const char *settings_key(int i);
/* Writes the value of setting i as text. */
void settings_value(const Settings *s, int i, char *buf, int cap);

#endif
