/* parallel: see parallel.h. */
#include "base/parallel.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

static int nthreads; /* 0 until set */

static void
set_threads(int n, int blas)
{
	int given = n > 0;
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
	if (!blas)
		openblas_set_num_threads(1);
	else if (given)
		openblas_set_num_threads(n);
}

void
parallel_set_threads(int n)
{
	set_threads(n, 0);
}

void
parallel_set_threads_blas(int n)
{
	set_threads(n, 1);
}

int
parallel_threads(void)
{
	if (nthreads == 0)
		parallel_set_threads(0);
	return nthreads;
}
