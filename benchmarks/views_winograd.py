"""A Winograd convolution built from onnx operators against onnxruntime's own Conv (development figures).

The six descriptor views are the ResNet's 3x3 convolutions, which onnxruntime's CPU
kernels run at about 90% of a core's float32 peak (docs/performance.md, "The six descriptor
views"). Halving their cost with the same descriptors would take half the arithmetic:
Winograd's F(2x2, 3x3) does a 3x3 convolution with 2.25x fewer multiplications, and
onnxruntime has no such kernel. This measures whether one built from onnx operators pays:

- the input transform as a grouped convolution (16 kernels of 4x4 per channel, stride 2),
- the 16 products as one batched MatMul,
- the output transform as a MatMul, with the transposes and reshapes between,

against ``Conv`` with the same weights, at the layer shapes of dlib's ResNet (32 to 256
channels, 36 to 6 pixels a side) and six views a run (and 48: eight faces), one thread, as
each worker of a scan runs it. Prints one JSON line per shape: milliseconds a run of each,
their ratio, and the largest difference of the outputs relative to their largest value.

    python benchmarks/views_winograd.py [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

# F(2x2, 3x3): input, weight and output transforms (Lavin & Gray, 2015).
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)

# (views a run, channels in, channels out, pixels a side): dlib's ResNet's 3x3 layers.
SHAPES = [(6, 32, 32, 36), (6, 64, 64, 18), (6, 128, 128, 10), (6, 256, 256, 6), (48, 64, 64, 18)]


def _model(nodes: list[onnx.NodeProto], inputs: tuple[int, ...], init: list[onnx.TensorProto]) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(inputs))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "layer", [x], [y], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def conv(n: int, c: int, size: int, w: np.ndarray) -> onnx.ModelProto:
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    return _model([node], (n, c, size, size), [numpy_helper.from_array(w, "w")])


def winograd(n: int, c: int, size: int, w: np.ndarray) -> onnx.ModelProto:
    k = w.shape[0]
    tiles = size // 2
    p = tiles * tiles
    patch = np.stack([np.outer(BT[a], BT[b]) for a in range(4) for b in range(4)])  # (16, 4, 4)
    spread = np.tile(patch[None], (c, 1, 1, 1)).reshape(c * 16, 1, 4, 4).astype(np.float32)
    u = np.einsum("ai,kcij,bj->abkc", G, w, G).reshape(16, k, c).astype(np.float32)
    gather = np.einsum("pa,qb->pqab", AT, AT).reshape(4, 16).astype(np.float32)
    shapes = {
        "s1": [n, c, 16, p],
        "s2": [16, c, n * p],
        "s3": [16, k * n * p],
        "s4": [2, 2, k, n, tiles, tiles],
        "s5": [n, k, size, size],
    }
    nodes = [
        helper.make_node("Conv", ["x", "spread"], ["v"], pads=[1, 1, 1, 1], strides=[2, 2], group=c),
        helper.make_node("Reshape", ["v", "s1"], ["v1"]),
        helper.make_node("Transpose", ["v1"], ["v2"], perm=[2, 1, 0, 3]),
        helper.make_node("Reshape", ["v2", "s2"], ["v3"]),
        helper.make_node("MatMul", ["u", "v3"], ["m"]),
        helper.make_node("Reshape", ["m", "s3"], ["m1"]),
        helper.make_node("MatMul", ["gather", "m1"], ["o"]),
        helper.make_node("Reshape", ["o", "s4"], ["o1"]),
        helper.make_node("Transpose", ["o1"], ["o2"], perm=[3, 2, 4, 0, 5, 1]),
        helper.make_node("Reshape", ["o2", "s5"], ["y"]),
    ]
    init = [
        numpy_helper.from_array(spread, "spread"),
        numpy_helper.from_array(u, "u"),
        numpy_helper.from_array(gather, "gather"),
        *(numpy_helper.from_array(np.array(v, np.int64), name) for name, v in shapes.items()),
    ]
    return _model(nodes, (n, c, size, size), init)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50, help="timed runs of each graph, interleaved")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for n, c, k, size in SHAPES:
        w = (rng.normal(size=(k, c, 3, 3)) * 0.05).astype(np.float32)
        x = rng.normal(size=(n, c, size, size)).astype(np.float32)
        sessions = {"conv": _session(conv(n, c, size, w)), "winograd": _session(winograd(n, c, size, w))}
        out = {name: s.run(None, {"x": x})[0] for name, s in sessions.items()}
        spent = dict.fromkeys(sessions, 0.0)
        for _ in range(args.runs):
            for name, s in sessions.items():
                t = time.perf_counter()
                s.run(None, {"x": x})
                spent[name] += time.perf_counter() - t
        ms = {name: 1000 * t / args.runs for name, t in spent.items()}
        print(
            json.dumps(
                {
                    "views": n,
                    "channels": [c, k],
                    "size": size,
                    "conv_ms": round(ms["conv"], 3),
                    "winograd_ms": round(ms["winograd"], 3),
                    "winograd_over_conv": round(ms["winograd"] / ms["conv"], 2),
                    "relative_difference": float(
                        f"{np.abs(out['conv'] - out['winograd']).max() / np.abs(out['conv']).max():.1e}"
                    ),
                }
            )
        )


if __name__ == "__main__":
    main()
