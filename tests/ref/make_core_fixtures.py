#!/usr/bin/python3
"""PyTorch reference values for the compute core (lib/nn/conv, bn, layers, loss,
optim, model). Development only: `make fixtures` runs it with Debian's
python3-torch; `make check` only reads what it wrote.

Writes, in our tensor encoding (a msgpack map name -> {"dtype", "shape",
"data"}, see lib/io/stream.h):
  core_layers.msgpack  each layer's forward and backward on random data
  core_model.msgpack   resnet18 width 16 (CIFAR stem) + head 512-128 +
                       NT-Xent (t = 0.5) on 8 pairs of 32x32 images: loss,
                       embeddings, every gradient by name, then 3 LARS and
                       3 SGD steps (parameters after the first, the loss
                       trajectory)
  core_optim.msgpack   SGD / Nesterov / AdamW / LARS updates of small tensors
  core_arch.msgpack    tiny resnet50 (ImageNet stem, 3-layer head, NT-Xent)
                       and resnet34 (classifier, cross-entropy): outputs and
                       every gradient

References are computed in float64 from float32 inputs, so the C code
(float32) is compared against exact values. Activations are NCHW here; the
C tests convert to our channel-major layout.

Model weights are stored once, as uint8 q with a float32 scale per tensor:
w = float32(q - 128) * scale, exact in float32 on both sides. Large
gradients are stored as a strided sample (every ceil(numel/256)-th
element, from 0) plus their L2 norm."""
import math
import os
import sys

import msgpack
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, "/work/shared/reference")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "reference"))

torch.manual_seed(1234)
np.random.seed(1234)
DT = torch.float64
SAMPLE = 256


def enc(a):
    a = np.ascontiguousarray(a)
    kind = {np.dtype("float32"): "<f4", np.dtype("float64"): "<f8", np.dtype("uint8"): "|u1",
            np.dtype("int32"): "<i4", np.dtype("int64"): "<i8"}[a.dtype]
    return {"dtype": kind, "shape": list(a.shape), "data": a.tobytes()}


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy()


def rnd(*shape, scale=1.0):
    """float32-exact random values in double."""
    return (torch.randn(*shape) * scale).to(torch.float32).to(DT)


