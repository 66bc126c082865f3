r"""Stochastic reconfiguration: the energy gradient preconditioned by the quantum geometric
tensor, in the parameter-space form (SR) and the sample-space form (minSR)."""

import math
import numbers
import typing

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Num, Real

from .._misc import chunked_map
from ._estimators import (
    check_chunk_size,
    check_samples,
    EstimatorInfo,
    poison,
    raise_if_nonfinite,
    sample_weights,
)


_METHODS = ("auto", "sr", "minsr")


def natural_gradient(
    model: eqx.Module,
    x: Num[ArrayLike, "n_samples n_sites"],
    e_loc: Inexact[ArrayLike, " n_samples"],
    diag_shift: numbers.Real | Real[ArrayLike, ""],
    chunk_size: numbers.Integral | None = None,
    *,
    weights: Real[ArrayLike, " n_samples"] | None = None,
    method: typing.Literal["auto", "sr", "minsr"] = "auto",
    holomorphic: bool = False,
    return_info: bool = False,
) -> tuple[Inexact[Array, ""], eqx.Module] | tuple[Inexact[Array, ""], eqx.Module, EstimatorInfo]:
    r"""Stochastic reconfiguration: the update $\delta = (S + \epsilon\,\mathbb{1})^{-1} g$.

    With $O_k(x) = \partial_{\theta_k}\log\psi(x)$, $\Delta O = O - \mathbb{E}[O]$ and
    $\Delta E = E_\mathrm{loc} - E$ over the samples (weighted by `weights` if given),

    $$S_{kl} = \mathrm{Re}\,\mathbb{E}[\Delta O_k^*\,\Delta O_l], \qquad
      g_k = 2\,\mathrm{Re}\,\mathbb{E}[\Delta O_k^*\,\Delta E],$$

    $g$ being the energy gradient of [`energy_and_grad`][nqzoo.vmc.energy_and_grad] and
    $\epsilon$ = `diag_shift`. This is NetKet's update: `VMC` with the `SR` preconditioner
    solves $(S + \epsilon)\,\delta = g$ with the same $S$ and the same gradient (NetKet's
    `force_to_grad`, twice the force), so `delta` equals NetKet's preconditioned gradient (and
    NetKet documents its `VMC_SR` driver as equivalent); apply it with an optax optimiser as a
    gradient (`optax.sgd(lr)`:
    $\theta \leftarrow \theta - \mathrm{lr}\,\delta$).

    **Parameters.** Real parameters enter as they are. A complex parameter $a + ib$ enters,
    by default, as the two real parameters $(a, b)$ (any model, holomorphic or not, as
    NetKet's `holomorphic=False`), and its entry of `delta` is $\delta_a + i\delta_b$. With
    `holomorphic=True` (every parameter complex and $\log\psi$ holomorphic in them, like a
    complex RBM) $S$ is the complex matrix $\mathbb{E}[\Delta O^\dagger \Delta O]$ over the
    complex parameters and $g = 2\,\mathbb{E}[\Delta O^\dagger \Delta E]$: the same $\delta$
    for a holomorphic model, with half the parameters.

    **The two forms.** Write $S = A^\dagger A$ and $g = 2A^\dagger b$ with the $M \times P$
    matrix $A = \sqrt{w}\,\Delta O$ and $b = \sqrt{w}\,\Delta E$ ($w$ the weights; for real
    parameters and a complex $\log\psi$ the real and imaginary parts are stacked:
    $M = 2B$). Then

    $$\delta = (A^\dagger A + \epsilon)^{-1}\, 2A^\dagger b
      = A^\dagger (A A^\dagger + \epsilon)^{-1}\, 2b,$$

    the first a $P \times P$ solve (`method="sr"`), the second an $M \times M$ one
    (`method="minsr"`, the sample-space form of minSR). `"auto"` takes the smaller. Either
    is a Cholesky factorisation, in float64 when x64 is enabled even for a float32 model (the
    Jacobian is computed in the model's dtype and cast); without x64 everything runs in
    float32, where an ill-conditioned $S$ (small `diag_shift`) loses digits. `delta` is cast
    back to each parameter's dtype.

    **Cost and memory.** The Jacobian $O$ is one `vmap` of `grad` over the samples (a
    `jacrev` giving real and imaginary parts for a complex $\log\psi$ of real parameters),
    `chunk_size` samples at a time if given (bounding the backward pass's intermediates);
    it is stored as $M \times P$ numbers in the solve dtype. Forming $A A^\dagger$ or
    $A^\dagger A$ costs $M^2 P$ or $M P^2$ multiply-adds. With `x` sharded over devices
    along the sample axis (`jax.sharding.NamedSharding`), the Jacobian and the products are
    computed where the samples are.

    **Non-finite samples** (a model returning NaN): as in
    [`energy_and_grad`][nqzoo.vmc.energy_and_grad], `energy` and `delta` come out NaN, an
    eager call raises, and `info.n_nonfinite` counts them.

    ??? cite "References"

        ```bibtex
        @article{sorella1998green,
          title={Green function Monte Carlo with stochastic reconfiguration},
          author={Sorella, Sandro}, journal={Physical Review Letters},
          volume={80}, number={20}, pages={4558}, year={1998}
        }
        @article{chen2024empowering,
          title={Empowering deep neural quantum states through efficient optimization},
          author={Chen, Ao and Heyl, Markus}, journal={Nature Physics},
          volume={20}, pages={1476--1481}, year={2024}
        }
        ```

    **Arguments:**

    - `model`: the model; its inexact array leaves are the parameters.
    - `x`: samples `(B, N)`.
    - `e_loc`: their local energies `(B,)`.
    - `diag_shift`: $\epsilon \ge 0$, a number (or a scalar array; a traced one is not
      checked). With 0, $S$ (or $AA^\dagger$) must be positive definite, else `delta` is NaN.
    - `chunk_size`: samples per chunk of the Jacobian, or `None` for all at once.
    - `weights`: optional probabilities `(B,)` summing to one, replacing the sample mean.
    - `method`: `"auto"` (the smaller of $M$ and $P$), `"sr"` or `"minsr"`.
    - `holomorphic`: treat complex parameters as holomorphic (see above).
    - `return_info`: also return an [`EstimatorInfo`][nqzoo.vmc.EstimatorInfo].

    **Returns:** `(energy, delta)` (or `(energy, delta, info)`): the mean local energy in the
    dtype of `e_loc`, and `delta`, a pytree like `model` with the update in each inexact leaf
    and `None` elsewhere.

    **Raises:** `ValueError` naming the argument for a negative or non-finite `diag_shift`,
    lengths of `x`, `e_loc`, `weights` that differ, an unknown `method`, `holomorphic=True`
    with a real parameter, a `chunk_size` that is not a positive integer, and (eager calls)
    non-finite samples.
    """
    check_samples(x, e_loc, weights, "natural_gradient")
    chunk_size = check_chunk_size(chunk_size)
    if not isinstance(diag_shift, jax.core.Tracer):
        if isinstance(diag_shift, bool) or np.ndim(diag_shift) != 0:
            raise ValueError(
                f"diag_shift must be a non-negative number, got diag_shift={diag_shift!r}."
            )
        value = float(np.real(diag_shift))
        if not math.isfinite(value) or value < 0 or np.iscomplexobj(diag_shift):
            raise ValueError(
                f"diag_shift must be a finite number >= 0 (the shift added to the diagonal of "
                f"S, e.g. 1e-3), got diag_shift={diag_shift!r}."
            )
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got method={method!r}.")
    if not isinstance(holomorphic, bool):
        raise ValueError(f"holomorphic must be True or False, got holomorphic={holomorphic!r}.")
    x, e_loc = jnp.asarray(x), jnp.asarray(e_loc)
    weights = None if weights is None else jnp.asarray(weights)
    energy, delta, info = _natural_gradient(
        model, x, e_loc, jnp.asarray(diag_shift), weights, chunk_size, method, holomorphic
    )
    raise_if_nonfinite(info, x.shape[0], "natural_gradient")
    return (energy, delta, info) if return_info else (energy, delta)


