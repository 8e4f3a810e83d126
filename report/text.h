/* Text helpers shared by the Markdown renderers of report/ (internal to the report layer). */
#ifndef EUAR_REPORT_TEXT_H
#define EUAR_REPORT_TEXT_H

#include <stddef.h>

#include "report/aggregate.h"

/* Growing text buffer; start with {NULL, 0, 0}. */
typedef struct {
    char *data;
    size_t len, cap;
} TextBuf;

/* Appends printf-formatted text. */
void text_printf(TextBuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends `arg` in single quotes, as a POSIX shell reads it back. */
void text_append_quoted(TextBuf *t, const char *arg);

/* Returns the buffer as a NUL-terminated string owned by the caller. */
char *text_finish(TextBuf *t);

/* Footnotes of one table, numbered in order of first use. Equal texts share a number. */
typedef struct {
    char **texts;
    int count;
} Notes;

/* Adds a footnote text unless it is there already. Returns its number, from 1. */
int notes_add(Notes *notes, const char *text);

/* Frees the footnote texts. */
void notes_free(Notes *notes);

/* Returns 1 for loss, MAE and correlation, which are not fractions and so are not shown in
 * percent, else 0. */
int is_raw_metric(const char *name);

/* Writes Markdown-safe text: '|' would end a table cell and a line break would end the row. */
void append_escaped(TextBuf *out, const char *s);

/* Writes mean±std of a metric, or the mean alone when n is 1: in % with one decimal for
 * fractions, with three decimals for raw metrics, "n/a" when ms is NULL. */
void append_stat(TextBuf *out, const char *name, const MetricStat *ms);

#endif
