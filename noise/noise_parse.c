/* Parser, canonical text and dataset checks of noise specs; the grammar is in noise.h. */
#include "noise.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/* Maximum length of a spec text. Suite files and --noise options stay far below it. */
#define NOISE_MAX_SPEC_LEN 1024

static const char *const type_names[] = {"missing", "gaussian", "saltpepper", "blank"};
static const char *const phase_names[] = {"train", "test", "both"};
static const char *const range_names[] = {"clip", "wrap", "cliphigh"};

/* Keys each type accepts, comma-separated, in canonical order. */
static const char *const type_keys[] = {
    "keep,phase",
    "eps,p,scale,range,field,phase",
    "eps,p,convention,phase",
    "ratio,p,phase",
};

/* Default probability that a sample is gated, 0.5 for gaussian noise. The other gated types
 * share it, so one p describes a condition. */
#define NOISE_DEFAULT_P 0.5

const char *noise_type_name(NoiseType type) {
    return type_names[type];
}

const char *noise_phase_name(NoisePhase phase) {
    return phase_names[phase];
}

/* Returns 1 when `key` is in the comma-separated `list`. */
static int list_has(const char *list, const char *key) {
    size_t n = strlen(key);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, key, n) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* Modality names are the identifiers the HDF5 format uses: letters, digits, '_', '-', '.'. */
static int name_valid(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n >= EUAR_NAME_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.';
        if (!ok)
            return 0;
    }
    return 1;
}

/* Parses a finite decimal number that fills the whole string: digits, one point and an
 * exponent, no spaces and no hexadecimal (strtod alone takes " 5" and "0x10"). A non-zero
 * value that underflows to 0 is rejected rather than read as 0. */
static int parse_number(const char *s, double *out) {
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' ||
              *p == '-'))
            return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v) || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}


typedef struct {
    const char *spec; /* the whole text, for messages */
    const char *term; /* this term, for messages */
    NoiseTerm *out;
    char seen[8][16]; /* keys already given */
    int num_seen;
} TermParser;

