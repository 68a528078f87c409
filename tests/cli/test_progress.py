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
        assert [t.description for t in shown.bars.tasks] == ["Scanning", "Reading face tags"]
    assert shown.faces == 3 and shown.note() == "photos, 3 faces"
    # The scan's own total is the last line left on screen, not a sub-phase.
    assert [t.description for t in shown.bars.tasks] == ["Scanning"]
    printed = capsys.readouterr()
    assert "a.jpg: face 7 (Ann) was not found again" in printed.err and printed.out == ""


def test_the_scan_eta_counts_analysed_photos_only() -> None:
    """90 unchanged files settled in the first second, then 1 photo analysed in 2 s: at
    3 s, 10 files are left, each assumed to take 2 s, not the 3 s / 91 files of all files."""
    clock = iter([0.0, 1.0, 3.0])
    shown = ScanProgress()
    shown.clock = lambda: next(clock)
    with shown as progress:
        progress(Progress("Scanning", 0, 101))
        unchanged = ScanEvent("photo", Path("old.jpg"), outcome="unchanged")
        for _ in range(89):
            shown.seen(unchanged)
        progress(Progress("Scanning", 90, 101, unchanged))
        assert shown.bars.tasks[0].fields["eta"] is None  # nothing analysed yet: no promise
        progress(Progress("Scanning", 91, 101, ScanEvent("photo", Path("new.jpg"), faces=1, outcome="analysed")))
        task = shown.bars.tasks[0]
        assert task.fields["rate"] == pytest.approx(1 / 3)
        assert task.fields["eta"] == pytest.approx(30.0)
