"""Target profiles: what a constrained runtime accepts, as data, and the legalization that gets a graph there.

A profile is a TOML file of rules (`passes/profiles/*.toml` ship with poseir; a user passes a path
to their own). `legalize(graph, profile, dims)` runs the rewrites the rules ask for — fixing dims,
lowering stepped slices and high-rank tensors, making broadcasting explicit, normalizing axes —
then checks every rule on the result: what could not be legalized is E420 at the op's `.pose`
line, naming the rule it breaks. The export options (`explicit_shapes`, `positive_axes`) tell the
ONNX backend what the file itself must avoid.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from poseir.diagnostics.record import Diagnostic, DiagnosticError, Label, has_errors
from poseir.ir.graph import Graph

# Every rule a profile may set, with its meaning when absent.
RULES = {
    "static": False,  # every dim fixed by --dim
    "max_rank": None,  # no tensor of higher rank
    "max_matmul_rank": None,  # batched matmul operands of at most this rank
    "explicit_broadcast": False,  # elementwise operands of equal shape (rank-0 scalars aside)
    "negative_axes": True,  # whether negative axis attributes are allowed
    "reshape_placeholders": True,  # whether Reshape targets may hold -1 or 0
    "stepped_slices": True,  # whether slices with a step above 1 are allowed
    "innermost_nonunit": None,  # only the innermost this-many axes may exceed 1
    "batch_reduction": True,  # whether reductions over axis 0 are allowed
}


@dataclass(frozen=True)
class Profile:
    """A named set of rules."""

    name: str
    description: str
    rules: dict = field(default_factory=dict)

    def rule(self, name: str):
        """The value of a rule, or its default when the profile does not set it."""
        return self.rules.get(name, RULES[name])

    @property
    def set_rules(self) -> dict:
        """Only the rules the profile sets."""
        return {name: value for name, value in self.rules.items() if value != RULES[name]}


def builtin_names() -> list[str]:
    """The profiles shipped with poseir."""
    folder = resources.files("poseir.passes").joinpath("profiles")
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".toml"))


def load_profile(name_or_path: str) -> Profile:
    """A shipped profile by name, or a TOML file by path; E106 for anything else."""
    if name_or_path in builtin_names():
        text = resources.files("poseir.passes").joinpath("profiles", f"{name_or_path}.toml").read_text()
        return _parse(text, name_or_path)
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        try:
            return _parse(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as error:
            raise _usage(f"cannot read the profile `{path}`: {error}")
    raise _usage(f"no profile called `{name_or_path}`", helps=(
        f"profiles: {', '.join(builtin_names())}, or the path of a .toml file (see docs/passes.md)",))


def _parse(text: str, where: str) -> Profile:
    """A profile from TOML text; every rule must be known and of the right type."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _usage(f"the profile `{where}` is not valid TOML: {error}")
    rules = data.get("rules", {})
    if not isinstance(rules, dict):
        raise _usage(f"the profile `{where}` needs a [rules] table")
    for name, value in rules.items():
        if name not in RULES:
            raise _usage(f"the profile `{where}` has an unknown rule `{name}`", helps=(
                "rules: " + ", ".join(RULES),))
        wanted = int if name in ("max_rank", "max_matmul_rank", "innermost_nonunit") else bool
        if not isinstance(value, wanted) or (wanted is int and (isinstance(value, bool) or value < 1)):
            raise _usage(f"the rule `{name}` of `{where}` must be {'a positive integer' if wanted is int else 'true or false'}")
    return Profile(str(data.get("name", where)), str(data.get("description", "")), dict(rules))


def _usage(message: str, helps: tuple = ()) -> DiagnosticError:
    """A problem with the command line's profile: E106."""
    return DiagnosticError(Diagnostic.make("E106", message, None, helps=helps))


def parse_dims(settings: list[str]) -> dict[str, int]:
    """`--dim B=1 --dim T=243` as a dict; E106 for a malformed one."""
    values = {}
    for text in settings:
        name, _, raw = text.partition("=")
        name = name.strip()
        try:
            value = int(raw.strip())
        except ValueError:
            value = 0
        if not name.isidentifier() or value < 1:
            raise _usage(f"`--dim {text}` must look like `NAME=VALUE` with a positive integer, e.g. `--dim T=243`")
        values[name] = value
    return values


# --------------------------------------------------------------------------- the legalization driver


@dataclass(frozen=True)
class ExportOptions:
    """What the ONNX file itself must avoid, beyond the graph's own form."""

    explicit_shapes: bool = False  # every Reshape target written out: no -1, no 0
    positive_axes: bool = False  # no negative axis attribute or axes input
    explicit_broadcast: bool = False  # no elementwise node broadcasting implicitly


def export_options(profile: Profile | None) -> ExportOptions:
    """The export options a profile asks for."""
    if profile is None:
        return ExportOptions()
    return ExportOptions(explicit_shapes=not profile.rule("reshape_placeholders"),
                         positive_axes=not profile.rule("negative_axes"),
                         explicit_broadcast=bool(profile.rule("explicit_broadcast")))