def stride_of(numel, k=SAMPLE):
    return max(1, (numel + k - 1) // k)


def sample(t, k=SAMPLE):
    flat = t.detach().reshape(-1)
    return flat[::stride_of(flat.numel(), k)]


# ---------------------------------------------------------------- layers
def layer_fixtures():
    out = {}

    def conv_case(tag, n, C, H, W, OC, K, S, P, bias):
        x = rnd(n, C, H, W).requires_grad_()
        w = rnd(OC, C, K, K, scale=0.3).requires_grad_()
        b = rnd(OC).requires_grad_() if bias else None
        y = F.conv2d(x, w, b, stride=S, padding=P)
        dy = rnd(*y.shape)
        y.backward(dy)
        out[f"{tag}.cfg"] = enc(np.array([n, C, H, W, OC, K, S, P, int(bias)], dtype=np.int32))
        for k, v in (("x", x), ("w", w), ("y", y), ("dy", dy), ("dx", x.grad), ("dw", w.grad)):
            out[f"{tag}.{k}"] = enc(f32(v))
        if bias:
            out[f"{tag}.b"] = enc(f32(b))
            out[f"{tag}.db"] = enc(f32(b.grad))

    conv_case("conv0", 2, 3, 7, 6, 4, 3, 1, 1, False)
    conv_case("conv1", 3, 4, 8, 9, 5, 3, 2, 1, True)
    conv_case("conv2", 2, 6, 5, 5, 3, 1, 2, 0, False)
    conv_case("conv3", 1, 2, 11, 10, 4, 7, 2, 3, False)
    conv_case("conv4", 3, 5, 4, 4, 6, 1, 1, 0, True)

    def bn_case(tag, shape):
        x = (rnd(*shape) * 2 + 0.5).requires_grad_()
        C = shape[1]
        bn = nn.BatchNorm2d(C) if len(shape) == 4 else nn.BatchNorm1d(C)
        bn = bn.to(DT)
        with torch.no_grad():
            bn.weight.copy_(rnd(C, scale=0.5) + 1)
            bn.bias.copy_(rnd(C, scale=0.2))
            bn.running_mean.copy_(rnd(C, scale=0.1))
            bn.running_var.copy_(rnd(C, scale=0.1).abs() + 0.5)
        rm0, rv0 = bn.running_mean.clone(), bn.running_var.clone()
        bn.train()
        y = bn(x)
        dy = rnd(*y.shape)
        y.backward(dy)
        bn.eval()
        ye = bn(x.detach())
        vals = {"x": x, "gamma": bn.weight, "beta": bn.bias, "rm0": rm0, "rv0": rv0, "rm1": bn.running_mean,
                "rv1": bn.running_var, "y": y, "dy": dy, "dx": x.grad, "dgamma": bn.weight.grad,
                "dbeta": bn.bias.grad, "yeval": ye}
        for k, v in vals.items():
            out[f"{tag}.{k}"] = enc(f32(v))

    bn_case("bn2d", (4, 3, 5, 6))
    bn_case("bn1d", (7, 5))

    # relu(bn(x)) and relu(bn(x) + r), against the fused kernels
    x = (rnd(3, 4, 3, 5)).requires_grad_()
    r = rnd(3, 4, 3, 5).requires_grad_()
    g = (rnd(4, scale=0.5) + 1).requires_grad_()
    be = rnd(4, scale=0.2).requires_grad_()
    y = F.relu(F.batch_norm(x, None, None, g, be, training=True) + r)
    dy = rnd(*y.shape)
    y.backward(dy)
    for k, v in (("x", x), ("r", r), ("gamma", g), ("beta", be), ("y", y), ("dy", dy), ("dx", x.grad),
                 ("dr", r.grad), ("dgamma", g.grad), ("dbeta", be.grad)):
        out[f"bnaddrelu.{k}"] = enc(f32(v))

    x = rnd(2, 3, 9, 8).requires_grad_()
    y = F.max_pool2d(x, 3, 2, 1)
    dy = rnd(*y.shape)
    y.backward(dy)
    for k, v in (("x", x), ("y", y), ("dy", dy), ("dx", x.grad)):
        out[f"maxpool.{k}"] = enc(f32(v))

    x = rnd(3, 4, 5, 3).requires_grad_()
    y = F.adaptive_avg_pool2d(x, 1).flatten(1)
    dy = rnd(*y.shape)
    y.backward(dy)
    for k, v in (("x", x), ("y", y), ("dy", dy), ("dx", x.grad)):
        out[f"avgpool.{k}"] = enc(f32(v))

    x = rnd(6, 5).requires_grad_()
    w = rnd(7, 5, scale=0.4).requires_grad_()
    b = rnd(7).requires_grad_()
    y = F.linear(x, w, b)
    dy = rnd(*y.shape)
    y.backward(dy)
    for k, v in (("x", x), ("w", w), ("b", b), ("y", y), ("dy", dy), ("dx", x.grad), ("dw", w.grad), ("db", b.grad)):
        out[f"linear.{k}"] = enc(f32(v))

    from torch_simclr_common import nt_xent
    for tag, N, D, t in (("ntxent0", 4, 6, 0.5), ("ntxent1", 5, 3, 0.1)):
        z = rnd(2 * N, D).requires_grad_()
        loss = nt_xent(z[:N], z[N:], t)
        loss.backward()
        out[f"{tag}.z"] = enc(f32(z))
        out[f"{tag}.cfg"] = enc(np.array([N, D], dtype=np.int32))
        out[f"{tag}.t"] = enc(np.array([t], dtype=np.float32))
        out[f"{tag}.loss"] = enc(np.array([loss.item()], dtype=np.float64))
        out[f"{tag}.dz"] = enc(f32(z.grad))

    logits = rnd(6, 4).requires_grad_()
    labels = torch.tensor([0, 3, 1, 1, 2, 0])
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out["ce.logits"] = enc(f32(logits))
    out["ce.labels"] = enc(labels.numpy().astype(np.int32))
    out["ce.loss"] = enc(np.array([loss.item()], dtype=np.float64))
    out["ce.dlogits"] = enc(f32(logits.grad))
    return out


# ---------------------------------------------------------------- model
class Block(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        o = F.relu(self.bn1(self.conv1(x)))
        o = self.bn2(self.conv2(o))
        return F.relu(o + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """torchvision's (v1.5: stride on the 3x3)."""
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = 4 * planes
        self.conv1 = nn.Conv2d(cin, planes, 1, 1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, 1, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        o = F.relu(self.bn1(self.conv1(x)))
        o = F.relu(self.bn2(self.conv2(o)))
        o = self.bn3(self.conv3(o))
        return F.relu(o + (x if self.downsample is None else self.downsample(x)))


DEPTHS = {"resnet18": (Block, (2, 2, 2, 2)), "resnet34": (Block, (3, 4, 6, 3)), "resnet50": (Bottleneck, (3, 4, 6, 3))}


class Net(nn.Module):
    """torchvision names. resnet18 with the CIFAR stem and a 2-layer head is
    the same computation as torch_simclr_common's CifarResNet18 +
    projection_head (checked in model_fixtures)."""

    def __init__(self, w, hidden, out_dim, arch="resnet18", stem="cifar", in_ch=3, head_layers=2, classes=0):
        super().__init__()
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_ch, w, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_ch, w, 7, 2, 3, bias=False)
        self.pool = stem != "cifar"
        self.bn1 = nn.BatchNorm2d(w)
        block, depth = DEPTHS[arch]
        cin = w
        for i, d in enumerate(depth):
            planes = w << i
            blocks = []
            for j in range(d):
                blocks.append(block(cin, planes, 2 if j == 0 and i > 0 else 1))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.head = None
        if head_layers:
            mods, d = [], cin
            for j in range(head_layers - 1):
                mods += [nn.Linear(d, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
                d = hidden
            mods.append(nn.Linear(d, out_dim))
            self.head = nn.Sequential(*mods)
        self.fc = nn.Linear(cin, classes) if classes else None

    def encode(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if self.pool:
            x = F.max_pool2d(x, 3, 2, 1)
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x):
        h = self.encode(x)
        return h, self.head(h)


def randomise_bn(net):
    with torch.no_grad():
        for name, mod in net.named_modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.weight.copy_(torch.rand(mod.weight.shape) * 0.8 + 0.6)
                mod.bias.copy_(torch.rand(mod.bias.shape) * 0.4 - 0.2)


def quantize(t):
    t = t.detach().to(torch.float64)
    m = t.abs().max().item()
    scale = np.float32(m / 127.0 if m > 0 else 1.0)
    q = np.clip(np.round(t.numpy() / float(scale)), -128, 127).astype(np.int64) + 128
    deq = (q.astype(np.float32) - np.float32(128)) * scale  # float32 ops, as the C side
    return q.astype(np.uint8), scale, torch.from_numpy(deq.astype(np.float32))


def lars_step(params, lr, momentum=0.9, wd=1e-6, eta=1e-3):
    """SimCLR's LARS (as lib/nn/optim.h): weight decay and trust ratio on
    conv/linear weights only (not BN, not bias)."""
    with torch.no_grad():
        for name, p, st in params:
            g = p.grad
            decayed = name.endswith(".weight") and p.dim() > 1
            if decayed:
                g = g + wd * p
                pn, gn = p.norm(), g.norm()
                lr_t = lr * eta * pn / gn if pn > 0 and gn > 0 else lr
            else:
                lr_t = lr
            st["buf"] = momentum * st["buf"] + lr_t * g
            p -= st["buf"]


def model_fixtures():
    out = {}
    W, HID, OUT, N, T = 16, 512, 128, 8, 0.5
    net = Net(W, HID, OUT)
    # the same model as the reference implementation
    from torch_simclr_common import CifarResNet18, projection_head
    ref_enc = CifarResNet18((W, 2 * W, 4 * W, 8 * W))
    ref_head = projection_head(8 * W, HID, OUT)
    mapping = {}
    for k in net.state_dict():
        if k.startswith("head."):
            mapping[k] = (ref_head, k[5:])
            continue
        r = k.replace("conv1.", "stem.0.", 1) if k.startswith("conv1.") else k
        r = r.replace("bn1.", "stem.1.", 1) if k.startswith("bn1.") else r
        if k.startswith("layer"):
            li, bi = int(k[5]) - 1, int(k.split(".")[1])
            rest = k.split(".", 2)[2].replace("downsample.", "short.")
            r = f"layers.{2 * li + bi}.{rest}"
        mapping[k] = (ref_enc, r)
    assert len(mapping) == len(ref_enc.state_dict()) + len(ref_head.state_dict())

    # weights: PyTorch's init (kaiming-normal fan_out convs, default Linear),
    # BN affine randomised so it matters; all quantised to uint8
    randomise_bn(net)
    for name, p in net.named_parameters():
        q, scale, deq = quantize(p)
        with torch.no_grad():
            p.copy_(deq)
        out[f"w/{name}"] = enc(q)
        out[f"s/{name}"] = enc(np.array([scale], dtype=np.float32))
    net = net.to(DT)
    for k, v in net.state_dict().items():
        mod, rk = mapping[k]
        mod.state_dict()[rk].copy_(v.to(torch.float32))

    # 8 pairs of 32x32 uint8 images, normalised as input_normalize_u8 does
    imgs = np.random.randint(0, 256, size=(2 * N, 32, 32, 3), dtype=np.uint8)
    mean = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
    std = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)
    a = np.float32(1) / (np.float32(255) * std)
    b = -mean / std
    xf = imgs.astype(np.float32) * a + b  # float32, as in C
    x = torch.from_numpy(xf.transpose(0, 3, 1, 2).copy()).to(DT)
    out["images"] = enc(imgs)
    out["mean"] = enc(mean)
    out["std"] = enc(std)
    out["cfg"] = enc(np.array([W, HID, OUT, N], dtype=np.int32))
    out["temperature"] = enc(np.array([T], dtype=np.float32))

    from torch_simclr_common import nt_xent
    start = {k: v.clone() for k, v in net.state_dict().items()}  # before any forward
    # cross-check against the reference modules (float32) on this input
    ref_enc.train(), ref_head.train()
    with torch.no_grad():
        zr = ref_head(ref_enc(x.to(torch.float32)))
    net.train()
    h, z = net(x)
    assert torch.allclose(z.to(torch.float32), zr, rtol=1e-3, atol=1e-4), "Net differs from the reference model"
    loss = nt_xent(z[:N], z[N:], T)
    loss.backward()
    out["h"] = enc(f32(h))
    out["z"] = enc(f32(z))
    out["loss"] = enc(np.array([loss.item()], dtype=np.float64))
    for name, p in net.named_parameters():
        out[f"g/{name}"] = enc(f32(sample(p.grad)))
        out[f"gn/{name}"] = enc(np.array([p.grad.norm().item()], dtype=np.float64))
    for name, buf in net.named_buffers():
        if buf.dtype == DT:
            out[f"b1/{name}"] = enc(f32(buf))

    def trajectory(tag, make_step):
        net.load_state_dict(start)
        losses = []
        for it in range(4):
            net.zero_grad(set_to_none=True)
            _, zz = net(x)
            ll = nt_xent(zz[:N], zz[N:], T)
            losses.append(ll.item())
            if it == 3:
                break
            ll.backward()
            make_step()
            if it == 0:  # parameters after the first update
                for name, p in net.named_parameters():
                    out[f"{tag}/p1/{name}"] = enc(f32(sample(p)))
        out[f"{tag}/losses"] = enc(np.array(losses, dtype=np.float64))
        for name, buf in net.named_buffers():
            if buf.dtype == DT:
                out[f"{tag}/b/{name}"] = enc(f32(buf))

    # A ReLU network's trajectory is chaotic in the last bits: a rounding
    # difference that flips one ReLU changes the next gradient by a finite
    # amount. PyTorch's own float32 run of these 3 steps differs from its
    # float64 run by up to 2e-4 (LARS) and 5e-3 (SGD at lr 0.1) in the loss.
    # The C test therefore checks the first update tightly and the loss
    # trajectory loosely; lib/nn/optim's formulas are checked exactly on fixed
    # gradients (core_optim.msgpack).
    LARS_LR, SGD_LR = 0.3, 0.01
    out["lars/lr"] = enc(np.array([LARS_LR], dtype=np.float32))
    out["sgd/lr"] = enc(np.array([SGD_LR], dtype=np.float32))
    lars_state = [(n_, p, {"buf": torch.zeros_like(p)}) for n_, p in net.named_parameters()]
    trajectory("lars", lambda: lars_step(lars_state, LARS_LR))
    sgd = torch.optim.SGD(net.parameters(), lr=SGD_LR, momentum=0.9, weight_decay=5e-4)
    trajectory("sgd", sgd.step)
    return out


def arch_fixtures():
    """Tiny versions of the other architectures (bottleneck blocks, ImageNet
    stem with max-pool, 3-layer head, classifier path): forward, loss and
    every gradient (a 64-element sample), running statistics."""
    out = {}
    cases = {
        # tag: arch, stem, width, in_ch, H, W, head_layers, hidden, out, classes, n
        "r50": ("resnet50", "imagenet", 4, 2, 21, 18, 3, 16, 8, 0, 6),
        "r34": ("resnet34", "cifar", 2, 1, 9, 9, 0, 0, 0, 5, 6),
    }
    archs, stems = {"resnet18": 0, "resnet34": 1, "resnet50": 2}, {"cifar": 0, "imagenet": 1}
    for tag, (arch, stem, w, cin, H, W, hl, hid, od, ncls, n) in cases.items():
        net = Net(w, hid, od, arch, stem, cin, hl, ncls)
        randomise_bn(net)
        for name, p in net.named_parameters():
            q, scale, deq = quantize(p)
            with torch.no_grad():
                p.copy_(deq)
            out[f"{tag}/w/{name}"] = enc(q)
            out[f"{tag}/s/{name}"] = enc(np.array([scale], dtype=np.float32))
        net = net.to(DT)
        out[f"{tag}/cfg"] = enc(np.array([archs[arch], stems[stem], w, cin, H, W, hl, hid, od, ncls, n], dtype=np.int32))
        x = rnd(n, cin, H, W)
        out[f"{tag}/x"] = enc(f32(x))
        net.train()
        h = net.encode(x)
        if ncls:
            y = net.fc(h)
            labels = torch.arange(n) % ncls
            loss = F.cross_entropy(y, labels)
            out[f"{tag}/labels"] = enc(labels.numpy().astype(np.int32))
        else:
            from torch_simclr_common import nt_xent
            y = net.head(h)
            loss = nt_xent(y[:n // 2], y[n // 2:], 0.5)
        loss.backward()
        out[f"{tag}/h"] = enc(f32(h))
        out[f"{tag}/y"] = enc(f32(y))
        out[f"{tag}/loss"] = enc(np.array([loss.item()], dtype=np.float64))
        for name, p in net.named_parameters():
            out[f"{tag}/g/{name}"] = enc(f32(sample(p.grad, 64)))
            out[f"{tag}/gn/{name}"] = enc(np.array([p.grad.norm().item()], dtype=np.float64))
        for name, buf in net.named_buffers():
            if buf.dtype == DT:
                out[f"{tag}/b1/{name}"] = enc(f32(sample(buf, 64)))
    return out


# ---------------------------------------------------------------- optim
def optim_fixtures():
    out = {}
    shapes = {"a.weight": (4, 3, 3, 3), "a.bias": (4,), "bn.weight": (4,), "bn.bias": (4,), "fc.weight": (5, 6)}
    init = {k: rnd(*s) for k, s in shapes.items()}
    grads = [{k: rnd(*s) for k, s in shapes.items()} for _ in range(3)]
    for k, v in init.items():
        out[f"p0/{k}"] = enc(f32(v))
    for i, g in enumerate(grads):
        for k, v in g.items():
            out[f"g{i}/{k}"] = enc(f32(v))

    def run(tag, make):
        ps = {k: v.clone().requires_grad_() for k, v in init.items()}
        opt, step = make(ps)
        for g in grads:
            for k, p in ps.items():
                p.grad = g[k].clone()
            step(opt)
        for k, p in ps.items():
            out[f"{tag}/{k}"] = enc(f32(p))

    run("sgd", lambda ps: (torch.optim.SGD(list(ps.values()), lr=0.1, momentum=0.9, weight_decay=5e-4), lambda o: o.step()))
    run("nesterov", lambda ps: (torch.optim.SGD(list(ps.values()), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True),
                                lambda o: o.step()))
    run("adamw", lambda ps: (torch.optim.AdamW(list(ps.values()), lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
                             lambda o: o.step()))

    def lars_make(ps):
        st = [(k, p, {"buf": torch.zeros_like(p)}) for k, p in ps.items()]
        return st, lambda s: lars_step(s, 0.5, wd=1e-4)
    run("lars", lars_make)
    return out


def write(path, d):
    with open(path, "wb") as f:
        f.write(msgpack.packb(d, use_bin_type=True))
    print(f"{path}: {os.path.getsize(path)} bytes, {len(d)} tensors")


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(2)
    write(os.path.join(outdir, "core_layers.msgpack"), layer_fixtures())
    write(os.path.join(outdir, "core_model.msgpack"), model_fixtures())
    write(os.path.join(outdir, "core_optim.msgpack"), optim_fixtures())
    write(os.path.join(outdir, "core_arch.msgpack"), arch_fixtures())


if __name__ == "__main__":
    main()
