/* Noise specs: parsing, canonical text, rejections, dataset checks, fixed missing, and the
 * statistics of gaussian, salt-and-pepper and blank noise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "noise/noise.h"

/* ---- parser ---- */

static void describe(const char *text, char *buf) {
    NoiseSpec spec;
    assert_int_equal(noise_parse(text, &spec), 0);
    noise_describe(&spec, buf, EUAR_NOISE_TEXT_LEN);
}

static void parse_canonical_forms(void **state) {
    static const struct {
        const char *text, *canonical;
    } cases[] = {
        {"", "none"},
        {"none", "none"},
        {"missing:keep=text,audio", "missing:keep=text,audio,phase=both"},
        {"missing:keep=image,phase=test", "missing:keep=image,phase=test"},
        {"missing:phase=train,keep=vision", "missing:keep=vision,phase=train"},
        {"gaussian:eps=5@image", "gaussian:eps=5,p=0.5,range=clip,field=fresh,phase=test@image"},
        {"gaussian:eps=1e+1,scale=1,wrap,phase=both",
         "gaussian:eps=10,p=0.5,scale=1,range=wrap,field=fresh,phase=both"},
        {"gaussian:eps=0.1,range=clip@image",
         "gaussian:eps=0.1,p=0.5,range=clip,field=fresh,phase=test@image"},
        {"gaussian:field=fixed,range=cliphigh,eps=3,p=1@image",
         "gaussian:eps=3,p=1,range=cliphigh,field=fixed,phase=test@image"},
        {"saltpepper:eps=10,p=0.5@image+blank:ratio=0.5@text",
         "saltpepper:eps=10,p=0.5,convention=10,phase=test@image"
         "+blank:ratio=0.5,p=0.5,phase=test@text"},
        {"saltpepper:eps=3,convention=100,phase=train",
         "saltpepper:eps=3,p=0.5,convention=100,phase=train"},
        {"blank:ratio=0,p=1", "blank:ratio=0,p=1,phase=test"},
        {"missing:keep=text+gaussian:eps=2@audio",
         "missing:keep=text,phase=both+gaussian:eps=2,p=0.5,range=clip,field=fresh,"
         "phase=test@audio"},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        char got[EUAR_NOISE_TEXT_LEN];
        describe(cases[i].text, got);
        assert_string_equal(got, cases[i].canonical);
        /* The canonical text parses back to itself. */
        char again[EUAR_NOISE_TEXT_LEN];
        describe(got, again);
        assert_string_equal(again, got);
    }
}

static void parse_fields(void **state) {
    NoiseSpec spec;
    assert_int_equal(noise_parse("saltpepper:eps=10,p=0.25@image+blank:ratio=0.5@text", &spec), 0);
    assert_int_equal(spec.count, 2);
    assert_int_equal(spec.term[0].type, EUAR_NOISE_SALTPEPPER);
    assert_true(spec.term[0].eps == 10.0);
    assert_true(spec.term[0].p == 0.25);
    assert_int_equal(spec.term[0].convention, 10);
    assert_int_equal(spec.term[0].phase, EUAR_PHASE_TEST);
    assert_string_equal(spec.term[0].modality, "image");
    assert_int_equal(spec.term[1].type, EUAR_NOISE_BLANK);
    assert_true(spec.term[1].ratio == 0.5);
    assert_string_equal(spec.term[1].modality, "text");

    assert_int_equal(noise_parse("missing:keep=text,audio,phase=test", &spec), 0);
    assert_int_equal(spec.count, 1);
    assert_int_equal(spec.term[0].num_keep, 2);
    assert_string_equal(spec.term[0].keep[0], "text");
    assert_string_equal(spec.term[0].keep[1], "audio");
    assert_int_equal(spec.term[0].phase, EUAR_PHASE_TEST);

    assert_int_equal(noise_parse("missing:keep=text", &spec), 0);
    assert_int_equal(spec.term[0].phase, EUAR_PHASE_BOTH);
    assert_int_equal(noise_parse("gaussian:eps=5", &spec), 0);
    assert_true(spec.term[0].p == 0.5);
    assert_true(spec.term[0].scale == 0.0);
    assert_int_equal(spec.term[0].phase, EUAR_PHASE_TEST);
}

static void parse_rejections(void **state) {
    static const struct {
        const char *text, *part;
    } cases[] = {
        {"fog:eps=1", "unknown noise type 'fog'"},
        {"gaussian:eps=1,sigma=2@image", "unknown key 'sigma'"},
        {"gaussian:eps=1,sigma@image", "unknown key 'sigma'"},
        {"missing:keep=text,phase=test,clip", "unknown key 'clip'"},
        {"gaussian:eps=@image", "key 'eps' has no value"},
        {"gaussian:p=0.5,eps@image", "key 'eps' has no value"},
        {"gaussian:eps=-1@image", "negative eps in 'eps=-1'"},
        {"gaussian:eps=abc@image", "'eps=abc' is not a finite number"},
        {"gaussian:eps=inf@image", "'eps=inf' is not a finite number"},
        {"blank:ratio=1.5@text", "ratio outside [0, 1] in 'ratio=1.5'"},
        {"blank:ratio=-0.1@text", "ratio outside [0, 1] in 'ratio=-0.1'"},
        {"gaussian:eps=1,p=2@image", "p outside [0, 1] in 'p=2'"},
        {"saltpepper:eps=1,p=-1@image", "p outside [0, 1] in 'p=-1'"},
        {"missing:keep=text,phase=later", "invalid phase 'later'"},
        {"missing:keep=", "empty keep list"},
        {"missing:keep=,phase=test", "empty keep list"},
        {"missing:keep=text,text", "modality 'text' is listed twice"},
        {"missing:keep=text,audio,text", "modality 'text' is listed twice"},
        {"missing", "missing needs keep="},
        {"missing:phase=test", "missing needs keep="},
        {"missing:keep=text@audio", "missing takes no '@audio'"},
        {"gaussian:p=0.5@image", "gaussian needs eps="},
        {"saltpepper@image", "saltpepper needs eps="},
        {"blank:p=1@text", "blank needs ratio="},
        {"missing:keep=text+", "empty term"},
        {"+missing:keep=text", "empty term"},
        {"gaussian:eps=1,eps=2@image", "key 'eps' is given twice"},
        {"gaussian:eps=1,range=fold@image", "invalid range 'fold'"},
        {"gaussian:eps=1,field=sometimes@image", "invalid field 'sometimes'"},
        {"gaussian:eps=1,field=fixed,field=fresh@image", "key 'field' is given twice"},
        {"saltpepper:eps=1,field=fixed@image", "unknown key 'field' for type saltpepper"},
        {"blank:ratio=0.5,eps=1@text", "unknown key 'eps' for type blank"},
        {"blank:ratio=2,p=1@text", "ratio outside [0, 1] in 'ratio=2'"},
        {"saltpepper:eps=-3@image", "negative eps in 'eps=-3'"},
        {"saltpepper:eps=1,scale=2@image", "unknown key 'scale' for type saltpepper"},
        {"saltpepper:eps=1,convention=1000@image", "invalid convention '1000'"},
        {"gaussian:eps= 5@image", "'eps= 5' is not a finite number"},
        {"gaussian:eps=0x10@image", "'eps=0x10' is not a finite number"},
        {"gaussian:eps=1e-400@image", "'eps=1e-400' is not a finite number"},
        {"gaussian:eps=1e308,scale=10@image", "'eps=1e308' is above the maximum of 1e6"},
        {"gaussian:eps=5,scale=1e7@image", "'scale=1e7' is above the maximum of 1e6"},
        {"gaussian:eps=1,scale=0@image", "scale must be positive"},
        {"gaussian:eps=1@", "invalid modality '' after '@'"},
        {"gaussian:eps=1@im age", "invalid modality 'im age'"},
        {"missing:keep=text+missing:keep=audio", "more than one missing term"},
        {"gaussian:eps=1,,p=1@image", "empty item between commas"},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        NoiseSpec spec;
        err_clear();
        int rc = noise_parse(cases[i].text, &spec);
        if (rc != -1)
            fail_msg("accepted bad spec '%s'", cases[i].text);
        assert_int_equal(spec.count, 0);
        const char *msg = err_get();
        if (strstr(msg, cases[i].part) == NULL)
            fail_msg("message for '%s' lacks \"%s\": %s", cases[i].text, cases[i].part, msg);
        char quoted[256];
        snprintf(quoted, sizeof(quoted), "'%s'", cases[i].text);
        if (strstr(msg, quoted) == NULL)
            fail_msg("message for '%s' does not quote the spec: %s", cases[i].text, msg);
    }
}

