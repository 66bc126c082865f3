"""Helpers shared by the masked layers and their fast (cached) wrappers."""

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact, Int, PRNGKeyArray

from .._custom_types import Initializer
from .._misc import site_index
from .._typecheck import check_fields


def masked_init(
    kernel_init: Initializer, mask: np.ndarray, key: PRNGKeyArray, shape: tuple, dtype
) -> Array:
    """NetKet's mask-corrected initialiser: `sqrt(mask.size / mask.sum()) * mask * init(...)`.

    `mask` broadcasts against `shape`; the correction restores the variance of the entries
    that survive the mask. The mask is cast to `dtype`, so the kernel keeps the parameter dtype.
    """
    full = np.broadcast_to(mask, shape)
    corr = math.sqrt(full.size / full.sum()) if full.sum() > 0 else 0.0
    return jnp.asarray(corr * full, dtype) * kernel_init(key, shape, dtype)


def init_bias(bias_init: Initializer, use_bias: bool, key, shape, dtype) -> Array | None:
    """The bias from `bias_init`, or `None` without one."""
    return bias_init(key, shape, dtype) if use_bias else None


def to_param_dtype(x: ArrayLike, param: Array) -> Array:
    """`x` cast to the dtype of `param` (complex of the same precision if `x` is complex and
    `param` real, so that no imaginary part is dropped). Casts are explicit: the layers run
    under JAX's strict dtype promotion."""
    x = jnp.asarray(x)
    dtype = param.dtype
    if jnp.iscomplexobj(x) and not jnp.issubdtype(dtype, jnp.complexfloating):
        zero = jnp.zeros((), dtype)
        dtype = lax.complex(zero, zero).dtype  # explicit: `1j * zero` is refused when strict
    return x.astype(dtype)


def shift_mod(index: Array, shift: int, n: int) -> Array:
    """`(index + shift) mod n` for an int32 `index >= 0` and static ints `shift`, `n > 0`.

    Plain `lax` scalar ops: `jnp.mod` would trace a nested jit (and its sign fix) for every
    tap of every layer, which shows in the first call of the sampler.
    """
    return lax.rem(lax.add(index, np.int32(shift % n)), np.int32(n))


def roll_blocks(blocks: list[Array], shift: Array) -> Array:
    """`jnp.roll(jnp.stack(blocks), shift, axis=0)` for an int32 `0 <= shift < len(blocks)`:
    one dynamic slice of the blocks stacked twice (no nested jit to trace)."""
    n = len(blocks)
    return lax.dynamic_slice_in_dim(jnp.stack(blocks + blocks), lax.sub(np.int32(n), shift), n)


