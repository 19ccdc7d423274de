"""VideoPose3D's prepared datasets read without running pickle code, checked, and written back.

`data_3d_h36m.npz` holds `positions_3d`, `data_2d_h36m_<keypoints>.npz` holds `positions_2d` and
`metadata`: each a 0-d object array whose element is a pickled dict. numpy would need
`allow_pickle=True` to read them, which runs whatever the pickle names; here every `.npy` member's
header is parsed by hand and an object array's pickle goes through the restricted unpickler, so
only dicts, lists, strings, numbers and numpy arrays can come out.
"""

from __future__ import annotations

import ast
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poseir.diagnostics.record import Diagnostic, DiagnosticError
from poseir.limits import DEFAULT_LIMITS
from poseir.recipe.h36m import KEPT_JOINTS_32
from poseir.weights.torch_checkpoint import check_member_size
from poseir.weights.unpickler import MalformedPickle, RefusedGlobal, as_plain_array, refused, restricted_load

NPY_MAGIC = b"\x93NUMPY"
# numpy's own limit on a .npy header (`max_header_size`), which keeps literal parsing cheap.
MAX_HEADER = 10000
_HELPS = ("write datasets with plain dicts, lists and numpy arrays (as VideoPose3D's scripts and "
          "`poseir synth` do)",)


def dataset_error(path: str, message: str, **details) -> DiagnosticError:
    """E413 for a dataset file that cannot be read or has the wrong layout."""
    return DiagnosticError(Diagnostic.make("E413", f"`{path}`: {message}", None, **details))


# ---------------------------------------------------------------- .npz without numpy's pickle loading