static void parse_too_many_terms(void **state) {
    char text[512] = "missing:keep=text";
    for (int i = 0; i < EUAR_NOISE_MAX_TERMS; i++)
        strcat(text, "+gaussian:eps=1@image");
    NoiseSpec spec;
    assert_int_equal(noise_parse(text, &spec), -1);
    assert_non_null(strstr(err_get(), "more than 8 terms"));
}

/* ---- dataset checks ---- */

static const char *const check_names[] = {"text", "audio", "vision"};
static const ModalityKind check_kinds[] = {EUAR_KIND_TOKENS, EUAR_KIND_FEATURES,
                                           EUAR_KIND_IMAGE};

static int check_spec(const char *text) {
    NoiseSpec spec;
    assert_int_equal(noise_parse(text, &spec), 0);
    return noise_check_names(&spec, check_names, check_kinds, 3);
}

static void check_names_valid(void **state) {
    assert_int_equal(check_spec("missing:keep=text,vision"), 0);
    assert_int_equal(check_spec("gaussian:eps=5@vision"), 0);
    assert_int_equal(check_spec("gaussian:eps=5@audio"), 0);
    assert_int_equal(check_spec("saltpepper:eps=5"), 0);
    assert_int_equal(check_spec("blank:ratio=0.5@text"), 0);
    assert_int_equal(check_spec("none"), 0);
}

static void check_names_reject(void **state) {
    static const struct {
        const char *text, *part;
    } cases[] = {
        {"missing:keep=depth", "keep names modality 'depth'"},
        {"missing:keep=text,depth", "keep names modality 'depth'"},
        {"gaussian:eps=1@depth", "gaussian@depth names a modality the dataset does not have"},
        {"saltpepper:eps=1@audio", "applies to image modalities, but 'audio' is features"},
        {"blank:ratio=0.5@vision", "applies to tokens or features modalities"},
        {"gaussian:eps=1@text", "applies to image or features modalities, but 'text' is tokens"},
        {"saltpepper:eps=1@text", "applies to image modalities, but 'text' is tokens"},
        {"blank:ratio=0.1@depth", "blank@depth names a modality the dataset does not have"},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        err_clear();
        assert_int_equal(check_spec(cases[i].text), -1);
        const char *msg = err_get();
        if (strstr(msg, cases[i].part) == NULL)
            fail_msg("message for '%s' lacks \"%s\": %s", cases[i].text, cases[i].part, msg);
        if (strstr(msg, "text (tokens), audio (features), vision (image)") == NULL)
            fail_msg("message for '%s' does not list the modalities: %s", cases[i].text, msg);
    }
}

static void check_names_image_keys(void **state) {
    static const char *const specs[] = {"gaussian:eps=1,scale=2@audio",
                                        "gaussian:eps=1,wrap@audio",
                                        "gaussian:eps=1,range=cliphigh@audio"};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(specs); i++) {
        err_clear();
        assert_int_equal(check_spec(specs[i]), -1);
        if (strstr(err_get(), "scale= and range= of gaussian noise apply to image") == NULL)
            fail_msg("message for '%s': %s", specs[i], err_get());
    }
    /* Without '@' the same keys act on the image modalities only. */
    assert_int_equal(check_spec("gaussian:eps=1,scale=2,wrap"), 0);
    assert_int_equal(check_spec("gaussian:eps=1,field=fixed@audio"), 0);
}

static void check_names_no_fitting_kind(void **state) {
    static const char *const names[] = {"text", "audio"};
    static const ModalityKind kinds[] = {EUAR_KIND_FEATURES, EUAR_KIND_FEATURES};
    NoiseSpec spec;
    assert_int_equal(noise_parse("saltpepper:eps=1", &spec), 0);
    assert_int_equal(noise_check_names(&spec, names, kinds, 2), -1);
    assert_non_null(strstr(err_get(), "the dataset has none"));
}

/* ---- fixed missing on a hand-made dataset ---- */

#define TEST_N 7
/* Splits of the seven samples: train, train, valid, test, train, test, valid. */
static const uint8_t test_splits[TEST_N] = {EUAR_SPLIT_TRAIN, EUAR_SPLIT_TRAIN, EUAR_SPLIT_VALID,
                                            EUAR_SPLIT_TEST,  EUAR_SPLIT_TRAIN, EUAR_SPLIT_TEST,
                                            EUAR_SPLIT_VALID};

/* Three modalities of the three kinds: text tokens [N, 5], audio features [N, 3, 2] and vision
 * images [N, 2, 2, 3], every value non-zero. */
static void dataset_make(Dataset *ds) {
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "tiny");
    ds->task = EUAR_TASK_REGRESSION;
    ds->n = TEST_N;
    ds->split = xmalloc(TEST_N);
    memcpy(ds->split, test_splits, TEST_N);
    ds->ids = xcalloc(TEST_N, sizeof(char *));
    ds->labels = xcalloc(TEST_N, sizeof(float));
    for (int i = 0; i < TEST_N; i++) {
        char id[16];
        snprintf(id, sizeof(id), "s%d", i);
        ds->ids[i] = xstrdup(id);
    }
    ds->num_modalities = 3;

    Modality *text = &ds->mod[0];
    snprintf(text->name, EUAR_NAME_LEN, "text");
    text->kind = EUAR_KIND_TOKENS;
    text->t = 5;
    text->d = 1;
    text->vocab = 50;
    text->tokens = xmalloc(TEST_N * 5 * sizeof(int32_t));
    for (int i = 0; i < TEST_N * 5; i++)
        text->tokens[i] = 2 + i % 40;

    Modality *audio = &ds->mod[1];
    snprintf(audio->name, EUAR_NAME_LEN, "audio");
    audio->kind = EUAR_KIND_FEATURES;
    audio->t = 3;
    audio->d = 2;
    audio->features = xmalloc(TEST_N * 6 * sizeof(float));
    for (int i = 0; i < TEST_N * 6; i++)
        audio->features[i] = 0.25f + (float)i;

    Modality *vision = &ds->mod[2];
    snprintf(vision->name, EUAR_NAME_LEN, "vision");
    vision->kind = EUAR_KIND_IMAGE;
    vision->c = 2;
    vision->h = 2;
    vision->w = 3;
    vision->pixels = xmalloc(TEST_N * 12);
    for (int i = 0; i < TEST_N * 12; i++)
        vision->pixels[i] = (uint8_t)(1 + (i * 7) % 250);

    for (int m = 0; m < 3; m++) {
        Modality *mod = &ds->mod[m];
        mod->available = xmalloc(TEST_N);
        memset(mod->available, 1, TEST_N);
        if (mod->kind != EUAR_KIND_IMAGE) {
            mod->lengths = xmalloc(TEST_N * sizeof(int32_t));
            for (int i = 0; i < TEST_N; i++)
                mod->lengths[i] = 1 + i % mod->t;
        }
    }
}

static void dataset_release(Dataset *ds) {
    for (int i = 0; i < ds->n; i++)
        free(ds->ids[i]);
    free(ds->ids);
    free(ds->split);
    free(ds->labels);
    for (int m = 0; m < ds->num_modalities; m++) {
        free(ds->mod[m].features);
        free(ds->mod[m].pixels);
        free(ds->mod[m].tokens);
        free(ds->mod[m].lengths);
        free(ds->mod[m].available);
    }
    memset(ds, 0, sizeof(*ds));
}

