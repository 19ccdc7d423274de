"""`poseir fix --write` keeps the user's file intact but for the fix: links, modes, line ends, BOM, read-only."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from poseir.cli import main

FIXES = Path(__file__).resolve().parent / "fixes"
BEFORE = (FIXES / "root_relative_missing_axis.before.pose").read_text()
AFTER = (FIXES / "root_relative_missing_axis.after.pose").read_text()


@pytest.fixture
def project(tmp_path) -> Path:
    """A project directory holding the file to fix."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "model.pose").write_text(BEFORE)
    return tmp_path


def fix(path: Path, *options) -> int:
    """`poseir fix PATH --write`, in this process."""
    return main(["fix", str(path), "--write", *options])


def test_the_fix_is_applied_and_a_second_run_changes_nothing(project):
    assert fix(project / "model.pose") == 0
    assert (project / "model.pose").read_text() == AFTER
    assert fix(project / "model.pose") == 0
    assert (project / "model.pose").read_text() == AFTER


def test_no_temporary_file_is_left_behind(project):
    fix(project / "model.pose")
    assert sorted(path.name for path in project.iterdir()) == ["model.pose", "pyproject.toml"]


def test_a_link_stays_a_link_and_its_target_is_fixed(project):
    target = project / "real" / "model.pose"
    target.parent.mkdir()
    (project / "model.pose").rename(target)
    link = project / "model.pose"
    link.symlink_to(Path("real") / "model.pose")
    assert fix(link) == 0
    assert link.is_symlink() and os.readlink(link) == os.path.join("real", "model.pose")
    assert target.read_text() == AFTER


def test_a_link_planted_at_the_old_fixed_temporary_name_is_not_followed(project):
    victim = project / "victim.txt"
    victim.write_text("keep me\n")
    (project / "model.pose.poseir-fix").symlink_to(victim)
    assert fix(project / "model.pose") == 0
    assert victim.read_text() == "keep me\n"
    assert (project / "model.pose").read_text() == AFTER


def test_a_link_planted_at_the_next_random_name_is_not_followed(project, monkeypatch):
    """The temporary file is created exclusively: a link at the very name chosen makes it pick another."""
    victim = project / "victim.txt"
    victim.write_text("keep me\n")
    names = iter(["planted", "fresh"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)
    (project / ".model.pose.planted.poseir-fix").symlink_to(victim)
    assert fix(project / "model.pose") == 0
    assert victim.read_text() == "keep me\n"
    assert (project / ".model.pose.planted.poseir-fix").is_symlink()
    assert (project / "model.pose").read_text() == AFTER


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_the_mode_is_kept(project, mode):
    path = project / "model.pose"
    path.chmod(mode)
    assert fix(path) == 0
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_text() == AFTER


def test_crlf_line_ends_are_kept(project):
    path = project / "model.pose"
    path.write_bytes(BEFORE.replace("\n", "\r\n").encode())
    assert fix(path) == 0
    assert path.read_bytes() == AFTER.replace("\n", "\r\n").encode()


def test_a_byte_order_mark_is_kept(project):
    path = project / "model.pose"
    path.write_bytes(b"\xef\xbb\xbf" + BEFORE.encode())
    assert fix(path) == 0
    assert path.read_bytes() == b"\xef\xbb\xbf" + AFTER.encode()


def test_a_read_only_file_is_refused_and_unchanged(project, capsys):
    path = project / "model.pose"
    path.chmod(0o444)
    assert fix(path) == 1
    assert path.read_text() == BEFORE
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert "read-only" in capsys.readouterr().err


def test_without_write_the_file_is_untouched_and_the_diff_shown(project, capsys):
    path = project / "model.pose"
    before = path.stat()
    assert main(["fix", str(path)]) == 0
    assert path.read_text() == BEFORE and path.stat().st_mtime_ns == before.st_mtime_ns
    assert "+        return pose - root[:, none]" in capsys.readouterr().out
