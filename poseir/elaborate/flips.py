"""The left/right flip a skeleton's tree implies, to repair pairs that do not map the tree onto itself (W313).

A mirror maps the skeleton onto itself: at every joint, two branches that are the same shape trade
places (left and right arms, legs, eyes), and everything on them follows. The flip the tree implies
swaps every such pair of branches; it is the repair when it is unambiguous (no joint with three
branches of one shape), moves as many joints as the user's pairs do, and each of its pairs is written
the user's way round (the side most of the user's first joints sit on comes first).
"""

from __future__ import annotations

import re

from poseir.diagnostics.record import Edit, Fix


def tree_flip(parents: tuple[int, ...]) -> dict[int, int] | None:
    """Joint -> mirrored joint for every joint on a swapped branch, or None when the tree's symmetry is ambiguous."""
    children: dict[int, list[int]] = {joint: [] for joint in range(len(parents))}
    for joint, parent in enumerate(parents):
        if parent >= 0:
            children[parent].append(joint)
    shapes: dict[int, str] = {}
    for joint in _post_order(parents, children):
        shapes[joint] = "(" + "".join(sorted(shapes[child] for child in children[joint])) + ")"
    mapping: dict[int, int] = {}
    for joint in range(len(parents)):
        groups: dict[str, list[int]] = {}
        for child in children[joint]:
            groups.setdefault(shapes[child], []).append(child)
        for group in groups.values():
            if len(group) > 2:
                return None
            if len(group) == 2 and group[0] not in mapping:
                if not _match(group[0], group[1], children, shapes, mapping):
                    return None
    return mapping


def _post_order(parents, children) -> list[int]:
    """Joints with every child before its parent."""
    root = parents.index(-1)
    order, stack = [], [root]
    while stack:
        joint = stack.pop()
        order.append(joint)
        stack.extend(children[joint])
    return order[::-1]


def _match(first: int, second: int, children, shapes, mapping: dict) -> bool:
    """Map two branches of the same shape onto each other, child by child; False when that is ambiguous."""
    mapping[first], mapping[second] = second, first
    mine, theirs = sorted(children[first], key=shapes.get), sorted(children[second], key=shapes.get)
    kinds = [shapes[child] for child in mine]
    if len(set(kinds)) != len(kinds):
        return False  # two same-shaped children under one branch: which goes where is not decided
    return all(_match(left, right, children, shapes, mapping) for left, right in zip(mine, theirs))


def oriented_pairs(flip: dict[int, int], firsts: set[int], parents: tuple[int, ...]) -> list[tuple[int, int]]:
    """The flip's pairs, each with the joint on the side holding more of `firsts` first, sorted by that joint."""
    pairs = []
    for joint, mirror in flip.items():
        if joint < mirror:
            side_joint, side_mirror = _branch(joint, flip, parents), _branch(mirror, flip, parents)
            mine = sum(1 for first in firsts if _below(first, side_joint, parents))
            theirs = sum(1 for first in firsts if _below(first, side_mirror, parents))
            pairs.append((joint, mirror) if mine >= theirs else (mirror, joint))
    return sorted(pairs)


def _branch(joint: int, flip: dict[int, int], parents) -> int:
    """The outermost swapped joint above `joint` (where its side of the mirror starts)."""
    top = joint
    while parents[top] >= 0 and parents[top] in flip and flip[parents[top]] != parents[top]:
        top = parents[top]
    return top


def _below(joint: int, top: int, parents) -> bool:
    """Whether `joint` is `top` or hangs from it."""
    while joint >= 0:
        if joint == top:
            return True
        joint = parents[joint]
    return False


def flip_candidate(skeleton, span):
    """A deferred candidate rewriting `pairs = [...]` to the flip the tree implies (see the module doc)."""

    def build(index) -> list:
        flip = tree_flip(skeleton.parents)
        if flip is None or len(flip) != 2 * len(skeleton.pairs):
            return []
        pairs = oriented_pairs(flip, {left for left, _ in skeleton.pairs}, skeleton.parents)
        text = index.text(span) or ""
        quote = re.search(r"[\"']", text)
        if quote is not None:
            mark = quote.group()
            written = [f"({mark}{skeleton.joints[a]}{mark}, {mark}{skeleton.joints[b]}{mark})" for a, b in pairs]
        else:
            written = [f"({a}, {b})" for a, b in pairs]
        replacement = "[" + ", ".join(written) + "]"
        return [Fix("pair each joint with its mirror in the tree", (Edit(span, replacement),), safe=False)]

    return build