/* Bytes per sample of the values of a modality. */
static size_t sample_bytes(const Modality *m) {
    switch (m->kind) {
    case EUAR_KIND_FEATURES:
        return (size_t)m->t * (size_t)m->d * sizeof(float);
    case EUAR_KIND_IMAGE:
        return (size_t)m->c * (size_t)m->h * (size_t)m->w;
    case EUAR_KIND_TOKENS:
        return (size_t)m->t * sizeof(int32_t);
    }
    return 0;
}

static uint8_t *sample_values(const Modality *m, int i) {
    uint8_t *base = m->features ? (uint8_t *)m->features
                    : m->pixels ? m->pixels
                                : (uint8_t *)m->tokens;
    return base + (size_t)i * sample_bytes(m);
}

/* Runs noise_apply_chunk over every modality in two chunks, [0, 3) and [3, N), as the reader
 * would, with each chunk's pointers starting at its first sample. */
static int apply_in_chunks(const NoiseSpec *spec, Dataset *ds) {
    NoiseContext ctx = {.spec = spec, .seed = 7};
    const int bounds[3] = {0, 3, TEST_N};
    for (int m = 0; m < ds->num_modalities; m++) {
        for (int c = 0; c < 2; c++) {
            int first = bounds[c], count = bounds[c + 1] - bounds[c];
            Modality chunk = ds->mod[m];
            size_t row = sample_bytes(&chunk);
            if (chunk.features)
                chunk.features += (size_t)first * row / sizeof(float);
            if (chunk.pixels)
                chunk.pixels += (size_t)first * row;
            if (chunk.tokens)
                chunk.tokens += (size_t)first * row / sizeof(int32_t);
            if (chunk.lengths)
                chunk.lengths += first;
            chunk.available += first;
            if (noise_apply_chunk(&ctx, ds, m, first, count, &chunk) != 0)
                return -1;
        }
    }
    return 0;
}

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* Checks every sample of every modality after `spec` against the untouched copy `orig`:
 * a modality outside `keep` is zeroed with availability 0 where the split is in `phase`, and
 * everything else is bit-identical. Lengths never change. */
static void expect_missing(const Dataset *ds, const Dataset *orig, const char *keep[], int nkeep,
                           NoisePhase phase) {
    for (int m = 0; m < ds->num_modalities; m++) {
        const Modality *got = &ds->mod[m], *was = &orig->mod[m];
        int kept = 0;
        for (int k = 0; k < nkeep; k++)
            kept |= strcmp(keep[k], got->name) == 0;
        if (got->lengths)
            assert_memory_equal(got->lengths, was->lengths, TEST_N * sizeof(int32_t));
        for (int i = 0; i < TEST_N; i++) {
            int dropped = !kept && noise_phase_covers(phase, (SplitId)ds->split[i]);
            size_t row = sample_bytes(got);
            if (dropped) {
                if (!all_zero(sample_values(got, i), row))
                    fail_msg("%s sample %d is not zeroed", got->name, i);
                assert_int_equal(got->available[i], 0);
            } else {
                assert_memory_equal(sample_values(got, i), sample_values(was, i), row);
                assert_int_equal(got->available[i], 1);
            }
        }
    }
}

static void missing_all_subsets(void **state) {
    static const char *const names[] = {"text", "audio", "vision"};
    Dataset orig;
    dataset_make(&orig);
    for (int mask = 1; mask < 8; mask++) {
        const char *keep[3];
        int nkeep = 0;
        char text[128] = "missing:keep=";
        for (int b = 0; b < 3; b++)
            if (mask & (1 << b)) {
                strcat(text, nkeep ? "," : "");
                strcat(text, names[b]);
                keep[nkeep++] = names[b];
            }
        NoiseSpec spec;
        assert_int_equal(noise_parse(text, &spec), 0);
        Dataset ds;
        dataset_make(&ds);
        assert_int_equal(noise_check_dataset(&spec, &ds), 0);
        assert_int_equal(apply_in_chunks(&spec, &ds), 0);
        expect_missing(&ds, &orig, keep, nkeep, EUAR_PHASE_BOTH);
        dataset_release(&ds);
    }
    dataset_release(&orig);
}

static void missing_phase_train(void **state) {
    const char *keep[] = {"audio"};
    Dataset orig, ds;
    dataset_make(&orig);
    dataset_make(&ds);
    NoiseSpec spec;
    assert_int_equal(noise_parse("missing:keep=audio,phase=train", &spec), 0);
    assert_int_equal(apply_in_chunks(&spec, &ds), 0);
    expect_missing(&ds, &orig, keep, 1, EUAR_PHASE_TRAIN);
    /* Sample 3 is a test sample, sample 2 a valid sample. */
    assert_int_equal(ds.mod[0].available[3], 1);
    assert_int_equal(ds.mod[0].available[2], 0);
    dataset_release(&ds);
    dataset_release(&orig);
}

static void missing_phase_test(void **state) {
    const char *keep[] = {"text", "vision"};
    Dataset orig, ds;
    dataset_make(&orig);
    dataset_make(&ds);
    NoiseSpec spec;
    assert_int_equal(noise_parse("missing:keep=text,vision,phase=test", &spec), 0);
    assert_int_equal(apply_in_chunks(&spec, &ds), 0);
    expect_missing(&ds, &orig, keep, 2, EUAR_PHASE_TEST);
    assert_int_equal(ds.mod[1].available[5], 0);
    assert_int_equal(ds.mod[1].available[0], 1);
    assert_int_equal(ds.mod[1].available[2], 1);
    dataset_release(&ds);
    dataset_release(&orig);
}

static void clean_spec_changes_nothing(void **state) {
    const char *keep[] = {"text", "audio", "vision"};
    Dataset orig, ds;
    dataset_make(&orig);
    dataset_make(&ds);
    NoiseSpec spec;
    assert_int_equal(noise_parse("none", &spec), 0);
    assert_int_equal(apply_in_chunks(&spec, &ds), 0);
    expect_missing(&ds, &orig, keep, 3, EUAR_PHASE_BOTH);
    dataset_release(&ds);
    dataset_release(&orig);
}

static void apply_wrong_kind_fails(void **state) {
    /* The reader applies noise before noise_check_dataset() runs, so the transform itself
     * rejects a term whose "@modality" has the wrong kind. */
    static const struct {
        const char *spec, *part;
    } cases[] = {
        {"blank:ratio=0.5@vision", "blank noise cannot apply to modality 'vision' of kind image"},
        {"saltpepper:eps=5@audio", "saltpepper noise cannot apply to modality 'audio'"},
        {"gaussian:eps=5@text", "gaussian noise cannot apply to modality 'text' of kind tokens"},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        Dataset ds;
        dataset_make(&ds);
        NoiseSpec spec;
        assert_int_equal(noise_parse(cases[i].spec, &spec), 0);
        ds.split[0] = EUAR_SPLIT_TEST;
        err_clear();
        assert_int_equal(apply_in_chunks(&spec, &ds), -1);
        if (strstr(err_get(), cases[i].part) == NULL)
            fail_msg("message for '%s' lacks \"%s\": %s", cases[i].spec, cases[i].part,
                     err_get());
        dataset_release(&ds);
    }
}

/* ---- seeded helpers ---- */

