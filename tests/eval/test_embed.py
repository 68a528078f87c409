"""One face per labelled image (photocluster.eval.embed): the face nearest the centre, the fallback box."""

from __future__ import annotations

from conftest import fake_embedding, make_face
from photocluster.core.types import Box
from photocluster.eval.embed import fallback_box, nearest_centre


def test_nearest_centre_and_fallback_box() -> None:
    left = make_face(fake_embedding(1), (0, 0, 40, 40))
    centre = make_face(fake_embedding(2), (70, 40, 130, 100))
    assert nearest_centre([left, centre], 200, 140) is centre
    assert nearest_centre([], 200, 140) is None
    # 0.6 of the short side, centred.
    assert fallback_box(200, 100) == Box(70, 20, 130, 80)
