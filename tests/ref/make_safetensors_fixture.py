#!/usr/bin/python3
"""PyTorch side of the safetensors round trip (lib/io/safetensors, ssl-export).
Development only: `make fixtures-safetensors` runs it with Debian's
python3-torch; `make check` only reads what it wrote.

Writes, with its own small safetensors writer (Debian's torch 1.13 has no
safetensors package; the format is 8 bytes of header length, a JSON header,
the raw little-endian bytes):

  resnet18_w8.safetensors        torchvision's ResNet (BasicBlock, [2,2,2,2])
                                 at width 8 with the CIFAR stem (3x3/1 conv1,
                                 no max-pool), a SimCLR head
                                 head = Linear(64, 32, bias=False) BN1d(32)
                                 ReLU Linear(32, 16); random weights and
                                 non-trivial BatchNorm statistics; metadata
                                 as ssl-export writes it (ssl_tools.config,
                                 ssl_tools.normalize).
  resnet18_w8_batch.safetensors  images U8 (8, 32, 32, 3) and PyTorch's
                                 embeddings of them in eval mode: encoder
                                 F32 (8, 64) and proj F32 (8, 16), computed
                                 in float64 from the float32 weights.

The module also serves bench/export_roundtrip.sh: resnet() builds the
torchvision model that matches an ssl-tools config, load_file() reads a
safetensors file without the safetensors package."""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("float16"): "F16",
          np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("uint8"): "U8"}
NP_OF = {v: k for k, v in DTYPES.items()}


def save_file(tensors, path, metadata=None):
    """tensors: name -> numpy array or torch tensor (header in this order)."""
    arrays = {k: np.array(v.detach().cpu().numpy() if torch.is_tensor(v) else v, order="C")  # keeps 0-d
              for k, v in tensors.items()}
    header, pos = {}, 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    order = sorted(arrays, key=lambda k: -arrays[k].dtype.itemsize)  # aligned data, as ours
    offsets = {}
    for k in order:
        offsets[k] = (pos, pos + arrays[k].nbytes)
        pos += arrays[k].nbytes
    for k, a in arrays.items():
        header[k] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": list(offsets[k])}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for k in order:
            f.write(arrays[k].astype(arrays[k].dtype.newbyteorder("<")).tobytes())


def load_file(path):
    """-> (name -> torch tensor, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base, out = 8 + n, {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        a = np.frombuffer(data[base + b:base + e], dtype=NP_OF[v["dtype"]].newbyteorder("<"))
        out[k] = torch.from_numpy(a.astype(NP_OF[v["dtype"]]).reshape(v["shape"]).copy())
    return out, meta


class ResNetW(ResNet):
    """torchvision's ResNet with the stem and the stage widths of ssl-tools:
    stages of width, 2, 4, 8 x width channels (times 4 for Bottleneck), a
    CIFAR (3x3/1, no max-pool) or ImageNet (7x7/2, 3x3/2 max-pool) stem, any
    input channel count. Names and forward are torchvision's own."""

    def __init__(self, block, layers, width=64, stem="cifar", in_ch=3, num_classes=0):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_ch, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dim = 8 * width * block.expansion
        # No classifier: fc is the identity, so the state_dict is the encoder's
        # and load_state_dict(strict=True) checks every name.
        self.fc = nn.Linear(self.dim, num_classes) if num_classes else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


ARCHS = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
         "resnet50": (Bottleneck, [3, 4, 6, 3])}


def resnet(config, head=False, fc=False):
    """The torchvision model for an ssl_tools.config dict; head adds
    net.head (the SimCLR projection head, named as ssl-tools names it)."""
    block, layers = ARCHS[config["arch"]]
    net = ResNetW(block, layers, config["width"], config["stem"], config["in_channels"],
                  config["num_classes"] if fc else 0)
    if head:
        D, h, p = net.dim, config["proj_hidden"], config["proj_dim"]
        mods = [nn.Linear(D, h, bias=False), nn.BatchNorm1d(h), nn.ReLU()]
        if config["proj_layers"] == 3:
            mods += [nn.Linear(h, h, bias=False), nn.BatchNorm1d(h), nn.ReLU()]
        net.head = nn.Sequential(*mods, nn.Linear(h, p))
    return net


def normalize(images_u8, mean, std, dtype=torch.float32):
    """(N, H, W, C) uint8 -> (N, C, H, W) as ssl-encode feeds the model."""
    x = torch.from_numpy(images_u8).to(dtype).permute(0, 3, 1, 2) / 255
    m = torch.tensor(mean, dtype=dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=dtype).view(1, -1, 1, 1)
    return (x - m) / s


def randomise_bn(net, gen):
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=gen) + 0.5
            m.bias.data = torch.randn(n, generator=gen) * 0.1
            m.running_mean = torch.randn(n, generator=gen) * 0.2
            m.running_var = torch.rand(n, generator=gen) * 1.5 + 0.5
            m.num_batches_tracked = torch.randint(1, 100000, (), generator=gen, dtype=torch.int64)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures")
    torch.manual_seed(20240610)
    gen = torch.Generator().manual_seed(20240610)
    config = {"arch": "resnet18", "stem": "cifar", "width": 8, "in_channels": 3, "in_h": 32, "in_w": 32,
              "proj_layers": 2, "proj_hidden": 32, "proj_dim": 16, "num_classes": 0, "zero_init_residual": False}
    mean, std = [0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616]
    mean32 = [float(np.float32(v)) for v in mean]
    std32 = [float(np.float32(v)) for v in std]
    net = resnet(config, head=True)
    randomise_bn(net, gen)
    net.eval()
    sd = net.state_dict()
    save_file(sd, os.path.join(out, "resnet18_w8.safetensors"),
              {"format": "pt", "ssl_tools.config": json.dumps(config, separators=(",", ":")),
               "ssl_tools.normalize": json.dumps({"mean": mean32, "std": std32}, separators=(",", ":"))})

    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    # A smooth gradient under the noise, so the images are not all alike.
    images[:, :, :, 0] = (images[:, :, :, 0] // 2 + np.arange(32, dtype=np.uint8)[None, None, :] * 4)
    ref = resnet(config, head=True).double()
    ref.load_state_dict(sd)  # strict: every name and shape
    ref.eval()
    with torch.no_grad():
        h = ref(normalize(images, mean32, std32, torch.float64))
        z = ref.head(h)
    save_file({"images": images, "encoder": h.float(), "proj": z.float()},
              os.path.join(out, "resnet18_w8_batch.safetensors"))
    print("wrote %s/resnet18_w8{,_batch}.safetensors: %d tensors, |h| max %.3f"
          % (out, len(sd), float(h.abs().max())))


if __name__ == "__main__":
    main()
