#!/usr/bin/env python3
"""Makes the fixtures of featx's gradients and class activation maps (tests/fixtures/cam).

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch torchvision safetensors numpy grad-cam
    /tmp/venv/bin/python scripts/make_cam_fixtures.py

Everything runs on the generated weights and inputs of make_fixtures.py (mirrored in
tests/it/support/mod.rs), so CI never needs torch:

- `gradients_<case>.json/.safetensors`: torch autograd's gradient of a score with respect to
  the input and to requested nodes (ResNet18 and the article's AlexNet in eval mode, ResNet18
  in train mode). The score is `sum_i logits[i, target_i]`, plus `0.01 * sum(layer3)` for
  ResNet18 (a score read from an intermediate node, whose ancestors then get two paths).
- `cam_resnet18.json/.safetensors`: what pytorch-grad-cam's `cam(input_tensor=x,
  targets=...)` returns for ResNet18 on a 2x3x128x128 batch, for every method, with
  `targets=None` (each image's top logit) and with class 7 for both images, at `layer4`, and
  for some methods at `layer3` + `layer4` together (the package's mean over layers).
  EigenCAM's principal component has an arbitrary sign: featx flips it so that the
  projection's largest magnitude is positive (Seg-Eigen-CAM's rule, which pytorch-grad-cam
  ships as `get_2d_projection_with_sign_correction`); the fixture is EigenCAM with that
  function, and records whether the unpatched package agreed.

- `cam_vit_tiny.json/.safetensors`: the same for a small torchvision `VisionTransformer`
  (32x32 inputs, 8x8 patches, 2 layers of width 16, 10 classes) at the last block's `ln_1`,
  every method, with pytorch-grad-cam's `reshape_transform` for ViT (the class token dropped,
  the 4x4 patch tokens laid out as a feature map), as its tutorial does.

- `cam_swin_tiny.json/.safetensors`: the same for a small torchvision `SwinTransformer`
  (32x32 inputs, 4x4 patches, two stages of two blocks, width 16, 4x4 windows, 10 classes)
  at its last `norm` (every method, both targets) and its first stage `features.1` (8x8
  tokens in shifted, masked windows; every method, top class), with pytorch-grad-cam's
  `reshape_transform` for torchvision's Swin (`tensor.permute(0, 3, 1, 2)`).

- `overlay.png`: pytorch-grad-cam's `show_cam_on_image(image, mask, use_rgb=True)` for a
  generated 64x64 image and mask (both `(uniform + 1) / 2`), the picture featx draws.
- `jet.json`: OpenCV's COLORMAP_JET table (`cv2.applyColorMap` of 0..255, as RGB), which
  crates/viz/src/cam.rs holds.

Values are stored as in make_fixtures.py: shape, float64 sum / mean square / max |x|, and up to
4096 values taken at an even stride.
"""
import json
import os
import sys

import numpy as np
import pytorch_grad_cam
import pytorch_grad_cam.eigen_cam as eigen_cam
import safetensors.numpy
import torch
import torchvision
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import (
    get_2d_projection,
    get_2d_projection_with_sign_correction,
)
from torchvision.models.feature_extraction import create_feature_extractor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import OUT, AlexNet, fill_generated, generated, node_record, uniform  # noqa: E402

CAM = os.path.join(OUT, "cam")

METHODS = {
    "gradcam": pytorch_grad_cam.GradCAM,
    "gradcam++": pytorch_grad_cam.GradCAMPlusPlus,
    "xgradcam": pytorch_grad_cam.XGradCAM,
    "hirescam": pytorch_grad_cam.HiResCAM,
    "layercam": pytorch_grad_cam.LayerCAM,
    "eigencam": pytorch_grad_cam.EigenCAM,
    "scorecam": pytorch_grad_cam.ScoreCAM,
    "gradcam-elementwise": pytorch_grad_cam.GradCAMElementWise,
}


def save(name, doc, samples):
    with open(os.path.join(CAM, f"{name}.json"), "w") as f:
        json.dump(doc, f, indent=1)
    safetensors.numpy.save_file(samples, os.path.join(CAM, f"{name}.safetensors"))