static void sample_stream_keys(void **state) {
    RngStream a = noise_sample_stream(3, 0, "vid_1[4]", "text");
    RngStream b = noise_sample_stream(3, 0, "vid_1[4]", "text");
    assert_memory_equal(&a, &b, sizeof(a));
    RngStream others[] = {
        noise_sample_stream(4, 0, "vid_1[4]", "text"),
        noise_sample_stream(3, 1, "vid_1[4]", "text"),
        noise_sample_stream(3, 0, "vid_1[5]", "text"),
        noise_sample_stream(3, 0, "vid_1[4]", "audio"),
    };
    uint32_t first[4], other[4];
    rng_block(a, 0, 0, 0, 0, first);
    for (size_t i = 0; i < EUAR_ARRAY_LEN(others); i++) {
        rng_block(others[i], 0, 0, 0, 0, other);
        if (memcmp(first, other, sizeof(first)) == 0)
            fail_msg("stream %zu draws the same block as the reference stream", i);
    }
}

static void phase_coverage(void **state) {
    assert_true(noise_phase_covers(EUAR_PHASE_TRAIN, EUAR_SPLIT_TRAIN));
    assert_true(noise_phase_covers(EUAR_PHASE_TRAIN, EUAR_SPLIT_VALID));
    assert_false(noise_phase_covers(EUAR_PHASE_TRAIN, EUAR_SPLIT_TEST));
    assert_false(noise_phase_covers(EUAR_PHASE_TEST, EUAR_SPLIT_TRAIN));
    assert_false(noise_phase_covers(EUAR_PHASE_TEST, EUAR_SPLIT_VALID));
    assert_true(noise_phase_covers(EUAR_PHASE_TEST, EUAR_SPLIT_TEST));
    for (int s = 0; s < EUAR_SPLIT_COUNT; s++)
        assert_true(noise_phase_covers(EUAR_PHASE_BOTH, (SplitId)s));
}

/* ---- statistics of gaussian, salt-and-pepper and blank noise ---- */

/* Fails unless `hits` of `trials` lie within 5 standard deviations of the binomial mean
 * trials * prob. With prob 0 or 1 the count must be exact. */
static void expect_binomial(const char *what, long hits, long trials, double prob) {
    double mean = (double)trials * prob;
    double sd = sqrt((double)trials * prob * (1.0 - prob));
    if (fabs((double)hits - mean) > 5.0 * sd + 1e-9)
        fail_msg("%s: %ld of %ld, expected %.1f +- %.1f (5 sd)", what, hits, trials, mean,
                 5.0 * sd);
}

/* A dataset of one modality and n samples, every sample in split test, ids "id0", "id1", ...
 * Shape: image [a, b, c] as (C, H, W); features a steps of width b; tokens a steps. Values
 * are zero and lengths full; the caller fills them. */
static void single_make(Dataset *ds, const char *dataset_name, const char *modality,
                        ModalityKind kind, int n, int a, int b, int c) {
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "%s", dataset_name);
    ds->task = EUAR_TASK_REGRESSION;
    ds->n = n;
    ds->split = xmalloc((size_t)n);
    memset(ds->split, EUAR_SPLIT_TEST, (size_t)n);
    ds->ids = xcalloc((size_t)n, sizeof(char *));
    ds->labels = xcalloc((size_t)n, sizeof(float));
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "id%d", i);
        ds->ids[i] = xstrdup(id);
    }
    ds->num_modalities = 1;
    Modality *m = &ds->mod[0];
    snprintf(m->name, EUAR_NAME_LEN, "%s", modality);
    m->kind = kind;
    if (kind == EUAR_KIND_IMAGE) {
        m->c = a;
        m->h = b;
        m->w = c;
        m->pixels = xcalloc((size_t)n * (size_t)(a * b * c), 1);
    } else {
        m->t = a;
        m->d = kind == EUAR_KIND_FEATURES ? b : 1;
        if (kind == EUAR_KIND_FEATURES)
            m->features = xcalloc((size_t)n * (size_t)(a * b), sizeof(float));
        else {
            m->vocab = 100;
            m->tokens = xcalloc((size_t)n * (size_t)a, sizeof(int32_t));
        }
        m->lengths = xmalloc((size_t)n * sizeof(int32_t));
        for (int i = 0; i < n; i++)
            m->lengths[i] = a;
    }
    m->available = xmalloc((size_t)n);
    memset(m->available, 1, (size_t)n);
}

/* Deep copy of the sample arrays of `src` (same metadata pointers are not shared). */
static void dataset_copy(Dataset *dst, const Dataset *src) {
    *dst = *src;
    dst->split = xmalloc((size_t)src->n);
    memcpy(dst->split, src->split, (size_t)src->n);
    dst->labels = xcalloc((size_t)src->n, sizeof(float));
    dst->ids = xcalloc((size_t)src->n, sizeof(char *));
    for (int i = 0; i < src->n; i++)
        dst->ids[i] = xstrdup(src->ids[i]);
    for (int k = 0; k < src->num_modalities; k++) {
        const Modality *s = &src->mod[k];
        Modality *d = &dst->mod[k];
        size_t bytes = (size_t)src->n * sample_bytes(s);
        d->features = NULL;
        d->pixels = NULL;
        d->tokens = NULL;
        if (s->features)
            d->features = memcpy(xmalloc(bytes), s->features, bytes);
        if (s->pixels)
            d->pixels = memcpy(xmalloc(bytes), s->pixels, bytes);
        if (s->tokens)
            d->tokens = memcpy(xmalloc(bytes), s->tokens, bytes);
        d->lengths = NULL;
        if (s->lengths)
            d->lengths = memcpy(xmalloc((size_t)src->n * sizeof(int32_t)), s->lengths,
                                (size_t)src->n * sizeof(int32_t));
        d->available = memcpy(xmalloc((size_t)src->n), s->available, (size_t)src->n);
    }
}

/* Runs noise_apply_chunk over every modality of `ds` in chunks of `chunk` samples, with
 * each chunk's pointers starting at its first sample as the reader sets them. */
static int apply_chunked(const NoiseContext *ctx, Dataset *ds, int chunk) {
    for (int m = 0; m < ds->num_modalities; m++) {
        for (int first = 0; first < ds->n; first += chunk) {
            int count = EUAR_MIN(chunk, ds->n - first);
            Modality part = ds->mod[m];
            size_t row = sample_bytes(&part);
            if (part.features)
                part.features += (size_t)first * row / sizeof(float);
            if (part.pixels)
                part.pixels += (size_t)first * row;
            if (part.tokens)
                part.tokens += (size_t)first * row / sizeof(int32_t);
            if (part.lengths)
                part.lengths += first;
            part.available += first;
            if (noise_apply_chunk((void *)ctx, ds, m, first, count, &part) != 0)
                return -1;
        }
    }
    return 0;
}

/* Parses `text` and applies it to `ds` in chunks of 64 with seed 11. */
static int apply_text(const char *text, Dataset *ds, const float *feature_std) {
    NoiseSpec spec;
    assert_int_equal(noise_parse(text, &spec), 0);
    NoiseContext ctx = {.spec = &spec, .seed = 11};
    ctx.feature_std[0] = feature_std;
    return apply_chunked(&ctx, ds, 64);
}

/* Number of samples of modality 0 whose values differ from `orig`. */
static long changed_samples(const Dataset *ds, const Dataset *orig) {
    long changed = 0;
    const Modality *m = &ds->mod[0];
    for (int i = 0; i < ds->n; i++)
        changed += memcmp(sample_values(m, i), sample_values(&orig->mod[0], i),
                          sample_bytes(m)) != 0;
    return changed;
}

static void fill_pixels(Dataset *ds, const uint8_t *levels) {
    Modality *m = &ds->mod[0];
    size_t plane = (size_t)m->h * (size_t)m->w;
    for (int i = 0; i < ds->n; i++)
        for (int c = 0; c < m->c; c++)
            memset(m->pixels + ((size_t)i * (size_t)m->c + (size_t)c) * plane, levels[c], plane);
}

