"""Shared test helpers."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np


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


@contextlib.contextmanager
def netket_promotion():
    """Run third-party code (NetKet, optax) under JAX's standard promotion rules.

    The suite runs with strict dtype promotion and rank promotion raising (conftest.py);
    NetKet's own code relies on implicit promotion (int8 spins times float64 weights), so
    NetKet calls (init, apply, samplers, operators) go inside this context.
    """
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield
