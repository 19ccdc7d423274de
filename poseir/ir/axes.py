"""Axis identity: every axis of a tensor type is an ordered product of atoms.

A tensor type that is only a list of sizes forgets which axis is which once two axes are merged
(`(B·F)`), and cannot tell two axes of equal size apart. An atom remembers: it has an identity
(where it was born — a graph input's axis, a parameter's axis, an op that makes a new axis, or a
split of another atom) and a size. `[B, (T·J), C]` is three axes over four atoms; viewing it as
`[B, J, T, C]` asks for J before T, which the data does not hold, however the sizes coincide.

Size-1 axes hold no atoms (the empty product), so they can appear and vanish anywhere. Reshape
legality, fixes, lints, hover and legalization read atoms, never size coincidences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from poseir.ir.dims import Dim, Tri
from poseir.ir.facts import Facts


@dataclass(frozen=True)
class Atom:
    """One factor of an axis: equal keys are the same atom (the size and name follow the key)."""

    key: tuple
    size: Dim = field(compare=False)
    name: str = field(compare=False)

    def __str__(self) -> str:
        return self.name


Axis = tuple[Atom, ...]
Axes = tuple[Axis, ...]


# --------------------------------------------------------------------------- where atoms are born


def dim_atom(symbol: str) -> Atom:
    """The atom of a declared dim (`B`, `T`): the same in every input that spells it."""
    return Atom(("dim", symbol), Dim.symbol(symbol), symbol)


def born(owner: str, axis: int, size: Dim, name: str | None = None) -> Atom:
    """A new atom made at value `owner`'s axis `axis` (an input, a parameter, or an op's new axis)."""
    return Atom(("born", owner, axis), size, name or str(size))


def axes_of_shape(owner: str, shape: Sequence[Dim], facts: Facts | None = None) -> Axes:
    """Atoms for a declared shape: declared dims are shared atoms, other sizes new ones, size 1 none."""
    axes = []
    for axis, size in enumerate(shape):
        if _is_one(size, facts):
            axes.append(())
        elif len(size.symbols) == 1 and size == Dim.symbol(next(iter(size.symbols))):
            axes.append((dim_atom(next(iter(size.symbols))),))
        else:
            axes.append((born(owner, axis, size),))
    return tuple(axes)


def named(axes: Axes, names: Sequence[str]) -> Axes:
    """New atoms shown by their declaration's names (`J` rather than `17`); shared dim atoms keep theirs."""
    renamed = []
    for axis, name in zip(axes, [*names, *[None] * (len(axes) - len(names))]):
        if name and len(axis) == 1 and axis[0].key[0] == "born" and name.isidentifier():
            # Axes declared with the same name (`J` in two inputs) are the same kind of axis.
            axis = (Atom(("name", name, axis[0].size), axis[0].size, name),)
        renamed.append(axis)
    return tuple(renamed)


def _is_one(size: Dim, facts: Facts | None) -> bool:
    """Whether a size is 1 (provably, under the facts when given)."""
    if size.is_const:
        return size.value == 1
    return facts is not None and facts.provably_equal(size, Dim.of(1))


# --------------------------------------------------------------------------- splitting and merging


def split(atom: Atom, sizes: Sequence[Dim]) -> tuple[Atom, ...]:
    """`atom` as consecutive pieces of the given sizes (outermost first), each an atom of its own."""
    sizes = tuple(sizes)
    return tuple(Atom(("split", atom.key, sizes, index), size, _piece_name(atom, size, index, len(sizes)))
                 for index, size in enumerate(sizes))


def _piece_name(atom: Atom, size: Dim, index: int, count: int) -> str:
    """A piece is shown by its size, or as `C/2` when it splits a named atom of unknown factors."""
    return str(size)


def canonical(group: Sequence[Atom]) -> Axis:
    """A run of atoms with every complete, in-order set of split pieces merged back into its parent."""
    atoms = list(group)
    changed = True
    while changed:
        changed = False
        for start, atom in enumerate(atoms):
            if atom.key[0] != "split" or atom.key[3] != 0:
                continue
            parent_key, sizes = atom.key[1], atom.key[2]
            end = start + len(sizes)
            run = atoms[start:end]
            if len(run) == len(sizes) and all(piece.key == ("split", parent_key, sizes, index)
                                               for index, piece in enumerate(run)):
                atoms[start:end] = [_parent(run, parent_key)]
                changed = True
                break
    return tuple(atoms)


