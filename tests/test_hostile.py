"""Untrusted input: every hostile `.pose` file ends fast, under a memory cap, with a diagnostic and exit 1.

Each case runs `poseir check` in a real process whose address space is capped with
`resource.setrlimit` and whose run time is bounded by a timeout; none may print a secret kept
outside the project, and none may take the machine down.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "SECRET-MARKER-7f3a"  # planted outside every project; must never appear in any output
MEMORY_CAP = 1 << 30  # 1 GiB of address space: far below what an unbounded case would take
TIME_CAP = 60  # seconds; the cases themselves take about one


def _capped() -> None:
    """Runs in the child before exec: cap its address space."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def poseir(*arguments, cwd) -> subprocess.CompletedProcess:
    """`poseir ARGS` in a fresh, memory-capped interpreter."""
    return subprocess.run([sys.executable, "-m", "poseir", *map(str, arguments)], capture_output=True, text=True,
                          cwd=cwd, preexec_fn=_capped, timeout=TIME_CAP)


@pytest.fixture
def project(tmp_path) -> Path:
    """A project directory (it holds pyproject.toml) with a secret file beside it, outside."""
    (tmp_path / "secret.pose").write_text(f"{SECRET}\n")
    (tmp_path / "secret.txt").write_text(f"{SECRET}\n")
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("")
    return root


def model_using(statement: str) -> str:
    """A small valid model whose file also holds `statement` at the top level."""
    return (f"{statement}\n"
            "dim B\n"
            "model m = M()\n"
            "module M() {\n"
            "    forward(x: f32[B, 2]) -> (y: f32[B, 2]) {\n"
            "        return x\n"
            "    }\n"
            "}\n")


def forward_body(body: str, hyper: str = "") -> str:
    """A model whose forward runs `body` (indented lines) before returning its input."""
    lines = "".join(f"        {line}\n" for line in body.splitlines())
    return (f"dim B\nmodel m = M()\nmodule M({hyper}) {{\n"
            f"    forward(x: f32[B, 2]) -> (y: f32[B, 2]) {{\n{lines}        return x\n    }}\n}}\n")