static void gaussian_gate_share(void **state) {
    static const struct {
        const char *spec;
        double p;
    } cases[] = {
        {"gaussian:eps=1,scale=10,p=0.3@image", 0.3},
        {"gaussian:eps=1,scale=10,p=0.5@image", 0.5},
        {"gaussian:eps=1,scale=10,p=1@image", 1.0},
        {"gaussian:eps=1,scale=10,p=0@image", 0.0},
    };
    const uint8_t grey[1] = {128};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        Dataset ds, orig;
        single_make(&ds, "tiny", "image", EUAR_KIND_IMAGE, 2000, 1, 4, 4);
        fill_pixels(&ds, grey);
        dataset_copy(&orig, &ds);
        assert_int_equal(apply_text(cases[i].spec, &ds, NULL), 0);
        /* A gated 4x4 image with std 10 keeps every level with probability below 1e-20. */
        expect_binomial(cases[i].spec, changed_samples(&ds, &orig), ds.n, cases[i].p);
        dataset_release(&orig);
        dataset_release(&ds);
    }
}

static void gaussian_image_std(void **state) {
    /* Mid-grey channels 120, 128, 136 and std 20: a level leaves [0, 255] only beyond 6 sd. */
    const uint8_t levels[3] = {120, 128, 136};
    Dataset ds;
    single_make(&ds, "tiny", "image", EUAR_KIND_IMAGE, 400, 3, 8, 8);
    fill_pixels(&ds, levels);
    assert_int_equal(apply_text("gaussian:eps=2,scale=10,p=1@image", &ds, NULL), 0);

    const Modality *m = &ds.mod[0];
    const size_t plane = 64;
    double sum = 0.0, sum2 = 0.0;
    long n = 0;
    for (int i = 0; i < ds.n; i++) {
        const uint8_t *img = m->pixels + (size_t)i * 3 * plane;
        for (size_t k = 0; k < plane; k++) {
            int offset = (int)img[k] - levels[0];
            for (int c = 1; c < 3; c++)
                if ((int)img[c * plane + k] - levels[c] != offset)
                    fail_msg("sample %d position %zu: channel %d moved by %d, channel 0 by %d",
                             i, k, c, (int)img[c * plane + k] - levels[c], offset);
            sum += offset;
            sum2 += (double)offset * offset;
            n++;
        }
    }

    double mean = sum / (double)n;
    double sd = sqrt(sum2 / (double)n - mean * mean);
    /* Truncation of level + N(0, 20^2) toward zero gives the level plus floor(noise), whose
     * mean is -0.5 and variance 20^2 + 1/12. */
    double sigma = sqrt(400.0 + 1.0 / 12.0);
    if (fabs(mean + 0.5) > 5.0 * sigma / sqrt((double)n))
        fail_msg("mean offset %.3f, expected -0.5 +- %.3f", mean, 5.0 * sigma / sqrt((double)n));
    if (fabs(sd - sigma) > 5.0 * sigma / sqrt(2.0 * (double)n))
        fail_msg("offset std %.3f, expected %.3f +- %.3f", sd, sigma,
                 5.0 * sigma / sqrt(2.0 * (double)n));
    dataset_release(&ds);
}

/* Expected level of clean level x after gaussian noise whose floor is f (known from a channel
 * at 128 that never leaves [0, 255]), under each range. The sum x + noise is negative exactly
 * when x + f < 0, and then truncation toward zero gives x + f + 1. */
static int expected_level(int x, int f, NoiseRange range) {
    int truncated = x + f >= 0 ? x + f : x + f + 1;
    if (range == EUAR_RANGE_CLIP)
        return EUAR_MAX(0, EUAR_MIN(255, truncated));
    if (range == EUAR_RANGE_CLIP_HIGH && x + f >= 255)
        return 255;
    return ((truncated % 256) + 256) % 256;
}

static void gaussian_image_ranges(void **state) {
    static const char *const specs[] = {"gaussian:eps=2,scale=10,p=1,range=clip@image",
                                        "gaussian:eps=2,scale=10,p=1,range=wrap@image",
                                        "gaussian:eps=2,scale=10,p=1,range=cliphigh@image"};
    static const NoiseRange ranges[] = {EUAR_RANGE_CLIP, EUAR_RANGE_WRAP, EUAR_RANGE_CLIP_HIGH};
    const uint8_t levels[3] = {128, 3, 250};
    for (int r = 0; r < 3; r++) {
        Dataset ds;
        single_make(&ds, "tiny", "image", EUAR_KIND_IMAGE, 200, 3, 4, 4);
        fill_pixels(&ds, levels);
        assert_int_equal(apply_text(specs[r], &ds, NULL), 0);
        const size_t plane = 16;
        long low = 0, high = 0;
        for (int i = 0; i < ds.n; i++) {
            const uint8_t *img = ds.mod[0].pixels + (size_t)i * 3 * plane;
            for (size_t k = 0; k < plane; k++) {
                int f = (int)img[k] - 128;
                for (int c = 1; c < 3; c++) {
                    int want = expected_level(levels[c], f, ranges[r]);
                    if (img[c * plane + k] != want)
                        fail_msg("%s: sample %d position %zu channel %d is %d, expected %d",
                                 specs[r], i, k, c, img[c * plane + k], want);
                }
                low += levels[1] + f < 0;
                high += levels[2] + f > 255;
            }
        }
        /* With std 20 about 44% of the level-3 positions go below 0 and 40% of the level-250
         * ones above 255, so every range rule above was exercised. */
        assert_true(low > 500);
        assert_true(high > 500);
        dataset_release(&ds);
    }
}

static void gaussian_image_fields(void **state) {
    const uint8_t grey[2] = {128, 100};
    for (int fixed = 0; fixed < 2; fixed++) {
        Dataset ds, orig;
        single_make(&ds, "tiny", "image", EUAR_KIND_IMAGE, 60, 2, 4, 4);
        fill_pixels(&ds, grey);
        dataset_copy(&orig, &ds);
        assert_int_equal(apply_text(fixed ? "gaussian:eps=1,scale=10,field=fixed@image"
                                          : "gaussian:eps=1,scale=10,field=fresh@image",
                                    &ds, NULL),
                         0);
        const Modality *m = &ds.mod[0];
        int reference = -1, gated = 0, equal_pairs = 0;
        for (int i = 0; i < ds.n; i++) {
            if (memcmp(sample_values(m, i), sample_values(&orig.mod[0], i), 32) == 0)
                continue;
            gated++;
            if (reference < 0)
                reference = i;
            else
                equal_pairs += memcmp(sample_values(m, i), sample_values(m, reference), 32) == 0;
        }
        /* p = 0.5 of 60 samples: the gate still acts per sample under both fields. */
        expect_binomial("gated samples", gated, ds.n, 0.5);
        if (fixed)
            assert_int_equal(equal_pairs, gated - 1);
        else
            assert_int_equal(equal_pairs, 0);
        dataset_release(&orig);
        dataset_release(&ds);
    }
}

static void saltpepper_gate_share(void **state) {
    static const struct {
        const char *spec;
        double prob;
    } cases[] = {
        {"saltpepper:eps=3,p=0.5@image", 0.15},
        {"saltpepper:eps=3,p=0.5,convention=10@image", 0.15},
        {"saltpepper:eps=3,p=0.5,convention=100@image", 0.015},
        {"saltpepper:eps=50,p=0.5,convention=100@image", 0.25},
        /* 30 / 10 = 3 is clamped to 1 inside the outer gate: 0.5 * 1. */
        {"saltpepper:eps=30,p=0.5,convention=10@image", 0.5},
        {"saltpepper:eps=30,p=1,convention=10@image", 1.0},
    };
    const uint8_t grey[1] = {128};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        Dataset ds, orig;
        single_make(&ds, "tiny", "image", EUAR_KIND_IMAGE, 4000, 1, 16, 16);
        fill_pixels(&ds, grey);
        dataset_copy(&orig, &ds);
        assert_int_equal(apply_text(cases[i].spec, &ds, NULL), 0);
        /* A corrupted 16x16 image keeps every level with probability 0.9^256 < 1e-11. */
        expect_binomial(cases[i].spec, changed_samples(&ds, &orig), ds.n, cases[i].prob);
        dataset_release(&orig);
        dataset_release(&ds);
    }
}

