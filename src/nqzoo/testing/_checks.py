"""Exact properties of a wave function: normalisation, the autoregressive property, fast
equals slow, symmetry, shape checking."""

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, PRNGKeyArray

from .._misc import positive_int, RealNumber
from ..hilbert import AbstractDiscreteHilbert, AbstractHilbert
from ._common import (
    configurations,
    discrete_hilbert_of,
    fast_steps,
    hilbert_of,
    log_psi,
    machine_pow_of,
    name_of,
    order_of,
    row_index,
    shown,
    tolerance,
)


# --------------------------------------------------------------------------------------------
# Normalisation


def _product_space(hilbert: AbstractDiscreteHilbert) -> np.ndarray:
    """Every configuration of the unconstrained product space of `hilbert`."""
    n, k = hilbert.size, hilbert.local_size
    powers = k ** np.arange(n - 1, -1, -1)
    idx = (np.arange(k**n)[:, None] // powers) % k
    return np.asarray(hilbert.local_states, dtype=hilbert.dtype)[idx]


def assert_normalized(
    model: Callable,
    hilbert: AbstractDiscreteHilbert | None = None,
    *,
    state: eqx.nn.State | None = None,
    machine_pow: RealNumber | None = None,
    rtol: RealNumber | None = None,
) -> None:
    r"""Check that $\sum_x |\psi(x)|^p = 1$ over every configuration of a small space.

    The sum runs over `hilbert.all_states()`, which on a constrained space
    (`Spin(s, N, total_sz=M)`, `Fock(n_max, N, n_particles=K)`) lists only the states inside
    the constraint. For an autoregressive model ([`nqzoo.models.AbstractARNN`][]) two more
    things are checked:

    - on a constrained space, no weight lies outside it ($|\psi(x)|^p = 0$ on every other
      configuration of the product space);
    - when the sum is off, the conditionals are inspected to say *where*: the site and
      configuration whose conditional probabilities do not sum to 1.

    With `state` (a fast model's cache state), the same sum is also computed from the
    probabilities of the model's `conditional` steps, so the fast path is checked too.

    **Arguments:**

    - `model`: the wave function, a callable `(n, N) -> (n,)` returning $\log\psi$.
    - `hilbert`: the space; `model.hilbert` by default. At most
      `nqzoo.hilbert.MAX_ENUMERABLE_STATES` states.
    - `state`: optional cache state of a fast autoregressive model.
    - `machine_pow`: the power $p$; `model.machine_pow` by default (2 for a model without one).
    - `rtol`: tolerance on $|\sum_x|\psi(x)|^p - 1|$; default `1e-10` (`1e-5` for a
      single-precision model).

    **Raises:** `AssertionError` saying what sum was found, by how much it misses 1 and, for
    an autoregressive model, the site and configuration where a conditional is not
    normalised or the configuration outside the constraint that carries weight.
    """
    from ..models import AbstractARNN

    hilbert = discrete_hilbert_of(model, hilbert)
    p = machine_pow_of(model, machine_pow)
    states = hilbert.all_states()
    log_p = p * log_psi(model, states).real
    tol = tolerance(rtol, log_p.dtype, 1e-10, 1e-5)
    name = name_of(model)
    where = f"the {len(states)} configurations of {hilbert!r}"
    if np.any(np.isnan(log_p)):
        bad = int(np.flatnonzero(np.isnan(log_p))[0])
        raise AssertionError(
            f"{name}: log psi is NaN at configuration #{bad} x={shown(states[bad])} of {where}."
        )
    total = float(np.exp(np.logaddexp.reduce(log_p.astype(np.float64))))
    if not abs(total - 1) <= tol:
        message = (
            f"{name} is not normalised: sum_x |psi(x)|^{p} over {where} is {total!r} "
            f"(|sum - 1| = {abs(total - 1):.3g} > rtol={tol:.3g})."
        )
        if isinstance(model, AbstractARNN):
            message += _unnormalised_conditional(model, states, tol)
        raise AssertionError(message)
    if isinstance(model, AbstractARNN) and hilbert.constrained:
        full = _product_space(hilbert)
        outside = row_index(states, full) < 0
        weight = np.exp(p * log_psi(model, jnp.asarray(full[outside])).real)
        if np.any(weight > 0):
            worst = int(np.argmax(weight))
            raise AssertionError(
                f"{name} puts weight outside the constrained space {hilbert!r}: "
                f"sum of |psi(x)|^{p} over the {outside.sum()} configurations outside it is "
                f"{float(weight.sum())!r}, the most at x={shown(full[outside][worst])} "
                f"(|psi|^{p} = {float(weight[worst])!r})."
            )
    if state is not None:
        order = order_of(model, hilbert.size)
        probs, _ = fast_steps(model, state, states, order, amplitudes=False)
        idx = np.asarray(hilbert.states_to_local_indices(states))
        picked = np.take_along_axis(np.asarray(probs), idx[..., None], axis=-1)[..., 0]
        total = float(np.sum(np.prod(picked.astype(np.float64), axis=-1)))
        if not abs(total - 1) <= tol:
            raise AssertionError(
                f"{name}'s conditional steps (from the given state) are not normalised: the "
                f"sum over {where} of the products of their probabilities is {total!r} "
                f"(|sum - 1| = {abs(total - 1):.3g} > rtol={tol:.3g}), while model(x) sums "
                "to 1: the fast path computes another distribution."
            )


@eqx.filter_jit
def _probabilities(model, x):
    return model.conditionals(x)


def _unnormalised_conditional(model: Any, states: jax.Array, tol: float) -> str:
    """Where the conditionals of an autoregressive model do not sum to 1 (after a prefix
    inside the space), as a sentence for the message."""
    cond = np.asarray(_probabilities(model, states))
    error = np.abs(cond.astype(np.float64).sum(-1) - 1)  # (n_states, N)
    config, site = np.unravel_index(int(np.argmax(error)), error.shape)
    if not error[config, site] > tol:
        return " Every conditional sums to 1, so the log-amplitudes are not their sum."
    return (
        f" The conditional probabilities of site {site} sum to "
        f"{float(cond[config, site].sum())!r} at x={shown(states[config])} "
        f"(conditionals {shown(cond[config, site])}); {int((error > tol).any(0).sum())} of the "
        f"{error.shape[1]} sites have an unnormalised conditional somewhere."
    )


# --------------------------------------------------------------------------------------------
# The autoregressive property


def assert_autoregressive(
    model: Any,
    *,
    key: PRNGKeyArray | None = None,
    x: ArrayLike | None = None,
    n_configs: int = 4,
    jacobian: bool = False,
    atol: RealNumber | None = None,
) -> None:
    r"""Check that the conditional of every site depends only on the sites generated before
    it, in the model's own order.

    The order is `model.reorder(arange(N))` (the site generated `k`-th is entry `k`; the
    identity for most models, a snake for a recurrent network on a 2D lattice). For every
    configuration and every site $j$, each other local value is put at $j$ and the
    conditionals $\psi_i(\cdot \mid x_{<i})$ (the network's amplitudes,
    `exp(conditionals_log_psi(x))`, and the constrained probabilities `conditionals(x)`)
    are compared: those of every site $i$ generated at or before $j$ (including $i = j$)
    must not change. With `jacobian=True` the same is checked at real-valued inputs by the
    Jacobian $\partial \log\psi_i / \partial x_j$, which must vanish for those pairs (for
    models that accept real inputs).

    **Arguments:**

    - `model`: an autoregressive model (`conditionals_log_psi`, `conditionals`, `hilbert`).
    - `key`: PRNG key for the random configurations (uniform over the product space: the
      network's conditionals are causal on any input) and, with `jacobian`, the real inputs.
    - `x`: configurations `(n, N)` to use instead.
    - `n_configs`: the number of random configurations.
    - `jacobian`: also check by the Jacobian at `n_configs` standard-normal real inputs.
    - `atol`: the largest change allowed; default `1e-12` (`1e-5` for a single-precision
      model). Conditionals are at most 1 in modulus, so this is absolute.

    **Raises:** `AssertionError` naming the site whose conditional depends on a site that
    comes at or after it (both with their positions in the model's order), the
    configuration and the value changed, and by how much the conditional moved.
    """
    hilbert = discrete_hilbert_of(model, None, "model.hilbert")
    n, k = hilbert.size, hilbert.local_size
    n_configs = positive_int(n_configs, "n_configs")
    order = order_of(model, n)
    position = np.argsort(order)  # position[site]: when the site is generated
    if x is None:
        if key is None:
            raise TypeError("give the configurations x=... or a PRNG key key=....")
        key, jac_key = jax.random.split(key)
        idx = np.asarray(jax.random.randint(key, (n_configs, n), 0, k))
    else:
        jac_key = None
        idx = np.asarray(hilbert.states_to_local_indices(configurations(hilbert, x, None, 0)))
    m = idx.shape[0]
    # flipped[c, j, d]: configuration c with site j moved to local index (idx + d + 1) % k
    flipped = np.repeat(idx[:, None, None, :], n, 1).repeat(k - 1, 2)
    sites = np.arange(n)
    shifts = np.arange(1, k)
    flipped[:, sites, :, sites] = (idx[:, :, None] + shifts).transpose(1, 0, 2) % k
    batch = np.concatenate([idx, flipped.reshape(-1, n)])
    configs = np.asarray(hilbert.local_indices_to_states(batch))
    amps, probs = _conditionals(model, jnp.asarray(configs))
    amps, probs = np.asarray(amps), np.asarray(probs)
    tol = tolerance(atol, amps.dtype, 1e-12, 1e-5)
    shape = (m, n, k - 1, n, k)  # config, flipped site, shift, site read, local value
    # before[j, i]: site i is generated at or before site j
    before = position[None, :] <= position[:, None]
    for label, values in (("amplitudes exp(conditionals_log_psi)", amps), ("conditionals", probs)):
        ref, out = values[:m], values[m:].reshape(shape)
        change = np.abs(out - ref[:, None, None]).max(-1)  # (m, n, k-1, n)
        change = np.where(np.isnan(change), np.inf, change)
        change = np.where(before[None, :, None, :], change, 0)
        if np.any(change > tol):
            c, j, d, i = np.unravel_index(int(np.argmax(change)), change.shape)
            n_pairs = int((change > tol).any((0, 2)).sum())
            values = hilbert.local_states
            old, new = values[idx[c, j]], values[(idx[c, j] + d + 1) % k]
            same = "itself" if i == j else f"site {j} (position {position[j]})"
            raise AssertionError(
                f"{name_of(model)} is not autoregressive: the {label} of site {i} (position "
                f"{position[i]} in the model's order) depend on {same}, which is not generated "
                f"before it. Setting x[{j}] from {old} to {new} in configuration "
                f"x={shown(configs[c])} changes them by {float(change[c, j, d, i]):.3g} "
                f"(> atol={tol:.3g}); {n_pairs} (site, later site) pairs leak."
            )
    if jacobian:
        real = np.finfo(amps.dtype).dtype
        key = jac_key if jac_key is not None else jax.random.key(0)
        y = jax.random.normal(key, (n_configs, n), real)
        jac = np.abs(np.asarray(_jacobian(model, y)))  # (m, 2, n, k, n): d out[i, k] / d y[j]
        jac = jac.max(axis=(1, 3))  # (m, i, j)
        jac = np.where(before.T[None], jac, 0)  # before.T[i, j]: j generated at or after i
        jac = np.where(np.isnan(jac), np.inf, jac)
        if np.any(jac > tol):
            c, i, j = np.unravel_index(int(np.argmax(jac)), jac.shape)
            same = "itself" if i == j else f"x[{j}] (position {position[j]})"
            raise AssertionError(
                f"{name_of(model)} is not autoregressive: at the real input "
                f"y={shown(y[c])}, the log-conditionals of site {i} (position {position[i]} in "
                f"the model's order) have a derivative {float(jac[c, i, j]):.3g} (> atol="
                f"{tol:.3g}) with respect to {same}, which is not generated before it."
            )


@eqx.filter_jit
def _conditionals(model, x):
    return jnp.exp(model.conditionals_log_psi(x)), model.conditionals(x)


@eqx.filter_jit
def _jacobian(model, y):
    def f(y):
        z = model.conditionals_log_psi(y)
        return jnp.stack([z.real, z.imag])

    return jax.vmap(jax.jacfwd(f))(y)


# --------------------------------------------------------------------------------------------
# Fast equals slow


def assert_fast_matches_slow(
    fast: Any,
    state: eqx.nn.State | None,
    x: ArrayLike | None = None,
    *,
    slow: Any = None,
    key: PRNGKeyArray | None = None,
    n_configs: int = 8,
    amplitudes: bool = True,
    atol: RealNumber | None = None,
) -> None:
    r"""Check that stepping a fast model's `conditional` through configurations gives the slow
    model's conditionals at every site.

    For every configuration, `fast.conditional(x, index, state)` is called for the sites in
    the model's order (`fast.reorder(arange(N))`), threading the state from `state` (the one
    `eqx.nn.make_with_state` returned) as [`nqzoo.sample`][] does, and the probabilities of
    every step are compared with `slow.conditionals(x)`. With `amplitudes`, the network's
    log-conditionals of every step (`fast.step`, phases included) are compared with
    `slow.conditionals_log_psi(x)` too (through `exp`, so phases compare modulo $2\pi$).

    **Arguments:**

    - `fast`: the model with the cache (an [`nqzoo.models.AbstractFastARNN`][], or any
      autoregressive model overriding `conditional`).
    - `state`: its initial state (`None` for a model without one).
    - `x`: configurations `(n, N)`; by default `n_configs` drawn with
      `fast.hilbert.random_state(key, ...)` (inside the constraint of a constrained space).
    - `slow`: the model to compare with; by default `fast` itself, whose `conditionals`
      recompute the whole configuration. Pass the slow twin (`fast.to_slow()`) to compare
      two models.
    - `key`: PRNG key for the configurations, if `x` is not given.
    - `n_configs`: the number of random configurations.
    - `amplitudes`: also compare the complex log-conditionals of `fast.step`.
    - `atol`: the largest difference allowed; default `1e-12` (`1e-5` for a single-precision
      model).

    **Raises:** `AssertionError` naming the first step (in the model's order) at which the
    fast model drifts from the slow one, the site, the configuration, both values and the
    difference.
    """
    hilbert = discrete_hilbert_of(fast, None, "fast.hilbert")
    slow = fast if slow is None else slow
    if slow.hilbert != hilbert:
        raise ValueError(
            f"slow.hilbert={slow.hilbert!r} differs from fast.hilbert={hilbert!r}."
        )
    n_configs = positive_int(n_configs, "n_configs")
    x = configurations(hilbert, x, key, n_configs)
    order = order_of(fast, hilbert.size)
    position = np.argsort(order)
    amplitudes = amplitudes and hasattr(fast, "step")
    probs, log_amps = fast_steps(fast, state, x, order, amplitudes=amplitudes)
    ref_probs, ref_log_amps = _slow(slow, x)
    compared = [("probabilities", np.asarray(probs), np.asarray(ref_probs))]
    if amplitudes:
        compared.append(
            ("amplitudes", np.exp(np.asarray(log_amps)), np.exp(np.asarray(ref_log_amps)))
        )
    tol = tolerance(atol, compared[0][1].dtype, 1e-12, 1e-5)
    for label, got, expected in compared:
        diff = np.abs(got - expected).max(-1)  # (n, N)
        diff = np.where(np.isnan(diff), np.inf, diff)
        if np.any(diff > tol):
            bad = diff > tol
            first = int(position[bad.any(0)].min())  # the first step that drifts
            site = int(order[first])
            c = int(np.argmax(diff[:, site]))
            raise AssertionError(
                f"{name_of(fast)}'s conditional steps do not match {name_of(slow)}'s slow "
                f"conditionals: the {label} of site {site} (step {first} of the model's order, "
                f"the first that differs; {int(bad.any(0).sum())} of {hilbert.size} sites "
                f"differ) in configuration #{c} x={shown(x[c])} are {shown(got[c, site])} from "
                f"the steps and {shown(expected[c, site])} from the slow model: |diff| = "
                f"{float(diff[c, site]):.3g} > atol={tol:.3g}."
            )


@eqx.filter_jit
def _slow(slow, x):
    return slow.conditionals(x), slow.conditionals_log_psi(x)


# --------------------------------------------------------------------------------------------
# Symmetry


def _group(perms: Any, n: int) -> np.ndarray:
    try:
        perms = np.asarray(perms)
    except Exception as error:  # noqa: BLE001 - reported with the argument's name
        raise TypeError(f"perms must be an integer array (G, N), got {perms!r}.") from error
    if perms.ndim == 1:
        perms = perms[None]
    if perms.ndim != 2 or perms.shape[1] != n or not np.issubdtype(perms.dtype, np.integer):
        raise ValueError(
            f"perms must be an integer array of shape (G, N={n}), one permutation of the "
            f"sites per group element, got {perms.dtype} of shape {perms.shape}."
        )
    for g, row in enumerate(perms):
        if sorted(row.tolist()) != list(range(n)):
            raise ValueError(f"perms[{g}] = {shown(row)} is not a permutation of the {n} sites.")
    return perms


def assert_symmetric(
    model: Callable,
    perms: Any,
    characters: ArrayLike | None = None,
    *,
    x: ArrayLike | None = None,
    key: PRNGKeyArray | None = None,
    hilbert: AbstractHilbert | None = None,
    n_configs: int = 8,
    rtol: RealNumber | None = None,
) -> None:
    r"""Check that $\psi(g x) = \chi_g\,\psi(x)$ for every element $g$ of a group given as
    permutations of the sites.

    $(g x)$ is `x[..., perms[g]]` (the site `perms[g][i]` of `x` moves to site `i`).
    With `characters=None`, $\chi_g = 1$: the model is invariant. The difference $|\psi(gx) -
    \chi_g\psi(x)|$ is measured relative to the largest $|\psi|$ among all the configurations
    evaluated (computed from $\log\psi$ without overflow), so configurations at which $\psi$
    vanishes by symmetry (a translation-invariant configuration at non-zero momentum) are
    checked too.

    **Arguments:**

    - `model`: the wave function, a callable `(n, N) -> (n,)` returning $\log\psi$.
    - `perms`: the group, anything `np.asarray` turns into an integer array `(G, N)`, one
      permutation per element (e.g. the translations of a lattice).
    - `characters`: $\chi_g$ for every element `(G,)` (complex for a non-trivial
      representation; a real-valued $\log\psi$ can only be invariant).
    - `x`: configurations `(n, N)`; by default `n_configs` drawn with
      `hilbert.random_state(key, ...)`.
    - `key`: PRNG key for the configurations.
    - `hilbert`: the space; `model.hilbert` by default.
    - `n_configs`: the number of random configurations.
    - `rtol`: tolerance on $|\psi(gx) - \chi_g\psi(x)| / \max|\psi|$; default `1e-10`
      (`1e-4` for a single-precision model).

    **Raises:** `AssertionError` naming the group element and its permutation, the
    configuration, the ratio found and the character expected.
    """
    hilbert = hilbert_of(model, hilbert)
    n_configs = positive_int(n_configs, "n_configs")
    x = configurations(hilbert, x, key, n_configs)
    perms = _group(perms, hilbert.size)
    n_group = perms.shape[0]
    if characters is None:
        chi = np.ones(n_group)
    else:
        chi = np.asarray(characters)
        if chi.shape != (n_group,):
            raise ValueError(
                f"characters must have one entry per group element, shape ({n_group},), got "
                f"shape {chi.shape}."
            )
    moved = jnp.asarray(x)[:, perms].reshape(-1, hilbert.size)  # (n * G, N)
    out = log_psi(model, jnp.concatenate([jnp.asarray(x), moved]))
    tol = tolerance(rtol, out.dtype, 1e-10, 1e-4)
    base, moved_out = out[: len(x)], out[len(x) :].reshape(len(x), n_group)
    everything = out.astype(np.complex128)
    top = np.max(everything.real[np.isfinite(everything.real)], initial=0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        # amplitudes relative to the largest one of the batch
        psi, psi_moved = np.exp(base - top), np.exp(moved_out.astype(np.complex128) - top)
        error = np.abs(psi_moved - chi[None] * psi[:, None])
        ratio = psi_moved / psi[:, None]
    error = np.where(np.isnan(error), np.inf, error)
    if np.any(error > tol):
        c, g = np.unravel_index(int(np.argmax(error)), error.shape)
        n_bad = int((error > tol).any(0).sum())
        found = f"psi(g x)/psi(x) = {ratio[c, g]:.6g}" if psi[c] != 0 else "psi(x) = 0"
        raise AssertionError(
            f"{name_of(model)} is not symmetric: for group element g={g} (perms[{g}] = "
            f"{shown(perms[g])}) at configuration #{c} x={shown(x[c])}, {found}, expected "
            f"chi_g = {complex(chi[g]):.6g}: |psi(g x) - chi_g psi(x)| = "
            f"{float(error[c, g]):.3g} times the largest |psi| of the batch (> rtol="
            f"{tol:.3g}); {n_bad} of the {n_group} elements fail."
        )


# --------------------------------------------------------------------------------------------
# Shape checking


def _wrong_inputs(hilbert: AbstractHilbert) -> list[np.ndarray]:
    n = hilbert.size
    widths = [n + 1] + ([n - 1] if n > 1 else [])
    if isinstance(hilbert, AbstractDiscreteHilbert):
        fill, dtype = hilbert.local_states[0], hilbert.dtype
    else:
        fill, dtype = 0.0, jnp.zeros(()).dtype
    shapes = [(2, widths[0]), (widths[0],)] + [(2, w) for w in widths[1:]]
    return [np.full(shape, fill, dtype) for shape in shapes]


def assert_shape_checked(
    model: Any,
    hilbert: AbstractHilbert | None = None,
    *,
    methods: Sequence[str] | None = None,
    match: str | None = None,
) -> None:
    r"""Check that the model rejects inputs of the wrong width with an error that names the
    axis and the size it expects.

    Each method is called with configurations one site too wide, in a batch `(2, N+1)` and
    alone `(N+1,)`, and one site too narrow `(2, N-1)`. Each call must raise a `TypeError`
    or `ValueError` (jaxtyping's `TypeCheckError` is a `TypeError`) whose message matches
    `match`: by default it must state the expected size as `name=N` (nqzoo's checked
    methods print `self.hilbert.size=N`; a message such as `x has width 7, expected
    hilbert.size=6` passes too). An XLA or broadcasting error, or a silent result, fails.

    **Arguments:**

    - `model`: the model.
    - `hilbert`: the space whose width `N = hilbert.size` the model expects;
      `model.hilbert` by default.
    - `methods`: the names of the methods to call; by default `__call__`, plus
      `conditionals_log_psi` and `conditionals` for an autoregressive model.
    - `match`: a regular expression the message must contain (`re.search`).

    **Raises:** `AssertionError` naming the method and the input shape it accepted, or the
    error it raised instead of a checked one.
    """
    from ..models import AbstractARNN

    hilbert = hilbert_of(model, hilbert)
    n = hilbert.size
    if methods is None:
        methods = ["__call__"]
        if isinstance(model, AbstractARNN):
            methods += ["conditionals_log_psi", "conditionals"]
    pattern = re.compile(match if match is not None else rf"[\w.\]\['\"]+\s*=\s*{n}(?![\d.])")
    name = name_of(model)
    for method, bad in itertools.product(methods, _wrong_inputs(hilbert)):
        call = model if method == "__call__" else getattr(model, method)
        shown_call = f"{name}({{}})" if method == "__call__" else f"{name}.{method}({{}})"
        shown_call = shown_call.format(f"x of shape {bad.shape}")
        try:
            out = call(jnp.asarray(bad))
        except (TypeError, ValueError) as error:
            if not pattern.search(str(error)):
                raise AssertionError(
                    f"{shown_call} (N={n} expected) raised {type(error).__name__}, but its "
                    f"message does not name the axis and its expected size (no match for "
                    f"{pattern.pattern!r}): {_first_lines(error)}"
                ) from error
        except Exception as error:  # noqa: BLE001 - any other failure is reported
            raise AssertionError(
                f"{shown_call} (N={n} expected) raised {type(error).__name__}, not a checked "
                f"TypeError or ValueError naming the axis: {_first_lines(error)}"
            ) from error
        else:
            shape = getattr(out, "shape", None)
            raise AssertionError(
                f"{shown_call} was accepted (N={n} expected; it returned "
                f"{type(out).__name__} of shape {shape}): the model does not check the width "
                "of its input."
            )


def _first_lines(error: BaseException, n: int = 3) -> str:
    lines = str(error).strip().splitlines()
    return " / ".join(lines[:n]) + (" ..." if len(lines) > n else "")
