"""Parity with NetKet: an nqzoo model and a NetKet module agree on random configurations."""

import importlib
import sys
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jaxtyping import ArrayLike, PRNGKeyArray

from .._misc import positive_int, RealNumber
from ..hilbert import AbstractHilbert
from ._common import (
    configurations,
    hilbert_of,
    name_of,
    shown,
    standard_promotion,
    tolerance,
)


def require_netket() -> Any:
    """Import NetKet, or skip the running test (under pytest) or raise if it is missing.

    **Returns:** the `netket` module.

    **Raises:** `pytest.skip.Exception` when NetKet is not installed and pytest is running
    (the test is reported as skipped, with the reason); `ImportError` naming the extra to
    install otherwise.
    """
    try:
        return importlib.import_module("netket")
    except ImportError as error:
        message = (
            "this check needs NetKet, which is not installed: `pip install nqzoo[netket]` "
            f"(or `pip install netket`); {error}"
        )
        pytest = sys.modules.get("pytest")
        if pytest is not None:
            pytest.skip(message)
        raise ImportError(message) from error


def _wrapped_phase(d: np.ndarray) -> np.ndarray:
    """`d` with its imaginary part brought into [-pi, pi) (phases compare modulo 2 pi)."""
    if not np.iscomplexobj(d):
        return d
    return d.real + 1j * (np.mod(d.imag + np.pi, 2 * np.pi) - np.pi)


@eqx.filter_jit
def _outputs(model, x, conditionals):
    """log psi and (if `conditionals`) the conditionals, in one compilation."""
    return model(x), model.conditionals(x) if conditionals else None


def _apply(nk_module, variables, x, conditionals):
    out = nk_module.apply(variables, x)
    if not conditionals:
        return out, None
    return out, nk_module.apply(variables, x, method=nk_module.conditionals)


# compiled once per (module, shapes): Flax modules are hashable, hence static arguments
_apply_jit = jax.jit(_apply, static_argnums=(0, 3))


def _netket_outputs(nk_module, nk_variables, x, conditionals):
    """NetKet's log psi and (if `conditionals`) conditionals, in one compilation."""
    try:
        hash(nk_module)
    except TypeError:  # an unhashable module: compiled for this call only
        run = jax.jit(lambda v, x: _apply(nk_module, v, x, conditionals))
    else:
        def run(variables, x):
            return _apply_jit(nk_module, variables, x, conditionals)
    with standard_promotion():
        return jax.tree.map(np.asarray, run(nk_variables, x))


