"""The helpers every converter uses: strict copying of NetKet parameters into an nqzoo model and
back, and the Hilbert space a NetKet parameter tree acts on.

A converter describes its model by *parameter paths*: a dict from the path of a NetKet
parameter (the keys under `params`, e.g. `("Dense", "kernel")`) to a function selecting the
nqzoo array it becomes (`lambda m: m.kernel`). A selector that gives `None` (a disabled bias)
means the model has no parameter there. The same dict converts in both directions:
[`with_params`][] copies NetKet's arrays in, [`params_of`][] reads them out.
"""

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ..nn import initializers


Path = tuple[str, ...]
Paths = dict[Path, Callable[[Any], Any]]

def placeholders(*initializer_names: str) -> dict[str, Any]:
    """Keyword arguments that build a placeholder nqzoo model, whose arrays `with_params` then
    replaces: the zeros initialiser for each name given (no random draws, which would compile
    a sampler for every new shape) and a fixed `key`."""
    return {**dict.fromkeys(initializer_names, initializers.zeros), "key": jax.random.key(0)}


# The path of the module being converted inside the variables the user gave (empty at the top;
# `("module",)` while SymmExpSum converts its wrapped module), so that every message names a
# parameter by its full path in the user's variables.
_WITHIN: contextvars.ContextVar[Path] = contextvars.ContextVar("within", default=())


@contextlib.contextmanager
def within(prefix: Path) -> Iterator[None]:
    """Convert a wrapped module stored under `prefix`: messages name its parameters by their
    full path (`params/module/Dense/kernel`, not `params/Dense/kernel`)."""
    token = _WITHIN.set((*_WITHIN.get(), *prefix))
    try:
        yield
    finally:
        _WITHIN.reset(token)


def show(path: Path) -> str:
    """A parameter path as NetKet users write it, e.g. `params/Dense/kernel` (with the prefix
    of a wrapped module, see `within`)."""
    return "/".join(("params", *_WITHIN.get(), *path))


def layer_paths(prefix: Path, layer: Callable[[Any], Any]) -> Paths:
    """The `kernel` and `bias` of the layer `layer(model)`, stored by NetKet under `prefix`."""
    return {
        (*prefix, "kernel"): lambda m: layer(m).kernel,
        (*prefix, "bias"): lambda m: layer(m).bias,
    }


def nested(prefix: Path, submodule: Callable[[Any], Any], paths: Paths) -> Paths:
    """The `paths` of the submodule `submodule(model)`, stored by NetKet under `prefix`."""
    return {(*prefix, *path): (lambda m, w=where: w(submodule(m))) for path, where in paths.items()}


def describe(module: Any) -> str:
    """A NetKet module with the hyperparameters that shape its parameters, e.g.
    `RBM(param_dtype=float64, alpha=1, use_hidden_bias=True, use_visible_bias=False)`."""
    shown = []
    for field in dataclasses.fields(module):
        value = getattr(module, field.name)
        if field.name == "param_dtype":
            shown.append(f"param_dtype={jnp.dtype(value).name}")
        elif field.name not in ("parent", "name", "precision") and isinstance(
            value, bool | int | float | str | tuple | list | None
        ):
            shown.append(f"{field.name}={value!r}")
    return f"{type(module).__name__}({', '.join(shown)})"


def _spec(array: Any) -> str:
    return f"{jnp.result_type(array).name} {tuple(jnp.shape(array))}"


def _mismatch(module: Any, problem: str, expected: dict[Path, Any]) -> ValueError:
    listed = ", ".join(f"{show(path)}: {_spec(array)}" for path, array in expected.items())
    return ValueError(
        f"The variables do not match NetKet's {describe(module)}: {problem}. With these "
        f"hyperparameters the module has exactly the parameters {listed}."
    )


def flatten(params: Any, prefix: Path = ()) -> dict[Path, Any]:
    """The leaves of a nested dict of parameters by path (`None` leaves are absent)."""
    leaves = {}
    for key, value in params.items():
        path = (*prefix, str(key))
        if hasattr(value, "items"):
            leaves.update(flatten(value, path))
        elif value is not None:
            leaves[path] = value
    return leaves


def with_params(model: eqx.Module, params: Any, paths: Paths, module: Any) -> eqx.Module:
    """`model` with its arrays replaced, bit for bit, by NetKet's parameters.

    Strict: the parameter paths must be exactly those of `paths` whose nqzoo array is not
    `None`, and every parameter must have the shape and dtype of the array it replaces (the
    placeholder `model` is built from the module's hyperparameters, including `param_dtype`).

    **Arguments:**

    - `model`: the placeholder nqzoo model, built from the NetKet module's hyperparameters.
    - `params`: NetKet's `variables["params"]` (a nested dict).
    - `paths`: the model's parameter paths (see the module docstring).
    - `module`: the NetKet module, named in error messages.

    **Returns:** the model holding NetKet's arrays.

    **Raises:** `ValueError` naming each missing or unexpected parameter path, or the path
    whose shape or dtype is wrong, with the parameters the module expects.
    """
    given = flatten(params)
    expected = {path: where(model) for path, where in paths.items()}
    expected = {path: array for path, array in expected.items() if array is not None}
    problems = [f"missing parameter {show(p)}" for p in expected if p not in given]
    problems += [f"unexpected parameter {show(p)}" for p in given if p not in expected]
    if problems:
        raise _mismatch(module, "; ".join(problems), expected)
    values = []
    for path, current in expected.items():
        value = jnp.asarray(given[path])
        if value.shape != current.shape or value.dtype != current.dtype:
            problem = f"{show(path)} is {_spec(value)} but the module expects {_spec(current)}"
            raise _mismatch(module, problem, expected)
        values.append(value)
    wheres = [paths[path] for path in expected]
    return eqx.tree_at(lambda m: [where(m) for where in wheres], model, values)


def params_of(model: eqx.Module, paths: Paths) -> dict:
    """NetKet's nested `params` dict holding the model's arrays (the inverse of `with_params`)."""
    tree: dict = {}
    for path, where in paths.items():
        array = where(model)
        if array is None:
            continue
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = array
    return tree


def leading_size(params: Any, path: Path, module: Any) -> int:
    """The first axis of the parameter at `path`, read before the model can be built (NetKet
    infers the input width from the data; nqzoo reads it from the first kernel)."""
    node = params
    for key in path:
        if not hasattr(node, "items") or key not in node:
            raise ValueError(
                f"The variables do not match NetKet's {describe(module)}: missing parameter "
                f"{show(path)}, whose first axis gives the number of inputs."
            )
        node = node[key]
    return int(jnp.shape(node)[0])


def hilbert_for(hilbert: Any, n_sites: int, default: Callable[[int], Any], module: Any) -> Any:
    """`hilbert` (or `default(n_sites)` if `None`), checked to have `n_sites` sites."""
    if hilbert is None:
        return default(n_sites)
    if hilbert.size != n_sites:
        raise ValueError(
            f"The parameters of NetKet's {type(module).__name__} act on {n_sites} sites but "
            f"hilbert={hilbert!r} has size {hilbert.size}."
        )
    return hilbert
