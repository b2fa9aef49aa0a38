#!/usr/bin/python3
# Writes the reproducers of issue 19 (hostile input, round two) into the
# committed fuzz corpora: fuzz/corpus/<harness>/i19-*. Development only; the
# files are committed, and `make check` replays every corpus through
# fuzz/replay.c. Seeds from our own writers come from fuzz/make_corpus.c.
# usage: /usr/bin/python3 fuzz/repro.py [fuzz/corpus]
import io
import os
import struct
import sys
import tarfile
import zlib

import msgpack

out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus"


def put(harness, name, data):
    os.makedirs(os.path.join(out, harness), exist_ok=True)
    with open(os.path.join(out, harness, "i19-" + name), "wb") as f:
        f.write(data)


def chunk(t, d, declared=None):
    n = len(d) if declared is None else declared
    return struct.pack(">I", n) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png(ctype, depth, rows, w, h, extra=b"", plte=None):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    raw = b"".join(b"\0" + r for r in rows)
    body = chunk(b"IHDR", ihdr) + (chunk(b"PLTE", plte) if plte else b"") + extra
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


RGB2 = [bytes([200, 10, 30] * 2)] * 2
PNG2 = png(2, 8, RGB2, 2, 2)


def tar(entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, arg in entries:
            i = tarfile.TarInfo(name)
            i.mtime = 1700000000
            if kind == "dir":
                i.type = tarfile.DIRTYPE
                t.addfile(i)
            elif kind == "hard":
                i.type = tarfile.LNKTYPE
                i.linkname = arg
                t.addfile(i)
            else:
                i.size = len(arg)
                t.addfile(i, io.BytesIO(arg))
    return b.getvalue()


# item 3: a 137-byte PNG whose tEXt claims 2 GiB; item 6: palette + tRNS
text_bomb = png(2, 8, RGB2, 2, 2)[:33] + chunk(b"tEXt", b"Comment\0hello", 0x7FFFFFFF) + b"\0" * 60
pal_trns = png(3, 8, [bytes([0, 1])] * 2, 2, 2, chunk(b"tRNS", bytes([0, 128])), bytes([200, 10, 30, 1, 2, 3]))
put("image", "png-text-2g", text_bomb)
put("image", "png-palette-trns", pal_trns)
put("image", "png-grey-trns", png(0, 8, [bytes([5, 6])] * 2, 2, 2, chunk(b"tRNS", bytes([0, 5]))))

# items 1, 7, 11, 13 through fuzz_dataset (selector 0: an archive)
put("dataset", "deep-member-path", b"\0" + tar([("d/" * 2040, "dir", None)]))
put("dataset", "hard-links", b"\0" + tar([("cat/a.png", "file", PNG2), ("dog/b.png", "hard", "cat/a.png"),
                                           ("dog/c.png", "hard", "cat/missing.png")]))
put("dataset", "long-member-path", b"\0" + tar([("cls/" + "a" * 4100 + "/x.png", "file", PNG2),
                                                 ("cat/a.png", "file", PNG2)]))
put("dataset", "invalid-utf8-names", b"\0" + tar([("caf\udce9/x\udcff.png", "file", PNG2),
                                                   ("csi\u009b[2J/y.png", "file", PNG2)]))
put("dataset", "png-text-2g", b"\0" + tar([("cat/a.png", "file", PNG2), ("cat/bomb.png", "file", text_bomb)]))

# fuzz_paths: type, repeat, segment length, segment
def ent(t, r, seg):
    return bytes([t, r, len(seg)]) + seg


put("paths", "deep-and-long", ent(0, 0, b"cat/a") + ent(1, 127, b"d/") + ent(0, 127, b"e/f") +
    ent(0, 255, b"long/") + ent(2, 0, b"dog/b") + ent(3, 0, b"sym/c"))
put("paths", "utf8-and-links", ent(0, 0, b"caf\xe9/a") + ent(2, 3, b"x\xff/") + ent(1, 0, b"empty") + b"\1")

# fuzz_pngchunks: selector, then (type, declared length, n, data)
def pc(t, declared, d):
    return t + struct.pack(">I", declared) + bytes([len(d)]) + d


put("pngchunks", "text-2g", b"\x01" + pc(b"tEXt", 0x7FFFFFFF, b"Comment\0hello"))
put("pngchunks", "ztxt-600m", b"\x01" + pc(b"zTXt", 600 << 20, b"k\0\0" + zlib.compress(b"v" * 100)))
put("pngchunks", "palette-trns", b"\x02" + pc(b"tRNS", 4, bytes([0, 128, 255, 7])))
put("pngchunks", "grey-trns", b"\x00" + pc(b"tRNS", 2, bytes([0, 5])))
put("pngchunks", "rgb-trns-after-idat", b"\x09" + pc(b"tRNS", 6, bytes(6)) + pc(b"tEXt", 5, b"k\0v"))
put("pngchunks", "private-600m", b"\x04" + pc(b"prVt", 600 << 20, b"x" * 16))
put("pngchunks", "iccp-splt", b"\x01" + pc(b"iCCP", 20, b"icc\0\0" + zlib.compress(b"\0" * 40)[:15]) +
    pc(b"sPLT", 0xFFFFFF, b"p\0\x08" + bytes(20)))

# fuzz_tensors: selector, then (rank, dims, 2-byte bin length, data)
def tr(dims, binlen, data=b""):
    return bytes([len(dims)]) + bytes(dims) + struct.pack(">H", binlen) + data


big = 0x7F + 60   # 60,000
put("tensors", "image-0x60000x3", b"\x00" + tr([0, big, 3], 0))
put("tensors", "image-0x8x3", b"\x00" + tr([0, 8, 3], 0))
put("tensors", "image-8x8x0", b"\x00" + tr([8, 8, 0], 0))
put("tensors", "image-good-and-odd", b"\x00" + tr([8, 5, 3], 0xFFFF) + tr([1, 1, 1], 0xFFFF, b"\x80") +
    tr([2, 3, 4], 0xFFFF))
put("tensors", "image-rank5", b"\x03" + tr([1, 2, 3, 1, 1], 0xFFFF))
put("tensors", "views-zero", b"\x01" + tr([2, 0, 8, 3], 0))
put("tensors", "views-good", b"\x01" + tr([2, 4, 4, 3], 0xFFFF))
put("tensors", "embedding-zero", b"\x02" + tr([0], 0))
put("tensors", "embeddings-1e30", b"\x02" + tr([4], 16, struct.pack("<4f", 1e30, -1e30, 3e30, 2e30)) +
    tr([4], 16, struct.pack("<4f", -2e30, 1e30, 1e30, -3e30)) + tr([4], 16, struct.pack("<4f", 5e29, 0, 1e30, 1)))

# fuzz_stream: a zero-sized image, a map as source, a str that is not UTF-8
def stream(*recs):
    hdr = {"format": "ssl-stream", "version": [1, 0], "kind": "images"}
    body = [msgpack.packb(hdr)] + [msgpack.packb(r) for r in recs]
    return b"".join(body) + msgpack.packb({"end": True, "records": len(recs)})


def img(shape, n):
    return {"dtype": "|u1", "shape": shape, "data": bytes(n)}


put("stream", "image-0x8x3", stream({"id": 0, "label": -1, "epoch": 0, "image": img([0, 8, 3], 0)}))
put("stream", "source-map", stream({"id": 0, "label": -1, "epoch": 0, "source": {}, "image": img([1, 1, 3], 3)}))
raw = stream({"id": 0, "label": -1, "epoch": 0, "source": "caf\u00e9", "image": img([1, 1, 3], 3)})
put("stream", "source-not-utf8", raw.replace("caf\u00e9".encode(), b"caf\xe9\xff"))

# safetensors: a header length of 2^40 (item 15)
put("safetensors", "header-2p40", struct.pack("<Q", 1 << 40) + b"{" + bytes(55))
