"""PyTorch checkpoints read without torch: every official layout, both formats, hostile and damaged files.

The fixtures were written by torch.save (tests/fixtures/checkpoints/make_fixtures.py; torch is not
needed here). Each layout must read back exactly the weights of its reference `.npz`, and
`poseir run` with it must give exactly the numbers the same weights give from safetensors.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from poseir.cli import main
from poseir.diagnostics.record import DiagnosticError
from poseir.weights.files import load_weights, read_weights, save_weights
from poseir.weights.torch_checkpoint import _reader

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "checkpoints"
VIDEOPOSE = (str(ROOT / "examples" / "videopose3d.pose"), "--set", "channels=16", "--set", "filter_widths=[3,3,3]")
BASELINE = (str(ROOT / "examples" / "simplebaseline.pose"), "--set", "linear_size=16")

# file -> (reference weights, the entry the state_dict is read from)
LAYOUTS = {
    "videopose3d_layout.bin": ("videopose3d_tiny", "model_pos"),
    "videopose3d_layout_legacy.bin": ("videopose3d_tiny", "model_pos"),
    "poseformer_layout.bin": ("videopose3d_tiny", "model_pos"),
    "motionbert_layout.bin": ("videopose3d_tiny", "model_pos"),
    "mhformer_layout.pth": ("videopose3d_tiny", None),
    "bare_legacy.pt": ("videopose3d_tiny", None),
    "semgcn_layout.pth.tar": ("simplebaseline_tiny", "state_dict"),
    "martinez_layout_legacy.pth.tar": ("simplebaseline_tiny", "state_dict"),
    "lightning_layout.ckpt": ("simplebaseline_tiny", "state_dict"),
}

# file -> the global it names (what an ordinary unpickler would call) and the marker file it creates
HOSTILE = {
    "hostile_os_system.pth": ("posix.system", "pwned_os_system"),
    "hostile_exec.pt": ("builtins.exec", "pwned_exec"),
    "hostile_popen.pth.tar": ("subprocess.Popen", "pwned_popen"),
    "hostile_eval_legacy.pth": ("builtins.eval", "pwned_eval"),
    "hostile_os_system_legacy.bin": ("posix.system", "pwned_os_system_legacy"),
}


def reference(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def run_cli(capsys, *arguments) -> tuple[int, str]:
    """The CLI in this process (fast); returns the exit code and stderr."""
    code = main([str(argument) for argument in arguments])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_reads_back_the_exact_weights(name):
    expected, entry = LAYOUTS[name]
    weights, found = read_weights(str(FIXTURES / name))
    assert found == entry
    want = reference(expected)
    assert list(weights) == list(want)  # state_dict order, `module.` stripped
    for key, value in want.items():
        assert weights[key].dtype == value.dtype and weights[key].shape == value.shape, key
        assert np.array_equal(weights[key], value), key


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_run_with_checkpoint_equals_run_with_safetensors(name, tmp_path, capsys):
    expected, _ = LAYOUTS[name]
    model = VIDEOPOSE if expected == "videopose3d_tiny" else BASELINE
    rng = np.random.default_rng(0)
    if expected == "videopose3d_tiny":
        inputs = {"keypoints": rng.normal(size=(2, 31, 17, 2)).astype(np.float32)}
    else:
        inputs = {"pose_2d": rng.normal(size=(5, 32)).astype(np.float32)}
    np.savez(tmp_path / "in.npz", **inputs)
    save_weights(str(tmp_path / "w.safetensors"), reference(expected))
    outputs = {}
    for label, weights in (("checkpoint", FIXTURES / name), ("safetensors", tmp_path / "w.safetensors")):
        code, err = run_cli(capsys, "run", *model, "--inputs", tmp_path / "in.npz", "--weights", weights,
                            "-o", tmp_path / f"{label}.npz")
        assert code == 0, err
        with np.load(tmp_path / f"{label}.npz") as archive:
            outputs[label] = {key: archive[key] for key in archive.files}
    assert outputs["checkpoint"].keys() == outputs["safetensors"].keys()
    for key in outputs["checkpoint"]:
        assert np.array_equal(outputs["checkpoint"][key], outputs["safetensors"][key])
    # The weights matter: seeded init gives other numbers.
    code, _ = run_cli(capsys, "run", *model, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "init.npz")
    with np.load(tmp_path / "init.npz") as archive:
        assert not np.array_equal(archive[key], outputs["checkpoint"][key])


def test_params_checks_a_checkpoint_against_the_model(capsys):
    code, err = run_cli(capsys, "params", *BASELINE, "--weights", FIXTURES / "semgcn_layout.pth.tar")
    assert code == 0, err
    code, err = run_cli(capsys, "params", *VIDEOPOSE, "--weights", FIXTURES / "semgcn_layout.pth.tar")
    assert code == 1 and "error[E400]" in err


def test_convert_weights_writes_the_state_dict_as_safetensors(tmp_path, capsys):
    output = tmp_path / "vp.safetensors"
    code, err = run_cli(capsys, "convert-weights", FIXTURES / "motionbert_layout.bin", "-o", output)
    assert code == 0, err
    assert "32 tensors" in err and "`model_pos`" in err
    converted = load_weights(str(output))
    want = reference("videopose3d_tiny")
    assert converted.keys() == want.keys()
    assert all(np.array_equal(converted[key], want[key]) for key in want)


def test_weights_key_chooses_an_entry(tmp_path, capsys):
    code, err = run_cli(capsys, "convert-weights", FIXTURES / "two_state_dicts.pth", "-o", tmp_path / "w.npz")
    assert code == 1
    assert "error[E412]: " in err and "several state_dicts: `teacher`, `student`" in err
    assert "--weights-key teacher" in err
    code, err = run_cli(capsys, "convert-weights", FIXTURES / "two_state_dicts.pth", "-o", tmp_path / "w.npz",
                        "--weights-key", "student")
    assert code == 0, err
    assert len(load_weights(str(tmp_path / "w.npz"))) == 37


@pytest.mark.parametrize("key, message", [
    ("nope", "has no entry `nope`"),
    ("optimizer", "the entry `optimizer` of"),
    ("epoch", "the entry `epoch` of"),
])
def test_a_wrong_weights_key_lists_the_entries(key, message):
    with pytest.raises(DiagnosticError) as raised:
        load_weights(str(FIXTURES / "semgcn_layout.pth.tar"), key=key)
    diagnostic = raised.value.diagnostic
    assert diagnostic.code == "E412" and message in diagnostic.message
    assert "`state_dict`: state_dict of 37 tensors" in diagnostic.notes[0]
    assert "`optimizer`: dict of 2" in diagnostic.notes[0]


def test_a_checkpoint_without_state_dict_says_what_it_holds():
    with pytest.raises(DiagnosticError) as raised:
        load_weights(str(FIXTURES / "no_state_dict.pth"))
    assert raised.value.diagnostic.code == "E412"
    assert "holds no state_dict" in raised.value.diagnostic.message


def test_weights_key_in_a_flat_file_selects_a_prefix(tmp_path):
    weights = {f"model_pos.{key}": value for key, value in reference("simplebaseline_tiny").items()}
    weights["other.x"] = np.zeros(2, np.float32)
    save_weights(str(tmp_path / "w.safetensors"), weights)
    assert load_weights(str(tmp_path / "w.safetensors"), key="model_pos").keys() == reference("simplebaseline_tiny").keys()
    with pytest.raises(DiagnosticError) as raised:
        load_weights(str(tmp_path / "w.safetensors"), key="model_traj")
    assert raised.value.diagnostic.code == "E412"


# ---------------------------------------------------------------- hostile files


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_checkpoint_is_refused_and_runs_nothing(name, tmp_path):
    qualified, marker = HOSTILE[name]
    shutil.copy(FIXTURES / name, tmp_path / name)
    for command in (("params", *BASELINE, "--weights", name), ("convert-weights", name, "-o", "w.safetensors")):
        result = subprocess.run([sys.executable, "-m", "poseir", *command], cwd=tmp_path, capture_output=True,
                                text=True)
        assert result.returncode == 1, result.stderr
        assert f"error[E411]: `{name}` refers to `{qualified}`, which poseir does not load" in result.stderr
        assert "Traceback" not in result.stderr
    time.sleep(0.2)  # a started process (Popen) would have had time to create its file
    assert not (tmp_path / marker).exists()
    assert not (tmp_path / "w.safetensors").exists()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_fixture_really_runs_code_under_an_ordinary_unpickler(name, tmp_path):
    """The control: plain pickle, in a separate process in an empty directory, creates the marker file."""
    _, marker = HOSTILE[name]
    script = CONTROL.format(path=str(FIXTURES / name))
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, timeout=60)
    for _ in range(50):
        if (tmp_path / marker).exists():
            break
        time.sleep(0.1)
    assert (tmp_path / marker).exists()


# Reads the checkpoint's object pickle with the standard library's unrestricted unpickler (torch is
# not installed here, so its tensor-rebuilding globals are stood in for; every other global resolves).
CONTROL = """
import io, pickle, zipfile
path = {path!r}