def _parent(pieces: Sequence[Atom], key: tuple) -> Atom:
    """The atom whose complete split `pieces` are (its size is their product)."""
    size = Dim.of(1)
    for piece in pieces:
        size = size * piece.size
    return Atom(key, size, _name_of_key(key, size))


def _name_of_key(key: tuple, size: Dim) -> str:
    """The display name an atom of this key has."""
    if key[0] in ("dim", "name"):
        return key[1]
    return str(size)


def is_named(atom: Atom) -> bool:
    """Whether the atom has a name of its own (a declared dim or a named axis), not just a size."""
    return atom.key[0] in ("dim", "name")


# --------------------------------------------------------------------------- reading a reshape


def flat(axes: Axes) -> list[Atom]:
    """The atoms of every axis, in memory order."""
    return [atom for axis in axes for atom in axis]


def read(atoms: Sequence[Atom], sizes: Sequence[Dim], facts: Facts) -> Axes | None:
    """The target axes as contiguous runs of `atoms` (splitting an atom where the sizes require), or None.

    This is what a reshape can mean without moving data: each target axis is a product of
    neighbouring atoms, or a factor of one. Size-1 target axes take no atoms.
    """
    queue = list(atoms)
    groups: list[Axis] = []
    for size in sizes:
        size = facts.normalize(size)
        if facts.provably_equal(size, Dim.of(1)):
            groups.append(())
            continue
        group = _take(queue, size, facts)
        if group is None:
            return None
        groups.append(canonical(group))
    return tuple(groups) if not queue else None


def _take(queue: list[Atom], size: Dim, facts: Facts) -> list[Atom] | None:
    """Atoms (or the outer piece of one) from the front of `queue` whose sizes multiply to `size`."""
    group: list[Atom] = []
    need = size
    while queue:
        head = queue[0]
        have = facts.normalize(head.size)
        if facts.provably_equal(have, need):
            group.append(queue.pop(0))
            return group
        rest = _exact_quotient(need, have, facts)
        if rest is not None:
            group.append(queue.pop(0))
            need = rest
            continue
        inner = _exact_quotient(have, need, facts)
        if inner is None:
            return None
        outer, queue[0] = split(head, (need, inner))
        group.append(outer)
        return group
    return None


def _exact_quotient(total: Dim, part: Dim, facts: Facts) -> Dim | None:
    """`total / part` when it is provably a whole size other than 1, else None."""
    quotient = facts.normalize(total).exact_div(facts.normalize(part))
    if quotient is None or facts.provably_equal(quotient, Dim.of(1)):
        return None
    if quotient.is_const and quotient.value < 1:
        return None
    return facts.normalize(quotient)


# --------------------------------------------------------------------------- showing atoms


def axis_text(axis: Axis, size: Dim) -> str:
    """`B`, `(B·T)`, or the size for an axis without atoms."""
    if not axis:
        return str(size)
    if len(axis) == 1:
        return axis[0].name
    return "(" + "·".join(atom.name for atom in axis) + ")"


def describe(dtype: str, shape: Sequence[Dim], axes: Axes | None) -> str:
    """`f32[(B·F), J, C]`: the type with each axis shown by its atoms."""
    if axes is None:
        return f"{dtype}[{', '.join(str(size) for size in shape)}]"
    return f"{dtype}[{', '.join(axis_text(axis, size) for axis, size in zip(axes, shape))}]"


def inconsistency(shape: Sequence[Dim], axes: Axes | None, facts: Facts) -> str | None:
    """Why `axes` cannot be the atoms of `shape` (a compiler bug), or None when every axis's atoms multiply to its size."""
    if axes is None:
        return "the type has no atoms"
    if len(axes) != len(shape):
        return f"{len(axes)} axes of atoms for a rank-{len(shape)} shape"
    for index, (axis, size) in enumerate(zip(axes, shape)):
        total = Dim.of(1)
        for atom in axis:
            total = total * atom.size
        if facts.equal(total, size) is Tri.NO:
            return f"axis {index} has size {size} but its atoms {axis_text(axis, size)} multiply to {total}"
    return None
