/* Importer of MVSA-Single as QMF prepares it: <dir>/train.jsonl, dev.jsonl and test.jsonl,
 * one JSON object per line with "id", "label" (positive, neutral or negative), "text" and
 * "img" (an image path relative to <dir>, for example "data/4141.jpg"). The dev file becomes
 * the valid split. Texts become tokens over a vocabulary of the training split (see
 * text_words() and build_vocab()). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "datasets/dataset_internal.h"
#include "datasets/import_images.h"
#include "datasets/import_util.h"

/* Class order of synth-mvsa, so that class indices agree between the two sets. */
static const char *const mvsa_labels[] = {"positive", "neutral", "negative"};
#define MVSA_CLASSES 3
static const char *const split_files[EUAR_SPLIT_COUNT] = {"train.jsonl", "dev.jsonl",
                                                          "test.jsonl"};

/* One line of a JSONL file. */
typedef struct {
    char *id, *text, *img;
    int label;
    int split, line;
} MvsaRecord;

typedef struct {
    MvsaRecord *items;
    int count, cap;
} RecordList;

static void records_free(RecordList *r) {
    for (int i = 0; i < r->count; i++) {
        free(r->items[i].id);
        free(r->items[i].text);
        free(r->items[i].img);
    }
    free(r->items);
    memset(r, 0, sizeof(*r));
}

/* Reads string field `key` of `obj`; `id` may also be an integer number. */
static int read_field(const cJSON *obj, const char *key, const char *where, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return err_set("%s: missing field \"%s\"; each line needs \"id\", \"label\", \"text\" "
                       "and \"img\"",
                       where, key);
    if (cJSON_IsString(v)) {
        *out = xstrdup(v->valuestring);
        return 0;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (strcmp(key, "id") == 0 && d == floor(d) && fabs(d) < 1e15) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%.0f", d);
        *out = xstrdup(buf);
        return 0;
    }
    char *value_text = cJSON_PrintUnformatted(v);
    err_set("%s: field \"%s\" is %.60s, expected a string; quote the value", where, key,
            value_text ? value_text : "not a string");
    free(value_text);
    return -1;
}

static int parse_label(const char *label, const char *where) {
    for (int c = 0; c < MVSA_CLASSES; c++)
        if (strcmp(label, mvsa_labels[c]) == 0)
            return c;
    return err_set("%s: label \"%.60s\" is unknown; use positive, neutral or negative "
                   "(lowercase)",
                   where, label);
}

/* Parses one JSONL line into `rec`. `where` names the file and line for messages. */
static int parse_record(const char *line, size_t len, const char *where, MvsaRecord *rec) {
    memset(rec, 0, sizeof(*rec));
    while (len > 0 && isspace((unsigned char)line[len - 1]))
        len--;
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!obj) {
        /* Shows up to 20 characters of the line from where parsing stopped. */
        size_t column = end && end >= line && end <= line + len ? (size_t)(end - line) : 0;
        char near[24];
        size_t shown = EUAR_MIN(len - column, sizeof(near) - 4);
        for (size_t k = 0; k < shown; k++)
            near[k] = isprint((unsigned char)line[column + k]) ? line[column + k] : '?';
        near[shown] = '\0';
        return err_set("%s: invalid JSON at column %zu (near \"%s\"); each line must be one "
                       "JSON object, so fix or remove the line",
                       where, column + 1, near);
    }

    int rc = 0;
    while (end && end < line + len && isspace((unsigned char)*end))
        end++;
    if (end && end < line + len)
        rc = err_set("%s: invalid JSON, unexpected text at column %zu after the object; each "
                     "line must be one JSON object, so fix or remove the line",
                     where, (size_t)(end - line) + 1);
    if (rc == 0 && !cJSON_IsObject(obj))
        rc = err_set("%s: expected a JSON object {...}, found another JSON value; each line "
                     "must be one object",
                     where);
    char *label = NULL;
    if (rc == 0)
        rc = read_field(obj, "id", where, &rec->id);
    if (rc == 0)
        rc = read_field(obj, "label", where, &label);
    if (rc == 0)
        rc = read_field(obj, "text", where, &rec->text);
    if (rc == 0)
        rc = read_field(obj, "img", where, &rec->img);
    if (rc == 0 && rec->id[0] == '\0')
        rc = err_set("%s: field \"id\" is empty; give every sample a unique id", where);
    if (rc == 0 && rec->img[0] == '\0')
        rc = err_set("%s: field \"img\" is empty; give the image path relative to the folder "
                     "of the file",
                     where);
    if (rc == 0)
        rc = rec->label = parse_label(label, where);

    free(label);
    cJSON_Delete(obj);
    return rc < 0 ? -1 : 0;
}