def assert_reported(result: subprocess.CompletedProcess, code: str) -> None:
    """Exit 1, the expected code on stderr, no traceback, no secret."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"[{code}]" in result.stderr, output
    assert "Traceback" not in output and "internal compiler error" not in output, output
    assert SECRET not in output


# --------------------------------------------------------------------------- imports


def _setup_fifo(root: Path) -> str:
    os.mkfifo(root / "pipe.pose")
    return 'import "pipe.pose"'


def _setup_link_out(root: Path) -> str:
    (root / "layers.pose").symlink_to(root.parent / "secret.pose")
    return 'import "layers.pose"'


def _setup_link_device(root: Path) -> str:
    (root / "zero.pose").symlink_to("/dev/zero")
    return 'import "zero.pose"'


def _setup_link_loop(root: Path) -> str:
    (root / "a.pose").symlink_to(root / "b.pose")
    (root / "b.pose").symlink_to(root / "a.pose")
    return 'import "a.pose"'


def _setup_big(root: Path) -> str:
    (root / "big.pose").write_bytes(b"# " + b"a" * (10 << 20) + b"\n")
    return 'import "big.pose"'


def _setup_binary(root: Path) -> str:
    (root / "blob.pose").write_bytes(bytes(range(256)) * 64)
    return 'import "blob.pose"'


def _setup_nul(root: Path) -> str:
    (root / "nul.pose").write_bytes(b"dim B\x00\x00\n")
    return 'import "nul.pose"'


def _setup_directory(root: Path) -> str:
    (root / "dir.pose").mkdir()
    return 'import "dir.pose"'


IMPORTS = {
    "dev_zero": (lambda root: 'import "/dev/zero"', "E002"),
    "etc_passwd": (lambda root: 'import "/etc/passwd"', "E002"),
    "proc_environ": (lambda root: 'import "/proc/self/environ"', "E002"),
    "parent_directory": (lambda root: 'import "../secret.pose"', "E003"),
    "absolute_outside": (lambda root: f'import "{root.parent / "secret.pose"}"', "E003"),
    "not_pose": (lambda root: 'import "../secret.txt"', "E002"),
    "backslash_parent": (lambda root: 'import "..\\\\secret.pose"', "E003"),
    "named_pipe": (_setup_fifo, "E004"),
    "link_outside": (_setup_link_out, "E003"),
    "link_to_device": (_setup_link_device, "E003"),
    "link_loop": (_setup_link_loop, "E002"),
    "ten_megabytes": (_setup_big, "E004"),
    "binary_garbage": (_setup_binary, "E004"),
    "nul_bytes": (_setup_nul, "E004"),
    "directory": (_setup_directory, "E002"),
    "missing": (lambda root: 'import "nowhere.pose"', "E002"),
}


@pytest.mark.parametrize("case", sorted(IMPORTS))
def test_hostile_import(project, case):
    setup, code = IMPORTS[case]
    (project / "main.pose").write_text(model_using(setup(project)))
    assert_reported(poseir("check", "main.pose", cwd=project), code)


def test_directory_check_refuses_a_link_out_of_the_project(project):
    (project / "ok.pose").write_text(model_using(""))
    (project / "evil.pose").symlink_to(project.parent / "secret.pose")
    result = poseir("check", ".", cwd=project)
    assert_reported(result, "E003")
    assert "evil.pose" in result.stderr


def test_root_option_admits_an_import_outside(project):
    (project.parent / "shared.pose").write_text("module Shared() {\n}\n")
    (project / "main.pose").write_text(model_using('import "../shared.pose"'))
    assert_reported(poseir("check", "main.pose", cwd=project), "E003")
    result = poseir("check", "main.pose", "--root", project.parent, cwd=project)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("setup", [_setup_fifo, _setup_binary, _setup_big])
def test_hostile_entry_file(project, setup):
    name = setup(project).split('"')[1]
    assert_reported(poseir("check", name, cwd=project), "E004")


# --------------------------------------------------------------------------- compile-time work


def _module_list(count: int) -> str:
    return forward_body("", "").replace("module M() {\n", f"module M() {{\n    self.layers = [Linear(2, 2) for i in 0..{count}]\n")


BOUNDS = {
    "nested_brackets": (model_using("x = " + "[" * 10_000 + "1" + "]" * 10_000), (), "E109"),
    "nested_unary_minus": (model_using("x = " + "-" * 10_000 + "1"), (), "E109"),
    "twenty_thousand_terms": (model_using("x = " + " + ".join(["1"] * 20_000)), (), "E109"),
    "nested_blocks": (forward_body("if true {\n" * 300 + "y = x\n" + "}\n" * 300), (), "E109"),
    "power_tower": (model_using("x = 10 ** 10 ** 10").replace("module M()", "module M(n: int = x)"), (), "E109"),
    "huge_literal": (model_using("x = " + "9" * 400).replace("module M()", "module M(n: int = x)"), (), "E109"),
    "list_repeat": (model_using("x = [0] * 1000000000").replace("module M()", "module M(n: int = len(x))"), (),
                    "E109"),
    "loop_of_ten_million": (forward_body("for i in 0..10000000 {\n    y = x + 1.0\n}"), (), "E109"),
    "nested_loops": (forward_body("for i in 0..1000 {\n    for j in 0..1000 {\n        k = i\n    }\n}"), (), "E109"),
    "comprehension": (forward_body("xs = [i * 2 for i in 0..100000000]"), (), "E109"),
    "range_builtin": (forward_body("xs = range(1000000000)"), (), "E109"),
    "million_linears": (_module_list(1_000_000), (), "E109"),
    "self_instantiation": ("dim B\nmodel m = M()\nmodule M() {\n    self.inner = M()\n"
                           "    forward(x: f32[B, 2]) -> (y: f32[B, 2]) {\n        return self.inner(x)\n    }\n}\n",
                           (), "E109"),
    "mutual_instantiation": ("dim B\nmodel m = A()\nmodule A() {\n    self.b = Bee()\n}\nmodule Bee() {\n"
                             "    self.a = A()\n}\n", (), "E109"),
    "graph_nodes": (forward_body("for i in 0..5000 {\n    x = x + 1.0\n}"), ("--limit", "graph_nodes=1000"), "E109"),
    "exp_overflow": (model_using("x = exp(100000.0)").replace("module M()", "module M(n: float = x)"), (), "E105"),
}


@pytest.mark.parametrize("case", sorted(BOUNDS))
def test_compile_time_bounds(project, case):
    text, options, code = BOUNDS[case]
    (project / "main.pose").write_text(text)
    result = poseir("check", "main.pose", *options, cwd=project)
    assert_reported(result, code)
    if code == "E109":
        assert "--limit" in result.stderr  # says how to raise the limit


@pytest.mark.parametrize("case", ["nested_brackets", "nested_unary_minus", "twenty_thousand_terms", "nested_blocks"])
def test_an_editor_buffer_too_deep_to_parse_is_bounded_too(project, case):
    """A buffer handed to `check` (the language server's path, parsed piece by piece) ends as the file does."""
    from poseir.compiler import check

    text, _, code = BOUNDS[case]
    result = check(str(project / "main.pose"), text)
    assert code in {diagnostic.code for diagnostic in result.diagnostics}


def test_a_raised_limit_lets_the_work_finish(project):
    (project / "main.pose").write_text(forward_body("for i in 0..300 {\n    x = x + 1.0\n}"))
    assert_reported(poseir("check", "main.pose", "--limit", "loop_iterations=100", cwd=project), "E109")
    assert poseir("check", "main.pose", "--limit", "loop_iterations=1000", cwd=project).returncode == 0


def test_an_unknown_limit_is_a_usage_error(project):
    (project / "main.pose").write_text(model_using(""))
    result = poseir("check", "main.pose", "--limit", "speed=3", cwd=project)
    assert result.returncode == 2 and "loop_iterations" in result.stderr


def test_ninety_nine_levels_still_compile(project):
    """Nesting just below the limit is handled without reaching Python's recursion limit."""
    (project / "main.pose").write_text(model_using("x = " + "-(" * 45 + "1" + ")" * 45)
                                       .replace("module M()", "module M(n: int = x)"))
    result = poseir("check", "main.pose", cwd=project)
    assert result.returncode == 0, result.stderr


def test_one_diagnostic_for_a_passed_limit(project):
    (project / "main.pose").write_text(forward_body(
        "for i in 0..200000 {\n    y = x\n}\nfor j in 0..200000 {\n    z = x\n}"))
    result = poseir("check", "main.pose", cwd=project)
    assert result.stderr.count("error[E109]") == 1, result.stderr


# --------------------------------------------------------------------------- encodings


def test_bom_and_crlf_files_check(project):
    text = model_using("## a comment").replace("\n", "\r\n")
    (project / "main.pose").write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = poseir("check", "main.pose", cwd=project)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- library files


LIBRARY = """\
## Layers shared by several models; this file declares no model.
module Head(channels: int = 64, joints: int = 17) {
    self.shrink = Conv1d(channels, joints * 3, 1)
    forward(x: f32[B, channels, T]) -> (y: f32[B, T, joints, 3]) {
        return self.shrink(x).view(B, T, joints, 3)
    }
}

module Needs(width: int) {
    self.proj = Linear(width, 3)
    forward(x: f32[N, width]) -> (y: f32[N, 3]) {
        return self.proj(x) + self.proj(x).sum()
    }
}
"""


def test_a_library_file_is_checked(project):
    (project / "layers.pose").write_text(LIBRARY)
    result = poseir("check", "layers.pose", cwd=project)
    assert_reported(result, "E206")
    assert "layers.pose:5:16" in result.stderr


def test_an_imported_error_is_reported_in_its_file(project):
    (project / "layers.pose").write_text(LIBRARY)
    (project / "main.pose").write_text(
        'import "layers.pose"\ndim B, T\nmodel m = Head()\n')
    result = poseir("check", "main.pose", "--format", "gcc", cwd=project)
    assert result.returncode == 1
    assert "layers.pose:5:16: error: reshaping f32[B, 51, T] to [B, T, 17, 3] reorders its axes [E206]" \
        in result.stdout, result.stdout
