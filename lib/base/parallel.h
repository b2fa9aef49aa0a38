/* parallel: one pool of threads for everything.
 *
 * OpenMP and a multi-threaded OpenBLAS are two pools that busy-wait for
 * work; running both on the same cores makes each spin while the other
 * computes (measured here: a resnet18 step 10x slower). So OpenBLAS runs on
 * one thread, always, and all parallelism is OpenMP: kernels split their
 * work (images, channels, matrix columns) across the team and each thread
 * calls sgemm on its own slice (lib/nn/gemm.h). With N threads at most N cores
 * are busy. */
#ifndef SSL_PARALLEL_H
#define SSL_PARALLEL_H

/* Loops over fewer elements than this run on one thread: a parallel
 * region costs microseconds, and much more when the cores are shared. */
#define PAR_MIN 32768

/* n <= 0: $OMP_NUM_THREADS if set, else the number of online CPUs. Sets the
 * OpenMP team size and pins OpenBLAS to one thread. Call before model_new
 * (tools: --threads); a Model keeps the count it was planned with. */
void parallel_set_threads(int n);
/* The current setting (parallel_set_threads runs with 0 on first use). */
int  parallel_threads(void);

#endif