class Ordinary(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] == "torch":
            return lambda *arguments: None
        return super().find_class(module, name)

    def persistent_load(self, pid):
        return None

if zipfile.is_zipfile(path):
    archive = zipfile.ZipFile(path)
    name = [n for n in archive.namelist() if n.endswith("data.pkl")][0]
    stream = io.BytesIO(archive.read(name))
else:
    stream = open(path, "rb")
    for _ in range(3):
        pickle.load(stream)
try:
    Ordinary(stream).load()
except Exception:
    pass
"""


def test_whole_model_object_is_refused_with_its_class_named():
    with pytest.raises(DiagnosticError) as raised:
        load_weights(str(FIXTURES / "whole_model.pth"))
    assert raised.value.diagnostic.code == "E411"
    assert "`__main__.TinySimpleBaseline`" in raised.value.diagnostic.message
    assert "state_dict()" in raised.value.diagnostic.helps[0]


# ---------------------------------------------------------------- damaged files


def rewrite_zip(source: Path, target: Path, change) -> None:
    """Copy a zip checkpoint, passing each member's (name, bytes) through `change` (None drops it)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info))
            if data is not None:
                new.writestr(info.filename, data)


def expect_e403(path: Path, fragment: str = "") -> None:
    with pytest.raises(DiagnosticError) as raised:
        load_weights(str(path))
    assert raised.value.diagnostic.code == "E403", raised.value.diagnostic.message
    assert fragment in raised.value.diagnostic.message


