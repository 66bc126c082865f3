"""Symmetric and tensor-network models against NetKet (6x6 torus, batch 1024, float64, CPU).

Both sides compute the same function of the same parameters: NetKet's module with random
parameters, and the nqzoo model converted from it with `from_netket`. The GCNN (4 layers,
8 features, the full space group of the 6x6 square lattice, 288 elements) is compared with
NetKet's two forms of the group convolution, irreps (its faster one here) and FFT; nqzoo runs
its FFT form (the model `from_netket` gives for NetKet's FFT module).

Targets (issue 14): GCNN forward and gradient at least 1.5x faster than NetKet's faster form
(irreps); RBMSymm (alpha 4, translations) and MPSOpen/MPSPeriodic (bond dimension 8, NetKet
has no default) no slower than NetKet.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
from _harness import Row

import nqzoo as nqz
from nqzoo.interop.netket import from_netket


L, BATCH, BOND_DIM = 6, 1024, 8


def _random_params(nk_model, x, key, scale):
    variables = nk_model.init(key, x[:2])
    leaves, treedef = jax.tree.flatten(variables["params"])
    keys = jax.random.split(key, len(leaves))
    # NetKet's initial values plus noise (no parameter left at exactly zero or one)
    leaves = [p + scale * jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves)]
    return jax.tree.unflatten(treedef, leaves)


def _nk_fwd(nk_model):
    return jax.jit(lambda p, x: nk_model.apply({"params": p}, x))


def _nk_grad(nk_model):
    return jax.jit(jax.grad(lambda p, x: jnp.sum(nk_model.apply({"params": p}, x)).real))


nq_fwd = eqx.filter_jit(lambda m, x: m(x))
nq_grad = eqx.filter_jit(eqx.filter_grad(lambda m, x: jnp.sum(m(x)).real))


def rows() -> list[Row]:
    key = jax.random.key(0)
    graph = nk.graph.Square(L)
    hi_nk = nk.hilbert.Spin(0.5, graph.n_nodes)
    x = hi_nk.random_state(jax.random.key(1), BATCH).astype(jnp.int8)  # as NetKet samples
    out = []

    # GCNN: nqzoo's FFT form against NetKet's irreps and FFT forms (same parameters)
    nk_fft = nk.models.GCNN(symmetries=graph, layers=4, features=8, mode="fft")
    nk_irreps = nk.models.GCNN(symmetries=graph, layers=4, features=8, mode="irreps")
    params = _random_params(nk_fft, x, key, 0.01)
    gcnn = from_netket(nk_fft, {"params": params})
    assert gcnn.mode == "fft" and gcnn.symmetries.n_elements == 8 * L * L
    name = f"GCNN {L}x{L} space group (288), 4 layers x 8"
    for form, nk_model in [("irreps", nk_irreps), ("fft", nk_fft)]:
        fwd, grad = _nk_fwd(nk_model), _nk_grad(nk_model)
        out += [
            Row(f"{name} forward vs NetKet {form}", lambda: nq_fwd(gcnn, x),
                lambda fwd=fwd: fwd(params, x), extra={"target": ">= 1.5x (irreps)"}),
            Row(f"{name} grad vs NetKet {form}", lambda: nq_grad(gcnn, x),
                lambda grad=grad: grad(params, x), note="grad of Re Σ log ψ wrt params",
                extra={"target": ">= 1.5x (irreps)"}),
        ]

    # RBMSymm over the translations
    nk_rbm = nk.models.RBMSymm(symmetries=graph.translation_group(), alpha=4)
    rbm_params = _random_params(nk_rbm, x, key, 0.1)
    rbm = from_netket(nk_rbm, {"params": rbm_params}, hilbert=nqz.hilbert.Spin(0.5, L * L))
    rbm_fwd, rbm_grad = _nk_fwd(nk_rbm), _nk_grad(nk_rbm)
    out += [
        Row("RBMSymm α=4 translations forward", lambda: nq_fwd(rbm, x),
            lambda: rbm_fwd(rbm_params, x), extra={"target": ">= 1x"}),
        Row("RBMSymm α=4 translations grad", lambda: nq_grad(rbm, x),
            lambda: rbm_grad(rbm_params, x), note="grad of Re Σ log ψ wrt params",
            extra={"target": ">= 1x"}),
    ]

    # matrix product states, bond dimension 8
    tn = nk.models.tensor_networks
    for cls in ("MPSOpen", "MPSPeriodic"):
        nk_mps = getattr(tn, cls)(hilbert=hi_nk, bond_dim=BOND_DIM)
        mps_params = _random_params(nk_mps, x, key, 0.01)
        mps = from_netket(nk_mps, {"params": mps_params})
        fwd = _nk_fwd(nk_mps)
        out.append(
            Row(f"{cls} D={BOND_DIM} N={L * L} forward", lambda mps=mps: nq_fwd(mps, x),
                lambda fwd=fwd, p=mps_params: fwd(p, x), extra={"target": ">= 1x"})
        )
    return out
