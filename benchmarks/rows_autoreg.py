"""Exact autoregressive sampling against NetKet's ARDirectSampler (float64, CPU).

Both sides draw exact samples of the same model: NetKet's module with random parameters, and
the nqzoo model converted from it with `from_netket` (the same parameters). nqzoo runs
`nqz.sample` under `eqx.filter_jit`; NetKet runs `ARDirectSampler.sample` (its jitted
`_sample_chain`; the sampler state is initialised once, outside the timings).

Targets (issue 3): FastARNNConv2D 10x10 (layers=3, features=16, kernel (3, 3)) at least 5x
NetKet's throughput; FastARNNConv1D N=100 (layers=3, features=16, kernel 5) at least 3x;
ARNNDense / FastARNNDense N=100 reported; first call no slower than NetKet's. The extra
column gives the fast models' cache bytes per sample (sum of the state's leaf sizes).

The slow-path dense row uses 128 samples (both sides): a slow AR model recomputes the whole
network at every site, N=100 dense forward passes per sample batch, ~16 s for 1024 samples
with NetKet. NetKet's FastARNNDense cannot be jitted (IndexError on a traced slice), so its
row has no NetKet column.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
from _harness import Row

import nqzoo as nqz
from nqzoo.interop.netket import from_netket


N_SAMPLES = 1024


def _nk_params(nk_model, hilbert_size, key):
    """NetKet parameters, randomised (not init values) so no layer is trivially zero."""
    variables = nk_model.init(key, jnp.zeros((1, hilbert_size)))
    leaves, treedef = jax.tree.flatten(variables["params"])
    keys = jax.random.split(key, len(leaves))
    leaves = [0.3 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
    return {"params": jax.tree.unflatten(treedef, leaves)}


def _cache_bytes(state) -> str:
    if state is None:
        return "-"
    return f"{sum(leaf.nbytes for leaf in jax.tree.leaves(state))}"


def build_row(name, nk_model, hi_nk, n_samples, *, netket=True, nk_slow_twin=None, note=""):
    key = jax.random.key(0)
    variables = _nk_params(nk_model, hi_nk.size, key)
    converted = from_netket(nk_model, variables)
    model, state = converted if isinstance(converted, tuple) else (converted, None)

    sample = eqx.filter_jit(lambda m, s, k: nqz.sample(m, n_samples, key=k, state=s))
    sample_key = jax.random.key(1)

    def nqzoo_call():
        return sample(model, state, sample_key)

    nk_call = None
    if netket:
        sampler = nk.sampler.ARDirectSampler(hi_nk)
        sampler_state = sampler.init_state(nk_model, variables, seed=0)

        def nk_call():
            samples, _ = sampler.sample(
                nk_model, variables, state=sampler_state, chain_length=n_samples
            )
            return samples

    return Row(name, nqzoo_call, nk_call, note=note, extra={"cache B/sample": _cache_bytes(state)})


def rows() -> list[Row]:
    hi = nk.hilbert.Spin(0.5, 100)
    common = dict(layers=3, features=16, param_dtype=jnp.float64)
    return [
        build_row(
            f"sample FastARNNConv2D 10x10 k(3,3), {N_SAMPLES}",
            nk.models.FastARNNConv2D(hilbert=hi, kernel_size=(3, 3), **common),
            hi,
            N_SAMPLES,
            note="target >= 5x",
        ),
        build_row(
            f"sample FastARNNConv1D N=100 k5, {N_SAMPLES}",
            nk.models.FastARNNConv1D(hilbert=hi, kernel_size=5, **common),
            hi,
            N_SAMPLES,
            note="target >= 3x",
        ),
        build_row(
            f"sample FastARNNDense N=100, {N_SAMPLES}",
            nk.models.FastARNNDense(hilbert=hi, **common),
            hi,
            N_SAMPLES,
            netket=False,
            note="NetKet: fails (its FastARNNDense cannot be jitted)",
        ),
        build_row(
            "sample ARNNDense N=100 (slow path), 128",
            nk.models.ARNNDense(hilbert=hi, **common),
            hi,
            128,
            note="both recompute the network at every site",
        ),
    ]