def assert_netket_parity(
    model: Any,
    nk_module: Any,
    nk_variables: Any,
    *,
    x: ArrayLike | None = None,
    key: PRNGKeyArray | None = None,
    hilbert: AbstractHilbert | None = None,
    n_configs: int = 16,
    conditionals: bool | None = None,
    rtol: RealNumber | None = None,
) -> None:
    r"""Check that an nqzoo model and a NetKet module give the same $\log\psi$ on random
    configurations.

    `nk_module.apply(nk_variables, x)` (jitted, under JAX's standard promotion rules, which
    NetKet's code needs even in a strict test session) is compared with `model(x)`: the
    real parts and the phases (modulo $2\pi$), relative to the largest $|\log\psi|$ (at
    least 1), the amplitudes $\psi = e^{\log\psi}$ relative to the largest $|\psi|$, and
    $-\infty$ at the same configurations. For an autoregressive model the
    conditional probabilities (`conditionals`) are compared too. Use random parameters, not
    the initial ones: zero biases or identical layers hide errors.

    Needs NetKet: without it, the running pytest test is skipped (or, outside pytest, an
    `ImportError` says what to install).

    **Arguments:**

    - `model`: the nqzoo model.
    - `nk_module`, `nk_variables`: the NetKet (Flax) module and its variables
      (`{"params": ...}`), e.g. from [`nqzoo.interop.netket.to_netket`][] or the ones
      [`nqzoo.interop.netket.from_netket`][] converted.
    - `x`: configurations `(n, N)`; by default `n_configs` drawn with
      `hilbert.random_state(key, ...)`.
    - `key`: PRNG key for the configurations.
    - `hilbert`: the space; `model.hilbert` by default.
    - `n_configs`: the number of random configurations.
    - `conditionals`: also compare `conditionals`; by default for autoregressive models.
    - `rtol`: the tolerance; default `1e-12` (`1e-5` for a single-precision model).

    **Raises:** `AssertionError` naming the configuration where the two differ most, both
    values and the relative difference.
    """
    from ..models import AbstractARNN

    require_netket()
    hilbert = hilbert_of(model, hilbert)
    n_configs = positive_int(n_configs, "n_configs")
    x = configurations(hilbert, x, key, n_configs)
    if conditionals is None:
        conditionals = isinstance(model, AbstractARNN) and hasattr(nk_module, "conditionals")
    ours, ours_cond = jax.tree.map(np.asarray, _outputs(model, x, bool(conditionals)))
    theirs, theirs_cond = _netket_outputs(nk_module, nk_variables, x, bool(conditionals))
    tol = tolerance(rtol, ours.dtype, 1e-12, 1e-5)
    name = f"{name_of(model)} and NetKet's {type(nk_module).__name__}"
    if ours.shape != x.shape[:1]:
        raise AssertionError(
            f"{name_of(model)}(x) for x of shape {tuple(x.shape)} returned shape {ours.shape}, "
            f"not {tuple(x.shape[:1])} (one log-amplitude per configuration)."
        )
    if theirs.shape != ours.shape:
        raise AssertionError(
            f"{name}: log psi of shape {ours.shape} and {theirs.shape} for x of shape {x.shape}."
        )
    inf_ours, inf_theirs = np.isneginf(ours.real), np.isneginf(theirs.real)
    if np.any(inf_ours != inf_theirs):
        c = int(np.flatnonzero(inf_ours != inf_theirs)[0])
        raise AssertionError(
            f"{name} disagree at configuration #{c} x={shown(x[c])}: log psi = {ours[c]} "
            f"(nqzoo) and {theirs[c]} (NetKet); only one of them is -inf."
        )
    finite = ~inf_ours
    scale = max(1.0, float(np.max(np.abs(theirs[finite]), initial=0)))
    with np.errstate(invalid="ignore"):
        d = _wrapped_phase(ours.astype(np.complex128) - theirs.astype(np.complex128))
    error = np.where(finite, np.abs(d) / scale, 0)
    error = np.where(np.isnan(error), np.inf, error)
    if np.any(error > tol):
        c = int(np.argmax(error))
        raise AssertionError(
            f"{name} disagree: at configuration #{c} x={shown(x[c])} log psi = {ours[c]!r} "
            f"(nqzoo) and {theirs[c]!r} (NetKet): difference {float(error[c]):.3g} relative to "
            f"max |log psi| = {scale:.3g} (> rtol={tol:.3g}); {int((error > tol).sum())} of "
            f"the {len(x)} configurations differ."
        )
    # the amplitudes psi = exp(log psi), relative to the largest |psi| (at the largest
    # amplitudes, an error in log psi weighs fully, not relative to max |log psi|)
    top = np.max(theirs.real[finite], initial=-np.inf)
    if np.isfinite(top):
        with np.errstate(invalid="ignore", over="ignore"):
            psi_ours = np.exp(ours.astype(np.complex128) - top)
            psi_theirs = np.exp(theirs.astype(np.complex128) - top)
        error = np.abs(psi_ours - psi_theirs)
        error = np.where(np.isnan(error), np.inf, error)
        if np.any(error > tol):
            c = int(np.argmax(error))
            raise AssertionError(
                f"{name} disagree: at configuration #{c} x={shown(x[c])} psi = exp(log psi) "
                f"differs by {float(error[c]):.3g} times the largest |psi| of the batch (> "
                f"rtol={tol:.3g}): log psi = {ours[c]!r} (nqzoo) and {theirs[c]!r} (NetKet)."
            )
    if conditionals:
        ours, theirs = ours_cond, theirs_cond
        error = np.abs(ours - theirs).max(-1) / max(float(np.abs(theirs).max()), 1e-300)
        error = np.where(np.isnan(error), np.inf, error)
        if np.any(error > tol):
            c, site = np.unravel_index(int(np.argmax(error)), error.shape)
            raise AssertionError(
                f"{name}: the conditionals of site {site} at configuration #{c} "
                f"x={shown(x[c])} differ: {shown(ours[c, site])} (nqzoo) and "
                f"{shown(theirs[c, site])} (NetKet), relative difference "
                f"{float(error[c, site]):.3g} > rtol={tol:.3g}."
            )

