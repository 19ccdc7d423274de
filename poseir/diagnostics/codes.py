"""The one table of diagnostic codes: severity, title and long explanation."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    """How bad a diagnostic is; fixed per code in the code table."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Code:
    """A diagnostic code with its fixed severity, short title and explanation."""

    code: str
    severity: Severity
    title: str
    explanation: str


CODES: dict[str, Code] = {}


def _declare(code: str, severity: Severity, title: str, explanation: str) -> None:
    # Declaring twice would silently replace an entry; that is a bug in this table.
    if code in CODES:
        raise ValueError(f"code {code} declared twice")
    CODES[code] = Code(code, severity, title, textwrap.dedent(explanation).strip() + "\n")


def lookup(code: str) -> Code:
    """The table entry for code; KeyError if the code does not exist."""
    try:
        return CODES[code]
    except KeyError:
        raise KeyError(f"unknown diagnostic code {code!r}") from None


def all_codes() -> list[Code]:
    """Every code, sorted by its code string."""
    return [CODES[code] for code in sorted(CODES)]


_ERROR = Severity.ERROR
_WARNING = Severity.WARNING

# ---------------------------------------------------------------- E0xx: reading files

_declare("E001", _ERROR, "syntax error", """
    The file could not be parsed. The parser met a token it did not expect,
    for example a missing closing parenthesis or brace, a stray operator, or a
    statement that continues on the next line outside of brackets.

    Statements end at the end of a line, except inside `()` and `[]`, so a
    call may be split over several lines as long as its parenthesis is open.

    Erroneous example:

    ```
    module Head(channels: int = 1024) {
        self.shrink = Conv1d(channels, 51, 1
    }
    ```

    Corrected example:

    ```
    module Head(channels: int = 1024) {
        self.shrink = Conv1d(channels, 51, 1)
    }
    ```
""")

_declare("E002", _ERROR, "cannot import file", """
    An `import` names a file that does not exist, cannot be read, is not a
    `.pose` file, or imports the importing file again (directly or through
    other files). Import paths are resolved relative to the file that contains
    the `import`.

    Imports may not form a cycle, because every file must be fully defined
    before the files that use it.

    Erroneous example:

    ```
    # blocks.pose
    import "model.pose"

    # model.pose
    import "blocks.pose"
    ```

    Corrected example: move the definitions both files need into a third file
    that imports neither of them.

    ```
    # common.pose   (imports nothing)

    # blocks.pose
    import "common.pose"

    # model.pose
    import "common.pose"
    import "blocks.pose"
    ```
""")

_declare("E003", _ERROR, "import outside the project", """
    An `import` names a file outside the project root. poseir runs on files
    other people wrote (in CI, in editors, on pull requests), so an import may
    only reach `.pose` files inside the project: the nearest directory above
    the checked file that holds `pyproject.toml` or `.git`, or else the checked
    file's own directory. `--root DIR` chooses another root. Symbolic links are
    followed first, so a link that points outside the root is refused too.

    Erroneous example (in `models/lifter.pose`):

    ```
    import "../../shared/layers.pose"
    import "/etc/passwd"
    ```

    Corrected example: keep shared `.pose` files inside the project, or check
    with a root that contains them.

    ```
    import "../layers/common.pose"
    $ poseir check models/lifter.pose --root ~/work
    ```
""")

_declare("E004", _ERROR, "not a .pose source file", """
    The file named on the command line or in an `import` exists, but is not
    `.pose` source text: it is larger than the `file_bytes` limit (1 MiB by
    default), it is not valid UTF-8, it holds NUL bytes (a binary file), or it
    is not a regular file at all (a device, a named pipe, a socket). poseir
    never shows any of its contents.

    A UTF-8 byte order mark at the start of a file is accepted, and so are
    Windows (CRLF) line ends; `poseir fix --write` keeps both.

    Example:

    ```
    import "generated/huge.pose"     # 40 MB
    import "layers.pose"             # saved as UTF-16 by an editor
    ```

    Save `.pose` files as UTF-8; a larger `.pose` file can be allowed with
    `--limit file_bytes=...`.
""")

# ---------------------------------------------------------------- E1xx: names and values

_declare("E100", _ERROR, "undefined name", """
    A name is used that is not defined at this point: it is not a local
    value, a parameter of `forward`, a hyper-parameter of the module, a
    declared `dim`, or a top-level constant.

    Erroneous example:

    ```
    dim B, T
    module Lift() {
        self.expand = Conv1d(34, 1024, 1)
        forward(x: f32[B, T, 34]) -> (y: f32[B, 1024, T]) {
            return self.expand(inputs.permute(0, 2, 1))
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Lift() {
        self.expand = Conv1d(34, 1024, 1)
        forward(x: f32[B, T, 34]) -> (y: f32[B, 1024, T]) {
            return self.expand(x.permute(0, 2, 1))
        }
    }
    ```
""")

_declare("E101", _ERROR, "unknown operation or module", """
    A call names an operation, layer or module that does not exist, or a
    tensor method that does not exist (`x.veiw(...)`, `x.shap`). Layers such
    as `Conv1d` and `BatchNorm1d` are spelled as in PyTorch, and modules must
    be defined with `module` in this file or an imported one.

    Erroneous example:

    ```
    module Lift() {
        self.expand = Conv1D(34, 1024, 1)
    }
    ```

    Corrected example:

    ```
    module Lift() {
        self.expand = Conv1d(34, 1024, 1)
    }
    ```
""")

