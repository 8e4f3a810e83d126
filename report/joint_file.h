/* Files of joint representations: the fused vector before the output layer of every test
 * sample, at the selected epoch, under each test condition. `euar train --joint-out` writes
 * them and the report reads them for t-SNE plots. HDF5 layout:
 *   attributes of /: format "euar-bench-joint", format_version 1, model, dataset, task
 *     ("regression" or "classification"), num_classes, joint_dim
 *   /labels            float32 [N] (regression) or int32 [N] (classification)
 *   /conditions/<name>/joint  float32 [N, joint_dim], one group per condition ("clean" first)
 */
#ifndef EUAR_JOINT_FILE_H
#define EUAR_JOINT_FILE_H

#include <stdint.h>

#define EUAR_JOINT_FORMAT "euar-bench-joint"
#define EUAR_JOINT_VERSION 1
#define EUAR_JOINT_MAX_CONDITIONS 33

typedef struct {
    char model[64];
    char dataset[64];
    int classification;
    int num_classes;
    int n, dim;
    float *labels;    /* [N] regression labels, or NULL */
    int32_t *classes; /* [N] class indices, or NULL */
    int count;
    char names[EUAR_JOINT_MAX_CONDITIONS][64];
    float *joint[EUAR_JOINT_MAX_CONDITIONS]; /* [N, dim] each */
} JointFile;

/* Writes `jf` to `path` through a temporary file and a rename. Returns 0 or -1 with
 * err_set(). */
int joint_file_write(const char *path, const JointFile *jf);

/* Reads and checks a joint file (format, version, shapes, finite values). Returns 0, or -1
 * with err_set() naming the file and the dataset path; `out` is then empty. */
int joint_file_read(const char *path, JointFile *out);

/* Frees the arrays of `jf` and zeroes it. */
void joint_file_free(JointFile *jf);

#endif
