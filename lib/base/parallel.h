/* parallel: the thread policy, written here once.
 *
 * N threads (--threads N; default $OMP_NUM_THREADS, else all CPUs) is the
 * OpenMP team of every tool; every tool sets it through cli_apply().
 *
 * OpenMP and a multi-threaded OpenBLAS are two pools that busy-wait for
 * work; running both on the same cores makes each spin while the other
 * computes (measured here: a resnet18 step 10x slower). So where our
 * kernels drive BLAS (the model: lib/nn/gemm.h, in ssl-train, ssl-encode and
 * all the tools that do not call BLAS) OpenBLAS runs on one thread and all
 * parallelism is OpenMP: kernels split their work (images, channels, matrix
 * columns) across the team and each thread calls sgemm on its own slice.
 *
 * The one exception: code that calls BLAS itself on whole matrices from
 * outside any parallel region (the probes, lib/eval/probe.c, and PCA,
 * lib/eval/pca.c: ssl-probe and ssl-plot, which set Cli.blas_threads)
 * gives OpenBLAS the same N threads (parallel_set_threads_blas; without
 * --threads, OpenBLAS's own default: $OPENBLAS_NUM_THREADS or all CPUs); their
 * OpenMP loops stay small or between BLAS calls. With N threads at most N
 * cores are busy either way. */
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
/* The same, but OpenBLAS gets the n threads as well, or keeps its own
 * default when n <= 0 (the exception above). */
void parallel_set_threads_blas(int n);

#endif