_declare("E102", _ERROR, "bad argument", """
    A call was given arguments that do not fit its signature: a required
    argument is missing, there are too many positional arguments, a keyword
    argument does not exist or is given twice.

    Erroneous example:

    ```
    module Block(channels: int = 1024) {
        self.conv = Conv1d(channels, channels, 3, dilaton=3)
    }
    ```

    Corrected example:

    ```
    module Block(channels: int = 1024) {
        self.conv = Conv1d(channels, channels, 3, dilation=3)
    }
    ```
""")

_declare("E103", _ERROR, "wrong kind of value", """
    A value of the wrong kind was used. Sizes, axes, kernel widths and
    hyper-parameters must be compile-time integers; tensors are only known
    when the network runs, so a tensor cannot be used where a size is needed.
    Likewise a number cannot be called and a module cannot be added.

    Erroneous example:

    ```
    dim B, T
    module Flatten() {
        forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 34]) {
            joints = x.mean()
            return x.view(B, T, joints * 2)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Flatten() {
        forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 34]) {
            return x.view(B, T, 17 * 2)
        }
    }
    ```
""")

_declare("E104", _ERROR, "duplicate definition", """
    The same name is defined twice in one scope: two modules, two `dim`
    declarations, two hyper-parameters or two `forward` parameters with the
    same name. The second definition would hide the first, so it is rejected.

    Erroneous example:

    ```
    dim B, T
    module Block(channels: int = 1024, channels: int = 512) {
        self.conv = Conv1d(channels, channels, 3)
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Block(in_channels: int = 1024, out_channels: int = 512) {
        self.conv = Conv1d(in_channels, out_channels, 3)
    }
    ```
""")

_declare("E105", _ERROR, "compile-time evaluation failed", """
    An expression that must be computed while compiling could not be: a list
    index is out of range, a number is divided by zero, or the value depends
    on something that is only known when the network runs.

    Erroneous example:

    ```
    module Temporal(widths = [3, 3, 3]) {
        self.last = Conv1d(1024, 1024, widths[3])
    }
    ```

    Corrected example (lists are indexed from 0):

    ```
    module Temporal(widths = [3, 3, 3]) {
        self.last = Conv1d(1024, 1024, widths[2])
    }
    ```
""")

_declare("E106", _ERROR, "no such model or hyper-parameter", """
    The model or hyper-parameter asked for does not exist. This happens when
    a `model` name is misspelt, or when a `--set name=value` on the command
    line names a hyper-parameter the model's module does not declare, or
    gives it a value of the wrong type.

    Erroneous example:

    ```
    model vp = TemporalModel()
    module TemporalModel(channels: int = 1024) {
        self.shrink = Conv1d(channels, 51, 1)
    }

    $ poseir ... --set chanels=512
    ```

    Corrected example:

    ```
    $ poseir ... --set channels=512
    ```
""")

_declare("E107", _ERROR, "tensor-dependent control flow", """
    An `if` or `for` depends on the contents of a tensor. Shapes are checked
    without running the network, so every branch and loop count must be
    decided at compile time, from hyper-parameters and constants.

    Erroneous example:

    ```
    dim B, T
    module Flip() {
        forward(x: f32[B, T, 17, 3]) -> (y: f32[B, T, 17, 3]) {
            if x.mean() > 0 {
                return -x
            }
            return x
        }
    }
    ```

    Corrected example: decide with a hyper-parameter instead.

    ```
    dim B, T
    module Flip(mirror: bool = false) {
        forward(x: f32[B, T, 17, 3]) -> (y: f32[B, T, 17, 3]) {
            if mirror {
                return -x
            }
            return x
        }
    }
    ```
""")

_declare("E109", _ERROR, "compile-time limit exceeded", """
    Evaluating the program at compile time went past one of poseir's limits:
    too many loop iterations, a list or range that is too long, an integer
    that is too large, expressions nested too deeply, modules nested too
    deeply (often a module that creates itself), too many nodes in one graph,
    or too much time. The limits keep a hostile or mistaken file from taking
    the machine down; real networks stay far below them. Elaboration of the
    flow stops at the first limit passed.

    Each limit can be raised for one run with `--limit NAME=VALUE`, for
    example `--limit loop_iterations=1000000`. `docs/security.md` lists them.

    Erroneous example:

    ```
    dim B
    module Big(width: int = 10 ** 30) {
        self.proj = Linear(width, 3)
        forward(x: f32[B, 17, 2]) -> (y: f32[B, 17, 3]) {
            return self.proj(x)
        }
    }
    ```

    Corrected example:

    ```
    dim B
    module Big(width: int = 2) {
        self.proj = Linear(width, 3)
        forward(x: f32[B, 17, 2]) -> (y: f32[B, 17, 3]) {
            return self.proj(x)
        }
    }
    ```
""")

_declare("E110", _ERROR, "training-only op in the inference flow", """
    An op that only exists in training (a loss, for example) is reachable from
    an output of the inference flow. The inference graph would then need
    training targets or randomness at deployment. `poseir split` checks this
    for every model; elaboration already refuses most such programs with E105
    or E100, so this error means a graph was assembled by other means.

    Example: a loss computed in a plain `forward` and returned in both modes.

    ```
    loss = mpjpe(pose, target)     # target exists only in training
    return pose, loss
    ```

    Put the loss and its inputs in `train { ... }` and declare the output
    `train loss: f32[]`.
""")

# ---------------------------------------------------------------- E2xx: shapes

_declare("E108", _ERROR, "statement has no effect", """
    A line computes a value and throws it away. Statements end at the end of
    their line (inside `()` and `[]` excepted), so a line that starts with an
    operator does not continue the line above: it is a statement of its own,
    and the term it holds silently vanishes from the expression above it.

    Erroneous example:

    ```
    dim B, T
    module Loss() {
        forward(position: f32[], velocity: f32[]) -> (loss: f32[]) {
            loss = position
                + 20.0 * velocity
            return loss
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Loss() {
        forward(position: f32[], velocity: f32[]) -> (loss: f32[]) {
            loss = (position
                    + 20.0 * velocity)
            return loss
        }
    }
    ```
""")

