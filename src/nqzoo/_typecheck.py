"""The runtime type checker that nqzoo's import hook applies to every annotated function.

It is beartype, plus one addition for error messages: when a call fails its check, the
symbolic axes of the annotations (such as `{self.hilbert.size}`) are evaluated against the call's
arguments and recorded in jaxtyping's axis table, so the error lists the size each one expects
(e.g. `self.hilbert.size=6`) next to the value that was given.

This module is imported before the import hook is installed, so it is not itself checked.
"""

import functools
import inspect
import re
import typing

import beartype
import beartype.roar
from jaxtyping._storage import get_shape_memo


_SYMBOLIC = re.compile(r"\{([^{}]+)\}")


def _annotations(hint: typing.Any):
    """The jaxtyping array annotations inside `hint` (through unions and optionals)."""
    if getattr(hint, "dim_str", None) is not None:
        yield hint
    for arg in typing.get_args(hint):
        yield from _annotations(arg)


def _record_expected_axes(
    single_memo: dict, signature: inspect.Signature, args: tuple, kwargs: dict
) -> None:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return
    for name, param in signature.parameters.items():
        for hint in _annotations(param.annotation):
            for expr in _SYMBOLIC.findall(hint.dim_str):
                try:
                    single_memo.setdefault(expr, eval(expr, {}, dict(bound.arguments)))
                except Exception:  # noqa: BLE001 - best effort, for the message only
                    pass


def typechecker(fn):
    """beartype, with the expected sizes of symbolic axes added to failure messages."""
    checked = beartype.beartype(fn)
    if checked is fn or not callable(checked):
        return checked
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        # The axis table of this call, as jaxtyping pushed it (a failing check restores the
        # table it had before, so it must be captured now to be written to afterwards).
        single_memo = get_shape_memo()[0]
        try:
            return checked(*args, **kwargs)
        except beartype.roar.BeartypeCallHintViolation:
            _record_expected_axes(single_memo, signature, args, kwargs)
            raise

    return wrapper
