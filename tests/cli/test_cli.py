"""The CLI in-process (typer's CliRunner) against temporary databases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from conftest import FakeEmbedder, write_photo
from photocluster.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    for k in range(3):
        write_photo(root / f"red{k}.jpg", (200, 20, 40 + 4 * k))
    write_photo(root / "blue.jpg", (20, 20, 200))
    (root / "broken.jpg").write_text("not a photo")
    return root


def test_every_command_has_help_with_an_example() -> None:
    group = get_command(app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert {"scan", "clusters", "export", "status"} <= set(names)
    for name in names:
        code, out, _ = run(name, "--help")
        assert code == 0, name
        assert "Example: photocluster " + name in out, f"{name} --help has no example"


def test_each_example_of_the_help_is_a_line_of_its_own() -> None:
    """Two examples are never run into one line by the help's paragraph wrapping."""
    code, out, _ = run("scan", "--help")
    assert code == 0
    lines = [line.strip() for line in out.splitlines()]
    assert "Example: photocluster scan ~/Pictures --workers 2" in lines
    assert "Example: photocluster scan /nas/photos --dask tcp://nas:8786" in lines
    group = get_command(app)
    for name in sorted(group.commands):  # type: ignore[attr-defined]
        out = run(name, "--help")[1]
        said = [line.strip() for line in out.splitlines() if "Example:" in line]
        assert said and all(line.startswith("Example: photocluster ") for line in said), name
        assert all(line.count("Example:") == 1 for line in said), name


