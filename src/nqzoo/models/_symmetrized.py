"""Projection of any model onto a symmetry sector: a sum over the images of the input."""

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Real

from ..symmetry import check_characters, check_group, PermutationGroup


def _n_sites(model: Callable) -> int:
    hilbert = getattr(model, "hilbert", None)
    size = getattr(hilbert, "size", None)
    if not isinstance(size, int):
        raise TypeError(
            "Symmetrized needs a model with a `hilbert` attribute (an nqzoo Hilbert space: "
            f"every model of the zoo has one), got model={model!r}."
        )
    return size


def _complex_dtype(dtype: np.dtype) -> np.dtype:
    return np.result_type(np.dtype(dtype), np.complex64)


def log_sum_exp_phases(
    z: Inexact[Array, "*batch n"], weights: np.ndarray, *, real: bool
) -> Inexact[Array, "*batch"]:
    r"""$\log\sum_k w_k e^{z_k}$ over the last axis, stably, with complex phases.

    The largest real part $m$ is taken out, $\log\sum_k w_k e^{z_k - m} + m$. Terms with
    $\operatorname{Re} z_k = -\infty$ (zero amplitudes) are dropped exactly, values and
    gradients (their cotangent is zero, never `0 * inf`); when every term is dropped the
    result is $-\infty$ with a zero gradient. NaN inputs propagate.

    **Arguments:**

    - `z`: real or complex log-terms, `(*batch, n)`.
    - `weights`: `(n,)` NumPy weights (complex or real), cast to `z`'s precision.
    - `real`: return a real result (valid when `z` and `weights` are real and the weights
      non-negative: the sum is then positive); otherwise the result is complex, with
      imaginary part $\pi$ for a negative real sum.

    **Returns:** `(*batch,)`, real (if `real`) or complex of `z`'s precision.
    """
    real_dtype = jnp.finfo(z.dtype).dtype
    complex_dtype = _complex_dtype(real_dtype)
    kept = z.real != -jnp.inf
    any_kept = jnp.any(kept, axis=-1)
    shift = jnp.max(jnp.where(kept, z.real, -jnp.inf), axis=-1)
    shift = jax.lax.stop_gradient(jnp.where(any_kept, shift, 0))  # only a change of scale
    # the double `where`: no exp(-inf - shift) whose cotangent would meet an infinite z
    reduced = jnp.where(kept, z - shift[..., None].astype(z.dtype), 0)
    terms = jnp.where(kept, jnp.exp(reduced), 0)
    if np.iscomplexobj(weights) or jnp.iscomplexobj(z):
        total = terms.astype(complex_dtype) @ jnp.asarray(weights, complex_dtype)
        out = jnp.log(jnp.where(any_kept, total, 1)) + shift.astype(complex_dtype)
    else:  # real terms and weights: a real sum, negative for some signs of the weights
        total = terms @ jnp.asarray(weights, real_dtype)
        out = jnp.log(jnp.where(any_kept, jnp.abs(total), 1)) + shift
        if not real:
            out = jax.lax.complex(out, jnp.where(total < 0, math.pi, 0.0).astype(real_dtype))
    return jnp.where(any_kept, out, jnp.asarray(-jnp.inf, dtype=out.dtype))