/* Reads the records of one split file; blank lines are skipped. */
static int read_split(const char *dir, int split, RecordList *out) {
    char *path = join_path(dir, split_files[split]);
    size_t len = 0;
    char *text = read_file_text(path, &len);
    if (!text) {
        err_set("%s: cannot read the split file; an MVSA-Single folder holds train.jsonl, "
                "dev.jsonl and test.jsonl",
                path);
        free(path);
        return -1;
    }

    int rc = 0, before = out->count;
    char where[1100];
    const char *p = text, *stop = text + len;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* the UTF-8 byte order mark some editors write */
    for (int line = 1; p < stop && rc == 0; line++) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(stop - p);
        size_t k = 0;
        while (k < n && isspace((unsigned char)p[k]))
            k++;
        if (k < n) {
            snprintf(where, sizeof(where), "%.1000s line %d", path, line);
            if (out->count == out->cap) {
                out->cap = out->cap ? 2 * out->cap : 256;
                out->items = xrealloc(out->items, (size_t)out->cap * sizeof(MvsaRecord));
            }
            MvsaRecord *rec = &out->items[out->count];
            rc = parse_record(p, n, where, rec);
            rec->split = split;
            rec->line = line;
            out->count++;
        }
        p = eol ? eol + 1 : stop;
    }

    if (rc == 0 && out->count == before)
        rc = err_set("%s: no samples, so the %s split would be empty; every split file needs "
                     "at least one line",
                     path, split_name((SplitId)split));
    free(text);
    free(path);
    return rc;
}

static const RecordList *sorting_records;

static int compare_record_ids(const void *a, const void *b) {
    const MvsaRecord *r = sorting_records->items;
    int c = strcmp(r[*(const int *)a].id, r[*(const int *)b].id);
    return c != 0 ? c : *(const int *)a - *(const int *)b;
}

static int check_unique_ids(const char *dir, const RecordList *r) {
    int *order = xmalloc((size_t)r->count * sizeof(int));
    for (int i = 0; i < r->count; i++)
        order[i] = i;
    sorting_records = r;
    qsort(order, (size_t)r->count, sizeof(int), compare_record_ids);
    int rc = 0;
    for (int k = 1; k < r->count && rc == 0; k++) {
        const MvsaRecord *a = &r->items[order[k - 1]], *b = &r->items[order[k]];
        if (strcmp(a->id, b->id) == 0)
            rc = err_set("duplicate id \"%.100s\" in %s/%s line %d and %s/%s line %d; ids must "
                         "be unique, so remove or rename one",
                         a->id, dir, split_files[a->split], a->line, dir,
                         split_files[b->split], b->line);
    }
    free(order);
    return rc;
}

/* Splits `text` into lowercase words: maximal runs of ASCII letters and digits. Every other
 * byte (punctuation, space, any byte of a non-ASCII UTF-8 character) separates words. */
