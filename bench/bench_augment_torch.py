#!/usr/bin/python3
"""torchvision's side of bench/bench_augment.sh: the same recipe, PIL path, one
thread, on the same raw images (N,H,W,C uint8). Prints views per CPU-second.
Development tool only (Debian python3-torchvision).
    bench_augment_torch.py RECIPE FILE N H W C [SECONDS]"""
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image


def recipe(name):
    if name == "cifar":
        size, s, blur = 32, 0.4, 0.0
        jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
    elif name in ("stl10", "imagenet"):
        size, blur = (96 if name == "stl10" else 224), 0.5
        jitter = T.ColorJitter(0.8, 0.8, 0.8, 0.2)
    else:
        raise SystemExit(f"unknown recipe {name}")
    ops = [T.RandomResizedCrop(size, scale=(0.08, 1.0)), T.RandomHorizontalFlip(),
           T.RandomApply([jitter], p=0.8), T.RandomGrayscale(p=0.2)]
    if blur:
        k = int(0.1 * size) | 1
        ops.append(T.RandomApply([T.GaussianBlur(max(3, k), sigma=(0.1, 2.0))], p=blur))
    return T.Compose(ops)


def main():
    name, path = sys.argv[1], sys.argv[2]
    n, h, w, c = (int(a) for a in sys.argv[3:7])
    seconds = float(sys.argv[7]) if len(sys.argv) > 7 else 2.0
    torch.set_num_threads(1)
    torch.manual_seed(1)
    imgs = np.fromfile(path, dtype=np.uint8, count=n * h * w * c).reshape(n, h, w, c)
    pil = [Image.fromarray(a if c == 3 else a[..., 0]) for a in imgs]
    aug = recipe(name)
    views, t0, w0 = 0, time.thread_time(), time.time()
    while True:
        for im in pil:
            # Two views per image, each back to uint8 HWC: what ssl-augment emits.
            v1, v2 = np.asarray(aug(im)), np.asarray(aug(im))
            views += 2
        t = time.thread_time() - t0
        if t >= seconds:
            break
    print(f"{views / t:.1f} views/s per core ({views} views in {t:.2f} s CPU, {time.time() - w0:.2f} s wall, "
          f"torchvision PIL path, {v1.shape[0]}x{v1.shape[1]})")


if __name__ == "__main__":
    main()
