"""DeepSetRelDistance against NetKet (float64, CPU, batch 1024).

Both sides evaluate the same model: NetKet's module with randomised parameters and the nqzoo
model converted from it with `from_netket`. Rows time the forward pass `log psi(x)` and the
gradient of `sum(log psi(x))` with respect to all parameters, both jitted. Hyperparameters
(issue 4): layers_phi=2, layers_rho=3, features_phi=(16, 16), features_rho=(16, 16, 1),
cusp_exponent=5, L=5 per dimension.

Targets: N=64 in d=1 forward >= 5x NetKet and gradient >= 3x; N=32 in d=3 forward >= 2.5x,
gradient >= 2x.

The `temp` column is XLA's compiled scratch memory (`memory_analysis().temp_size_in_bytes`)
of each side, and of nqzoo without chunking (`chunk_size=None`). Running this file prints
the same report at batch 1024 and 16384: with chunking the forward scratch does not grow
with the batch (the gradient keeps one small per-chunk residual).

    python benchmarks/compare_netket.py deepset
    python benchmarks/rows_deepset.py            # only the memory report
"""

import copy

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
from _harness import Row

import nqzoo as nqz
from nqzoo.interop.netket import from_netket, hilbert_to_netket


BATCH = 1024
HYPER = dict(
    layers_phi=2,
    layers_rho=3,
    features_phi=(16, 16),
    features_rho=(16, 16, 1),
    cusp_exponent=5,
)


def _setup(N: int, d: int, batch: int = BATCH):
    box = nqz.hilbert.Particles(N, (5.0,) * d)
    nk_model = nk.models.DeepSetRelDistance(hilbert=hilbert_to_netket(box), **HYPER)
    key = jax.random.key(0)
    variables = nk_model.init(key, jnp.zeros((1, box.size)))
    leaves, treedef = jax.tree.flatten(variables["params"])
    keys = jax.random.split(key, len(leaves))
    leaves = [0.3 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
    params = jax.tree.unflatten(treedef, leaves)
    params["cusp"] = jnp.abs(params["cusp"])
    variables = {"params": params}
    model = from_netket(nk_model, variables)
    x = box.random_state(jax.random.key(1), (batch,))
    return nk_model, variables, model, x


def _functions(model):
    """Jitted forward and gradient of `model` with the parameters as the argument."""
    params, static = eqx.partition(model, eqx.is_array)

    def apply(p, x):
        return eqx.combine(p, static)(x)

    forward = jax.jit(apply)
    grad = jax.jit(jax.grad(lambda p, x: apply(p, x).sum()))
    return params, forward, grad


def _without_chunking(model):
    model = copy.copy(model)
    object.__setattr__(model, "chunk_size", None)
    return model


def _temp_mib(fn, *args) -> float:
    analysis = fn.lower(*args).compile().memory_analysis()
    return analysis.temp_size_in_bytes / 2**20


def memory_report(N: int, d: int, batch: int = BATCH) -> dict[str, float]:
    """Compiled scratch memory (MiB) of forward and gradient: NetKet, nqzoo, nqzoo unchunked."""
    nk_model, variables, model, x = _setup(N, d, batch)
    nk_fwd = jax.jit(nk_model.apply)
    nk_grad = jax.jit(jax.grad(lambda v, x: nk_model.apply(v, x).sum()))
    params, fwd, grad = _functions(model)
    p0, fwd0, grad0 = _functions(_without_chunking(model))
    return {
        "netket fwd": _temp_mib(nk_fwd, variables, x),
        "netket grad": _temp_mib(nk_grad, variables, x),
        "nqzoo fwd": _temp_mib(fwd, params, x),
        "nqzoo grad": _temp_mib(grad, params, x),
        "nqzoo unchunked fwd": _temp_mib(fwd0, p0, x),
        "nqzoo unchunked grad": _temp_mib(grad0, p0, x),
    }


def _rows_for(N: int, d: int, targets: tuple[float, float]) -> list[Row]:
    nk_model, variables, model, x = _setup(N, d)
    params, fwd, grad = _functions(model)
    nk_fwd = jax.jit(nk_model.apply)
    nk_grad = jax.jit(jax.grad(lambda v, x: nk_model.apply(v, x).sum()))
    mem = memory_report(N, d)
    chunk = model.resolved_chunk_size()
    name = f"DeepSetRelDistance N={N} d={d} B={BATCH}"
    return [
        Row(
            f"{name} forward",
            lambda: fwd(params, x),
            lambda: nk_fwd(variables, x),
            note=f"chunk_size={chunk}",
            extra={
                "target": f">= {targets[0]}x",
                "temp MiB nqzoo/unchunked/NetKet": f"{mem['nqzoo fwd']:.1f}/"
                f"{mem['nqzoo unchunked fwd']:.1f}/{mem['netket fwd']:.1f}",
            },
        ),
        Row(
            f"{name} gradient",
            lambda: grad(params, x),
            lambda: nk_grad(variables, x),
            note=f"chunk_size={chunk}",
            extra={
                "target": f">= {targets[1]}x",
                "temp MiB nqzoo/unchunked/NetKet": f"{mem['nqzoo grad']:.1f}/"
                f"{mem['nqzoo unchunked grad']:.1f}/{mem['netket grad']:.1f}",
            },
        ),
    ]


def rows() -> list[Row]:
    return _rows_for(64, 1, (5.0, 3.0)) + _rows_for(32, 3, (2.5, 2.0))


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    for N, d in [(64, 1), (32, 3)]:
        for batch in (BATCH, 16 * BATCH):
            mem = memory_report(N, d, batch)
            cells = ", ".join(f"{k} {v:.1f}" for k, v in mem.items())
            print(f"N={N} d={d} batch={batch}: temp MiB: {cells}")
