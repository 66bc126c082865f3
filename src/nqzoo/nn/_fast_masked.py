"""Fast masked layers: the slow layers plus a per-configuration cache for site-by-site sampling.

Each fast layer has exactly the fields (parameters and hyperparameters) of its slow twin in
`_masked.py`, shares its math (the same abstract base class: `__call__`, `contract`,
`site_output`), and adds one `eqx.nn.StateIndex` holding a cache of fixed shape and dtype
(the parameter dtype, so complex when the parameters are). The cache is for ONE
configuration (no batch axis); samplers `vmap` over chains.

`update_site(inputs, index, state)` feeds the layer input of site `index - exclusive` and
returns the layer output at site `index`, equal to the slow layer's output there provided the
sites were fed in order `0, 1, …` starting from an all-zero cache. Every step costs the same
whatever `index` (a traced integer is fine) and does not grow with the number of sites for
the convolutions: the caches are ring buffers indexed modulo their size; nothing is shifted.

A convolution keeps whichever side of the layer is narrower. Most layers keep their past
inputs: a step writes one site with `dynamic_update_slice` and reads the kernel's window, one
small slice per tap (1D) or kernel row (2D). A layer with `F_out < F_in` (the last layer of
a network) keeps partial sums of the outputs it has started instead: a step adds the new
input's contribution to all of them with one product and reads the finished output.
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact, Int, PRNGKeyArray

from .._checks import check_fields
from .._custom_types import Initializer
from . import initializers
from ._masked import (
    _init_conv1d,
    _init_conv2d,
    _init_dense,
    _positive_pair,
    _promote,
    AbstractMaskedConv1D,
    AbstractMaskedConv2D,
    AbstractMaskedDense1D,
)


def _check_state(state: object) -> eqx.nn.State:
    if not isinstance(state, eqx.nn.State):
        raise TypeError(
            "update_site needs the layer's cache state, got state="
            f"{type(state).__name__}. Build the layer (or model) with "
            "`model, state = eqx.nn.make_with_state(Cls)(...)` and pass `state`."
        )
    return state


def _as_index(index: ArrayLike) -> Array:
    """A site index as an int32 scalar, so that every start index of a step has one dtype."""
    return lax.convert_element_type(jnp.asarray(index), np.int32)


def _shift_mod(index: Array, shift: int, n: int) -> Array:
    """`(index + shift) mod n` for an int32 `index >= 0` and static ints `shift`, `n > 0`.

    Plain `lax` scalar ops: `jnp.mod` would trace a nested jit (and its sign fix) for every
    tap of every layer, which shows in the first call of the sampler.
    """
    return lax.rem(lax.add(index, np.int32(shift % n)), np.int32(n))


def _roll_blocks(blocks: list[Array], shift: Array) -> Array:
    """`jnp.roll(jnp.stack(blocks), shift, axis=0)` for an int32 `0 <= shift < len(blocks)`:
    one dynamic slice of the blocks stacked twice (no nested jit to trace)."""
    n = len(blocks)
    return lax.dynamic_slice_in_dim(jnp.stack(blocks + blocks), lax.sub(np.int32(n), shift), n)


def _zero_before_start(inputs: ArrayLike, site: Array, exclusive: bool) -> Array:
    """The input to store: zero when `site` is -1 (the first step of an exclusive layer).

    Only exclusive layers can see site -1, so other layers skip the select (which would
    also keep XLA from vectorising the fused activation that produces `inputs`).
    """
    inputs = jnp.asarray(inputs)
    return jnp.where(site >= 0, inputs, 0) if exclusive else inputs


class FastMaskedDense1D(AbstractMaskedDense1D):
    """[`nqzoo.nn.MaskedDense1D`][] with a cache of the inputs of every site, `(N, F_in)`.

    A step reads one kernel column `K[:, :, index, :]` with `dynamic_index_in_dim`, so it
    runs under `jax.jit` and `lax.scan` with a traced index (NetKet's fast dense layer does
    not); its cost is `O(N F_in F_out)`, inherent to a dense layer.
    """

    kernel: Inexact[Array, "{self.n_sites*self.in_features} {self.n_sites*self.out_features}"]
    bias: Inexact[Array, "{self.n_sites} {self.out_features}"] | None
    cache: eqx.nn.StateIndex
    n_sites: int = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    exclusive: bool = eqx.field(static=True)

    def __init__(
        self,
        n_sites: int,
        in_features: int,
        out_features: int,
        exclusive: bool,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """Arguments as [`nqzoo.nn.MaskedDense1D`][]; build with `eqx.nn.make_with_state`."""
        _init_dense(
            self,
            n_sites,
            in_features,
            out_features,
            exclusive,
            use_bias,
            param_dtype,
            kernel_init,
            bias_init,
            key,
        )
        self.cache = eqx.nn.StateIndex(
            jnp.zeros((self.n_sites, self.in_features), self.kernel.dtype)
        )

    def __check_init__(self):
        check_fields(self)

    def update_site(
        self,
        inputs: Inexact[ArrayLike, " {self.in_features}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None,
    ) -> tuple[Inexact[Array, " {self.out_features}"], eqx.nn.State]:
        """One step: store the input of site `index - exclusive`, return the output at `index`.

        **Arguments:**

        - `inputs`: the layer input at site `index - exclusive`, `(F_in,)` (ignored when that
          site is `-1`).
        - `index`: the output site (a traced integer is fine).
        - `state`: the state holding this layer's cache.

        **Returns:** `(output (F_out,), state)`.
        """
        check_fields(self)
        state = _check_state(state)
        cache = state.get(self.cache)
        index = _as_index(index)
        site = index - int(self.exclusive)
        inputs = _zero_before_start(inputs, site, self.exclusive).astype(cache.dtype)
        start = (lax.max(site, np.int32(0)), np.int32(0))
        cache = lax.dynamic_update_slice(cache, inputs[None], start)
        return self.site_output(cache, index), state.set(self.cache, cache)


class FastMaskedConv1D(AbstractMaskedConv1D):
    """[`nqzoo.nn.MaskedConv1D`][] with a ring buffer of the last inputs.

    The ring holds `C = d (K - 1)` sites (exclusive) or `d (K - 1) + 1` (otherwise), NetKet's
    cache size: `(C, F_in)`; or, when the layer narrows the features (`F_out < F_in`, see
    `caches_outputs`), the partial sums of the next `C` outputs, `(C, F_out)`.
    """

    kernel: Inexact[Array, "{self.n_taps} {self.in_features} {self.out_features}"]
    bias: Inexact[Array, " {self.out_features}"] | None
    cache: eqx.nn.StateIndex
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    kernel_dilation: int = eqx.field(static=True)
    exclusive: bool = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int,
        kernel_dilation: int = 1,
        exclusive: bool = False,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """Arguments as [`nqzoo.nn.MaskedConv1D`][]; build with `eqx.nn.make_with_state`."""
        _init_conv1d(
            self,
            in_features,
            out_features,
            kernel_size,
            kernel_dilation,
            exclusive,
            use_bias,
            param_dtype,
            kernel_init,
            bias_init,
            key,
        )
        width = self.out_features if self.caches_outputs else self.in_features
        self.cache = eqx.nn.StateIndex(jnp.zeros((self.ring_size, width), self.kernel.dtype))

    def __check_init__(self):
        check_fields(self)

    @property
    def ring_size(self) -> int:
        """Sites kept in the ring: from the farthest tap to the newest input."""
        return max(self.offset - int(self.exclusive) + self.span, 1)

    @property
    def caches_outputs(self) -> bool:
        """Whether the ring holds partial sums of the next outputs rather than past inputs.

        A layer that narrows the features (`F_out < F_in`, e.g. the last layer of a network,
        `F_out = local_size`) keeps the `ring_size` outputs it has started, `(C, F_out)`: a step
        adds the new input's contribution to all of them with one matrix product and reads
        the finished one, instead of copying a `(K, F_in)` window of past inputs out of the
        ring. Same result, a smaller cache and less memory traffic per step.
        """
        return self.out_features < self.in_features

    def update_site(
        self,
        inputs: Inexact[ArrayLike, " {self.in_features}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None,
    ) -> tuple[Inexact[Array, " {self.out_features}"], eqx.nn.State]:
        """One step: store the input of site `index - exclusive`, return the output at `index`.

        **Arguments:**

        - `inputs`: the layer input at site `index - exclusive`, `(F_in,)`.
        - `index`: the output site (a traced integer is fine).
        - `state`: the state holding this layer's cache.

        **Returns:** `(output (F_out,), state)`.
        """
        check_fields(self)
        state = _check_state(state)
        cache = state.get(self.cache)
        ring = self.ring_size
        index = _as_index(index)
        excl = int(self.exclusive)
        inputs = _zero_before_start(inputs, index - excl, self.exclusive)
        if self.caches_outputs:
            return self._update_partial_sums(inputs, index, cache, state)
        zero = np.int32(0)
        slot = _shift_mod(index, -excl, ring)
        cache = lax.dynamic_update_slice(cache, inputs.astype(cache.dtype)[None], (slot, zero))
        d, taps = self.kernel_dilation, self.n_taps
        rows = [
            lax.dynamic_slice(
                cache,
                (_shift_mod(index, -self.offset - d * (taps - 1 - m), ring), zero),
                (1, self.in_features),
            )
            for m in range(taps)
        ]
        taps = jnp.concatenate(rows, 0) if rows else jnp.zeros((0, self.in_features), cache.dtype)
        return self.contract(taps), state.set(self.cache, cache)

    def _update_partial_sums(self, inputs, index, cache, state):
        # The input of site `index - exclusive` enters output `index + p_m` through tap m,
        # p_m = o - exclusive + d (K' - 1 - m) in [0, C). Output j accumulates in ring slot
        # j mod C, so the kernel is laid out by slot once per step (a roll of a tiny array)
        # and one product adds every contribution in place.
        ring, d, taps = self.ring_size, self.kernel_dilation, self.n_taps
        tap_at = {self.offset - int(self.exclusive) + d * (taps - 1 - m): m for m in range(taps)}
        zeros = jnp.zeros((self.in_features, self.out_features), self.kernel.dtype)
        by_offset = [self.kernel[tap_at[p]] if p in tap_at else zeros for p in range(ring)]
        slot, zero = _shift_mod(index, 0, ring), np.int32(0)
        by_slot = _roll_blocks(by_offset, slot)
        weights = by_slot.transpose(1, 0, 2).reshape(self.in_features, -1)
        contribution = (_promote(inputs, weights) @ weights).reshape(ring, self.out_features)
        sums = cache + contribution
        out = lax.dynamic_slice(sums, (slot, zero), (1, self.out_features))[0]
        if self.bias is not None:
            out = out + self.bias
        # slot `index` is finished: empty it for output `index + C`
        sums = lax.dynamic_update_slice(
            sums, jnp.zeros((1, self.out_features), sums.dtype), (slot, zero)
        )
        return out, state.set(self.cache, sums)


class FastMaskedConv2D(AbstractMaskedConv2D):
    """[`nqzoo.nn.MaskedConv2D`][] with a ring buffer of the last lattice rows.

    The ring holds the last `R = (kh - 1) dh + 1` lattice rows, padded:
    `(R, cols + (kw // 2 + (kw - 1) // 2) dw, F_in)`, NetKet's cache plus the padding columns.
    The current row's slot still holds a stale row at the columns not yet written, but
    exactly those are removed by the mask. When the layer narrows the features
    (`F_out < F_in`, see `caches_outputs`) it holds the partial sums of the outputs of the
    next `R` rows instead, `(R, cols + pad, F_out)`.
    """

    kernel: Inexact[
        Array,
        "{self.kernel_size[0]} {self.kernel_size[1]} {self.in_features} {self.out_features}",
    ]
    bias: Inexact[Array, " {self.out_features}"] | None
    cache: eqx.nn.StateIndex
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    kernel_size: tuple[int, int] = eqx.field(static=True)
    kernel_dilation: tuple[int, int] = eqx.field(static=True)
    exclusive: bool = eqx.field(static=True)
    lattice_shape: tuple[int, int] = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: tuple[int, int],
        kernel_dilation: tuple[int, int] = (1, 1),
        exclusive: bool = False,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        lattice_shape: tuple[int, int],
        key: PRNGKeyArray,
    ):
        """Arguments as [`nqzoo.nn.MaskedConv2D`][], plus `lattice_shape = (rows, cols)` (the
        cache is sized by the number of columns); build with `eqx.nn.make_with_state`."""
        _init_conv2d(
            self,
            in_features,
            out_features,
            kernel_size,
            kernel_dilation,
            exclusive,
            use_bias,
            param_dtype,
            kernel_init,
            bias_init,
            key,
        )
        self.lattice_shape = _positive_pair(lattice_shape, "lattice_shape")
        top, left, right = self.padding
        width = self.lattice_shape[1] + left + right
        features = self.out_features if self.caches_outputs else self.in_features
        self.cache = eqx.nn.StateIndex(
            jnp.zeros((self.receptive_field[0], width, features), self.kernel.dtype)
        )

    def __check_init__(self):
        check_fields(self)

    @property
    def caches_outputs(self) -> bool:
        """Whether the ring holds partial sums of the next outputs rather than past inputs.

        As for [`nqzoo.nn.FastMaskedConv1D`][]: a layer that narrows the features
        (`F_out < F_in`) keeps the outputs of the last `R` rows it has started,
        `(R, cols + pad, F_out)`, and adds the new input's contribution to its
        `R x receptive width` neighbourhood with one small product, instead of copying the
        unmasked window of past inputs out of the ring.
        """
        return self.out_features < self.in_features

    def update_site(
        self,
        inputs: Inexact[ArrayLike, " {self.in_features}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None,
    ) -> tuple[Inexact[Array, " {self.out_features}"], eqx.nn.State]:
        """One step: store the input of site `index - exclusive`, return the output at `index`.

        Sites are numbered in raster order, `index = row * cols + col`.

        **Arguments:**

        - `inputs`: the layer input at site `index - exclusive`, `(F_in,)`.
        - `index`: the output site (a traced integer is fine).
        - `state`: the state holding this layer's cache.

        **Returns:** `(output (F_out,), state)`.
        """
        check_fields(self)
        state = _check_state(state)
        cache = state.get(self.cache)
        cols = np.int32(self.lattice_shape[1])
        ring, width = self.receptive_field
        _, left, _ = self.padding
        index = _as_index(index)
        excl = int(self.exclusive)
        site = lax.sub(index, np.int32(excl))
        inputs = _zero_before_start(inputs, site, self.exclusive)
        # Site -1 (index 0 of an exclusive layer) feeds zeros. They are written at site 0's
        # place, which site 0's own input overwrites at the next step.
        site = lax.max(site, np.int32(0))
        site_row, site_col = lax.div(site, cols), lax.rem(site, cols)
        if self.caches_outputs:
            return self._update_partial_sums(inputs, index, site_row, site_col, cache, state)
        zero = np.int32(0)
        slot = _shift_mod(site_row, 0, ring)
        update = inputs.astype(cache.dtype)[None, None]
        cache = lax.dynamic_update_slice(cache, update, (slot, site_col + np.int32(left), zero))
        row, col = lax.div(index, cols), lax.rem(index, cols)
        kh, (dh, dw) = self.kernel_size[0], self.kernel_dilation
        n_last = self.n_last
        # one slice per kernel row (the rows of the window wrap around the ring); the last
        # row is cut to its unmasked taps
        rows = [
            lax.dynamic_slice(
                cache,
                (_shift_mod(row, -(kh - 1 - p) * dh, ring), col, zero),
                (1, width if p < kh - 1 else (n_last - 1) * dw + 1, self.in_features),
            )[0, ::dw]
            for p in range(kh)
            if p < kh - 1 or n_last > 0
        ]
        taps = jnp.concatenate(rows) if rows else jnp.zeros((0, self.in_features), cache.dtype)
        return self.contract(taps), state.set(self.cache, cache)

    def _update_partial_sums(self, inputs, index, site_row, site_col, cache, state):
        # The input of site s = (rs, cs) enters output (rs + a, cs + e) through the unmasked
        # tap (p, q), a = (kh - 1 - p) dh, e = (kw // 2 - q) dw. Ring row (rs + a) mod R and
        # padded column cs + e + right hold that output, so the contributions of one input
        # fill an (R, right + left + 1) block starting at column cs: the kernel is laid out by
        # (a, e), rolled to ring rows once per step, and one product plus one in-place add of
        # that block does the step. Columns outside the lattice land in the padding, which
        # is never read.
        cols = np.int32(self.lattice_shape[1])
        ring, _ = self.receptive_field
        _, left, right = self.padding
        (kh, kw), (dh, dw) = self.kernel_size, self.kernel_dilation
        block = left + right + 1
        tap_at = {
            ((kh - 1 - p) * dh, (kw // 2 - q) * dw + right): (p, q) for p, q in self.unmasked_taps
        }
        zeros = jnp.zeros((self.in_features, self.out_features), self.kernel.dtype)

        def tap(a, e):
            return self.kernel[tap_at[a, e]] if (a, e) in tap_at else zeros

        by_offset = [jnp.stack([tap(a, e) for e in range(block)]) for a in range(ring)]
        by_row = _roll_blocks(by_offset, _shift_mod(site_row, 0, ring))
        weights = by_row.transpose(2, 0, 1, 3).reshape(self.in_features, -1)
        contribution = (_promote(inputs, weights) @ weights).reshape(
            ring, block, self.out_features
        )
        zero = np.int32(0)
        start = (zero, site_col, zero)
        window = lax.dynamic_slice(cache, start, (ring, block, self.out_features))
        sums = lax.dynamic_update_slice(cache, window + contribution, start)
        row, col = lax.div(index, cols), lax.rem(index, cols)
        at = (_shift_mod(row, 0, ring), col + np.int32(right), zero)
        out = lax.dynamic_slice(sums, at, (1, 1, self.out_features)).reshape(-1)
        if self.bias is not None:
            out = out + self.bias
        # output `index` is finished: empty its slot for the output R rows below
        sums = lax.dynamic_update_slice(
            sums, jnp.zeros((1, 1, self.out_features), sums.dtype), at
        )
        return out, state.set(self.cache, sums)