static void saltpepper_pixel_shares(void **state) {
    const uint8_t levels[3] = {100, 128, 160};
    Dataset ds;
    single_make(&ds, "tiny", "image", EUAR_KIND_IMAGE, 400, 3, 16, 16);
    fill_pixels(&ds, levels);
    assert_int_equal(apply_text("saltpepper:eps=20,p=1@image", &ds, NULL), 0);
    const size_t plane = 256;
    long pepper = 0, salt = 0, positions = 0;
    for (int i = 0; i < ds.n; i++) {
        const uint8_t *img = ds.mod[0].pixels + (size_t)i * 3 * plane;
        for (size_t k = 0; k < plane; k++) {
            int zeros = 0, full = 0, kept = 0;
            for (int c = 0; c < 3; c++) {
                zeros += img[c * plane + k] == 0;
                full += img[c * plane + k] == 255;
                kept += img[c * plane + k] == levels[c];
            }
            if (zeros != 3 && full != 3 && kept != 3)
                fail_msg("sample %d position %zu: channels %d %d %d are not all 0, all 255 or "
                         "all clean", i, k, img[k], img[plane + k], img[2 * plane + k]);
            pepper += zeros == 3;
            salt += full == 3;
            positions++;
        }
    }
    expect_binomial("pepper positions", pepper, positions, 0.05);
    expect_binomial("salt positions", salt, positions, 0.05);
    dataset_release(&ds);
}

/* Tokens 2..91 on the valid steps, padding 0 beyond lengths 5..20. */
static void tokens_make(Dataset *ds, int n) {
    single_make(ds, "tiny", "text", EUAR_KIND_TOKENS, n, 20, 1, 0);
    Modality *m = &ds->mod[0];
    for (int i = 0; i < n; i++) {
        m->lengths[i] = 5 + i % 16;
        for (int s = 0; s < m->lengths[i]; s++)
            m->tokens[i * 20 + s] = 2 + (i * 7 + s) % 90;
    }
}

static void blank_tokens_ratio(void **state) {
    Dataset ds, orig;
    tokens_make(&ds, 1000);
    dataset_copy(&orig, &ds);
    assert_int_equal(apply_text("blank:ratio=0.3,p=1@text", &ds, NULL), 0);
    const Modality *m = &ds.mod[0], *was = &orig.mod[0];
    long blank = 0, valid = 0;
    for (int i = 0; i < ds.n; i++)
        for (int s = 0; s < 20; s++) {
            int32_t got = m->tokens[i * 20 + s], clean = was->tokens[i * 20 + s];
            if (s >= m->lengths[i]) {
                if (got != 0)
                    fail_msg("sample %d padding step %d became %d", i, s, got);
                continue;
            }
            if (got != clean && got != 1)
                fail_msg("sample %d step %d became %d, neither %d nor 1", i, s, got, clean);
            blank += got == 1;
            valid++;
        }
    expect_binomial("blank tokens", blank, valid, 0.3);
    assert_memory_equal(m->lengths, was->lengths, (size_t)ds.n * sizeof(int32_t));
    assert_memory_equal(m->available, was->available, (size_t)ds.n);
    dataset_release(&orig);
    dataset_release(&ds);
}

static void blank_tokens_gate(void **state) {
    Dataset ds, orig;
    tokens_make(&ds, 1000);
    dataset_copy(&orig, &ds);
    assert_int_equal(apply_text("blank:ratio=1,p=0.4@text", &ds, NULL), 0);
    const Modality *m = &ds.mod[0];
    long gated = 0;
    for (int i = 0; i < ds.n; i++) {
        int blank = 0;
        for (int s = 0; s < m->lengths[i]; s++)
            blank += m->tokens[i * 20 + s] == 1;
        /* ratio 1: a gated sample loses every valid token, any other keeps all of them. */
        if (blank != 0 && blank != m->lengths[i])
            fail_msg("sample %d has %d of %d tokens blank", i, blank, m->lengths[i]);
        if (blank == 0)
            assert_memory_equal(sample_values(m, i), sample_values(&orig.mod[0], i), 80);
        gated += blank != 0;
    }
    expect_binomial("gated samples", gated, ds.n, 0.4);
    dataset_release(&orig);
    dataset_release(&ds);
}

/* Features [n, 6, 4] with values 1 + position (never 0), lengths 1..6. */
static void features_make(Dataset *ds, int n) {
    single_make(ds, "tiny", "audio", EUAR_KIND_FEATURES, n, 6, 4, 0);
    Modality *m = &ds->mod[0];
    for (int i = 0; i < n * 24; i++)
        m->features[i] = 1.0f + (float)(i % 97);
    for (int i = 0; i < n; i++)
        m->lengths[i] = 1 + i % 6;
}

static void blank_features_rows(void **state) {
    Dataset ds, orig;
    features_make(&ds, 800);
    dataset_copy(&orig, &ds);
    assert_int_equal(apply_text("blank:ratio=0.25,p=1@audio", &ds, NULL), 0);
    const Modality *m = &ds.mod[0], *was = &orig.mod[0];
    long zero = 0, valid = 0;
    for (int i = 0; i < ds.n; i++)
        for (int s = 0; s < 6; s++) {
            const float *row = m->features + (size_t)(i * 6 + s) * 4;
            const float *clean = was->features + (size_t)(i * 6 + s) * 4;
            int is_zero = row[0] == 0.0f && row[1] == 0.0f && row[2] == 0.0f && row[3] == 0.0f;
            if (s >= m->lengths[i] || !is_zero) {
                if (memcmp(row, clean, 4 * sizeof(float)) != 0)
                    fail_msg("sample %d step %d changed but is not a zero valid row", i, s);
            }
            if (s < m->lengths[i]) {
                zero += is_zero;
                valid++;
            }
        }
    expect_binomial("zero rows", zero, valid, 0.25);
    dataset_release(&orig);
    dataset_release(&ds);
}

/* Features [n, 3, 2]: the first half train with dimension 0 ~ 5 + N(0, 1) and dimension 1
 * ~ -2 + 4 N(0, 1), the second half test with the same law; lengths 1..3. */
static void features_gaussian_make(Dataset *ds, int n) {
    single_make(ds, "tiny", "audio", EUAR_KIND_FEATURES, n, 3, 2, 0);
    Modality *m = &ds->mod[0];
    rng_fill_normal(rng_stream(5, EUAR_RNG_TEST), 0, 0, m->features, (size_t)n * 6);
    for (int i = 0; i < n; i++) {
        ds->split[i] = i < n / 2 ? EUAR_SPLIT_TRAIN : EUAR_SPLIT_TEST;
        m->lengths[i] = 1 + i % 3;
        for (int s = 0; s < 3; s++) {
            float *row = m->features + (size_t)(i * 3 + s) * 2;
            row[0] = 5.0f + row[0];
            row[1] = -2.0f + 4.0f * row[1];
        }
    }
}

