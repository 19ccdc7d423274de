"""The on-disk cache of parsed trees and lark's tables (`poseir.syntax.cache`, `poseir.syntax.trees`)."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest

from poseir.syntax import cache, chunks, parser, trees
from poseir.syntax.source import SourceFile

TEXT = "dim B\nmodule M() {\n    forward(x: f32[B, 3]) {\n        return x\n    }\n}\n"


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A fresh cache directory, with the in-process caches emptied around the test."""
    monkeypatch.setenv("POSEIR_CACHE_DIR", str(tmp_path / "cache"))
    cache.directory.cache_clear()
    trees._remembered.cache_clear()
    yield tmp_path / "cache"
    cache.directory.cache_clear()
    trees._remembered.cache_clear()


def test_a_parsed_file_is_loaded_from_disk_in_a_later_process(private_cache, monkeypatch):
    first, _ = trees.parse(SourceFile("m.pose", TEXT))
    assert any(name.endswith(".tree") for name in os.listdir(private_cache))
    trees._remembered.cache_clear()  # a new process: only the disk remembers

    def refuse(*_):
        raise AssertionError("parsed again")

    monkeypatch.setattr(parser, "parse_text", refuse)
    again, found = trees.parse(SourceFile("m.pose", TEXT))
    assert again == first and again is not first and found == []


def test_an_edited_text_is_parsed_again(private_cache):
    original, _ = trees.parse(SourceFile("m.pose", TEXT))
    trees._remembered.cache_clear()
    edited, _ = trees.parse(SourceFile("m.pose", TEXT.replace("3]", "4]")))
    assert edited != original and edited == parser.parse_text(SourceFile("m.pose", TEXT.replace("3]", "4]")))[0]


def test_a_syntax_error_is_reported_and_not_stored(private_cache):
    tree, found = trees.parse(SourceFile("bad.pose", "module M( {\n"))
    assert tree is None and [diagnostic.code for diagnostic in found] == ["E001"]
    assert not any(name.endswith(".tree") for name in os.listdir(private_cache))


def test_a_damaged_entry_is_a_miss(private_cache):
    trees.parse(SourceFile("m.pose", TEXT))
    for name in os.listdir(private_cache):
        (private_cache / name).write_bytes(b"not a pickle")
    trees._remembered.cache_clear()
    tree, found = trees.parse(SourceFile("m.pose", TEXT))
    assert tree is not None and found == []


def test_a_directory_others_can_write_is_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("POSEIR_CACHE_DIR", str(shared))
    cache.directory.cache_clear()
    try:
        assert cache.directory() is None
        cache.store("x.tree", 1)
        assert cache.load("x.tree") is None and os.listdir(shared) == []
    finally:
        cache.directory.cache_clear()


def test_an_empty_setting_turns_the_cache_off(monkeypatch):
    monkeypatch.setenv("POSEIR_CACHE_DIR", "")
    cache.directory.cache_clear()
    try:
        assert cache.directory() is None and cache.path_of("x") is None
    finally:
        cache.directory.cache_clear()


def test_the_cache_directory_is_private(private_cache):
    cache.directory()
    mode = stat.S_IMODE(os.stat(private_cache).st_mode)
    assert mode & 0o077 == 0


# --------------------------------------------------------------------------- editor buffers by piece

ROOT = Path(__file__).resolve().parent.parent
POSE_FILES = sorted(str(path) for folder in ("examples", "tests") for path in (ROOT / folder).rglob("*.pose"))


def _by_pieces(path: str, text: str):
    """A buffer parsed piece by piece, and parsed whole."""
    source = SourceFile(path, text)
    return chunks.parse_by_pieces(source, 100, parser.parse_text), parser.parse_text(source, 100)


def test_every_file_parsed_piece_by_piece_equals_its_whole_parse():
    """Trees (every span included) and diagnostics of each `.pose` file of the repository, both ways."""
    for path in POSE_FILES:
        (tree, found), (whole, expected) = _by_pieces(path, Path(path).read_text())
        assert tree == whole, path
        assert [(item.code, item.message, item.span) for item in found] == \
            [(item.code, item.message, item.span) for item in expected], path


def test_edited_buffers_parsed_piece_by_piece_equal_their_whole_parse():
    """Seeded edits anywhere in the examples (a space, a line break, a letter, a comment line, a stray bracket),
    including those that break the syntax, give the whole parse's tree and diagnostics."""
    rng = random.Random(5)  # (1300 such edits of every file were checked once; these stay in the suite)
    for path in sorted(str(path) for path in (ROOT / "examples").glob("*.pose")):
        text = Path(path).read_text()
        for _ in range(6):
            at = rng.randrange(len(text) + 1)
            edited = text[:at] + rng.choice([" ", "\n", "x", "# c\n", "}", "(", "1", '"']) + text[at:]
            (tree, found), (whole, expected) = _by_pieces(path, edited)
            assert tree == whole, (path, at)
            assert [(item.code, item.message, item.span) for item in found] == \
                [(item.code, item.message, item.span) for item in expected], (path, at)


def test_an_edit_parses_again_only_the_piece_it_touches(monkeypatch):
    """MotionBERT edited inside its last module: every other piece's tree is remembered."""
    text = (ROOT / "examples" / "motionbert.pose").read_text()
    parsed = []

    def counting(source, max_depth):
        parsed.append(source.text)
        return parser.parse_text(source, max_depth)

    chunks.parse_by_pieces(SourceFile("mb.pose", text), 100, counting)
    parsed.clear()
    at = text.rindex("return")
    edited = text[:at] + "# a note\n        " + text[at:]
    tree, found = chunks.parse_by_pieces(SourceFile("mb.pose", edited), 100, counting)
    assert found == [] and tree == parser.parse_text(SourceFile("mb.pose", edited), 100)[0]
    assert len(parsed) == 1 and "# a note" in parsed[0] and len(chunks.pieces(edited)) > 5


def test_pieces_know_their_first_line_and_cover_the_buffer():
    """Each piece's line number is the count of line feeds before it, and the pieces join to the buffer."""
    for path in POSE_FILES:
        text = Path(path).read_text()
        found = chunks.pieces(text)
        assert "".join(piece for _, _, piece in found) == text, path
        assert all(lines == text.count("\n", 0, offset) for offset, lines, _ in found), path


def test_a_buffer_of_too_many_pieces_is_parsed_whole(monkeypatch):
    """More top-level items than MAX_PIECES: one parse of the whole buffer, not one per item."""
    text = "".join(f"dim D{index}\n" for index in range(chunks.MAX_PIECES + 1))
    parsed = []

    def counting(source, max_depth):
        parsed.append(source.text)
        return parser.parse_text(source, max_depth)

    tree, found = chunks.parse_by_pieces(SourceFile("many.pose", text), 100, counting)
    assert parsed == [text] and found == [] and len(tree.items) == chunks.MAX_PIECES + 1
