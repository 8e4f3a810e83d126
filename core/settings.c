#include "settings.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

typedef enum { SET_INT, SET_FLOAT, SET_U64, SET_ENUM } SettingType;

typedef struct {
    const char *key;
    SettingType type;
    size_t offset;
    double min, max;
    const char *choices; /* comma-separated names of an enum, in enum order */
} SettingSpec;

#define F(field) offsetof(Settings, field)
static const SettingSpec specs[] = {
    {"experts", SET_INT, F(experts), 1, 256, NULL},
    {"top_k", SET_INT, F(top_k), 1, 256, NULL},
    {"hidden", SET_INT, F(hidden), 1, 8192, NULL},
    {"alpha", SET_FLOAT, F(alpha), 0, 1e6, NULL},
    {"beta", SET_FLOAT, F(beta), 0, 1e6, NULL},
    {"lambda", SET_FLOAT, F(lambda), 0, 1e6, NULL},
    {"lv_min", SET_FLOAT, F(lv_min), -30, 30, NULL},
    {"lv_max", SET_FLOAT, F(lv_max), -30, 30, NULL},
    {"activation", SET_ENUM, F(activation), 0, 0, "relu,gelu,none"},
    {"moe_compute", SET_ENUM, F(moe_compute), 0, 0, "dense,sparse"},
    {"batch", SET_INT, F(batch), 1, 1 << 20, NULL},
    {"epochs", SET_INT, F(epochs), 1, 1000000, NULL},
    {"lr", SET_FLOAT, F(lr), 0, 10, NULL},
    {"weight_decay", SET_FLOAT, F(weight_decay), 0, 10, NULL},
    {"adam_beta1", SET_FLOAT, F(adam_beta1), 0, 0.999999, NULL},
    {"adam_beta2", SET_FLOAT, F(adam_beta2), 0, 0.999999999, NULL},
    {"adam_eps", SET_FLOAT, F(adam_eps), 0, 1, NULL},
    {"init_scale", SET_FLOAT, F(init_scale), 0, 100, NULL},
    {"seed", SET_U64, F(seed), 0, 0, NULL},
    {"select", SET_ENUM, F(select), 0, 0, "valid-loss,valid-metric,test-acc2"},
    {"protocol", SET_ENUM, F(protocol), 0, 0, "mib,mmsa"},
    {"threads", SET_INT, F(threads), 1, 1024, NULL},
    {"max_train", SET_INT, F(max_train), 0, 1 << 30, NULL},
    {"eval_every", SET_INT, F(eval_every), 1, 1000000, NULL},
};
#undef F

void settings_default(Settings *s) {
    memset(s, 0, sizeof(*s));
    s->experts = 8;
    s->top_k = 3;
    s->hidden = 128;
    s->alpha = 1e-3f;
    s->beta = 1e-5f;
    s->lambda = 1e-3f;
    /* exp(-10) to exp(10): keeps sigma^2 and its KL gradient finite in float32. */
    s->lv_min = -10.0f;
    s->lv_max = 10.0f;
    s->activation = EUAR_ACT_RELU;
    s->moe_compute = EUAR_MOE_DENSE;
    s->batch = 16;
    s->epochs = 100;
    s->lr = 1e-3f;
    s->weight_decay = 0.0f;
    /* Adam defaults of Kingma and Ba 2015 and of PyTorch 1.13. */
    s->adam_beta1 = 0.9f;
    s->adam_beta2 = 0.999f;
    s->adam_eps = 1e-8f;
    /* 1/sqrt(fan_in): the bound of PyTorch's nn.Linear default init (kaiming_uniform, a=sqrt 5). */
    s->init_scale = 1.0f;
    s->seed = 1;
    s->select = EUAR_SELECT_VALID_LOSS;
    s->protocol = EUAR_PROTOCOL_MIB;
    s->threads = 1;
    s->max_train = 0;
    s->eval_every = 1;
}

static const SettingSpec *find_spec(const char *key) {
    for (size_t i = 0; i < EUAR_ARRAY_LEN(specs); i++)
        if (strcmp(specs[i].key, key) == 0)
            return &specs[i];
    return NULL;
}

static int choice_index(const char *choices, const char *value) {
    int index = 0;
    size_t n = strlen(value);
    for (const char *p = choices; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0)
            return index;
        index++;
        if (!end)
            break;
        p = end + 1;
    }
    return -1;
}

