#!/usr/bin/env python3
"""Makes featx's parity fixtures from torch/torchvision (run once, in a throwaway venv).

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch torchvision safetensors numpy
    /tmp/venv/bin/python scripts/make_fixtures.py

Weights are not stored: every parameter is generated from its state_dict key by a counter-based
generator (splitmix64) that tests/it/support/mod.rs reproduces bit for bit, so Rust and torch
run the same model. What is stored, per model, is each node's output for a generated batch-2
224x224 input: shape, float64 sum / mean square / max |x|, and up to 4096 values taken at an even
stride over the flattened tensor (all of them for small tensors).

It also writes a torchvision ResNet18 state dict with patterned (highly compressible) values as
torch.save `.pth` and as `.safetensors`, gzipped, with torch's outputs for it, so the loaders are
tested on files written by torch itself.
"""
import copy
import gzip
import io
import json
import os
import shutil
import sys

import numpy as np
import safetensors.numpy
import safetensors.torch
import torch
import torch.nn as nn
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
SAMPLES = 4096
MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def fnv1a64(text: str) -> np.uint64:
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return np.uint64(h)


def uniform(key: str, n: int) -> np.ndarray:
    """n float32 values in [-1, 1), exactly as tests/it/support/mod.rs computes them."""
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = fnv1a64(key) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    top = (z >> np.uint64(40)).astype(np.float32)
    return top * np.float32(2.0 ** -23) - np.float32(1.0)


