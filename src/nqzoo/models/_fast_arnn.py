"""Fast autoregressive networks: a slow ARNN of `_arnn.py` plus one cache per layer."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact, Int, Real

from .._misc import site_index
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert
from ..nn import FastMaskedConv1D, FastMaskedConv2D, FastMaskedDense1D
from ._arnn import AbstractARNNSequential, ARNNConv1D, ARNNConv2D, ARNNDense
from ._autoreg import AbstractFastARNN, normalize_log_conditionals


class AbstractFastARNNSequential(AbstractFastARNN):
    """A sequential ARNN (the slow model, field `arnn`) with a cache for every layer.

    The parameters, the hyperparameters and the full forward pass (`__call__`,
    `conditionals_log_psi`, `conditionals`) are those of the wrapped slow model, so
    `fast.to_slow()` is the field `arnn`. The caches live in an `eqx.nn.State` behind the
    state indices `caches`, one per layer; [`step`][nqzoo.models.AbstractFastARNN.step]
    advances every layer by one site through its fast wrapper (`layers`).
    """

    arnn: eqx.AbstractVar[AbstractARNNSequential]
    caches: eqx.AbstractVar[tuple[eqx.nn.StateIndex, ...]]

    @abc.abstractmethod
    def fast_layer(self, layer: eqx.Module, cache: eqx.nn.StateIndex | None = None) -> eqx.Module:
        """The fast wrapper of one layer of `arnn` (with a new cache if `cache` is None)."""

    @property
    def hilbert(self) -> AbstractDiscreteHilbert:
        return self.arnn.hilbert

    @property
    def machine_pow(self) -> int | float:
        return self.arnn.machine_pow

    @property
    def layers(self) -> tuple[eqx.Module, ...]:
        """The layers of `arnn`, each wrapped with its cache (e.g. `FastMaskedConv1D`)."""
        return tuple(map(self.fast_layer, self.arnn.layers, self.caches))

    def to_slow(self) -> AbstractARNNSequential:
        """The slow twin (e.g. `ARNNConv1D` for `FastARNNConv1D`), which holds the parameters."""
        return self.arnn

    def conditionals_log_psi(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """The slow model's normalised log-conditionals (see `arnn`)."""
        return self.arnn.conditionals_log_psi(x)

    def step(
        self,
        x: Real[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State,
    ) -> tuple[Inexact[Array, " {self.hilbert.local_size}"], eqx.nn.State]:
        """One site through every layer's cache: only `x[index - 1]` is read (the earlier
        sites are in the caches).

        The state passed in stays valid: the state from `eqx.nn.make_with_state` can start
        any number of passes (and be given to [`nqzoo.sample`][] afterwards).

        **Arguments:** as [`conditional`][nqzoo.models.AbstractFastARNN.conditional].

        **Returns:** `(log ψ_index(· | x_<index) (local_size,), new state)`; NaN for a traced
        `index` outside `0..N-1`.

        **Raises:** `ValueError` for a concrete `index` outside `0..N-1`, or a state that
        holds no cache of the right shape and dtype for some layer (a state made for another
        model: see
        [`update_site`][nqzoo.nn._misc.AbstractFastLayer.update_site]).
        """
        check_fields(self)
        x = jnp.asarray(x)
        traced = isinstance(index, jax.core.Tracer)
        index = site_index(index, self.hilbert.size)
        prev = lax.dynamic_slice(x, (lax.max(index - 1, jnp.int32(0)),), (1,))
        h = prev.astype(self.arnn.param_dtype)
        for i, layer in enumerate(self.layers):
            if i > 0:
                h = self.arnn.activation(h)
            h, state = layer.update_site(h, index, state)
        log_psi = normalize_log_conditionals(h, self.machine_pow)
        if traced:  # out of range: NaN rather than the clamped site's conditional
            in_range = (index >= 0) & (index < self.hilbert.size)
            log_psi = jnp.where(in_range, log_psi, jnp.full((), jnp.nan, log_psi.dtype))
        return log_psi, state


class FastARNNDense(AbstractFastARNNSequential):
    """[`nqzoo.models.ARNNDense`][] with cached sampling steps (the same parameters).

    Unlike NetKet's `FastARNNDense`, `conditional` works under `jax.jit` and `lax.scan` with a
    traced index. A dense step costs `O(N F²)` (it reads one column of each kernel); the
    cache is `(N, F_in)` per layer ([`nqzoo.nn.FastMaskedDense1D`][]).
    """

    arnn: ARNNDense
    caches: tuple[eqx.nn.StateIndex, ...]

    def __init__(self, *args, **kwargs):
        """Takes the arguments of [`nqzoo.models.ARNNDense`][]; build with
        `model, state = eqx.nn.make_with_state(FastARNNDense)(hilbert, ...)`."""
        self.arnn = ARNNDense(*args, **kwargs)
        self.caches = tuple(self.fast_layer(layer).cache for layer in self.arnn.layers)

    def fast_layer(self, layer, cache=None) -> FastMaskedDense1D:
        return FastMaskedDense1D(layer, cache)


class FastARNNConv1D(AbstractFastARNNSequential):
    """[`nqzoo.models.ARNNConv1D`][] with cached sampling steps (the same parameters).

    Each layer keeps a ring buffer of its last `≈ d (K - 1)` inputs (the last layer: partial
    sums of its next outputs; see [`nqzoo.nn.FastMaskedConv1D`][]); a step costs `O(K F²)`
    whatever `N`.
    """

    arnn: ARNNConv1D
    caches: tuple[eqx.nn.StateIndex, ...]

    def __init__(self, *args, **kwargs):
        """Takes the arguments of [`nqzoo.models.ARNNConv1D`][]; build with
        `model, state = eqx.nn.make_with_state(FastARNNConv1D)(hilbert, ...)`."""
        self.arnn = ARNNConv1D(*args, **kwargs)
        self.caches = tuple(self.fast_layer(layer).cache for layer in self.arnn.layers)

    def fast_layer(self, layer, cache=None) -> FastMaskedConv1D:
        return FastMaskedConv1D(layer, cache)


class FastARNNConv2D(AbstractFastARNNSequential):
    """[`nqzoo.models.ARNNConv2D`][] with cached sampling steps (the same parameters).

    Each layer keeps a ring buffer of its last `(kh - 1) dh + 1` padded lattice rows (the last
    layer: partial sums of its next outputs; see [`nqzoo.nn.FastMaskedConv2D`][]); a step
    costs `O(kh kw F²)` whatever `N`.
    """

    arnn: ARNNConv2D
    caches: tuple[eqx.nn.StateIndex, ...]

    def __init__(self, *args, **kwargs):
        """Takes the arguments of [`nqzoo.models.ARNNConv2D`][] (rectangular lattices through
        `lattice_shape`); build with
        `model, state = eqx.nn.make_with_state(FastARNNConv2D)(hilbert, ...)`."""
        self.arnn = ARNNConv2D(*args, **kwargs)
        self.caches = tuple(self.fast_layer(layer).cache for layer in self.arnn.layers)

    def fast_layer(self, layer, cache=None) -> FastMaskedConv2D:
        return FastMaskedConv2D(layer, self.arnn.lattice_shape, cache)