def _solve_dtype(dtype: jnp.dtype) -> np.dtype:
    """float64 (complex128 for complex) when x64 is enabled, else float32 (complex64)."""
    widest = np.complex128 if jnp.issubdtype(dtype, jnp.complexfloating) else np.float64
    return np.dtype(jax.dtypes.canonicalize_dtype(widest))


@eqx.filter_jit
def _natural_gradient(model, x, e_loc, diag_shift, weights, chunk_size, method, holomorphic):
    e_loc = jax.lax.stop_gradient(e_loc)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(params)
    is_complex = [jnp.iscomplexobj(leaf) for leaf in leaves]
    if holomorphic and not all(is_complex):
        raise ValueError(
            "natural_gradient(holomorphic=True) needs every parameter complex, but the model "
            "has real ones; use holomorphic=False (the real-imaginary split)."
        )
    # The parameters as the solve sees them: real leaves, complex leaves split into their
    # real and imaginary parts (holomorphic=False), or complex leaves as they are.
    if holomorphic:
        solve_leaves = leaves
    else:
        solve_leaves = [part for leaf, c in zip(leaves, is_complex) for part in _split(leaf, c)]

    def log_psi(solve_params, xi):
        it = iter(solve_params)
        rebuilt = [
            jax.lax.complex(next(it), next(it)) if c and not holomorphic else next(it)
            for c in is_complex
        ]
        return eqx.combine(jax.tree.unflatten(treedef, rebuilt), static)(xi)

    complex_out = jnp.iscomplexobj(jax.eval_shape(log_psi, solve_leaves, x[0]))
    if holomorphic and not complex_out:
        raise ValueError(
            "natural_gradient(holomorphic=True) needs a complex log ψ, but the model returns "
            "real values; use holomorphic=False."
        )
    split = complex_out and not holomorphic  # rows for Re log ψ and Im log ψ

    # One vmap of grad (jacrev for the real and imaginary parts) over the samples, which also
    # gives log ψ itself, to report samples where it is not finite.
    if split:
        per_sample = jax.jacrev(lambda p, xi: _parts(log_psi(p, xi)), has_aux=True)
    else:
        per_sample = jax.grad(
            lambda p, xi: (log_psi(p, xi),) * 2, has_aux=True, holomorphic=holomorphic
        )
    o_leaves, values = chunked_map(
        jax.vmap(lambda xi: per_sample(solve_leaves, xi)), x, chunk_size
    )  # leaves (B, *shape), or (B, 2, *shape) with split
    n = x.shape[0]
    dtype = _solve_dtype(
        jnp.result_type(*(leaf.dtype for leaf in o_leaves)) if o_leaves else e_loc.dtype
    )
    o = jnp.concatenate(
        [leaf.reshape(leaf.shape[: 2 if split else 1] + (-1,)).astype(dtype) for leaf in o_leaves],
        axis=-1,
    )  # (B, P) or (B, 2, P)
    real = jnp.finfo(dtype).dtype
    w = sample_weights(weights, n, real)
    active = w != 0
    finite_rows = jnp.all(jnp.isfinite(o.reshape(n, -1)), axis=-1) & jnp.isfinite(values)
    n_bad = jnp.sum(
        ~jnp.isfinite(w) | (active & ~(finite_rows & jnp.isfinite(e_loc))), dtype=jnp.int32
    )

    e_active = jnp.where(active, e_loc, 0)
    energy = jnp.sum(w.astype(e_loc.dtype) * e_active)
    delta_e = (e_active - energy).astype(dtype if holomorphic else _solve_dtype(e_loc.dtype))
    mask = active.reshape((n,) + (1,) * (o.ndim - 1))
    o = jnp.where(mask, o, 0)
    mean = jnp.tensordot(w.astype(dtype), o, axes=1)
    sqrt_w = jnp.sqrt(w)
    a = (o - mean[None]) * sqrt_w.astype(dtype).reshape(mask.shape)
    if split:  # rows (Re, Im) per sample, matching b = (Re ΔE, Im ΔE)
        a = a.reshape(2 * n, -1)
        b = jnp.stack([delta_e.real, delta_e.imag], axis=1).reshape(-1).astype(dtype)
        b = b * jnp.repeat(sqrt_w, 2).astype(dtype)
    else:
        b = (delta_e if holomorphic else delta_e.real).astype(dtype) * sqrt_w.astype(dtype)
    n_rows, n_params = a.shape
    use_minsr = method == "minsr" or (method == "auto" and n_rows < n_params)
    shift = diag_shift.astype(real).astype(dtype)
    a_h = jnp.conj(a).T
    if use_minsr:
        t = a @ a_h + shift * jnp.eye(n_rows, dtype=dtype)
        delta = a_h @ jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(t, lower=True), 2 * b)
    else:
        s = a_h @ a + shift * jnp.eye(n_params, dtype=dtype)
        delta = jax.scipy.linalg.cho_solve(
            jax.scipy.linalg.cho_factor(s, lower=True), a_h @ (2 * b)
        )

    # Back to the model's leaves and dtypes.
    sizes = [math.prod(leaf.shape) for leaf in solve_leaves]
    pieces = jnp.split(delta, np.cumsum(sizes)[:-1]) if sizes else []
    pieces = iter([p.reshape(leaf.shape) for p, leaf in zip(pieces, solve_leaves)])
    out = []
    for leaf, c in zip(leaves, is_complex):
        if c and not holomorphic:
            re, im = next(pieces), next(pieces)
            out.append(jax.lax.complex(re, im).astype(leaf.dtype))
        else:
            out.append(next(pieces).astype(leaf.dtype))
    delta = jax.tree.unflatten(treedef, out)
    energy, delta = poison((energy, delta), n_bad > 0)
    return energy, delta, EstimatorInfo(n_bad)


def _parts(z: Array) -> tuple[Array, Array]:
    return jnp.stack([z.real, z.imag]), z


def _split(leaf: Array, is_complex: bool) -> tuple[Array, ...]:
    return (leaf.real, leaf.imag) if is_complex else (leaf,)
