"""The library API of ``import photocluster``: every public name, each module loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import photocluster

_FRESH = """
import sys
import photocluster
print("photocluster.app.export" in sys.modules, "numpy" in sys.modules)
from photocluster import export
print("photocluster.app.export" in sys.modules, export.__module__)
"""


def test_importing_loads_no_use_case_until_one_is_asked_for() -> None:
    out = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["False False", "True photocluster.app.export"]


def test_every_public_name_is_there() -> None:
    from photocluster.app.recluster import recluster
    from photocluster.store import Store

    for name in photocluster.__all__:
        assert getattr(photocluster, name) is not None, name
        assert name in dir(photocluster)
    assert photocluster.recluster is recluster and photocluster.Store is Store
    assert isinstance(photocluster.__version__, str)


def test_a_name_it_does_not_have_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = photocluster.nothing  # type: ignore[attr-defined]
