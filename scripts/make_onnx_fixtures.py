#!/usr/bin/env python3
"""Makes the ONNX importer's parity fixtures (run once, in a throwaway venv, on the CPU).

    python -m venv /tmp/v && /tmp/v/bin/pip install torch torchvision onnx onnxruntime onnxscript timm safetensors numpy
    /tmp/v/bin/python scripts/make_onnx_fixtures.py             # writes tests/fixtures/onnx/
    /tmp/v/bin/python scripts/make_onnx_fixtures.py --big DIR   # also writes the big models into DIR

For each model M it writes into tests/fixtures/onnx/:

* `M.onnx`: the model, weights inside the file (except `helper_external.onnx`, whose weights are
  in `helper_external.onnx.data`).
* `M.safetensors`: float32 arrays: `input` (the input fed) and, for every node output value of the
  main graph whose type is a float tensor, the value under its ONNX name, as computed by
  onnxruntime on the CPU with graph optimizations disabled (so they are the unfused outputs of the
  nodes). They are obtained by adding every intermediate value (typed by onnx.shape_inference) as
  a graph output of a copy of the model. Non-float values (int64 shapes, bools) are skipped and
  listed in the json.
* `M.json`: input name and shape, opset, exporter, the nodes in graph order (name, op type,
  inputs, outputs; for the torchscript exporter the module path read off the node name; for the
  dynamo exporter the `pkg.torch.onnx.*` scope metadata of the node as it is in the file), and the
  largest difference between torch's output and onnxruntime's.

Models: a small torchvision-like CNN (1x3x48x48; torchscript opset 13 with BatchNormalization
kept, and dynamo opset 18), torchvision's mobilenet_v3_small at width 0.25 (torchscript opset
17), a tiny torchvision VisionTransformer (torchscript opset 17 and dynamo opset 18), a module of
tensor ops (interpolate, pad, cat, split, slicing, reductions, norms, einsum...; torchscript
opset 16 and dynamo opset 18, batch 2), and graphs built with onnx.helper for what torch does
not emit (`helper_*`). Everything is seeded,
so a rerun gives the same arrays. The stack traces that the dynamo exporter stores in each node's
metadata are removed (they hold the absolute paths of the machine that ran it).

`--big DIR` also exports torchvision's resnet18 and mobilenet_v2 (seeded random weights, BatchNorm
statistics randomised, 1x3x224x224 input, torchscript opset 17) with the same three files each
into DIR, for a speed and parity check by hand; they are too large to commit (about 45 MB and
14 MB of weights, plus every node's output).

At the end it prints a table of each model's op types and their union; tests/fixtures/onnx/README.md
records them, and VERSIONS.json the versions that made the files.
"""
import argparse
import io
import json
import os
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import onnx
import onnxruntime as ort
import safetensors.numpy
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "onnx")
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
# Node metadata copied into the json (the .onnx files also keep `pkg.torch.onnx.fx_node`; the
# dynamo exporter's `pkg.torch.onnx.stack_trace` is removed from them: it holds absolute paths).
KEEP_META = ("pkg.torch.onnx.name_scopes", "pkg.torch.onnx.class_hierarchy")

torch.set_num_threads(2)
# MultiheadAttention's fused inference path (aten::_native_multi_head_attention) has no ONNX
# export; the unfused path is what the exporters know.
torch.backends.mha.set_fastpath_enabled(False)


# --------------------------------------------------------------------------------------------
# Recording: every float node output through onnxruntime, unoptimised.
# --------------------------------------------------------------------------------------------