def test_storage_shorter_than_declared_is_refused_before_reading(tmp_path):
    target = tmp_path / "short.pth"
    rewrite_zip(FIXTURES / "mhformer_layout.pth", target,
                lambda name, data: data[:-4] if name.endswith("/data/0") else data)
    expect_e403(target, "storage `0` declares")


def test_missing_storage_is_refused(tmp_path):
    target = tmp_path / "missing.pth"
    rewrite_zip(FIXTURES / "mhformer_layout.pth", target, lambda name, data: None if name.endswith("/data/1") else data)
    expect_e403(target, "storage `1` is missing")


def test_any_archive_directory_name_and_big_endian_storages(tmp_path):
    """torch names the directory after the file; a big-endian machine writes `big` and swapped bytes."""
    source = FIXTURES / "mhformer_layout.pth"
    with _reader(str(source)) as reader:
        reader.load_tree()
        kinds = {key: storage.kind.dtype for key, storage in reader.declared.items()}

    def to_big_endian(name: str, data: bytes):
        name = name.split("/", 1)[1]
        if name == "byteorder":
            return b"big"
        if name.startswith("data/"):
            dtype = kinds[name[len("data/"):]]
            return np.frombuffer(data, dtype.newbyteorder("<")).astype(dtype.newbyteorder(">")).tobytes()
        return data

    target = tmp_path / "swapped.pth"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = to_big_endian(info.filename, old.read(info))
            new.writestr("some other name/" + info.filename.split("/", 1)[1], data)
    weights = load_weights(str(target))
    want = reference("videopose3d_tiny")
    assert all(np.array_equal(weights[key], want[key]) and weights[key].dtype == want[key].dtype for key in want)


