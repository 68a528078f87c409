"""Where state lives, and detection settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from photocluster.core.config import (
    DB_NAME,
    DEFAULT_MAX_SIZE,
    DetectionSettings,
    default_db_path,
    resolve_db_path,
    state_dir,
)
from photocluster.core.errors import UsageError


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("PHOTOCLUSTER_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return home


def test_photocluster_home_wins_over_xdg(fake_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_HOME", str(tmp_path / "pc"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "pc"
    assert default_db_path() == tmp_path / "pc" / DB_NAME


def test_photocluster_home_expands_tilde(fake_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_HOME", "~/state")
    assert state_dir() == fake_home / "state"


def test_xdg_data_home_when_no_photocluster_home(
    fake_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "photocluster"
    assert default_db_path() == tmp_path / "xdg" / "photocluster" / "photocluster.db"


def test_empty_variables_are_ignored(fake_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_HOME", "")
    monkeypatch.setenv("XDG_DATA_HOME", "")
    assert state_dir() == fake_home / ".local" / "share" / "photocluster"


def test_falls_back_to_local_share(fake_home: Path) -> None:
    assert state_dir() == fake_home / ".local" / "share" / "photocluster"
    assert default_db_path() == fake_home / ".local" / "share" / "photocluster" / "photocluster.db"


def test_autouse_fixture_points_state_at_a_temp_dir(_state_dir: Path) -> None:
    assert state_dir() == _state_dir
    assert default_db_path() == _state_dir / "photocluster.db"


def test_resolve_db_path_explicit_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_HOME", str(tmp_path / "pc"))
    assert resolve_db_path(tmp_path / "x.db") == tmp_path / "x.db"
    assert resolve_db_path(str(tmp_path / "y.db")) == tmp_path / "y.db"


def test_resolve_db_path_expands_tilde(fake_home: Path) -> None:
    assert resolve_db_path("~/lib.db") == fake_home / "lib.db"


@pytest.mark.parametrize("db", [None, ""])
def test_resolve_db_path_defaults(db: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_HOME", str(tmp_path / "pc"))
    assert resolve_db_path(db) == tmp_path / "pc" / "photocluster.db"


def test_default_settings() -> None:
    s = DetectionSettings()
    assert (s.detector, s.max_size, s.upsample) == ("cnn", DEFAULT_MAX_SIZE, 1)
    assert s.key == "cnn/max1600/up1/v2"


def test_key_reflects_every_setting() -> None:
    assert DetectionSettings("hog", 800, 2).key == "hog/max800/up2/v2"
    assert DetectionSettings("cnn", 64, 0).key == "cnn/max64/up0/v2"
    keys = {
        DetectionSettings().key,
        DetectionSettings(detector="hog").key,
        DetectionSettings(max_size=1200).key,
        DetectionSettings(upsample=None).key,
        DetectionSettings(upsample=0).key,
    }
    assert len(keys) == 5


def test_settings_accept_the_bounds() -> None:
    assert DetectionSettings(max_size=64).max_size == 64
    assert DetectionSettings(max_size=20000).max_size == 20000
    assert DetectionSettings(upsample=3).upsample == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"detector": "mtcnn"}, "--detector must be one of cnn, hog, got 'mtcnn'"),
        ({"max_size": 63}, "--max-size must be between 64 and 20000 pixels, got 63"),
        ({"max_size": 20001}, "--max-size must be between 64 and 20000 pixels, got 20001"),
        ({"upsample": -1}, "--upsample must be 'auto' or 0 to 3, got -1"),
        ({"upsample": 4}, "--upsample must be 'auto' or 0 to 3, got 4"),
    ],
)
def test_invalid_settings_raise_usage_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as info:
        DetectionSettings(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "value"),
    [("auto", None), ("AUTO", None), (" Auto ", None), ("0", 0), ("2", 2), (" 3 ", 3)],
)
def test_parse_upsample(text: str, value: int | None) -> None:
    assert DetectionSettings.parse_upsample(text) == value


@pytest.mark.parametrize("text", ["two", "", "1.5"])
def test_parse_upsample_rejects_non_numbers(text: str) -> None:
    with pytest.raises(UsageError) as info:
        DetectionSettings.parse_upsample(text)
    assert str(info.value) == f"--upsample must be 'auto' or a number, got {text!r}"
