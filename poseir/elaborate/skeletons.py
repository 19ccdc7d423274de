"""User-declared skeletons: evaluate `skeleton name { ... }` and check it is a valid tree with a flip."""

from __future__ import annotations

from poseir.syntax import ast
from poseir.diagnostics.record import Diagnostic, Label, fail
from poseir.elaborate.flips import flip_candidate
from poseir.elaborate.scope import Frame
from poseir.elaborate.values import Skeleton

_FIELDS = ("joints", "parents", "pairs")


def build_skeleton(evaluator, item: ast.SkeletonDecl, frame: Frame, warnings: list[Diagnostic]) -> Skeleton:
    """Joints (strings), parents (indices or names, -1 for the root), left/right pairs (names or indices).

    Field values are evaluated by `evaluator`; a W313 about the flip is appended to `warnings`.
    """
    fields: dict = {}
    spans: dict = {}
    for statement in item.body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and not statement.targets[0].on_self and statement.targets[0].name in _FIELDS):
            raise fail("E105", "a skeleton body has only `joints = [...]`, `parents = [...]` and `pairs = [...]`",
                       statement.span)
        name = statement.targets[0].name
        fields[name] = evaluator.evaluate(statement.value, frame)
        spans[name] = statement.value.span
    for name in ("joints", "parents"):
        if name not in fields:
            raise fail("E102", f"skeleton `{item.name}` needs `{name} = [...]`", item.span)
    joints = _joints(fields["joints"], spans["joints"])
    parents = tuple(_index(parent, joints, spans["parents"], allow_root=True) for parent in fields["parents"])
    if len(parents) != len(joints):
        raise fail("E105", f"`parents` has {len(parents)} entries for {len(joints)} joints", spans["parents"])
    _check_tree(parents, spans["parents"])
    pairs = tuple(_pair(pair, joints, spans["pairs"]) for pair in fields.get("pairs", ()))
    skeleton = Skeleton(item.name, joints, parents, pairs)
    _check_flip(skeleton, spans.get("pairs", item.span))
    mismatch = flip_mismatch(skeleton)
    if mismatch is not None:
        warnings.append(_flip_warning(skeleton, mismatch, spans.get("pairs", item.span)))
    return skeleton


def flip_mismatch(skeleton: Skeleton) -> int | None:
    """A joint whose flipped parent is not its flipped joint's parent, or None when the flip keeps the tree."""
    flip = skeleton.flip
    for joint, parent in enumerate(skeleton.parents):
        if parent >= 0 and skeleton.parents[flip[joint]] != flip[parent]:
            return joint
    return None


def _flip_warning(skeleton: Skeleton, joint: int, span) -> Diagnostic:
    """W313 naming the joint whose flip leaves the skeleton's tree."""
    names, flip, parents = skeleton.joints, skeleton.flip, skeleton.parents
    flipped = flip[joint]
    return Diagnostic.make(
        "W313", f"the flip of skeleton `{skeleton.name}` does not map the skeleton onto itself", span,
        labels=(Label(span, f"`{names[joint]}` flips to `{names[flipped]}`"),),
        notes=(f"`{names[joint]}` hangs from `{names[parents[joint]]}`, which flips to "
               f"`{names[flip[parents[joint]]]}`; but `{names[flipped]}` hangs from "
               f"`{names[parents[flipped]] if parents[flipped] >= 0 else 'nothing (it is the root)'}`",
               "flip augmentation would average two different poses"),
        helps=("pair each left joint with the right joint at the same place in the tree",),
        candidates=(flip_candidate(skeleton, span),))


def _joints(value, span) -> tuple[str, ...]:
    """Joint names must be distinct strings."""
    if not isinstance(value, tuple) or not all(isinstance(name, str) for name in value):
        raise fail("E103", "`joints` must be a list of names in quotes", span)
    if len(set(value)) != len(value):
        raise fail("E104", "a joint name appears twice", span)
    return value


def _index(value, joints, span, allow_root=False) -> int:
    """A joint given by name or index."""
    if isinstance(value, str):
        if value not in joints:
            raise fail("E100", f"no joint named `{value}`", span)
        return joints.index(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if (allow_root and value == -1) or 0 <= value < len(joints):
            return value
    raise fail("E214", f"`{value}` is not a joint of this skeleton", span)


def _pair(pair, joints, span) -> tuple[int, int]:
    """A (left, right) pair of joints."""
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise fail("E103", "each pair is `(left, right)`", span)
    return _index(pair[0], joints, span), _index(pair[1], joints, span)


def _check_tree(parents, span) -> None:
    """Exactly one root, and following parents from any joint reaches it (no cycles)."""
    roots = [index for index, parent in enumerate(parents) if parent == -1]
    if len(roots) != 1:
        raise fail("E105", f"a skeleton needs exactly one root (parent -1), found {len(roots)}", span)
    for start in range(len(parents)):
        seen, joint = set(), start
        while joint != -1:
            if joint in seen:
                raise fail("E105", f"the parents of joint {start} form a cycle", span)
            seen.add(joint)
            joint = parents[joint]


def _check_flip(skeleton: Skeleton, span) -> None:
    """The flip permutation must be an involution: no joint may appear in two pairs."""
    used = [joint for pair in skeleton.pairs for joint in pair]
    if len(set(used)) != len(used):
        raise fail("E215", "a joint appears in more than one left/right pair, so the flip is not a permutation", span)
    flip = skeleton.flip
    if any(flip[flip[index]] != index for index in range(skeleton.J)):
        raise fail("E215", "the flip permutation is not an involution", span)
