"""Runtime type checking: the checker nqzoo's import hook applies, and the field checks.

- [`typechecker`][] is what `jaxtyping.install_import_hook` wraps every function of the package
  with (inside `jaxtyping.jaxtyped`). It is beartype, applied lazily: a function is decorated at
  its first call, not at import, so `import nqzoo` does not pay for the hundreds of functions a
  program never calls. When a call fails its check, the symbolic axes of the annotations (such as
  `{self.hilbert.size}`) are evaluated against the call's arguments, so the error lists the size
  each one expects (e.g. `self.hilbert.size=6`) next to the value that was given.
- [`check_fields`][] checks the array fields of an Equinox module against the annotations written
  on its class. Models call it from `__check_init__` and at the top of their checked methods (a
  field swapped in with `eqx.tree_at` skips `__check_init__`). Under `eqx.filter_jit` both run
  once, at trace time, and `JAXTYPING_DISABLE=1` turns both off.

This module is imported before the import hook is installed, so it is not itself checked.
"""

import contextlib
import dataclasses
import functools
import inspect
import io
import re
import typing
import weakref

import beartype
import beartype.door
import beartype.roar
import equinox as eqx
import jaxtyping


# The one pattern for symbolic axes: `{expr}` inside a jaxtyping shape string.
_SYMBOLIC = re.compile(r"\{([^{}]+)\}")

# Private jaxtyping API, used for one thing only: writing the evaluated symbolic axes into the
# axis table that `jaxtyped` prints at the end of its error message. `jaxtyped` catches whatever
# the checker raises and builds a new `TypeCheckError` whose only per-call content (besides the
# argument values) is that table, so no public route reaches the message. If a jaxtyping release
# moves or changes it, the checks are unchanged and the messages lose only the expected sizes
# (`tests/test_shape_checks.py::test_wrong_input_width` then fails).
try:
    from jaxtyping._storage import get_shape_memo as _get_shape_memo
except ImportError:  # pragma: no cover - depends on the jaxtyping version
    _get_shape_memo = None


def _axis_table() -> dict | None:
    """The table of axis sizes of the innermost `jaxtyped` call, if it can be reached."""
    try:
        table = _get_shape_memo()[0]
    except Exception:  # noqa: BLE001 - see above: never let the message helper break a check
        return None
    return table if isinstance(table, dict) else None


def _array_hints(hint: typing.Any):
    """The jaxtyping array annotations inside `hint` (through unions and optionals)."""
    if getattr(hint, "dim_str", None) is not None:
        yield hint
    for arg in typing.get_args(hint):
        yield from _array_hints(arg)


def _expected_sizes(fn, args: tuple, kwargs: dict) -> dict[str, object]:
    """`{expr: value}` for every symbolic axis of `fn`'s annotations, evaluated on the call."""
    signature = inspect.signature(fn)
    try:
        arguments = dict(signature.bind(*args, **kwargs).arguments)
    except TypeError:
        return {}
    hints = [p.annotation for p in signature.parameters.values()]
    hints.append(signature.return_annotation)
    sizes = {}
    for hint in hints:
        for array_hint in _array_hints(hint):
            for expr in _SYMBOLIC.findall(array_hint.dim_str):
                try:
                    sizes.setdefault(expr, eval(expr, {}, arguments))
                except Exception:  # noqa: BLE001 - best effort, for the message only
                    pass
    return sizes


# Every lazily checked function, so that tests can decorate them all (`decorate_all`).
_LAZY: "weakref.WeakSet[_LazyBeartype]" = weakref.WeakSet()


class _LazyBeartype:
    """`beartype.beartype(fn)`, built at the first call."""

    __slots__ = ("fn", "checked", "__weakref__")

    def __init__(self, fn):
        self.fn = fn
        self.checked = None
        _LAZY.add(self)

    def decorate(self):
        if self.checked is None:
            try:
                self.checked = beartype.beartype(self.fn)
            except beartype.roar.BeartypeException as e:
                # An `AnnotationError` is passed through by `jaxtyped` as it is (any other
                # exception would be reported as a failed check of some argument).
                raise jaxtyping.AnnotationError(
                    f"beartype cannot check the annotations of {self.fn.__module__}."
                    f"{self.fn.__qualname__}: {e}"
                ) from e
        return self.checked

    def __call__(self, *args, **kwargs):
        checked = self.checked if self.checked is not None else self.decorate()
        # The axis table of this call, as `jaxtyped` pushed it. A failing check replaces the
        # table with the copy it made before, so it must be captured now to be written later.
        table = _axis_table()
        try:
            return checked(*args, **kwargs)
        except beartype.roar.BeartypeCallHintViolation:
            if table is not None:
                for expr, size in _expected_sizes(self.fn, args, kwargs).items():
                    table.setdefault(expr, size)
            raise


def typechecker(fn):
    """beartype, applied at the first call, with the expected sizes of symbolic axes added to
    failure messages. This is the checker passed to `jaxtyping.install_import_hook`.

    **Arguments:**

    - `fn`: the function to check (in practice the signature-only functions that
      `jaxtyping.jaxtyped` builds from each function of the package).

    **Returns:** a callable with the signature of `fn` that checks its arguments (and return
    value) against their annotations when called.
    """
    return _LazyBeartype(fn)


def decorate_all(package: str = "nqzoo") -> int:
    """Apply beartype now to every function of `package` still waiting for its first call, so
    that an annotation beartype cannot handle fails here rather than at that call. For tests.

    **Arguments:**

    - `package`: only functions whose module is this package or inside it are decorated
      (functions that tests check with `typechecker` directly are left alone).

    **Returns:** the number of functions decorated.
    """
    pending = [
        lazy
        for lazy in list(_LAZY)
        if lazy.checked is None and f"{lazy.fn.__module__}.".startswith(f"{package}.")
    ]
    for lazy in pending:
        lazy.decorate()
    return len(pending)


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


def _expected(hint: typing.Any, module: eqx.Module) -> str:
    """An annotation with its `{self.…}` axes evaluated, e.g. `Inexact[Array, '6 12']`."""
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


# `jaxtyped` gives the checks one axis table (axis names bind across the fields) and passes
# `self` to jaxtyping, which evaluates the symbolic axes `{self.…}` against it.
@jaxtyping.jaxtyped(typechecker=None)
def _check_fields(self: eqx.Module, hints: dict[str, typing.Any]) -> None:
    for name, hint in hints.items():
        value = getattr(self, name)
        if not beartype.door.is_bearable(value, hint):
            with contextlib.redirect_stdout(io.StringIO()) as bound:
                jaxtyping.print_bindings()  # the axis sizes bound by the fields before this one
            raise TypeError(
                f"{type(self).__name__}.{name} is {_describe(value)}, which does not match its "
                f"annotation {_expected(hint, self)}. {bound.getvalue().strip()}".rstrip()
            )


def check_fields(module: eqx.Module) -> None:
    """Check every dynamic field of `module` against its class-level jaxtyping annotation.

    Axis names are shared across the fields of one module; `{self.…}` axes are evaluated
    against `module`. Does nothing when jaxtyping is disabled (`JAXTYPING_DISABLE=1`).

    **Arguments:**

    - `module`: the module to check.

    **Raises:** `TypeError` naming the class, the field, the value's shape and dtype, the
    expected annotation with its symbolic axes evaluated, and the axis sizes bound so far.
    """
    if jaxtyping.config.jaxtyping_disable:
        return
    _check_fields(module, _field_hints(type(module)))
