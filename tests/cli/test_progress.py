"""The progress display: the library's events drawn as one bar per phase."""

from __future__ import annotations

from pathlib import Path

import pytest

from photocluster.app.scan import LostFace, ScanEvent
from photocluster.cli.progress import ProgressBars, ScanProgress
from photocluster.core.progress import Progress


def test_a_bar_per_phase_and_an_unsized_phase_goes() -> None:
    bars = ProgressBars()
    with bars as progress:
        progress(Progress("Listing persons and faces"))
        progress(Progress("Persons", 1, 2))
        progress(Progress("Persons", 2, 2))
        progress(Progress("Pages", 1, 1))
        tasks = [(t.description, t.completed, t.total) for t in bars.bars.tasks]
    assert tasks == [("Persons", 2, 2), ("Pages", 1, 1)]


def test_scan_counts_faces_and_prints_lost_ones(capsys: pytest.CaptureFixture[str]) -> None:
    shown = ScanProgress()
    lost = LostFace("a.jpg", 7, 3, "Ann", False)
    with shown as progress:
        progress(Progress("Scanning", 0, 2))
        progress(Progress("Scanning", 1, 2, ScanEvent("photo", Path("a.jpg"), faces=2, lost=(lost,))))
        progress(Progress("Scanning", 2, 2, ScanEvent("photo", Path("b.jpg"), faces=1)))
        progress(Progress("Reading face tags", 1, 2, Path("a.jpg")))
    assert shown.faces == 3 and shown.note() == "photos, 3 faces"
    assert [t.description for t in shown.bars.tasks] == ["Scanning", "Reading face tags"]
    printed = capsys.readouterr()
    assert "a.jpg: face 7 (Ann) was not found again" in printed.err and printed.out == ""
