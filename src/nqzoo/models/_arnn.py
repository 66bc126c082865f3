"""Autoregressive networks built from masked layers (NetKet's ARNNDense/Conv1D/Conv2D)."""

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray, Real

from .._custom_types import Activation, Initializer
from .._misc import positive_int, positive_int_pair, RealNumber
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert
from ..nn import initializers, MaskedConv1D, MaskedConv2D, MaskedDense1D, reim_selu
from ._autoreg import (
    AbstractARNN,
    check_autoregressive_hilbert,
    check_machine_pow,
    normalize_log_conditionals,
)


# --------------------------------------------------------------------------------------------
# Hyperparameter checks shared by the slow and fast models
# --------------------------------------------------------------------------------------------


# Sequences of sizes are `Sequence[RealNumber]`: their validators check every entry (see
# `RealNumber`).


def feature_list(features: object, layers: object, local_size: int) -> tuple[int, ...]:
    """NetKet's feature widths: an int `f` gives `(f,) * (layers - 1) + (local_size,)`."""
    layers = positive_int(layers, "layers")
    if not isinstance(features, Sequence) or isinstance(features, str):
        return (positive_int(features, "features"),) * (layers - 1) + (local_size,)
    features = tuple(positive_int(f, f"features[{i}]") for i, f in enumerate(features))
    if len(features) != layers:
        raise ValueError(
            f"features has {len(features)} entries but layers={layers}; give one width per "
            f"layer (features={features!r})."
        )
    if features[-1] != local_size:
        raise ValueError(
            f"The last entry of features must equal the Hilbert space's local_size="
            f"{local_size} (one output per local state), got features={features!r}."
        )
    return features


def lattice_shape_of(n_sites: int, lattice_shape: object) -> tuple[int, int]:
    """The 2D lattice `(rows, cols)`: square by default, checked against `N` when given."""
    if lattice_shape is None:
        side = math.isqrt(n_sites)
        if side * side != n_sites:
            raise ValueError(
                f"The Hilbert space has N={n_sites} sites, not a perfect square; pass "
                f"lattice_shape=(rows, cols) with rows * cols = {n_sites}."
            )
        return side, side
    rows, cols = positive_int_pair(lattice_shape, "lattice_shape")
    if rows * cols != n_sites:
        raise ValueError(
            f"lattice_shape={(rows, cols)!r} has {rows * cols} sites but the Hilbert "
            f"space has N={n_sites}."
        )
    return rows, cols


def _keys(key: PRNGKeyArray, n: int):
    return list(jax.random.split(key, n))


# --------------------------------------------------------------------------------------------
# The shared forward pass
# --------------------------------------------------------------------------------------------


