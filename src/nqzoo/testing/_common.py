"""Shared pieces of the checks: spaces, configurations, tolerances, message formatting."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._misc import RealNumber
from ..hilbert import AbstractDiscreteHilbert, AbstractHilbert


def hilbert_of(model: Any, hilbert: Any, argname: str = "hilbert") -> AbstractHilbert:
    """`hilbert` if given, else `model.hilbert`; a `TypeError` naming `argname` otherwise."""
    if hilbert is None:
        hilbert = getattr(model, "hilbert", None)
    if not isinstance(hilbert, AbstractHilbert):
        raise TypeError(
            f"{argname} must be an nqzoo Hilbert space (pass {argname}=..., or use a model "
            f"with a `hilbert` field), got {argname}={hilbert!r}."
        )
    return hilbert


def discrete_hilbert_of(model: Any, hilbert: Any, argname: str = "hilbert"):
    hilbert = hilbert_of(model, hilbert, argname)
    if not isinstance(hilbert, AbstractDiscreteHilbert):
        raise TypeError(
            f"{argname} must be a discrete nqzoo Hilbert space (Spin, Qubit, Fock) for this "
            f"check, got {argname}={hilbert!r}."
        )
    return hilbert


def machine_pow_of(model: Any, machine_pow: Any) -> int | float:
    """`machine_pow` if given, else `model.machine_pow`, else 2 (|psi|^2)."""
    if machine_pow is None:
        machine_pow = getattr(model, "machine_pow", 2)
    if isinstance(machine_pow, bool) or not isinstance(machine_pow, int | float | np.number):
        raise TypeError(f"machine_pow must be a positive number, got {machine_pow!r}.")
    if not machine_pow > 0:
        raise ValueError(f"machine_pow must be a positive number, got {machine_pow!r}.")
    return machine_pow.item() if isinstance(machine_pow, np.number) else machine_pow


def configurations(
    hilbert: AbstractHilbert, x: Any, key: Any, n_configs: int, argname: str = "x"
) -> jax.Array:
    """`x` as a `(n, N)` array, or `n_configs` random configurations drawn with `key`."""
    if x is None:
        if key is None:
            raise TypeError(f"give the configurations {argname}=... or a PRNG key key=....")
        x = hilbert.random_state(key, n_configs)
    x = jnp.asarray(x)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[-1] != hilbert.size:
        raise ValueError(
            f"{argname} must have shape (n, N={hilbert.size}) (or (N,)), got shape {x.shape}."
        )
    return x


def real_dtype(dtype: Any) -> np.dtype:
    return np.finfo(np.dtype(dtype)).dtype


def is_single(dtype: Any) -> bool:
    """Whether `dtype` (real or complex) is single (or lower) precision."""
    return real_dtype(dtype).itemsize <= 4


def tolerance(value: RealNumber | None, dtype: Any, double: float, single: float) -> float:
    """`value`, or the default for the precision of `dtype`."""
    if value is not None:
        if not value >= 0:
            raise ValueError(f"tolerances must be non-negative numbers, got {value!r}.")
        return float(value)
    return single if is_single(dtype) else double


def shown(x: Any) -> str:
    """A configuration or a short vector, on one line."""
    return np.array2string(np.asarray(x), separator=", ", max_line_width=10**6, precision=6)


def name_of(model: Any) -> str:
    return getattr(type(model), "__name__", repr(model))


def order_of(model: Any, n: int) -> np.ndarray:
    """The autoregressive order `model.reorder(arange(N))` (site generated k-th), checked."""
    reorder = getattr(model, "reorder", None)
    order = np.arange(n) if reorder is None else np.asarray(reorder(np.arange(n)))
    if order.shape != (n,) or sorted(order.tolist()) != list(range(n)):
        raise AssertionError(
            f"{name_of(model)}.reorder(arange({n})) = {shown(order)} is not a permutation of "
            f"the {n} sites, so the model has no autoregressive order."
        )
    return order


@eqx.filter_jit
def call(model: Callable, x: jax.Array) -> jax.Array:
    return model(x)


def log_psi(model: Callable, x: jax.Array) -> np.ndarray:
    """`model(x)` for `x` of shape `(n, N)`, jitted when `model` is a Module."""
    out = call(model, x) if isinstance(model, eqx.Module) else model(x)
    out = np.asarray(out)
    if out.shape != x.shape[:1]:
        raise AssertionError(
            f"{name_of(model)}(x) for x of shape {tuple(x.shape)} returned shape {out.shape}, "
            f"not {tuple(x.shape[:1])} (one log-amplitude per configuration)."
        )
    return out


def fast_steps(model: Any, state: Any, x: jax.Array, order: np.ndarray, *, amplitudes: bool):
    """Probabilities `(n, N, local_size)` of every site from `model.conditional` steps along
    `order` (and, if `amplitudes`, the network's log-conditionals from `model.step`), in
    site order."""
    inverse = np.argsort(order)
    return _fast_steps(model, state, x, jnp.asarray(order), jnp.asarray(inverse), amplitudes)


@eqx.filter_jit
def _fast_steps(model, state, x, order, inverse, amplitudes):
    def one(config):
        def step(state, index):
            # a copy: an eqx.nn.State refuses to be read again once `conditional` used it
            copy = jax.tree.unflatten(*reversed(jax.tree.flatten(state))) if amplitudes else None
            p, new_state = model.conditional(config, index, state)
            log_amp = model.step(config, index, copy)[0] if amplitudes else None
            return new_state, (p, log_amp)

        _, (p, log_amp) = jax.lax.scan(step, state, order)
        return p[inverse], None if log_amp is None else log_amp[inverse]

    return jax.vmap(one)(x)


def standard_promotion():
    """JAX's default promotion rules (for third-party code inside a strict test session)."""
    import contextlib

    stack = contextlib.ExitStack()
    stack.enter_context(jax.numpy_dtype_promotion("standard"))
    stack.enter_context(jax.numpy_rank_promotion("allow"))
    return stack


def row_index(states: Any, configs: Any) -> np.ndarray:
    """For every row of `configs`, its row in `states` (-1 if it is not one of them)."""
    states, configs = np.asarray(states), np.asarray(configs)
    both = np.concatenate([states, configs.astype(states.dtype)])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    lookup = np.full(inverse.max() + 1, -1)
    lookup[inverse[: len(states)]] = np.arange(len(states))
    rows = lookup[inverse[len(states) :]]
    # a configuration whose values do not survive the cast to the states' dtype is not a state
    exact = np.all(configs.astype(states.dtype) == configs, axis=-1)
    return np.where(exact, rows, -1)