/* Reports an error in the current term, quoting the whole spec and the term. Returns -1. */
static int term_error(TermParser *tp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int term_error(TermParser *tp, const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (strcmp(tp->spec, tp->term) == 0)
        return err_set("invalid noise spec '%s': %s", tp->spec, detail);
    return err_set("invalid noise spec '%s', term '%s': %s", tp->spec, tp->term, detail);
}

static int add_keep(TermParser *tp, const char *name) {
    NoiseTerm *t = tp->out;
    if (name[0] == '\0')
        return term_error(tp, "empty modality name in the keep list");
    if (!name_valid(name))
        return term_error(tp, "invalid modality name '%s' in the keep list", name);
    for (int i = 0; i < t->num_keep; i++)
        if (strcmp(t->keep[i], name) == 0)
            return term_error(tp, "modality '%s' is listed twice in keep", name);
    if (t->num_keep == EUAR_MAX_MODALITIES)
        return term_error(tp, "keep lists more than %d modalities (at '%s')",
                          EUAR_MAX_MODALITIES, name);
    snprintf(t->keep[t->num_keep++], EUAR_NAME_LEN, "%s", name);
    return 0;
}

/* Applies one key=value of the current term. */
static int set_key(TermParser *tp, const char *key, const char *value) {
    NoiseTerm *t = tp->out;
    const char *type = type_names[t->type];
    if (!list_has(type_keys[t->type], key))
        return term_error(tp, "unknown key '%s' for type %s; valid keys are %s", key, type,
                          type_keys[t->type]);
    for (int i = 0; i < tp->num_seen; i++)
        if (strcmp(tp->seen[i], key) == 0)
            return term_error(tp, "key '%s' is given twice", key);
    snprintf(tp->seen[tp->num_seen++], sizeof(tp->seen[0]), "%s", key);

    if (value[0] == '\0') {
        if (strcmp(key, "keep") == 0)
            return term_error(tp, "empty keep list; name at least one modality, for "
                              "example keep=text");
        return term_error(tp, "key '%s' has no value", key);
    }
    if (strcmp(key, "keep") == 0)
        return add_keep(tp, value);
    if (strcmp(key, "phase") == 0) {
        for (int i = 0; i < 3; i++)
            if (strcmp(value, phase_names[i]) == 0) {
                t->phase = (NoisePhase)i;
                return 0;
            }
        return term_error(tp, "invalid phase '%s'; expected train, test or both", value);
    }
    if (strcmp(key, "range") == 0) {
        if (strcmp(value, "clip") == 0)
            t->range = EUAR_RANGE_CLIP;
        else if (strcmp(value, "wrap") == 0)
            t->range = EUAR_RANGE_WRAP;
        else if (strcmp(value, "cliphigh") == 0)
            t->range = EUAR_RANGE_CLIP_HIGH;
        else
            return term_error(tp, "invalid range '%s'; expected clip, wrap or cliphigh", value);
        return 0;
    }
    if (strcmp(key, "field") == 0) {
        if (strcmp(value, "fresh") == 0)
            t->field = EUAR_FIELD_FRESH;
        else if (strcmp(value, "fixed") == 0)
            t->field = EUAR_FIELD_FIXED;
        else
            return term_error(tp, "invalid field '%s'; expected fresh (one field per sample) "
                              "or fixed (one field for all samples)", value);
        return 0;
    }
    if (strcmp(key, "convention") == 0) {
        if (strcmp(value, "10") == 0)
            t->convention = 10;
        else if (strcmp(value, "100") == 0)
            t->convention = 100;
        else
            return term_error(tp, "invalid convention '%s'; expected 10 (p * E / 10) or 100 "
                              "(p * E / 100)", value);
        return 0;
    }
    double v;
    if (parse_number(value, &v) != 0)
        return term_error(tp, "'%s=%s' is not a finite number", key, value);
    /* Levels and scales above 1e6 make no sense on 0..255 pixels or standardised features,
     * and the bound keeps eps * scale (and its square) finite in double precision, so such
     * a spec fails here instead of after training. */
    if ((strcmp(key, "eps") == 0 || strcmp(key, "scale") == 0) && v > 1e6)
        return term_error(tp, "'%s=%s' is above the maximum of 1e6", key, value);
    if (strcmp(key, "eps") == 0) {
        if (v < 0)
            return term_error(tp, "negative eps in 'eps=%s'; eps must be 0 or more", value);
        t->eps = v;
    } else if (strcmp(key, "p") == 0) {
        if (v < 0 || v > 1)
            return term_error(tp, "p outside [0, 1] in 'p=%s'", value);
        t->p = v;
    } else if (strcmp(key, "ratio") == 0) {
        if (v < 0 || v > 1)
            return term_error(tp, "ratio outside [0, 1] in 'ratio=%s'", value);
        t->ratio = v;
    } else if (strcmp(key, "scale") == 0) {
        if (v <= 0)
            return term_error(tp, "scale must be positive in 'scale=%s'", value);
        t->scale = v;
    } else {
        EUAR_ASSERT(0 && "key listed in type_keys without a parser");
    }
    return 0;
}

static int key_seen(const TermParser *tp, const char *key) {
    for (int i = 0; i < tp->num_seen; i++)
        if (strcmp(tp->seen[i], key) == 0)
            return 1;
    return 0;
}

/* Parses the comma-separated items after "type:". `params` is modified in place. */
static int parse_params(TermParser *tp, char *params) {
    const char *last_key = "";
    char *item = params;
    for (;;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        char *eq = strchr(item, '=');
        if (eq) {
            *eq = '\0';
            if (item[0] == '\0')
                return term_error(tp, "item '=%s' has no key", eq + 1);
            if (set_key(tp, item, eq + 1) != 0)
                return -1;
            last_key = item;
        } else if (strcmp(last_key, "keep") == 0) {
            if (add_keep(tp, item) != 0)
                return -1;
        } else if (tp->out->type == EUAR_NOISE_GAUSSIAN &&
                   (strcmp(item, "clip") == 0 || strcmp(item, "wrap") == 0)) {
            if (set_key(tp, "range", item) != 0)
                return -1;
            last_key = "range";
        } else if (item[0] == '\0') {
            return term_error(tp, "empty item between commas");
        } else if (list_has(type_keys[tp->out->type], item)) {
            return term_error(tp, "key '%s' has no value; write key=value", item);
        } else {
            return term_error(tp, "unknown key '%s' for type %s; valid keys are %s", item,
                              type_names[tp->out->type], type_keys[tp->out->type]);
        }
        if (!comma)
            break;
        item = comma + 1;
    }
    return 0;
}

/* Parses one term (modified in place); `original` is an unmodified copy for messages. */
static int parse_term(const char *spec, char *text, const char *original, NoiseTerm *out) {
    memset(out, 0, sizeof(*out));
    TermParser tp = {.spec = spec, .term = original, .out = out};
    if (text[0] == '\0')
        return err_set("invalid noise spec '%s': empty term; terms are joined by single '+'",
                       spec);

    char *at = strchr(text, '@');
    if (at) {
        *at = '\0';
        const char *target = at + 1;
        if (!name_valid(target))
            return term_error(&tp, "invalid modality '%s' after '@'", target);
        snprintf(out->modality, EUAR_NAME_LEN, "%s", target);
    }
    char *colon = strchr(text, ':');
    if (colon)
        *colon = '\0';
    int type = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(text, type_names[i]) == 0)
            type = i;
    if (type < 0)
        return term_error(&tp, "unknown noise type '%s'; valid types are missing, gaussian, "
                          "saltpepper, blank", text);
    out->type = (NoiseType)type;
    out->phase = out->type == EUAR_NOISE_MISSING ? EUAR_PHASE_BOTH : EUAR_PHASE_TEST;
    if (out->type != EUAR_NOISE_MISSING)
        out->p = NOISE_DEFAULT_P;
    if (out->type == EUAR_NOISE_SALTPEPPER)
        out->convention = 10;

    if (colon && parse_params(&tp, colon + 1) != 0)
        return -1;

    switch (out->type) {
    case EUAR_NOISE_MISSING:
        if (!key_seen(&tp, "keep"))
            return term_error(&tp, "missing needs keep=MODALITY,... naming the modalities "
                              "that stay");
        if (out->modality[0])
            return term_error(&tp, "missing takes no '@%s'; list the modalities that stay in "
                              "keep=", out->modality);
        break;
    case EUAR_NOISE_GAUSSIAN:
    case EUAR_NOISE_SALTPEPPER:
        if (!key_seen(&tp, "eps"))
            return term_error(&tp, "%s needs eps=E, the noise level", type_names[out->type]);
        break;
    case EUAR_NOISE_BLANK:
        if (!key_seen(&tp, "ratio"))
            return term_error(&tp, "blank needs ratio=R in [0, 1]");
        break;
    }
    return 0;
}