static void feature_std_values(void **state) {
    Dataset ds;
    features_gaussian_make(&ds, 2000);
    const Modality *m = &ds.mod[0];
    /* Two-pass reference over the valid steps of the training samples. */
    double mean[2] = {0, 0}, var[2] = {0, 0};
    long steps = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ds.n / 2; i++)
            for (int s = 0; s < m->lengths[i]; s++)
                for (int d = 0; d < 2; d++) {
                    double x = m->features[(i * 3 + s) * 2 + d];
                    if (pass == 0) {
                        mean[d] += x;
                        steps += d == 0;
                    } else {
                        var[d] += (x - mean[d] / steps) * (x - mean[d] / steps);
                    }
                }
    float std[2], streamed[2];
    assert_int_equal(noise_feature_std(&ds, 0, std), 0);
    for (int d = 0; d < 2; d++)
        assert_float_equal(std[d], sqrt(var[d] / steps), 1e-4 * sqrt(var[d] / steps));
    /* The laws give 1 and 4; 2000 steps put the sample std within 5 * std / sqrt(4000). */
    assert_float_equal(std[0], 1.0, 5.0 / sqrt(4000.0));
    assert_float_equal(std[1], 4.0, 20.0 / sqrt(4000.0));

    NoiseFeatureStats st;
    memset(&st, 0, sizeof(st));
    for (int first = 0; first < ds.n; first += 7) {
        Modality part = *m;
        part.features += (size_t)first * 6;
        part.lengths += first;
        part.available += first;
        assert_int_equal(noise_stats_chunk(&st, &ds, 0, first, EUAR_MIN(7, ds.n - first), &part),
                         0);
    }
    assert_int_equal(noise_stats_std(&st, &ds, 0, streamed), 0);
    assert_memory_equal(streamed, std, sizeof(std));
    noise_stats_free(&st);

    /* No training sample: the deviation is undefined. */
    memset(ds.split, EUAR_SPLIT_TEST, (size_t)ds.n);
    err_clear();
    assert_int_equal(noise_feature_std(&ds, 0, std), -1);
    assert_non_null(strstr(err_get(), "no valid step in an available training sample"));
    dataset_release(&ds);
}

static void gaussian_features_std(void **state) {
    Dataset ds, orig;
    features_gaussian_make(&ds, 20000);
    float std[2];
    assert_int_equal(noise_feature_std(&ds, 0, std), 0);
    dataset_copy(&orig, &ds);

    err_clear();
    assert_int_equal(apply_text("gaussian:eps=0.5,p=1@audio", &ds, NULL), -1);
    assert_non_null(strstr(err_get(), "needs the standard deviation of each dimension"));

    assert_int_equal(apply_text("gaussian:eps=0.5,p=1@audio", &ds, std), 0);
    const Modality *m = &ds.mod[0], *was = &orig.mod[0];
    double sum[2] = {0, 0}, sum2[2] = {0, 0};
    long steps = 0;
    for (int i = 0; i < ds.n; i++)
        for (int s = 0; s < 3; s++) {
            const float *row = m->features + (size_t)(i * 3 + s) * 2;
            const float *clean = was->features + (size_t)(i * 3 + s) * 2;
            int noisy = ds.split[i] == EUAR_SPLIT_TEST && s < m->lengths[i];
            if (!noisy) {
                if (memcmp(row, clean, 2 * sizeof(float)) != 0)
                    fail_msg("sample %d step %d changed outside the test split's valid steps",
                             i, s);
                continue;
            }
            for (int d = 0; d < 2; d++) {
                double diff = (double)row[d] - (double)clean[d];
                sum[d] += diff;
                sum2[d] += diff * diff;
            }
            steps++;
        }
    for (int d = 0; d < 2; d++) {
        double want = 0.5 * std[d];
        double mean = sum[d] / steps, sd = sqrt(sum2[d] / steps - mean * mean);
        if (fabs(mean) > 5.0 * want / sqrt((double)steps))
            fail_msg("dimension %d: mean noise %.4f, expected 0 +- %.4f", d, mean,
                     5.0 * want / sqrt((double)steps));
        if (fabs(sd - want) > 5.0 * want / sqrt(2.0 * steps))
            fail_msg("dimension %d: noise std %.4f, expected %.4f +- %.4f", d, sd, want,
                     5.0 * want / sqrt(2.0 * steps));
    }
    dataset_release(&orig);
    dataset_release(&ds);
}

static void zero_level_is_clean(void **state) {
    Dataset ds, orig;
    dataset_make(&ds);
    /* -0.0 survives only when the data are not touched at all. */
    ds.mod[1].features[0] = -0.0f;
    ds.mod[1].features[7] = -0.0f;
    dataset_copy(&orig, &ds);
    NoiseSpec spec;
    assert_int_equal(noise_parse("gaussian:eps=0,p=1,scale=10,phase=both"
                                 "+saltpepper:eps=0,p=1,phase=both"
                                 "+blank:ratio=0,p=1,phase=both", &spec), 0);
    NoiseContext ctx = {.spec = &spec, .seed = 3};
    assert_int_equal(apply_chunked(&ctx, &ds, 2), 0);
    for (int m = 0; m < 3; m++) {
        assert_memory_equal(sample_values(&ds.mod[m], 0), sample_values(&orig.mod[m], 0),
                            (size_t)TEST_N * sample_bytes(&ds.mod[m]));
        assert_memory_equal(ds.mod[m].available, orig.mod[m].available, TEST_N);
    }
    dataset_release(&orig);
    dataset_release(&ds);
}

/* A dataset with an image, a tokens and a features modality and mixed splits, the spec of
 * every type at phase both, applied with `seed` in chunks of `chunk`. */
static void noisy_mixed(Dataset *ds, uint64_t seed, int chunk) {
    Dataset img, tok, feat;
    const uint8_t grey[2] = {90, 170};
    single_make(&img, "synth-mvsa-test", "image", EUAR_KIND_IMAGE, 37, 2, 5, 3);
    fill_pixels(&img, grey);
    tokens_make(&tok, 37);
    features_make(&feat, 37);
    *ds = img;
    ds->num_modalities = 3;
    ds->mod[1] = tok.mod[0];
    ds->mod[2] = feat.mod[0];
    for (int i = 0; i < ds->n; i++)
        ds->split[i] = (uint8_t)(i % 3);
    /* The modality arrays now belong to ds; free only the rest of tok and feat. */
    tok.num_modalities = 0;
    feat.num_modalities = 0;
    dataset_release(&tok);
    dataset_release(&feat);
    float std[4];
    assert_int_equal(noise_feature_std(ds, 2, std), 0);
    NoiseSpec spec;
    assert_int_equal(noise_parse("gaussian:eps=3,p=0.7,phase=both+saltpepper:eps=5,p=0.7,"
                                 "phase=both+blank:ratio=0.4,p=0.7,phase=both", &spec), 0);
    NoiseContext ctx = {.spec = &spec, .seed = seed};
    ctx.feature_std[2] = std;
    assert_int_equal(apply_chunked(&ctx, ds, chunk), 0);
}

static void noise_deterministic(void **state) {
    Dataset whole, single, fives, other;
    noisy_mixed(&whole, 9, 37);
    noisy_mixed(&single, 9, 1);
    noisy_mixed(&fives, 9, 5);
    noisy_mixed(&other, 10, 37);
    int differs = 0;
    for (int m = 0; m < 3; m++) {
        size_t bytes = (size_t)whole.n * sample_bytes(&whole.mod[m]);
        assert_memory_equal(sample_values(&single.mod[m], 0), sample_values(&whole.mod[m], 0),
                            bytes);
        assert_memory_equal(sample_values(&fives.mod[m], 0), sample_values(&whole.mod[m], 0),
                            bytes);
        differs += memcmp(sample_values(&other.mod[m], 0), sample_values(&whole.mod[m], 0),
                          bytes) != 0;
    }
    /* Another noise seed changes every modality. */
    assert_int_equal(differs, 3);
    dataset_release(&whole);
    dataset_release(&single);
    dataset_release(&fives);
    dataset_release(&other);
}

