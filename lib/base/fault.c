/* fault: see fault.h. The environment is read at every call (tests change
 * it between calls in one process). */
#include "base/fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
fault_disk_full(long written)
{
	const char *limit = getenv("SSL_FAULT_WRITE_BYTES");
	return limit && written > atol(limit);
}

void
fault_signal_in_step(int64_t step)
{
	const char *f = getenv("SSL_FAULT_SIGNAL_AT_STEP");
	if (f && atoll(f) == step)
		raise(SIGTERM);
}

void
fault_slow_step(int64_t step)
{
	const char *f = getenv("SSL_FAULT_SLOW_FROM_STEP");
	for (; f && *f; f = strchr(f, ',') ? strchr(f, ',') + 1 : "") {
		long long s = -1, ms = 0, e = INT64_MAX;
		if (sscanf(f, "%lld:%lld:%lld", &s, &ms, &e) >= 2 && step >= s && step < e) {
			if (ms > 0)
				usleep((useconds_t)(ms * 1000));
			return;
		}
	}
}

void
fault_decode_stall(int64_t decoded)
{
	const char *f = getenv("SSL_FAULT_DECODE_STALL");
	if (!f || decoded < atoll(f))
		return;
	fputs("SSL_FAULT_DECODE_STALL: stalled\n", stderr);
	for (;;)
		pause();
}

void
fault_rank_in_step(int rank, int64_t step)
{
	const char *f = getenv("SSL_FAULT_RANK_AT_STEP");
	int r = -1;
	long long s = -1;
	char how[8] = "";
	if (!f || sscanf(f, "%d:%lld:%7s", &r, &s, how) != 3 || r != rank || s != step)
		return;
	if (strcmp(how, "hang") == 0)
		for (;;)
			pause();
	raise(SIGKILL);
}
