"""The causal 2D convolution on a lattice in raster order and its fast (cached) wrapper."""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from .._custom_types import Initializer
from .._misc import inexact_dtype, positive_int, positive_int_pair, RealNumber
from .._typecheck import check_fields
from . import initializers
from ._misc import AbstractFastLayer, init_bias, masked_init, roll_blocks, shift_mod, to_param_dtype


def conv2d_mask(kernel_size: tuple[int, int], exclusive: bool) -> np.ndarray:
    """NetKet's `(kh, kw)` mask: in the last kernel row, zero from `kw // 2 + (not exclusive)`."""
    kh, kw = kernel_size
    mask = np.ones((kh, kw))
    mask[kh - 1, kw // 2 + int(not exclusive) :] = 0
    return mask


# Pairs of sizes are `Sequence[RealNumber]`: positive_int_pair checks both entries (see
# `RealNumber`).


class MaskedConv2D(eqx.Module):
    r"""Causal 2D convolution on a lattice in raster (row-major) order.

    $$y_{rco} = \sum_{p,q} M_{pq} \sum_a x_{r - (k_h-1-p) d_h,\; c + (q - \lfloor k_w/2
    \rfloor) d_w,\; a}\, W_{pqao} + b_o,$$

    zero outside the lattice. The mask $M$ keeps every kernel row above the current one
    (full width: to the right is earlier in raster order) and, in the last row, only the
    columns left of the centre (`exclusive`) or up to the centre (otherwise). Kernel
    `(kh, kw, F_in, F_out)`, bias `(F_out,)`, as NetKet's `netket.nn.MaskedConv2D`. Only the
    taps the mask keeps are contracted. The layer acts on ONE configuration
    `(rows, cols, F_in)`.
    """

    kernel: Inexact[
        Array,
        "{self.kernel_size[0]} {self.kernel_size[1]} {self.in_features} {self.out_features}",
    ]
    bias: Inexact[Array, " {self.out_features}"] | None
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    kernel_size: tuple[int, int] = eqx.field(static=True)
    kernel_dilation: tuple[int, int] = eqx.field(static=True)
    exclusive: bool = eqx.field(static=True)

    def __init__(
        self,
        in_features: int | np.integer,
        out_features: int | np.integer,
        kernel_size: int | np.integer | Sequence[RealNumber],
        kernel_dilation: int | np.integer | Sequence[RealNumber] = (1, 1),
        exclusive: bool = False,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_features`, `out_features`: feature widths per site.
        - `kernel_size`: `(kh, kw)`, positive integers (an int `k` means `(k, k)`); not
          `(1, 1)` if `exclusive` (the mask would leave the kernel no tap).
        - `kernel_dilation`: `(dh, dw)`, positive integers (an int `d` means `(d, d)`).
        - `exclusive`: if true, a site sees only earlier sites in raster order.
        - `use_bias`: whether to add the bias.
        - `param_dtype`: dtype of the parameters, floating or complex (an integer dtype is
          refused).
        - `kernel_init`: initialiser, wrapped with NetKet's mask correction
          `sqrt(kh kw / mask.sum()) * mask * kernel_init(...)`.
        - `bias_init`: initialiser of the bias (zeros by default).
        - `key`: a JAX PRNG key.
        """
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.kernel_size = positive_int_pair(kernel_size, "kernel_size")
        self.kernel_dilation = positive_int_pair(kernel_dilation, "kernel_dilation")
        self.exclusive = bool(exclusive)
        if self.n_unmasked == 0:
            raise ValueError(
                f"kernel_size={self.kernel_size} with exclusive=True leaves the kernel no tap: "
                "the mask of an exclusive layer removes the current site, the only tap of a "
                "1x1 kernel, so the output would not depend on any site. Use a kernel with "
                "kh >= 2 or kw >= 2 (or exclusive=False)."
            )
        param_dtype = inexact_dtype(param_dtype)
        kkey, bkey = jax.random.split(key)
        mask = conv2d_mask(self.kernel_size, self.exclusive)[:, :, None, None]
        shape = (*self.kernel_size, self.in_features, self.out_features)
        self.kernel = masked_init(kernel_init, mask, kkey, shape, param_dtype)
        self.bias = init_bias(bias_init, use_bias, bkey, (self.out_features,), param_dtype)

    def __check_init__(self):
        check_fields(self)

    @property
    def padding(self) -> tuple[int, int, int]:
        """Zero padding `(top, left, right)` of the lattice."""
        (kh, kw), (dh, dw) = self.kernel_size, self.kernel_dilation
        return (kh - 1) * dh, (kw // 2) * dw, ((kw - 1) // 2) * dw

    @property
    def receptive_field(self) -> tuple[int, int]:
        """Rows and columns spanned by the dilated kernel: `((kh-1) dh + 1, (kw-1) dw + 1)`."""
        (kh, kw), (dh, dw) = self.kernel_size, self.kernel_dilation
        return (kh - 1) * dh + 1, (kw - 1) * dw + 1

    @property
    def n_last(self) -> int:
        """Unmasked taps of the last kernel row: `kw // 2 + (not exclusive)`."""
        return self.kernel_size[1] // 2 + int(not self.exclusive)

    @property
    def unmasked_taps(self) -> tuple[tuple[int, int], ...]:
        """The kernel taps `(p, q)` left by the mask, in raster order: every row but the
        last, then the first `n_last` taps of the last row."""
        kh, kw = self.kernel_size
        return tuple((p, q) for p in range(kh) for q in range(kw if p < kh - 1 else self.n_last))

    @property
    def n_unmasked(self) -> int:
        """Kernel taps left by the mask: every row but the last, plus `n_last`."""
        return len(self.unmasked_taps)

    def unmasked_kernel(self) -> Inexact[Array, "unmasked {self.out_features}"]:
        """The taps left by the mask in raster order as one `(n_unmasked F_in, F_out)` matrix.

        The masked taps are dropped rather than multiplied by zero: the layer computes the
        same output (as NetKet, whatever values the masked kernel entries hold) with about
        half the arithmetic for a 3x3 kernel.
        """
        kh = self.kernel_size[0]
        return jnp.concatenate(
            [
                self.kernel[: kh - 1].reshape(-1, self.out_features),
                self.kernel[kh - 1, : self.n_last].reshape(-1, self.out_features),
            ]
        )

    def contract(
        self, taps: Inexact[Array, "*sites {self.n_unmasked} {self.in_features}"]
    ) -> Inexact[Array, "*sites {self.out_features}"]:
        """`y = sum_t taps[t] @ W[t] + b` over the unmasked taps `t` (raster order)."""
        kernel = self.unmasked_kernel()
        taps = to_param_dtype(taps, kernel)
        # one matrix product over (tap, feature): (..., taps F_in) @ (taps F_in, F_out)
        out = taps.reshape(*taps.shape[:-2], -1) @ kernel
        if self.bias is not None:
            out = out + jnp.broadcast_to(self.bias, out.shape)
        return out

    def windows(
        self, xp: Inexact[Array, "rows cols {self.in_features}"], rows: int, cols: int
    ) -> Inexact[Array, "{rows} {cols} {self.n_unmasked} {self.in_features}"]:
        """The unmasked taps of the dilated window of every output site of a padded lattice
        `xp`, in raster order."""
        dh, dw = self.kernel_dilation
        return jnp.stack(
            [xp[p * dh : p * dh + rows, q * dw : q * dw + cols] for p, q in self.unmasked_taps],
            axis=2,
        )

    def __call__(
        self, x: Inexact[ArrayLike, "rows cols {self.in_features}"]
    ) -> Inexact[Array, "rows cols {self.out_features}"]:
        """**Arguments:**

        - `x`: the inputs of one configuration on the lattice, `(rows, cols, F_in)`.

        **Returns:** `(rows, cols, F_out)`.
        """
        check_fields(self)
        x = jnp.asarray(x)
        rows, cols = x.shape[:2]
        top, left, right = self.padding
        xp = jnp.pad(x, ((top, 0), (left, right), (0, 0)))
        return self.contract(self.windows(xp, rows, cols))


class FastMaskedConv2D(AbstractFastLayer):
    """[`nqzoo.nn.MaskedConv2D`][] with a ring buffer of the last lattice rows.

    Holds the wrapped layer as `layer` (its `__call__` is the layer's), the lattice shape
    (the cache is sized by the number of columns) and the ring behind `cache`, an
    `eqx.nn.StateIndex`. The ring holds the last `R = (kh - 1) dh + 1` lattice rows, padded:
    `(R, cols + (kw // 2 + (kw - 1) // 2) dw, F_in)`, NetKet's cache plus the padding columns.
    The current row's slot still holds a stale row at the columns not yet written, but
    exactly those are removed by the mask. When the layer narrows the features
    (`F_out < F_in`, see `caches_outputs`) it holds the partial sums of the outputs of the
    next `R` rows instead, `(R, cols + pad, F_out)`. A step costs `O(kh kw F_in F_out)`.
    """

    layer: MaskedConv2D
    cache: eqx.nn.StateIndex[Inexact[Array, "ring width features"]]
    lattice_shape: tuple[int, int] = eqx.field(static=True)

    def __init__(
        self,
        layer: MaskedConv2D,
        lattice_shape: Sequence[RealNumber],
        cache: eqx.nn.StateIndex | None = None,
    ):
        """**Arguments:**

        - `layer`: the [`nqzoo.nn.MaskedConv2D`][] to wrap.
        - `lattice_shape`: `(rows, cols)` of the lattice the layer steps through.
        - `cache`: the state index of an existing cache to use (fast models keep one per
          layer); by default a new one, holding an all-zero ring of the layer's dtype.

        Build with `layer, state = eqx.nn.make_with_state(FastMaskedConv2D)(conv, (4, 4))`.
        """
        self.layer = layer
        self.lattice_shape = positive_int_pair(lattice_shape, "lattice_shape")
        if cache is None:
            cache = eqx.nn.StateIndex(self.empty_cache())
        self.cache = cache

    @property
    def cache_shape(self) -> tuple[int, int, int]:
        """`(R, cols + pad, F)`: `R` ring rows of the padded lattice, `F = F_out` if the ring
        holds partial sums (`caches_outputs`), else `F_in`."""
        layer = self.layer
        _, left, right = layer.padding
        features = layer.out_features if self.caches_outputs else layer.in_features
        return layer.receptive_field[0], self.lattice_shape[1] + left + right, features

    @property
    def n_sites(self) -> int:
        """The number of lattice sites `rows * cols`."""
        return self.lattice_shape[0] * self.lattice_shape[1]

    @property
    def caches_outputs(self) -> bool:
        """Whether the ring holds partial sums of the next outputs rather than past inputs.

        As for [`nqzoo.nn.FastMaskedConv1D`][]: a layer that narrows the features
        (`F_out < F_in`) keeps the outputs of the last `R` rows it has started,
        `(R, cols + pad, F_out)`, and adds the new input's contribution to its
        `R x receptive width` neighbourhood with one small product, instead of copying the
        unmasked window of past inputs out of the ring.
        """
        return self.layer.out_features < self.layer.in_features

    def step(self, inputs: Array, index: Array, cache: Array) -> tuple[Array, Array]:
        cols = np.int32(self.lattice_shape[1])
        # Site -1 (index 0 of an exclusive layer) feeds zeros. They are written at site 0's
        # place, which site 0's own input overwrites at the next step.
        site = lax.max(lax.sub(index, np.int32(int(self.layer.exclusive))), np.int32(0))
        site_rc = lax.div(site, cols), lax.rem(site, cols)
        out_rc = lax.div(index, cols), lax.rem(index, cols)
        if self.caches_outputs:
            return self._step_partial_sums(inputs, site_rc, out_rc, cache)
        return self._step_inputs(inputs, site_rc, out_rc, cache)

    def _step_inputs(self, inputs, site_rc, out_rc, cache) -> tuple[Array, Array]:
        # Write the new input into the ring, read one slice per kernel row (the rows of the
        # window wrap around the ring); the last row is cut to its unmasked taps.
        layer, zero = self.layer, np.int32(0)
        ring, width = layer.receptive_field
        _, left, _ = layer.padding
        (site_row, site_col), (row, col) = site_rc, out_rc
        slot = shift_mod(site_row, 0, ring)
        cache = lax.dynamic_update_slice(
            cache, inputs[None, None], (slot, site_col + np.int32(left), zero)
        )
        kh, (dh, dw), n_last = layer.kernel_size[0], layer.kernel_dilation, layer.n_last
        rows = [
            lax.dynamic_slice(
                cache,
                (shift_mod(row, -(kh - 1 - p) * dh, ring), col, zero),
                (1, width if p < kh - 1 else (n_last - 1) * dw + 1, layer.in_features),
            )[0, ::dw]
            for p in range(kh)
            if p < kh - 1 or n_last > 0
        ]
        return layer.contract(jnp.concatenate(rows)), cache

    def _step_partial_sums(self, inputs, site_rc, out_rc, cache) -> tuple[Array, Array]:
        # The input of site s = (rs, cs) enters output (rs + a, cs + e) through the unmasked
        # tap (p, q), a = (kh - 1 - p) dh, e = (kw // 2 - q) dw. Ring row (rs + a) mod R and
        # padded column cs + e + right hold that output, so the contributions of one input
        # fill an (R, right + left + 1) block starting at column cs: the kernel is laid out by
        # (a, e), rolled to ring rows once per step, and one product plus one in-place add of
        # that block does the step. Columns outside the lattice land in the padding, which
        # is never read.
        layer, zero = self.layer, np.int32(0)
        ring, _ = layer.receptive_field
        _, left, right = layer.padding
        (kh, kw), (dh, dw) = layer.kernel_size, layer.kernel_dilation
        f_in, f_out = layer.in_features, layer.out_features
        (site_row, site_col), (row, col) = site_rc, out_rc
        block = left + right + 1
        tap_at = {
            ((kh - 1 - p) * dh, (kw // 2 - q) * dw + right): (p, q)
            for p, q in layer.unmasked_taps
        }
        zeros = jnp.zeros((f_in, f_out), layer.kernel.dtype)

        def tap(a, e):
            return layer.kernel[tap_at[a, e]] if (a, e) in tap_at else zeros

        by_offset = [jnp.stack([tap(a, e) for e in range(block)]) for a in range(ring)]
        by_row = roll_blocks(by_offset, shift_mod(site_row, 0, ring))
        weights = by_row.transpose(2, 0, 1, 3).reshape(f_in, -1)
        contribution = (inputs @ weights).reshape(ring, block, f_out)
        start = (zero, site_col, zero)
        window = lax.dynamic_slice(cache, start, (ring, block, f_out))
        sums = lax.dynamic_update_slice(cache, window + contribution, start)
        at = (shift_mod(row, 0, ring), col + np.int32(right), zero)
        out = lax.dynamic_slice(sums, at, (1, 1, f_out)).reshape(-1)
        if layer.bias is not None:
            out = out + layer.bias
        # output `index` is finished: empty its slot for the output R rows below
        sums = lax.dynamic_update_slice(sums, jnp.zeros((1, 1, f_out), sums.dtype), at)
        return out, sums
