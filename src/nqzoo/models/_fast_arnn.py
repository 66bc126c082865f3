"""Fast autoregressive networks: the ARNNs of `_arnn.py` with a cache for one-site steps."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, Num, PRNGKeyArray

from .._checks import check_fields
from .._custom_types import Activation, Initializer
from ..hilbert import AbstractDiscreteHilbert, AbstractHilbert
from ..nn import initializers
from ..nn._activations import reim_selu
from ..nn._fast_masked import FastMaskedConv1D, FastMaskedConv2D, FastMaskedDense1D
from ..nn._masked import (
    _positive_int,
    _positive_pair,
    MaskedConv1D,
    MaskedConv2D,
    MaskedDense1D,
)
from ._arnn import (
    _conditional_log_step,
    _conv_layers,
    _dense_layers,
    AbstractARNNSequential,
    ARNNConv1D,
    ARNNConv2D,
    ARNNDense,
    feature_list,
    lattice_shape_of,
)
from ._autoreg import AbstractFastARNN, check_autoregressive_hilbert, check_machine_pow


class AbstractFastARNNSequential(AbstractARNNSequential, AbstractFastARNN):
    """A sequential ARNN whose layers have `update_site` steps and caches in an `eqx.nn.State`.

    `__call__`, `conditionals_log_psi` and `conditionals` are those of the slow twin (same
    parameters, same code); `conditional` advances one site using the caches.
    """

    def conditional(
        self,
        x: Num[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None,
    ) -> tuple[Float[Array, " {self.hilbert.local_size}"], eqx.nn.State]:
        """One sampling step: the probabilities of site `index` given `x[:index]`.

        Call it for `index = 0, 1, …, N-1` in order, starting from the state returned by
        `eqx.nn.make_with_state` (or any state whose leaves are all zero); only `x[index - 1]`
        is read (the earlier sites are in the cache). `jax.vmap(model.conditional,
        in_axes=(0, None, 0))` steps many chains at once.

        **Arguments:**

        - `x`: one configuration `(N,)`; sites `< index` must hold the sampled values.
        - `index`: the site to sample (a traced integer is fine).
        - `state`: the cache state.

        **Returns:** `(probabilities (local_size,), new state)`, the probabilities being
        `|ψ_index(k | x_<index)|^machine_pow`.
        """
        check_fields(self)
        if not isinstance(state, eqx.nn.State):
            raise TypeError(
                f"{type(self).__name__}.conditional needs the cache state, got "
                f"state={state!r}. Build the model with `model, state = "
                f"eqx.nn.make_with_state({type(self).__name__})(...)` and pass `state` (a "
                "state whose leaves are all zero starts a new configuration)."
            )
        log_psi, state = _conditional_log_step(self, x, index, state)
        return jnp.exp(self.machine_pow * log_psi.real), state

    def to_slow(self) -> AbstractARNNSequential:
        """The slow twin (e.g. `ARNNConv1D` for `FastARNNConv1D`) with the same parameters."""
        check_fields(self)
        slow_layers = tuple(
            _SLOW_LAYER[type(layer)](**_layer_fields(layer)) for layer in self.layers
        )
        slow = object.__new__(_SLOW_MODEL[type(self)])
        for name, value in _model_fields(self).items():
            object.__setattr__(slow, name, value)
        object.__setattr__(slow, "layers", slow_layers)
        check_fields(slow)
        return slow


def _layer_fields(layer) -> dict:
    names = ("kernel", "bias", "in_features", "out_features", "exclusive")
    kwargs = {name: getattr(layer, name) for name in names}
    for name in ("n_sites", "kernel_size", "kernel_dilation"):
        if hasattr(layer, name):
            kwargs[name] = getattr(layer, name)
    return kwargs


def _model_fields(model) -> dict:
    import dataclasses

    return {
        f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.name != "layers"
    }


def _from_fields(cls, **fields):
    obj = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj


_SLOW_LAYER = {
    FastMaskedDense1D: lambda **kw: _from_fields(MaskedDense1D, **kw),
    FastMaskedConv1D: lambda **kw: _from_fields(MaskedConv1D, **kw),
    FastMaskedConv2D: lambda **kw: _from_fields(MaskedConv2D, **kw),
}


class FastARNNDense(AbstractFastARNNSequential):
    """[`nqzoo.models.ARNNDense`][] with cached sampling steps (same parameters).

    Unlike NetKet's `FastARNNDense`, `conditional` works under `jax.jit` and `lax.scan` with a
    traced index. A dense step costs `O(N F²)` (it reads one column of each kernel); the
    cache is `(N, F_in)` per layer.
    """

    layers: tuple[FastMaskedDense1D, ...]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: AbstractHilbert,
        layers: int,
        features: int | tuple[int, ...],
        activation: Activation = reim_selu,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        machine_pow: int | float = 2,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """Arguments as [`nqzoo.models.ARNNDense`][]; build with
        `model, state = eqx.nn.make_with_state(FastARNNDense)(hilbert, ...)`."""
        self.hilbert = check_autoregressive_hilbert(hilbert)
        self.machine_pow = check_machine_pow(machine_pow)
        self.features = feature_list(features, layers, hilbert.local_size)
        self.activation = activation
        self.layers = _dense_layers(
            FastMaskedDense1D,
            hilbert,
            self.features,
            use_bias,
            param_dtype,
            kernel_init,
            bias_init,
            key,
        )

    def __check_init__(self):
        check_fields(self)


class FastARNNConv1D(AbstractFastARNNSequential):
    """[`nqzoo.models.ARNNConv1D`][] with cached sampling steps (same parameters).

    Each layer keeps a ring buffer of its last `≈ d (K - 1)` inputs (the last layer: partial
    sums of its next outputs); a step costs `O(K F²)` whatever `N`.
    """

    layers: tuple[FastMaskedConv1D, ...]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    kernel_dilation: int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: AbstractHilbert,
        layers: int,
        features: int | tuple[int, ...],
        kernel_size: int,
        kernel_dilation: int = 1,
        activation: Activation = reim_selu,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        machine_pow: int | float = 2,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """Arguments as [`nqzoo.models.ARNNConv1D`][]; build with
        `model, state = eqx.nn.make_with_state(FastARNNConv1D)(hilbert, ...)`."""
        self.hilbert = check_autoregressive_hilbert(hilbert)
        self.machine_pow = check_machine_pow(machine_pow)
        self.features = feature_list(features, layers, hilbert.local_size)
        self.kernel_size = _positive_int(kernel_size, "kernel_size")
        self.kernel_dilation = _positive_int(kernel_dilation, "kernel_dilation")
        self.activation = activation
        self.layers = _conv_layers(
            FastMaskedConv1D,
            self.features,
            self.kernel_size,
            self.kernel_dilation,
            use_bias,
            param_dtype,
            kernel_init,
            bias_init,
            key,
        )

    def __check_init__(self):
        check_fields(self)


class FastARNNConv2D(AbstractFastARNNSequential):
    """[`nqzoo.models.ARNNConv2D`][] with cached sampling steps (same parameters).

    Each layer keeps a ring buffer of its last `(kh - 1) dh + 1` padded lattice rows (the last
    layer: partial sums of its next outputs); a step costs `O(kh kw F²)` whatever `N`.
    """

    layers: tuple[FastMaskedConv2D, ...]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    kernel_size: tuple[int, int] = eqx.field(static=True)
    kernel_dilation: tuple[int, int] = eqx.field(static=True)
    lattice_shape: tuple[int, int] = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: AbstractHilbert,
        layers: int,
        features: int | tuple[int, ...],
        kernel_size: tuple[int, int],
        kernel_dilation: tuple[int, int] = (1, 1),
        activation: Activation = reim_selu,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        machine_pow: int | float = 2,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        lattice_shape: tuple[int, int] | None = None,
        *,
        key: PRNGKeyArray,
    ):
        """Arguments as [`nqzoo.models.ARNNConv2D`][]; build with
        `model, state = eqx.nn.make_with_state(FastARNNConv2D)(hilbert, ...)`."""
        self.hilbert = check_autoregressive_hilbert(hilbert)
        self.machine_pow = check_machine_pow(machine_pow)
        self.features = feature_list(features, layers, hilbert.local_size)
        self.kernel_size = _positive_pair(kernel_size, "kernel_size")
        self.kernel_dilation = _positive_pair(kernel_dilation, "kernel_dilation")
        self.lattice_shape = lattice_shape_of(hilbert.size, lattice_shape)
        self.activation = activation
        self.layers = _conv_layers(
            FastMaskedConv2D,
            self.features,
            self.kernel_size,
            self.kernel_dilation,
            use_bias,
            param_dtype,
            kernel_init,
            bias_init,
            key,
            lattice_shape=self.lattice_shape,
        )

    def __check_init__(self):
        check_fields(self)

    to_layout = ARNNConv2D.to_layout  # the slow twin's lattice layout, shared


_SLOW_MODEL = {
    FastARNNDense: ARNNDense,
    FastARNNConv1D: ARNNConv1D,
    FastARNNConv2D: ARNNConv2D,
}
