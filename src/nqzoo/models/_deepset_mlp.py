"""NetKet's DeepSetMLP: a permutation-invariant network on sets of vectors."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray, Real

from .._custom_types import Activation, Initializer
from .._misc import positive_int, positive_ints, RealNumber
from .._typecheck import check_fields
from ..nn import gelu, initializers
from ..nn._dense import Dense
from ..nn._misc import to_param_dtype


#: Pooling over the set axis: called as `pooling(x, axis=-2)` (e.g. `jnp.sum`, `jnp.mean`).
Pooling = Callable[..., Array]

#: Layer widths: one positive int or a sequence of them (entries checked by `positive_ints`;
#: see `RealNumber`).
Widths = int | np.integer | Sequence[RealNumber]


def _dense_stack(
    widths: tuple[int, ...],
    in_features: int,
    use_bias: bool,
    param_dtype,
    kernel_init: Initializer,
    bias_init: Initializer,
    key: PRNGKeyArray,
) -> tuple[Dense, ...]:
    keys = jax.random.split(key, max(len(widths), 1))
    layers = []
    for k, width in zip(keys, widths):
        layers.append(
            Dense(in_features, width, use_bias, param_dtype, kernel_init, bias_init, key=k)
        )
        in_features = width
    return tuple(layers)


def _apply(act: Activation | None, x: Array) -> Array:
    return x if act is None else act(x)


class DeepSetMLP(eqx.Module):
    r"""The DeepSets network: a permutation-invariant function of a set of vectors.

    $$f(x_1, \dots, x_n) = \rho\Big(\operatorname*{pool}_{i=1}^{n} \phi(x_i)\Big),$$

    with $\phi$ and $\rho$ multilayer perceptrons and the pooling (a sum by default) taken
    over the set axis, the second to last axis of the input. Every layer of $\phi$ is
    followed by `hidden_activation` (its output layer too); $\rho$ applies `hidden_activation`
    after its hidden layers, ends with a width-1 layer followed by `output_activation`, and its
    output is squeezed. Parameters and conventions match NetKet's `nk.models.DeepSetMLP`
    (`DeepSetMLP_0/ds_phi/Dense_k`, `DeepSetMLP_0/ds_rho/Dense_k`).

    ??? cite "Reference"

        ```bibtex
        @inproceedings{zaheer2017deep,
          title={Deep Sets},
          author={Zaheer, Manzil and Kottur, Satwik and Ravanbakhsh, Siamak and
                  Poczos, Barnabas and Salakhutdinov, Russ R and Smola, Alexander J},
          booktitle={Advances in Neural Information Processing Systems}, volume={30},
          year={2017}
        }
        ```
    """

    phi: tuple[Dense, ...]
    rho: tuple[Dense, ...]
    in_features: int = eqx.field(static=True)
    hidden_activation: Activation | None = eqx.field(static=True)
    output_activation: Activation | None = eqx.field(static=True)
    pooling: Pooling = eqx.field(static=True)

    def __init__(
        self,
        in_features: int | np.integer,
        features_phi: Widths | None = None,
        features_rho: Widths | None = None,
        hidden_activation: Activation | None = gelu,
        output_activation: Activation | None = None,
        pooling: Pooling = jnp.sum,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_features`: width `D` of each set element (the input is `(*batch, n, D)`).
        - `features_phi`: widths of the layers of $\\phi$. `None` (or `()`) means no $\\phi$
          (the raw elements are pooled), an int `f` one layer of width `f`, a sequence one
          layer per entry.
        - `features_rho`: widths of the hidden layers of $\\rho$; a final width-1 layer is
          always appended. `None` means $\\rho$ is that single layer, an int `f` gives widths
          `(f, 1)`, a sequence `(*features_rho, 1)` (NetKet's convention).
        - `hidden_activation`: activation after every $\\phi$ layer and every hidden $\\rho$
          layer (default `nqzoo.nn.gelu`, the tanh form); `None` for none.
        - `output_activation`: activation after the last layer (default `None`).
        - `pooling`: reduction over the set axis, called as `pooling(x, axis=-2)`
          (default `jnp.sum`).
        - `use_bias`: whether every layer has a bias.
        - `param_dtype`: dtype of the parameters (floating or complex); the network computes
          in it.
        - `kernel_init`, `bias_init`: initialisers (defaults `lecun_normal()`, `zeros`).
        - `key`: a JAX PRNG key.
        """
        in_features = positive_int(in_features, "in_features")
        phi_widths = () if features_phi is None else positive_ints(features_phi, "features_phi")
        rho_hidden = () if features_rho is None else positive_ints(features_rho, "features_rho")
        if pooling is None or not callable(pooling):
            raise TypeError(f"pooling must be a callable like jnp.sum, got pooling={pooling!r}.")
        pkey, rkey = jax.random.split(key)
        self.in_features = in_features
        self.hidden_activation = hidden_activation
        self.output_activation = output_activation
        self.pooling = pooling
        args = (use_bias, param_dtype, kernel_init, bias_init)
        self.phi = _dense_stack(phi_widths, in_features, *args, pkey)
        rho_in = phi_widths[-1] if phi_widths else in_features
        self.rho = _dense_stack((*rho_hidden, 1), rho_in, *args, rkey)

    def __check_init__(self):
        check_fields(self)
        widths = (
            [self.in_features]
            + [
                w
                for layer in (*self.phi, *self.rho)
                for w in (layer.in_features, layer.out_features)
            ]
            + [1]
        )
        chained = all(a == b for a, b in zip(widths[::2], widths[1::2]))
        if not self.rho or not chained:
            raise ValueError(
                f"DeepSetMLP layers do not chain from in_features={self.in_features} to a "
                f"final width 1: (in, out) per layer = "
                f"{[(lay.in_features, lay.out_features) for lay in (*self.phi, *self.rho)]}."
            )

    @property
    def features_phi(self) -> tuple[int, ...]:
        """Widths of the $\\phi$ layers (empty when there is no $\\phi$)."""
        return tuple(layer.out_features for layer in self.phi)

    @property
    def features_rho(self) -> tuple[int, ...]:
        """Widths of the hidden $\\rho$ layers (the final width-1 layer excluded)."""
        return tuple(layer.out_features for layer in self.rho[:-1])

    def __call__(
        self, x: Real[ArrayLike, "*batch n_set {self.in_features}"]
    ) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: a set of `n_set` vectors per batch entry, `(*batch, n_set, in_features)`.

        **Returns:** `f(x)`, shape `(*batch,)`.
        """
        check_fields(self)
        # the parameters' real dtype (their complex one for a complex set); Dense casts on
        h = to_param_dtype(x, self.rho[0].kernel.real)
        for layer in self.phi:
            h = _apply(self.hidden_activation, layer(h))
        h = self.pooling(h, axis=-2)
        for layer in self.rho[:-1]:
            h = _apply(self.hidden_activation, layer(h))
        h = _apply(self.output_activation, self.rho[-1](h))
        return h[..., 0]