static void text_words(const char *text, StrList *out) {
    memset(out, 0, sizeof(*out));
    const char *p = text;
    while (*p) {
        while (*p && !isalnum((unsigned char)*p))
            p++;
        const char *start = p;
        while (*p && isalnum((unsigned char)*p))
            p++;
        if (p > start) {
            char *w = xmalloc((size_t)(p - start) + 1);
            for (size_t k = 0; k < (size_t)(p - start); k++)
                w[k] = (char)tolower((unsigned char)start[k]);
            w[p - start] = '\0';
            strlist_push(out, w);
        }
    }
}

/* One vocabulary entry for lookup by word. */
typedef struct {
    const char *word;
    int32_t id;
} VocabEntry;

/* The vocabulary: words[id - TOKEN_FIRST_WORD] for ids from TOKEN_FIRST_WORD, and the same
 * words in byte order with their ids for lookup. */
typedef struct {
    StrList words;
    VocabEntry *sorted;
} Vocab;

typedef struct {
    char *word;
    int count;
} WordCount;

static int compare_word_counts(const void *a, const void *b) {
    const WordCount *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->word, y->word);
}

static int compare_entries(const void *a, const void *b) {
    return strcmp(((const VocabEntry *)a)->word, ((const VocabEntry *)b)->word);
}

/* Builds the vocabulary from the words of the train split: words seen at least `min_count`
 * times, the most frequent first (ties in byte order), numbered from TOKEN_FIRST_WORD. */
static void build_vocab(const RecordList *r, int min_count, Vocab *v) {
    memset(v, 0, sizeof(*v));
    StrList all;
    memset(&all, 0, sizeof(all));
    for (int i = 0; i < r->count; i++) {
        if (r->items[i].split != EUAR_SPLIT_TRAIN)
            continue;
        StrList words;
        text_words(r->items[i].text, &words);
        for (int k = 0; k < words.count; k++)
            strlist_push(&all, words.items[k]);
        free(words.items);
    }
    if (all.count > 0)
        qsort(all.items, (size_t)all.count, sizeof(char *), compare_strings);
    WordCount *counts = xmalloc((size_t)EUAR_MAX(all.count, 1) * sizeof(WordCount));
    int unique = 0;
    for (int k = 0; k < all.count; k++) {
        if (unique > 0 && strcmp(counts[unique - 1].word, all.items[k]) == 0)
            counts[unique - 1].count++;
        else
            counts[unique++] = (WordCount){all.items[k], 1};
    }
    qsort(counts, (size_t)unique, sizeof(WordCount), compare_word_counts);
    for (int k = 0; k < unique && counts[k].count >= min_count; k++)
        strlist_push(&v->words, xstrdup(counts[k].word));
    free(counts);
    strlist_free(&all);

    int n = v->words.count;
    v->sorted = xmalloc((size_t)EUAR_MAX(n, 1) * sizeof(VocabEntry));
    for (int k = 0; k < n; k++)
        v->sorted[k] = (VocabEntry){v->words.items[k], TOKEN_FIRST_WORD + k};
    if (n > 0)
        qsort(v->sorted, (size_t)n, sizeof(VocabEntry), compare_entries);
}

static void vocab_free(Vocab *v) {
    strlist_free(&v->words);
    free(v->sorted);
}

/* Returns the id of `word`, or TOKEN_ID_UNKNOWN when the vocabulary does not contain it. */
static int32_t vocab_id(const Vocab *v, const char *word) {
    VocabEntry key = {word, 0};
    const VocabEntry *e = bsearch(&key, v->sorted, (size_t)v->words.count, sizeof(VocabEntry),
                                  compare_entries);
    return e ? e->id : TOKEN_ID_UNKNOWN;
}

/* Returns 1 when `text` is valid UTF-8: no stray continuation byte, no truncated or overlong
 * sequence, no surrogate and nothing above U+10FFFF. */
