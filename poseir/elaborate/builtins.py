"""Compile-time built-in functions, initializers and skeletons visible in every file."""

from __future__ import annotations

import math

from poseir import ops  # noqa: F401  (fills the registry before builtin_names reads it)
from poseir.ir.dims import Dim
from poseir.ops.registry import ALIASES, REGISTRY
from poseir.syntax.source import Span
from poseir.elaborate.values import Builtin, ModuleInstance, ModuleList, OpRef, Skeleton

# Human3.6M 17 joints as used by VideoPose3D, PoseFormer, MixSTE, MHFormer and MotionBERT.
H36M = Skeleton(
    "h36m",
    ("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Nose", "Head",
     "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist"),
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    ((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16)),
)

# The 16-joint layout of SemGCN and the Martinez baseline input (no Nose).
H36M16 = Skeleton(
    "h36m16",
    ("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Head",
     "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist"),
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14),
    ((4, 1), (5, 2), (6, 3), (10, 13), (11, 14), (12, 15)),
)

# MPI-INF-3DHP's 17 "relevant" joints in the order of its evaluation scripts.
MPI_INF_3DHP = Skeleton(
    "mpi_inf_3dhp",
    ("HeadTop", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip", "RKnee",
     "RAnkle", "LHip", "LKnee", "LAnkle", "Pelvis", "Spine", "Head"),
    (16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1),
    ((5, 2), (6, 3), (7, 4), (11, 8), (12, 9), (13, 10)),
)

# COCO's 17 keypoints; the tree hangs from the nose as detectors usually draw it.
COCO = Skeleton(
    "coco",
    ("Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist", "RWrist",
     "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle"),
    (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
)

SKELETONS = {skeleton.name: skeleton for skeleton in (H36M, H36M16, MPI_INF_3DHP, COCO)}


def _number(value):
    """Reject symbolic dims where a concrete number is needed."""
    if isinstance(value, Dim):
        if value.is_const:
            return value.value
        raise ValueError(f"`{value}` is not known at compile time")
    return value


def _range(*bounds):
    """range(n) or range(a, b[, step]) as a tuple."""
    return tuple(range(*(_number(bound) for bound in bounds)))


def _linspace(start, stop, count):
    """`count` evenly spaced floats from start to stop inclusive (torch.linspace)."""
    count = int(_number(count))
    if count == 1:
        return (float(start),)
    return tuple(float(start) + (float(stop) - float(start)) * index / (count - 1) for index in range(count))


def _items(value) -> tuple:
    """A compile-time list (or string), or the modules of a module list, as a tuple."""
    if isinstance(value, ModuleList):
        return tuple(value.items)
    if isinstance(value, (tuple, str)):
        return tuple(value)
    raise ValueError("expected a list or a module list")


def _enumerate(items, start=0):
    """(index, item) pairs, counting from `start` (Python's enumerate)."""
    return tuple(enumerate(_items(items), int(_number(start))))


def _zip(*lists):
    """Tuples of the items at the same position, as long as the shortest list (Python's zip)."""
    return tuple(zip(*(_items(items) for items in lists)))


def _uniform(low, high):
    """Initializer: U(low, high), as torch's default Linear/Conv initialization uses."""
    return ("uniform", float(_number(low)), float(_number(high)))


def _normal(mean=0.0, std=1.0):
    """Initializer: N(mean, std^2)."""
    return ("normal", float(_number(mean)), float(_number(std)))


def _trunc_normal(std=1.0, low=-2.0, high=2.0):
    """Initializer: N(0, std^2) truncated to [low, high] (timm's trunc_normal_)."""
    return ("trunc_normal", float(_number(std)), float(_number(low)), float(_number(high)))


def _fill(value):
    """Initializer: every element equal to `value`."""
    return ("fill", float(_number(value)))


FUNCTIONS = {
    "len": (lambda items: len(_items(items)), "the length of a list, a string or a module list"),
    "enumerate": (_enumerate, "enumerate(items, start=0): (index, item) pairs, for `for i, x in ...`"),
    "zip": (_zip, "zip(a, b, ...): tuples of the items at the same position"),
    "range": (_range, "range(n) or range(a, b): a list of ints"),
    "min": (lambda *items: min(items[0] if len(items) == 1 else items), "the smallest of the numbers"),
    "max": (lambda *items: max(items[0] if len(items) == 1 else items), "the largest of the numbers"),
    "sum": (lambda items, start=0: sum(items, start), "the sum of a list"),
    "prod": (lambda items: math.prod(items), "the product of a list"),
    "abs": (lambda value: abs(value), "absolute value"),
    "int": (lambda value: int(_number(value)), "convert to int"),
    "float": (lambda value: float(_number(value)), "convert to float"),
    "sqrt": (lambda value: math.sqrt(_number(value)), "square root (compile time)"),
    "log": (lambda value: math.log(_number(value)), "natural logarithm (compile time)"),
    "exp": (lambda value: math.exp(_number(value)), "exponential (compile time)"),
    "linspace": (_linspace, "linspace(start, stop, count): evenly spaced floats"),
    "zeros": (lambda: ("zeros",), "initializer: all zeros"),
    "ones": (lambda: ("ones",), "initializer: all ones"),
    "fill": (_fill, "initializer: a constant"),
    "uniform": (_uniform, "initializer: uniform(low, high)"),
    "normal": (_normal, "initializer: normal(mean, std)"),
    "trunc_normal": (_trunc_normal, "initializer: trunc_normal(std, low=-2, high=2)"),
}

# Functions that build a list: its length, computed before the list is (a budget checks it first).
LIST_LENGTHS = {
    "enumerate": lambda items, start=0: len(_items(items)),
    "zip": lambda *lists: min((len(_items(items)) for items in lists), default=0),
    "range": lambda *bounds: len(range(*(_number(bound) for bound in bounds))),
    "linspace": lambda start, stop, count: int(_number(count)),
}

# Compile-time names that shadow ops of the same name (`sqrt` of a number vs. of a tensor).
_TENSOR_AWARE = {"sqrt", "log", "exp", "abs", "sum", "max", "min"}


def _sequential(*modules):
    """`Sequential(a, b)`: a module list whose call applies its items in order (keys `name.0`, ...)."""
    for module in modules:
        if not isinstance(module, (ModuleInstance, ModuleList)):
            raise ValueError("Sequential takes modules")
    return ModuleList(list(modules), Span.unknown(), sequential=True)


def builtin_names() -> dict:
    """The outermost scope: functions, skeletons and every registry op callable by name."""
    names: dict = {}
    for name in sorted(REGISTRY):
        names[name] = OpRef(name)
    for alias, name in sorted(ALIASES.items()):
        names[alias] = OpRef(name)
    for name, (function, doc) in FUNCTIONS.items():
        if name in _TENSOR_AWARE and name in REGISTRY:
            names[name] = _dispatching(name, function, doc)
        else:
            names[name] = Builtin(name, function, doc)
    names["Sequential"] = Builtin("Sequential", _sequential, "Sequential(m1, m2, ...): apply modules in order")
    names.update(SKELETONS)
    names["pi"] = math.pi
    return names


def _dispatching(name: str, function, doc: str):
    """A built-in that is compile-time on numbers and the registry op on tensors."""
    return Builtin(name, function, doc + " (on a tensor: the op)")
