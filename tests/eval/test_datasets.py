"""Reading labelled image sets (photocluster.eval.datasets): LFW pairs files, person folders, label CSVs."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_photo
from photocluster.core.errors import UsageError
from photocluster.eval.datasets import read_labels, read_pairs


def test_read_pairs_with_folds_from_the_header(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    # LFW's View 2 layout at small scale: 2 folds of 1 same + 1 different pair, tab separated.
    pairs.write_text("2\t1\nAbel_Pacheco\t1\t4\nAbel_Pacheco\t1\tZico\t3\n\nAnn\t2\t12\nBob\t1\tAnn\t1\n")
    parsed = read_pairs(pairs, tmp_path / "lfw")
    assert parsed.folds == (0, 0, 1, 1)
    first, second = parsed.pairs[0], parsed.pairs[1]
    assert first.same and not second.same
    assert first.a == tmp_path / "lfw" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    assert first.b == tmp_path / "lfw" / "Abel_Pacheco" / "Abel_Pacheco_0004.jpg"
    assert second.b == tmp_path / "lfw" / "Zico" / "Zico_0003.jpg"
    assert parsed.pairs[2].b.name == "Ann_0012.jpg"
    assert [p.line for p in parsed.pairs] == [2, 3, 5, 6]


def test_read_pairs_with_a_count_header(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    # pairsDevTrain.txt style: N, then N same and N different pairs; or N pairs in all.
    pairs.write_text("1\nAnn 1 2\nAnn 1 Bob 1\n")
    assert read_pairs(pairs, tmp_path).folds is None
    pairs.write_text("2\nAnn 1 2\nAnn 1 Bob 1\n")
    assert len(read_pairs(pairs, tmp_path).pairs) == 2
    pairs.write_text("1 1\nAnn 1 2\nAnn 1 Bob 1\n")  # one fold: folds are dealt later
    assert read_pairs(pairs, tmp_path).folds is None


def test_read_labels_from_folders(tmp_path: Path) -> None:
    write_photo(tmp_path / "ann" / "a.jpg", (1, 2, 3))
    write_photo(tmp_path / "ann" / "deeper" / "b.png", (1, 2, 3))
    write_photo(tmp_path / "bob" / "c.jpg", (1, 2, 3))
    (tmp_path / "bob" / "notes.txt").write_text("not a photo")
    labelled = read_labels(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in labelled.paths] == [
        "ann/a.jpg",
        "ann/deeper/b.png",
        "bob/c.jpg",
    ]
    assert labelled.identities == ("ann", "ann", "bob")
    write_photo(tmp_path / "loose.jpg", (1, 2, 3))
    with pytest.raises(UsageError, match=r"loose\.jpg: not in a person folder"):
        read_labels(tmp_path)


def test_read_labels_from_a_csv(tmp_path: Path) -> None:
    write_photo(tmp_path / "x" / "a.jpg", (1, 2, 3))
    write_photo(tmp_path / "b.jpg", (1, 2, 3))
    labels = tmp_path / "labels.csv"
    labels.write_text("x/a.jpg,ann\nb.jpg, bob \nc.jpg,<no_face>\nd.jpg,ann;bob\n")  # no header is fine
    labelled = read_labels(tmp_path, labels)
    assert labelled.identities == ("ann", "bob") and labelled.skipped == 2
    labels.write_text("relative_path,identity\nx/a.jpg,ann\nx/a.jpg,bob\n")
    with pytest.raises(UsageError, match=r"labels\.csv:3: x/a\.jpg is listed twice \(first on line 2\)"):
        read_labels(tmp_path, labels)
    labels.write_text("relative_path,identity\nx/a.jpg,ann\nmissing.jpg,bob\ngone.jpg,bob\n")
    with pytest.raises(UsageError, match=r"missing\.jpg: no such image \(named on line 3 of .*\) \(and 1 more\)"):
        read_labels(tmp_path, labels)


def test_a_pairs_or_labels_file_that_is_a_fifo_or_a_device_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    from conftest import without_hanging

    os.mkfifo(tmp_path / "pairs.txt")
    (tmp_path / "labels.csv").symlink_to("/dev/zero")
    with pytest.raises(UsageError) as caught:
        without_hanging(lambda: read_pairs(tmp_path / "pairs.txt", tmp_path), fifos=[tmp_path / "pairs.txt"])
    assert str(caught.value) == f"{tmp_path}/pairs.txt: cannot read the pairs file (not a regular file (a FIFO))"
    with pytest.raises(UsageError) as caught:
        without_hanging(lambda: read_labels(tmp_path, tmp_path / "labels.csv"))
    assert str(caught.value) == (
        f"{tmp_path}/labels.csv: cannot read the labels file (not a regular file (a character device))"
    )


def test_read_labels_with_group_columns(tmp_path: Path) -> None:
    """A third column (age_group, as in the age-gap set's labels.csv) is a group, named by
    the header (``group`` without one); rows must have the first row's columns."""
    write_photo(tmp_path / "x" / "a.jpg", (1, 2, 3))
    write_photo(tmp_path / "b.jpg", (1, 2, 3))
    labels = tmp_path / "labels.csv"
    labels.write_text("relative_path,identity,age_group\nx/a.jpg,ann,young\nb.jpg,bob,adult\nc.jpg,<no_face>,\n")
    labelled = read_labels(tmp_path, labels)
    assert labelled.identities == ("ann", "bob") and labelled.groups == {"age_group": ("young", "adult")}
    labels.write_text("x/a.jpg,ann,young,f\nb.jpg,bob,adult,m\n")
    assert read_labels(tmp_path, labels).groups == {"group": ("young", "adult"), "group2": ("f", "m")}
    labels.write_text("relative_path,identity\nx/a.jpg,ann\nb.jpg,bob\n")
    assert read_labels(tmp_path, labels).groups == {}
    labels.write_text("relative_path,identity,age_group\nx/a.jpg,ann,young\nb.jpg,bob\n")
    with pytest.raises(UsageError, match=r"labels\.csv:3: expected 'relative_path,identity,age_group' like the first"):
        read_labels(tmp_path, labels)
    labels.write_text("relative_path,identity,\nx/a.jpg,ann,young\n")
    with pytest.raises(UsageError, match=r"labels\.csv:1: a column of the header has no name"):
        read_labels(tmp_path, labels)
