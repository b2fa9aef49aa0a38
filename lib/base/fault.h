/* fault: the fault-injection hooks, every one of them named here. Tests set
 * these variables in the environment to reach the failure paths of the
 * product; unset (always, in use), each hook is a getenv that finds nothing
 * and returns.
 *
 *   SSL_FAULT_WRITE_BYTES=N
 *       fault_disk_full(): atomicfile_commit fails with ENOSPC when more
 *       than N bytes were written, as a full disk would (every file the
 *       tools write atomically: checkpoints, safetensors, logs); so does a
 *       write to ssl-decode's spill or cache file (pixstore) past byte N.
 *   SSL_FAULT_SIGNAL_AT_STEP=S
 *       fault_signal_in_step(): ssl-train raises SIGTERM inside step S,
 *       after the backward pass and before the update (the step finishes;
 *       the run stops after it, as it does for a real signal).
 *   SSL_FAULT_SLOW_FROM_STEP=S:MS[:E][,S:MS[:E]...]
 *       fault_slow_step(): in ssl-train, every step from S on (to E,
 *       exclusive, when given) takes MS milliseconds longer, as on a
 *       machine that gets busy mid-run, or quieter after a busy start
 *       (--budget's re-plans); the first range holding the step counts.
 *   SSL_FAULT_DECODE_STALL=N
 *       fault_decode_stall(): ssl-decode, once N images are decoded, says
 *       "stalled" on stderr and waits for a signal, as a reader of a slow
 *       input would (a kill mid-decode, at a known point).
 *   SSL_FAULT_RANK_AT_STEP=R:S:kill|hang
 *       fault_rank_in_step(): in ssl-train-mpi, rank R dies (SIGKILL) or
 *       stops answering (the others' watchdog ends the job) at the start
 *       of step S.
 *
 * The hooks are compiled in: what the tests exercise is the product. */
#ifndef SSL_FAULT_H
#define SSL_FAULT_H

#include <stdint.h>

/* SSL_FAULT_WRITE_BYTES: 1 when it is set and `written` exceeds it. */
int  fault_disk_full(long written);
/* SSL_FAULT_SIGNAL_AT_STEP: raises SIGTERM when `step` (1-based) is S. */
void fault_signal_in_step(int64_t step);
/* SSL_FAULT_SLOW_FROM_STEP: sleeps MS ms when `step` (1-based) is in a range [S, E). */
void fault_slow_step(int64_t step);
/* SSL_FAULT_DECODE_STALL: waits for a signal once `decoded` reaches N. */
void fault_decode_stall(int64_t decoded);
/* SSL_FAULT_RANK_AT_STEP: kills or hangs this process when it is rank R
 * and `step` (1-based) is S. */
void fault_rank_in_step(int rank, int64_t step);

#endif