/* A '+' inside a number's exponent ("1e+3") does not separate terms. */
static int is_exponent_plus(const char *text, size_t i) {
    return i >= 2 && (text[i - 1] == 'e' || text[i - 1] == 'E') && text[i - 2] >= '0' &&
           text[i - 2] <= '9' && text[i + 1] >= '0' && text[i + 1] <= '9';
}

int noise_parse(const char *text, NoiseSpec *out) {
    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] == '\0' || strcmp(text, "none") == 0)
        return 0;
    size_t len = strlen(text);
    if (len > NOISE_MAX_SPEC_LEN)
        return err_set("invalid noise spec '%.60s...': longer than %d characters", text,
                       NOISE_MAX_SPEC_LEN);
    char buf[NOISE_MAX_SPEC_LEN + 1];
    memcpy(buf, text, len + 1);

    int missing_terms = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (buf[i] != '\0' && (buf[i] != '+' || is_exponent_plus(text, i)))
            continue;
        buf[i] = '\0';
        if (out->count == EUAR_NOISE_MAX_TERMS) {
            memset(out, 0, sizeof(*out));
            return err_set("invalid noise spec '%s': more than %d terms", text,
                           EUAR_NOISE_MAX_TERMS);
        }
        char original[NOISE_MAX_SPEC_LEN + 1];
        memcpy(original, buf + start, i - start + 1);
        NoiseTerm *t = &out->term[out->count];
        if (parse_term(text, buf + start, original, t) != 0) {
            memset(out, 0, sizeof(*out));
            return -1;
        }
        out->count++;
        if (t->type == EUAR_NOISE_MISSING && ++missing_terms > 1) {
            memset(out, 0, sizeof(*out));
            return err_set("invalid noise spec '%s': more than one missing term; list every "
                           "modality that stays in one keep=", text);
        }
        start = i + 1;
    }
    return 0;
}

/* Writes the shortest %g form that reads back as the same double. */
static void format_number(double v, char *buf, size_t cap) {
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, cap, "%.17g", v);
}