def value_types(model):
    """Element type of every value that shape inference (or the file) can type."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    types = {}
    g = inferred.graph
    for vi in list(g.value_info) + list(g.output) + list(g.input):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in g.initializer:
        types[init.name] = init.data_type
    return types


def run_all_nodes(model, feed):
    """Runs a copy of `model` with every node output added as a graph output.

    Returns (float values by name in graph order, non-float value names with their types)."""
    types = value_types(model)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    g = probe.graph
    existing = {o.name for o in g.output}
    wanted = []
    for node in g.node:
        for name in node.output:
            if not name or name in wanted:
                continue
            wanted.append(name)
            if name in existing:
                continue
            t = types.get(name)
            if t is None:
                # Untyped: let onnxruntime type it, keep it if the result is float.
                vi = onnx.ValueInfoProto()
                vi.name = name
                g.output.append(vi)
            else:
                g.output.append(helper.make_tensor_value_info(name, t, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    results = dict(zip(names, sess.run(names, feed)))
    floats, others = {}, {}
    for name in wanted:
        v = results[name]
        if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating):
            floats[name] = v.astype(np.float32, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        else:
            dtype = str(v.dtype) if isinstance(v, np.ndarray) else type(v).__name__
            others[name] = dtype
    return floats, others


def module_path_from_scope(node_name):
    """The module path in a torchscript node name: `/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`,
    `/layer2/layer2.0/downsample/downsample.0/Conv` -> `layer2.0.downsample.0`.

    A module called a second time gets a suffix in the name (`relu_1`), kept here as it is."""
    parts = [p for p in node_name.split("/") if p][:-1]
    segments = []
    for p in parts:
        # A child of a Sequential is written with the Sequential's own name in front
        # (`layer1` then `layer1.0`, `downsample` then `downsample.0`).
        if segments and p.startswith(segments[-1] + "."):
            segments[-1] = p
        else:
            segments.append(p)
    return ".".join(segments)


def opset_of(model):
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return None


def record(outdir, name, model, x, exporter, notes=None, torch_out=None, external=False):
    """Writes name.onnx, name.safetensors and name.json; returns the sorted op types."""
    os.makedirs(outdir, exist_ok=True)
    onnx.checker.check_model(model)
    path = os.path.join(outdir, name + ".onnx")
    if external:
        data = name + ".onnx.data"
        if os.path.exists(os.path.join(outdir, data)):
            os.remove(os.path.join(outdir, data))
        stored = onnx.ModelProto()
        stored.CopyFrom(model)
        onnx.save_model(stored, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data, size_threshold=0)
        # Reload from disk so the recorded outputs come from the files as written.
        model = onnx.load(path)
    else:
        onnx.save_model(model, path)
    input_name = model.graph.input[0].name
    feed = {input_name: x}
    floats, others = run_all_nodes(model, feed)

    tensors = {"input": x.astype(np.float32, order="C")}
    for k, v in floats.items():
        assert k != "input", "a node output is named like the input key"
        tensors[k] = v
    safetensors.numpy.save_file(tensors, os.path.join(outdir, name + ".safetensors"))

    nodes = []
    for node in model.graph.node:
        entry = {"name": node.name, "op_type": node.op_type}
        if node.domain not in ("", "ai.onnx"):
            entry["domain"] = node.domain
        entry["inputs"] = list(node.input)
        entry["outputs"] = list(node.output)
        if exporter == "torchscript":
            entry["module"] = module_path_from_scope(node.name)
        meta = {p.key: p.value for p in node.metadata_props if p.key in KEEP_META}
        if meta:
            entry["metadata_props"] = meta
        nodes.append(entry)

    info = {
        "input_name": input_name,
        "input_shape": list(x.shape),
        "opset": opset_of(model),
        "exporter": exporter,
        "ir_version": model.ir_version,
        "opset_import": {(imp.domain or "ai.onnx"): imp.version for imp in model.opset_import},
        "outputs": [o.name for o in model.graph.output],
        "op_types": sorted({n.op_type for n in model.graph.node}),
    }
    if model.functions:
        info["functions"] = [
            {"domain": f.domain, "name": f.name, "op_types": sorted({n.op_type for n in f.node})}
            for f in model.functions
        ]
    if external:
        info["external_data"] = name + ".onnx.data"
    if torch_out is not None:
        out0 = floats[model.graph.output[0].name]
        info["torch_max_abs_diff"] = float(np.max(np.abs(out0 - torch_out)))
    info["float_values"] = len(floats)
    info["non_float_values"] = others
    if notes:
        info["notes"] = notes
    info["nodes"] = nodes
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    optypes = sorted({(n.domain + "." if n.domain not in ("", "ai.onnx") else "") + n.op_type
                      for n in model.graph.node})
    fn_ops = sorted({n.op_type for f in model.functions for n in f.node})
    msg = f"{name}: opset {info['opset']}, {len(nodes)} nodes, {len(floats)} float values"
    if torch_out is not None:
        msg += f", torch vs onnxruntime {info['torch_max_abs_diff']:.2e}"
    print(msg, flush=True)
    return {"opset": info["opset"], "exporter": exporter, "op_types": optypes, "function_op_types": fn_ops}


# --------------------------------------------------------------------------------------------
# Torch models.
# --------------------------------------------------------------------------------------------


def randomise(model, seed):
    """Seeded random parameters, and BatchNorm running statistics that are far from 0 / 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / fan_in) ** 0.5)
            elif name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model.eval()


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class SqueezeExcitation(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.activation = nn.SiLU()
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * s


class SmallCNN(nn.Module):
    """conv1/bn1/relu/maxpool, layer1 (BasicBlock), layer2 (BasicBlock with downsample), a
    depthwise dilated block with several activations and SE, pools and a Linear head."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2))
        self.features = nn.Sequential(
            nn.Conv2d(16, 16, 3, 1, padding=2, dilation=2, groups=16, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU6(),
            nn.Conv2d(16, 16, 1),
            nn.Hardswish(),
            SqueezeExcitation(16, 4),
            nn.Hardsigmoid(),
            nn.GELU(),
        )
        self.pool = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x = self.features(x)
        x = self.pool(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


class Ops(nn.Module):
    """Tensor ops the importer must map: resize, pad, cat/split, slicing, reductions, norms..."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.gn = nn.GroupNorm(2, 4)
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.ln = nn.LayerNorm(4)

    def forward(self, x):  # [2, 4, 6, 6]
        y = self.gn(self.conv(x))
        y = torch.where(y > 0, y, 0.1 * y)
        up_n = F.interpolate(y, scale_factor=2, mode="nearest")
        up_b = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        up_a = F.interpolate(y, size=(12, 12), mode="bilinear", align_corners=True)
        u = torch.cat([up_n, up_b, up_a], dim=1)  # [2, 12, 12, 12]
        a, b, c = torch.split(u, [4, 4, 4], dim=1)
        p, q = torch.chunk(a + b - c, 2, dim=1)  # [2, 2, 12, 12] each
        p = F.pad(p, (1, 1, 2, 2), mode="reflect")
        q = F.pad(q, (1, 1, 2, 2), mode="constant", value=0.5)
        m = torch.cat([p, q], dim=1)  # [2, 4, 16, 14]
        sl = m[:, :, 1:5, ::2]  # [2, 4, 4, 7]
        mean = m.mean(dim=(2, 3), keepdim=True)  # [2, 4, 1, 1]
        total = m.sum(1)  # [2, 16, 14]
        mx = m.amax(dim=(2, 3))  # [2, 4]
        norm = torch.sqrt((m * m).sum(dim=1, keepdim=True))  # [2, 1, 16, 14]
        n = self.inorm(m - mean) / (norm + 1.0)
        t = self.ln(n.permute(0, 2, 3, 1))  # [2, 16, 14, 4]
        t = torch.tanh(t).permute(0, 3, 1, 2)  # [2, 4, 16, 14]
        qk = sl.reshape(2, 4, -1)  # [2, 4, 28]
        att = torch.softmax(torch.matmul(qk, qk.transpose(1, 2)) / 5.0, dim=-1)  # [2, 4, 4]
        e = torch.einsum("bchw,bkhw->bck", t, t)  # [2, 4, 4]
        out = att + 0.01 * e + mx.unsqueeze(-1)
        out = out + mean.squeeze(-1) + total.view(2, -1).mean(1).view(-1, 1, 1)
        return out


def export_torchscript(model, x, opset, fold_bn=True):
    """fold_bn=False exports with TrainingMode.PRESERVE (the model is in eval mode): BatchNorm
    stays a BatchNormalization node instead of being folded into the Conv before it."""
    buf = io.BytesIO()
    training = torch.onnx.TrainingMode.EVAL if fold_bn else torch.onnx.TrainingMode.PRESERVE
    with torch.no_grad():
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=opset, training=training,
                          input_names=["input"], output_names=["output"], do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


def export_dynamo(model, x, opset):
    with torch.no_grad():
        prog = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset,
                                 input_names=["input"], output_names=["output"])
    proto = prog.model_proto
    # Drop stack traces (absolute paths) and the graph's doc strings; keep the scope metadata.
    for node in proto.graph.node:
        keep = [(p.key, p.value) for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        for k, v in keep:
            node.metadata_props.add(key=k, value=v)
        node.doc_string = ""
    return proto


def torch_models(outdir, table, skipped):
    def both(name_ts, name_dy, model, x, ts_opset, dy_opset=18, fold_bn=True):
        with torch.no_grad():
            ref = model(x).numpy()
        xn = x.numpy()
        notes = None if fold_bn else "torchscript export with TrainingMode.PRESERVE: BatchNormalization kept"
        table[name_ts] = record(outdir, name_ts, export_torchscript(model, x, ts_opset, fold_bn), xn,
                                "torchscript", notes=notes, torch_out=ref)
        if name_dy is None:
            return
        try:
            proto = export_dynamo(model, x, dy_opset)
        except Exception as e:  # noqa: BLE001  (recorded, the variant is skipped)
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            print(f"{name_dy}: dynamo export failed, skipped ({reason})", flush=True)
            skipped[name_dy] = reason
            return
        table[name_dy] = record(outdir, name_dy, proto, xn, "dynamo", torch_out=ref)

    torch.manual_seed(0)
    cnn = randomise(SmallCNN(), 1)
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(100))
    both("cnn_ts13", "cnn_dynamo18", cnn, x, 13, fold_bn=False)

    torch.manual_seed(0)
    mnv3 = randomise(torchvision.models.mobilenet_v3_small(width_mult=0.25, num_classes=10), 2)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(101))
    nbytes = sum(p.numel() for p in mnv3.state_dict().values()) * 4
    if nbytes < 1_500_000:
        both("mobilenet_v3_small_ts17", None, mnv3, x, 17)
    else:
        skipped["mobilenet_v3_small_ts17"] = f"weights are {nbytes} bytes (over 1.5 MB)"

    torch.manual_seed(0)
    vit = randomise(torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
        num_classes=10), 3)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(102))
    both("vit_tiny_ts17", "vit_tiny_dynamo18", vit, x, 17)

    torch.manual_seed(0)
    ops = randomise(Ops(), 4)
    x = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(103))
    both("ops_upsample_ts16", "ops_upsample_dynamo18", ops, x, 16)


