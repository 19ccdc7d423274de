"""The model's root forward: graph inputs from its signature, its facts, and its named outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poseir.syntax import ast
from poseir.elaborate.builder import CallSite, dim_value
from poseir.diagnostics.record import Diagnostic, DiagnosticError, fail
from poseir.ir.dims import Dim
from poseir.ir.facts import Facts
from poseir.ir.graph import Graph, TensorType, Value
from poseir.ops.registry import lookup
from poseir.elaborate.scope import Frame
from poseir.elaborate.values import POISON, ModuleInstance, Poison, Tensor, kind_of

if TYPE_CHECKING:
    from poseir.elaborate.expressions import ExpressionEvaluator
    from poseir.elaborate.forwards import ForwardRunner
    from poseir.elaborate.state import ElaborationState


class RootForward:
    """Turns the root module's forward into a graph: typed inputs, the facts, named outputs.

    Interface: `run` (the whole flow's graph, or None). Declared dims in the input types become
    the graph's symbols; the forward itself runs through the forward runner.
    """

    def __init__(self, state: ElaborationState, evaluator: ExpressionEvaluator, forwards: ForwardRunner):
        self.state = state
        self.evaluator = evaluator
        self.forwards = forwards
        self.root_dims: dict[str, Dim] = {}

    def run(self, root: ModuleInstance, declaration: ast.ModelDecl, mode_optional: bool = False) -> Graph | None:
        """Create graph inputs from the root forward's signature, run it, and type the outputs.

        With `mode_optional`, a root without a forward for this mode (but with one for the other)
        gives no graph and no diagnostic.
        """
        if root.broken:
            return None
        mode = self.state.mode
        if mode_optional and mode not in root.forwards and None not in root.forwards and root.forwards:
            return None
        forward = self.forwards.select_forward(root, declaration.span)
        if forward is None:
            return None
        decl, scope = forward
        frame = Frame(scope.child(), "forward", root, False)
        frame.dims = {}
        self.state.builder.facts = self.root_facts(decl, frame)
        arguments = []
        for param in self.forwards.active(decl.params):
            arguments.append(self.root_input(param, frame))
        try:
            results = self.forwards.execute_forward(root, decl, frame, arguments, declaration.span)
        except DiagnosticError as error:
            self.state.diagnostics.append(error.diagnostic)
            return None
        return self.state.builder.finish(self.name_outputs(decl, results))

    def root_facts(self, decl: ast.Forward, frame: Frame) -> Facts:
        """Facts from `dim ... where` declarations and the root forward's `where` clause."""
        for name, span in self.state.program.dims.items():
            frame.dims[name] = Dim.symbol(name)
        facts = type(self.state.builder.facts)()  # logged or not, as the elaborator chose
        program = self.state.program
        relations = [(fact, Frame(unit.scope, "file", dims=frame.dims)) for fact, unit in program.dim_facts]
        relations += [(fact, frame) for fact in decl.facts if fact.mode in (None, self.state.mode)]
        for relation, relation_frame in relations:
            try:
                facts = self.add_fact(facts, relation, relation_frame)
            except DiagnosticError as error:
                self.state.diagnostics.append(error.diagnostic)
        frame.dims = {}
        return facts

    def add_fact(self, facts: Facts, relation: ast.Relation, frame: Frame) -> Facts:
        """Evaluate `T >= 243` or `T % 3 == 0` into the facts."""
        if isinstance(relation.left, ast.Binary) and relation.left.op == "%":
            modulus = dim_value(self.evaluator.evaluate(relation.left.right, frame))
            if not isinstance(modulus, int):
                raise fail("E105", "a `where` fact can only take a remainder by a constant", relation.span,
                           helps=(f"declare a new dim and write `{self.state.source_text(relation.left.left)} == "
                                  f"{self.state.source_text(relation.left.right)} * K` instead",))
        left = self.evaluator.evaluate(relation.left, frame)
        right = self.evaluator.evaluate(relation.right, frame)
        for side, node in ((left, relation.left), (right, relation.right)):
            if isinstance(side, bool) or not isinstance(side, (int, Dim)):
                raise fail("E103", f"a `where` fact compares dims, found {kind_of(side)}", node.span)
        if isinstance(relation.left, ast.Binary) and relation.left.op == "%" and relation.op == "==":
            base = self.evaluator.evaluate(relation.left.left, frame)
            modulus = self.evaluator.evaluate(relation.left.right, frame)
            if isinstance(modulus, int) and isinstance(right, int):
                return facts.with_modulus(Dim.of(base), modulus, right)
        return facts.with_relation(Dim.of(left), relation.op, Dim.of(right))

    def root_input(self, param: ast.ForwardParam, frame: Frame) -> Tensor | Poison:
        """A graph input whose dims are the declared symbols (`B`, `T`) or hyper-parameter values."""
        if param.type is None:
            self.state.diagnostics.append(Diagnostic.make(
                "E105", f"the model input `{param.name}` needs a type such as `f32[B, T, 17, 2]`", param.span))
            return POISON
        try:
            type_ = self.declared_root_type(param.type, frame)
        except DiagnosticError as error:
            self.state.diagnostics.append(error.diagnostic)
            return POISON
        names = tuple(dim.id if isinstance(dim, ast.Name) else "" for dim in param.type.dims)
        return self.state.builder.add_input(param.name, type_, param.span, names)

    def declared_root_type(self, node: ast.TensorTypeExpr, frame: Frame) -> TensorType:
        """Evaluate a root input type; declared dims become symbols (and are recorded with spans)."""
        dims = []
        for dim in node.dims:
            if isinstance(dim, ast.EllipsisItem):
                raise fail("E105", "a model input needs every dim spelled out; `...` is for module inputs", dim.span)
            named = isinstance(dim, ast.Name)
            declared = (dim.id in self.state.program.dims or self.state.standalone) if named else False
            if isinstance(dim, ast.Name) and declared and dim.id not in frame.scope:
                if dim.id not in self.root_dims:
                    self.root_dims[dim.id] = Dim.symbol(dim.id)
                    self.state.builder.symbols.append((dim.id, dim.span))
                frame.dims[dim.id] = self.root_dims[dim.id]
            value = dim_value(self.evaluator.evaluate(dim, frame))
            if isinstance(value, bool) or not isinstance(value, (int, Dim)):
                raise fail("E103", f"a dim must be an int or a symbol, found {kind_of(value)}", dim.span)
            dims.append(self.state.builder.facts.normalize(Dim.of(value)))
        return TensorType(node.dtype, tuple(dims))

    def name_outputs(self, decl: ast.Forward, results) -> list[Value]:
        """Graph outputs named as declared (`pose`, `loss`), or `output`, `output_1`, ..."""
        results = list(results) if isinstance(results, tuple) else [results]
        outputs = self.forwards.active(decl.outputs) if decl.outputs is not None else []
        names = [output.name for output in outputs] or (
            ["output"] if len(results) == 1 else [f"output_{index}" for index in range(len(results))])
        values = []
        for name, result in zip(names, results):
            if not isinstance(result, Tensor):
                if not isinstance(result, Poison):
                    self.state.diagnostics.append(Diagnostic.make(
                        "E103", f"the model output `{name}` must be a tensor, found {kind_of(result)}", decl.span))
                continue
            values.append(self.output_value(name, result))
        return values

    def output_value(self, name: str, tensor: Tensor) -> Value:
        """Rename the producing node's value to the output name, or add an identity node."""
        producer_is_node = any(tensor.name in node.outputs for node in self.state.builder.nodes)
        taken = name in self.state.builder.values
        if producer_is_node and not taken and not tensor.name.startswith("%"):
            self.state.builder.rename(tensor.name, name)
            return self.state.builder.values[name]
        if taken:
            name = self.state.builder.fresh_name(name)
        site = CallSite(tensor.span)
        (copy,) = self.state.builder.emit(lookup("identity"), [tensor], {}, site)
        self.state.builder.rename(copy.name, name)
        return self.state.builder.values[name]
