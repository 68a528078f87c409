"""The six-view graph on small hand-made networks: the rows it shares between views give the
outputs of the views cut first and run one by one (the real ResNet: tests/detect/test_engine.py)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from photocluster.detect.engine.dlib_format import AddPrev, Affine, Conv, Fc, Layer, Pool, Relu, Skip, Tag
from photocluster.detect.engine.onnx_graph import _same_rows, build_model, build_views_model, make_session

MEAN = (122.0, 117.0, 104.0)
RNG = np.random.default_rng(11)


def conv(inputs: int, outputs: int, k: int, stride: int = 1, pad: int | None = None, relu: bool = False) -> Conv:
    weight = RNG.normal(0, 0.3, size=(outputs, inputs, k, k)).astype(np.float32)
    bias = RNG.normal(0, 0.1, size=outputs).astype(np.float32)
    padding = k // 2 if pad is None else pad
    return Conv(weight, bias, (stride, stride), (padding, padding), relu)


def affine(channels: int) -> Affine:
    gamma = RNG.uniform(0.5, 1.5, size=(1, channels)).astype(np.float32)
    return Affine(gamma, RNG.normal(0, 0.1, size=(1, channels)).astype(np.float32), True)


def stem() -> list[Layer]:
    # stride 4 and no padding, as the ResNet's: a 4-pixel shift is one row after it
    return [conv(3, 8, 3, stride=2, pad=0), Relu(), Pool(True, (2, 2), (2, 2), (0, 0))]


def head(channels: int) -> list[Layer]:
    """A stride-2 block with a pooled shortcut (the stem's run of same-size rows ends at its
    tag), then the global pool and the fc."""
    down: list[Layer] = [Tag(1), conv(channels, 16, 3, stride=2, pad=0), Relu(), conv(16, 16, 3), Tag(2)]
    down += [Skip(1), Pool(False, (2, 2), (2, 2), (0, 0)), AddPrev(2), Relu()]
    return [*down, Pool(False, (0, 0), (1, 1), (0, 0)), Fc(RNG.normal(size=(16, 4)).astype(np.float32), None)]


def views_by_hand(layers: list[Layer], chips: np.ndarray, size: int, shift: int) -> np.ndarray:
    """The network run on the six crops of each chip, cut and normalised here: (6n, outputs) in
    the graph's order, (k * 2 + mirror) * n + face for the shifts 0, -shift, +shift."""
    session = make_session(build_model(layers, 3, size, size, "crops"), 1)
    crops = []
    for dy in (0, -shift, shift):
        view = chips[:, shift + dy : shift + dy + size, shift : shift + size]
        crops += [view, view[:, :, ::-1]]
    x = (np.concatenate(crops).transpose(0, 3, 1, 2).astype(np.float32) - np.float32(MEAN).reshape(1, 3, 1, 1)) / 256
    return np.asarray(session.run(["y"], {"x": x.astype(np.float32)})[0])


def run_views(
    layers: list[Layer], chips: np.ndarray, size: int, shift: int, blocks: bool = True
) -> tuple[np.ndarray, int]:
    """The six-view graph's outputs, and how many Conv nodes it holds."""
    model = build_views_model(layers, MEAN, size, shift, "views", blocks)
    convs = sum(node.op_type == "Conv" for node in onnx.load_from_string(model).graph.node)
    return np.asarray(make_session(model, 1).run(["y"], {"x": chips})[0]), convs


def chips(n: int, side: int) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)


@pytest.mark.parametrize("n", [1, 3])
def test_rows_shared_between_views_give_the_views_run_one_by_one(n: int) -> None:
    # 3x3 and 5x5 convs, a fused relu, an affine and two residual adds, the first from 8 to 16
    # channels (dlib pads the narrower with zeros): 1 + 2 + 1 rows by each edge differ between
    # views, the 9 - 8 rows between them are computed once.
    same: list[Layer] = [Tag(1), conv(8, 16, 3), Relu(), conv(16, 16, 5, relu=True), AddPrev(1), Relu(), affine(16)]
    same += [Tag(1), conv(16, 16, 3), AddPrev(1), Relu()]
    layers = [*stem(), *same, *head(16)]
    assert _same_rows(layers[3:]) == len(same)
    x = chips(n, 48)  # 40 + 2 * 4: 11 rows after the stem, each view 9
    got, convs = run_views(layers, x, 40, 4)
    want = views_by_hand(layers, x, 40, 4)
    assert got.shape == want.shape == (6 * n, 4)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    # the stem, each shared conv on the whole height and on the top and bottom edge rows, the head
    assert convs == 1 + 3 * 3 + 2
    # sharing only the stem: the same outputs, each conv once on the six views
    stem_only, convs = run_views(layers, x, 40, 4, blocks=False)
    assert np.abs(stem_only - want).max() <= 1e-5 * np.abs(want).max() and convs == 1 + 3 + 2


def test_views_whose_edge_rows_would_meet_share_nothing_after_the_stem() -> None:
    # three 5x5 convs: 6 rows by each edge of a 9-row view, so each view runs them whole
    same: list[Layer] = [Tag(1), conv(8, 8, 5), Relu(), conv(8, 8, 5), AddPrev(1), Relu(), conv(8, 8, 5), Relu()]
    layers = [*stem(), *same, *head(8)]
    assert _same_rows(layers[3:]) == len(same)
    x = chips(2, 48)
    got, convs = run_views(layers, x, 40, 4)
    want = views_by_hand(layers, x, 40, 4)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    assert convs == 1 + 3 + 2


def test_a_shift_of_two_rows_leaves_the_middle_view_with_both_edges_its_own() -> None:
    same: list[Layer] = [Tag(1), conv(8, 8, 3), Relu(), conv(8, 8, 3), AddPrev(1), Relu()]
    layers = [*stem(), *same, *head(8)]
    x = chips(2, 56)  # 40 + 2 * 8: views at rows 0, 2 and 4 of 13
    got, _ = run_views(layers, x, 40, 8)
    want = views_by_hand(layers, x, 40, 8)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_only_layers_that_keep_rows_in_place_are_shared() -> None:
    c3 = conv(8, 8, 3)
    # a stride-2 conv, an unpadded conv, a pool and an affine per position each end the run
    assert _same_rows([c3, Relu(), conv(8, 8, 3, stride=2, pad=0), c3]) == 2
    assert _same_rows([c3, conv(8, 8, 3, pad=0), c3]) == 1
    assert _same_rows([c3, Pool(True, (2, 2), (2, 2), (0, 0))]) == 1
    per_position = Affine(np.ones((1, 8, 3, 3), np.float32), np.zeros((1, 8, 3, 3), np.float32), False)
    assert _same_rows([c3, per_position]) == 1
    # a tag at the end is set by the layers after the run, on the views
    assert _same_rows([Tag(1), c3, AddPrev(1), Relu(), Tag(1), conv(8, 8, 3, stride=2, pad=0), Skip(1)]) == 4
    # a tag set in the run and read after it: the views would lose the rows it shares
    assert _same_rows([Tag(2), c3, Relu(), conv(8, 8, 3, stride=2, pad=0), Skip(2)]) == 0
    assert _same_rows([]) == 0
