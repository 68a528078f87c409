"""The blocked distance helper every distance computation goes through."""

from __future__ import annotations

import numpy as np
import pytest

from photocluster.core.vectors import blocked_knn, pair_distances, sq_distance_blocks, squared_norms, take_rows


def brute_sq(q: np.ndarray, b: np.ndarray) -> np.ndarray:
    q64, b64 = q.astype(np.float64), b.astype(np.float64)
    out: np.ndarray = ((q64[:, None, :] - b64[None, :, :]) ** 2).sum(axis=2)
    return out


def data(n: int, m: int, dim: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype(np.float32), rng.normal(size=(m, dim)).astype(np.float32)


def gather(blocks: object, rows: int) -> list[tuple[int, np.ndarray]]:
    out = list(blocks)  # type: ignore[call-overload]
    assert sum(len(d2) for _, d2 in out) == rows
    return out


def test_squared_norms() -> None:
    x = np.array([[3, 4], [0, 0], [1, 2]], dtype=np.float32)
    assert squared_norms(x).tolist() == [25.0, 0.0, 5.0]


@pytest.mark.parametrize("block", [1, 4, 9, 10, 1000])
def test_blocks_cover_every_query_in_order(block: int) -> None:
    q, b = data(10, 13)
    blocks = gather(sq_distance_blocks(q, b, block), len(q))
    assert [start for start, _ in blocks] == list(range(0, len(q), block))
    np.testing.assert_allclose(np.vstack([d2 for _, d2 in blocks]), brute_sq(q, b), rtol=1e-5, atol=1e-4)
    assert all(d2.dtype == np.float32 for _, d2 in blocks)


def test_the_rounding_is_that_of_norms_plus_norms_minus_twice_the_product() -> None:
    # Thresholds compare against these values: a pair at the threshold must stay on its
    # side whatever block it falls in.
    # (A matrix product of a few rows may round differently from one of many: compare
    # block by block.)
    q, b = data(37, 29, dim=128, seed=3)
    q_sq, b_sq = squared_norms(q), squared_norms(b)
    for block in (1, 8, 37):
        for start, d2 in sq_distance_blocks(q, b, block):
            rows = slice(start, start + block)
            expected = q_sq[rows, None] + b_sq[None, :] - 2.0 * (q[rows] @ b.T)
            assert d2.tobytes() == expected.tobytes()


def test_ranking_leaves_the_query_norm_out() -> None:
    q, b = data(9, 11)
    full = np.vstack([d2 for _, d2 in sq_distance_blocks(q, b, 4)])
    ranking = np.vstack([d2 for _, d2 in sq_distance_blocks(q, b, 4, ranking=True)])
    np.testing.assert_allclose(ranking + squared_norms(q)[:, None], full, rtol=1e-5, atol=1e-4)
    assert ranking.argmin(axis=1).tolist() == full.argmin(axis=1).tolist()


def test_given_norms_are_used() -> None:
    q, b = data(5, 7)
    zero_q, zero_b = np.zeros(5, dtype=np.float32), np.zeros(7, dtype=np.float32)
    (_, d2), *_ = sq_distance_blocks(q, b, 5, query_sq=zero_q, base_sq=zero_b)
    np.testing.assert_allclose(d2, -2.0 * (q @ b.T), rtol=1e-6)


@pytest.mark.parametrize("block", [1, 3, 7, 8])
def test_upper_blocks_start_at_their_first_row(block: int) -> None:
    x, _ = data(8, 0)
    full = brute_sq(x, x)
    for start, d2 in gather(sq_distance_blocks(x, x, block, upper=True), len(x)):
        assert d2.shape == (min(block, len(x) - start), len(x) - start)
        np.testing.assert_allclose(d2, full[start : start + block, start:], rtol=1e-5, atol=1e-4)


def test_blocks_are_the_callers_to_change() -> None:
    q, b = data(6, 4)
    first = [d2.copy() for _, d2 in sq_distance_blocks(q, b, 2)]
    for _, d2 in sq_distance_blocks(q, b, 2):
        d2[:] = np.inf
    again = [d2 for _, d2 in sq_distance_blocks(q, b, 2)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))


def test_empty_inputs_and_a_bad_block() -> None:
    q, b = data(0, 5)
    assert list(sq_distance_blocks(q, b, 4)) == []
    q, b = data(3, 0)
    ((_, d2),) = sq_distance_blocks(q, b, 4)
    assert d2.shape == (3, 0)
    with pytest.raises(ValueError, match="block must be at least 1, got 0"):
        next(sq_distance_blocks(q, b, 0))


@pytest.mark.parametrize(("k", "block"), [(1, 1), (4, 3), (11, 2), (20, 100)])
def test_blocked_knn_matches_brute_force(k: int, block: int) -> None:
    q, b = data(7, 11, seed=5)
    idx, dist = blocked_knn(q, b, k, block)
    full = np.sqrt(brute_sq(q, b))
    kk = min(k, len(b))
    assert idx.shape == dist.shape == (len(q), kk)
    assert idx.dtype == np.int64 and dist.dtype == np.float32
    assert idx.tolist() == np.argsort(full, axis=1, kind="stable")[:, :kk].tolist()
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :kk], atol=1e-5)


def test_blocked_knn_of_nothing() -> None:
    q, b = data(4, 0)
    idx, dist = blocked_knn(q, b, 3)
    assert idx.shape == dist.shape == (4, 0)
    q, b = data(0, 4)
    idx, dist = blocked_knn(q, b, 3)
    assert idx.shape == dist.shape == (0, 3)


def test_identical_rows_are_at_distance_zero_not_nan() -> None:
    x = np.tile(np.array([[0.1, 0.7, -0.3]], dtype=np.float32), (5, 1))
    _, dist = blocked_knn(x, x, 5)
    assert np.isfinite(dist).all() and float(dist.max()) < 1e-3


@pytest.mark.parametrize("chunk", [1, 3, 1 << 16])
def test_pair_distances_in_chunks_equal_the_distances_at_once(chunk: int) -> None:
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(50, 128)).astype(np.float32)
    a, b = rng.integers(0, 50, 40), rng.integers(0, 50, 40)
    got = pair_distances(emb, a, b, chunk=chunk)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.linalg.norm(emb[a] - emb[b], axis=1))
    assert pair_distances(emb, a[:0], b[:0]).shape == (0,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_take_rows_is_indexing(dtype: type) -> None:
    x = (np.arange(60).reshape(12, 5) * 3 - 7).astype(dtype)
    idx = np.array([11, 0, 3, 3, 7], dtype=np.int32)
    out = take_rows(x, idx)
    assert out.dtype == x.dtype and out.flags.c_contiguous
    assert np.array_equal(out, x[idx])
    assert take_rows(x, np.zeros(0, np.int64)).shape == (0, 5)
    pairs = np.array([[1, 2], [4, 4], [0, 11]])
    assert np.array_equal(take_rows(x, pairs), x[pairs])
    # a copy, never a view of the rows
    out[0] = 0
    assert x[11, 0] != 0
