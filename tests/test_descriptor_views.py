"""benchmarks/descriptor_views.py: the pairs it reads, named as the library names its photos
(benchmarks/views_int8.py and lfw_dev.py read them and its centred faces too)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from descriptor_views import read_pairs


def test_pairs_are_named_as_the_library_names_its_photos(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "relative_path,image,identity\nAl_Pacino/Al_Pacino_0002.jpg,00017.jpg,Al_Pacino\n"
        "Al_Pacino/Al_Pacino_0003.jpg,00018.jpg,Al_Pacino\nAnn/Ann_0001.jpg,00401.jpg,Ann\n"
    )
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\t1\nAl_Pacino\t2\t3\nAl_Pacino\t2\tAnn\t1\n")
    holdout = read_pairs(pairs, labels, {"00017.jpg", "00018.jpg", "00401.jpg"})
    assert holdout == [("00017.jpg", "00018.jpg", True), ("00017.jpg", "00401.jpg", False)]
    layout = read_pairs(pairs, labels, {"Al_Pacino_0002.jpg", "Al_Pacino_0003.jpg", "Ann_0001.jpg"})
    assert layout == [("Al_Pacino_0002.jpg", "Al_Pacino_0003.jpg", True), ("Al_Pacino_0002.jpg", "Ann_0001.jpg", False)]
    # without a library's names: the holdout's, and a photo missing from the labels is an error
    assert read_pairs(pairs, labels) == holdout
    labels.write_text("relative_path,image,identity\nAl_Pacino/Al_Pacino_0002.jpg,00017.jpg,Al_Pacino\n")
    with pytest.raises(KeyError):
        read_pairs(pairs, labels)