@pytest.mark.parametrize("name", ["videopose3d_layout.bin", "videopose3d_layout_legacy.bin", "bare_legacy.pt"])
def test_truncated_checkpoints_give_e403(name, tmp_path):
    data = (FIXTURES / name).read_bytes()
    for cut in (0, 1, 7, 64, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 1):
        target = tmp_path / f"cut{cut}.bin"
        target.write_bytes(data[:cut])
        expect_e403(target)


def test_unknown_files_give_e403(tmp_path):
    (tmp_path / "text.pth").write_text("not a checkpoint\n")
    expect_e403(tmp_path / "text.pth", "neither a zip archive nor a pickle stream")
    expect_e403(tmp_path / "absent.pth", "No such file")


@pytest.mark.parametrize("name", ["videopose3d_layout.bin", "semgcn_layout.pth.tar"])
def test_mutated_pickles_give_diagnostics_in_bounded_time(name, tmp_path):
    """Random byte changes inside data.pkl (the zip rewritten with valid CRCs): a diagnostic or the weights."""
    rng = np.random.default_rng(7)
    with zipfile.ZipFile(FIXTURES / name) as archive:
        pickle_name = next(member for member in archive.namelist() if member.endswith("data.pkl"))
    start = time.perf_counter()
    outcomes = set()
    for trial in range(150):
        def mutate(member, data):
            if member != pickle_name:
                return data
            mutated = bytearray(data)
            for position in rng.integers(0, len(mutated), rng.integers(1, 4)):
                mutated[position] = int(rng.integers(0, 256))
            return bytes(mutated)

        target = tmp_path / f"m{trial}.pth"
        rewrite_zip(FIXTURES / name, target, mutate)
        try:
            load_weights(str(target))
            outcomes.add("read")
        except DiagnosticError as error:
            assert error.diagnostic.code in ("E403", "E411", "E412"), error.diagnostic.message
            outcomes.add(error.diagnostic.code)
        target.unlink()
    assert time.perf_counter() - start < 60
    assert "E403" in outcomes


def test_an_array_claiming_more_elements_than_its_bytes_is_refused():
    """A pickled numpy array whose shape promises more than the bytes it carries."""
    data = pickle.dumps(np.arange(4, dtype=np.float32), protocol=2)
    forged = data.replace(b"K\x04\x85", b"J\x00\x00\x00\x10\x85", 1)  # shape (4,) -> (2**28,)
    assert forged != data
    from poseir.weights.unpickler import MalformedPickle, restricted_load

    with pytest.raises(MalformedPickle, match="declares 268435456"):
        restricted_load(forged)
    assert np.array_equal(restricted_load(data), np.arange(4, dtype=np.float32))


def test_only_admitted_globals_are_resolved():
    from poseir.weights.unpickler import RefusedGlobal, restricted_load

    for module, name in (("os", "system"), ("builtins", "getattr"), ("numpy", "load"), ("torch", "load"),
                         ("copyreg", "_reconstructor"), ("__builtin__", "eval")):
        payload = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n)R."
        with pytest.raises(RefusedGlobal) as raised:
            restricted_load(payload)
        assert raised.value.name == name
    plain = {"a": [1, 2.5, "x", (True, None)], "b": {1, 2}, "c": b"\x00", "d": bytearray(b"12"), "e": 1 + 2j}
    for protocol in (0, 2, 4, 5):
        assert restricted_load(pickle.dumps(plain, protocol=protocol)) == plain


