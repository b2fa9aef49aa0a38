/* parallel: see parallel.h. */
#include "base/parallel.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

static int nthreads; /* 0 until set */

void
parallel_set_threads(int n)
{
	if (n <= 0) {
		const char *s = getenv("OMP_NUM_THREADS");
		n = s ? atoi(s) : 0;
		if (n <= 0) {
			long c = sysconf(_SC_NPROCESSORS_ONLN);
			n = c > 0 ? (int)c : 1;
		}
	}
	if (n > 1024)
		n = 1024;
	nthreads = n;
	omp_set_num_threads(n);
	openblas_set_num_threads(1);
}

int
parallel_threads(void)
{
	if (nthreads == 0)
		parallel_set_threads(0);
	return nthreads;
}
