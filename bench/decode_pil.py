#!/usr/bin/python3
"""PIL's side of bench/decode.sh: images/s decoding the JPEG members of one
archive to uint8 arrays on one thread, decoding alone (members in memory)
and end to end (tarfile + gzip + decode), and the same pixel checksum as
bench_decode.c."""
import io
import sys
import tarfile
import time

import numpy as np
from PIL import Image

EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pnm")


def decode(b):
    im = Image.open(io.BytesIO(b))
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    return np.asarray(im)


def read_members(path):
    out = []
    with tarfile.open(path) as tf:
        for ti in tf:
            if ti.isfile() and ti.name.lower().endswith(EXTS):
                out.append((ti.name, tf.extractfile(ti).read()))
    return out


def main():
    path = sys.argv[1]
    reps = 2
    members = sorted(read_members(path))
    best = min(_timed(lambda: [decode(b) for _, b in members]) for _ in range(reps))
    print("pil_decode_1t %.0f" % (len(members) / best))
    arrays = [decode(b) for _, b in members]
    w = (np.arange(max(a.size for a in arrays), dtype=np.uint64) % 251 + 1)
    total = 0
    for i, a in enumerate(arrays):
        s = int(np.dot(a.ravel().astype(np.uint64), w[: a.size]))
        total = (total + (i + 1) * s) % (1 << 64)
    print("checksum %d" % total)
    best = min(_timed(lambda: [decode(b) for _, b in sorted(read_members(path))]) for _ in range(reps))
    print("pil_archive_1t %.0f" % (len(members) / best))


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