_declare("E200", _ERROR, "shapes cannot be broadcast", """
    An element-wise operation combines two tensors whose shapes do not
    broadcast. Shapes are aligned from the last axis; each pair of sizes must
    be equal, or one of them must be 1.

    Erroneous example: the root joint has no joint axis, so `T` is aligned
    against `17`.

    ```
    dim B, T
    module Center() {
        forward(x: f32[B, T, 17, 3], root: f32[B, T, 3]) -> (y: f32[B, T, 17, 3]) {
            return x - root
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Center() {
        forward(x: f32[B, T, 17, 3], root: f32[B, T, 3]) -> (y: f32[B, T, 17, 3]) {
            return x - root.view(B, T, 1, 3)
        }
    }
    ```
""")

_declare("E201", _ERROR, "wrong rank", """
    A tensor has a different number of axes than the operation needs. For
    example `Conv1d` takes `[batch, channels, length]` (rank 3), so a 2D pose
    sequence `[B, T, 17, 2]` must first be flattened and transposed.

    Erroneous example:

    ```
    dim B, T
    module Lift() {
        self.expand = Conv1d(34, 1024, 3)
        forward(x: f32[B, T, 17, 2]) -> (y: f32[B, 1024, T - 2]) {
            return self.expand(x)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Lift() {
        self.expand = Conv1d(34, 1024, 3)
        forward(x: f32[B, T, 17, 2]) -> (y: f32[B, 1024, T - 2]) where T >= 3 {
            return self.expand(x.view(B, T, 34).permute(0, 2, 1))
        }
    }
    ```
""")

_declare("E202", _ERROR, "axis out of range", """
    An axis number is outside the tensor's rank. A tensor of rank `r` has
    axes `0` to `r - 1`, or `-r` to `-1` counting from the end.

    Erroneous example:

    ```
    dim B, T
    module Energy() {
        forward(x: f32[B, T, 17]) -> (y: f32[B, T]) {
            return x.sum(3)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Energy() {
        forward(x: f32[B, T, 17]) -> (y: f32[B, T]) {
            return x.sum(2)
        }
    }
    ```
""")

_declare("E203", _ERROR, "dtype mismatch", """
    Two tensors with different element types meet in one operation, or a
    value's element type differs from the one declared. poseir does not
    convert element types implicitly, because a silent conversion changes
    precision and memory use.

    Erroneous example:

    ```
    dim B, T
    module Scale() {
        self.scale = param f32[17, 3]
        forward(x: f16[B, T, 17, 3]) -> (y: f16[B, T, 17, 3]) {
            return x * self.scale
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Scale() {
        self.scale = param f32[17, 3]
        forward(x: f32[B, T, 17, 3]) -> (y: f32[B, T, 17, 3]) {
            return x * self.scale
        }
    }
    ```
""")

_declare("E204", _ERROR, "reshape changes the element count", """
    A `view` or `reshape` asks for a shape with a different number of
    elements than the input has. The product of the target sizes must equal
    the product of the input sizes for every value of the symbolic dims.

    Erroneous example: 17 joints times 2 coordinates is 34, not 51.

    ```
    dim B, T
    module Flatten() {
        forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 51]) {
            return x.view(B, T, 51)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Flatten() {
        forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 34]) {
            return x.view(B, T, 34)
        }
    }
    ```
""")

_declare("E205", _ERROR, "reshape bakes in a size", """
    A reshape has the right number of elements only for one particular value
    of a symbolic dim. Usually a clip length or batch size was written as a
    literal number: the model works for the clip you tried and fails for
    every other length.

    Erroneous example: `81 * 34` equals `T * 34` only when `T == 81`.

    ```
    dim B, T
    module Flatten() {
        forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T * 34]) {
            return x.view(B, 81 * 34)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Flatten() {
        forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T * 34]) {
            return x.view(B, T * 34)
        }
    }
    ```

    If the model really only supports one length, say so in the input type,
    for example `x: f32[B, 81, 17, 2]`, or add `where T == 81`.
""")

_declare("E206", _ERROR, "reshape reorders axes", """
    A reshape keeps the number of elements but splits or merges axes in a
    different order than the data is laid out in memory. `view` never moves
    data, so `[B, T, 34]` viewed as `[B, 34, T]` does not transpose: it
    scrambles frames and joints together. Use `permute` (or `rearrange`) to
    reorder axes.

    Erroneous example:

    ```
    dim B, T
    module ToChannels() {
        forward(x: f32[B, T, 34]) -> (y: f32[B, 34, T]) {
            return x.view(B, 34, T)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module ToChannels() {
        forward(x: f32[B, T, 34]) -> (y: f32[B, 34, T]) {
            return x.permute(0, 2, 1)
        }
    }
    ```
""")

_declare("E207", _ERROR, "inner dimensions do not match", """
    The sizes that a matrix product, linear layer or convolution contracts
    over do not agree. For `a @ b` the last axis of `a` must equal the second
    to last axis of `b`; for `Linear(n, m)` the input's last axis must be `n`;
    for `Conv1d(c, m, k)` the input's channel axis (axis 1) must be `c`.

    Erroneous example:

    ```
    dim B, T
    module Lift() {
        self.expand = Conv1d(51, 1024, 1)
        forward(x: f32[B, 34, T]) -> (y: f32[B, 1024, T]) {
            return self.expand(x)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Lift() {
        self.expand = Conv1d(34, 1024, 1)
        forward(x: f32[B, 34, T]) -> (y: f32[B, 1024, T]) {
            return self.expand(x)
        }
    }
    ```
""")

