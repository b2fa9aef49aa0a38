/* probe_impl: what the parts of the probe (probe.c, probe_mlp.c) share. */
#ifndef SSL_PROBE_IMPL_H
#define SSL_PROBE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "eval/probe.h"

/* Below this many elements a loop runs on one thread: starting the team
 * costs more, and its workers, spinning after the region, would take the
 * cores from the OpenBLAS threads of the next sgemm. */
#define OMP_MIN_WORK (INT64_C(1) << 18)

/* Checked n * m element counts for our buffers (dies when too large). */
size_t probe_count2(int64_t n, int64_t m);
/* Calls pg's progress function, if any, with a formatted detail. */
void   probe_progress_report(const ProbeProgress *pg, const char *stage, int64_t done, int64_t total,
                             const char *fmt, ...) ATTR_PRINTF(5, 6);

#endif
