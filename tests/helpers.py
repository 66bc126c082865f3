"""Shared test helpers: tree comparisons, random parameters, NetKet's promotion rules, and the
small hand-written autoregressive model (with its fast twin) that the sampler, constraint and
`nqzoo.testing` tests share."""

import contextlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact, Int, Num

import nqzoo as nqz
from nqzoo.models import AbstractARNN, AbstractFastARNN, normalize_log_conditionals


def tree_allclose(a, b, *, rtol=1e-12, atol=0.0) -> bool:
    """All leaves of two pytrees have the same structure, shape, dtype and are close."""
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    if ta != tb:
        return False
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape or x.dtype != y.dtype or not np.allclose(x, y, rtol=rtol, atol=atol):
            return False
    return True


def max_rel_err(a, b) -> float:
    """max |a - b| / max |b| (scale-aware relative error for arrays of log-amplitudes)."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def randomize(tree, key, scale=0.3):
    """Replace every inexact leaf with random values of the same shape and dtype."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    out = []
    for k, leaf in zip(keys, leaves):
        leaf = jnp.asarray(leaf)
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            out.append(scale * jax.random.normal(k, leaf.shape, leaf.dtype))
        else:
            out.append(leaf)
    return jax.tree.unflatten(treedef, out)


def randomize_numpy(tree, seed, scale=0.6):
    """Every inexact leaf replaced by NumPy normal values times `scale` (complex leaves get
    complex values): no JAX compilation per leaf shape, unlike `randomize`."""
    rng = np.random.default_rng(seed)

    def draw(leaf):
        if not eqx.is_inexact_array(leaf):
            return leaf
        values = rng.normal(size=leaf.shape)
        if jnp.iscomplexobj(leaf):
            values = values + 1j * rng.normal(size=leaf.shape)
        return jnp.asarray(scale * values, dtype=leaf.dtype)

    return jax.tree.map(draw, tree)


@contextlib.contextmanager
def netket_promotion():
    """Run third-party code (NetKet, optax) under JAX's standard promotion rules.

    The suite runs with strict dtype promotion and rank promotion raising (conftest.py);
    NetKet's own code relies on implicit promotion (int8 spins times float64 weights), so
    NetKet calls (init, apply, samplers, operators) go inside this context.
    """
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


# --------------------------------------------------------------------------------------------
# A hand-written autoregressive model and its fast twin (the user extension story: written
# with only `conditionals_log_psi`, and `step` with a trivial cache)


class Logistic(AbstractARNN):
    """`z_i(k) = b[i, k] + sum_j W[i, k, j] x_j`, normalised, with `W` masked to `j < i` (to
    `j <= i` with `diagonal=0`: a leaking mask, for the tests of `nqzoo.testing`)."""

    weights: Inexact[Array, "{self.hilbert.size} {self.hilbert.local_size} {self.hilbert.size}"]
    bias: Inexact[Array, "{self.hilbert.size} {self.hilbert.local_size}"]
    hilbert: nqz.hilbert.AbstractDiscreteHilbert = eqx.field(static=True)
    machine_pow: int = eqx.field(static=True)

    def __init__(self, hilbert, machine_pow=2, dtype=jnp.float64, scale=1.0, *, key, diagonal=-1):
        n, k = hilbert.size, hilbert.local_size
        kw, kb = jax.random.split(key)
        mask = np.tril(np.ones((n, n)), diagonal)[:, None, :].astype(dtype)
        self.weights = scale * jax.random.normal(kw, (n, k, n), dtype) * mask
        self.bias = scale * jax.random.normal(kb, (n, k), dtype)
        self.hilbert = hilbert
        self.machine_pow = machine_pow

    def raw(self, x):
        """The unnormalised log-conditionals `z`."""
        x = jnp.asarray(x).astype(self.bias.dtype)
        z = jnp.einsum("ikj,...j->...ik", self.weights, x)
        return z + jnp.broadcast_to(self.bias, z.shape)

    def conditionals_log_psi(
        self, x: Num[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        return normalize_log_conditionals(self.raw(x), self.machine_pow)


class FastLogistic(AbstractFastARNN):
    """The fast twin of `Logistic`: it wraps it, and its cache holds the sites seen so far.
    For the tests of `nqzoo.testing`, `drift` corrupts step i by `drift * i * k` (in the phase
    if `phase`) and `normalise=False` skips the normalisation of the steps. `drift` is an
    array, so a drifting twin and a correct one share their compilations."""

    slow: Logistic
    seen: eqx.nn.StateIndex
    drift: Float[Array, ""]
    phase: bool = eqx.field(static=True)
    normalise: bool = eqx.field(static=True)

    def __init__(self, slow: Logistic, drift=0.0, phase=False, normalise=True):
        self.slow = slow
        self.seen = eqx.nn.StateIndex(jnp.zeros(slow.hilbert.size, slow.bias.dtype))
        self.drift = jnp.asarray(drift, jnp.finfo(slow.bias.dtype).dtype)
        self.phase = phase
        self.normalise = normalise

    @property
    def hilbert(self):
        return self.slow.hilbert

    @property
    def machine_pow(self):
        return self.slow.machine_pow

    def conditionals_log_psi(self, x):
        return self.slow.conditionals_log_psi(x)

    def step(
        self, x: Num[ArrayLike, " {self.hilbert.size}"], index: Int[ArrayLike, ""], state
    ) -> tuple[Inexact[Array, " {self.hilbert.local_size}"], eqx.nn.State]:
        seen = state.get(self.seen)
        previous = jnp.asarray(x).astype(seen.dtype)[index - 1]
        seen = jnp.where(index > 0, seen.at[index - 1].set(previous), seen)
        z = self.slow.weights[index] @ seen + self.slow.bias[index]
        real = self.drift.dtype
        bad = jnp.asarray(index).astype(real) * jnp.arange(self.hilbert.local_size, dtype=real)
        bad = self.drift * bad
        z = z + (jax.lax.complex(jnp.zeros_like(bad), bad) if self.phase else bad).astype(z.dtype)
        if self.normalise:
            z = normalize_log_conditionals(z, self.machine_pow)
        return z, state.set(self.seen, seen)