_declare("E208", _ERROR, "declared type differs from inferred type", """
    A type written in the source (an output of `forward`, an annotated
    assignment or an `assert x: ...`) differs from the type poseir inferred.
    A common cause is forgetting that unpadded convolutions shorten the
    sequence.

    Erroneous example: a kernel-3 convolution drops two frames.

    ```
    dim B, T
    module Block() {
        self.conv = Conv1d(1024, 1024, 3)
        forward(x: f32[B, 1024, T]) -> (y: f32[B, 1024, T]) where T >= 3 {
            return self.conv(x)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Block() {
        self.conv = Conv1d(1024, 1024, 3)
        forward(x: f32[B, 1024, T]) -> (y: f32[B, 1024, T - 2]) where T >= 3 {
            return self.conv(x)
        }
    }
    ```
""")

_declare("E209", _ERROR, "invalid slice or index", """
    An index or slice does not fit the tensor: there are more indices than
    axes, a constant index is outside the axis, or a slice has a zero step.
    Indices count from 0, so an axis of size 17 has indices 0 to 16.

    Erroneous example:

    ```
    dim B, T
    module Head() {
        forward(x: f32[B, T, 17, 3]) -> (y: f32[B, T, 3]) {
            return x[:, :, 17]
        }
    }
    ```

    Corrected example (the last joint):

    ```
    dim B, T
    module Head() {
        forward(x: f32[B, T, 17, 3]) -> (y: f32[B, T, 3]) {
            return x[:, :, 16]
        }
    }
    ```
""")

_declare("E210", _ERROR, "invalid rearrange pattern", """
    A `rearrange` pattern is malformed: the two sides name different axes, an
    axis appears twice, a parenthesis is unbalanced, or the number of names on
    the left differs from the input's rank.

    Erroneous example: `d` does not appear on the left-hand side.

    ```
    dim B, T
    module Flatten() {
        forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 34]) {
            return x.rearrange("b t j c -> b t (j d)")
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Flatten() {
        forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 34]) {
            return x.rearrange("b t j c -> b t (j c)")
        }
    }
    ```
""")

_declare("E211", _ERROR, "sequence too short for the convolution", """
    A convolution's output length is zero or negative. Without padding a
    convolution with kernel `k` and dilation `d` shortens a sequence of
    length `L` to `L - d * (k - 1)`, so deep dilated stacks need long inputs.

    Erroneous example: `27 - 27 * (3 - 1)` is negative.

    ```
    dim B
    module Block() {
        self.conv = Conv1d(1024, 1024, 3, dilation=27)
        forward(x: f32[B, 1024, 27]) -> (y: f32[B, 1024, 1]) {
            return self.conv(x)
        }
    }
    ```

    Corrected example: `27 - 13 * (3 - 1)` is 1.

    ```
    dim B
    module Block() {
        self.conv = Conv1d(1024, 1024, 3, dilation=13)
        forward(x: f32[B, 1024, 27]) -> (y: f32[B, 1024, 1]) {
            return self.conv(x)
        }
    }
    ```
""")

_declare("E212", _ERROR, "assumption violated", """
    A module's `forward` states a fact with `where` that is provably false
    for this call. The fact is part of the module's contract; calling it with
    shapes that break the fact would fail at run time.

    Erroneous example: `TemporalModel` needs at least 243 frames.

    ```
    dim B, T
    module TemporalModel() {
        forward(x: f32[B, T, 17, 2]) -> (pose: f32[B, T - 242, 17, 2]) where T >= 243 {
            return x[:, 242:]    # stands for the real layers
        }
    }
    module Live() {
        self.temporal = TemporalModel()
        forward(x: f32[B, 27, 17, 2]) -> (pose: f32[B, 1, 17, 2]) {
            return self.temporal(x)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module TemporalModel() {
        forward(x: f32[B, T, 17, 2]) -> (pose: f32[B, T - 242, 17, 2]) where T >= 243 {
            return x[:, 242:]    # stands for the real layers
        }
    }
    module Live() {
        self.temporal = TemporalModel()
        forward(x: f32[B, 243, 17, 2]) -> (pose: f32[B, 1, 17, 2]) {
            return self.temporal(x)
        }
    }
    ```
""")

_declare("E213", _ERROR, "concatenation shapes differ", """
    Tensors being concatenated or stacked must have the same rank, and the
    same size on every axis except the one they are joined along.

    Erroneous example: the confidences have no coordinate axis.

    ```
    dim B, T
    module WithConfidence() {
        forward(x: f32[B, T, 17, 2], confidence: f32[B, T, 17]) -> (y: f32[B, T, 17, 3]) {
            return cat([x, confidence], dim=3)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module WithConfidence() {
        forward(x: f32[B, T, 17, 2], confidence: f32[B, T, 17]) -> (y: f32[B, T, 17, 3]) {
            return cat([x, confidence.view(B, T, 17, 1)], dim=3)
        }
    }
    ```
""")

_declare("E214", _ERROR, "index out of range", """
    A constant list of indices (of `gather`, `scatter` or a skeleton) names
    positions that do not exist, for example a joint number beyond the
    skeleton, or names one position twice where each must be distinct.
    Indices count from 0, so an axis of size 17 has indices 0 to 16.

    Erroneous example:

    ```
    dim B, T
    module Limbs() {
        forward(x: f32[B, T, 17, 3]) -> (y: f32[B, T, 3, 3]) {
            return x[:, :, [0, 8, 17]]
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Limbs() {
        forward(x: f32[B, T, 17, 3]) -> (y: f32[B, T, 3, 3]) {
            return x[:, :, [0, 8, 16]]
        }
    }
    ```
""")