class Symmetrized(eqx.Module):
    r"""Any model projected onto a one-dimensional representation of a symmetry group.

    $$\psi_\chi(x) = \frac{1}{|G|}\sum_{g \in G} \chi_g\, \psi(g x),
    \qquad (g x)_i = x_{\pi_g(i)} \ (\texttt{x[..., perms[g]]}),$$

    as NetKet's `nk.nn.blocks.SymmExpSum` (the same formula, including the $1/|G|$, so that
    an already symmetric model is unchanged by the trivial projection). With the
    characters $\chi$ of a sector (all ones by default: the symmetric sector; else e.g.
    `group.characters(momentum, point_irrep)` of [`nqzoo.symmetry.PermutationGroup`][])
    the state lies in that sector, $\hat T_g \psi_\chi = \chi_g \psi_\chi$ with
    $(\hat T_g\psi)(x) = \psi(g^{-1}x)$; its amplitudes transform as
    $\psi_\chi(g x) = \overline{\chi_g}\,\psi_\chi(x)$ (the conjugate matters only for
    complex characters, i.e. momenta other than $0$ and $\pi$).

    $\log\psi_\chi$ is a log-sum-exp over the $|G|$ images with the phases
    $\chi_g$ (the largest $\operatorname{Re}\log\psi(gx)$ is taken out). Images
    where the model returns $\log\psi = -\infty$ (a constrained autoregressive model
    outside its space, any zero amplitude) drop out of the value and of the gradient, without
    NaN. (Their gradient contribution is zero: exact when the zero is structural, as a
    constraint mask written with `jnp.where`; a model computing $\log 0$ by `jnp.log` has a
    NaN derivative of its own there, which no sum can remove.) A configuration whose images
    are all zero, or whose terms cancel, has $\log\psi_\chi = -\infty$.

    **Output dtype.** Complex, of the model's precision, except for a real-valued model and
    trivial characters, where every term is positive and the output is real (NetKet's rule:
    real when all characters are non-negative). A real model with characters $\pm 1$ gives
    a real but possibly negative $\psi_\chi$: its logarithm is complex, with imaginary part
    $0$ or $\pi$.

    **Cost.** One call of `model` on the `(*batch, |G|, N)` images (memory $|G|$ times that
    of a plain call). A model invariant under a subgroup needs only the rest: a
    translation-invariant model (e.g. [`nqzoo.models.RBMSymm`][] over the translations)
    symmetrised over the point group gives the space-group sector at $1/|T|$ the cost.
    """

    model: Callable
    symmetries: PermutationGroup = eqx.field(static=True)
    characters: tuple[complex, ...] = eqx.field(static=True)

    def __init__(self, model: Callable, symmetries: object, characters: object = None):
        r"""**Arguments:**

        - `model`: any model of the zoo (a module with a `hilbert` and `model(x)` mapping
          `(*batch, N)` to `(*batch,)` log-amplitudes).
        - `symmetries`: the group, a [`nqzoo.symmetry.PermutationGroup`][] (e.g.
          `lattice.space_group()`) or an integer array `(|G|, N)` of its permutations; it
          must act on the model's `N` sites.
        - `characters`: `(|G|,)` characters $\chi_g$ of a one-dimensional representation
          of the group, in the order of `symmetries.perms` (checked: $|\chi_g| = 1$ and
          $\chi_g\chi_h = \chi_{gh}$); `None` (default) for the trivial representation.

        **Raises:** `ValueError` naming `symmetries` or `characters` when they do not fit.
        """
        group = check_group(symmetries, _n_sites(model), "symmetries")
        if characters is None:
            chi = np.ones(group.n_elements, dtype=np.complex128)
        else:
            chi = check_characters(group, characters, "characters")
        self.model = model
        self.symmetries = group
        self.characters = tuple(complex(c) for c in chi)

    @property
    def hilbert(self):
        """The Hilbert space of the wrapped model."""
        return self.model.hilbert

    @property
    def is_trivial(self) -> bool:
        """Whether the characters are all 1 (the symmetric sector)."""
        return all(c == 1 for c in self.characters)

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)`.

        **Returns:** `log ψ_χ(x) = log((1/|G|) Σ_g χ_g ψ(x[..., perms[g]]))`, shape
        `(*batch,)`: real for a real-valued model in the trivial sector, complex otherwise
        (see the class docstring).
        """
        x = jnp.asarray(x)
        images = x[..., np.asarray(self.symmetries.perms)]  # (*batch, G, N)
        z = self.model(images)  # (*batch, G)
        weights = np.asarray(self.characters) / self.symmetries.n_elements
        if not np.any(weights.imag):
            weights = weights.real
        return log_sum_exp_phases(z, weights, real=self.is_trivial and not jnp.iscomplexobj(z))
