"""NetKet's RBMSymm: an RBM whose hidden units come in orbits of a symmetry group."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray, Real

from .._custom_types import Activation, Initializer
from .._misc import check_hilbert, inexact_dtype, positive_number, RealNumber
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert
from ..nn import initializers, log_cosh
from ..nn._activations import log_cosh_parts
from ..symmetry import check_group, PermutationGroup


def features_per_element(alpha: object, n_sites: int, n_elements: int) -> int:
    """The number of features `F = alpha * N / |G|` of a symmetric layer of density `alpha`,
    which must be a positive integer (a float `alpha` within 1e-9 of one is rounded).

    **Raises:** `ValueError` naming `alpha` otherwise, with the allowed values.
    """
    alpha = positive_number(alpha, "alpha")
    exact = alpha * n_sites / n_elements
    features = round(exact)
    if features < 1 or not math.isclose(exact, features, rel_tol=1e-9, abs_tol=0.0):
        unit = n_elements / n_sites  # the alpha of one feature

        def shown(a: float) -> str:
            return str(int(a)) if float(a).is_integer() else f"{a:.6g}"

        raise ValueError(
            f"alpha={alpha!r} gives alpha * N / |G| = {alpha!r} * {n_sites} / {n_elements} = "
            f"{exact:.6g} features per group element, which must be a positive integer F (a "
            f"feature is one orbit of |G| = {n_elements} hidden units); use alpha = F * |G| / N"
            f", e.g. alpha={shown(unit)} (F = 1) or alpha={shown(2 * unit)} (F = 2)."
        )
    return int(features)


class RBMSymm(eqx.Module):
    r"""Restricted Boltzmann machine invariant under a permutation group $G$.

    Every feature $f = 1, \dots, F$ is one filter $w_f \in \mathbb{R}^N$ (or
    $\mathbb{C}^N$) applied to every image of the configuration under the group:

    $$\log\psi(x) = \sum_{g \in G} \sum_{f=1}^{F}
      g\Big(\sum_{i} w_{f,\,\pi_g(i)}\, x_i + b_f\Big) + a \sum_i x_i,$$

    with $g$ = [`nqzoo.nn.log_cosh`][] by default, $\pi_g$ = `symmetries.perms[g]` and
    $F = \alpha N / |G|$ features (so $\alpha N$ hidden units, as in an RBM of density
    $\alpha$). Since the sum runs over the whole group, $\psi(h x) = \psi(x)$ for every
    $h \in G$ (where $(h x)_i = x_{\pi_h(i)}$). This is NetKet's `nk.models.RBMSymm` (whose
    `DenseSymm` layer computes the same pre-activations, element by element), with NetKet's
    parameter shapes and defaults: `kernel` = `Dense/kernel` `(F, 1, N)`,
    `hidden_bias` = `Dense/bias` `(F,)`, `visible_bias` `(1,)`, all initialised
    `normal(0.1)`.

    The pre-activations of all $|G| F$ hidden units are one matrix product of $x$ with the
    `(F, |G|, N)` kernels $W[f, g, i] = w_{f, \pi_g(i)}$ gathered from the filters (the
    gather acts on the small kernel, not on the batch); with complex parameters and
    `log_cosh` the real and imaginary parts are kept apart (two real matrix products).

    ??? cite "Reference"

        ```bibtex
        @article{carleo2017solving,
          title={Solving the quantum many-body problem with artificial neural networks},
          author={Carleo, Giuseppe and Troyer, Matthias},
          journal={Science}, volume={355}, number={6325}, pages={602--606}, year={2017}
        }
        ```
    """

    kernel: Inexact[Array, "{self.features} 1 {self.hilbert.size}"]
    hidden_bias: Inexact[Array, "{self.features}"] | None  # noqa: F821
    visible_bias: Inexact[Array, "1"] | None  # noqa: F821
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    symmetries: PermutationGroup = eqx.field(static=True)
    alpha: float | int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        symmetries: object,
        *,
        alpha: RealNumber = 1,
        use_visible_bias: bool = True,
        use_hidden_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        activation: Activation = log_cosh,
        kernel_init: Initializer = initializers.normal(0.1),
        hidden_bias_init: Initializer = initializers.normal(0.1),
        visible_bias_init: Initializer = initializers.normal(0.1),
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: the discrete Hilbert space.
        - `symmetries`: the group, a [`nqzoo.symmetry.PermutationGroup`][] (e.g.
          `lattice.translation_group()`) or an integer array `(|G|, N)` of its permutations.
        - `alpha`: hidden-unit density; `alpha * N / |G|` features per group element, which
          must be a positive integer (e.g. `alpha = 4` with the translations of a lattice:
          4 features; with the 8 times larger space group of a square lattice, `alpha` must
          be a multiple of 8).
        - `use_visible_bias`, `use_hidden_bias`: whether to include `a` and `b`.
        - `param_dtype`: dtype of the parameters (real or complex).
        - `activation`: the elementwise function `g` (default `log_cosh`).
        - `kernel_init`, `hidden_bias_init`, `visible_bias_init`: initialisers
          (NetKet's default `normal(0.1)` for all three).
        - `key`: a JAX PRNG key.
        """
        hilbert = check_hilbert(
            hilbert,
            AbstractDiscreteHilbert,
            "RBMSymm needs a discrete nqzoo Hilbert space (an "
            "nqzoo.hilbert.AbstractDiscreteHilbert: Spin, Qubit, Fock)",
        )
        group = check_group(symmetries, hilbert.size, "symmetries")
        features = features_per_element(alpha, hilbert.size, group.n_elements)
        param_dtype = inexact_dtype(param_dtype)
        wkey, hkey, vkey = jax.random.split(key, 3)
        self.hilbert = hilbert
        self.symmetries = group
        self.alpha = positive_number(alpha, "alpha")
        self.activation = activation
        self.kernel = kernel_init(wkey, (features, 1, hilbert.size), param_dtype)
        self.hidden_bias = (
            hidden_bias_init(hkey, (features,), param_dtype) if use_hidden_bias else None
        )
        self.visible_bias = (
            visible_bias_init(vkey, (1,), param_dtype) if use_visible_bias else None
        )

    def __check_init__(self):
        check_fields(self)

    @property
    def features(self) -> int:
        """Number of features per group element, `F = alpha * N / |G|`."""
        return round(self.alpha * self.hilbert.size / self.symmetries.n_elements)

    def dense_kernel(
        self,
    ) -> Inexact[Array, "{self.features} {self.symmetries.n_elements} {self.hilbert.size}"]:
        """The kernels of all `|G| F` hidden units, `W[f, g, i] = kernel[f, 0, perms[g, i]]`
        (feature `f` at group element `g`; NetKet's `DenseSymm` builds the same array)."""
        check_fields(self)
        # `take` along the site axis: its transpose (in the gradient) is a fast scatter-add,
        # several times faster than that of indexing the transposed kernel's leading axis
        return jnp.take(self.kernel[:, 0, :], np.asarray(self.symmetries.perms), axis=1)

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)` (any real dtype; cast to the real dtype of the
          parameters).

        **Returns:** `log ψ(x)`, shape `(*batch,)`, in the parameter dtype.
        """
        check_fields(self)
        kernel = self.dense_kernel()  # (F, G, N)
        x = jnp.asarray(x).astype(jnp.finfo(kernel.dtype).dtype)
        bias = self.hidden_bias

        def affine(k: Array, b: Array | None) -> Array:  # (*batch, F, G)
            theta = jnp.einsum("...n,fgn->...fg", x.astype(k.dtype), k)
            return theta if b is None else theta + jnp.broadcast_to(b[:, None], theta.shape)

        if self.activation is log_cosh and jnp.iscomplexobj(kernel):
            re, im = log_cosh_parts(
                affine(kernel.real, None if bias is None else bias.real),
                affine(kernel.imag, None if bias is None else bias.imag),
            )
            log_psi = jax.lax.complex(re.sum(axis=(-2, -1)), im.sum(axis=(-2, -1)))
        else:
            log_psi = self.activation(affine(kernel, bias)).sum(axis=(-2, -1))
        if self.visible_bias is not None:
            a = self.visible_bias[0]
            log_psi = log_psi + a * jnp.sum(x, axis=-1).astype(a.dtype)
        return log_psi
