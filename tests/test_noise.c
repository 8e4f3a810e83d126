/* Noise specs: parsing, canonical text, rejections, dataset checks and fixed missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
        {"gaussian:eps=5@image", "gaussian:eps=5,p=0.5,range=clip,phase=test@image"},
        {"gaussian:eps=1e+1,scale=1,wrap,phase=both",
         "gaussian:eps=10,p=0.5,scale=1,range=wrap,phase=both"},
        {"gaussian:eps=0.1,range=clip@image", "gaussian:eps=0.1,p=0.5,range=clip,phase=test@image"},
        {"saltpepper:eps=10,p=0.5@image+blank:ratio=0.5@text",
         "saltpepper:eps=10,p=0.5,convention=10,phase=test@image"
         "+blank:ratio=0.5,p=0.5,phase=test@text"},
        {"saltpepper:eps=3,convention=100,phase=train",
         "saltpepper:eps=3,p=0.5,convention=100,phase=train"},
        {"blank:ratio=0,p=1", "blank:ratio=0,p=1,phase=test"},
        {"missing:keep=text+gaussian:eps=2@audio",
         "missing:keep=text,phase=both+gaussian:eps=2,p=0.5,range=clip,phase=test@audio"},
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
        {"saltpepper:eps=1,convention=1000@image", "invalid convention '1000'"},
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

static void unimplemented_type_fails(void **state) {
    static const char *const specs[] = {"gaussian:eps=5@vision", "saltpepper:eps=5@vision",
                                        "blank:ratio=0.5@text"};
    static const char *const types[] = {"gaussian", "saltpepper", "blank"};
    for (int i = 0; i < 3; i++) {
        Dataset ds;
        dataset_make(&ds);
        NoiseSpec spec;
        assert_int_equal(noise_parse(specs[i], &spec), 0);
        assert_int_equal(apply_in_chunks(&spec, &ds), -1);
        char expected[96];
        snprintf(expected, sizeof(expected), "noise type '%s' is not implemented yet", types[i]);
        if (strstr(err_get(), expected) == NULL)
            fail_msg("message lacks \"%s\": %s", expected, err_get());
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_canonical_forms),
        cmocka_unit_test(parse_fields),
        cmocka_unit_test(parse_rejections),
        cmocka_unit_test(parse_too_many_terms),
        cmocka_unit_test(check_names_valid),
        cmocka_unit_test(check_names_reject),
        cmocka_unit_test(check_names_no_fitting_kind),
        cmocka_unit_test(missing_all_subsets),
        cmocka_unit_test(missing_phase_train),
        cmocka_unit_test(missing_phase_test),
        cmocka_unit_test(clean_spec_changes_nothing),
        cmocka_unit_test(unimplemented_type_fails),
        cmocka_unit_test(sample_stream_keys),
        cmocka_unit_test(phase_coverage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
