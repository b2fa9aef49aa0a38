/* parallel: one thread count shared by OpenMP loops and OpenBLAS.
 *
 * The kernels never run an OpenMP team and a multi-threaded sgemm at the
 * same time: element-wise work (im2col, BatchNorm, pooling) runs in
 * `#pragma omp parallel` loops, and sgemm is called between them, where
 * OpenBLAS uses its own pool of the same size. So with N threads at most N
 * cores are busy (never oversubscribed). Inside an OpenMP region, use
 * gemm_serial() (lib/gemm.h), which forces one OpenBLAS thread. */
#ifndef SSL_PARALLEL_H
#define SSL_PARALLEL_H

/* n <= 0: $OMP_NUM_THREADS if set, else the number of online CPUs.
 * Sets both OpenMP and OpenBLAS. Call once before work (tools: --threads). */
void parallel_set_threads(int n);
/* The current setting (parallel_set_threads runs with 0 on first use). */
int  parallel_threads(void);

#endif
