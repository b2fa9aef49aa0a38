"""PyTorch's SimCLR training step in fp32 or under torch.autocast("cpu", bfloat16):
the work of ../shared/reference/torch_bench_step.py (same model builder, same
NT-Xent, SGD momentum step), with the precision as an argument.
Usage: torch_bench_step_bf16.py MODEL PRECISION B STEPS [WARMUP [THREADS]]
  MODEL: resnet18-w16 or resnet18-cifar (width 64); PRECISION: fp32 or bf16.
Under autocast the convolutions and linear layers run in bf16 (oneDNN),
BatchNorm and the loss in fp32 (NT-Xent is fed fp32 projections), the
parameters stay fp32: mixed precision as ssl-train --precision bf16.
Prints per-step times and a RESULT line like the reference script's."""
import os
import statistics
import sys
import time

import torch

REF = os.environ.get("SSL_TORCH_REF") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                       "shared", "reference")
sys.path.insert(0, REF)
from torch_simclr_common import build, count_flops, nt_xent  # noqa: E402

name, prec, B, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
warm = int(sys.argv[5]) if len(sys.argv) > 5 else 2
torch.set_num_threads(int(sys.argv[6]) if len(sys.argv) > 6 else 2)
if prec not in ("fp32", "bf16"):
    sys.exit(f"precision {prec}: fp32 or bf16")
torch.manual_seed(0)
enc, head = build(name)
fl_enc = count_flops(enc, (3, 32, 32))
fl_head = count_flops(head, (enc.out_dim,))
fwd_flops = sum(fl_enc.values()) + sum(fl_head.values())
print(f"model={name} precision={prec} B={B} threads={torch.get_num_threads()} torch={torch.__version__} "
      f"fwd_flops/img={fwd_flops/1e6:.2f}M")

mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def rand_imgs(n):
    return (torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8).float() / 255 - mean) / std


params = list(enc.parameters()) + list(head.parameters())
opt = torch.optim.SGD(params, lr=0.06 * B / 256, momentum=0.9, weight_decay=5e-4)
enc.train()
head.train()
x = torch.cat([rand_imgs(B), rand_imgs(B)], 0)
times = []
for i in range(warm + steps):
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
        z = head(enc(x))
    z = z.float()
    loss = nt_xent(z[:B], z[B:], 0.5)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    dt = time.perf_counter() - t0
    if i >= warm:
        times.append(dt)
    print(f"step {i} {'warm' if i < warm else 'timed'} {dt:.3f}s loss {loss.item():.4f}", flush=True)

med = statistics.median(times)
ips = 2 * B / med
print(f"RESULT model={name} precision={prec} mode=train B={B} images_per_step={2 * B} median_step_s={med:.4f} "
      f"min={min(times):.4f} max={max(times):.4f} n={len(times)} images_per_s={ips:.1f} "
      f"achieved_GFLOPs={3 * fwd_flops * ips / 1e9:.1f}")