def gradients(name, model, nodes, output, targets, shape, mode, extra=None):
    """d score / d input and d score / d node for each of `nodes`, with torch autograd."""
    model = model.train() if mode == "train" else model.eval()
    x = torch.from_numpy(generated("input", shape)).requires_grad_(True)
    request = list(dict.fromkeys(nodes + [output] + ([extra] if extra else [])))
    extractor = create_feature_extractor(model, return_nodes=request)
    extractor = extractor.train() if mode == "train" else extractor.eval()
    outs = extractor(x)
    for t in outs.values():
        t.retain_grad()
    logits = outs[output]
    score = sum(logits[i, t] for i, t in enumerate(targets))
    if extra:
        score = score + 0.01 * outs[extra].sum()
    score.backward()
    meta, samples = {}, {}
    meta["x"], samples["x"] = node_record(x.grad)
    for node in nodes:
        meta[node], samples[node] = node_record(outs[node].grad)
    doc = {
        "mode": mode,
        "input_shape": list(shape),
        "output": output,
        "targets": targets,
        "extra": extra,
        "score": float(score),
        "gradients": meta,
    }
    save(f"gradients_{name}", doc, samples)


def cams():
    model = fill_generated(torchvision.models.resnet18())
    x = torch.from_numpy(generated("cam_input", (2, 3, 128, 128)))
    with torch.no_grad():
        top = model(x).argmax(dim=1).tolist()
    cases = [(m, ["layer4"], t) for m in METHODS for t in ("top", 7)]
    cases += [(m, ["layer3", "layer4"], "top") for m in ("gradcam", "hirescam", "eigencam")]
    meta, samples = {}, {}
    for method, layers, target in cases:
        targets = None if target == "top" else [ClassifierOutputTarget(target)] * x.shape[0]
        modules = [dict(model.named_modules())[layer] for layer in layers]
        key = f"{method}/{'+'.join(layers)}/{target}"
        notes = {}
        if method == "eigencam":
            eigen_cam.get_2d_projection = get_2d_projection
            with METHODS[method](model=model, target_layers=modules) as cam:
                raw = cam(input_tensor=x, targets=targets)
            eigen_cam.get_2d_projection = get_2d_projection_with_sign_correction
            with METHODS[method](model=model, target_layers=modules) as cam:
                out = cam(input_tensor=x, targets=targets)
            eigen_cam.get_2d_projection = get_2d_projection
            notes["unpatched_equal"] = bool(np.abs(raw - out).max() < 1e-5)
        else:
            with METHODS[method](model=model, target_layers=modules) as cam:
                out = cam(input_tensor=x, targets=targets)
        record, values = node_record(torch.from_numpy(out))
        meta[key] = {"method": method, "layers": layers, "target": target, **record, **notes}
        samples[key] = values
        print(key, record["shape"], f"mean {record['sum'] / out.size:.4f}", notes)
    doc = {
        "source": f"grad-cam {pytorch_grad_cam.__version__ if hasattr(pytorch_grad_cam, '__version__') else ''}"
                  f" / torchvision {torchvision.__version__} / torch {torch.__version__}",
        "model": "resnet18",
        "input_key": "cam_input",
        "input_shape": list(x.shape),
        "top": top,
        "cams": meta,
    }
    save("cam_resnet18", doc, samples)


VIT_TINY = dict(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
                mlp_dim=32, num_classes=10)


def vit_reshape(tensor, height=4, width=4):
    """pytorch-grad-cam's `reshape_transform` for ViT, for a 4x4 patch grid."""
    result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


def transformer_cams(name, model, config, input_key, cases, reshape):
    """Every (method, layer, target) of `cases` on `model` (a small transformer with generated
    weights, built from `config`) through pytorch-grad-cam with `reshape`, saved as
    `cam_<name>`."""
    x = torch.from_numpy(generated(input_key, (2, 3, 32, 32)))
    with torch.no_grad():
        top = model(x).argmax(dim=1).tolist()
    modules = dict(model.named_modules())
    meta, samples = {}, {}
    for method, layer, target in cases:
        targets = None if target == "top" else [ClassifierOutputTarget(target)] * x.shape[0]
        if method == "eigencam":
            eigen_cam.get_2d_projection = get_2d_projection_with_sign_correction
        with METHODS[method](model=model, target_layers=[modules[layer]],
                             reshape_transform=reshape) as cam:
            out = cam(input_tensor=x, targets=targets)
        eigen_cam.get_2d_projection = get_2d_projection
        key = f"{method}/{layer}/{target}"
        record, values = node_record(torch.from_numpy(out))
        meta[key] = {"method": method, "layers": [layer], "target": target, **record}
        samples[key] = values
        print(key, record["shape"], f"mean {record['sum'] / out.size:.4f}")
    doc = {
        "source": f"torchvision {torchvision.__version__} / torch {torch.__version__}",
        "model": type(model).__name__ + "(" + ", ".join(f"{k}={v}" for k, v in config.items()) + ")",
        "input_key": input_key,
        "input_shape": list(x.shape),
        "top": top,
        "cams": meta,
    }
    save(f"cam_{name}", doc, samples)


def vit_cams():
    model = fill_generated(torchvision.models.VisionTransformer(**VIT_TINY))
    layer = "encoder.layers.encoder_layer_1.ln_1"
    cases = [(m, layer, t) for m in METHODS for t in ("top", 3)]
    transformer_cams("vit_tiny", model, VIT_TINY, "vit_cam_input", cases, vit_reshape)


SWIN_TINY = dict(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2],
                 window_size=[4, 4], num_classes=10)


def swin_reshape(tensor):
    """pytorch-grad-cam's `reshape_transform` for torchvision's Swin: `[N, H, W, C]` maps
    with their channels first."""
    return tensor.permute(0, 3, 1, 2)


def swin_cams():
    from torchvision.models.swin_transformer import SwinTransformer

    model = fill_generated(SwinTransformer(**SWIN_TINY))
    # The last LayerNorm (4x4 after the merge), every method and both targets; the first
    # stage (8x8, shifted and masked windows), every method for the top class.
    cases = [(m, "norm", t) for m in METHODS for t in ("top", 3)]
    cases += [(m, "features.1", "top") for m in METHODS]
    transformer_cams("swin_tiny", model, SWIN_TINY, "swin_cam_input", cases, swin_reshape)


def overlay():
    import cv2
    from PIL import Image
    from pytorch_grad_cam.utils.image import show_cam_on_image

    image = ((uniform("overlay_image", 64 * 64 * 3) + 1) / 2).reshape(64, 64, 3)
    mask = ((uniform("overlay_mask", 64 * 64) + 1) / 2).reshape(64, 64)
    picture = show_cam_on_image(image, mask, use_rgb=True)
    Image.fromarray(picture).save(os.path.join(CAM, "overlay.png"))
    ramp = np.arange(256, dtype=np.uint8).reshape(1, -1)
    jet = cv2.applyColorMap(ramp, cv2.COLORMAP_JET)[0][:, ::-1]
    with open(os.path.join(CAM, "jet.json"), "w") as f:
        json.dump({"opencv": cv2.__version__, "rgb": jet.tolist()}, f)


def main():
    os.makedirs(CAM, exist_ok=True)
    if sys.argv[1:] == ["overlay"]:
        overlay()
        return
    if sys.argv[1:] == ["vit"]:
        torch.manual_seed(0)
        vit_cams()
        return
    if sys.argv[1:] == ["swin"]:
        torch.manual_seed(0)
        swin_cams()
        return
    if sys.argv[1:] == ["train"]:
        resnet = fill_generated(torchvision.models.resnet18())
        gradients("resnet18_train", resnet, ["layer2", "layer4", "fc"], "fc", [5, 42, 7, 9],
                  (4, 3, 96, 96), "train")
        return
    overlay()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    resnet = fill_generated(torchvision.models.resnet18())
    gradients("resnet18", resnet, ["relu", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"],
              "fc", [5, 42], (2, 3, 224, 224), "eval", extra="layer3")
    # Train mode: BatchNorm's batch statistics need enough values per channel (4 images of
    # 3x3 at layer4) for float32 gradients to be compared at the usual tolerance.
    gradients("resnet18_train", resnet, ["layer2", "layer4", "fc"], "fc", [5, 42, 7, 9],
              (4, 3, 96, 96), "train")
    alexnet = fill_generated(AlexNet())
    gradients("alexnet", alexnet, ["conv1", "conv2", "conv3.4", "conv3", "fc.0", "fc"], "fc",
              [5, 42], (2, 3, 224, 224), "eval")
    cams()
    vit_cams()
    swin_cams()


if __name__ == "__main__":
    main()