def generated(key: str, shape) -> np.ndarray:
    """The value featx's tests give the state_dict entry `key` of this shape."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(key, n)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        v = u * np.float32(0.5) + np.float32(1.0)
    elif leaf == "weight" and len(shape) == 1:  # BatchNorm gamma
        v = u * np.float32(0.25) + np.float32(1.0)
    elif leaf in ("bias", "running_mean", "in_proj_bias"):
        v = u * np.float32(0.1)
    elif leaf in ("weight", "in_proj_weight"):
        fan_in = int(np.prod(shape[1:]))
        v = u * np.float32(np.sqrt(6.0 / fan_in))
    else:
        v = u * np.float32(2.0)
    return v.reshape(shape).astype(np.float32)


class AlexNet(nn.Module):
    """The seed article's AlexNet."""

    def __init__(self, num_classes=100):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 96, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.conv2 = nn.Sequential(nn.Conv2d(96, 256, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.conv3 = nn.Sequential(
            nn.Conv2d(256, 384, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(384, 384, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, 1, 1), nn.ReLU(),
            nn.MaxPool2d(3, 2),
        )
        self.fc = nn.Sequential(
            nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.fc(self.conv3(self.conv2(self.conv1(x))).view(-1, 9216))


def true_values(model):
    """torchvision's ResNet applies ReLU in place, so an extractor asked for `bn1` and `relu`
    returns bn1 after the ReLU (MobileNetV3's classifier does the same with Hardswish). featx
    returns every node's own value: so do the fixtures, with every in-place module turned
    out-of-place."""
    for m in model.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    return model


def fill_generated(model):
    true_values(model)
    sd = model.state_dict()
    for key, t in sd.items():
        if t.dtype.is_floating_point:
            sd[key] = torch.from_numpy(generated(key, tuple(t.shape)))
    model.load_state_dict(sd)
    return model.eval()


def node_record(t: torch.Tensor, samples: int = SAMPLES):
    flat = t.detach().double().reshape(-1)
    n = flat.numel()
    stride = max(1, -(-n // samples))
    return {
        "shape": list(t.shape),
        "stride": stride,
        "sum": float(flat.sum()),
        "mean_sq": float((flat * flat).mean()),
        "abs_max": float(flat.abs().max()),
    }, t.detach().reshape(-1)[::stride].float().contiguous().numpy()


def node_fixture(name: str, model, x):
    _, eval_nodes = get_graph_node_names(model)
    extractor = create_feature_extractor(model, return_nodes=eval_nodes[1:])
    with torch.no_grad():
        outs = extractor(x)
    outs = {"x": x, **outs}
    meta, samples = {}, {}
    for node in eval_nodes:
        meta[node], samples[node] = node_record(outs[node])
    with open(os.path.join(OUT, f"{name}_nodes.json"), "w") as f:
        json.dump({"input_key": "input", "input_shape": list(x.shape), "nodes": meta}, f, indent=1)
    safetensors.numpy.save_file(samples, os.path.join(OUT, f"{name}_nodes.safetensors"))


def patterned_resnet18():
    """ResNet18 whose tensors repeat a short pattern: tiny once gzipped, real torch files."""
    model = torchvision.models.resnet18()
    sd = model.state_dict()
    for key, t in sd.items():
        if not t.dtype.is_floating_point:
            continue
        # Period 7, zero mean: compresses to almost nothing and keeps activations moderate.
        step = (torch.arange(t.numel()) % 7 - 3).float() / 3.0
        if key.endswith("running_var"):
            pattern = 1.0 + 0.3 * step
        elif key.endswith("weight") and t.dim() == 1:
            pattern = 1.0 + 0.2 * step
        elif t.dim() == 1:
            pattern = 0.05 * step
        else:
            pattern = step * (3.0 / (t.numel() // t.shape[0])) ** 0.5
        sd[key] = pattern.reshape(t.shape)
    model.load_state_dict(sd)
    return true_values(model).eval()


def gzip_to(data: bytes, path: str):
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(data)


def bad_weight_fixtures():
    """Small torch-written files that are not usable state dicts."""
    bad = os.path.join(OUT, "bad_weights")
    os.makedirs(bad, exist_ok=True)
    torch.save([1, 2, 3], os.path.join(bad, "list.pth"))
    torch.save(torch.zeros(3), os.path.join(bad, "tensor.pth"))
    sd = {k: v.clone() for k, v in torchvision.models.resnet18().state_dict().items()
          if k.startswith("layer4.1.bn2")}
    torch.save({k: v.to(torch.int32) for k, v in sd.items()}, os.path.join(bad, "int_bn.pth"))
    torch.save({k: v.double() for k, v in sd.items()}, os.path.join(bad, "double_bn.pth"))


def loader_fixtures():
    model = patterned_resnet18()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    gzip_to(buf.getvalue(), os.path.join(OUT, "resnet18_pattern.pth.gz"))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    gzip_to(safetensors.torch.save(sd), os.path.join(OUT, "resnet18_pattern.safetensors.gz"))
    # The other shapes checkpoints come in: torch's legacy (pre-1.6, non-zip) format, and a
    # training checkpoint with the weights nested under "state_dict" next to other entries.
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf, _use_new_zipfile_serialization=False)
    gzip_to(buf.getvalue(), os.path.join(OUT, "resnet18_pattern_legacy.pth.gz"))
    buf = io.BytesIO()
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "best_acc1": 0.5}, buf)
    gzip_to(buf.getvalue(), os.path.join(OUT, "resnet18_pattern_nested.pth.gz"))
    buf = io.BytesIO()
    torch.save({"model": model.state_dict()}, buf)
    gzip_to(buf.getvalue(), os.path.join(OUT, "resnet18_pattern_model_key.pth.gz"))
    x = torch.from_numpy(generated("input", (1, 3, 64, 64)))
    extractor = create_feature_extractor(model, return_nodes=["layer1"])
    with torch.no_grad():
        outs = extractor(x)
    meta, samples = {}, {}
    for key, t in outs.items():
        meta[key], samples[key] = node_record(t)
    keys = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in sd.items()}
    with open(os.path.join(OUT, "resnet18_pattern.json"), "w") as f:
        json.dump({"input_key": "input", "input_shape": [1, 3, 64, 64], "nodes": meta, "state_dict": keys}, f, indent=1)
    safetensors.numpy.save_file(samples, os.path.join(OUT, "resnet18_pattern_nodes.safetensors"))


def patterned_resnet18_7():
    """The patterned ResNet18 with a 7-class head: a fine-tuned checkpoint's shape."""
    model = torchvision.models.resnet18(num_classes=7)
    sd = model.state_dict()
    pattern = patterned_resnet18().state_dict()
    for key, t in sd.items():
        if key.startswith("fc.") or not t.dtype.is_floating_point:
            continue
        sd[key] = pattern[key]
    # The head gets the same period-7 pattern, sized for 7 classes.
    for key in ("fc.weight", "fc.bias"):
        t = sd[key]
        step = (torch.arange(t.numel()) % 7 - 3).float() / 3.0
        scale = 0.05 if t.dim() == 1 else (3.0 / (t.numel() // t.shape[0])) ** 0.5
        sd[key] = (step * scale).reshape(t.shape)
    model.load_state_dict(sd)
    return true_values(model).eval()


def finetuned_fixtures():
    """A fine-tuned `resnet18(num_classes=7)` in the layouts checkpoints are saved in, with
    torch's logits and `layer4` for it; and a training checkpoint holding no model weights."""
    model = patterned_resnet18_7()
    sd = model.state_dict()
    buf = io.BytesIO()
    torch.save(sd, buf)
    gzip_to(buf.getvalue(), os.path.join(OUT, "resnet18_c7.pth.gz"))
    contiguous = {k: v.contiguous() for k, v in sd.items()}
    gzip_to(safetensors.torch.save(contiguous), os.path.join(OUT, "resnet18_c7.safetensors.gz"))
    # DistributedDataParallel's `module.` prefix, in a Lightning-like checkpoint.
    buf = io.BytesIO()
    torch.save({"epoch": 11, "global_step": 4400,
                "state_dict": {f"module.{k}": v for k, v in sd.items()},
                "optimizer_states": [], "lr_schedulers": []}, buf)
    gzip_to(buf.getvalue(), os.path.join(OUT, "resnet18_c7_ddp.pth.gz"))
    # torch.compile's `_orig_mod.` prefix, under torchvision's reference scripts' `model`.
    buf = io.BytesIO()
    torch.save({"model": {f"_orig_mod.{k}": v for k, v in sd.items()}, "epoch": 3}, buf)
    gzip_to(buf.getvalue(), os.path.join(OUT, "resnet18_c7_compiled.pth.gz"))
    # A training checkpoint whose weights were left out: optimizer state only.
    bad = os.path.join(OUT, "bad_weights")
    os.makedirs(bad, exist_ok=True)
    tiny = nn.Linear(4, 2)
    opt = torch.optim.SGD(tiny.parameters(), lr=0.1, momentum=0.9)
    tiny(torch.ones(1, 4)).sum().backward()
    opt.step()
    torch.save({"epoch": 3, "optimizer": opt.state_dict(), "lr": 0.1},
               os.path.join(bad, "optimizer_only.pth"))
    x = torch.from_numpy(generated("input", (1, 3, 64, 64)))
    extractor = create_feature_extractor(model, return_nodes=["layer4", "fc"])
    # The period-7 weights add up coherently: layer4 reaches 1e6 and the logits cancel down
    # from there, so torch's own float32 error is recorded (against float64) for the tolerance.
    exact = create_feature_extractor(copy.deepcopy(model).double(), return_nodes=["layer4", "fc"])
    with torch.no_grad():
        outs = extractor(x)
        outs64 = exact(x.double())
    meta, samples = {}, {}
    for key, t in outs.items():
        meta[key], samples[key] = node_record(t)
        meta[key]["fp32_error"] = float((t.double() - outs64[key]).abs().max())
    with open(os.path.join(OUT, "resnet18_c7.json"), "w") as f:
        json.dump({"input_key": "input", "input_shape": [1, 3, 64, 64], "nodes": meta,
                   "logits": outs["fc"].reshape(-1).tolist()}, f, indent=1)
    safetensors.numpy.save_file(samples, os.path.join(OUT, "resnet18_c7_nodes.safetensors"))


def synthetic_image(w=320, h=240):
    """The reference notes' test picture: gradients plus shapes with hard edges."""
    from PIL import Image, ImageDraw
    x = np.arange(w)[None, :].repeat(h, 0)
    y = np.arange(h)[:, None].repeat(w, 1)
    rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1)
    img = Image.fromarray(rgb.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    d.ellipse([40, 30, 140, 130], fill=(250, 240, 20))
    d.rectangle([180, 60, 290, 200], fill=(20, 30, 200), outline=(255, 255, 255), width=3)
    d.line([0, h - 1, w - 1, 0], fill=(0, 0, 0), width=5)
    d.ellipse([200, 10, 230, 40], fill=(255, 0, 0))
    return img


def preprocess_fixtures():
    """PIL/torchvision's Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize on several
    images; the 8-bit crop is stored as PNG, the tensor as statistics and samples."""
    from PIL import Image
    import torchvision.transforms as T
    import torchvision.transforms.functional as F

    img_dir = os.path.join(OUT, "images")
    os.makedirs(img_dir, exist_ok=True)
    syn = synthetic_image()
    files = {
        "synthetic_444.jpg": lambda p: syn.save(p, quality=95, subsampling=0),
        "synthetic_420.jpg": lambda p: syn.save(p, quality=75, subsampling=2),
        "synthetic.png": lambda p: syn.save(p),
        "portrait.png": lambda p: syn.transpose(Image.Transpose.ROTATE_90).resize((200, 300)).save(p),
        "grey.png": lambda p: syn.convert("L").save(p),
        "rgba.png": lambda p: syn.convert("RGBA").save(p),
        "chelsea.jpg": lambda p: shutil.copyfile(os.path.join(OUT, "..", "..", "assets", "chelsea.jpg"), p),
        "large.jpg": lambda p: syn.resize((1200, 900), Image.Resampling.BICUBIC).save(p, quality=90),
    }
    normalize = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    meta, samples = {}, {}
    for name, write in files.items():
        path = os.path.join(img_dir, name)
        write(path)
        img = Image.open(path).convert("RGB")
        resized = F.resize(img, 256)
        crop = F.center_crop(resized, 224)
        stem = name.replace(".", "_")
        crop.save(os.path.join(img_dir, f"{stem}_crop.png"))
        tensor = normalize(F.to_tensor(crop))
        record, sample = node_record(tensor)
        record["resized_size_wh"] = list(resized.size)
        meta[name], samples[name] = record, sample
    with open(os.path.join(OUT, "preprocess.json"), "w") as f:
        json.dump(meta, f, indent=1)
    safetensors.numpy.save_file(samples, os.path.join(OUT, "preprocess.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(OUT, "..", "..", "..", "shared", "reference")
    for name in ("torchvision_nodes_resnet18.json", "torchvision_nodes_alexnet.json",
                 "torchvision_return_nodes_cases.json"):
        src = os.path.join(shared, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(OUT, name))
    x = torch.from_numpy(generated("input", (2, 3, 224, 224)))
    node_fixture("resnet18", fill_generated(torchvision.models.resnet18()), x)
    node_fixture("alexnet", fill_generated(AlexNet()), x)
    loader_fixtures()
    finetuned_fixtures()
    bad_weight_fixtures()
    preprocess_fixtures()
    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__}
    with open(os.path.join(OUT, "VERSIONS.json"), "w") as f:
        json.dump(versions, f, indent=1)
    print("fixtures written to", os.path.abspath(OUT), versions)


if __name__ == "__main__":
    main()


def fuzz_seeds(out_dir):
    """Seeds for fuzz/fuzz_targets/weights_reader.rs: state dicts of its tiny model in every
    format, each prefixed by the selector byte (even: .pth, odd: .safetensors)."""
    import collections
    sd = collections.OrderedDict()
    sd["conv1.weight"] = torch.randn(4, 3, 1, 1)
    for k, v in nn.BatchNorm2d(4).state_dict().items():
        sd[f"bn1.{k}"] = v
    sd["fc.weight"] = torch.randn(2, 4)
    sd["fc.bias"] = torch.randn(2)
    os.makedirs(out_dir, exist_ok=True)
    for name, kwargs in [("zip", {}), ("legacy", {"_use_new_zipfile_serialization": False})]:
        buf = io.BytesIO()
        torch.save(sd, buf, **kwargs)
        open(os.path.join(out_dir, f"tiny_{name}.seed"), "wb").write(b"\x00" + buf.getvalue())
    st = safetensors.torch.save({k: v.contiguous() for k, v in sd.items() if v.dtype.is_floating_point})
    open(os.path.join(out_dir, "tiny_safetensors.seed"), "wb").write(b"\x01" + st)
