#!/bin/bash
# bench_probe: ssl-probe's linear probe next to scikit-learn's
# LogisticRegression on the same 50,000 x 512 features (10 classes; 10,000
# test items), one run each, side by side on this machine.
#
# The features are random but structured like an encoder's output: class
# centres in a 32-dim latent space, noise, a random 512-dim linear map and a
# ReLU (non-negative, correlated, not separable). Both fit the same
# objective (same C, standardised features); scikit-learn gets its data in
# memory, ssl-probe reads two embeddings streams (its wall time includes
# that; "fit" is ssl-probe's own timing of the probe).
#
# usage: bench/bench_probe.sh [C]        (after `make`; default C = 1)
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:-1}
BIN=${SSL_BIN:-build/bin}
PY=/usr/bin/python3
[ -x "$BIN/ssl-probe" ] || { echo "bench_probe: build first (make)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

$PY - "$tmp" <<'EOF'
import sys, msgpack, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(2024)
K, L, D, NTR, NTE = 10, 32, 512, 50000, 10000
centres = rng.normal(0, 1.0, (K, L))
A = rng.normal(0, 1 / np.sqrt(L), (L, D))
def draw(n):
    y = rng.integers(0, K, n)
    z = centres[y] + rng.normal(0, 1.5, (n, L))
    x = np.maximum(z @ A + 0.1 * rng.normal(0, 1, (n, D)), 0).astype(np.float32)
    return x, y
def write(path, x, y):
    with open(path, "wb") as f:
        pk = msgpack.Packer(use_bin_type=True)
        f.write(pk.pack({"format": "ssl-stream", "version": [1, 0], "kind": "embeddings",
                         "classes": ["class%d" % c for c in range(K)], "records_per_epoch": len(y),
                         "epochs": 1, "start_epoch": 0, "meta": {},
                         "provenance": [{"tool": "bench_probe.sh", "version": "0", "args": []}]}))
        for i in range(len(y)):
            f.write(pk.pack({"id": i, "label": int(y[i]), "epoch": 0,
                             "embedding": {"dtype": "<f4", "shape": [D], "data": x[i].tobytes()}}))
        f.write(pk.pack({"end": True, "records": len(y)}))
xtr, ytr = draw(NTR)
xte, yte = draw(NTE)
write(out + "/train.emb", xtr, ytr)
write(out + "/test.emb", xte, yte)
np.save(out + "/xtr.npy", xtr); np.save(out + "/ytr.npy", ytr)
np.save(out + "/xte.npy", xte); np.save(out + "/yte.npy", yte)
EOF

t0=$(date +%s.%N)
"$BIN/ssl-probe" --quiet --json --train "$tmp/train.emb" --test "$tmp/test.emb" --C "$C" > "$tmp/ours.json"
t1=$(date +%s.%N)

$PY - "$tmp" "$C" "$t0" "$t1" <<'EOF'
import json, sys, time
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
tmp, C, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
ours = json.load(open(tmp + "/ours.json"))["results"][0]
xtr, ytr = np.load(tmp + "/xtr.npy"), np.load(tmp + "/ytr.npy")
xte, yte = np.load(tmp + "/xte.npy"), np.load(tmp + "/yte.npy")
s0 = time.perf_counter()
sc = StandardScaler().fit(xtr)
lr = LogisticRegression(C=C, multi_class="multinomial", solver="lbfgs", max_iter=1000)
lr.fit(sc.transform(xtr), ytr)
acc = (lr.predict(sc.transform(xte)) == yte).mean()
s1 = time.perf_counter()
opt = ours["settings"]["optimizer"]
print("linear probe, 50000 x 512 train, 10000 test, 10 classes, C = %g" % C)
print("  ssl-probe     %6.2f s fit (%6.2f s wall with reading the streams)  top-1 %.2f%%  %d L-BFGS iterations"
      % (ours["seconds"], t1 - t0, 100 * ours["top1"], opt["iterations"]))
print("  scikit-learn  %6.2f s fit                                         top-1 %.2f%%  %d L-BFGS iterations"
      % (s1 - s0, 100 * acc, lr.n_iter_[0]))
print("  ratio (scikit-learn / ssl-probe fit time): %.1fx; accuracy difference %.2f points"
      % ((s1 - s0) / ours["seconds"], 100 * (ours["top1"] - acc)))
EOF
