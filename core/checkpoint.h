/* Training checkpoints: the state a run needs to continue after a kill, in one HDF5 file
 * (docs/results.md, "Checkpoints"). Shuffles and reparameterisation draws are keyed by
 * (seed, purpose, epoch or step), so no random generator state needs saving. The state is
 * the parameters, Adam's moments, the step and epoch counters, the selection state and the
 * curve so far. A resumed run gives the same result to the bit as an uninterrupted one. */
#ifndef EUAR_CHECKPOINT_H
#define EUAR_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "trainer.h"

#define EUAR_CHECKPOINT_FORMAT "euar-bench-checkpoint"
#define EUAR_CHECKPOINT_VERSION 1
/* Default seconds between checkpoints of `euar train --checkpoint` and `euar suite`. A
 * checkpoint is written at the end of an epoch, so a killed cell loses at most this interval
 * plus one epoch of training. */
#define EUAR_CHECKPOINT_EVERY_S 60.0

/* Host copy of a run's state after `epoch` finished epochs. */
typedef struct {
    uint64_t fingerprint; /* identifies the run: model, settings, data and noise */
    int epoch;            /* finished epochs */
    int step;             /* Adam steps taken */
    int selected_epoch;   /* 0 when no epoch was selected yet */
    double best;          /* selection score of selected_epoch, NaN when none */
    double time_s;        /* training time before this checkpoint */
    size_t num_params;
    float *value, *adam_m, *adam_v; /* [num_params] at the end of `epoch` */
    float *best_params;             /* [num_params] at selected_epoch */
    int epochs_run;
    EpochRecord *curve; /* [epochs_run] */
} Checkpoint;

/* Writes `ck` to `path` through a temporary file and a rename, so a kill leaves either the
 * previous checkpoint or the new one. Returns 0 or -1 with err_set(). */
int checkpoint_write(const char *path, const Checkpoint *ck);

/* Reads the checkpoint at `path` into `ck` (arrays allocated here). Returns 1 when loaded, 0
 * when no file exists, -1 with err_set() for a file this run cannot use: another format, a
 * newer version, another run (fingerprint), another parameter count or a damaged file. Each
 * message names the file and tells the user to delete it. */
int checkpoint_read(const char *path, uint64_t fingerprint, size_t num_params, Checkpoint *ck);

void checkpoint_free(Checkpoint *ck);

/* Options of train_run_resumable(). */
struct TrainCheckpoint {
    const char *path;     /* checkpoint file; NULL: no checkpoints */
    double every_s;       /* write after an epoch once this many seconds have passed since
                           * the start or the last write; 0: after every epoch */
    uint64_t fingerprint; /* stored in the file and checked when resuming */
    int stop_after_epoch; /* > 0: return after writing the checkpoint of this epoch, as a kill
                           * would leave the run (for tests); out->interrupted is then 1 */
};

#endif