def legalize(graph: Graph, profile: Profile, dims: dict[str, int]) -> tuple[Graph, list[Diagnostic]]:
    """The graph rewritten for the profile, and E420/E421 for what could not be."""
    from poseir.passes.dead_code import eliminate_dead_code
    from poseir.passes.explicit_broadcast import explicit_broadcast
    from poseir.passes.fold_constants import fold_constants
    from poseir.passes.identities import eliminate_identities
    from poseir.passes.lower_rank import lower_rank
    from poseir.passes.positive_axes import positive_axes
    from poseir.passes.push_selects import push_selects
    from poseir.passes.simplify_layout import simplify_layout
    from poseir.passes.specialize_dims import specialize_dims
    from poseir.passes.unstride_slices import unstride_slices

    diagnostics: list[Diagnostic] = []
    if profile.rule("static"):
        missing = sorted(_symbols(graph) - set(dims))
        if missing:
            return graph, [_missing_dims(graph, profile, missing)]
    if dims:
        graph, found, _ = specialize_dims(graph, dims)
        diagnostics += found
        if has_errors(found):
            return graph, diagnostics
        # Sizes are numbers now: ramps and size arithmetic become constants.
        graph, _, _ = fold_constants(graph)
    steps = []
    if not profile.rule("stepped_slices"):
        steps.append(lambda g: unstride_slices(g, profile.name))
    if profile.rule("max_rank") or profile.rule("max_matmul_rank"):
        steps += [push_selects, eliminate_dead_code,
                  lambda g: lower_rank(g, profile.rule("max_rank"), profile.rule("max_matmul_rank"), profile.name)]
    steps += [simplify_layout, eliminate_identities]
    if profile.rule("explicit_broadcast"):
        steps.append(explicit_broadcast)
    if not profile.rule("negative_axes"):
        steps.append(positive_axes)
    steps.append(eliminate_dead_code)
    for step in steps:
        graph, found, _ = step(graph)
        diagnostics += found
    return graph, diagnostics + check_rules(graph, profile)


def _symbols(graph: Graph) -> set[str]:
    """The symbolic dims of the graph's inputs."""
    return {symbol for value in graph.inputs for dim in value.type.shape for symbol in dim.symbols}


def _missing_dims(graph: Graph, profile: Profile, missing: list[str]) -> Diagnostic:
    """E420: a static profile needs a value for every symbolic dim."""
    span = graph.inputs[0].span if graph.inputs else None
    example = " ".join(f"--dim {name}=..." for name in missing)
    return Diagnostic.make("E420", f"`{profile.name}` needs every dim fixed; {', '.join(missing)} "
                           f"{'has' if len(missing) == 1 else 'have'} no value", span,
                           labels=(Label(span, "the model's inputs"),) if span else (),
                           helps=(f"give the sizes: `{example}`",))


def check_rules(graph: Graph, profile: Profile) -> list[Diagnostic]:
    """E420 for every op of the legalized graph that still breaks one of the profile's rules."""
    from poseir.passes.lower_rank import cannot_legalize

    found = []
    max_rank, innermost = profile.rule("max_rank"), profile.rule("innermost_nonunit")
    for node in graph.nodes:
        types = [graph.values[name].type for name in (*node.inputs, *node.outputs) if name]
        if max_rank and any(type_.rank > max_rank for type_ in types):
            found.append(cannot_legalize(node, profile.name, f"no tensor above rank {max_rank}",
                                         "a value keeps more axes"))
        elif innermost and any(_outer_nonunit(type_, innermost) for type_ in types):
            found.append(cannot_legalize(node, profile.name, f"only the innermost {innermost} axes may exceed 1",
                                         "a value has a leading axis above 1 (is the batch fixed to 1?)"))
        elif not profile.rule("batch_reduction") and _reduces_batch(graph, node):
            found.append(cannot_legalize(node, profile.name, "no reduction over the batch axis",
                                         "this reduces axis 0"))
    return _unique(found)


def _outer_nonunit(type_, innermost: int) -> bool:
    """A value with an axis above 1 outside its innermost `innermost` axes."""
    return any(not (size.is_const and size.value == 1) for size in type_.shape[:max(type_.rank - innermost, 0)])


def _reduces_batch(graph: Graph, node) -> bool:
    """A reduction or softmax over axis 0 of a tensor with a batch axis."""
    if node.op not in ("sum", "mean", "amax", "norm", "var", "softmax", "log_softmax"):
        return False
    rank = graph.values[node.inputs[0]].type.rank
    dim = node.attr("dim")
    axes = set(range(rank)) if dim is None else {axis % rank for axis in (dim if isinstance(dim, tuple) else (dim,))}
    return rank >= 2 and 0 in axes


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One report per (code, span, message)."""
    seen, result = set(), []
    for diagnostic in diagnostics:
        key = (diagnostic.code, diagnostic.span, diagnostic.message)
        if key not in seen:
            seen.add(key)
            result.append(diagnostic)
    return result