_declare("E215", _ERROR, "not a permutation", """
    The axes given to `permute` must name every axis of the input exactly
    once. An axis is repeated, missing or out of range.

    Erroneous example:

    ```
    dim B, T
    module ToChannels() {
        forward(x: f32[B, T, 34]) -> (y: f32[B, 34, T]) {
            return x.permute(0, 2, 2)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module ToChannels() {
        forward(x: f32[B, T, 34]) -> (y: f32[B, 34, T]) {
            return x.permute(0, 2, 1)
        }
    }
    ```
""")

_declare("E216", _ERROR, "dimension cannot be divided", """
    An axis is split into parts that do not divide it: a `split` or
    `unflatten` with sizes that do not add or multiply up, or a `-1` in a
    reshape whose remaining size is not a whole number.

    Erroneous example: 34 is not divisible by 3.

    ```
    dim B, T
    module Unflatten() {
        forward(x: f32[B, T, 34]) -> (y: f32[B, T, 3, 17]) {
            return x.view(B, T, 3, -1)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Unflatten() {
        forward(x: f32[B, T, 34]) -> (y: f32[B, T, 17, 2]) {
            return x.view(B, T, 17, -1)
        }
    }
    ```
""")

# ---------------------------------------------------------------- W3xx: warnings

_declare("W300", _WARNING, "cannot prove dimensions equal", """
    Two sizes must be equal, but poseir cannot prove it from what it knows.
    They may be equal for the inputs you have in mind; the compiler only
    knows the facts written in the source.

    Add a `where` fact, such as `where T == N`, to settle it. The fact then
    becomes part of the contract and is checked at every call.

    Erroneous example:

    ```
    dim B, T, N
    module Error3d() {
        forward(a: f32[B, T, 17, 3], b: f32[B, N, 17, 3]) -> (y: f32[B, T, 17, 3]) {
            return a - b
        }
    }
    ```

    Corrected example:

    ```
    dim B, T, N
    module Error3d() {
        forward(a: f32[B, T, 17, 3], b: f32[B, N, 17, 3]) -> (y: f32[B, T, 17, 3]) where T == N {
            return a - b
        }
    }
    ```
""")

_declare("W301", _WARNING, "cannot prove assumption", """
    A called module's `forward` states a `where` fact that poseir can neither
    prove nor refute at this call. The call may fail at run time for some
    inputs. Add the same fact (in terms of the caller's dims) to the caller's
    `forward` so that it is checked where the inputs come from.

    Erroneous example: nothing says `N` is at least 243.

    ```
    dim B, T, N
    module TemporalModel() {
        forward(x: f32[B, T, 17, 2]) -> (pose: f32[B, T - 242, 17, 2]) where T >= 243 {
            return x[:, 242:]    # stands for the real layers
        }
    }
    module Offline() {
        self.temporal = TemporalModel()
        forward(x: f32[B, N, 17, 2]) -> (pose: f32[B, N - 242, 17, 2]) {
            return self.temporal(x)
        }
    }
    ```

    Corrected example:

    ```
    dim B, T, N
    module TemporalModel() {
        forward(x: f32[B, T, 17, 2]) -> (pose: f32[B, T - 242, 17, 2]) where T >= 243 {
            return x[:, 242:]    # stands for the real layers
        }
    }
    module Offline() {
        self.temporal = TemporalModel()
        forward(x: f32[B, N, 17, 2]) -> (pose: f32[B, N - 242, 17, 2]) where N >= 243 {
            return self.temporal(x)
        }
    }
    ```
""")

_declare("W302", _WARNING, "unused value", """
    A value is computed and never used. This is often a sign of a mistake,
    such as returning the input instead of the result.

    Erroneous example:

    ```
    dim B, T
    module Refine() {
        self.conv = Conv1d(1024, 1024, 1)
        forward(x: f32[B, 1024, T]) -> (y: f32[B, 1024, T]) {
            refined = self.conv(x)
            return x
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Refine() {
        self.conv = Conv1d(1024, 1024, 1)
        forward(x: f32[B, 1024, T]) -> (y: f32[B, 1024, T]) {
            refined = self.conv(x)
            return refined
        }
    }
    ```
""")

_declare("W310", _WARNING, "broadcast aligns swapped axes", """
    An elementwise op lines up two axes of equal size that the operands hold
    in opposite orders: one operand is `[B, T, J]`, the other `[B, J, T]`,
    and T and J happen to have the same size. Broadcasting only compares
    sizes, so PyTorch runs it and adds frames to joints. poseir knows which
    input or layer each axis comes from (its atoms) and warns when the two
    operands hold the same two axes swapped.

    Erroneous example:

    ```
    dim B
    T = 17
    J = 17
    module Blend() {
        forward(x: f32[B, T, J], y: f32[B, J, T]) -> (z: f32[B, T, J]) {
            return x + y
        }
    }
    ```

    Corrected example:

    ```
    dim B
    T = 17
    J = 17
    module Blend() {
        forward(x: f32[B, T, J], y: f32[B, J, T]) -> (z: f32[B, T, J]) {
            return x + y.transpose(-2, -1)
        }
    }
    ```
""")

_declare("W311", _WARNING, "softmax over the query axis", """
    Attention scores `q @ k.transpose(-2, -1)` have the queries on the second
    to last axis and the keys on the last. Attention normalizes each query's
    scores over the keys, so the softmax belongs on the last axis
    (`softmax(dim=-1)`); over the query axis (`dim=-2`) every key's scores sum
    to one instead. The shapes are the same either way, so the network runs
    and trains, only worse.

    Erroneous example:

    ```
    dim B, N
    module Attention() {
        forward(q: f32[B, N, 32], k: f32[B, N, 32], v: f32[B, N, 32]) -> (y: f32[B, N, 32]) {
            scores = (q @ k.transpose(-2, -1)) * 0.17
            return scores.softmax(dim = -2) @ v
        }
    }
    ```

    Corrected example:

    ```
    dim B, N
    module Attention() {
        forward(q: f32[B, N, 32], k: f32[B, N, 32], v: f32[B, N, 32]) -> (y: f32[B, N, 32]) {
            scores = (q @ k.transpose(-2, -1)) * 0.17
            return scores.softmax(dim = -1) @ v
        }
    }
    ```
""")

