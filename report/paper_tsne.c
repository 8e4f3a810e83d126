/* Fig. 6 of the paper: t-SNE of the joint representations (report/paper.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "report/joint_file.h"
#include "report/paper.h"
#include "report/text.h"
#include "report/tsne.h"

/* Conditions of Fig. 6: the clean test split and the one with the audio missing. */
static const char *const tsne_conditions[] = {"clean", "A-missing"};

static void safe_append(TextBuf *out, const char *s) {
    for (; *s; s++)
        text_printf(out, "%c", ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                                (*s >= '0' && *s <= '9') || *s == '-' || *s == '.') ? *s : '_');
}

/* Class of each point: negative / neutral / positive by the sign of a regression label, or
 * the class index. Returns the number of classes and fills names. */
static int point_classes(const JointFile *jf, int n, int32_t *classes, char (*names)[32]) {
    if (jf->classification) {
        for (int i = 0; i < n; i++)
            classes[i] = jf->classes[i];
        for (int c = 0; c < jf->num_classes; c++)
            snprintf(names[c], 32, "class %d", c);
        return jf->num_classes;
    }
    /* 0 negative, 1 neutral, 2 positive: the sign of the label. */
    for (int i = 0; i < n; i++)
        classes[i] = 1 + (jf->labels[i] > 0.0f) - (jf->labels[i] < 0.0f);
    snprintf(names[0], 32, "negative (y < 0)");
    snprintf(names[1], 32, "neutral (y = 0)");
    snprintf(names[2], 32, "positive (y > 0)");
    return 3;
}

/* Embeds and plots one condition of a joint file. */
static int plot_condition(const JointFile *jf, int index, const JointEntry *entry,
                          const char *plots_dir, PaperArtifacts *artifacts) {
    int n = EUAR_MIN(jf->n, TSNE_MAX_POINTS);
    /* tsne_embed() accepts a perplexity of at most (n - 1) / 3. */
    double perplexity = EUAR_MIN(EUAR_PAPER_TSNE_PERPLEXITY, (n - 1) / 3.0);
    if (n < 4)
        return err_set("%s: condition '%s' has %d samples; a t-SNE plot needs at least 4, so "
                       "write the joint file from a larger test split", entry->path,
                       jf->names[index], n);
    float *y = xmalloc((size_t)n * 2 * sizeof(float));
    int32_t *classes = xmalloc((size_t)n * sizeof(int32_t));
    int num_classes = jf->classification ? jf->num_classes : 3;
    char (*names)[32] = xcalloc((size_t)EUAR_MAX(num_classes, 1), 32);
    num_classes = point_classes(jf, n, classes, names);
    const char **name_ptrs = xcalloc((size_t)EUAR_MAX(num_classes, 1), sizeof(char *));
    for (int c = 0; c < num_classes; c++)
        name_ptrs[c] = names[c];
    int rc = tsne_embed(jf->joint[index], n, jf->dim, perplexity, EUAR_PAPER_TSNE_SEED,
                        EUAR_PAPER_TSNE_ITERATIONS, y, NULL);
    if (rc != 0)
        err_prefix("%s, condition '%s'", entry->path, jf->names[index]);
    TextBuf stem = {NULL, 0, 0}, caption = {NULL, 0, 0};
    text_printf(&stem, "fig6-tsne-");
    safe_append(&stem, entry->dataset);
    text_printf(&stem, "-");
    safe_append(&stem, entry->model);
    text_printf(&stem, "-");
    safe_append(&stem, jf->names[index]);
    char *stem_text = text_finish(&stem);
    text_printf(&caption, "Fig. 6: t-SNE of the joint representations of %s on %s, test split "
                "%s (seed %.0f; perplexity %g, %d iterations, t-SNE seed %d%s); colour: %s",
                entry->model, entry->dataset, jf->names[index], entry->seed, perplexity,
                EUAR_PAPER_TSNE_ITERATIONS, EUAR_PAPER_TSNE_SEED,
                n < jf->n ? ", first samples only" : "",
                jf->classification ? "class" : "sign of the regression label y");
    char *caption_text = text_finish(&caption);
    if (rc == 0)
        rc = tsne_plot(plots_dir, stem_text, y, classes, n, name_ptrs, num_classes,
                       caption_text);
    if (rc == 0) {
        char path[512];
        snprintf(path, sizeof(path), "plots/%s.png", stem_text);
        paper_artifact_add(artifacts, "Fig. 6", caption_text, path, "");
    }
    free(stem_text);
    free(caption_text);
    free(y);
    free(classes);
    free(names);
    free(name_ptrs);
    return rc;
}

int paper_tsne_figures(const RunSet *runs, const char *dir, PaperArtifacts *artifacts) {
    size_t len = strlen(dir) + 8;
    char *plots_dir = xmalloc(len);
    snprintf(plots_dir, len, "%s/plots", dir);
    int rc = 0;
    for (int j = 0; j < runs->num_joints && rc == 0; j++) {
        JointFile jf;
        if (joint_file_read(runs->joints[j].path, &jf) != 0) {
            rc = -1;
            break;
        }
        for (size_t c = 0; rc == 0 && c < EUAR_ARRAY_LEN(tsne_conditions); c++)
            for (int k = 0; k < jf.count && rc == 0; k++)
                if (strcmp(jf.names[k], tsne_conditions[c]) == 0)
                    rc = plot_condition(&jf, k, &runs->joints[j], plots_dir, artifacts);
        joint_file_free(&jf);
    }
    free(plots_dir);
    return rc;
}