static int describe_term(const NoiseTerm *t, char *buf, size_t cap) {
    char eps[32], p[32], scale[32], ratio[32];
    format_number(t->eps, eps, sizeof(eps));
    format_number(t->p, p, sizeof(p));
    format_number(t->scale, scale, sizeof(scale));
    format_number(t->ratio, ratio, sizeof(ratio));
    const char *phase = phase_names[t->phase];
    int n = 0;
    switch (t->type) {
    case EUAR_NOISE_MISSING:
        n = snprintf(buf, cap, "missing:keep=");
        for (int i = 0; i < t->num_keep && (size_t)n < cap; i++)
            n += snprintf(buf + n, cap - (size_t)n, "%s%s", i ? "," : "", t->keep[i]);
        if ((size_t)n < cap)
            n += snprintf(buf + n, cap - (size_t)n, ",phase=%s", phase);
        return n;
    case EUAR_NOISE_GAUSSIAN:
        n = snprintf(buf, cap, "gaussian:eps=%s,p=%s", eps, p);
        if (t->scale > 0 && (size_t)n < cap)
            n += snprintf(buf + n, cap - (size_t)n, ",scale=%s", scale);
        if ((size_t)n < cap)
            n += snprintf(buf + n, cap - (size_t)n, ",range=%s,field=%s,phase=%s",
                          range_names[t->range],
                          t->field == EUAR_FIELD_FIXED ? "fixed" : "fresh", phase);
        break;
    case EUAR_NOISE_SALTPEPPER:
        n = snprintf(buf, cap, "saltpepper:eps=%s,p=%s,convention=%d,phase=%s", eps, p,
                     t->convention, phase);
        break;
    case EUAR_NOISE_BLANK:
        n = snprintf(buf, cap, "blank:ratio=%s,p=%s,phase=%s", ratio, p, phase);
        break;
    }
    if (t->modality[0] && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, "@%s", t->modality);
    return n;
}

void noise_describe(const NoiseSpec *spec, char *buf, int cap) {
    EUAR_ASSERT(cap > 0);
    buf[0] = '\0';
    if (spec->count == 0) {
        snprintf(buf, (size_t)cap, "none");
        return;
    }
    size_t used = 0;
    for (int i = 0; i < spec->count && used + 1 < (size_t)cap; i++) {
        if (i > 0)
            used += (size_t)snprintf(buf + used, (size_t)cap - used, "+");
        if (used + 1 < (size_t)cap)
            used += (size_t)describe_term(&spec->term[i], buf + used, (size_t)cap - used);
    }
}

int noise_phase_covers(NoisePhase phase, SplitId split) {
    switch (phase) {
    case EUAR_PHASE_TRAIN:
        return split == EUAR_SPLIT_TRAIN || split == EUAR_SPLIT_VALID;
    case EUAR_PHASE_TEST:
        return split == EUAR_SPLIT_TEST;
    case EUAR_PHASE_BOTH:
        return 1;
    }
    return 0;
}

int noise_type_fits_kind(NoiseType type, ModalityKind kind) {
    switch (type) {
    case EUAR_NOISE_MISSING:
        return 1;
    case EUAR_NOISE_GAUSSIAN:
        return kind == EUAR_KIND_IMAGE || kind == EUAR_KIND_FEATURES;
    case EUAR_NOISE_SALTPEPPER:
        return kind == EUAR_KIND_IMAGE;
    case EUAR_NOISE_BLANK:
        return kind == EUAR_KIND_TOKENS || kind == EUAR_KIND_FEATURES;
    }
    return 0;
}

static const char *kind_text(ModalityKind kind) {
    switch (kind) {
    case EUAR_KIND_FEATURES:
        return "features";
    case EUAR_KIND_IMAGE:
        return "image";
    case EUAR_KIND_TOKENS:
        return "tokens";
    }
    return "?";
}

static const char *kinds_of_type(NoiseType type) {
    switch (type) {
    case EUAR_NOISE_MISSING:
        return "any kind";
    case EUAR_NOISE_GAUSSIAN:
        return "image or features";
    case EUAR_NOISE_SALTPEPPER:
        return "image";
    case EUAR_NOISE_BLANK:
        return "tokens or features";
    }
    return "?";
}