static void choice_name(const char *choices, int index, char *buf, int cap) {
    const char *p = choices;
    for (int i = 0; i < index && p; i++) {
        p = strchr(p, ',');
        if (p)
            p++;
    }
    if (!p) {
        snprintf(buf, (size_t)cap, "?");
        return;
    }
    const char *end = strchr(p, ',');
    int len = end ? (int)(end - p) : (int)strlen(p);
    snprintf(buf, (size_t)cap, "%.*s", len, p);
}

static int list_keys(char *buf, size_t cap) {
    size_t used = 0;
    for (size_t i = 0; i < EUAR_ARRAY_LEN(specs) && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", specs[i].key);
    return 0;
}

int settings_set_kv(Settings *s, const char *key, const char *value) {
    const SettingSpec *spec = find_spec(key);
    if (!spec) {
        char keys[1024];
        list_keys(keys, sizeof(keys));
        return err_set("unknown setting '%s'; valid settings are: %s", key, keys);
    }
    char *base = (char *)s + spec->offset;
    char *end = NULL;
    errno = 0;
    switch (spec->type) {
    case SET_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < spec->min || v > spec->max)
            return err_set("invalid value '%s' for setting '%s': expected an integer from %.0f "
                           "to %.0f", value, key, spec->min, spec->max);
        *(int *)base = (int)v;
        break;
    }
    case SET_FLOAT: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) || v < spec->min || v > spec->max)
            return err_set("invalid value '%s' for setting '%s': expected a number from %g "
                           "to %g", value, key, spec->min, spec->max);
        *(float *)base = (float)v;
        break;
    }
    case SET_U64: {
        if (value[0] == '-')
            return err_set("invalid value '%s' for setting '%s': expected a non-negative "
                           "integer", value, key);
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end)
            return err_set("invalid value '%s' for setting '%s': expected a non-negative "
                           "integer", value, key);
        *(uint64_t *)base = (uint64_t)v;
        break;
    }
    case SET_ENUM: {
        int v = choice_index(spec->choices, value);
        if (v < 0)
            return err_set("invalid value '%s' for setting '%s': expected one of %s", value, key,
                           spec->choices);
        *(int *)base = v;
        break;
    }
    }
    return 0;
}

int settings_set(Settings *s, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return err_set("invalid setting '%s': expected key=value, for example experts=4",
                       assignment);
    char key[64];
    size_t n = (size_t)(eq - assignment);
    if (n >= sizeof(key))
        return err_set("invalid setting '%s': key too long", assignment);
    memcpy(key, assignment, n);
    key[n] = '\0';
    return settings_set_kv(s, key, eq + 1);
}

int settings_check(const Settings *s) {
    if (s->top_k > s->experts)
        return err_set("invalid settings: top_k=%d is larger than experts=%d; lower top_k or "
                       "raise experts", s->top_k, s->experts);
    if (s->lv_min >= s->lv_max)
        return err_set("invalid settings: lv_min=%g must be below lv_max=%g", (double)s->lv_min,
                       (double)s->lv_max);
    return 0;
}

int settings_count(void) {
    return (int)EUAR_ARRAY_LEN(specs);
}

const char *settings_key(int i) {
    return specs[i].key;
}

void settings_value(const Settings *s, int i, char *buf, int cap) {
    const SettingSpec *spec = &specs[i];
    const char *base = (const char *)s + spec->offset;
    switch (spec->type) {
    case SET_INT:
        snprintf(buf, (size_t)cap, "%d", *(const int *)base);
        break;
    case SET_FLOAT: {
        /* The shortest text that reads back as the same float: 1e-3, not 0.00100000005. */
        float v = *(const float *)base;
        for (int digits = 1; digits <= 9; digits++) {
            snprintf(buf, (size_t)cap, "%.*g", digits, (double)v);
            if (strtof(buf, NULL) == v)
                break;
        }
        break;
    }
    case SET_U64:
        snprintf(buf, (size_t)cap, "%" PRIu64, *(const uint64_t *)base);
        break;
    case SET_ENUM:
        choice_name(spec->choices, *(const int *)base, buf, cap);
        break;
    }
}

int settings_format(const Settings *s, char *buf, int cap) {
    int used = 0;
    for (int i = 0; i < settings_count() && used < cap; i++) {
        char value[64];
        settings_value(s, i, value, sizeof(value));
        used += snprintf(buf + used, (size_t)(cap - used), "%s=%s\n", specs[i].key, value);
    }
    return used;
}
