"""The overhead of constrained exact sampling (issue 12, item 3: at most 20%), nqzoo only.

Each row samples 1024 configurations with `nqz.sample` (under `eqx.filter_jit`, float64) from
a fast model on `Spin(0.5, N, total_sz=0)`; the comparison slot (printed as the "NetKet"
column by `compare_netket.py`) holds the SAME model, with the same parameters, sampled on the
unconstrained `Spin(0.5, N)`. The ratio column is then unconstrained / constrained time: the
target, an overhead of at most 20%, is a ratio of at least 1 / 1.2 = 0.83.

The constrained sampler carries the running sum of local indices through its scan, masks
the conditionals to the values after which `total_sz` can still be reached and renormalises
them (see `nqzoo.sampling`); everything else is the unconstrained step.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from _harness import Row

import nqzoo as nqz


N_SAMPLES = 1024
N_SITES = 100


def _randomised(model, key):
    """`model` with random parameters (not init values, so that no layer is trivially
    zero)."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    leaves = [0.3 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
    return eqx.combine(jax.tree.unflatten(treedef, leaves), static)


def _row(name, cls, **kwargs):
    constrained = nqz.hilbert.Spin(0.5, N_SITES, total_sz=0)
    free = nqz.hilbert.Spin(0.5, N_SITES)
    key = jax.random.key(0)
    model, state = eqx.nn.make_with_state(cls)(constrained, key=key, **kwargs)
    model = _randomised(model, jax.random.key(1))
    # the same parameters on the unconstrained space (same structure, same random draws)
    free_model, free_state = eqx.nn.make_with_state(cls)(free, key=key, **kwargs)
    free_model = _randomised(free_model, jax.random.key(1))
    sample = eqx.filter_jit(lambda m, s, k: nqz.sample(m, N_SAMPLES, key=k, state=s))
    sample_key = jax.random.key(2)

    def constrained_call():
        return sample(model, state, sample_key)

    def free_call():
        return sample(free_model, free_state, sample_key)

    return Row(
        name,
        constrained_call,
        free_call,
        note="NetKet column: the same nqzoo model unconstrained; target ratio >= 0.83",
        extra={"overhead": "1/ratio - 1"},
    )


def rows() -> list[Row]:
    common = dict(param_dtype=jnp.float64)
    return [
        _row(
            f"constrained FastARNNConv1D N={N_SITES} k5 total_sz=0, {N_SAMPLES}",
            nqz.models.FastARNNConv1D,
            layers=3,
            features=16,
            kernel_size=5,
            **common,
        ),
        _row(
            f"constrained FastLSTMNet N={N_SITES} total_sz=0, {N_SAMPLES}",
            nqz.models.FastLSTMNet,
            layers=2,
            features=16,
            **common,
        ),
    ]
