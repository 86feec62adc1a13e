#!/usr/bin/env python3
"""Makes the fixtures of featx's model zoo (tests/fixtures/zoo) from torch/torchvision.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch torchvision safetensors numpy
    /tmp/venv/bin/python scripts/make_zoo_fixtures.py [MODEL... | bicubic | vit_interpolate]

For every architecture below, `zoo/<name>.json` holds what torchvision says about it:

- `train_nodes` / `eval_nodes`: `get_graph_node_names(model)`;
- `nodes`: the FX trace torchvision's feature extraction makes (NodePathTracer), node by node:
  name, FX op, target, leaf module type, arguments (`args`, and `kwargs` when there are any:
  nodes by name, string constants as {"str": ...}), and the output shape at 1x3x224x224; a
  node that is not a tensor (ViT's `x.shape`, `getitem`, `eq`, `_assert`, attention's tuple)
  has `shape: null` and its Python `type` and `value` instead;
- `state_dict`: every key with its shape and dtype (what a torchvision `.pth` holds);
- `weights`: the DEFAULT weights' file name, URL and preprocessing (resize, crop,
  interpolation, mean, std), as torchvision publishes them;
- `parity`: each node's output on generated weights and a generated input (the splitmix
  generator of make_fixtures.py, mirrored in tests/it/support/mod.rs): shape, float64 sum /
  mean square / max |x|, with `zoo/<name>.safetensors` holding 256 values per node taken at an
  even stride (non-tensor nodes under `values`, with their type and value). One model per
  family runs at 1x3x224x224, the others at 2x3x64x64 (ViT only takes 224x224; a model
  whose shape is `None` below has no `parity`). An in-place functional ReLU is made
  out-of-place first, so every node's own value is recorded (as make_fixtures.true_values
  does for nn.ReLU modules).

Where a model's train and eval lists differ (its forward reads `self.training`: GoogLeNet,
Inception v3), `train_graph` holds the train-mode trace as `nodes` holds the eval one, and
`train_parity` (samples in `zoo/<name>.train.safetensors`) each train-mode node's output with
BatchNorm's batch statistics, on a batch of two, with torch's own float32 error, leaving out
the nodes a dropout mask reaches. For GoogLeNet and Inception v3, `published`,
`published_graph` and `published_parity` (`zoo/<name>.published.safetensors`) describe the
model `builder(weights=DEFAULT)` builds, the generated weights standing in for the download.

The weights are not stored, and the fixtures stay small (about 256 values per node).

`zoo/bicubic/` holds PIL's bicubic Resize -> CenterCrop of a few test images at EfficientNet's
published sizes (`bicubic` on the command line makes only these).

`zoo/vit_interpolate/` holds a small torchvision `VisionTransformer` (32x32 inputs, 8x8
patches, 2 layers of width 16, 10 classes) on generated weights, its state dict stored as
`vit_tiny_32.safetensors` (the one checkpoint kept here, a few KB), and in
`interpolated_48.safetensors` what torchvision makes of it at 48x48:
`interpolate_embeddings(48, 8, sd)["encoder.pos_embedding"]` (`pos_embedding`; the same
computed in float64, rounded to float32, as `pos_embedding_f64`), and the logits
of a `VisionTransformer(image_size=48, ...)` that loaded the interpolated state dict, on the
generated input `vit_interpolate_input` of shape 2x3x48x48 (`logits`).
(`vit_interpolate` on the command line makes only these.)
"""
import copy
import functools
import json
import os
import sys

