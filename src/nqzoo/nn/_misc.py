"""Helpers shared by the masked layers and their fast (cached) wrappers."""

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, PRNGKeyArray

from .._custom_types import Initializer


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
        dtype = (1j * jnp.zeros((), dtype)).dtype
    return x.astype(dtype)


def check_state(state: object, layer: eqx.Module) -> eqx.nn.State:
    """`state` if it is an `eqx.nn.State`, else a `TypeError` saying how to build one."""
    if not isinstance(state, eqx.nn.State):
        raise TypeError(
            f"{type(layer).__name__}.update_site needs the layer's cache state, got state="
            f"{type(state).__name__}. Build the layer (or model) with "
            "`model, state = eqx.nn.make_with_state(Cls)(...)` and pass `state`."
        )
    return state


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


def zero_before_start(inputs: ArrayLike, site: Array, exclusive: bool) -> Array:
    """The input to store: zero when `site` is -1 (the first step of an exclusive layer).

    Only exclusive layers can see site -1, so other layers skip the select (which would
    also keep XLA from vectorising the fused activation that produces `inputs`).
    """
    inputs = jnp.asarray(inputs)
    return jnp.where(site >= 0, inputs, jnp.zeros((), inputs.dtype)) if exclusive else inputs
