from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray, Real

from .._custom_types import Activation, Initializer
from .._misc import (
    check_hilbert,
    positive_ints,
    positive_number,
    RealNumber,
    units_from_density,
)
from .._typecheck import check_fields
from ..hilbert import AbstractHilbert
from ..nn import gelu, initializers
from ..nn._dense import Dense


def _resolve_hidden_dims(hidden_dims: object, hidden_dims_alpha: object, n_in: int) -> tuple:
    if hidden_dims is not None and hidden_dims_alpha is not None:
        raise ValueError(
            "Give hidden_dims (layer widths) or hidden_dims_alpha (widths relative to the "
            f"input size), not both; got hidden_dims={hidden_dims!r} and "
            f"hidden_dims_alpha={hidden_dims_alpha!r}."
        )
    if hidden_dims is not None:
        return positive_ints(hidden_dims, "hidden_dims")
    if hidden_dims_alpha is not None:
        return tuple(
            units_from_density(a, f"hidden_dims_alpha[{k}]", n_in)
            for k, a in enumerate(_alphas(hidden_dims_alpha))
        )
    return ()


def _alphas(hidden_dims_alpha: RealNumber | Sequence[RealNumber]) -> tuple:
    """`hidden_dims_alpha` as a tuple (a single number is one hidden layer)."""
    if isinstance(hidden_dims_alpha, RealNumber):
        return (hidden_dims_alpha,)
    return tuple(hidden_dims_alpha)


def _resolve_activations(hidden_activations: object, n_layers: int) -> tuple:
    """One activation (or None) per hidden layer, from one for all or a sequence of them."""
    if hidden_activations is None or callable(hidden_activations):
        return (hidden_activations,) * n_layers
    acts = tuple(hidden_activations) if isinstance(hidden_activations, Sequence) else ()
    if isinstance(hidden_activations, str) or not all(a is None or callable(a) for a in acts):
        raise TypeError(
            "hidden_activations must be a callable, a tuple with one callable (or None) per "
            f"hidden layer, or None; got hidden_activations={hidden_activations!r}."
        )
    if len(acts) != n_layers:
        raise ValueError(
            f"hidden_activations has {len(acts)} entries but there are {n_layers} hidden "
            f"layers; give one activation (or None) per hidden layer, or a single callable."
        )
    return acts