static int find_name(const char *const *names, int count, const char *name) {
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int noise_check_names(const NoiseSpec *spec, const char *const *names, const ModalityKind *kinds,
                      int count) {
    char listed[EUAR_MAX_MODALITIES * (EUAR_NAME_LEN + 16) + 8] = "";
    size_t used = 0;
    for (int i = 0; i < count && used < sizeof(listed); i++)
        used += (size_t)snprintf(listed + used, sizeof(listed) - used, "%s%s (%s)",
                                 i ? ", " : "", names[i], kind_text(kinds[i]));
    char text[EUAR_NOISE_TEXT_LEN];
    noise_describe(spec, text, sizeof(text));

    for (int ti = 0; ti < spec->count; ti++) {
        const NoiseTerm *t = &spec->term[ti];
        const char *type = type_names[t->type];
        for (int k = 0; k < t->num_keep; k++)
            if (find_name(names, count, t->keep[k]) < 0)
                return err_set("noise spec '%s': keep names modality '%s', which the dataset "
                               "does not have; its modalities are %s", text, t->keep[k], listed);
        if (t->modality[0]) {
            int m = find_name(names, count, t->modality);
            if (m < 0)
                return err_set("noise spec '%s': %s@%s names a modality the dataset does not "
                               "have; its modalities are %s", text, type, t->modality, listed);
            if (!noise_type_fits_kind(t->type, kinds[m]))
                return err_set("noise spec '%s': %s noise applies to %s modalities, but '%s' "
                               "is %s; the dataset's modalities are %s", text, type,
                               kinds_of_type(t->type), t->modality, kind_text(kinds[m]),
                               listed);
            if (t->type == EUAR_NOISE_GAUSSIAN && kinds[m] == EUAR_KIND_FEATURES &&
                (t->scale > 0 || t->range != EUAR_RANGE_CLIP))
                return err_set("noise spec '%s': scale= and range= of gaussian noise apply to "
                               "image modalities only, but '%s' is features, where eps scales "
                               "the training standard deviation of each dimension; drop them",
                               text, t->modality);
        } else {
            int fits = 0;
            for (int m = 0; m < count; m++)
                fits += noise_type_fits_kind(t->type, kinds[m]);
            if (!fits)
                return err_set("noise spec '%s': %s noise applies to %s modalities and the "
                               "dataset has none; its modalities are %s", text, type,
                               kinds_of_type(t->type), listed);
        }
    }
    return 0;
}

int noise_check_dataset(const NoiseSpec *spec, const Dataset *ds) {
    const char *names[EUAR_MAX_MODALITIES];
    ModalityKind kinds[EUAR_MAX_MODALITIES];
    int count = EUAR_MIN(ds->num_modalities, EUAR_MAX_MODALITIES);
    for (int i = 0; i < count; i++) {
        names[i] = ds->mod[i].name;
        kinds[i] = ds->mod[i].kind;
    }
    if (noise_check_names(spec, names, kinds, count) != 0)
        return -1;
    /* A copy, so that a missing default scale is reported here and not only when applied. */
    NoiseSpec resolved = *spec;
    return noise_resolve_scales(&resolved, ds);
}

int noise_term_targets(const NoiseTerm *t, const char *name, ModalityKind kind) {
    if (t->type == EUAR_NOISE_MISSING)
        return 1;
    if (t->modality[0])
        return strcmp(t->modality, name) == 0;
    return noise_type_fits_kind(t->type, kind);
}

/* Default scales by dataset name prefix; see noise_default_image_scale(). */
static const struct {
    const char *prefix;
    double scale;
} default_scales[] = {
    {"synth-mvsa", 10.0}, {"mvsa", 10.0}, {"synth-nyud", 1.0}, {"nyud", 1.0},
    {"fmnist-2view", 10.0},
};

static int has_prefix_nocase(const char *text, const char *prefix) {
    for (; *prefix; text++, prefix++) {
        char c = *text;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != *prefix)
            return 0;
    }
    return 1;
}

double noise_default_image_scale(const char *dataset_name) {
    for (size_t i = 0; i < EUAR_ARRAY_LEN(default_scales); i++)
        if (has_prefix_nocase(dataset_name, default_scales[i].prefix))
            return default_scales[i].scale;
    return 0.0;
}

/* Returns the index of the first image modality of `ds` that gaussian term `t` reaches, or
 * -1. */
static int first_image_target(const NoiseTerm *t, const Dataset *ds) {
    for (int m = 0; m < ds->num_modalities; m++)
        if (ds->mod[m].kind == EUAR_KIND_IMAGE &&
            noise_term_targets(t, ds->mod[m].name, ds->mod[m].kind))
            return m;
    return -1;
}

int noise_resolve_scales(NoiseSpec *spec, const Dataset *ds) {
    for (int ti = 0; ti < spec->count; ti++) {
        NoiseTerm *t = &spec->term[ti];
        if (t->type != EUAR_NOISE_GAUSSIAN || t->scale > 0)
            continue;
        int m = first_image_target(t, ds);
        if (m < 0)
            continue;
        double scale = noise_default_image_scale(ds->name);
        if (scale <= 0) {
            char text[EUAR_NOISE_TEXT_LEN];
            noise_describe(spec, text, sizeof(text));
            return err_set("noise spec '%s': gaussian noise on image modality '%s' needs "
                           "scale=S, because dataset '%s' has no default scale (defaults: "
                           "synth-mvsa and mvsa 10, synth-nyud and nyud 1, fmnist-2view 10)",
                           text, ds->mod[m].name, ds->name);
        }
        t->scale = scale;
    }
    return 0;
}