class AbstractARNNSequential(AbstractARNN):
    r"""An ARNN that is a stack of masked layers with an activation between them.

    $z = L_{n-1} \circ \sigma \circ \dots \circ \sigma \circ L_0(x)$ where layer 0 sees the raw
    local values as one input feature; the output `(N, local_size)` is normalised with
    [`nqzoo.models.normalize_log_conditionals`][]. Concrete models provide the layers and
    how a configuration is laid out for them (a chain or a lattice).
    """

    layers: eqx.AbstractVar[tuple]
    activation: eqx.AbstractVar[Activation]

    def to_layout(self, h: Inexact[Array, "{self.hilbert.size} f"]) -> Inexact[Array, "..."]:
        """Lay the sites of one configuration out as the layers expect (a chain: identity)."""
        return h

    @property
    def param_dtype(self) -> jnp.dtype:
        """The parameters' dtype, in which the local values enter the first layer."""
        return self.layers[0].kernel.dtype

    def conditionals_log_psi(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """Normalised log-conditionals `log ψ_i(k | x_<i)` of every site.

        **Arguments:**

        - `x`: configurations `(*batch, N)` of local values.

        **Returns:** `(*batch, N, local_size)`.
        """
        check_fields(self)
        x = jnp.asarray(x)
        n, local_size = self.hilbert.size, self.hilbert.local_size
        batch = x.shape[:-1]
        flat = x.reshape(-1, n).astype(self.param_dtype)

        def one(config):
            # Between layers the activations are kept as (N, F): XLA's CPU loops vectorise
            # the activation much better on that than on a (rows, cols, F) lattice layout
            # (1.4x faster ARNNConv2D forward passes).
            h = config[:, None]
            for i, layer in enumerate(self.layers):
                if i > 0:
                    h = self.activation(h)
                h = layer(self.to_layout(h)).reshape(n, -1)
            return h

        z = jax.vmap(one)(flat)
        return normalize_log_conditionals(z, self.machine_pow).reshape(*batch, n, local_size)


# --------------------------------------------------------------------------------------------
# Concrete slow models
# --------------------------------------------------------------------------------------------


def _dense_layers(
    layer_cls, hilbert, features, use_bias, param_dtype, kernel_init, bias_init, key
):
    widths = (1, *features)
    return tuple(
        layer_cls(
            hilbert.size,
            widths[i],
            widths[i + 1],
            exclusive=(i == 0),
            use_bias=use_bias,
            param_dtype=param_dtype,
            kernel_init=kernel_init,
            bias_init=bias_init,
            key=k,
        )
        for i, k in enumerate(_keys(key, len(features)))
    )


def _conv_layers(
    layer_cls,
    features,
    kernel_size,
    kernel_dilation,
    use_bias,
    param_dtype,
    kernel_init,
    bias_init,
    key,
    **extra,
):
    widths = (1, *features)
    return tuple(
        layer_cls(
            widths[i],
            widths[i + 1],
            kernel_size,
            kernel_dilation,
            exclusive=(i == 0),
            use_bias=use_bias,
            param_dtype=param_dtype,
            kernel_init=kernel_init,
            bias_init=bias_init,
            key=k,
            **extra,
        )
        for i, k in enumerate(_keys(key, len(features)))
    )


class ARNNDense(AbstractARNNSequential):
    r"""Autoregressive network of [`nqzoo.nn.MaskedDense1D`][] layers (NetKet's `ARNNDense`).

    $\log\psi_i(k \mid x_{<i}) = z_{ik} - \frac1p \log\sum_{k'} e^{p\,\mathrm{Re}\,z_{ik'}}$
    with $z = D_{n-1}\,\sigma \cdots \sigma\, D_0(x)$, $D_0$ exclusive, so that
    $\sum_x |\psi(x)|^p = 1$.

    ??? cite "Reference"

        ```bibtex
        @article{sharir2020deep,
          title={Deep autoregressive models for the efficient variational simulation of
                 many-body quantum systems},
          author={Sharir, Or and Levine, Yoav and Wies, Noam and Carleo, Giuseppe and
                  Shashua, Amnon},
          journal={Physical Review Letters}, volume={124}, number={2}, pages={020503},
          year={2020}
        }
        ```
    """

    layers: tuple[MaskedDense1D, ...]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        layers: int | np.integer,
        features: int | np.integer | Sequence[RealNumber],
        activation: Activation = reim_selu,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        machine_pow: RealNumber = 2,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: a homogeneous, unconstrained discrete space (Spin, Qubit, Fock).
        - `layers`: number of masked layers (at least 1).
        - `features`: width of the hidden layers, an int `f` (giving
          `(f,) * (layers - 1) + (local_size,)`) or a tuple of `layers` widths ending in
          `hilbert.local_size`.
        - `activation`: applied between layers (default `nqzoo.nn.reim_selu`).
        - `use_bias`: whether the layers have biases.
        - `param_dtype`: dtype of the parameters (real or complex).
        - `machine_pow`: `p` in `|ψ|^p` (the distribution that is normalised and sampled).
        - `kernel_init`: kernel initialiser (lecun normal; mask-corrected for masked kernels).
        - `bias_init`: bias initialiser (zeros).
        - `key`: a JAX PRNG key.
        """
        self.hilbert = check_autoregressive_hilbert(hilbert)
        self.machine_pow = check_machine_pow(machine_pow)
        self.features = feature_list(features, layers, hilbert.local_size)
        self.activation = activation
        self.layers = _dense_layers(
            MaskedDense1D,
            hilbert,
            self.features,
            use_bias,
            param_dtype,
            kernel_init,
            bias_init,
            key,
        )


class ARNNConv1D(AbstractARNNSequential):
    r"""Autoregressive network of causal [`nqzoo.nn.MaskedConv1D`][] layers on a chain.

    Same normalisation as [`nqzoo.models.ARNNDense`][]; layer 0 is exclusive, so site $i$
    depends on sites $i-d, i-2d, \dots$ within the receptive field (NetKet's `ARNNConv1D`).
    """

    layers: tuple[MaskedConv1D, ...]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    kernel_dilation: int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        layers: int | np.integer,
        features: int | np.integer | Sequence[RealNumber],
        kernel_size: int | np.integer,
        kernel_dilation: int | np.integer = 1,
        activation: Activation = reim_selu,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        machine_pow: RealNumber = 2,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: a homogeneous, unconstrained discrete space (Spin, Qubit, Fock).
        - `layers`: number of masked layers (at least 1).
        - `features`: width of the hidden layers, an int `f` (giving
          `(f,) * (layers - 1) + (local_size,)`) or a tuple of `layers` widths ending in
          `hilbert.local_size`.
        - `kernel_size`: `K >= 2`, taps per layer (the first layer, exclusive, has `K - 1`).
        - `kernel_dilation`: `d`, spacing between taps.
        - `activation`: applied between layers (default `nqzoo.nn.reim_selu`).
        - `use_bias`: whether the layers have biases.
        - `param_dtype`: dtype of the parameters (real or complex).
        - `machine_pow`: `p` in `|ψ|^p` (the distribution that is normalised and sampled).
        - `kernel_init`: kernel initialiser (lecun normal; mask-corrected for masked kernels).
        - `bias_init`: bias initialiser (zeros).
        - `key`: a JAX PRNG key.
        """
        self.hilbert = check_autoregressive_hilbert(hilbert)
        self.machine_pow = check_machine_pow(machine_pow)
        self.features = feature_list(features, layers, hilbert.local_size)
        self.kernel_size = positive_int(kernel_size, "kernel_size")
        if self.kernel_size == 1:
            raise ValueError(
                "ARNNConv1D needs kernel_size >= 2, got kernel_size=1: its first layer is "
                "exclusive (site i sees only sites < i), which leaves a 1-wide kernel no tap, "
                "so no conditional could depend on the sites before it."
            )
        self.kernel_dilation = positive_int(kernel_dilation, "kernel_dilation")
        self.activation = activation
        self.layers = _conv_layers(
            MaskedConv1D,
            self.features,
            self.kernel_size,
            self.kernel_dilation,
            use_bias,
            param_dtype,
            kernel_init,
            bias_init,
            key,
        )


class ARNNConv2D(AbstractARNNSequential):
    r"""Autoregressive network of [`nqzoo.nn.MaskedConv2D`][] layers on a 2D lattice.

    Site $i = r \cdot \text{cols} + c$ (raster order); same normalisation as
    [`nqzoo.models.ARNNDense`][] (NetKet's `ARNNConv2D`). Beyond NetKet, rectangular lattices
    are supported through `lattice_shape`.
    """

    layers: tuple[MaskedConv2D, ...]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    kernel_size: tuple[int, int] = eqx.field(static=True)
    kernel_dilation: tuple[int, int] = eqx.field(static=True)
    lattice_shape: tuple[int, int] = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        layers: int | np.integer,
        features: int | np.integer | Sequence[RealNumber],
        kernel_size: int | np.integer | Sequence[RealNumber],
        kernel_dilation: int | np.integer | Sequence[RealNumber] = (1, 1),
        activation: Activation = reim_selu,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        machine_pow: RealNumber = 2,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        lattice_shape: Sequence[RealNumber] | None = None,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: a homogeneous, unconstrained discrete space (Spin, Qubit, Fock).
        - `layers`: number of masked layers (at least 1).
        - `features`: width of the hidden layers, an int `f` (giving
          `(f,) * (layers - 1) + (local_size,)`) or a tuple of `layers` widths ending in
          `hilbert.local_size`.
        - `kernel_size`: `(kh, kw)`, not `(1, 1)` (NetKet suggests `kh = kw // 2 + 1`); an
          int `k` means `(k, k)`.
        - `kernel_dilation`: `(dh, dw)`; an int `d` means `(d, d)`.
        - `activation`: applied between layers (default `nqzoo.nn.reim_selu`).
        - `use_bias`: whether the layers have biases.
        - `param_dtype`: dtype of the parameters (real or complex).
        - `machine_pow`: `p` in `|ψ|^p` (the distribution that is normalised and sampled).
        - `kernel_init`: kernel initialiser (lecun normal; mask-corrected for masked kernels).
        - `bias_init`: bias initialiser (zeros).
        - `lattice_shape`: `(rows, cols)` with `rows * cols = N`; by default square
          (an error if `N` is not a perfect square).
        - `key`: a JAX PRNG key.
        """
        self.hilbert = check_autoregressive_hilbert(hilbert)
        self.machine_pow = check_machine_pow(machine_pow)
        self.features = feature_list(features, layers, hilbert.local_size)
        self.kernel_size = positive_int_pair(kernel_size, "kernel_size")
        if self.kernel_size == (1, 1):
            raise ValueError(
                "ARNNConv2D needs a kernel larger than (1, 1), got kernel_size=(1, 1): its "
                "first layer is exclusive (a site sees only earlier sites), and its mask "
                "removes the only tap of a 1x1 kernel, so no conditional could depend on the "
                "sites before it. Use kh >= 2 or kw >= 2."
            )
        self.kernel_dilation = positive_int_pair(kernel_dilation, "kernel_dilation")
        self.lattice_shape = lattice_shape_of(hilbert.size, lattice_shape)
        self.activation = activation
        self.layers = _conv_layers(
            MaskedConv2D,
            self.features,
            self.kernel_size,
            self.kernel_dilation,
            use_bias,
            param_dtype,
            kernel_init,
            bias_init,
            key,
        )

    def to_layout(self, h: Inexact[Array, "{self.hilbert.size} f"]) -> Inexact[Array, "..."]:
        """Reshape one configuration to the lattice, `(rows, cols, F)` in raster order."""
        return h.reshape(*self.lattice_shape, h.shape[-1])
