"""Test-session setup: the parse cache (`poseir.syntax.cache`) goes to a private directory of this session,
not the user's, so the tests neither read stale entries nor leave thousands of new ones behind."""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE = tempfile.mkdtemp(prefix="poseir-test-cache-")
os.environ["POSEIR_CACHE_DIR"] = _CACHE  # before poseir reads it; subprocesses inherit it


def pytest_sessionfinish(session, exitstatus):
    """Remove the session's cache directory."""
    shutil.rmtree(_CACHE, ignore_errors=True)
