"""The profile-rule oracle (`onnx_rules`): every rule caught on a small hand-built ONNX model that
breaks it, silent on one that keeps it, and run on real poseir exports.

The fixtures are built with `onnx.helper` and pass `onnx.checker`, so a reported violation is
the rule's doing, never a malformed model's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnx_rules import RULES, describe, violations

FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def tensor(name: str, dims, elem_type=FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, dims)


def constant(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def node(op: str, inputs: list[str], outputs: list[str], name: str | None = None, **attributes) -> onnx.NodeProto:
    return helper.make_node(op, inputs, outputs, name=name or outputs[0], **attributes)


def model(nodes, inputs, outputs, initializers=(), *, opset: int = 17, value_info=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "fixture", inputs, outputs, list(initializers), value_info=list(value_info))
    result = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(result)
    return result


def only(found: list[str], *fragments: str) -> str:
    """The single violation, which must mention every fragment (the node name first)."""
    assert len(found) == 1, found
    for fragment in fragments:
        assert fragment in found[0], (fragment, found[0])
    return found[0]


def reshape(shape: list[int], target: list[int], *, opset: int = 17) -> onnx.ModelProto:
    return model([node("Reshape", ["x", "target"], ["y"], "reshape_node")], [tensor("x", shape)],
                 [tensor("y", target)], [constant("target", target)], opset=opset)


# --------------------------------------------------------------------------- max_rank


def test_max_rank_names_the_node_making_a_rank_five_tensor():
    message = only(violations(reshape([2, 3, 4, 5], [1, 2, 3, 4, 5]), {"max_rank": 4}),
                   "[max_rank]", "node 'reshape_node' (Reshape)", "rank 5 > 4", "[1, 2, 3, 4, 5]")
    assert message.startswith("[max_rank] node 'reshape_node'")
    assert violations(reshape([2, 3, 4, 5], [6, 4, 5, 1]), {"max_rank": 4}) == []


def test_max_rank_reads_graph_inputs_and_initializers():
    wide = model([node("Add", ["x", "w"], ["y"], "add")], [tensor("x", [1, 1, 1, 1, 2])],
                 [tensor("y", [1, 1, 1, 1, 2])], [numpy_helper.from_array(np.ones([1, 1, 1, 1, 2], np.float32), "w")])
    found = violations(wide, {"max_rank": 4})
    assert len(found) == 3, found
    assert any("graph input 'x' has rank 5" in message for message in found)
    assert any("initializer 'w' has rank 5" in message for message in found)
    assert any("node 'add' (Add) output 'y' has rank 5" in message for message in found)
    assert violations(wide, {"max_rank": 5}) == []


def test_max_rank_reports_a_rank_shape_inference_cannot_determine():
    # The target's length is a dim_param, so nobody knows the rank of the reshaped value.
    unknown = model([node("Reshape", ["x", "target"], ["y"], "dynamic_reshape"), node("Relu", ["y"], ["z"], "relu")],
                    [tensor("x", [2, 3]), tensor("target", ["N"], INT64)], [tensor("z", [6])])
    found = violations(unknown, {"max_rank": 4})
    assert found[0] == ("[max_rank] node 'dynamic_reshape' (Reshape) output 'y': ONNX shape inference "
                        "cannot determine its rank, so it may exceed 4")
    assert len(found) == 1, found  # `z` has the rank its declaration as a graph output gives it


def test_max_rank_ignores_the_files_own_value_info_for_ranks():
    # Opset 13 cannot type a reshape to a computed target; a declared rank does not make it known.
    pieces = [node("Reshape", ["x", "target"], ["y"], "copy"), node("Relu", ["y"], ["out"], "relu")]
    declared = model(pieces, [tensor("x", [2, 3]), tensor("target", [2], INT64)], [tensor("out", [2, 3])], opset=13,
                     value_info=[tensor("y", [2, 3])])
    found = violations(declared, {"max_rank": 4})
    only(found, "node 'copy' (Reshape) output 'y': ONNX shape inference cannot determine its rank")


def test_a_declaration_shape_inference_contradicts_is_reported():
    lying = model([node("Relu", ["x"], ["y"], "relu"), node("Relu", ["y"], ["z"], "relu2")], [tensor("x", [2, 3])],
                  [tensor("z", [2, 3])], value_info=[tensor("y", [2, 4])])
    message = only(violations(lying, {"max_rank": 4}), "[shape inference]", "relu")
    assert "rejects the file's value_info" in message


# --------------------------------------------------------------------------- max_matmul_rank


def matmul(left: list[int], right: list[int], out: list[int]) -> onnx.ModelProto:
    return model([node("MatMul", ["a", "b"], ["y"], "batched_matmul")], [tensor("a", left), tensor("b", right)],
                 [tensor("y", out)])


def test_max_matmul_rank_catches_a_four_d_batched_matmul():
    only(violations(matmul([2, 3, 4, 5], [5, 6], [2, 3, 4, 6]), {"max_matmul_rank": 3}),
         "[max_matmul_rank] node 'batched_matmul' (MatMul)", "input 'a' has rank 4 > 3")
    assert violations(matmul([3, 4, 5], [5, 6], [3, 4, 6]), {"max_matmul_rank": 3}) == []


def test_max_matmul_rank_counts_each_operand():
    found = violations(matmul([2, 3, 4, 5], [2, 3, 5, 6], [2, 3, 4, 6]), {"max_matmul_rank": 2})
    assert [message.split(": ")[1].split(" has")[0] for message in found] == ["input 'a'", "input 'b'"]


def test_gemm_is_rank_two():
    gemm = model([node("Gemm", ["a", "b"], ["y"], "gemm")], [tensor("a", [4, 5]), tensor("b", [5, 6])],
                 [tensor("y", [4, 6])])
    only(violations(gemm, {"max_matmul_rank": 1}), "node 'gemm' (Gemm)", "rank-2")
    assert violations(gemm, {"max_matmul_rank": 2}) == []


# --------------------------------------------------------------------------- explicit_broadcast


def elementwise(op: str, shapes: list, out, **attributes) -> onnx.ModelProto:
    names = [f"in{position}" for position in range(len(shapes))]
    types = [BOOL if op == "Where" and position == 0 else FLOAT for position in range(len(shapes))]
    return model([node(op, names, ["y"], "elementwise", **attributes)],
                 [tensor(name, shape, kind) for name, shape, kind in zip(names, shapes, types)], [tensor("y", out)])


@pytest.mark.parametrize("op, shapes, out", [
    ("Add", [[2, 3], [3]], [2, 3]),
    ("Mul", [[2, 3], [1, 3]], [2, 3]),
    ("Sub", [["B", 3], ["C", 3]], [None, 3]),
    ("Where", [[2, 3], [2, 3], [3]], [2, 3]),
    ("PRelu", [[2, 3, 4], [3, 1, 1]], [2, 3, 4]),
    ("Max", [[2, 3], [2, 3], [2, 1]], [2, 3]),
])
def test_explicit_broadcast_catches_implicit_broadcasting(op, shapes, out):
    only(violations(elementwise(op, shapes, out), {"explicit_broadcast": True}),
         f"[explicit_broadcast] node 'elementwise' ({op}) broadcasts implicitly")


@pytest.mark.parametrize("op, shapes, out", [
    ("Add", [[2, 3], [2, 3]], [2, 3]),
    ("Mul", [[2, 3], []], [2, 3]),  # a rank-0 scalar is allowed: every runtime takes one
    ("Pow", [["B", 3], []], ["B", 3]),
    ("Sub", [["B", 3], ["B", 3]], ["B", 3]),
    ("Where", [[2, 3], [2, 3], [2, 3]], [2, 3]),
    ("Sum", [[2, 3]], [2, 3]),
])
def test_explicit_broadcast_accepts_equal_shapes_and_scalars(op, shapes, out):
    assert violations(elementwise(op, shapes, out), {"explicit_broadcast": True}) == []


def two_slices(declared: list) -> onnx.ModelProto:
    """`s1 + s2`, two slices whose sizes ONNX cannot derive (their end is an input)."""
    nodes = [node("Slice", ["x", "zero", "end", "one"], ["s1"], "slice1"),
             node("Slice", ["x", "zero", "end", "one"], ["s2"], "slice2"), node("Add", ["s1", "s2"], ["y"], "add")]
    return model(nodes, [tensor("x", ["B", "T"]), tensor("end", [1], INT64)], [tensor("y", ["B", None])],
                 [constant("zero", [0]), constant("one", [1])], value_info=declared)


def test_explicit_broadcast_takes_sizes_onnx_cannot_derive_from_the_files_declarations():
    only(violations(two_slices([]), {"explicit_broadcast": True}), "node 'add' (Add) broadcasts implicitly")
    same = [tensor("s1", ["B", "T-1"]), tensor("s2", ["B", "T-1"])]
    assert violations(two_slices(same), {"explicit_broadcast": True}) == []
    different = [tensor("s1", ["B", "T-1"]), tensor("s2", ["B", "T-2"])]
    only(violations(two_slices(different), {"explicit_broadcast": True}), "node 'add'", "[B, T-1]", "[B, T-2]")


# --------------------------------------------------------------------------- negative_axes


def unary(op: str, shape, out, *, opset=17, extra=(), initializers=(), **attributes) -> onnx.ModelProto:
    return model([node(op, ["x", *extra], ["y"], "axis_node", **attributes)], [tensor("x", shape)],
                 [tensor("y", out)], initializers, opset=opset)


NEGATIVE_AXES = {  # name: (model with a negative axis, the same model with a positive one)
    "Softmax axis": lambda axis: unary("Softmax", [2, 3], [2, 3], axis=axis),
    "Concat axis": lambda axis: model([node("Concat", ["x", "x"], ["y"], "axis_node", axis=axis)],
                                      [tensor("x", [2, 3])], [tensor("y", [2, 6])]),
    "Transpose perm": lambda axis: unary("Transpose", [2, 3], [3, 2], perm=[axis, 0]),
    "Unsqueeze-11 axes attribute": lambda axis: unary("Unsqueeze", [2, 3], [2, 3, 1], opset=11, axes=[axis]),
    "Unsqueeze-13 axes input": lambda axis: unary("Unsqueeze", [2, 3], [2, 3, 1], extra=["axes"],
                                                  initializers=[constant("axes", [axis * 2])]),
    "ReduceMean-17 axes attribute": lambda axis: unary("ReduceMean", [2, 3], [2, 1], axes=[axis]),
    "ReduceMean-18 axes input": lambda axis: unary("ReduceMean", [2, 3], [2, 1], opset=18, extra=["axes"],
                                                   initializers=[constant("axes", [axis])]),
    "Slice axes input": lambda axis: unary("Slice", [2, 3], [2, 2], extra=["starts", "ends", "axes"],
                                           initializers=[constant("starts", [1]), constant("ends", [3]),
                                                         constant("axes", [axis])]),
}


@pytest.mark.parametrize("case", sorted(NEGATIVE_AXES))
def test_negative_axes_are_caught_in_attributes_and_constant_inputs(case):
    only(violations(NEGATIVE_AXES[case](-1), {"negative_axes": False}), "[negative_axes] node 'axis_node'",
         "negative axis")
    assert violations(NEGATIVE_AXES[case](1), {"negative_axes": False}) == []


def test_negative_axes_cannot_be_ruled_out_for_axes_computed_at_run_time():
    runtime = model([node("Unsqueeze", ["x", "axes"], ["y"], "unsqueeze")], [tensor("x", [2, 3]),
                    tensor("axes", [1], INT64)], [tensor("y", [2, 3, 1])])
    only(violations(runtime, {"negative_axes": False}), "node 'unsqueeze' (Unsqueeze)", "computed at run time")


def test_negative_axes_sees_through_constant_arithmetic():
    # Neg(1) is a -1 even though no initializer holds one.
    folded = model([node("Neg", ["one"], ["axes"], "negate"), node("Unsqueeze", ["x", "axes"], ["y"], "unsqueeze")],
                   [tensor("x", [2, 3])], [tensor("y", [2, 3, 1])], [constant("one", [1])])
    only(violations(folded, {"negative_axes": False}), "node 'unsqueeze'", "'axes' = [-1]")


# --------------------------------------------------------------------------- reshape_placeholders


@pytest.mark.parametrize("target", [[-1, 6], [0, 6], [2, 0, 3]])
def test_reshape_placeholders_in_a_constant_target(target):
    broken = model([node("Reshape", ["x", "target"], ["y"], "reshape_node")], [tensor("x", [2, 6])],
                   [tensor("y", [2, 6] if len(target) == 2 else [2, 2, 3])], [constant("target", target)])
    only(violations(broken, {"reshape_placeholders": False}), "[reshape_placeholders] node 'reshape_node' (Reshape)",
         f"'target' = [{', '.join(map(str, target))}]")
    assert violations(reshape([2, 6], [3, 4]), {"reshape_placeholders": False}) == []


def computed_target(last: list[int]) -> onnx.ModelProto:
    """Reshape to [x.shape[0], *last]: a target assembled at run time from a size and a constant."""
    nodes = [node("Shape", ["x"], ["shape"], "shape"), node("Gather", ["shape", "zero"], ["batch"], "batch"),
             node("Unsqueeze", ["batch", "zero"], ["batch1"], "batch1"),
             node("Concat", ["batch1", "last"], ["target"], "target", axis=0),
             node("Reshape", ["x", "target"], ["y"], "reshape_node")]
    return model(nodes, [tensor("x", ["B", 2, 3])], [tensor("y", ["B", 6])], [constant("zero", [0]),
                 constant("last", last)])


def test_reshape_placeholders_in_a_constant_piece_of_a_computed_target():
    only(violations(computed_target([-1]), {"reshape_placeholders": False}), "node 'reshape_node'",
         "the piece 'last' of its shape 'target' = [-1]")
    # The 0 indexing the Shape and the 0 of the Unsqueeze axes are not pieces of the target.
    assert violations(computed_target([6]), {"reshape_placeholders": False}) == []


def test_reshape_placeholders_made_by_constant_arithmetic():
    folded = model([node("Neg", ["one"], ["minus_one"], "negate"),
                    node("Concat", ["two", "minus_one"], ["target"], "target", axis=0),
                    node("Reshape", ["x", "target"], ["y"], "reshape_node")],
                   [tensor("x", [2, 6])], [tensor("y", [2, 6])], [constant("one", [1]), constant("two", [2])])
    only(violations(folded, {"reshape_placeholders": False}), "node 'reshape_node'", "'target' = [2, -1]")


# --------------------------------------------------------------------------- stepped_slices


def sliced(steps=None, *, runtime: bool = False) -> onnx.ModelProto:
    """x[:, 0:6:steps] on x: f32[2, 6], with constant steps, steps from an input, or none."""
    inputs = ["x", "starts", "ends", "axes"] + (["steps"] if steps is not None or runtime else [])
    initializers = [constant("starts", [0]), constant("ends", [6]), constant("axes", [1])]
    initializers += [constant("steps", steps)] if steps is not None else []
    declared = [tensor("x", [2, 6])] + ([tensor("steps", [1], INT64)] if runtime else [])
    return model([node("Slice", inputs, ["y"], "strided")], declared, [tensor("y", [2, None])], initializers)


def test_stepped_slices_are_caught():
    only(violations(sliced([2]), {"stepped_slices": False}), "[stepped_slices] node 'strided' (Slice)", "= [2]")
    only(violations(sliced(runtime=True), {"stepped_slices": False}), "node 'strided'", "computed at run time")
    assert violations(sliced([1]), {"stepped_slices": False}) == []
    assert violations(sliced(), {"stepped_slices": False}) == []


# --------------------------------------------------------------------------- static


def test_static_forbids_shape_and_size_ops():
    for op in ("Shape", "Size"):
        reading = model([node(op, ["x"], ["y"], "reader")], [tensor("x", [2, 3])],
                        [tensor("y", [2] if op == "Shape" else [], INT64)])
        only(violations(reading, {"static": True}), f"[static] node 'reader' ({op}) reads a size at run time")


SIZE_OPS = {  # op: (its inputs, the value of its size input `size`, its output shape)
    "Reshape": (["x", "size"], [3, 2], [3, 2]),
    "Expand": (["x", "size"], [4, 2, 3], [4, 2, 3]),
    "Tile": (["x", "size"], [2, 1], [4, 3]),
    "ConstantOfShape": (["size"], [2, 3], [2, 3]),
    "Range": (["zero", "size", "one"], 3, [3]),
}


@pytest.mark.parametrize("op", sorted(SIZE_OPS))
def test_static_wants_literal_size_inputs(op):
    inputs, value, out = SIZE_OPS[op]
    uses_x = "x" in inputs
    scalar = np.ndim(value) == 0

    def built(size_is_input: bool) -> onnx.ModelProto:
        declared = [tensor("x", [2, 3])] if uses_x else []
        initializers = [] if size_is_input else [constant("size", value)]
        if size_is_input:
            declared.append(tensor("size", [] if scalar else [len(value)], INT64))
        if op == "Range":
            initializers += [constant("zero", 0), constant("one", 1)]
        kind = INT64 if op == "Range" else FLOAT
        return model([node(op, inputs, ["y"], "sized")], declared, [tensor("y", out, kind)], initializers)

    only(violations(built(True), {"static": True}), "[static] node 'sized'", "input 'size' is not a constant",
         "a graph input")
    assert violations(built(False), {"static": True}) == []


def test_static_wants_literals_not_folded_arithmetic():
    folded = model([node("Concat", ["three", "two"], ["target"], "target", axis=0),
                    node("Reshape", ["x", "target"], ["y"], "reshape_node")],
                   [tensor("x", [2, 3])], [tensor("y", [3, 2])], [constant("three", [3]), constant("two", [2])])
    only(violations(folded, {"static": True}), "node 'reshape_node'", "made by node 'target' (Concat)")


def test_static_wants_numeric_dims_on_inputs_and_outputs():
    symbolic = model([node("Flatten", ["x"], ["y"], "flatten", axis=0)], [tensor("x", ["B", 3])], [tensor("y", [1, 6])])
    only(violations(symbolic, {"static": True}), "[static] graph input 'x' has non-numeric dims: [B, 3]")
    unknown = model([node("Relu", ["x"], ["y"], "relu")], [tensor("x", [2, 3])], [tensor("y", [None, 3])])
    only(violations(unknown, {"static": True}), "[static] graph output 'y' has non-numeric dims: [?, 3]")
    assert violations(reshape([2, 3], [3, 2]), {"static": True}) == []


# --------------------------------------------------------------------------- innermost_nonunit


def test_innermost_nonunit_catches_a_non_unit_outer_axis():
    only(violations(reshape([1, 3, 4, 5], [3, 1, 4, 5]), {"innermost_nonunit": 3}),
         "[innermost_nonunit] node 'reshape_node' (Reshape) output 'y' [3, 1, 4, 5]", "axis 0 is 3")
    assert violations(reshape([1, 3, 4, 5], [1, 1, 12, 5]), {"innermost_nonunit": 3}) == []
    assert violations(reshape([60], [3, 4, 5]), {"innermost_nonunit": 3}) == []


def test_innermost_nonunit_needs_numeric_sizes():
    symbolic = model([node("Flatten", ["x"], ["y"], "flatten", axis=1)], [tensor("x", ["B", 3, 4, 5])],
                     [tensor("y", ["B", 60])])
    only(violations(symbolic, {"innermost_nonunit": 3}), "graph input 'x' [B, 3, 4, 5]", "axis 0 is B")


# --------------------------------------------------------------------------- batch_reduction


def reduction(op: str, shape, out, *, opset=17, axes_input=None, scale=None, **attributes) -> onnx.ModelProto:
    extra = ["axes"] if axes_input is not None else ["scale"] if scale is not None else []
    initializers = [constant("axes", axes_input)] if axes_input is not None else []
    initializers += [numpy_helper.from_array(np.ones(scale, np.float32), "scale")] if scale is not None else []
    kind = INT64 if op.startswith("Arg") else FLOAT
    return model([node(op, ["x", *extra], ["y"], "reducer", **attributes)], [tensor("x", shape)],
                 [tensor("y", out, kind)], initializers, opset=opset)


BATCH_REDUCTIONS = [
    reduction("ReduceMean", [2, 3], [3], axes=[0], keepdims=0),
    reduction("ReduceMean", [2, 3], [1, 3], axes=[0], keepdims=1),
    reduction("ReduceMean", [2, 3], [1, 1], axes=[-2, 1]),
    reduction("ReduceSum", [2, 3], [1, 1], opset=13),  # no axes: every axis
    reduction("ReduceMean", [2, 3], [1, 3], opset=18, axes_input=[-2]),
    reduction("ReduceMax", [2, 3], [], opset=18, keepdims=0),
    reduction("ArgMax", [2, 3], [1, 3]),  # the default axis is 0
    reduction("Softmax", [2, 3], [2, 3], axis=0),
    reduction("LogSoftmax", [2, 3, 4], [2, 3, 4], axis=-3),
    reduction("Softmax", [2, 3], [2, 3], opset=11, axis=0),  # before 13: axes 0 and after
    reduction("LayerNormalization", [2, 3], [2, 3], scale=[2, 3], axis=0),
]
KEPT_BATCH = [
    reduction("ReduceMean", [2, 3], [2, 1], axes=[1]),
    reduction("ReduceSum", [2, 3], [2, 3], opset=13, noop_with_empty_axes=1),
    reduction("ReduceMean", [2, 3], [2, 1], opset=18, axes_input=[-1]),
    reduction("ReduceSum", [6], [1]),  # a rank-1 tensor has no batch axis to protect
    reduction("ArgMax", [2, 3], [2, 1], axis=1),
    reduction("Softmax", [2, 3], [2, 3]),
    reduction("Softmax", [2, 3, 4], [2, 3, 4], opset=11),  # axis 1: axes 1 and 2
    reduction("LayerNormalization", [2, 3], [2, 3], scale=[3]),
]


@pytest.mark.parametrize("index", range(len(BATCH_REDUCTIONS)))
def test_batch_reduction_is_caught(index):
    only(violations(BATCH_REDUCTIONS[index], {"batch_reduction": False}), "[batch_reduction] node 'reducer'",
         "reduces over axis 0")


def test_batch_reduction_reports_keepdims():
    assert "keepdims=1" in violations(BATCH_REDUCTIONS[1], {"batch_reduction": False})[0]


@pytest.mark.parametrize("index", range(len(KEPT_BATCH)))
def test_batch_reduction_leaves_other_axes_alone(index):
    assert violations(KEPT_BATCH[index], {"batch_reduction": False}) == []


def test_batch_reduction_cannot_be_ruled_out_for_axes_computed_at_run_time():
    runtime = model([node("ReduceSum", ["x", "axes"], ["y"], "reducer")], [tensor("x", [2, 3]),
                    tensor("axes", [1], INT64)], [tensor("y", [None, None])], opset=13)
    only(violations(runtime, {"batch_reduction": False}), "node 'reducer'", "computed at run time")


# --------------------------------------------------------------------------- subgraphs and the table


def test_rules_read_the_nodes_of_subgraphs():
    def branch(name: str, target: list[int]) -> onnx.GraphProto:
        reshaping = node("Reshape", ["x", f"target_{name}"], [f"y_{name}"], f"reshape_in_{name}")
        return helper.make_graph([reshaping], name, [], [tensor(f"y_{name}", [6])], [constant(f"target_{name}", target)])

    choice = node("If", ["condition"], ["y"], "choice", then_branch=branch("then", [-1]), else_branch=branch("else", [6]))
    branching = model([choice], [tensor("condition", [], BOOL), tensor("x", [2, 3])], [tensor("y", [6])])
    only(violations(branching, {"reshape_placeholders": False}), "node 'reshape_in_then' (Reshape)", "[-1]")
    found = violations(branching, {"max_rank": 0})
    assert any("node 'reshape_in_else' (Reshape) output 'y_else' has rank 1 > 0" in message for message in found)




PERMISSIVE = {"explicit_broadcast": False, "negative_axes": True, "reshape_placeholders": True,
              "stepped_slices": True, "static": False, "batch_reduction": True}


def test_the_permissive_value_of_a_boolean_rule_checks_nothing():
    everything = computed_target([-1])
    assert violations(everything, PERMISSIVE) == []
    assert violations(everything, {}) == []
    assert set(PERMISSIVE) | {"max_rank", "max_matmul_rank", "innermost_nonunit"} == set(RULES)


def test_describe_gives_one_line_per_rule():
    rules = {"max_rank": 4, "explicit_broadcast": True, "negative_axes": False, "static": True}
    lines = describe(rules).splitlines()
    assert [line.split(" = ")[0] for line in lines] == list(rules)
    assert lines[0].startswith("max_rank = 4: no tensor")


def test_unknown_or_mistyped_rules_are_refused():
    with pytest.raises(ValueError, match="max_ranks"):
        violations(reshape([2, 3], [3, 2]), {"max_ranks": 4})
    with pytest.raises(TypeError, match="static"):
        describe({"static": "yes"})
    with pytest.raises(TypeError, match="max_rank"):
        describe({"max_rank": True})


# --------------------------------------------------------------------------- real exports


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, onnx.ModelProto]:
    from poseir.cli import main

    folder = tmp_path_factory.mktemp("exports")
    examples = Path(__file__).resolve().parent.parent / "examples"
    commands = {"videopose3d": [str(examples / "videopose3d.pose"), "--set", "channels=32"],
                "poseformer": [str(examples / "poseformer.pose"), "--set", "embed_dim_ratio=8", "--set", "depth=2"]}
    models = {}
    for name, arguments in commands.items():
        path = folder / f"{name}.onnx"
        assert main(["compile", *arguments, "-o", str(path)]) == 0
        models[name] = onnx.load(path)
    return models


def test_videopose3d_default_export_is_rank_four_but_not_static(exports):
    model = exports["videopose3d"]
    assert violations(model, {"max_rank": 4}) == []
    found = violations(model, {"static": True})
    assert any(message.startswith("[static] node 'dims/Shape_0' (Shape") for message in found), found
    assert "[static] graph input 'keypoints' has non-numeric dims: [B, T, 17, 2]" in found
    assert all(".pose:" in message for message in found if "node '" in message)


def test_poseformer_default_export_splits_attention_heads_in_five_axes(exports):
    found = violations(exports["poseformer"], {"max_rank": 4})
    assert found and all("rank 5 > 4" in message and ".attn/" in message for message in found), found
    blocks = {message.split("node '")[1].split(".attn/")[0] for message in found}
    assert blocks == {"Spatial_blocks.0", "Spatial_blocks.1", "blocks.0", "blocks.1"}
    assert all("examples/poseformer.pose:" in message for message in found)
