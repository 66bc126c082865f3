"""Runtime checks of array fields against their jaxtyping annotations.

Equinox modules with a custom `__init__` only get their `__init__` arguments checked by
jaxtyping. [`check_fields`][] closes that gap: it checks every array field of a module against
the annotation written on the class, binding axis names across fields, and evaluates symbolic
axes such as `"{self.hilbert.size}"` against the module itself. Models call it from
`__check_init__` (construction) and at the top of their checked methods (so that a field swapped
in with `eqx.tree_at`, which skips `__check_init__`, is still caught). Under `eqx.filter_jit` it
runs once, at trace time.
"""

import dataclasses
import functools
import re
import typing

import beartype.door
import equinox as eqx
import jaxtyping
from jaxtyping._storage import pop_shape_memo, push_shape_memo, shape_str


@functools.cache
def _field_hints(cls: type) -> dict[str, typing.Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(cls)
        if not f.metadata.get("static", False) and f.name in hints
    }


def _describe(value: object) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None:
        return f"{type(value).__name__} {value!r}"
    return f"{dtype}{list(shape)}"


_SYMBOLIC = re.compile(r"\{([^}]*)\}")


def _expected(hint: typing.Any, module: eqx.Module) -> str:
    """Render an annotation with its `{self.…}` axes evaluated, e.g. `Inexact[Array, '6 12']`."""
    dims = getattr(hint, "dim_str", None)
    if dims is None:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = " | None" if type(None) in typing.get_args(hint) else ""
        return " | ".join(_expected(a, module) for a in args) + optional if args else str(hint)

    def evaluate(match: re.Match) -> str:
        try:
            return str(eval(match.group(1), {"self": module}))
        except Exception:  # noqa: BLE001 - best-effort rendering for an error message
            return match.group(0)

    return f"{hint.__name__.split('[')[0]}[Array, '{_SYMBOLIC.sub(evaluate, dims)}']"


def check_fields(module: eqx.Module) -> None:
    """Check every dynamic field of `module` against its class-level jaxtyping annotation.

    Axis names are shared across the fields of one module; `{self.…}` axes are evaluated
    against `module`. Does nothing when jaxtyping is disabled (`JAXTYPING_DISABLE=1`).

    **Arguments:**

    - `module`: the module to check.

    **Raises:** `TypeError` naming the class, the field, the value's shape and dtype, the
    expected annotation and the axis sizes bound so far.
    """
    if jaxtyping.config.jaxtyping_disable:
        return
    memos = push_shape_memo({"self": module})
    try:
        for name, hint in _field_hints(type(module)).items():
            value = getattr(module, name)
            if not beartype.door.is_bearable(value, hint):
                bound = shape_str(memos).strip()
                raise TypeError(
                    f"{type(module).__name__}.{name} is {_describe(value)}, which does not "
                    f"match its annotation {_expected(hint, module)}. {bound}"
                )
    finally:
        pop_shape_memo()