# --------------------------------------------------------------------------------------------
# onnx.helper graphs.
# --------------------------------------------------------------------------------------------


def rng_array(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def make(graph, opset, extra_opsets=(), functions=()):
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=imports, functions=list(functions),
                              producer_name="featx make_onnx_fixtures.py")
    model.ir_version = 8 if opset < 18 else 9
    return model


def vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def helper_models(outdir, table):
    N = helper.make_node

    # A model-local function (domain custom.local) with an attribute, called twice.
    rng = np.random.default_rng(10)
    leaky = N("LeakyRelu", ["xsb"], ["Y"], name="leaky")
    # The function's `alpha` attribute, forwarded (ref_attr_name) to LeakyRelu.
    leaky.attribute.append(helper.make_attribute_ref("alpha", helper.AttributeProto.FLOAT))
    fn = helper.make_function(
        "custom.local", "ScaleShiftLeaky", ["X", "S", "B"], ["Y"],
        [N("Mul", ["X", "S"], ["xs"], name="mul"),
         N("Add", ["xs", "B"], ["xsb"], name="add"),
         leaky],
        opset_imports=[helper.make_opsetid("", 18)], attributes=["alpha"])
    g = helper.make_graph(
        [N("ScaleShiftLeaky", ["input", "s1", "b1"], ["f1_out"], name="f1", domain="custom.local", alpha=0.2),
         N("Conv", ["f1_out", "w"], ["conv_out"], name="conv", pads=[1, 1, 1, 1]),
         N("ScaleShiftLeaky", ["conv_out", "s2", "b2"], ["f2_out"], name="f2", domain="custom.local", alpha=0.05),
         N("Sigmoid", ["f2_out"], ["output"], name="sigmoid")],
        "helper_function", [vi("input", [1, 4, 6, 6])], [vi("output", [1, 4, 6, 6])],
        [init("s1", rng_array(rng, [1, 4, 1, 1])), init("b1", rng_array(rng, [1, 4, 1, 1], 0.5)),
         init("w", rng_array(rng, [4, 4, 3, 3], 0.3)),
         init("s2", rng_array(rng, [1, 4, 1, 1])), init("b2", rng_array(rng, [1, 4, 1, 1], 0.5))])
    x = rng_array(rng, [1, 4, 6, 6])
    table["helper_function"] = record(outdir, "helper_function", make(g, 18, [("custom.local", 1)], [fn]),
                                      x, "onnx.helper")

    # Reductions: axes as an attribute (opset 13; ReduceSum already takes them as an input there)...
    rng = np.random.default_rng(11)
    x = rng_array(rng, [1, 3, 4, 5])
    g = helper.make_graph(
        [N("ReduceL2", ["input"], ["l2"], name="reduce_l2", axes=[2, 3], keepdims=1),
         N("ReduceMax", ["input"], ["max"], name="reduce_max", axes=[1], keepdims=0),
         N("ReduceMean", ["input"], ["mean_all"], name="reduce_mean_all", keepdims=0),
         N("ReduceSum", ["input", "axes_sum"], ["sum"], name="reduce_sum", keepdims=1),
         N("Add", ["l2", "sum"], ["output"], name="add")],
        "helper_reduce13", [vi("input", [1, 3, 4, 5])],
        [vi("output", [1, 3, 1, 1]), vi("max", [1, 4, 5]), vi("mean_all", [])],
        [init("axes_sum", np.array([2, 3], np.int64))])
    table["helper_reduce13"] = record(outdir, "helper_reduce13", make(g, 13), x, "onnx.helper")
    # ... and as an input (opset 18), with an empty axes input (reduce everything).
    g = helper.make_graph(
        [N("ReduceL2", ["input", "axes_hw"], ["l2"], name="reduce_l2", keepdims=1),
         N("ReduceMax", ["input", "axes_c"], ["max"], name="reduce_max", keepdims=0),
         N("ReduceMean", ["input"], ["mean_all"], name="reduce_mean_all", keepdims=0),
         N("ReduceSum", ["input", "axes_hw"], ["sum"], name="reduce_sum", keepdims=1),
         N("ReduceMin", ["input", "axes_neg"], ["min"], name="reduce_min", keepdims=1),
         N("Add", ["l2", "sum"], ["output"], name="add")],
        "helper_reduce18", [vi("input", [1, 3, 4, 5])],
        [vi("output", [1, 3, 1, 1]), vi("max", [1, 4, 5]), vi("mean_all", []), vi("min", [1, 3, 4, 1])],
        [init("axes_hw", np.array([2, 3], np.int64)), init("axes_c", np.array([1], np.int64)),
         init("axes_neg", np.array([-1], np.int64))])
    table["helper_reduce18"] = record(outdir, "helper_reduce18", make(g, 18), x, "onnx.helper")

    # Resize: coordinate transformation modes and nearest modes (opset 13: X, roi, scales, sizes).
    rng = np.random.default_rng(12)
    x = rng_array(rng, [1, 2, 5, 5])
    up2 = np.array([1, 1, 2, 2], np.float32)
    up15 = np.array([1, 1, 1.5, 1.5], np.float32)
    down = np.array([1, 1, 0.6, 0.6], np.float32)
    sizes = np.array([1, 2, 9, 7], np.int64)
    cases = [
        ("nearest_asymmetric_floor", ["input", "", "up2"], dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"), [1, 2, 10, 10]),
        ("nearest_half_pixel_round_prefer_floor", ["input", "", "up15"], dict(mode="nearest", coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor"), [1, 2, 7, 7]),
        ("nearest_align_corners_round_prefer_floor", ["input", "", "", "sizes"], dict(mode="nearest", coordinate_transformation_mode="align_corners", nearest_mode="round_prefer_floor"), [1, 2, 9, 7]),
        ("nearest_asymmetric_round_prefer_floor", ["input", "", "up15"], dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="round_prefer_floor"), [1, 2, 7, 7]),
        ("linear_asymmetric", ["input", "", "up2"], dict(mode="linear", coordinate_transformation_mode="asymmetric"), [1, 2, 10, 10]),
        ("linear_half_pixel", ["input", "", "up15"], dict(mode="linear", coordinate_transformation_mode="half_pixel"), [1, 2, 7, 7]),
        ("linear_half_pixel_down", ["input", "", "down"], dict(mode="linear", coordinate_transformation_mode="half_pixel"), [1, 2, 3, 3]),
        ("linear_align_corners", ["input", "", "", "sizes"], dict(mode="linear", coordinate_transformation_mode="align_corners"), [1, 2, 9, 7]),
        ("linear_pytorch_half_pixel", ["input", "", "", "sizes"], dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"), [1, 2, 9, 7]),
    ]
    g = helper.make_graph(
        [N("Resize", ins, [c], name="resize_" + c, **attrs) for c, ins, attrs, _ in cases],
        "helper_resize", [vi("input", [1, 2, 5, 5])], [vi(c, s) for c, _, _, s in cases],
        [init("up2", up2), init("up15", up15), init("down", down), init("sizes", sizes)])
    table["helper_resize"] = record(outdir, "helper_resize", make(g, 13), x, "onnx.helper")

    # Shape arithmetic without Range: Shape -> Gather -> Unsqueeze -> Concat -> Reshape, and
    # ConstantOfShape / Equal / Where.
    rng = np.random.default_rng(13)
    x = rng_array(rng, [1, 4, 6, 6])
    g = helper.make_graph(
        [N("Shape", ["input"], ["shape"], name="shape"),
         N("Gather", ["shape", "i0"], ["dim0"], name="gather_n", axis=0),
         N("Gather", ["shape", "i1"], ["dim1"], name="gather_c", axis=0),
         N("Unsqueeze", ["dim0", "ax0"], ["dim0_1d"], name="unsqueeze_n"),
         N("Unsqueeze", ["dim1", "ax0"], ["dim1_1d"], name="unsqueeze_c"),
         N("Concat", ["dim0_1d", "dim1_1d", "minus1"], ["new_shape"], name="concat_shape", axis=0),
         N("Reshape", ["input", "new_shape"], ["flat"], name="reshape"),
         N("Shape", ["flat"], ["flat_shape"], name="shape_flat"),
         N("ConstantOfShape", ["flat_shape"], ["halves"], name="constant_of_shape",
           value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
         N("Floor", ["flat"], ["floored"], name="floor"),
         N("ConstantOfShape", ["flat_shape"], ["zeros"], name="constant_of_shape_zero"),
         N("Equal", ["floored", "zeros"], ["is_zero"], name="equal"),
         N("Where", ["is_zero", "halves", "flat"], ["picked"], name="where"),
         N("Transpose", ["picked"], ["output"], name="transpose", perm=[0, 2, 1])],
        "helper_shape", [vi("input", [1, 4, 6, 6])], [vi("output", [1, 36, 4])],
        [init("i0", np.array(0, np.int64)), init("i1", np.array(1, np.int64)),
         init("ax0", np.array([0], np.int64)), init("minus1", np.array([-1], np.int64))])
    table["helper_shape"] = record(outdir, "helper_shape", make(g, 18), x, "onnx.helper")

    # Gemm (transB, alpha, beta), Einsum, Split with a `split` input. The input is an image
    # batch (featx feeds images), flattened first.
    rng = np.random.default_rng(14)
    x = rng_array(rng, [2, 6]).reshape(2, 6, 1, 1)
    g = helper.make_graph(
        [N("Flatten", ["input"], ["flat"], name="flatten", axis=1),
         N("Gemm", ["flat", "gemm_w", "gemm_c"], ["gemm"], name="gemm", transB=1, alpha=0.5, beta=2.0),
         N("Gemm", ["flat", "gemm_wt"], ["gemm_nobias"], name="gemm_transA", transA=0, transB=0),
         N("Einsum", ["gemm", "ein_w"], ["ein"], name="einsum_matmul", equation="ij,jk->ik"),
         N("Einsum", ["ein", "gemm_nobias"], ["outer"], name="einsum_outer", equation="bi,bj->bij"),
         N("Split", ["ein", "split"], ["s1", "s2"], name="split", axis=1),
         N("Split", ["outer"], ["o1", "o2", "o3"], name="split_even", axis=1, num_outputs=3),
         N("Concat", ["s2", "s1"], ["swapped"], name="concat", axis=1),
         N("Add", ["o1", "o3"], ["o13"], name="add_o"),
         N("Tanh", ["swapped"], ["output"], name="tanh")],
        "helper_gemm_einsum_split", [vi("input", [2, 6, 1, 1])], [vi("output", [2, 3]), vi("o13", [2, 1, 4]), vi("o2", [2, 1, 4])],
        [init("gemm_w", rng_array(rng, [4, 6], 0.4)), init("gemm_c", rng_array(rng, [4])),
         init("gemm_wt", rng_array(rng, [6, 4], 0.4)), init("ein_w", rng_array(rng, [4, 3], 0.5)),
         init("split", np.array([1, 2], np.int64))])
    table["helper_gemm_einsum_split"] = record(outdir, "helper_gemm_einsum_split", make(g, 18), x, "onnx.helper")

    # Weights in an external data file.
    rng = np.random.default_rng(15)
    x = rng_array(rng, [1, 3, 8, 8])
    g = helper.make_graph(
        [N("Conv", ["input", "conv_w", "conv_b"], ["conv"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2]),
         N("Relu", ["conv"], ["relu"], name="relu"),
         N("Flatten", ["relu"], ["flat"], name="flatten", axis=1),
         N("MatMul", ["flat", "fc_w"], ["mm"], name="matmul"),
         N("Add", ["mm", "fc_b"], ["output"], name="add")],
        "helper_external", [vi("input", [1, 3, 8, 8])], [vi("output", [1, 5])],
        [init("conv_w", rng_array(rng, [4, 3, 3, 3], 0.3)), init("conv_b", rng_array(rng, [4], 0.1)),
         init("fc_w", rng_array(rng, [64, 5], 0.2)), init("fc_b", rng_array(rng, [5], 0.1))])
    table["helper_external"] = record(outdir, "helper_external", make(g, 18), x, "onnx.helper", external=True)


# --------------------------------------------------------------------------------------------


def big_models(outdir):
    table = {}
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(200))
    for i, (name, ctor) in enumerate([("resnet18_tv_ts17", torchvision.models.resnet18),
                                      ("mobilenet_v2_tv_ts17", torchvision.models.mobilenet_v2)]):
        torch.manual_seed(0)
        model = randomise(ctor(), 20 + i)
        with torch.no_grad():
            ref = model(x).numpy()
        table[name] = record(outdir, name, export_torchscript(model, x, 17), x.numpy(), "torchscript",
                             torch_out=ref)
    return table


def print_table(table):
    print("\n| model | exporter | opset | op types |\n|---|---|---|---|")
    for name, row in table.items():
        ops = ", ".join(row["op_types"])
        if row["function_op_types"]:
            ops += " (in functions: " + ", ".join(row["function_op_types"]) + ")"
        print(f"| `{name}` | {row['exporter']} | {row['opset']} | {ops} |")
    union = sorted({op for row in table.values() for op in row["op_types"] + row["function_op_types"]})
    print(f"\nunion ({len(union)}): " + ", ".join(union))
    return union


DESCRIPTIONS = {
    "cnn_ts13": "small torchvision-like CNN (below), torchscript exporter with "
                "TrainingMode.PRESERVE so that BatchNormalization stays",
    "cnn_dynamo18": "the same CNN and input, dynamo exporter (default optimizer)",
    "mobilenet_v3_small_ts17": "torchvision mobilenet_v3_small(width_mult=0.25, num_classes=10), "
                               "1x3x64x64, torchscript exporter (eval: BatchNorm folded into Conv)",
    "vit_tiny_ts17": "torchvision VisionTransformer(image_size=32, patch_size=8, num_layers=2, "
                     "num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10), 1x3x32x32, torchscript",
    "vit_tiny_dynamo18": "the same ViT and input, dynamo exporter",
    "ops_upsample_ts16": "the `Ops` module (tensor ops), 2x4x6x6 (the batch-2 case), torchscript",
    "ops_upsample_dynamo18": "the same module and input, dynamo exporter",
    "helper_function": "model-local function `custom.local.ScaleShiftLeaky(X, S, B)` (Mul, Add, "
                       "LeakyRelu with `alpha` forwarded from the call by ref_attr_name) called "
                       "twice (alpha 0.2 and 0.05) around a Conv",
    "helper_reduce13": "ReduceL2 / ReduceMax / ReduceMean with `axes` as an attribute (ReduceSum "
                       "already takes an axes input at 13), keepdims 0 and 1, reduce-all",
    "helper_reduce18": "the same reductions with `axes` as an input (and ReduceMin over axis -1, "
                       "ReduceMean with no axes input = reduce all)",
    "helper_resize": "Resize (opset 13) on 1x2x5x5: nearest asymmetric/floor x2, half_pixel/"
                     "round_prefer_floor x1.5, align_corners/round_prefer_floor to 9x7 (sizes "
                     "input), asymmetric/round_prefer_floor x1.5; linear asymmetric x2, "
                     "half_pixel x1.5 and x0.6, align_corners and pytorch_half_pixel to 9x7; "
                     "every result is a graph output named after its case",
    "helper_shape": "Shape -> Gather -> Unsqueeze -> Concat -> Reshape (no Range), "
                    "ConstantOfShape (0.5 and default 0), Floor, Equal, Where, Transpose",
    "helper_gemm_einsum_split": "Gemm transB=1 alpha=0.5 beta=2 with bias, Gemm without C, "
                                "Einsum `ij,jk->ik` and `bi,bj->bij`, Split with a `split` "
                                "input [1, 2] and Split with num_outputs=3, Concat",
    "helper_external": "Conv, Relu, Flatten, MatMul, Add with every initializer in "
                       "`helper_external.onnx.data` (one file, size_threshold=0)",
}

README_HEAD = """\
# tests/fixtures/onnx

Reference fixtures for the ONNX importer: models exported by torch's own ONNX exporters (the
torchscript one, `torch.onnx.export(..., dynamo=False)`, and the dynamo one, `dynamo=True`) or
built with `onnx.helper`, with onnxruntime's output for every node. All of it, this README
included, is written by [`scripts/make_onnx_fixtures.py`](../../../scripts/make_onnx_fixtures.py),
run once in a throwaway virtual environment on the CPU:

    python -m venv /tmp/v && /tmp/v/bin/pip install torch torchvision onnx onnxruntime onnxscript timm safetensors numpy
    /tmp/v/bin/python scripts/make_onnx_fixtures.py

Every weight and input is drawn from fixed seeds, so a rerun with the versions in
[`VERSIONS.json`](VERSIONS.json) writes the same bytes.

## Files

For each model `M`:

| file | what |
|---|---|
| `M.onnx` | the model, weights inside (except `helper_external.onnx`: its weights are in `helper_external.onnx.data`) |
| `M.safetensors` | float32 arrays: `input`, the input fed; and for every node output of the main graph whose type is a float tensor, that value under its ONNX value name |
| `M.json` | `input_name`, `input_shape`, `opset`, `exporter` (`torchscript`, `dynamo` or `onnx.helper`), `ir_version`, `opset_import`, `outputs`, `op_types`, `functions` (local functions and the ops in them), `torch_max_abs_diff` (torch's output against onnxruntime's), `float_values` (how many arrays besides `input`), `non_float_values` (node outputs left out, with their dtype: int64 shapes, bools), `notes`, and `nodes` in graph order |

Each entry of `nodes` has `name` (the ONNX node name), `op_type`, `domain` (only when not the
default one), `inputs`, `outputs`, and:

* torchscript exports: `module`, the module path read off the node name:
  `/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`,
  `/layer2/layer2.0/downsample/downsample.0/Conv` -> `layer2.0.downsample.0` (a child of a
  Sequential is written with the Sequential's name in front). A module called a second time
  keeps the exporter's suffix (`layer1.0.relu_1`); nodes outside any module (`/Flatten`) get `""`.
* dynamo exports: `metadata_props` with `pkg.torch.onnx.name_scopes` and
  `pkg.torch.onnx.class_hierarchy` exactly as in the file. `name_scopes` is a Python list
  literal: the root `''`, then each module's qualified name, then the FX node the op came from,
  e.g. `['', 'layer1', 'layer1.0', 'layer1.0.bn1', '_native_batch_norm_legit_no_training_1']`.
  The .onnx files also keep `pkg.torch.onnx.fx_node`; the exporter's
  `pkg.torch.onnx.stack_trace` is removed from them (it holds absolute paths of the machine
  that ran the script).

The arrays come from onnxruntime on the CPU with graph optimizations disabled
(`ORT_DISABLE_ALL`), so they are the outputs of the nodes as written, not of fused kernels. To
get them, a copy of the model gets every node output as an extra graph output, typed by
`onnx.shape_inference`. Outputs of nodes inside local functions are not graph values and are not
stored; the call's outputs are. Float constants (outputs of `Constant` nodes) are stored like any
other value; 0-d values (scalar constants, a reduction over every axis with keepdims 0) keep shape
`[]`. A node output that is also a graph output is stored once, under its name.
"""

README_MODELS_NOTES = """\
## What the exporters emit

* BatchNorm. The torchscript exporter in its default eval mode folds BatchNorm into the Conv
  before it (`mobilenet_v3_small_ts17`, and the `--big` models); `cnn_ts13` is exported with
  `training=TrainingMode.PRESERVE` (model in eval mode), which keeps `BatchNormalization` nodes
  with the random running statistics. The dynamo exporter's default optimizer folds BatchNorm
  into the Conv as well: in `cnn_dynamo18` each Conv followed by a BatchNorm is a single Conv
  node whose `name_scopes` is the BatchNorm's (`['', 'bn1', '_native_batch_norm_legit_no_training']`)
  and whose output is named `getitem*`.
* HardSwish: opset 13 has no `HardSwish`, so `cnn_ts13` has `HardSigmoid` + `Mul`;
  `cnn_dynamo18` has `HardSwish`. ReLU6 is `Clip` in both; SiLU is `Sigmoid` + `Mul`; GELU is the
  erf form (`Div`, `Erf`, `Add`, `Mul`); Dropout is not exported (eval).
* AdaptiveAvgPool2d(1) is `GlobalAveragePool` (torchscript) or `ReduceMean` over axes [2, 3]
  (dynamo); `torch.flatten` is `Flatten` or `Reshape`; Linear is `Gemm` on 2-d input and
  `MatMul` + `Add` on the ViT's 3-d tokens.
* ViT: the torchscript export at 17 has `LayerNormalization`, and the attention comes with shape
  arithmetic (`Shape`, `Gather`, `ConstantOfShape`, `Equal`, `Where`, `Expand`, `Mod`, `Cast`;
  these int64/bool values are the `non_float_values`). The dynamo export has static shapes, no
  `Shape` ops, `LayerNormalization`, and the attention as `MatMul`/`Softmax`/`Transpose`.
* `ops_upsample_ts16`: at opset 16 LayerNorm is decomposed (`ReduceMean`, `Sub`, `Pow`, `Sqrt`,
  `Div`, `Mul`, `Add`); GroupNorm is `Reshape`, `InstanceNormalization` (unit scale), `Reshape`,
  `Mul`, `Add` (in both exports); ReduceMean/ReduceMax take `axes` as an attribute and ReduceSum
  as an input; `torch.split` is a `Split` with a split input and `torch.chunk` two `Slice`s; the
  three interpolations are `Resize` nearest/asymmetric/floor, linear/half_pixel (scales) and
  linear/align_corners (sizes). `ops_upsample_dynamo18`: reductions take `axes` as an input,
  `LayerNormalization` is used, `torch.chunk` is a `Split` with `num_outputs`, the Resize nodes
  carry the opset-18 attributes (`antialias`, `keep_aspect_ratio_policy`...). Its two `Split`
  nodes come from the optimizer and have no `name_scopes` metadata (every other node of the
  dynamo exports has it).

## The small CNN (`cnn_*`)

`conv1` (7x7, stride 2, padding 3) `bn1` `relu` `maxpool` (3, 2, 1); `layer1` = Sequential of
one BasicBlock (`layer1.0.conv1/bn1/relu/conv2/bn2`, identity add, relu); `layer2` = Sequential
of one BasicBlock with stride 2 and `layer2.0.downsample` (1x1 conv + BN); `features`: depthwise
3x3 conv (groups 16, dilation 2), BN, ReLU6, 1x1 conv, Hardswish, squeeze-excitation
(`features.5`: AdaptiveAvgPool2d(1), 1x1 conv, SiLU, 1x1 conv, Sigmoid, mul), Hardsigmoid,
GELU; `pool` = AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False) (6x6 -> 4x4, where
floor mode gives 3x3); `avgpool` = AdaptiveAvgPool2d(1); flatten; `dropout`; `fc` (16 -> 10).
Parameters are seeded normals; BatchNorm running means and variances are random (means ~N(0,
0.2^2), variances in [0.5, 1.5)).

## Big models (not committed)

    /tmp/v/bin/python scripts/make_onnx_fixtures.py --big DIR

also writes `resnet18_tv_ts17` and `mobilenet_v2_tv_ts17` (torchvision, seeded random weights,
random BatchNorm statistics, 1x3x224x224, torchscript exporter at opset 17, BatchNorm folded)
into `DIR` with the same three files each: about 47 MB + 24 MB for resnet18 and 14 MB + 53 MB
for mobilenet_v2 (model + all node outputs). They are for a speed and parity check by hand.
"""


def write_readme(outdir, table, skipped, union, versions):
    def size(f):
        p = os.path.join(outdir, f)
        return os.path.getsize(p) if os.path.exists(p) else 0

    lines = [README_HEAD, "## Models\n"]
    lines.append("| model | exporter | opset | input | nodes | float values | what |")
    lines.append("|---|---|---|---|---|---|---|")
    for name in table:
        with open(os.path.join(outdir, name + ".json")) as f:
            info = json.load(f)
        shape = "x".join(str(d) for d in info["input_shape"])
        lines.append(f"| `{name}` | {info['exporter']} | {info['opset']} | {shape} | "
                     f"{len(info['nodes'])} | {info['float_values']} | {DESCRIPTIONS[name]} |")
    lines.append("\n## Op types\n")
    lines.append("Collected by the script from each main graph (and, in brackets, from its local functions).\n")
    lines.append("| model | op types |\n|---|---|")
    for name, row in table.items():
        ops = ", ".join(row["op_types"])
        if row["function_op_types"]:
            ops += " (in functions: " + ", ".join(row["function_op_types"]) + ")"
        lines.append(f"| `{name}` | {ops} |")
    lines.append(f"\nUnion over all fixtures ({len(union)}): " + ", ".join(union) + ".\n")
    lines.append("`op_types.json` holds the same lists.\n")
    lines.append(README_MODELS_NOTES)
    lines.append("## Sizes\n")
    lines.append("| model | .onnx | .safetensors | .json |\n|---|---|---|---|")
    total = 0
    for name in table:
        sizes = [size(name + ".onnx") + size(name + ".onnx.data"), size(name + ".safetensors"), size(name + ".json")]
        total += sum(sizes)
        lines.append(f"| `{name}` | {sizes[0]} | {sizes[1]} | {sizes[2]} |")
    lines.append(f"\nAll models: {total} bytes (`helper_external`'s .onnx column includes its .onnx.data).\n")
    lines.append("## Skipped\n")
    if skipped:
        for k, v in skipped.items():
            lines.append(f"* `{k}`: {v}")
    else:
        lines.append("Nothing: every variant exported and ran (the dynamo exporter included).")
    lines.append("\n## Versions\n")
    lines.append(", ".join(f"{k} {v}" for k, v in versions.items()) + " ([`VERSIONS.json`](VERSIONS.json)).")
    with open(os.path.join(outdir, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", metavar="DIR", help="also export resnet18 and mobilenet_v2 into DIR")
    ap.add_argument("--out", default=OUT, help="fixture folder (default tests/fixtures/onnx)")
    args = ap.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)

    table, skipped = {}, {}
    torch_models(args.out, table, skipped)
    helper_models(args.out, table)
    union = print_table(table)
    if skipped:
        print("skipped:", json.dumps(skipped, indent=1))

    summary = {name: {"exporter": r["exporter"], "opset": r["opset"], "op_types": r["op_types"],
                      **({"function_op_types": r["function_op_types"]} if r["function_op_types"] else {})}
               for name, r in table.items()}
    with open(os.path.join(args.out, "op_types.json"), "w") as f:
        json.dump({"models": summary, "union": union, "skipped": skipped}, f, indent=1)
        f.write("\n")
    import onnxscript
    versions = {"python": sys.version.split()[0], "torch": torch.__version__,
                "torchvision": torchvision.__version__, "onnx": onnx.__version__,
                "onnxruntime": ort.__version__, "onnxscript": onnxscript.__version__,
                "numpy": np.__version__}
    with open(os.path.join(args.out, "VERSIONS.json"), "w") as f:
        json.dump(versions, f, indent=1)
        f.write("\n")
    write_readme(args.out, table, skipped, union, versions)

    if args.big:
        print_table(big_models(args.big))


if __name__ == "__main__":
    main()