_declare("W312", _WARNING, "pose error reduced over the wrong axis", """
    A position error is the Euclidean norm of a difference of two poses over
    the coordinate axis (x, y, z); MPJPE then averages those distances over
    joints, frames and the batch. A norm over the joint, frame or batch axis
    instead runs without complaint and gives a loss that means something
    else. poseir recognizes the coordinate axis as the axis of size 2 or 3
    that both poses carry, and warns when the norm reduces another one.

    Erroneous example:

    ```
    dim B, T
    module Loss() {
        forward(pred: f32[B, T, 17, 3], target: f32[B, T, 17, 3]) -> (loss: f32[]) {
            return (pred - target).norm(dim = 2).mean()
        }
    }
    ```

    Corrected example:

    ```
    dim B, T
    module Loss() {
        forward(pred: f32[B, T, 17, 3], target: f32[B, T, 17, 3]) -> (loss: f32[]) {
            return (pred - target).norm(dim = -1).mean()
        }
    }
    ```
""")

_declare("W313", _WARNING, "flip permutation inconsistent with the skeleton", """
    A skeleton's left/right pairs define the flip used for test-time
    augmentation. It must map the skeleton onto itself: the flipped joint of a
    joint's parent must be the parent of the flipped joint. A pair list that
    is an involution can still break this (a left elbow paired with a right
    wrist), and flip augmentation then averages two different poses.

    Erroneous example:

    ```
    skeleton arm {
        joints = ["root", "l_elbow", "l_wrist", "r_elbow", "r_wrist"]
        parents = [-1, 0, 1, 0, 3]
        pairs = [(1, 4), (2, 3)]
    }
    ```

    Corrected example:

    ```
    skeleton arm {
        joints = ["root", "l_elbow", "l_wrist", "r_elbow", "r_wrist"]
        parents = [-1, 0, 1, 0, 3]
        pairs = [(1, 3), (2, 4)]
    }
    ```
""")

_declare("W315", _WARNING, "parameter used in only one flow", """
    A parameter or buffer is read by only one of the model's flows. Read only
    in training, it is trained but never used for predictions (often a
    leftover head); read only in inference, it is never trained, so it keeps
    its initial values. `poseir split` reports it at the line that declares it.

    Example: an auxiliary head trained alongside the pose but never used at
    inference.

    ```
    self.aux = Linear(512, 17)     # only `train { aux = self.aux(h) }` uses it
    ```

    Remove the head, or use it in both flows if inference needs it.
""")

_declare("W314", _WARNING, "reshape has two readings", """
    A reshape only fits the data after moving axes, and because two axes have
    the same size there is more than one way to move them. poseir does not
    guess which one was meant: it names both. Write the intended `permute`
    before the reshape, or use `rearrange` with named axes, which says which
    axis goes where.

    Example: `x` holds `[B, 17, 17, 3]` (frames and joints), and
    `x.view(B, 3, 289)` needs the coordinate axis moved to the front, after
    which frames and joints could be merged in either order.

    ```
    x.permute(0, 3, 1, 2).reshape(B, 3, 289)   # frames major, as stored
    ```
""")

# ---------------------------------------------------------------- E4xx: weights and inputs

_declare("E400", _ERROR, "missing weight", """
    The weights file has no tensor for a parameter of the model. Weight
    names are the dotted attribute paths of the parameters, such as
    `shrink.weight` for `self.shrink = Conv1d(...)` in the top module.
    Usually an attribute was renamed in the `.pose` file or in the training
    code.

    Erroneous example: the checkpoint holds `shrink.weight` and `shrink.bias`.

    ```
    module TemporalModel(channels: int = 1024) {
        self.head = Conv1d(channels, 51, 1)
    }
    ```

    Corrected example:

    ```
    module TemporalModel(channels: int = 1024) {
        self.shrink = Conv1d(channels, 51, 1)
    }
    ```
""")

_declare("E401", _WARNING, "unexpected weight", """
    The weights file holds a tensor that no parameter of the model uses. It
    is ignored. This often means the checkpoint belongs to a larger or
    differently named model, or that a layer is missing from the `.pose`
    file.

    Erroneous example: the checkpoint also holds `refine.weight`.

    ```
    module TemporalModel(channels: int = 1024) {
        self.shrink = Conv1d(channels, 51, 1)
    }
    ```

    Corrected example:

    ```
    module TemporalModel(channels: int = 1024) {
        self.shrink = Conv1d(channels, 51, 1)
        self.refine = Conv1d(51, 51, 1)
    }
    ```
""")

_declare("E402", _ERROR, "weight has the wrong shape", """
    A tensor in the weights file has a different shape (or element type) than
    the parameter it is loaded into. Usually a hyper-parameter such as the
    channel count differs from the one the model was trained with.

    Erroneous example: the checkpoint's `shrink.weight` is `[51, 1024, 1]`,
    but this module expects `[51, 512, 1]`.

    ```
    model vp = TemporalModel(channels=512)
    module TemporalModel(channels: int = 1024) {
        self.shrink = Conv1d(channels, 51, 1)
    }
    ```

    Corrected example:

    ```
    model vp = TemporalModel(channels=1024)
    ```
""")

