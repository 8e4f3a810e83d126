/* Text helpers shared by the Markdown renderers of report/. */
#include "report/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

void text_printf(TextBuf *t, const char *fmt, ...) {
    for (;;) {
        size_t room = t->cap - t->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, room, fmt, ap);
        va_end(ap);
        EUAR_ASSERT(n >= 0);
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)n + 256;
        t->data = xrealloc(t->data, t->cap);
    }
}

void text_append_quoted(TextBuf *t, const char *arg) {
    text_printf(t, "'");
    for (const char *p = arg; *p; p++) {
        if (*p == '\'')
            text_printf(t, "'\\''");
        else
            text_printf(t, "%c", *p);
    }
    text_printf(t, "'");
}

char *text_finish(TextBuf *t) {
    if (!t->data)
        return xstrdup("");
    return t->data;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}


int is_raw_metric(const char *name) {
    return strcmp(name, "loss") == 0 || ends_with(name, "mae") || ends_with(name, "corr");
}

int notes_add(Notes *notes, const char *text) {
    for (int i = 0; i < notes->count; i++)
        if (strcmp(notes->texts[i], text) == 0)
            return i + 1;
    notes->texts = xrealloc(notes->texts, (size_t)(notes->count + 1) * sizeof(char *));
    notes->texts[notes->count++] = xstrdup(text);
    return notes->count;
}

void notes_free(Notes *notes) {
    for (int i = 0; i < notes->count; i++)
        free(notes->texts[i]);
    free(notes->texts);
}

void append_escaped(TextBuf *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|')
            text_printf(out, "\\|");
        else if (*s == '\n')
            text_printf(out, " ");
        else
            text_printf(out, "%c", *s);
    }
}

void append_stat(TextBuf *out, const char *name, const MetricStat *ms) {
    if (!ms)
        text_printf(out, "n/a");
    else if (ms->n == 1 && is_raw_metric(name))
        text_printf(out, "%.3f", ms->mean);
    else if (ms->n == 1)
        text_printf(out, "%.1f", 100.0 * ms->mean);
    else if (is_raw_metric(name))
        text_printf(out, "%.3f±%.3f", ms->mean, ms->std);
    else
        text_printf(out, "%.1f±%.1f", 100.0 * ms->mean, 100.0 * ms->std);
}