def read_npz(path: str, max_bytes: int = DEFAULT_LIMITS.array_bytes) -> dict[str, object]:
    """Every array of an `.npz`; an object array is unpickled by the restricted reader. E411 / E413.

    The members' declared sizes together may not pass `max_bytes` (the `array_bytes` limit); each
    is checked before it is decompressed.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
            if sum(info.file_size for info in members) > max_bytes:
                raise dataset_error(path, f"its arrays need more than the `array_bytes` limit ({max_bytes:,} bytes)",
                                    helps=("raise it with `--limit array_bytes=...`",))
            return {_array_name(info.filename): _read_member(archive, info) for info in members}
    except RefusedGlobal as error:
        raise refused(error, path, "dataset", _HELPS) from None
    except MalformedPickle as error:
        raise dataset_error(path, f"cannot read it: {error}") from None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError,
            zlib.error) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise dataset_error(path, f"cannot read it: {reason or type(error).__name__}") from None


def _array_name(member: str) -> str:
    return member[: -len(".npy")]


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> object:
    check_member_size(info)
    with archive.open(info) as member:
        return parse_npy(member.read())


def parse_npy(data: bytes) -> object:
    """One `.npy` file: its header checked by hand, then raw elements or a restricted pickle."""
    descr, fortran, shape, start = _npy_header(data)
    count = math.prod(shape)
    if descr.hasobject:
        array = restricted_load(data[start:])
        if not isinstance(array, np.ndarray) or array.shape != shape:
            raise MalformedPickle(f"the pickled object array is not the declared shape {shape}")
        return as_plain_array(array)
    body = data[start:]
    if len(body) != count * descr.itemsize:
        raise MalformedPickle(f"an array of {shape} declares {count * descr.itemsize} bytes, the file has {len(body)}")
    return np.frombuffer(body, descr).reshape(shape, order="F" if fortran else "C").copy()


def _npy_header(data: bytes) -> tuple[np.dtype, bool, tuple[int, ...], int]:
    """(dtype, fortran order, shape, offset of the data) from a `.npy` header, versions 1 to 3."""
    if data[:6] != NPY_MAGIC or len(data) < 10 or data[6] not in (1, 2, 3):
        raise MalformedPickle("a member is not a .npy array")
    width = 2 if data[6] == 1 else 4
    length = int.from_bytes(data[8:8 + width], "little")
    start = 8 + width + length
    if length > MAX_HEADER or start > len(data):
        raise MalformedPickle("a .npy header is too long or truncated")
    text = data[8 + width:start].decode("utf-8" if data[6] == 3 else "latin-1")
    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        raise MalformedPickle("a .npy header is not a literal dict") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise MalformedPickle("a .npy header lacks descr, fortran_order or shape")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str) or not isinstance(fortran, bool) or not isinstance(shape, tuple) or not all(
            isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape):
        raise MalformedPickle("a .npy header has a malformed descr, order or shape")
    try:
        dtype = np.dtype(descr)
    except TypeError:
        raise MalformedPickle(f"a .npy header names an unknown dtype `{descr[:20]}`") from None
    return dtype, fortran, shape, start


def _object(arrays: dict, name: str, path: str) -> object:
    """The element of a 0-d object array `name` (how np.savez stores a dict)."""
    if name not in arrays:
        raise dataset_error(path, f"has no array `{name}`", notes=(f"it holds: {', '.join(sorted(arrays)) or 'nothing'}",))
    array = arrays[name]
    if not isinstance(array, np.ndarray) or array.dtype != object or array.shape != ():
        raise dataset_error(path, f"`{name}` is not a pickled dict (a 0-d object array)")
    return array[()]


# ---------------------------------------------------------------- the two datasets


@dataclass(frozen=True)
class Keypoints2D:
    """`positions_2d[subject][action]` (one array (frames, J, 2) in pixels per camera) and the flip lists."""

    positions: dict[str, dict[str, list[np.ndarray]]]
    keypoints_left: tuple[int, ...]
    keypoints_right: tuple[int, ...]
    joints: int


def load_3d(path: str, max_bytes: int = DEFAULT_LIMITS.array_bytes) -> dict[str, dict[str, np.ndarray]]:
    """`positions_3d[subject][action]`: world positions (frames, 17, 3) in metres (32 joints reduced to 17)."""
    tree = _object(read_npz(path, max_bytes), "positions_3d", path)
    subjects = _dict(tree, path, "positions_3d")
    return {subject: {action: _positions_3d(array, path, f"positions_3d[{subject!r}][{action!r}]")
                      for action, array in _dict(actions, path, f"positions_3d[{subject!r}]").items()}
            for subject, actions in subjects.items()}


def _positions_3d(array, path: str, where: str) -> np.ndarray:
    """One sequence: (frames, 32 or 17, 3) finite numbers, as float32 with 17 joints."""
    array = _numbers(array, path, where)
    if array.ndim != 3 or array.shape[1:] not in ((32, 3), (17, 3)):
        raise dataset_error(path, f"{where} has shape {array.shape}, expected (frames, 32, 3) or (frames, 17, 3)")
    return array[:, list(KEPT_JOINTS_32)] if array.shape[1] == 32 else array


def load_2d(path: str, max_bytes: int = DEFAULT_LIMITS.array_bytes) -> Keypoints2D:
    """`positions_2d` and `metadata` of a 2D keypoint file."""
    arrays = read_npz(path, max_bytes)
    tree = _dict(_object(arrays, "positions_2d", path), path, "positions_2d")
    metadata = _dict(_object(arrays, "metadata", path), path, "metadata")
    joints, left, right = _symmetry(metadata, path)
    positions = {}
    for subject, actions in tree.items():
        positions[subject] = {}
        for action, cameras in _dict(actions, path, f"positions_2d[{subject!r}]").items():
            where = f"positions_2d[{subject!r}][{action!r}]"
            if not isinstance(cameras, list) or not cameras:
                raise dataset_error(path, f"{where} is not a list of arrays, one per camera")
            positions[subject][action] = [_keypoints(array, joints, path, f"{where}[{index}]")
                                          for index, array in enumerate(cameras)]
    return Keypoints2D(positions, left, right, joints)


def _keypoints(array, joints: int, path: str, where: str) -> np.ndarray:
    array = _numbers(array, path, where)
    if array.ndim != 3 or array.shape[1] != joints or array.shape[2] < 2:
        raise dataset_error(path, f"{where} has shape {array.shape}, expected (frames, {joints}, 2)")
    return array[..., :2]


def _symmetry(metadata: dict, path: str) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """`num_joints` and `keypoints_symmetry` ([left], [right]) of the 2D metadata."""
    joints = metadata.get("num_joints")
    symmetry = metadata.get("keypoints_symmetry")
    if not isinstance(joints, int) or joints <= 0 or not isinstance(symmetry, (list, tuple)) or len(symmetry) != 2:
        raise dataset_error(path, "`metadata` lacks `num_joints` or `keypoints_symmetry` ([left], [right])")
    left, right = (tuple(_joint_list(side, joints, path)) for side in symmetry)
    if len(left) != len(right) or len(set(left + right)) != len(left + right):
        raise dataset_error(path, "`keypoints_symmetry` does not pair distinct left and right joints")
    return joints, left, right


def _joint_list(side, joints: int, path: str) -> list[int]:
    values = [int(item) for item in side] if isinstance(side, (list, tuple, np.ndarray)) else None
    if values is None or not all(0 <= value < joints for value in values):
        raise dataset_error(path, f"`keypoints_symmetry` lists joints outside 0..{joints - 1}")
    return values


def _dict(value, path: str, where: str) -> dict:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise dataset_error(path, f"`{where}` is not a dict keyed by names")
    return value


def _numbers(array, path: str, where: str) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise dataset_error(path, f"{where} is not a numeric array")
    array = as_plain_array(array).astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise dataset_error(path, f"{where} holds NaN or infinite values")
    return array


def save_dataset(directory: str, positions_3d: dict, positions_2d: dict, metadata: dict,
                 keypoints: str = "gt") -> tuple[Path, Path]:
    """Write `data_3d_h36m.npz` and `data_2d_h36m_<keypoints>.npz` exactly as VideoPose3D's scripts lay them out."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path_3d = folder / "data_3d_h36m.npz"
    path_2d = folder / f"data_2d_h36m_{keypoints}.npz"
    # np.savez wraps each dict in a 0-d object array and pickles it: that is the format VideoPose3D reads.
    np.savez_compressed(path_3d, positions_3d=positions_3d)
    np.savez_compressed(path_2d, positions_2d=positions_2d, metadata=metadata)
    return path_3d, path_2d