static int is_valid_utf8(const char *text) {
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        unsigned char c = *p;
        int extra;
        if (c < 0x80)
            extra = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            extra = 1;
        else if ((c & 0xF0) == 0xE0)
            extra = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            extra = 3;
        else
            return 0; /* a continuation byte, an overlong lead byte or a Latin-1 byte */
        unsigned long cp = extra == 0 ? c : c & (0x3F >> extra);
        for (int k = 1; k <= extra; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        p += extra + 1;
    }
    return 1;
}

/* Writes the tokens [T] and length of one text, and updates the counts of the summary. */
static void tokenize(int32_t *tokens, int32_t *length, const char *text, const Vocab *v, int t,
                     ImportSummary *s) {
    StrList words;
    text_words(text, &words);
    int kept = EUAR_MIN(words.count, t);
    memset(tokens, 0, (size_t)t * sizeof(int32_t));
    for (int k = 0; k < kept; k++) {
        tokens[k] = vocab_id(v, words.items[k]);
        s->unknown_words += tokens[k] == TOKEN_ID_UNKNOWN;
    }
    *length = kept;
    s->truncated += words.count > t;
    s->longest = EUAR_MAX(s->longest, words.count);
    s->empty_texts += words.count == 0;
    strlist_free(&words);
}

void mvsa_import_defaults(MvsaImportOptions *o) {
    o->size = IMPORT_DEFAULT_SIZE;
    o->max_tokens = MVSA_DEFAULT_MAX_TOKENS;
    o->min_count = 1;
    o->name = NULL;
}

/* Decodes the image of record `r` and writes it resized to `pixels` [3, S, S]. A relative
 * "img" path is read from `dir`, an absolute one as it is. */
static int load_image(uint8_t *pixels, const char *dir, const MvsaRecord *r, int size) {
    char *path = r->img[0] == '/' ? xstrdup(r->img) : join_path(dir, r->img);
    RgbImage img;
    int rc = image_load_rgb(path, &img);
    free(path);
    if (rc != 0)
        return err_prefix("%s/%s line %d, \"img\" \"%.200s\"", dir, split_files[r->split],
                          r->line, r->img);
    image_resize_area(pixels, size, size, img.rgb, img.w, img.h, 3, img.w * 3);
    free(img.rgb);
    return 0;
}

static int build_dataset(Dataset *ds, const char *dir, const RecordList *r, const Vocab *v,
                         const MvsaImportOptions *o, ImportSummary *s) {
    int n = r->count, t = o->max_tokens;
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "%s", o->name ? o->name : "mvsa-single");
    ds->task = EUAR_TASK_CLASSIFICATION;
    ds->num_classes = MVSA_CLASSES;
    ds->class_names = xcalloc(MVSA_CLASSES, sizeof(char *));
    for (int c = 0; c < MVSA_CLASSES; c++)
        ds->class_names[c] = xstrdup(mvsa_labels[c]);
    ds->n = n;
    ds->ids = xcalloc((size_t)n, sizeof(char *));
    ds->split = xmalloc((size_t)n);
    ds->classes = xmalloc((size_t)n * sizeof(int32_t));
    ds->num_modalities = 2;

    Modality *image = &ds->mod[0], *text = &ds->mod[1];
    snprintf(image->name, sizeof(image->name), "image");
    image->kind = EUAR_KIND_IMAGE;
    image->c = 3;
    image->h = o->size;
    image->w = o->size;
    size_t image_size = 3 * (size_t)o->size * (size_t)o->size;
    image->pixels = xmalloc((size_t)n * image_size);
    image->available = xmalloc((size_t)n);
    memset(image->available, 1, (size_t)n);

    snprintf(text->name, sizeof(text->name), "text");
    text->kind = EUAR_KIND_TOKENS;
    text->t = t;
    text->d = 1;
    text->vocab = TOKEN_FIRST_WORD + v->words.count;
    text->tokens = xmalloc((size_t)n * (size_t)t * sizeof(int32_t));
    text->lengths = xmalloc((size_t)n * sizeof(int32_t));
    text->available = xmalloc((size_t)n);

    for (int i = 0; i < n; i++) {
        const MvsaRecord *rec = &r->items[i];
        ds->ids[i] = xstrdup(rec->id);
        ds->split[i] = (uint8_t)rec->split;
        ds->classes[i] = rec->label;
        tokenize(text->tokens + (size_t)i * t, &text->lengths[i], rec->text, v, t, s);
        /* A text without words is a missing modality, as in the pickle importer. */
        text->available[i] = text->lengths[i] > 0;
        if (!is_valid_utf8(rec->text) && s->invalid_utf8++ == 0)
            snprintf(s->first_invalid_utf8, sizeof(s->first_invalid_utf8), "%s", rec->id);
        if (load_image(image->pixels + (size_t)i * image_size, dir, rec, o->size) != 0)
            return -1;
    }
    return 0;
}

