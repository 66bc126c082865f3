"""Helpers shared by the masked layers and their fast (cached) wrappers."""

import abc
import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact, Int, PRNGKeyArray

from .._custom_types import Initializer
from .._misc import as_index
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
    shared by every fast layer: it reads the cache from the state, zeroes the input of site
    -1 (the first step of an exclusive layer), casts the input to the cache's dtype, and hands
    over to the layer-specific `step`, which returns the output and the new cache.
    """

    layer: eqx.AbstractVar[eqx.Module]
    cache: eqx.AbstractVar[eqx.nn.StateIndex]

    @abc.abstractmethod
    def step(self, inputs: Array, index: Array, cache: Array) -> tuple[Array, Array]:
        """The output at site `index` and the new cache, for the (zeroed, cast) input of site
        `index - exclusive` and an int32 `index`."""

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

        **Arguments:**

        - `inputs`: the layer input at site `index - exclusive`, `(F_in,)` (ignored when that
          site is `-1`).
        - `index`: the output site.
        - `state`: the state holding this layer's cache.

        **Returns:** `(output (F_out,), state)`.
        """
        check_fields(self.layer)
        if not isinstance(state, eqx.nn.State):
            raise TypeError(
                f"{type(self).__name__}.update_site needs the layer's cache state, got state="
                f"{type(state).__name__}. Build the layer (or model) with "
                "`model, state = eqx.nn.make_with_state(Cls)(...)` and pass `state`."
            )
        cache = state.get(self.cache)
        index = as_index(index)
        exclusive = self.layer.exclusive
        inputs = jnp.asarray(inputs)
        if exclusive:
            # Only exclusive layers can see site -1, so other layers skip the select (which
            # would also keep XLA from vectorising the fused activation producing `inputs`).
            inputs = jnp.where(index >= 1, inputs, jnp.zeros((), inputs.dtype))
        out, cache = self.step(to_param_dtype(inputs, cache), index, cache)
        return out, state.set(self.cache, cache)
