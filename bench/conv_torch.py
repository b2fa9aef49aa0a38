"""The layers of bench/bench_conv.c in PyTorch (Debian's build: oneDNN 2.6.3 runs
its convolutions), one thread, forward and backward (input and weight
gradients), median ms and GFLOP/s, in bench_conv's format.
Usage: /usr/bin/python3 bench/conv_torch.py [BATCH [REPS]]  (run pinned: taskset -c 1)"""
import statistics, sys, time
import torch

torch.set_num_threads(1)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
# name, C, H, W, OC, K, S, P: the same list as bench_conv.c
layers = [("w16-l1", 16, 32, 32, 16, 3, 1, 1), ("w16-l2", 32, 16, 16, 32, 3, 1, 1),
          ("w16-l3", 64, 8, 8, 64, 3, 1, 1), ("w16-l4", 128, 4, 4, 128, 3, 1, 1),
          ("w16-down2", 16, 32, 32, 32, 3, 2, 1), ("w16-down3", 32, 16, 16, 64, 3, 2, 1),
          ("w16-down4", 64, 8, 8, 128, 3, 2, 1), ("w16-short2", 16, 32, 32, 32, 1, 2, 0),
          ("w64-stem", 3, 32, 32, 64, 3, 1, 1),
          ("w64-l1", 64, 32, 32, 64, 3, 1, 1), ("w64-l2", 128, 16, 16, 128, 3, 1, 1),
          ("w64-l3", 256, 8, 8, 256, 3, 1, 1), ("w64-l4", 512, 4, 4, 512, 3, 1, 1),
          ("in-stem", 3, 96, 96, 32, 7, 2, 3), ("in-l1", 32, 24, 24, 32, 3, 1, 1),
          ("in-l2", 64, 12, 12, 64, 3, 1, 1), ("in-l3", 128, 6, 6, 128, 3, 1, 1),
          ("in-l4", 256, 3, 3, 256, 3, 1, 1)]
only = sys.argv[3] if len(sys.argv) > 3 else ""
print(f"conv_torch: batch {n}, 1 thread, median of {reps}; torch {torch.__version__}")
for name, C, H, W, OC, K, S, P in layers:
    if not name.startswith(only):
        continue
    x = torch.randn(n, C, H, W, requires_grad=True)
    w = torch.randn(OC, C, K, K, requires_grad=True)
    OH, OW = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
    gf = 2.0 * C * K * K * OC * OH * OW * n / 1e9
    dy = torch.randn(n, OC, OH, OW)
    for p, label in ((0, "fwd"), (1, "bwd")):
        t = []
        for i in range(reps + 1):
            if p == 0:
                with torch.no_grad():
                    t0 = time.perf_counter()
                    torch.nn.functional.conv2d(x, w, None, S, P)
                    dt = time.perf_counter() - t0
            else:
                y = torch.nn.functional.conv2d(x, w, None, S, P)
                x.grad = w.grad = None
                t0 = time.perf_counter()
                y.backward(dy)
                dt = time.perf_counter() - t0
            if i > 0:
                t.append(dt)
        med = statistics.median(t)
        print(f"{name:<10} {'torch':<7} {label:<4} {med * 1e3:8.3f} ms {gf * (1 + p) / med:7.1f} GFLOP/s  (oneDNN)")
        sys.stdout.flush()