static void noise_phase_respected(void **state) {
    static const struct {
        const char *spec;
        NoisePhase phase;
    } cases[] = {
        {"gaussian:eps=2,scale=10,p=1,phase=train@image", EUAR_PHASE_TRAIN},
        {"gaussian:eps=2,scale=10,p=1@image", EUAR_PHASE_TEST},
        {"saltpepper:eps=20,p=1,phase=train@image", EUAR_PHASE_TRAIN},
        {"saltpepper:eps=20,p=1@image", EUAR_PHASE_TEST},
        {"saltpepper:eps=20,p=1,phase=both@image", EUAR_PHASE_BOTH},
    };
    const uint8_t grey[1] = {128};
    for (size_t c = 0; c < EUAR_ARRAY_LEN(cases); c++) {
        Dataset ds, orig;
        single_make(&ds, "tiny", "image", EUAR_KIND_IMAGE, 30, 1, 16, 16);
        fill_pixels(&ds, grey);
        for (int i = 0; i < ds.n; i++)
            ds.split[i] = (uint8_t)(i % 3);
        dataset_copy(&orig, &ds);
        assert_int_equal(apply_text(cases[c].spec, &ds, NULL), 0);
        for (int i = 0; i < ds.n; i++) {
            int changed = memcmp(sample_values(&ds.mod[0], i), sample_values(&orig.mod[0], i),
                                 256) != 0;
            if (changed != noise_phase_covers(cases[c].phase, (SplitId)ds.split[i]))
                fail_msg("%s: sample %d of split %s changed=%d", cases[c].spec, i,
                         split_name((SplitId)ds.split[i]), changed);
        }
        dataset_release(&orig);
        dataset_release(&ds);
    }
}

static void noise_skips_unavailable(void **state) {
    Dataset ds, orig;
    const uint8_t grey[1] = {0};
    single_make(&ds, "tiny", "image", EUAR_KIND_IMAGE, 20, 1, 4, 4);
    fill_pixels(&ds, grey);
    for (int i = 0; i < ds.n; i += 2)
        ds.mod[0].available[i] = 0;
    dataset_copy(&orig, &ds);
    assert_int_equal(apply_text("gaussian:eps=5,scale=10,p=1+saltpepper:eps=20,p=1@image", &ds,
                                NULL),
                     0);
    for (int i = 0; i < ds.n; i++) {
        int changed = memcmp(sample_values(&ds.mod[0], i), sample_values(&orig.mod[0], i),
                             16) != 0;
        assert_int_equal(changed, i % 2);
        assert_int_equal(ds.mod[0].available[i], i % 2);
    }
    dataset_release(&orig);
    dataset_release(&ds);
}

static void scale_defaults(void **state) {
    assert_true(noise_default_image_scale("synth-mvsa") == 10.0);
    assert_true(noise_default_image_scale("MVSA-Single") == 10.0);
    assert_true(noise_default_image_scale("synth-nyud") == 1.0);
    assert_true(noise_default_image_scale("nyud-v2") == 1.0);
    assert_true(noise_default_image_scale("fmnist-2view") == 10.0);
    assert_true(noise_default_image_scale("synth-mosi") == 0.0);
    assert_true(noise_default_image_scale("") == 0.0);

    static const struct {
        const char *dataset, *spec, *canonical;
    } cases[] = {
        {"synth-mvsa", "gaussian:eps=2@image",
         "gaussian:eps=2,p=0.5,scale=10,range=clip,field=fresh,phase=test@image"},
        {"nyud-v2", "gaussian:eps=2",
         "gaussian:eps=2,p=0.5,scale=1,range=clip,field=fresh,phase=test"},
        {"nyud-v2", "gaussian:eps=2,scale=3@image",
         "gaussian:eps=2,p=0.5,scale=3,range=clip,field=fresh,phase=test@image"},
        {"tiny", "gaussian:eps=2,scale=3@image",
         "gaussian:eps=2,p=0.5,scale=3,range=clip,field=fresh,phase=test@image"},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        Dataset ds;
        single_make(&ds, cases[i].dataset, "image", EUAR_KIND_IMAGE, 2, 1, 2, 2);
        NoiseSpec spec;
        assert_int_equal(noise_parse(cases[i].spec, &spec), 0);
        assert_int_equal(noise_check_dataset(&spec, &ds), 0);
        assert_int_equal(noise_resolve_scales(&spec, &ds), 0);
        char text[EUAR_NOISE_TEXT_LEN];
        noise_describe(&spec, text, sizeof(text));
        assert_string_equal(text, cases[i].canonical);
        dataset_release(&ds);
    }

    /* A features modality takes no scale. */
    Dataset feat;
    features_make(&feat, 2);
    NoiseSpec spec;
    assert_int_equal(noise_parse("gaussian:eps=2@audio", &spec), 0);
    assert_int_equal(noise_resolve_scales(&spec, &feat), 0);
    assert_true(spec.term[0].scale == 0.0);
    dataset_release(&feat);
}

static void scale_missing_fails(void **state) {
    Dataset ds;
    single_make(&ds, "tiny", "image", EUAR_KIND_IMAGE, 4, 1, 2, 2);
    NoiseSpec spec;
    assert_int_equal(noise_parse("gaussian:eps=2@image", &spec), 0);
    err_clear();
    assert_int_equal(noise_check_dataset(&spec, &ds), -1);
    assert_non_null(strstr(err_get(), "needs scale=S, because dataset 'tiny' has no default"));
    err_clear();
    assert_int_equal(noise_resolve_scales(&spec, &ds), -1);
    assert_non_null(strstr(err_get(), "needs scale=S"));
    /* eps = 0 fails the same way, so a sweep stops at its first cell. */
    const char *texts[] = {"gaussian:eps=2@image", "gaussian:eps=0,p=1@image"};
    for (int i = 0; i < 2; i++) {
        err_clear();
        assert_int_equal(apply_text(texts[i], &ds, NULL), -1);
        assert_non_null(strstr(err_get(), "needs scale=S"));
        assert_non_null(strstr(err_get(), "noise spec 'gaussian:eps="));
    }
    dataset_release(&ds);
}

static void needs_feature_std(void **state) {
    Dataset ds;
    dataset_make(&ds);
    static const struct {
        const char *spec;
        int audio;
    } cases[] = {
        {"gaussian:eps=1@audio", 1}, {"gaussian:eps=1", 1}, {"gaussian:eps=0@audio", 0},
        {"gaussian:eps=1@vision", 0}, {"blank:ratio=0.5", 0}, {"none", 0},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        NoiseSpec spec;
        assert_int_equal(noise_parse(cases[i].spec, &spec), 0);
        assert_int_equal(noise_needs_feature_std(&spec, &ds, 1), cases[i].audio);
        assert_int_equal(noise_needs_feature_std(&spec, &ds, 2), 0);
    }
    dataset_release(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_canonical_forms),
        cmocka_unit_test(parse_fields),
        cmocka_unit_test(parse_rejections),
        cmocka_unit_test(parse_too_many_terms),
        cmocka_unit_test(check_names_valid),
        cmocka_unit_test(check_names_reject),
        cmocka_unit_test(check_names_image_keys),
        cmocka_unit_test(check_names_no_fitting_kind),
        cmocka_unit_test(missing_all_subsets),
        cmocka_unit_test(missing_phase_train),
        cmocka_unit_test(missing_phase_test),
        cmocka_unit_test(clean_spec_changes_nothing),
        cmocka_unit_test(apply_wrong_kind_fails),
        cmocka_unit_test(sample_stream_keys),
        cmocka_unit_test(phase_coverage),
        cmocka_unit_test(gaussian_gate_share),
        cmocka_unit_test(gaussian_image_std),
        cmocka_unit_test(gaussian_image_ranges),
        cmocka_unit_test(gaussian_image_fields),
        cmocka_unit_test(saltpepper_gate_share),
        cmocka_unit_test(saltpepper_pixel_shares),
        cmocka_unit_test(blank_tokens_ratio),
        cmocka_unit_test(blank_tokens_gate),
        cmocka_unit_test(blank_features_rows),
        cmocka_unit_test(feature_std_values),
        cmocka_unit_test(gaussian_features_std),
        cmocka_unit_test(zero_level_is_clean),
        cmocka_unit_test(noise_deterministic),
        cmocka_unit_test(noise_phase_respected),
        cmocka_unit_test(noise_skips_unavailable),
        cmocka_unit_test(scale_defaults),
        cmocka_unit_test(scale_missing_fails),
        cmocka_unit_test(needs_feature_std),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
