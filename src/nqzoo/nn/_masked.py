"""Masked (causal) layers of autoregressive networks, slow path: a whole configuration at once.

Each layer acts on ONE configuration: `(N, F_in)` for the 1D layers and
`(rows, cols, F_in)` for [`nqzoo.nn.MaskedConv2D`][]; models `vmap` over batch axes. Output
site `j` depends only on input sites `< j` (`exclusive=True`, the first layer of a network) or
`<= j` (`exclusive=False`), in raster (row-major) order. The numerics, parameter shapes and the
mask-corrected initialisation are NetKet's (`netket.nn.MaskedDense1D`, `MaskedConv1D`,
`MaskedConv2D`), so parameters copy over unchanged.

The math of every layer lives in an abstract base class shared with its fast twin in
`_fast_masked.py`: the slow and fast layers have the same fields and the same formulas; only
the cache handling differs.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Int, PRNGKeyArray

from .._checks import check_fields
from .._custom_types import Initializer
from . import initializers


def _positive_int(value: object, argname: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{argname} must be a positive integer, got {argname}={value!r}.")
    return int(value)


def _positive_pair(value: object, argname: str) -> tuple[int, int]:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(
            f"{argname} must be a pair of positive integers (height, width), got "
            f"{argname}={value!r}."
        )
    a, b = value
    bad = [
        v for v in (a, b) if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1
    ]
    if bad:
        raise ValueError(
            f"{argname} must be a pair of positive integers (height, width), got "
            f"{argname}={tuple(value)!r}."
        )
    return int(a), int(b)


def _masked_init(
    kernel_init: Initializer, mask: np.ndarray, key: PRNGKeyArray, shape: tuple, dtype
) -> Array:
    """NetKet's mask-corrected initialiser: `sqrt(mask.size / mask.sum()) * mask * init(...)`.

    `mask` broadcasts against `shape`; the correction restores the variance of the entries
    that survive the mask.
    """
    full = np.broadcast_to(mask, shape)
    corr = math.sqrt(full.size / full.sum()) if full.sum() > 0 else 0.0
    return (corr * full) * kernel_init(key, shape, dtype)


def _init_bias(bias_init: Initializer, use_bias: bool, key, shape, dtype) -> Array | None:
    return bias_init(key, shape, dtype) if use_bias else None


def _promote(x: ArrayLike, kernel: Array) -> Array:
    x = jnp.asarray(x)
    return x.astype(jnp.result_type(x.dtype, kernel.dtype))


# --------------------------------------------------------------------------------------------
# Dense
# --------------------------------------------------------------------------------------------


def dense_mask(n_sites: int, exclusive: bool, i, j):
    """Whether input site `i` feeds output site `j`: `i <= j - exclusive` (NetKet's triu)."""
    return i <= j - int(exclusive)


class AbstractMaskedDense1D(eqx.Module):
    """Shared fields and math of [`nqzoo.nn.MaskedDense1D`][] and its fast twin."""

    kernel: eqx.AbstractVar[Array]
    bias: eqx.AbstractVar[Array | None]
    n_sites: eqx.AbstractVar[int]
    in_features: eqx.AbstractVar[int]
    out_features: eqx.AbstractVar[int]
    exclusive: eqx.AbstractVar[bool]

    def kernel4(
        self,
    ) -> Inexact[Array, "{self.n_sites} {self.in_features} {self.n_sites} {self.out_features}"]:
        """The kernel as `(N, F_in, N, F_out)` (a free reshape of NetKet's 2D layout)."""
        return self.kernel.reshape(self.n_sites, self.in_features, self.n_sites, self.out_features)

    def site_output(
        self,
        inputs: Inexact[Array, "{self.n_sites} {self.in_features}"],
        index: Int[ArrayLike, ""],
    ) -> Inexact[Array, " {self.out_features}"]:
        """Output at site `index` from the inputs of every site (masked sites are ignored)."""
        column = jax.lax.dynamic_index_in_dim(self.kernel4(), index, axis=2, keepdims=False)
        allowed = dense_mask(self.n_sites, self.exclusive, jnp.arange(self.n_sites), index)
        column = jnp.where(allowed[:, None, None], column, 0)
        out = _promote(inputs, column).reshape(-1) @ column.reshape(-1, self.out_features)
        if self.bias is not None:
            out = out + jax.lax.dynamic_index_in_dim(self.bias, index, axis=0, keepdims=False)
        return out

    def __call__(
        self, x: Inexact[ArrayLike, "{self.n_sites} {self.in_features}"]
    ) -> Inexact[Array, "{self.n_sites} {self.out_features}"]:
        """**Arguments:**

        - `x`: the inputs of one configuration, `(N, F_in)`.

        **Returns:** `(N, F_out)`, output `j` depending on input sites `i <= j - exclusive`.
        """
        check_fields(self)
        n = self.n_sites
        i = np.arange(n)
        mask = np.kron(
            dense_mask(n, self.exclusive, i[:, None], i[None, :]),
            np.ones((self.in_features, self.out_features)),
        )
        x = _promote(x, self.kernel)
        y = (x.reshape(-1) @ jnp.where(mask, self.kernel, 0)).reshape(n, self.out_features)
        if self.bias is not None:
            y = y + self.bias
        return y


def _init_dense(
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
):
    self.n_sites = _positive_int(n_sites, "n_sites")
    self.in_features = _positive_int(in_features, "in_features")
    self.out_features = _positive_int(out_features, "out_features")
    self.exclusive = bool(exclusive)
    i = np.arange(self.n_sites)
    mask = np.kron(
        dense_mask(self.n_sites, self.exclusive, i[:, None], i[None, :]),
        np.ones((self.in_features, self.out_features)),
    )
    kkey, bkey = jax.random.split(key)
    shape = (self.n_sites * self.in_features, self.n_sites * self.out_features)
    self.kernel = _masked_init(kernel_init, mask, kkey, shape, param_dtype)
    self.bias = _init_bias(
        bias_init, use_bias, bkey, (self.n_sites, self.out_features), param_dtype
    )


class MaskedDense1D(AbstractMaskedDense1D):
    r"""Dense layer over a chain with an autoregressive mask.

    $$y_{jo} = \sum_{i \le j - e} \sum_a x_{ia} K_{(i F_\text{in} + a),(j F_\text{out} + o)}
    + b_{jo},$$

    $e$ = `exclusive`. The kernel is stored `(N·F_in, N·F_out)` and the bias per site,
    `(N, F_out)`, as in NetKet; masked entries are multiplied by zero in the forward pass.
    """

    kernel: Inexact[Array, "{self.n_sites*self.in_features} {self.n_sites*self.out_features}"]
    bias: Inexact[Array, "{self.n_sites} {self.out_features}"] | None
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
        """**Arguments:**

        - `n_sites`: number of sites `N`.
        - `in_features`, `out_features`: feature widths per site.
        - `exclusive`: if true, site `j` sees only sites `< j` (first layer of a network).
        - `use_bias`: whether to add the per-site bias.
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`: initialiser, wrapped with NetKet's mask correction
          `sqrt(mask.size / mask.sum()) * mask * kernel_init(...)`.
        - `bias_init`: initialiser of the bias (zeros by default).
        - `key`: a JAX PRNG key.
        """
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

    def __check_init__(self):
        check_fields(self)


# --------------------------------------------------------------------------------------------
# Conv1D
# --------------------------------------------------------------------------------------------


class AbstractMaskedConv1D(eqx.Module):
    """Shared fields and math of [`nqzoo.nn.MaskedConv1D`][] and its fast twin."""

    kernel: eqx.AbstractVar[Array]
    bias: eqx.AbstractVar[Array | None]
    in_features: eqx.AbstractVar[int]
    out_features: eqx.AbstractVar[int]
    kernel_size: eqx.AbstractVar[int]
    kernel_dilation: eqx.AbstractVar[int]
    exclusive: eqx.AbstractVar[bool]

    @property
    def n_taps(self) -> int:
        """Number of kernel taps `K - exclusive`."""
        return self.kernel_size - int(self.exclusive)

    @property
    def offset(self) -> int:
        """Distance from the output site to the nearest input site (`d` if exclusive, else 0)."""
        return self.kernel_dilation if self.exclusive else 0

    @property
    def span(self) -> int:
        """Sites from the farthest to the nearest tap, inclusive: `d (K' - 1) + 1`."""
        return self.kernel_dilation * (self.n_taps - 1) + 1

    def contract(
        self, taps: Inexact[Array, "*sites {self.n_taps} {self.in_features}"]
    ) -> Inexact[Array, "*sites {self.out_features}"]:
        """`y = sum_m taps[m] @ W[m] + b`; `taps[m]` is the input at site `j - o - d (K'-1-m)`."""
        taps = _promote(taps, self.kernel)
        # one matrix product over (tap, feature): (..., K' F_in) @ (K' F_in, F_out)
        out = taps.reshape(*taps.shape[:-2], -1) @ self.kernel.reshape(-1, self.out_features)
        if self.bias is not None:
            out = out + self.bias
        return out

    def __call__(
        self, x: Inexact[ArrayLike, "n_sites {self.in_features}"]
    ) -> Inexact[Array, "n_sites {self.out_features}"]:
        """**Arguments:**

        - `x`: the inputs of one configuration, `(N, F_in)`.

        **Returns:** `(N, F_out)`.
        """
        check_fields(self)
        x = jnp.asarray(x)
        n = x.shape[0]
        d = self.kernel_dilation
        left = self.offset + d * (self.n_taps - 1)
        xp = jnp.pad(x, ((max(left, 0), 0), (0, 0)))
        if self.n_taps == 0:
            taps = jnp.zeros((n, 0, self.in_features), x.dtype)
        else:
            taps = jnp.stack([xp[d * m : d * m + n] for m in range(self.n_taps)], axis=1)
        return self.contract(taps)


def _init_conv1d(
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
):
    self.in_features = _positive_int(in_features, "in_features")
    self.out_features = _positive_int(out_features, "out_features")
    self.kernel_size = _positive_int(kernel_size, "kernel_size")
    self.kernel_dilation = _positive_int(kernel_dilation, "kernel_dilation")
    self.exclusive = bool(exclusive)
    kkey, bkey = jax.random.split(key)
    shape = (
        self.kernel_size - int(self.exclusive),
        self.in_features,
        self.out_features,
    )
    self.kernel = kernel_init(kkey, shape, param_dtype)
    self.bias = _init_bias(bias_init, use_bias, bkey, (self.out_features,), param_dtype)


class MaskedConv1D(AbstractMaskedConv1D):
    r"""Causal 1D convolution (no mask: causality comes from padding and shifting).

    $$y_{jo} = \sum_{m=0}^{K'-1} \sum_a x_{s_m, a} W_{mao} + b_o, \qquad
    s_m = j - o_e - d\,(K' - 1 - m),$$

    with $K' = K - e$ taps, $o_e = d$ if `exclusive` ($e = 1$) else 0, and $x_s = 0$ for
    $s < 0$. An exclusive layer therefore sees sites $j-d, \dots, j-(K-1)d$ and a
    non-exclusive one $j, j-d, \dots, j-(K-1)d$: with dilation $d > 1$ only offsets that are
    multiples of $d$ (NetKet's behaviour). Kernel `(K', F_in, F_out)`, bias `(F_out,)`.
    """

    kernel: Inexact[Array, "{self.n_taps} {self.in_features} {self.out_features}"]
    bias: Inexact[Array, " {self.out_features}"] | None
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
        """**Arguments:**

        - `in_features`, `out_features`: feature widths per site.
        - `kernel_size`: `K`, a positive integer (the kernel has `K - exclusive` taps).
        - `kernel_dilation`: `d`, a positive integer.
        - `exclusive`: if true, site `j` sees only sites `< j`.
        - `use_bias`: whether to add the bias.
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`, `bias_init`: initialisers (lecun normal and zeros by default).
        - `key`: a JAX PRNG key.
        """
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

    def __check_init__(self):
        check_fields(self)


# --------------------------------------------------------------------------------------------
# Conv2D
# --------------------------------------------------------------------------------------------


def conv2d_mask(kernel_size: tuple[int, int], exclusive: bool) -> np.ndarray:
    """NetKet's `(kh, kw)` mask: in the last kernel row, zero from `kw // 2 + (not exclusive)`."""
    kh, kw = kernel_size
    mask = np.ones((kh, kw))
    mask[kh - 1, kw // 2 + int(not exclusive) :] = 0
    return mask


class AbstractMaskedConv2D(eqx.Module):
    """Shared fields and math of [`nqzoo.nn.MaskedConv2D`][] and its fast twin."""

    kernel: eqx.AbstractVar[Array]
    bias: eqx.AbstractVar[Array | None]
    in_features: eqx.AbstractVar[int]
    out_features: eqx.AbstractVar[int]
    kernel_size: eqx.AbstractVar[tuple[int, int]]
    kernel_dilation: eqx.AbstractVar[tuple[int, int]]
    exclusive: eqx.AbstractVar[bool]

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
        taps = _promote(taps, kernel)
        # one matrix product over (tap, feature): (..., taps F_in) @ (taps F_in, F_out)
        out = taps.reshape(*taps.shape[:-2], -1) @ kernel
        if self.bias is not None:
            out = out + self.bias
        return out

    def windows(
        self, xp: Inexact[Array, "rows cols {self.in_features}"], rows: int, cols: int
    ) -> Inexact[Array, "{rows} {cols} {self.n_unmasked} {self.in_features}"]:
        """The unmasked taps of the dilated window of every output site of a padded lattice
        `xp`, in raster order."""
        dh, dw = self.kernel_dilation
        return jnp.stack(
            [
                xp[p * dh : p * dh + rows, q * dw : q * dw + cols]
                for p, q in self.unmasked_taps
            ],
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


def _init_conv2d(
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
):
    self.in_features = _positive_int(in_features, "in_features")
    self.out_features = _positive_int(out_features, "out_features")
    self.kernel_size = _positive_pair(kernel_size, "kernel_size")
    self.kernel_dilation = _positive_pair(kernel_dilation, "kernel_dilation")
    self.exclusive = bool(exclusive)
    kkey, bkey = jax.random.split(key)
    mask = conv2d_mask(self.kernel_size, self.exclusive)[:, :, None, None]
    shape = (*self.kernel_size, self.in_features, self.out_features)
    self.kernel = _masked_init(kernel_init, mask, kkey, shape, param_dtype)
    self.bias = _init_bias(bias_init, use_bias, bkey, (self.out_features,), param_dtype)


class MaskedConv2D(AbstractMaskedConv2D):
    r"""Causal 2D convolution on a lattice in raster (row-major) order.

    $$y_{rco} = \sum_{p,q} M_{pq} \sum_a x_{r - (k_h-1-p) d_h,\; c + (q - \lfloor k_w/2
    \rfloor) d_w,\; a}\, W_{pqao} + b_o,$$

    zero outside the lattice. The mask $M$ keeps every kernel row above the current one
    (full width: to the right is earlier in raster order) and, in the last row, only the
    columns left of the centre (`exclusive`) or up to the centre (otherwise). Kernel
    `(kh, kw, F_in, F_out)`, bias `(F_out,)`, as in NetKet.
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
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_features`, `out_features`: feature widths per site.
        - `kernel_size`: `(kh, kw)`, positive integers.
        - `kernel_dilation`: `(dh, dw)`, positive integers.
        - `exclusive`: if true, a site sees only earlier sites in raster order.
        - `use_bias`: whether to add the bias.
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`: initialiser, wrapped with NetKet's mask correction
          `sqrt(kh kw / mask.sum()) * mask * kernel_init(...)`.
        - `bias_init`: initialiser of the bias (zeros by default).
        - `key`: a JAX PRNG key.
        """
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

    def __check_init__(self):
        check_fields(self)