import numpy as np
import safetensors.numpy
import safetensors.torch
import torch
import torchvision
from torchvision.models.feature_extraction import (
    NodePathTracer,
    _set_default_tracer_kwargs,
    create_feature_extractor,
    get_graph_node_names,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import OUT, fill_generated, generated, node_record  # noqa: E402

ZOO = os.path.join(OUT, "zoo")
SAMPLES = 256
FULL = (1, 3, 224, 224)
SMALL = (2, 3, 64, 64)
# Inception v3 is listed and checked at its published crop, 299x299.
INCEPTION = (1, 3, 299, 299)

# featx name -> (torchvision builder, parity input shape). One model per family at full size.
MODELS = {
    "resnet34": ("resnet34", SMALL),
    "resnet50": ("resnet50", FULL),
    "resnet101": ("resnet101", SMALL),
    "resnet152": ("resnet152", SMALL),
    "resnext50_32x4d": ("resnext50_32x4d", SMALL),
    "resnext101_32x8d": ("resnext101_32x8d", SMALL),
    "resnext101_64x4d": ("resnext101_64x4d", SMALL),
    "wide_resnet50_2": ("wide_resnet50_2", SMALL),
    "wide_resnet101_2": ("wide_resnet101_2", SMALL),
    "vgg11": ("vgg11", SMALL),
    "vgg11_bn": ("vgg11_bn", FULL),
    "vgg13": ("vgg13", SMALL),
    "vgg13_bn": ("vgg13_bn", SMALL),
    "vgg16": ("vgg16", SMALL),
    "vgg16_bn": ("vgg16_bn", SMALL),
    "vgg19": ("vgg19", SMALL),
    "vgg19_bn": ("vgg19_bn", SMALL),
    # torchvision's AlexNet; featx's `alexnet` is the seed article's model.
    "tv_alexnet": ("alexnet", FULL),
    "mobilenet_v2": ("mobilenet_v2", FULL),
    "mobilenet_v3_large": ("mobilenet_v3_large", FULL),
    "mobilenet_v3_small": ("mobilenet_v3_small", SMALL),
    "efficientnet_b0": ("efficientnet_b0", FULL),
    "efficientnet_b1": ("efficientnet_b1", SMALL),
    "efficientnet_b2": ("efficientnet_b2", SMALL),
    "efficientnet_b3": ("efficientnet_b3", SMALL),
    "efficientnet_b4": ("efficientnet_b4", SMALL),
    "efficientnet_b5": ("efficientnet_b5", SMALL),
    "efficientnet_b6": ("efficientnet_b6", SMALL),
    "efficientnet_b7": ("efficientnet_b7", SMALL),
    "efficientnet_v2_s": ("efficientnet_v2_s", SMALL),
    "efficientnet_v2_m": ("efficientnet_v2_m", SMALL),
    "efficientnet_v2_l": ("efficientnet_v2_l", SMALL),
    "regnet_y_400mf": ("regnet_y_400mf", FULL),
    "regnet_y_800mf": ("regnet_y_800mf", SMALL),
    "regnet_y_1_6gf": ("regnet_y_1_6gf", SMALL),
    "regnet_y_3_2gf": ("regnet_y_3_2gf", SMALL),
    "regnet_y_8gf": ("regnet_y_8gf", SMALL),
    "regnet_y_16gf": ("regnet_y_16gf", SMALL),
    "regnet_y_32gf": ("regnet_y_32gf", SMALL),
    "regnet_y_128gf": ("regnet_y_128gf", None),
    "regnet_x_400mf": ("regnet_x_400mf", FULL),
    "regnet_x_800mf": ("regnet_x_800mf", SMALL),
    "regnet_x_1_6gf": ("regnet_x_1_6gf", SMALL),
    "regnet_x_3_2gf": ("regnet_x_3_2gf", SMALL),
    "regnet_x_8gf": ("regnet_x_8gf", SMALL),
    "regnet_x_16gf": ("regnet_x_16gf", SMALL),
    "regnet_x_32gf": ("regnet_x_32gf", SMALL),
    "densenet121": ("densenet121", FULL),
    "densenet161": ("densenet161", SMALL),
    "densenet169": ("densenet169", SMALL),
    "densenet201": ("densenet201", SMALL),
    "convnext_tiny": ("convnext_tiny", FULL),
    "convnext_small": ("convnext_small", SMALL),
    "convnext_base": ("convnext_base", SMALL),
    "convnext_large": ("convnext_large", SMALL),
    # ViT takes 224x224 only. The tests check ViT-L/16's values (304M parameters, 61 GFLOPs)
    # through its second encoder layer; the fixture holds every node.
    "vit_b_16": ("vit_b_16", FULL),
    "vit_b_32": ("vit_b_32", FULL),
    "vit_l_16": ("vit_l_16", FULL),
    "vit_l_32": ("vit_l_32", None),
    "vit_h_14": ("vit_h_14", None),
    "squeezenet1_0": ("squeezenet1_0", FULL),
    "squeezenet1_1": ("squeezenet1_1", SMALL),
    "mnasnet0_5": ("mnasnet0_5", SMALL),
    "mnasnet0_75": ("mnasnet0_75", SMALL),
    "mnasnet1_0": ("mnasnet1_0", FULL),
    "mnasnet1_3": ("mnasnet1_3", SMALL),
    "shufflenet_v2_x0_5": ("shufflenet_v2_x0_5", SMALL),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", FULL),
    "shufflenet_v2_x1_5": ("shufflenet_v2_x1_5", SMALL),
    "shufflenet_v2_x2_0": ("shufflenet_v2_x2_0", SMALL),
    # Their forward reads `self.training`: FX traces another graph per mode (aux heads in
    # training), recorded under `train_graph` and `train_parity` too; `published` is the model
    # `builder(weights=DEFAULT)` builds (`transform_input`, GoogLeNet's aux heads dropped).
    "googlenet": ("googlenet", SMALL),
    "inception_v3": ("inception_v3", INCEPTION),
    # MaxViT takes 224x224 only (its attention windows are sized for it).
    "maxvit_t": ("maxvit_t", FULL),
    # Swin at 64x64 has 16x16 tokens: padded to the window, shifted windows and masks run.
    "swin_t": ("swin_t", FULL),
    "swin_s": ("swin_s", SMALL),
    "swin_b": ("swin_b", SMALL),
    "swin_v2_t": ("swin_v2_t", FULL),
    "swin_v2_s": ("swin_v2_s", SMALL),
    "swin_v2_b": ("swin_v2_b", SMALL),
}

# The input size nodes' shapes are listed at, where it is not 224x224.
NOMINAL = {"inception_v3": INCEPTION}

# Models whose values on the generated weights grow past what float32 holds to the fixed
# tolerance (torch's own float32 result misses it against float64, from EfficientNet-B4 on as
# depth grows; in RegNetY a large squeeze-excitation logit puts its sigmoid where small errors
# count; MaxViT-T's last block grows its squeeze-excitation input past 2000): their fixtures
# also record torch's float32 error per node.
FP32_ERROR = {"mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "maxvit_t"} | {
    name for name in MODELS if name.startswith(("efficientnet_", "regnet_y_"))
}


def encode(a, names):
    """An FX argument as JSON: a node by its name, a string constant as {"str": ...} (so it
    is never mistaken for a node), a slice as {"slice": [start, stop, step]}, a tensor value
    as {"tensor": shape}, containers element by element."""
    if isinstance(a, torch.fx.Node):
        return names[a]
    if isinstance(a, (list, tuple)):
        return [encode(v, names) for v in a]
    if isinstance(a, str):
        return {"str": a}
    if isinstance(a, slice):
        return {"slice": [a.start, a.stop, a.step]}
    if isinstance(a, torch.Tensor):
        return {"tensor": list(a.shape)}
    if a is None or isinstance(a, (bool, int, float)):
        return a
    return {"repr": repr(a)}


def train_graph_values(model, graph, names, x):
    """Every named node's value, by name, of a train-mode FX `graph` run with the modules in
    eval mode (for shapes: a BatchNorm's batch statistics need more than one value per
    channel, and the train graph's extra nodes are not in an eval-mode extractor)."""
    outs = {}

    class Record(torch.fx.Interpreter):
        def run_node(self, node):
            out = super().run_node(node)
            if node in names:
                outs[names[node]] = out
            return out

    Record(torch.fx.GraphModule(model, graph)).run(x)
    return outs


def true_functional_values(extractor):
    """A functional ReLU with `inplace=True` (DenseNet's last) overwrites its input, so an
    extractor asked for both returns the input after the ReLU; featx returns every node's own
    value, so the fixtures do too (as make_fixtures.true_values does for nn.ReLU)."""
    for node in extractor.graph.nodes:
        if node.kwargs.get("inplace") is True:
            node.kwargs = {**node.kwargs, "inplace": False}
    extractor.recompile()
    return extractor


def fx_nodes(model, size=FULL, train=False):
    """torchvision's FX trace of `model` (eval mode, or train mode where `train`), with each
    node's shape at `size` (1x3x224x224 unless the model says otherwise)."""
    tracer = NodePathTracer(**_set_default_tracer_kwargs(None))
    graph = tracer.trace(model.train(train))
    model.eval()
    # A tensor FX bakes into the graph (MaxViT's relative position index: a buffer viewed at
    # trace time) is a `_tensor_constant` get_attr with no name, not a node of feature
    # extraction: an argument naming one is recorded as {"tensor": shape}.
    # Swin's relative_position_index and relative_coords_table, buffers FX reads where no
    # module call records them, are the same: their targets are dotted paths.
    constants = {n: {"tensor": list(functools.reduce(getattr, n.target.split("."), tracer.root).shape)}
                 for n in graph.nodes if n.op == "get_attr" and n not in tracer.node_to_qualname}
    names = {**tracer.node_to_qualname, **constants}
    _, eval_nodes = get_graph_node_names(model)
    extractor = true_functional_values(
        create_feature_extractor(model, return_nodes=eval_nodes[1:]))
    x = torch.zeros(size)
    with torch.no_grad():
        outs = train_graph_values(model, graph, names, x) if train else {"x": x, **extractor(x)}
    modules = dict(model.named_modules())
    nodes = []
    for node in graph.nodes:
        # The train graphs' output namedtuple (GoogLeNetOutputs) is not a node of feature
        # extraction: FX names no module path for it.
        if node.op == "output" or node in constants or node not in names:
            continue
        name = names[node]
        if node.op == "call_function":
            target = f"{node.target.__module__}.{node.target.__name__}"
            if target.startswith("_operator."):
                target = target[1:]
        else:
            target = str(node.target)
        record = {
            "name": name,
            "op": node.op,
            "target": target,
            "module_type": type(modules[node.target]).__name__ if node.op == "call_module" else None,
            "args": [encode(a, names) for a in node.args],
        }
        if node.kwargs:
            record["kwargs"] = {k: encode(v, names) for k, v in node.kwargs.items()}
        out = outs[name]
        if isinstance(out, torch.Tensor):
            record["shape"] = list(out.shape)
        else:
            # Not a tensor (a shape, an int, a bool, None, a tuple): its Python type and value.
            record["shape"] = None
            record["type"] = type(out).__name__
            record["value"] = encode(out, names)
        nodes.append(record)
    return nodes


def published(builder):
    weights = torchvision.models.get_model_weights(builder).DEFAULT
    t = weights.transforms()
    return {
        "enum": str(weights),
        "url": weights.url,
        "file_name": weights.url.rsplit("/", 1)[-1],
        "resize": list(t.resize_size),
        "crop": list(t.crop_size),
        "interpolation": t.interpolation.value,
        "mean": list(t.mean),
        "std": list(t.std),
        "num_params": weights.meta["num_params"],
    }


def dropout_dependent(model):
    """The train-mode nodes whose values depend on a dropout's random mask."""
    tracer = NodePathTracer(**_set_default_tracer_kwargs(None))
    graph = tracer.trace(model.train())
    model.eval()
    modules = dict(model.named_modules())
    names = tracer.node_to_qualname
    random = set()
    for node in graph.nodes:
        is_dropout = node.op == "call_module" and isinstance(modules[node.target], torch.nn.Dropout)
        if is_dropout or any(a in random for a in node.all_input_nodes):
            random.add(node)
    return {names[n] for n in random if n in names}


def train_parity(model, shape):
    """Each train-mode node's output on the generated weights (batch statistics in every
    BatchNorm), except those a dropout's random mask reaches. The batch holds two images
    (BatchNorm in training needs more than one value per channel)."""
    shape = (max(2, shape[0]),) + tuple(shape[1:])
    fill_generated(model)
    x = torch.from_numpy(generated("input", shape))
    train_nodes, eval_nodes = get_graph_node_names(model)
    extractor = create_feature_extractor(
        copy.deepcopy(model), train_return_nodes=train_nodes[1:], eval_return_nodes=eval_nodes[1:])
    # Train mode first: it swaps in the train graph, whose in-place ReLUs are then made out-of-place.
    extractor = true_functional_values(extractor.train())
    with torch.no_grad():
        outs = {"x": x, **extractor(x)}
    # Batch statistics over a few values per channel (2x2 maps of two images deep in the
    # network) magnify rounding, layer after layer: torch's own float32 error is recorded per
    # node, as for the deep nets of FP32_ERROR.
    exact = true_functional_values(create_feature_extractor(
        copy.deepcopy(model).double(), train_return_nodes=train_nodes[1:],
        eval_return_nodes=eval_nodes[1:]).train())
    with torch.no_grad():
        outs64 = {"x": x.double(), **exact(x.double())}
    random = dropout_dependent(model)
    meta, samples = {}, {}
    for node in train_nodes:
        if node not in random:
            meta[node], samples[node] = node_record(outs[node], SAMPLES)
            meta[node]["fp32_error"] = float((outs[node].double() - outs64[node]).abs().max())
    return {"input_shape": list(shape), "nodes": meta}, samples


def published_variant(builder, shape):
    """The model `builder(weights=DEFAULT)` builds, with the generated weights as the
    published file (torchvision's own builder runs; only the download is replaced): its node
    lists, its eval-mode trace, and the values of its input transform, stem and logits."""
    state_dict = fill_generated(torchvision.models.get_model(builder, init_weights=False)).state_dict()
    api = torchvision.models._api.WeightsEnum
    download = api.get_state_dict
    api.get_state_dict = lambda self, *args, **kwargs: state_dict
    try:
        model = torchvision.models.get_model(builder, weights="DEFAULT").eval()
    finally:
        api.get_state_dict = download
    train_nodes, eval_nodes = get_graph_node_names(model)
    nodes = fx_nodes(model, NOMINAL.get(builder, FULL))
    x = torch.from_numpy(generated("input", shape))
    extractor = true_functional_values(
        create_feature_extractor(model, return_nodes=eval_nodes[1:]))
    with torch.no_grad():
        outs = {"x": x, **extractor(x)}
    # The transform's nodes through the stem's first ReLU, and the logits.
    stem = eval_nodes[:next(i for i, n in enumerate(eval_nodes) if n.endswith(".relu")) + 1]
    meta, samples = {}, {}
    for node in stem + [eval_nodes[-1]]:
        meta[node], samples[node] = node_record(outs[node], SAMPLES)
    lists = {"train_nodes": train_nodes, "eval_nodes": eval_nodes}
    return lists, nodes, {"input_shape": list(shape), "nodes": meta}, samples


def parity(name, model, shape):
    """Every node's output on the generated weights for the generated input of `shape`."""
    fill_generated(model)
    x = torch.from_numpy(generated("input", shape))
    _, eval_nodes = get_graph_node_names(model)
    extractor = true_functional_values(
        create_feature_extractor(model, return_nodes=eval_nodes[1:]))
    with torch.no_grad():
        outs = {"x": x, **extractor(x)}
    meta, samples, values = {}, {}, {}
    for node in eval_nodes:
        if isinstance(outs[node], torch.Tensor):
            meta[node], samples[node] = node_record(outs[node], SAMPLES)
        else:
            values[node] = {"type": type(outs[node]).__name__, "value": encode(outs[node], {})}
    if name in FP32_ERROR:
        # torch's own float32 error against float64, node by node: the tests allow featx a
        # few times that where it exceeds the fixed tolerance.
        exact = create_feature_extractor(copy.deepcopy(model).double(), return_nodes=eval_nodes[1:])
        with torch.no_grad():
            outs64 = {"x": x.double(), **exact(x.double())}
        for node in meta:
            meta[node]["fp32_error"] = float((outs[node].double() - outs64[node]).abs().max())
    doc = {"input_shape": list(shape), "nodes": meta}
    if values:
        doc["values"] = values
    return doc, samples


def make(name):
    builder, shape = MODELS[name]
    model = torchvision.models.get_model(builder).eval()
    train_nodes, eval_nodes = get_graph_node_names(model)
    size = NOMINAL.get(name, FULL)
    doc = {
        "source": f"torchvision {torchvision.__version__} / torch {torch.__version__}: "
                  f"torchvision.models.{builder}()",
        "builder": builder,
        "train_nodes": train_nodes,
        "eval_nodes": eval_nodes,
        "nodes": fx_nodes(model, size),
        "state_dict": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                       for k, v in model.state_dict().items()},
        "weights": published(builder),
    }
    if train_nodes != eval_nodes:
        doc["train_graph"] = fx_nodes(model, size, train=True)
    samples = None
    if shape is not None:
        doc["parity"], samples = parity(name, model, shape)
        if train_nodes != eval_nodes:
            doc["train_parity"], train_samples = train_parity(model, shape)
            safetensors.numpy.save_file(train_samples, os.path.join(ZOO, f"{name}.train.safetensors"))
    if name in ("googlenet", "inception_v3"):
        (doc["published"], doc["published_graph"], doc["published_parity"],
         published_samples) = published_variant(builder, shape)
        safetensors.numpy.save_file(
            published_samples, os.path.join(ZOO, f"{name}.published.safetensors"))
    with open(os.path.join(ZOO, f"{name}.json"), "w") as f:
        # One node or key per line: readable diffs, a fraction of indent=1's size.
        f.write("{\n")
        items = list(doc.items())
        for i, (key, value) in enumerate(items):
            f.write(f" {json.dumps(key)}: ")
            if isinstance(value, list) and value and isinstance(value[0], dict):
                f.write("[\n" + ",\n".join("  " + json.dumps(v) for v in value) + "\n ]")
            elif key in ("state_dict",):
                f.write("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()) + "\n }")
            elif key in ("parity", "train_parity", "published_parity"):
                nodes = value["nodes"]
                f.write("{\n  \"input_shape\": " + json.dumps(value["input_shape"]) + ",\n  \"nodes\": {\n")
                f.write(",\n".join(f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in nodes.items()))
                f.write("\n  }")
                if "values" in value:
                    f.write(",\n  \"values\": " + json.dumps(value["values"]))
                f.write("\n }")
            else:
                f.write(json.dumps(value))
            f.write(",\n" if i + 1 < len(items) else "\n")
        f.write("}\n")
    if samples is not None:
        safetensors.numpy.save_file(samples, os.path.join(ZOO, f"{name}.safetensors"))
    print(f"{name}: {len(eval_nodes)} nodes, parity at {shape}", flush=True)


