#!/bin/bash
# export_roundtrip: weights travel both ways between ssl-tools and PyTorch
# (Debian's python3-torch and torchvision) on this machine, on real CIFAR-10
# images, and the embeddings agree.
#
#  1. ssl-tools -> PyTorch: a resnet18 (CIFAR stem, width 16, 2-layer head)
#     trained for a few SimCLR steps (so the BatchNorm statistics are real),
#     exported with ssl-export --head, loaded into torchvision's ResNet
#     (BasicBlock, [2, 2, 2, 2]) with load_state_dict(strict=True): the
#     encoder and projection embeddings must match ssl-encode's.
#  2. The README's ssl_resnet function, taken from README.md as it is, on
#     untrained width-8 CIFAR-stem and width-16 ImageNet-stem (64x64)
#     models: it builds torchvision's ResNet at that width and stem, and the
#     export loads into it strictly.
#  3. PyTorch -> ssl-tools: a stock torchvision.models.resnet18() (ImageNet
#     stem, width 64, fc of 1000 classes, random weights and BatchNorm
#     statistics, no ssl-tools metadata), saved by PyTorch as safetensors,
#     imported with ssl-train --init-from (the architecture inferred from
#     the tensors, fc left out) into a checkpoint; ssl-encode's embeddings
#     must match torchvision's on 64x64 images.
#  4. PyTorch -> ssl-encode directly: a torch-written file with ssl-tools
#     metadata (resnet34, CIFAR stem, width 8) as ssl-encode -m.
#
# Agreement: for each embedding, max |ours - torch| / max |torch| <= 1e-5
# (the infinity-norm relative error of the vector), where PyTorch
# runs the loaded model in float64 (so the figure is our float32 error, not
# the sum of two float32 errors); the weights it loads are the float32 ones.
#
# usage: bench/export_roundtrip.sh           (after `make`; about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SSL_BIN:-build/bin}
PY=/usr/bin/python3
DATA=${CIFAR_TEST:-../shared/data/cifar10-test.tar.gz}
[ -x "$BIN/ssl-export" ] || { echo "export_roundtrip: build first (make)" >&2; exit 1; }
[ -f "$DATA" ] || { echo "export_roundtrip: $DATA not found (set CIFAR_TEST)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PATH="$BIN:$PATH"
q=--quiet

echo "== 1. ssl-tools -> PyTorch (resnet18, cifar stem, width 16, head; 6 SimCLR steps)"
ssl-decode $q --limit 384 "$DATA" | ssl-augment $q --recipe cifar --views 2 |
	ssl-train $q --width 16 --proj-hidden 64 --proj-dim 32 --batch 64 -o "$tmp/w16.ssl"
ssl-export $q --head -o "$tmp/w16.safetensors" "$tmp/w16.ssl"
ssl-decode $q --limit 64 "$DATA" > "$tmp/img32"
ssl-encode $q -m "$tmp/w16.ssl" --npy "$tmp/w16_h.npy" "$tmp/img32" > /dev/null
ssl-encode $q -m "$tmp/w16.ssl" --layer proj --npy "$tmp/w16_z.npy" "$tmp/img32" > /dev/null

echo "== 2. README's ssl_resnet (resnet18: width 8 cifar stem; width 16 imagenet stem, 64x64)"
ssl-train $q --steps 0 --input-size 32x32x3 --width 8 --seed 3 -o "$tmp/w8.ssl"
ssl-export $q -o "$tmp/w8.safetensors" "$tmp/w8.ssl"
ssl-encode $q -m "$tmp/w8.ssl" --npy "$tmp/w8_h.npy" "$tmp/img32" > /dev/null

echo "== 3./4. PyTorch -> ssl-tools"
ssl-decode $q --limit 16 --size 64x64 "$DATA" > "$tmp/img64"
ssl-train $q --steps 0 --input-size 64x64x3 --stem imagenet --width 16 --seed 4 -o "$tmp/w16i.ssl"
ssl-export $q -o "$tmp/w16i.safetensors" "$tmp/w16i.ssl"
ssl-encode $q -m "$tmp/w16i.ssl" --npy "$tmp/w16i_h.npy" "$tmp/img64" > /dev/null
$PY - "$tmp" <<'EOF'
import json, sys
import torch, torchvision
sys.path.insert(0, "tests/ref")
from make_safetensors_fixture import load_file, save_file, resnet, randomise_bn
tmp = sys.argv[1]
torch.manual_seed(5)
g = torch.Generator().manual_seed(5)
tv = torchvision.models.resnet18()          # stock: ImageNet stem, fc 512 -> 1000
randomise_bn(tv, g)
save_file(tv.state_dict(), tmp + "/tv.safetensors")           # no metadata at all
torch.save(tv.state_dict(), tmp + "/tv.pt")
cfg = {"arch": "resnet34", "stem": "cifar", "width": 8, "in_channels": 3, "in_h": 32, "in_w": 32,
       "proj_layers": 0, "proj_hidden": 0, "proj_dim": 0, "num_classes": 0, "zero_init_residual": False}
r34 = resnet(cfg)
randomise_bn(r34, g)
norm = {"mean": [0.5, 0.45, 0.4], "std": [0.25, 0.25, 0.3]}
save_file(r34.state_dict(), tmp + "/r34.safetensors",
          {"format": "pt", "ssl_tools.config": json.dumps(cfg), "ssl_tools.normalize": json.dumps(norm)})
torch.save(r34.state_dict(), tmp + "/r34.pt")
EOF
ssl-train $q --init-from "$tmp/tv.safetensors" --steps 0 --input-size 64x64x3 \
	--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 -o "$tmp/tv.ssl"
ssl-encode $q -m "$tmp/tv.ssl" --npy "$tmp/tv_h.npy" "$tmp/img64" > /dev/null
ssl-encode $q -m "$tmp/r34.safetensors" --npy "$tmp/r34_h.npy" "$tmp/img32" > /dev/null

$PY - "$tmp" <<'EOF'
import json, sys
import msgpack, numpy as np, torch, torchvision
sys.path.insert(0, "tests/ref")
from make_safetensors_fixture import load_file, resnet, normalize
tmp = sys.argv[1]
torch.set_num_threads(2)
D = torch.float64
F32 = lambda v: [float(np.float32(x)) for x in v]  # the values ssl-tools holds

def images(path):
    with open(path, "rb") as f:
        u = msgpack.Unpacker(f, max_buffer_size=1 << 30)
        next(u)
        out = [np.frombuffer(r["image"]["data"], np.uint8).reshape(r["image"]["shape"]) for r in u if "end" not in r]
    return np.stack(out)

def report(what, ours, ref):
    """Each embedding's largest difference relative to its largest value."""
    ours = np.load(ours)
    err = float(np.max(np.abs(ours - ref).max(1) / np.maximum(1e-30, np.abs(ref).max(1))))
    ok = err <= 1e-5
    print("%-58s %3d x %-4d |max| %8.3g  rel diff %.2e  %s"
          % (what, ref.shape[0], ref.shape[1], np.abs(ref).max(), err, "ok" if ok else "FAIL"))
    return ok

x32, x64 = images(tmp + "/img32"), images(tmp + "/img64")
ok = True
with torch.no_grad():
    # 1. our export into torchvision's ResNet, strictly
    sd, meta = load_file(tmp + "/w16.safetensors")
    cfg, norm = json.loads(meta["ssl_tools.config"]), json.loads(meta["ssl_tools.normalize"])
    net = resnet(cfg, head=True)
    net.load_state_dict(sd, strict=True)
    net.double().eval()
    h = net(normalize(x32, norm["mean"], norm["std"], D))
    ok &= report("1. ssl-export -> torchvision ResNet, encoder", tmp + "/w16_h.npy", h.numpy())
    ok &= report("1. ssl-export -> torchvision ResNet, head (proj)", tmp + "/w16_z.npy", net.head(h).numpy())

    # 2. the README's function, run from README.md's text (load_file from
    #    the safetensors package is the fixture script's reader here:
    #    Debian has no package)
    readme = open("README.md").read()
    code = readme[readme.index("def ssl_resnet("):]
    code = code[:code.index("    return m\n") + len("    return m\n")]
    from torchvision.models.resnet import ResNet, BasicBlock, Bottleneck
    env = {"torch": torch, "ResNet": ResNet, "BasicBlock": BasicBlock, "Bottleneck": Bottleneck}
    exec(code, env)
    for name, x in (("w8", x32), ("w16i", x64)):
        sd, meta = load_file(tmp + "/" + name + ".safetensors")
        cfg, norm = json.loads(meta["ssl_tools.config"]), json.loads(meta["ssl_tools.normalize"])
        m = env["ssl_resnet"](cfg["arch"], width=cfg["width"], stem=cfg["stem"], in_channels=cfg["in_channels"])
        m.load_state_dict(sd); m.eval()
        ok &= report("2. README ssl_resnet(%s, width %d, %s stem), strict" % (cfg["arch"], cfg["width"], cfg["stem"]),
                     tmp + "/" + name + "_h.npy", m.double()(normalize(x, norm["mean"], norm["std"], D)).numpy())

    # 3. stock torchvision resnet18 -> ssl-train --init-from -> ssl-encode
    tv = torchvision.models.resnet18()
    tv.load_state_dict(torch.load(tmp + "/tv.pt"))
    tv.fc = torch.nn.Identity()
    tv.double().eval()
    h = tv(normalize(x64, F32([0.485, 0.456, 0.406]), F32([0.229, 0.224, 0.225]), D))
    ok &= report("3. torchvision resnet18 -> ssl-train --init-from, 64x64", tmp + "/tv_h.npy", h.numpy())

    # 4. torch-written resnet34 with metadata -> ssl-encode -m
    cfg = {"arch": "resnet34", "stem": "cifar", "width": 8, "in_channels": 3, "in_h": 32, "in_w": 32,
           "proj_layers": 0, "proj_hidden": 0, "proj_dim": 0, "num_classes": 0, "zero_init_residual": False}
    r34 = resnet(cfg)
    r34.load_state_dict(torch.load(tmp + "/r34.pt"))
    r34.double().eval()
    h = r34(normalize(x32, F32([0.5, 0.45, 0.4]), F32([0.25, 0.25, 0.3]), D))
    ok &= report("4. torch resnet34 (width 8) -> ssl-encode -m", tmp + "/r34_h.npy", h.numpy())
print("export_roundtrip: %s" % ("all agree" if ok else "MISMATCH"))
sys.exit(0 if ok else 1)
EOF