/* Writes the dataset and the vocabulary strings [V] at /modalities/text/vocabulary. */
static int write_with_vocab(const char *out, const Dataset *ds, const Vocab *v) {
    if (dataset_validate(ds, out) != 0)
        return -1;
    int count = TOKEN_FIRST_WORD + v->words.count;
    const char **strings = xmalloc((size_t)count * sizeof(char *));
    strings[TOKEN_ID_PAD] = "<pad>";
    strings[TOKEN_ID_BLANK] = "<blank>";
    strings[TOKEN_ID_UNKNOWN] = "<unk>";
    for (int k = 0; k < v->words.count; k++)
        strings[TOKEN_FIRST_WORD + k] = v->words.items[k];
    H5Writer w;
    int rc = h5_writer_open(&w, out);
    if (rc == 0)
        rc = h5_writer_write_layout(&w, ds);
    if (rc == 0)
        rc = h5_writer_write_extra_strings(&w, "/modalities/text/vocabulary", strings, count);
    free(strings);
    if (rc != 0) {
        h5_writer_abort(&w);
        return -1;
    }
    return h5_writer_commit(&w);
}

int mvsa_import(const char *dir, const char *out, const MvsaImportOptions *o,
                ImportSummary *summary) {
    if (o->size < 1 || o->size > IMPORT_MAX_SIZE)
        return err_set("--size %d is out of range; use 1 to %d", o->size, IMPORT_MAX_SIZE);
    if (o->max_tokens < 1 || o->max_tokens > 100000)
        return err_set("--max-tokens %d is out of range; use 1 to 100000", o->max_tokens);
    if (o->min_count < 1)
        return err_set("--min-count %d is out of range; use 1 or more", o->min_count);
    if (!is_dir(dir))
        return err_set("%s: folder not found; pass the folder that holds train.jsonl, "
                       "dev.jsonl and test.jsonl",
                       dir);
    if ((o->name && import_check_name(o->name) != 0) || import_check_out(out) != 0)
        return -1;
    RecordList records;
    memset(&records, 0, sizeof(records));
    int rc = 0;
    for (int s = 0; s < EUAR_SPLIT_COUNT && rc == 0; s++)
        rc = read_split(dir, s, &records);
    if (rc == 0)
        rc = check_unique_ids(dir, &records);
    ImportSummary s;
    memset(&s, 0, sizeof(s));
    Vocab v;
    memset(&v, 0, sizeof(v));
    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    if (rc == 0) {
        build_vocab(&records, o->min_count, &v);
        rc = build_dataset(&ds, dir, &records, &v, o, &s);
    }
    records_free(&records);
    if (rc == 0)
        rc = write_with_vocab(out, &ds, &v);
    if (rc == 0 && summary) {
        s.n = ds.n;
        s.num_classes = ds.num_classes;
        s.vocab = ds.mod[1].vocab;
        for (int k = 0; k < EUAR_SPLIT_COUNT; k++)
            s.split_counts[k] = dataset_split_count(&ds, (SplitId)k);
        *summary = s;
    }
    vocab_free(&v);
    dataset_free(&ds);
    return rc;
}
