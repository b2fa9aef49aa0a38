#!/usr/bin/python3
# Reads an ssl-stream from stdin into numpy arrays and prints a summary.
import sys

import msgpack
import numpy as np


def tensor(t):
    a = np.frombuffer(t["data"], dtype=np.dtype(t["dtype"]))
    return a.reshape(t["shape"])


stream = msgpack.Unpacker(sys.stdin.buffer, max_buffer_size=1 << 31)
header = next(stream, None)
if not isinstance(header, dict) or header.get("format") != "ssl-stream":
    sys.exit("not an ssl-stream")
if header["version"][0] != 1:
    sys.exit("unsupported ssl-stream version")
count, total = 0, 0.0
for obj in stream:
    if "end" in obj:
        if obj["records"] != count:
            sys.exit("trailer disagrees with the record count")
        break
    arrays = {k: tensor(v) for k, v in obj.items() if isinstance(v, dict)}
    total += sum(float(a.sum(dtype=np.float64)) for a in arrays.values())
    count += 1
else:
    sys.exit("truncated stream: no trailer")
print("%s: %d records, %d classes, sum %.0f"
      % (header["kind"], count, len(header.get("classes", [])), total))