def test_scan_clusters_export_json(library: Path, tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    db = str(tmp_path / "cli.db")
    code, out, err = run("scan", str(library), "--db", db, "--workers", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["files"], doc["analysed"], doc["faces_found"], doc["error_count"]) == (5, 4, 4, 1)
    assert doc["errors"][0]["path"].endswith("broken.jpg")
    assert doc["dlib"].startswith("dlib ")

    code, out, err = run("clusters", "--db", db, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["persons"], doc["unknown"], doc["faces"]) == (1, 1, 4)
    assert [p["faces"] for p in doc["persons_list"]] == [3, 1]
    assert doc["persons_list"][1]["id"] is None

    dest = tmp_path / "People"
    code, out, err = run("export", str(dest), "--db", db, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["persons"], doc["created"], doc["unknown_faces"]) == (1, 4, 1)
    assert sorted(p.name for p in (dest / "person_0001").iterdir()) == ["red0.jpg", "red1.jpg", "red2.jpg"]
    result = runner.invoke(app, ["export", str(dest), "--db", db, "--json"])
    assert result.exit_code == 0, repr(result.exception)
    assert json.loads(result.stdout)["unchanged"] == 4


def test_scan_table_and_bad_file_report(library: Path, tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    code, out, err = run("scan", str(library), "--db", str(tmp_path / "t.db"), "--workers", "1")
    assert code == 0
    assert "Faces found" in out and "Bad files" in out
    assert "1 file could not be used:" in err
    assert "broken.jpg: not a readable image" in err


def test_default_database_follows_photocluster_home(
    library: Path, _state_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    code, _, err = run("scan", str(library), "--workers", "1")
    assert code == 0, err
    assert (_state_dir / "photocluster.db").is_file()
    code, out, _ = run("status", "--json")
    doc = json.loads(out)
    assert doc["database"] == str(_state_dir / "photocluster.db")
    assert (doc["photos"], doc["bad_files"], doc["faces"]) == (4, 1, 4)


def test_missing_path_is_one_line_exit_2(tmp_path: Path) -> None:
    code, out, err = run("scan", str(tmp_path / "nowhere"), "--db", str(tmp_path / "x.db"))
    assert code == 2
    assert err.strip() == f"Error: {tmp_path / 'nowhere'}: no such file or folder"
    assert "Traceback" not in err + out


def test_unusable_database_is_exit_1(tmp_path: Path, library: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run("scan", str(library), "--db", str(blocker / "db.sqlite"))
    assert code == 1
    assert err.startswith("Error: ") and "cannot create the database folder" in err
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    code, _, err = run("status", "--db", str(tmp_path / "junk.db"))
    assert code == 1 and "cannot open the database" in err


def test_bad_options_are_usage_errors(tmp_path: Path, library: Path) -> None:
    db = str(tmp_path / "o.db")
    assert run("scan", str(library), "--db", db, "--detector", "magic")[0] == 2
    assert run("scan", str(library), "--db", db, "--upsample", "lots")[0] == 2
    code, _, err = run("export", str(tmp_path / "o"), "--db", db, "--mode", "teleport")
    assert code == 2 and "'teleport' is not one of 'symlink', 'hardlink', 'copy'" in err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["scan", ".", "--engine", "cuda"], "'cuda' is not one of 'auto', 'onnx', 'dlib', 'torch'"),
        (["scan", ".", "--detector", "CNN"], "'CNN' is not one of 'cnn', 'hog'"),
        (["eval", "pairs", "--root", ".", "--pairs", "p", "--engine", "x"], "'x' is not one of 'auto', 'onnx'"),
        (["doctor", "--engine", "gpu"], "'gpu' is not one of 'auto', 'onnx', 'dlib', 'torch'"),
        (["export", "out", "--xmp", "sidecar"], "'sidecar' is not one of 'dest', 'originals'"),
    ],
)
def test_a_bad_choice_is_one_error_line_exit_2(tmp_path: Path, args: list[str], said: str) -> None:
    code, out, err = run(*args, "--db", str(tmp_path / "c.db")) if args[0] != "doctor" else run(*args)
    assert code == 2 and out == ""
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and said in errors[0] and "Traceback" not in err
    assert not (tmp_path / "c.db").exists()  # refused before anything ran


def test_help_lists_every_choice_from_its_enum() -> None:
    from photocluster.core.choices import Detector, Engine, ExportMode, XmpTarget

    listed = {
        ("scan", "--engine"): Engine,
        ("scan", "--detector"): Detector,
        ("eval pairs", "--engine"): Engine,
        ("calibrate", "--detector"): Detector,
        ("doctor", "--engine"): Engine,
        ("export", "--mode"): ExportMode,
        ("export", "--xmp"): XmpTarget,
    }
    for (command, option), kind in listed.items():
        code, out, _ = run(*command.split(), "--help")
        assert code == 0
        assert f"{option} <{'|'.join(kind)}>" in out, (command, option)
    assert "torch" in run("scan", "--help")[1]


def test_verbose_logs_on_stderr_and_keeps_json_stdout_clean(
    library: Path, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    db = str(tmp_path / "v.db")
    code, out, err = run("-v", "scan", str(library), "--db", db, "--workers", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["files"] == 5  # stdout is the JSON document and nothing else
    assert "photocluster.app.scan: scanning with cnn/max1600/up1/v2" in err
    assert "skipped " in err and "broken.jpg" in err  # -v: the file that could not be used
    assert "DEBUG" not in err
    code, out, err = run("-vv", "clusters", "--db", db, "--json")
    assert code == 0 and json.loads(out)["persons"] == 1
    assert "photocluster.app.recluster: clustering" in err
    code, out, err = run("-vv", "scan", str(library), "--db", db, "--workers", "1", "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 4
    assert "DEBUG" in err and "red0.jpg: unchanged, 0 faces" in err
    code, out, err = run("scan", str(library), "--db", db, "--workers", "1", "--json")
    assert code == 0 and "photocluster.app" not in err  # without -v: no log lines


def test_module_entry_point_and_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "photocluster", "--version"], capture_output=True, text=True, check=True
    )
    assert proc.stdout.startswith("photocluster 0.1.0, dlib ")


def test_doctor_reports_build_engine_and_model_checksums() -> None:
    code, out, err = run("doctor", "--no-measure", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["engine"] in ("onnx", "dlib")
    assert doc["dlib"].startswith("dlib ")
    assert set(doc["models"]) == {
        "mmod_human_face_detector",
        "shape_predictor_5_face_landmarks",
        "dlib_face_recognition_resnet_model_v1",
    }
    for info in doc["models"].values():
        assert len(info["sha256"]) == 64 and info["bytes"] > 100_000
    code, out, err = run("doctor", "--no-measure", "--engine", "dlib", "--json")
    assert json.loads(out)["engine"] == "dlib"
