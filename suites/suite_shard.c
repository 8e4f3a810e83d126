/* Shards of a suite: the "i/n" option, the cell list file and the selection of a shard's
 * cells. The assignment of cells to shards is described in suites/suite_slurm.h. */
#include "suite_slurm.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#define SHARD_MAX_COUNT 1000000

/* Parses a decimal integer of at most 7 digits that spans [begin, end). */
static int parse_count(const char *begin, const char *end, int *out) {
    if (end == begin || end - begin > 7)
        return -1;
    int v = 0;
    for (const char *p = begin; p < end; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        v = 10 * v + (*p - '0');
    }
    *out = v;
    return 0;
}

int suite_parse_shard(const char *text, int *index, int *count) {
    const char *slash = strchr(text, '/');
    int i = 0, n = 0;
    if (!slash || parse_count(text, slash, &i) != 0 ||
        parse_count(slash + 1, slash + strlen(slash), &n) != 0)
        return err_set("invalid value '%s' for --shard: expected INDEX/COUNT with two integers, "
                       "for example 0/4 for the first of 4 shards", text);
    if (n < 1 || n > SHARD_MAX_COUNT)
        return err_set("invalid value '%s' for --shard: the shard count must be from 1 to %d",
                       text, SHARD_MAX_COUNT);
    if (i >= n)
        return err_set("invalid value '%s' for --shard: the index must be from 0 to %d, since "
                       "shards are numbered from 0 like Slurm array task ids", text, n - 1);
    *index = i;
    *count = n;
    return 0;
}

int suite_cells_write_list(const char *path, const Suite *s, int quick, const SuiteCell *cells,
                           const int *todo, int n) {
    size_t cap = 256 + strlen(s->name) + (size_t)n * 18;
    char *text = xmalloc(cap);
    size_t len = (size_t)snprintf(text, cap,
                                  "# euar-bench cell list: suite %s, %s variant, %d cell%s\n"
                                  "# Line k of the hashes below goes to shard k mod COUNT of "
                                  "euar suite --shard INDEX/COUNT --cells FILE.\n",
                                  s->name, quick ? "quick" : "full", n, suite_plural(n));
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s\n", cells[todo[i]].hash);
    int rc = write_file_atomic(path, text, len);
    free(text);
    return rc;
}

/* Returns the position in cells[] of the cell with this hash, or -1. */
static int find_hash(const SuiteCell *cells, int count, const char *hash) {
    for (int i = 0; i < count; i++)
        if (strcmp(cells[i].hash, hash) == 0)
            return i;
    return -1;
}

/* Checks one line of a cell list and stores its hash's cell position in order[*n]. Returns 0,
 * 1 for a comment or blank line, or -1 with err_set(). */
static int read_list_line(const char *path, int line_no, char *line, const SuiteCell *cells,
                          int count, int *order, int *n, char *listed) {
    size_t len = strlen(line);
    while (len > 0 && isspace((unsigned char)line[len - 1]))
        line[--len] = '\0';
    if (len == 0 || line[0] == '#')
        return 1;
    int hex = len == 16;
    for (size_t k = 0; k < len && hex; k++)
        hex = isxdigit((unsigned char)line[k]) && !isupper((unsigned char)line[k]);
    if (!hex)
        return err_set("cell list %s, line %d: '%.40s' is not a cell hash of 16 lowercase hex "
                       "digits; write the list with euar suite --runner slurm, or one hash "
                       "per line", path, line_no, line);
    int cell = find_hash(cells, count, line);
    if (cell < 0)
        return err_set("cell list %s, line %d: hash %s is not a cell of this suite and "
                       "variant; the list belongs to another suite, to the other variant "
                       "(--quick) or to an edited suite file: submit the suite again",
                       path, line_no, line);
    if (listed[cell])
        return err_set("cell list %s, line %d: hash %s is listed twice; list each cell once",
                       path, line_no, line);
    listed[cell] = 1;
    order[(*n)++] = cell;
    return 0;
}

int suite_cells_read_list(const char *path, const SuiteCell *cells, int count, int *order) {
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set("cannot open cell list %s: %s; pass a list written by euar suite "
                       "--runner slurm (DIR/slurm/cells-<tag>.txt)", path, strerror(errno));
    char *listed = xcalloc((size_t)count + 1, 1);
    char line[256];
    int n = 0, line_no = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        line_no++;
        if (read_list_line(path, line_no, line, cells, count, order, &n, listed) < 0)
            rc = -1;
    }
    if (rc == 0 && ferror(f))
        rc = err_set("cannot read cell list %s: %s", path, strerror(errno));
    if (rc == 0 && n == 0)
        rc = err_set("cell list %s lists no cell hash; submit the suite again to write a new "
                     "list", path);
    fclose(f);
    free(listed);
    return rc == 0 ? n : -1;
}

int suite_select_cells(const SuiteCell *cells, int count, const SuiteRunOptions *opt,
                       int *selected) {
    int *listed = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(int));
    int n = 0;
    if (opt->cells) {
        n = suite_cells_read_list(opt->cells, cells, count, listed);
        if (n < 0) {
            free(listed);
            return -1;
        }
    } else {
        for (int i = 0; i < count; i++)
            if (!opt->only || suite_cell_matches(&cells[i], opt->only))
                listed[n++] = i;
    }
    int kept = 0;
    for (int k = 0; k < n; k++)
        if (opt->shard_count <= 0 || k % opt->shard_count == opt->shard_index)
            selected[kept++] = listed[k];
    free(listed);
    return kept;
}