class MLP(eqx.Module):
    r"""A feed-forward network with a scalar output, NetKet's `MLP`.

    $$\log\psi(x) = f_{\mathrm{out}}\big(W_{L} \, g_{L-1}(\cdots g_1(W_1 x + b_1) \cdots)
      + b_L\big),$$

    with hidden widths `hidden_dims` (or `int(alpha * N)` for each entry of
    `hidden_dims_alpha`), hidden activations $g_k$ (default [`nqzoo.nn.gelu`][], the tanh
    form), an output layer of width 1 and an optional output activation $f_{\mathrm{out}}$.
    Without hidden layers it is a single linear map $x \mapsto W x$. Parameters match NetKet's
    `MLP` (`MLP_0/Dense_k` = `layers[k]`, each a dense layer with `kernel` of shape
    `(in, out)` and `bias`).
    """

    layers: tuple[Dense, ...]
    hilbert: AbstractHilbert = eqx.field(static=True)
    hidden_dims: tuple[int, ...] = eqx.field(static=True)
    hidden_dims_alpha: tuple[float | int, ...] | None = eqx.field(static=True)
    hidden_activations: Activation | tuple[Activation | None, ...] | None = eqx.field(static=True)
    output_activation: Activation | None = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        hidden_dims: int | np.integer | Sequence[RealNumber] | None = None,
        hidden_dims_alpha: RealNumber | Sequence[RealNumber] | None = None,
        param_dtype: jnp.dtype | type = jnp.float64,
        hidden_activations: Activation | Sequence[Activation | None] | None = gelu,
        output_activation: Activation | None = None,
        use_hidden_bias: bool = True,
        use_output_bias: bool = False,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: an nqzoo Hilbert space; its `size` N is the input width.
        - `hidden_dims`: widths of the hidden layers, a tuple of positive integers. A single
          integer is accepted and means one hidden layer (NetKet raises a `TypeError` for an
          int; nqzoo treats it as a 1-tuple).
        - `hidden_dims_alpha`: widths relative to N instead: layer k has `int(a_k * N)` units.
          Every `a_k` must be a finite positive number with `int(a_k * N) >= 1`. At most one
          of `hidden_dims`, `hidden_dims_alpha` may be given; with neither the network is a
          single linear layer.
        - `param_dtype`: dtype of the parameters (real or complex); the network computes in
          it.
        - `hidden_activations`: one callable for every hidden layer, a tuple with one callable
          (or None for no activation) per hidden layer, or None (all linear).
        - `output_activation`: applied after the output layer, or None.
        - `use_hidden_bias`: whether the hidden layers have biases.
        - `use_output_bias`: whether the output layer has a bias (default False, as NetKet).
        - `kernel_init`, `bias_init`: initialisers (NetKet's `lecun_normal()` and `zeros`).
        - `key`: a JAX PRNG key.
        """
        hilbert = check_hilbert(
            hilbert,
            AbstractHilbert,
            "MLP needs an nqzoo Hilbert space (an nqzoo.hilbert.AbstractHilbert: Spin, Qubit, "
            "Fock, Particles)",
        )
        n_in = hilbert.size
        dims = _resolve_hidden_dims(hidden_dims, hidden_dims_alpha, n_in)
        _resolve_activations(hidden_activations, len(dims))
        if output_activation is not None and not callable(output_activation):
            raise TypeError(
                f"output_activation must be a callable or None, got {output_activation!r}."
            )
        widths = (n_in, *dims, 1)
        keys = jax.random.split(key, len(widths) - 1)
        self.layers = tuple(
            Dense(
                widths[k],
                widths[k + 1],
                use_bias=use_hidden_bias if k < len(dims) else use_output_bias,
                param_dtype=param_dtype,
                kernel_init=kernel_init,
                bias_init=bias_init,
                key=keys[k],
            )
            for k in range(len(widths) - 1)
        )
        self.hilbert = hilbert
        self.hidden_dims = dims
        self.hidden_dims_alpha = (
            None
            if hidden_dims_alpha is None
            else tuple(
                positive_number(a, f"hidden_dims_alpha[{k}]")  # Python numbers
                for k, a in enumerate(_alphas(hidden_dims_alpha))
            )
        )
        self.hidden_activations = (
            hidden_activations
            if hidden_activations is None or callable(hidden_activations)
            else tuple(hidden_activations)
        )
        self.output_activation = output_activation

    def __check_init__(self):
        check_fields(self)
        widths = (self.hilbert.size, *self.hidden_dims, 1)
        got = tuple((layer.in_features, layer.out_features) for layer in self.layers)
        expected = tuple(zip(widths[:-1], widths[1:]))
        if got != expected:
            raise ValueError(
                f"MLP.layers have (in, out) widths {got}, expected {expected} for an input of "
                f"size {self.hilbert.size} and hidden_dims={self.hidden_dims}."
            )

    @property
    def activations(self) -> tuple[Callable | None, ...]:
        """The activation after each hidden layer (None for none)."""
        return _resolve_activations(self.hidden_activations, len(self.hidden_dims))

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)`.

        **Returns:** the network output `(*batch,)` in the parameter dtype (log ψ(x) when
        used as a wave function).
        """
        check_fields(self)
        x = jnp.asarray(x)
        for layer, act in zip(self.layers[:-1], self.activations):
            x = layer(x)
            if act is not None:
                x = act(x)
        x = self.layers[-1](x)
        if self.output_activation is not None:
            x = self.output_activation(x)
        return x[..., 0]