# EfficientNet's published preprocessing resizes with PIL's bicubic filter: (image, resize, crop).
BICUBIC = [
    ("synthetic.png", 256, 224),
    ("portrait.png", 320, 300),
    ("chelsea.jpg", 256, 224),
    ("large.jpg", 288, 288),
    ("synthetic.png", 600, 600),
]


def bicubic_fixtures():
    """torchvision's Resize(n, BICUBIC) -> CenterCrop(c) on PIL images (the test images of
    make_fixtures.py), the 8-bit crops stored as PNG in zoo/bicubic/."""
    from PIL import Image
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode

    out = os.path.join(ZOO, "bicubic")
    os.makedirs(out, exist_ok=True)
    cases = []
    for name, resize, crop in BICUBIC:
        img = Image.open(os.path.join(OUT, "images", name)).convert("RGB")
        resized = F.resize(img, resize, interpolation=InterpolationMode.BICUBIC)
        file = f"{name.replace('.', '_')}_{resize}_{crop}.png"
        F.center_crop(resized, crop).save(os.path.join(out, file))
        cases.append({"image": name, "resize": resize, "crop": crop,
                      "resized_size_wh": list(resized.size), "crop_file": file})
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


VIT_TINY = dict(patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                num_classes=10)


def vit_interpolate_fixtures():
    """A 32x32 checkpoint of a small ViT, and torchvision's interpolation of it to 48x48."""
    from torchvision.models.vision_transformer import interpolate_embeddings

    out = os.path.join(ZOO, "vit_interpolate")
    os.makedirs(out, exist_ok=True)
    small = fill_generated(torchvision.models.VisionTransformer(image_size=32, **VIT_TINY))
    sd = {k: v.contiguous() for k, v in small.state_dict().items()}
    safetensors.torch.save_file(sd, os.path.join(out, "vit_tiny_32.safetensors"))
    resized = interpolate_embeddings(48, 8, dict(sd))
    large = torchvision.models.VisionTransformer(image_size=48, **VIT_TINY).eval()
    large.load_state_dict(resized)
    x = torch.from_numpy(generated("vit_interpolate_input", (2, 3, 48, 48)))
    with torch.no_grad():
        logits = large(x)
    # torch interpolates float32 in float32 (about 1e-6 off for these values, up to 2); the
    # same in float64, rounded, is the exact answer an implementation is held to.
    exact = interpolate_embeddings(48, 8, {k: v.double() for k, v in sd.items()})
    safetensors.torch.save_file({
        "pos_embedding": resized["encoder.pos_embedding"].contiguous(),
        "pos_embedding_f64": exact["encoder.pos_embedding"].float().contiguous(),
        "logits": logits.contiguous(),
    }, os.path.join(out, "interpolated_48.safetensors"))
    print("vit_interpolate", list(resized["encoder.pos_embedding"].shape), list(logits.shape))


def main():
    os.makedirs(ZOO, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    names = sys.argv[1:] or list(MODELS) + ["bicubic", "vit_interpolate"]
    for name in names:
        if name == "bicubic":
            bicubic_fixtures()
        elif name == "vit_interpolate":
            vit_interpolate_fixtures()
        else:
            make(name)
    # Shared with make_fixtures.py: the zoo's versions are recorded apart only if they differ.
    versions_path = os.path.join(OUT, "VERSIONS.json")
    versions = json.load(open(versions_path)) if os.path.exists(versions_path) else {}
    zoo = {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__}
    versions.pop("zoo", None)
    if any(versions.get(k) != v for k, v in zoo.items()):
        versions["zoo"] = zoo
    with open(versions_path, "w") as f:
        json.dump(versions, f, indent=1)


if __name__ == "__main__":
    main()