def test_sizes_in_the_pickle_are_checked_before_allocating():
    """A memo index of 2**31 (the C unpickler would zero 16 GiB for it) and a 2**40-byte bytearray."""
    from poseir.weights.unpickler import MalformedPickle, restricted_load

    start = time.perf_counter()
    assert restricted_load(b"\x80\x02}r\xff\xff\xff\x7f.") == {}
    with pytest.raises(MalformedPickle, match="more than the file has left"):
        restricted_load(b"\x80\x05\x96" + (2**40).to_bytes(8, "little") + b"abc.")
    with pytest.raises(MalformedPickle):
        restricted_load(b"\x80\x04B\xff\xff\xff\x7fabc.")  # BINBYTES claiming 2 GiB
    assert time.perf_counter() - start < 1


def test_the_array_bytes_limit_bounds_what_a_checkpoint_may_allocate(tmp_path, capsys):
    with pytest.raises(DiagnosticError) as raised:
        load_weights(str(FIXTURES / "videopose3d_layout.bin"), 10_000)
    assert raised.value.diagnostic.code == "E403"
    assert "more than the `array_bytes` limit (10,000 bytes)" in raised.value.diagnostic.message
    code, err = run_cli(capsys, "convert-weights", FIXTURES / "videopose3d_layout.bin", "-o", tmp_path / "w.npz",
                        "--limit", "array_bytes=10k")
    assert code == 1 and "array_bytes" in err
    code, err = run_cli(capsys, "convert-weights", FIXTURES / "videopose3d_layout.bin", "-o", tmp_path / "w.npz",
                        "--limit", "array_bytes=20k")
    assert code == 0, err


def _capped() -> None:
    """Runs in the child before exec: 1 GiB of address space, far below what an unbounded read would take."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _forge_memo(name: str, data: bytes):
    # BINPUT 1 -> LONG_BINPUT 2**31 - 1: the C unpickler would size (and zero) its memo table by it.
    return data.replace(b"Rq\x01(", b"Rr\xff\xff\xff\x7f(", 1) if name.endswith("data.pkl") else data


def _forge_numel(name: str, data: bytes):
    # The first storage's element count 1632 -> 2**31 - 1 (its member still holds 1632 floats).
    return data.replace(b"M`\x06", b"J\xff\xff\xff\x7f", 1) if name.endswith("data.pkl") else data


@pytest.mark.parametrize("forge, fragment", [(_forge_memo, ""), (_forge_numel, "storage `0` declares 2147483647")])
def test_forged_sizes_end_fast_under_a_memory_cap(forge, fragment, tmp_path):
    target = tmp_path / "forged.pth"
    rewrite_zip(FIXTURES / "mhformer_layout.pth", target, forge)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "poseir", "convert-weights", target, "-o", tmp_path / "w.npz"],
                            capture_output=True, text=True, preexec_fn=_capped, timeout=60)
    assert time.perf_counter() - start < 30
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1), result.stderr
    if fragment:
        assert result.returncode == 1 and fragment in result.stderr


def test_a_legacy_record_claiming_2_to_the_62_elements_is_refused(tmp_path):
    data = bytearray((FIXTURES / "bare_legacy.pt").read_bytes())
    with _reader(str(FIXTURES / "bare_legacy.pt")) as reader:
        reader.load_tree()
        first = min(reader.offsets.values()) - 8
    data[first:first + 8] = (2**62).to_bytes(8, "little")
    (tmp_path / "huge.pt").write_bytes(bytes(data))
    expect_e403(tmp_path / "huge.pt", "elements, its record 4611686018427387904")