class AbstractFastLayer(eqx.Module):
    """A masked layer (`layer`) plus a per-configuration cache behind a state index (`cache`).

    The full forward pass is the wrapped layer's. [`update_site`][] is the one-site step
    shared by every fast layer: it reads the cache from the state and checks that it is this
    layer's (shape `cache_shape`, the layer's dtype), zeroes the input of site -1 (the first
    step of an exclusive layer), casts the input to the cache's dtype, and hands over to the
    layer-specific `step`, which returns the output and the new cache.
    """

    layer: eqx.AbstractVar[eqx.Module]
    cache: eqx.AbstractVar[eqx.nn.StateIndex]

    @property
    @abc.abstractmethod
    def cache_shape(self) -> tuple[int, ...]:
        """The shape of this layer's cache (one configuration)."""

    @property
    def n_sites(self) -> int | None:
        """The number of sites the layer steps through, or `None` if any number works."""
        return None

    @abc.abstractmethod
    def step(self, inputs: Array, index: Array, cache: Array) -> tuple[Array, Array]:
        """The output at site `index` and the new cache, for the (zeroed, cast) input of site
        `index - exclusive` and an int32 `index`."""

    def empty_cache(self) -> Array:
        """The all-zero cache that starts a configuration: `cache_shape`, the layer's dtype."""
        return jnp.zeros(self.cache_shape, self.layer.kernel.dtype)

    def __call__(
        self, x: Inexact[ArrayLike, "*sites {self.layer.in_features}"]
    ) -> Inexact[Array, "*sites {self.layer.out_features}"]:
        """The wrapped layer's full forward pass."""
        return self.layer(x)

    def update_site(
        self,
        inputs: Inexact[ArrayLike, " {self.layer.in_features}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None,
    ) -> tuple[Inexact[Array, " {self.layer.out_features}"], eqx.nn.State]:
        """One step: store the input of site `index - exclusive`, return the output at `index`.

        Equal to the wrapped layer's output at `index` once the sites were fed in order
        `0, 1, …` from an all-zero cache (sites in raster order for a 2D layer). Every step
        costs the same whatever `index`, and a traced index is fine.

        The state passed in stays valid (eagerly too, not only under `jax.jit`): a state is
        a value, so the one from `eqx.nn.make_with_state` can start any number of passes.

        **Arguments:**

        - `inputs`: the layer input at site `index - exclusive`, `(F_in,)` (ignored when that
          site is `-1`).
        - `index`: the output site, `0 <= index < n_sites` (any `index >= 0` for a layer that
          takes any number of sites).
        - `state`: the state holding this layer's cache.

        **Returns:** `(output (F_out,), state)`, the new state holding the new cache.

        **Raises:**

        - `TypeError` if `state` is not an `eqx.nn.State`.
        - `ValueError` if `state` holds no cache for this layer, or one of another shape or
          dtype (a state made for another layer or model), or is an `eqx.nn.State` that was
          retired by an eager `state.set`; or if a concrete `index` is out of range.
        """
        check_fields(self.layer)
        cache = self.read_cache(state)
        index = site_index(index, self.n_sites)
        exclusive = self.layer.exclusive
        inputs = jnp.asarray(inputs)
        if exclusive:
            # Only exclusive layers can see site -1, so other layers skip the select (which
            # would also keep XLA from vectorising the fused activation producing `inputs`).
            inputs = jnp.where(index >= 1, inputs, jnp.zeros((), inputs.dtype))
        out, cache = self.step(to_param_dtype(inputs, cache), index, cache)
        # `set` retires the State it is called on: call it on a copy (the same arrays), so
        # that the caller's state stays usable, as it does under jit.
        return out, jax.tree.map(lambda leaf: leaf, state).set(self.cache, cache)

    def read_cache(self, state: eqx.nn.State | None) -> Array:
        """This layer's cache from `state`, checked against `cache_shape` and the layer's
        dtype (see `update_site` for the errors)."""
        name = type(self).__name__
        marker = self.cache.marker
        where = f"{name} ({marker})" if isinstance(marker, str) else name
        fix = (
            "Pass the state built together with this model or layer: `model, state = "
            "eqx.nn.make_with_state(Model)(...)` (any state of that structure works: the "
            "sampler starts every chain from an all-zero cache)."
        )
        if not isinstance(state, eqx.nn.State):
            raise TypeError(
                f"{name}.update_site needs the layer's cache state, got state="
                f"{type(state).__name__}. Build the layer (or model) with "
                "`model, state = eqx.nn.make_with_state(Cls)(...)` and pass `state`."
            )
        try:
            cache = state.get(self.cache)
        except KeyError:
            raise ValueError(
                f"The state has no cache for the layer {where}: it was built for another "
                f"model or layer (e.g. with fewer layers, or another class). {fix}"
            ) from None
        except ValueError as err:  # Equinox's "Attempted to use old state"
            raise ValueError(
                f"The state given to {where} was retired: an eager `state.set(...)` "
                "invalidates the State it is called on. Pass the state that call returned, "
                f"or a fresh one. {fix}"
            ) from err
        expected = jax.ShapeDtypeStruct(self.cache_shape, self.layer.kernel.dtype)
        shape, dtype = jnp.shape(cache), jnp.result_type(cache)
        if shape != expected.shape or dtype != expected.dtype:
            raise ValueError(
                f"The state holds a cache {_struct(shape, dtype)} for the layer {where}, "
                f"which expects {_struct(expected.shape, expected.dtype)}: the state was "
                "built for another model or layer (other features, kernel size, dilation, "
                f"lattice or param_dtype). {fix}"
            )
        return cache


def _struct(shape: tuple[int, ...], dtype) -> str:
    return f"{jnp.dtype(dtype).name}{list(shape)}"
