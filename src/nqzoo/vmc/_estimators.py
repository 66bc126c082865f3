r"""The energy and its gradient from samples, and stochastic reconfiguration.

Both work for any model (an `eqx.Module` mapping `(*batch, N)` to `log ψ`, `(*batch,)`),
with real or complex parameters, and bound their memory with `chunk_size`: the forward (and
backward) passes run over chunks of samples through [`nqzoo._misc.chunked_map`][].
"""

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
from jaxtyping import Array, Inexact, Num

from .._misc import chunked_map


def _conj_if_complex(tree):
    return jax.tree.map(lambda g: jnp.conj(g) if jnp.iscomplexobj(g) else g, tree)


def energy_and_grad(
    model: eqx.Module,
    x: Num[Array, "n_samples n_sites"],
    e_loc: Inexact[Array, " n_samples"],
    weights: Inexact[Array, " n_samples"] | None = None,
    chunk_size: int | None = None,
) -> tuple[Inexact[Array, ""], eqx.Module]:
    r"""The energy and its gradient for a normalised model from samples and local energies.

    For samples drawn exactly from $|\psi|^2$ of a normalised state (an autoregressive model
    sampled with [`nqzoo.sample`][]), $E = \mathbb{E}[E_\mathrm{loc}]$ and

    $$\partial_\theta E = 2\,\mathrm{Re}\;\mathbb{E}\big[(E_\mathrm{loc} - E)^*\,
      \partial_\theta \log\psi\big]$$

    for every real parameter $\theta$: the gradient of the surrogate
    $2\,\mathrm{Re}\,\mathbb{E}[\,\mathrm{sg}(E_\mathrm{loc} - E)^*\log\psi_\theta]$, which is
    what is differentiated. For a complex parameter $\theta = a + ib$ the descent direction is
    $\partial_a E + i\,\partial_b E$; `jax.grad` returns its complex conjugate, so complex
    leaves are conjugated before they are returned (ready for an optax optimiser).

    **Arguments:**

    - `model`: the model (its inexact array leaves are differentiated).
    - `x`: samples `(B, N)`.
    - `e_loc`: local energies `(B,)`.
    - `weights`: optional probabilities `(B,)` summing to one, replacing the sample mean
      (with `x` = every configuration and `weights` = $|\psi|^2$ this is the exact gradient).
    - `chunk_size`: if given, `log ψ` and its backward pass run this many samples at a time
      (rematerialised), bounding the memory of the network's intermediates.

    **Returns:** `(energy, grads)`, `grads` a pytree like `model` (`None` for non-arrays).
    """
    e_loc = jax.lax.stop_gradient(e_loc)
    n = e_loc.shape[0]
    weights = jnp.full(e_loc.shape, 1.0 / n) if weights is None else weights
    weights = weights.astype(e_loc.dtype)
    energy = jnp.sum(weights * e_loc)
    coeff = 2.0 * weights * jnp.conj(e_loc - energy)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def surrogate(p):
        log_psi = chunked_map(lambda xc: eqx.combine(p, static)(xc), x, chunk_size, checkpoint=True)
        dtype = jnp.promote_types(coeff.dtype, log_psi.dtype)
        return jnp.sum(coeff.astype(dtype) * log_psi.astype(dtype)).real

    return energy, _conj_if_complex(jax.grad(surrogate)(params))


def natural_gradient(
    model: eqx.Module,
    x: Num[Array, "n_samples n_sites"],
    e_loc: Inexact[Array, " n_samples"],
    diag_shift: float,
    chunk_size: int | None = None,
) -> tuple[Inexact[Array, ""], eqx.Module]:
    r"""Stochastic reconfiguration: the gradient preconditioned by the quantum geometric tensor.

    With $O_k(x) = \partial_{\theta_k}\log\psi(x)$ and $\Delta O = O - \mathbb{E}[O]$ over the
    $B$ samples, solves $(S + \epsilon\,\mathbb{1})\,\delta = F$ for
    $S_{kl} = \mathrm{Re}\,\mathbb{E}[\Delta O_k^* \Delta O_l]$ and
    $F_k = \mathrm{Re}\,\mathbb{E}[\Delta O_k^*(E_\mathrm{loc} - E)]$ (half the energy
    gradient), $\epsilon$ = `diag_shift`. Writing $S = A^T A / B$ and $F = A^T b / B$ with the
    real matrix $A = [\mathrm{Re}\,\Delta O;\ \mathrm{Im}\,\Delta O]$ (only the real part when
    $\log\psi$ is real), the solve runs in the smaller space:
    $\delta = (A^TA/B + \epsilon)^{-1}A^Tb/B = A^T(AA^T/B + \epsilon)^{-1}b/B$ (the second
    form is minSR's). The per-sample Jacobian is a `vmap` of `grad`, in chunks of
    `chunk_size` samples if given. Real parameters only.

    **Returns:** `(energy, delta)`, `delta` a pytree like `model`'s parameters.
    """
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    if jnp.iscomplexobj(flat):
        raise ValueError("natural_gradient supports real parameters only.")

    def log_psi(f, xi):
        return eqx.combine(unravel(f), static)(xi)

    n = x.shape[0]
    e_loc = jax.lax.stop_gradient(e_loc)
    energy = e_loc.mean()
    centred = e_loc - energy

    def jacobian(part):
        per_sample = jax.vmap(jax.grad(lambda f, xi: part(log_psi(f, xi))), (None, 0))
        jac = chunked_map(lambda xc: per_sample(flat, xc), x, chunk_size)
        return jac - jac.mean(axis=0, keepdims=True)

    if jnp.iscomplexobj(jax.eval_shape(log_psi, flat, x[0])):
        a = jnp.concatenate([jacobian(jnp.real), jacobian(jnp.imag)])
        b = jnp.concatenate([centred.real, centred.imag])
    else:
        a, b = jacobian(lambda v: v), centred.real
    if a.shape[0] < a.shape[1]:
        t = a @ a.T / n + diag_shift * jnp.eye(a.shape[0], dtype=a.dtype)
        delta = a.T @ jax.scipy.linalg.solve(t, b / n, assume_a="pos")
    else:
        s = a.T @ a / n + diag_shift * jnp.eye(a.shape[1], dtype=a.dtype)
        delta = jax.scipy.linalg.solve(s, a.T @ b / n, assume_a="pos")
    return energy, unravel(delta)
