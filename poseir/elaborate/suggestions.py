"""Did-you-mean for unknown names: the closest spelling that also fits the way the name is used."""

from __future__ import annotations

import difflib

from poseir.elaborate.values import ModuleDef, OpRef
from poseir.ops.registry import KEYWORDS, REQUIRED, VARIADIC, lookup
from poseir.syntax import ast


def closest_fitting(name: str, candidates, value_of, call: ast.Call | None = None) -> str | None:
    """The closest candidate to a misspelled `name`, skipping any that could not take `call`'s arguments.

    `value_of(candidate)` gives what a candidate names. A call `Lineer(256, p_dropout = 0.1)` meant
    for the user's own layer must never be "fixed" into the built-in `Linear`, whose hyper-parameters
    are other ones: a module or op is suggested for a call only when it accepts the call's arguments.
    """
    for guess in difflib.get_close_matches(name, sorted(set(candidates)), n=5, cutoff=0.6):
        if call is None or accepts(value_of(guess), call):
            return guess
    return None


def accepts(value, call: ast.Call) -> bool:
    """Whether a module type or an op could be called with `call`'s positional and keyword arguments."""
    positional = sum(1 for argument in call.arguments if argument.name is None)
    keywords = {argument.name for argument in call.arguments if argument.name is not None}
    if isinstance(value, ModuleDef):
        params = value.declaration.hyper_params
        names = [param.name for param in params]
        required = {param.name for param in params[positional:] if param.default is None}
        return positional <= len(params) and keywords <= set(names) and required <= keywords
    if isinstance(value, OpRef):
        op = lookup(value.name)
        signature = op.signature if op is not None else ()
        if any(param.kind == KEYWORDS for param in signature):
            return True
        names = {param.name for param in signature}
        fixed = [param for param in signature if param.kind != VARIADIC]
        variadic = any(param.kind == VARIADIC for param in signature)
        required = {param.name for param in fixed[positional:] if param.default is REQUIRED}
        return (variadic or positional <= len(fixed)) and keywords <= names and required <= keywords
    return True
