"""Packaging metadata: an SPDX license expression, built by a setuptools that understands it."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_license_is_an_spdx_expression_with_a_setuptools_that_supports_it():
    project = tomllib.loads(PYPROJECT.read_text())
    assert project["project"]["license"] == "MIT"
    (requirement,) = [item for item in project["build-system"]["requires"] if item.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", requirement)
    assert minimum and int(minimum.group(1)) >= 77, "PEP 639 license expressions need setuptools 77"


def test_installed_metadata_carries_the_license_expression():
    installed = metadata("poseir")
    assert installed["License-Expression"] == "MIT"
    assert not installed.get("License"), "the legacy free-text field is gone"
