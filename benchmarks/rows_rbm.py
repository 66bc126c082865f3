"""RBM family and MLP against NetKet (N=100, batch 4096, float64/complex128, CPU).

Targets (issue 2): nqzoo no slower than NetKet on any row; real RBM forward within 2x of the
bare `x @ W` row (NetKet ~3x); complex RBM forward at least 1.5x faster than NetKet; checks on
vs off ~1.0 (shape checks run at trace time only).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import netket as nk
from _harness import Row

import nqzoo as nqz
from nqzoo.interop.netket import from_netket


N, BATCH = 100, 4096


def _pair(nk_model, hilbert, x, key):
    variables = nk_model.init(key, x[:2])
    params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(key, p.shape, p.dtype),
                          variables["params"])
    model = from_netket(nk_model, {"params": params}, hilbert=hilbert)
    return model, params


def _forward_and_grad(name, nk_model, hilbert, x, key):
    model, params = _pair(nk_model, hilbert, x, key)
    nq_fwd = eqx.filter_jit(lambda m, x: m(x))
    nk_fwd = jax.jit(lambda p, x: nk_model.apply({"params": p}, x))
    nq_grad = eqx.filter_jit(eqx.filter_grad(lambda m, x: jnp.sum(m(x)).real))
    nk_grad = jax.jit(jax.grad(lambda p, x: jnp.sum(nk_model.apply({"params": p}, x)).real))
    return [
        Row(f"{name} forward", lambda: nq_fwd(model, x), lambda: nk_fwd(params, x)),
        Row(f"{name} grad", lambda: nq_grad(model, x), lambda: nk_grad(params, x),
            note="grad of Re Σ log ψ wrt params"),
    ]


def rows() -> list[Row]:
    key = jax.random.key(0)
    hi = nqz.hilbert.Spin(0.5, N)
    x = hi.random_state(jax.random.key(1), BATCH)  # int8, as NetKet samples
    out = []

    nk_rbm = nk.models.RBM(alpha=4)
    out += _forward_and_grad("RBM α=4", nk_rbm, hi, x, key)
    model, _ = _pair(nk_rbm, hi, x, key)
    matmul = jax.jit(lambda x, w: x.astype(w.dtype) @ w)
    out.append(Row("bare x @ W (100x400, float64)", lambda: matmul(x, model.kernel), None,
                   note="reference for the RBM forward row"))

    out += _forward_and_grad("complex RBM α=2", nk.models.RBM(alpha=2, param_dtype=complex),
                             hi, x, key)
    out += _forward_and_grad("MLP (200, 200)", nk.models.MLP(hidden_dims=(200, 200)), hi, x, key)

    # Same jitted forward pass, traced once with checks on and once with them off.
    checked = eqx.filter_jit(lambda m, x: m(x))
    jax.block_until_ready(checked(model, x))
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        unchecked = eqx.filter_jit(lambda m, x: m(x))
        jax.block_until_ready(unchecked(model, x))
    finally:
        jaxtyping.config.update("jaxtyping_disable", False)
    out.append(Row("RBM α=4 forward, checks on vs off", lambda: checked(model, x),
                   lambda: unchecked(model, x),
                   note="NetKet column = nqzoo traced with jaxtyping_disable=True"))
    return out