_declare("E403", _ERROR, "cannot read weights file", """
    The weights file could not be opened or decoded: it does not exist, is
    truncated or damaged, or is not in a format poseir reads. poseir reads
    `.safetensors`, `.npz` (without pickles) and PyTorch checkpoints
    (`.pth`, `.pt`, `.bin`, `.pth.tar`, `.ckpt`) in both the zip format
    `torch.save` writes since PyTorch 1.6 and the older pickle-stream format.
    Every size a checkpoint declares is checked against the bytes the file
    holds before anything is allocated, so a damaged file stops here.

    Example: a checkpoint cut short by an interrupted download.

    ```
    $ poseir params examples/videopose3d.pose --weights pretrained_h36m_cpn.bin
    error[E403]: cannot read weights from `pretrained_h36m_cpn.bin`: a damaged or truncated zip archive (its directory at the end is missing)
    ```

    Download the file again (compare its size or checksum with the
    original), or convert it once to safetensors in an environment you
    trust.
""")

_declare("E404", _ERROR, "bad model input", """
    The inputs file (`.npz`) does not match the model's `forward`: an array
    for a parameter is missing, or an array has the wrong shape or element
    type. Arrays are looked up by the parameter names of the model's
    `forward`.

    Erroneous example: the model takes `x: f32[B, T, 17, 2]`, but the file
    holds an array called `keypoints` of type float64.

    ```
    import numpy as np
    np.savez("inputs.npz", keypoints=poses)
    ```

    Corrected example:

    ```
    import numpy as np
    np.savez("inputs.npz", x=poses.astype(np.float32))
    ```
""")

_declare("E405", _ERROR, "cannot read file", """
    A file given to poseir could not be read: it does not exist, is a
    directory, is not readable, or is not valid UTF-8 text.

    Example:

    ```
    $ poseir ... examples/vp.pos
    error[E405]: cannot read file
    ```

    Check the path (here the extension should be `.pose`) and that the file
    is saved as UTF-8.
""")

_declare("E406", _ERROR, "cannot export to ONNX", """
    The model is valid, but this part of it cannot be written as an ONNX
    file: an op given a dtype the ONNX operator is not defined for (MaxPool,
    Conv, the normalizations and Dropout take floating-point tensors only;
    ONNX arithmetic takes no booleans), an opset outside the supported range
    (13 to 23), or a size that cannot be computed from the shapes of the
    model's inputs (every symbolic size in an exported model is computed at
    run time from the input shapes).

    Erroneous example: max pooling of integer keypoint indices.

    ```
    dim B, T
    module Pool() {
        forward(x: i64[B, 17, T]) -> (y: i64[B, 17, T // 2]) where T >= 2 {
            return x.max_pool1d(2)
        }
    }
    ```

    Corrected example: convert to a float type first.

    ```
    dim B, T
    module Pool() {
        forward(x: i64[B, 17, T]) -> (y: f32[B, 17, T // 2]) where T >= 2 {
            return x.cast("f32").max_pool1d(2)
        }
    }
    ```
""")

_declare("E407", _ERROR, "no such ONNX node", """
    `poseir explain-node` was given a node name that the ONNX file does not
    contain, or a node that poseir did not write (its `doc_string` names no
    `.pose` location). Node names appear in onnxruntime's error messages, for
    example `Name:'layers_bn.2/BatchNormalization_0'`.

    Example:

    ```
    $ poseir explain-node out/videopose3d.onnx expand_conv/Conv_0
    expand_conv/Conv_0: Conv from poseir conv1d
      --> examples/videopose3d.pose:44:48
    ```
""")

_declare("E408", _ERROR, "value does not fit the declared dtype", """
    A weights or inputs array has an element type that cannot be represented
    exactly in the dtype the model declares: integers, booleans or complex
    numbers for a float tensor, floats for an integer tensor, or float64
    values outside the range of float32. poseir never casts such values
    silently. Widening that keeps every value exactly (float16 to float32) or
    float64 values that fit float32 are accepted; `--verbose` reports them.

    Erroneous example: the model declares `x: f32[B, 32]`.

    ```
    np.savez("inputs.npz", x=np.arange(64).reshape(2, 32))   # int64
    ```

    Corrected example:

    ```
    np.savez("inputs.npz", x=np.arange(64, dtype=np.float32).reshape(2, 32))
    ```
""")

_declare("W409", _WARNING, "NaN or infinity in weights or inputs", """
    A weights or inputs array holds NaN or infinite values. They flow through
    every layer that reads them, so the outputs are usually NaN too. The most
    common causes are a diverged training run, a checkpoint saved after a
    failed step, and missing keypoints encoded as NaN.

    Example:

    ```
    np.isnan(weights["expand_conv.weight"]).any()   # True
    ```

    Replace missing keypoints before running (VideoPose3D uses the previous
    frame's detection), or load an earlier checkpoint.
""")

_declare("E410", _ERROR, "array larger than the allocation limit", """
    Running the model would allocate an array larger than the `array_bytes`
    limit (4 GiB by default), for example an attention matrix over a very long
    clip, or a parameter declared far larger than intended. poseir reports
    it at the op's line instead of running out of memory.

    Example: MotionBERT's attention at T = 100000 frames.

    ```
    $ poseir run motionbert.pose --inputs long_clip.npz -o out.npz
    error[E410]: this op would allocate 74.5 GiB
    ```

    Run shorter clips (or in windows), or raise the limit with
    `--limit array_bytes=64GiB` when the machine has the memory.
""")

