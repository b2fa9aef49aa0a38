#!/usr/bin/python3
"""Writes tests/fixtures/augment.msgpack: torchvision reference outputs for
each augmentation op of lib/data/augment at fixed parameters.

Development tool only (Debian python3-torchvision, python3-msgpack); the tests
read the committed fixture and never run Python. Run from the repository root:
    /usr/bin/python3 tests/ref/make_augment_fixtures.py

Layout (our stream tensor encoding, see lib/io/stream.h):
    {"torchvision": "0.14.1", "images": [tensor (H,W,C) |u1, ...],
     "cases": [{"op": str, "image": index, "ref": "pil"|"tensor", <params>,
                "expect": tensor}, ...]}
Ops and their params:
    crop_resize  top, left, height, width (crop box), out_h, out_w
                 (ref "pil": PIL bilinear, antialiased; "tensor": torch antialias=True)
    brightness|contrast|saturation|hue   factor
    jitter       order [4 ints: 0 brightness 1 contrast 2 saturation 3 hue],
                 brightness, contrast, saturation, hue (0 = op off for b/c/s: factor 1)
    grayscale    (PIL convert("L"), replicated to the input's channels)
    blur         kernel, sigma
    solarize     threshold
"""
import os
import sys

import msgpack
import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "augment.msgpack")


def tensor(a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    return {"dtype": "|u1", "shape": list(a.shape), "data": a.tobytes()}


def make_images():
    rng = np.random.default_rng(20240601)
    imgs = []
    # 1: noise, 17x23 RGB: every pixel independent, the worst case for resampling.
    imgs.append(rng.integers(0, 256, (17, 23, 3), dtype=np.uint8))
    # 2: smooth colour gradients plus mild noise, 23x17.
    y, x = np.mgrid[0:23, 0:17]
    g = np.stack([x * 15, y * 11, 255 - (x + y) * 6], -1) + rng.normal(0, 6, (23, 17, 3))
    imgs.append(np.clip(g, 0, 255).astype(np.uint8))
    # 3: saturated primaries, greys (hue undefined) and extremes, 20x20.
    pal = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255],
                    [0, 0, 0], [255, 255, 255], [128, 128, 128], [37, 37, 37], [200, 30, 30], [30, 200, 90],
                    [250, 251, 249], [1, 0, 2], [128, 64, 192], [64, 192, 128]], dtype=np.uint8)
    idx = rng.integers(0, len(pal), (20, 20))
    imgs.append(pal[idx])
    # 4: one channel (MNIST-like) 19x21: a blob on black plus noise.
    y, x = np.mgrid[0:19, 0:21]
    b = 230 * np.exp(-((x - 10) ** 2 + (y - 9) ** 2) / 30.0) + rng.normal(0, 10, (19, 21))
    imgs.append(np.clip(b, 0, 255).astype(np.uint8)[..., None])
    return imgs


def to_t(a):  # HWC uint8 -> CHW tensor
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def from_t(t):
    return t.numpy().transpose(1, 2, 0)


def to_pil(a):
    return Image.fromarray(a[..., 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB")


def from_pil(p, c):
    a = np.asarray(p, dtype=np.uint8)
    return a[..., None] if a.ndim == 2 else a


def main():
    imgs = make_images()
    cases = []

    def add(op, image, expect, ref="tensor", **params):
        d = {"op": op, "image": image, "ref": ref}
        d.update(params)
        d["expect"] = tensor(expect)
        cases.append(d)

    # Crop + resize: shrink, enlarge, mixed, same size, whole image.
    boxes = [(0, (2, 3, 15, 20, 7, 9)), (0, (1, 2, 8, 10, 19, 13)), (1, (3, 1, 18, 6, 5, 14)),
             (1, (0, 0, 23, 17, 23, 17)), (2, (0, 0, 20, 20, 6, 6)), (2, (5, 4, 9, 11, 32, 32)),
             (3, (2, 3, 14, 16, 10, 10)), (3, (0, 0, 19, 21, 28, 28)), (0, (4, 5, 11, 13, 11, 4))]
    for k, (top, left, h, w, oh, ow) in boxes:
        a = imgs[k]
        p = F.resized_crop(to_pil(a), top, left, h, w, [oh, ow], interpolation=F.InterpolationMode.BILINEAR)
        add("crop_resize", k, from_pil(p, a.shape[2]), "pil", top=top, left=left, height=h, width=w,
            out_h=oh, out_w=ow)
        t = F.resized_crop(to_t(a), top, left, h, w, [oh, ow], interpolation=F.InterpolationMode.BILINEAR,
                           antialias=True)
        add("crop_resize", k, from_t(t), "tensor", top=top, left=left, height=h, width=w, out_h=oh, out_w=ow)

    # Colour ops, torchvision's tensor math on uint8.
    for k in (0, 1, 2):
        t = to_t(imgs[k])
        for f in (0.3, 1.0, 1.6):
            add("brightness", k, from_t(F.adjust_brightness(t, f)), factor=f)
        for f in (0.2, 1.7):
            add("contrast", k, from_t(F.adjust_contrast(t, f)), factor=f)
        for f in (0.0, 0.5, 1.8):
            add("saturation", k, from_t(F.adjust_saturation(t, f)), factor=f)
        for f in (-0.45, -0.1, 0.05, 0.3, 0.5):
            add("hue", k, from_t(F.adjust_hue(t, f)), factor=f)
    t = to_t(imgs[3])
    for f in (0.6, 1.4):
        add("brightness", 3, from_t(F.adjust_brightness(t, f)), factor=f)
        add("contrast", 3, from_t(F.adjust_contrast(t, f)), factor=f)

    # ColorJitter as one op: a fixed order and fixed factors.
    fns = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    for k, order, fac in [(0, [3, 1, 0, 2], [1.3, 0.7, 1.5, -0.08]), (2, [2, 0, 3, 1], [0.6, 1.6, 0.2, 0.15]),
                          (1, [1, 3, 2, 0], [0.9, 0.4, 1.9, 0.33])]:
        t = to_t(imgs[k])
        for i in order:
            t = fns[i](t, fac[i])
        add("jitter", k, from_t(t), order=order, brightness=fac[0], contrast=fac[1], saturation=fac[2],
            hue=fac[3])

    # RandomGrayscale: PIL's convert("L") replicated to 3 channels.
    for k in (0, 1, 2):
        g = np.asarray(to_pil(imgs[k]).convert("L"), dtype=np.uint8)
        add("grayscale", k, np.repeat(g[..., None], 3, axis=2), "pil")

    # Gaussian blur, reflect padding (torchvision pads with mode="reflect").
    for k, ks, s in [(0, 3, 0.8), (1, 5, 1.7), (2, 7, 0.3), (0, 9, 2.0), (3, 3, 1.1)]:
        add("blur", k, from_t(F.gaussian_blur(to_t(imgs[k]), [ks, ks], [s, s])), kernel=ks, sigma=s)

    for k, th in [(0, 128), (1, 64), (3, 200), (2, 255)]:
        add("solarize", k, from_t(F.solarize(to_t(imgs[k]), th)), threshold=th)

    doc = {"torchvision": torchvision.__version__, "images": [tensor(a) for a in imgs], "cases": cases}
    data = msgpack.packb(doc, use_bin_type=True)
    with open(OUT + ".tmp", "wb") as f:
        f.write(data)
    os.replace(OUT + ".tmp", OUT)
    print(f"{OUT}: {len(cases)} cases, {len(data)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