_declare("E411", _ERROR, "file would run code when read", """
    A PyTorch checkpoint or a pickled dataset is a Python pickle, and a
    pickle may name any importable function or class (`os.system`,
    `builtins.exec`, a model class) and have it called while the file is
    read. poseir reads pickles with a restricted reader of its own that
    builds only tensors, storages, numpy arrays, numbers, strings and plain
    containers. When a file names anything else, poseir stops at that name,
    reports it, and calls nothing: a checkpoint that pickles a whole
    `nn.Module` is refused just like a malicious one.

    Example: a checkpoint saved with `torch.save(model, path)` names the
    model's class.

    ```
    error[E411]: `model.pth` refers to `common.model.TemporalModel`, which poseir does not load
    ```

    Corrected: save the state_dict instead (in an environment you trust).

    ```
    torch.save({"model_pos": model.state_dict()}, "model.pth")
    ```
""")

_declare("E412", _ERROR, "no state_dict in the checkpoint", """
    A checkpoint often holds more than the model's weights: the epoch, the
    learning rate, the optimizer's state, a random-number state. poseir
    uses the entry that is a state_dict (a dictionary from names to
    tensors): the whole file when it is one, else the single entry that is
    one, else the first of `state_dict`, `model_state_dict`, `model_pos`,
    `model`, `net`, `network`. When none or several other entries qualify,
    or `--weights-key` names an entry that is missing or not a state_dict,
    this error lists the entries the file has.

    Example: a checkpoint with two state_dicts under unusual names.

    ```
    $ poseir run examples/videopose3d.pose --inputs in.npz --weights two.pth -o out.npz
    error[E412]: `two.pth` holds several state_dicts: `teacher`, `student`
    ```

    Corrected: name the entry.

    ```
    $ poseir run examples/videopose3d.pose --inputs in.npz --weights two.pth --weights-key student -o out.npz
    ```
""")

_declare("E413", _ERROR, "cannot read dataset", """
    A dataset file given to `poseir eval` could not be read or does not
    have the layout VideoPose3D's preparation scripts write: a 3D file
    `data_3d_h36m.npz` whose `positions_3d` maps subject to action to an
    array of shape (frames, 32 or 17, 3) in metres, and a 2D file
    `data_2d_h36m_*.npz` whose `positions_2d` maps subject to action to a
    list of four arrays (one per camera) of shape (frames, joints, 2) in
    pixels, and whose `metadata` holds `keypoints_symmetry`. The object
    arrays inside are read with the same restricted reader as checkpoints.

    Example: the 2D file lacks a test subject.

    ```
    error[E413]: `data_2d_h36m_gt.npz`: has no subject `S11` in `positions_2d`
    ```

    Write both files with `poseir synth -o DIR`, or prepare them with
    VideoPose3D's `data/prepare_data_h36m.py`.
""")

_declare("E414", _ERROR, "model does not fit the evaluation protocol", """
    `poseir eval` runs a model the way VideoPose3D evaluates it: the model's
    input is 2D keypoints `f32[B, T, J, 2]` and its output 3D joints
    `f32[B, T - (rf - 1), J, 3]` (a sequence model whose receptive field is
    rf frames; the input is edge-padded by (rf - 1) / 2 frames per side), or
    `f32[B, 1, J, 3]` from a fixed window of F frames (one window per
    output frame), with J the dataset's joint count.

    Example: a single-pose lifter takes `f32[B, 32]`, not a sequence.

    ```
    $ poseir eval examples/simplebaseline.pose --data-3d d/data_3d_h36m.npz --data-2d d/data_2d_h36m_gt.npz
    error[E414]: `simplebaseline` does not fit the evaluation protocol: it takes (pose_2d: f32[B, 32]) -> (pose_3d: f32[B, 48])
      = note: `poseir eval` needs input f32[B, T, 17, 2] and output f32[B, T', 17, 3]
    ```

    Evaluate a temporal model such as `examples/videopose3d.pose`.
""")

_declare("E420", _ERROR, "cannot legalize for the target profile", """
    `poseir compile --profile NAME` rewrites a model for a constrained runtime
    (`static`, `rank4`, `edgetpu`, or a profile file), and this op could not be
    rewritten to meet one of the profile's rules. The message names the rule
    and the reason: a permutation that moves five separate runs of axes has no
    rank-4 form, a reduction over the batch axis cannot run on an Edge TPU, a
    tensor keeps more than the innermost three axes above 1.

    Example:

    ```
    $ poseir compile model.pose --profile rank4 -o model.onnx
    error[E420]: `permute` cannot be legalized for `rank4`: no tensor above rank 4
    ```

    Rewrite that step so that it moves fewer axes at a time (often by picking
    a slice first, as `qkv[0]` before the permute), or choose a profile whose
    runtime allows it. `docs/passes.md` describes each rule.
""")

_declare("E421", _ERROR, "dim values the model excludes", """
    `--dim NAME=VALUE` fixes a symbolic dim for a static profile, and the value
    breaks one of the model's `where` facts or a shape rule: a clip shorter
    than the receptive field, a length that must be a multiple of 3, a batch
    above a declared bound.

    Example: VideoPose3D's inference flow needs `T >= 243`.

    ```
    $ poseir compile videopose3d.pose --profile static --dim B=1 --dim T=100 -o vp.onnx
    error[E421]: --dim values the model excludes: T = 100 breaks `T >= 243`
    ```

    Choose values the model accepts (`--dim T=243`).
""")

# ---------------------------------------------------------------- E9xx: the compiler itself

_declare("E900", _ERROR, "internal compiler error", """
    poseir hit a condition it did not expect. This is a bug in poseir, not
    in your program. Please report it, including the `.pose` files, the
    command line and the full output.

    Example of what to include in the report:

    ```
    $ poseir --version
    $ poseir <the command that failed>
    <the complete output, including the internal error message>
    ```

    Until it is fixed, rewriting the expression named in the message in a
    different but equivalent way often avoids the bug.
""")
