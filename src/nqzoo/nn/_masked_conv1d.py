"""The causal 1D convolution and its fast (cached) wrapper."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from .._custom_types import Initializer
from .._misc import inexact_dtype, positive_int
from .._typecheck import check_fields
from . import initializers
from ._misc import AbstractFastLayer, init_bias, roll_blocks, shift_mod, to_param_dtype


class MaskedConv1D(eqx.Module):
    r"""Causal 1D convolution (no mask: causality comes from padding and shifting).

    $$y_{jo} = \sum_{m=0}^{K'-1} \sum_a x_{s_m, a} W_{mao} + b_o, \qquad
    s_m = j - o_e - d\,(K' - 1 - m),$$

    with $K' = K - e$ taps, $o_e = d$ if `exclusive` ($e = 1$) else 0, and $x_s = 0$ for
    $s < 0$. An exclusive layer therefore sees sites $j-d, \dots, j-(K-1)d$ and a
    non-exclusive one $j, j-d, \dots, j-(K-1)d$: with dilation $d > 1$ only offsets that are
    multiples of $d$ (NetKet's behaviour). Kernel `(K', F_in, F_out)`, bias `(F_out,)`, as
    NetKet's `netket.nn.MaskedConv1D`. The layer acts on ONE configuration `(N, F_in)`.
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
        in_features: int | np.integer,
        out_features: int | np.integer,
        kernel_size: int | np.integer,
        kernel_dilation: int | np.integer = 1,
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
        - `kernel_size`: `K`, a positive integer (the kernel has `K - exclusive` taps), at
          least 2 if `exclusive` (a 1-wide exclusive kernel has no tap: it sees no site).
        - `kernel_dilation`: `d`, a positive integer.
        - `exclusive`: if true, site `j` sees only sites `< j`.
        - `use_bias`: whether to add the bias.
        - `param_dtype`: dtype of the parameters, floating or complex (an integer dtype is
          refused).
        - `kernel_init`, `bias_init`: initialisers (lecun normal and zeros by default).
        - `key`: a JAX PRNG key.
        """
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.kernel_size = positive_int(kernel_size, "kernel_size")
        self.kernel_dilation = positive_int(kernel_dilation, "kernel_dilation")
        self.exclusive = bool(exclusive)
        if self.n_taps == 0:
            raise ValueError(
                "kernel_size=1 with exclusive=True leaves the kernel no tap: an exclusive "
                "layer drops the tap of the current site, and a 1-wide kernel has no other, "
                "so the output would not depend on any site. Use kernel_size >= 2 (or "
                "exclusive=False)."
            )
        param_dtype = inexact_dtype(param_dtype)
        kkey, bkey = jax.random.split(key)
        shape = (self.n_taps, self.in_features, self.out_features)
        self.kernel = kernel_init(kkey, shape, param_dtype)
        self.bias = init_bias(bias_init, use_bias, bkey, (self.out_features,), param_dtype)

    def __check_init__(self):
        check_fields(self)

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
        taps = to_param_dtype(taps, self.kernel)
        # one matrix product over (tap, feature): (..., K' F_in) @ (K' F_in, F_out)
        out = taps.reshape(*taps.shape[:-2], -1) @ self.kernel.reshape(-1, self.out_features)
        if self.bias is not None:
            out = out + jnp.broadcast_to(self.bias, out.shape)
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
        n, d = x.shape[0], self.kernel_dilation
        left = self.offset + d * (self.n_taps - 1)
        xp = jnp.pad(x, ((left, 0), (0, 0)))
        taps = jnp.stack([xp[d * m : d * m + n] for m in range(self.n_taps)], axis=1)
        return self.contract(taps)


class FastMaskedConv1D(AbstractFastLayer):
    """[`nqzoo.nn.MaskedConv1D`][] with a ring buffer of the last inputs.

    Holds the wrapped layer as `layer` (its `__call__` is the layer's) and the ring behind
    `cache`, an `eqx.nn.StateIndex`. The ring holds `C = d (K - 1)` sites (exclusive) or
    `d (K - 1) + 1` (otherwise), NetKet's cache size: `(C, F_in)`; or, when the layer narrows
    the features (`F_out < F_in`, see `caches_outputs`), the partial sums of the next `C`
    outputs, `(C, F_out)`. A step costs `O(K F_in F_out)` whatever `N`: the ring is indexed
    modulo its size; nothing is shifted.
    """

    layer: MaskedConv1D
    cache: eqx.nn.StateIndex[Inexact[Array, "{self.ring_size} width"]]

    def __init__(self, layer: MaskedConv1D, cache: eqx.nn.StateIndex | None = None):
        """**Arguments:**

        - `layer`: the [`nqzoo.nn.MaskedConv1D`][] to wrap.
        - `cache`: the state index of an existing cache to use (fast models keep one per
          layer); by default a new one, holding an all-zero ring of the layer's dtype.

        Build with `layer, state = eqx.nn.make_with_state(FastMaskedConv1D)(conv)`.
        """
        self.layer = layer
        if cache is None:
            cache = eqx.nn.StateIndex(self.empty_cache())
        self.cache = cache

    @property
    def cache_shape(self) -> tuple[int, int]:
        """`(ring_size, F_out)` if the ring holds partial sums (`caches_outputs`), else
        `(ring_size, F_in)`."""
        layer = self.layer
        width = layer.out_features if self.caches_outputs else layer.in_features
        return self.ring_size, width

    @property
    def ring_size(self) -> int:
        """Sites kept in the ring: from the farthest tap to the newest input."""
        layer = self.layer
        return max(layer.offset - int(layer.exclusive) + layer.span, 1)

    @property
    def caches_outputs(self) -> bool:
        """Whether the ring holds partial sums of the next outputs rather than past inputs.

        A layer that narrows the features (`F_out < F_in`, e.g. the last layer of a network,
        `F_out = local_size`) keeps the `ring_size` outputs it has started, `(C, F_out)`: a step
        adds the new input's contribution to all of them with one matrix product and reads
        the finished one, instead of copying a `(K, F_in)` window of past inputs out of the
        ring. Same result, a smaller cache and less memory traffic per step.
        """
        return self.layer.out_features < self.layer.in_features

    def step(self, inputs: Array, index: Array, cache: Array) -> tuple[Array, Array]:
        if self.caches_outputs:
            return self._step_partial_sums(inputs, index, cache)
        return self._step_inputs(inputs, index, cache)

    def _step_inputs(self, inputs: Array, index: Array, cache: Array) -> tuple[Array, Array]:
        # Write the new input into its ring slot, read one slice per tap.
        layer, ring, zero = self.layer, self.ring_size, np.int32(0)
        slot = shift_mod(index, -int(layer.exclusive), ring)
        cache = lax.dynamic_update_slice(cache, inputs[None], (slot, zero))
        d, taps = layer.kernel_dilation, layer.n_taps
        rows = [
            lax.dynamic_slice(
                cache,
                (shift_mod(index, -layer.offset - d * (taps - 1 - m), ring), zero),
                (1, layer.in_features),
            )
            for m in range(taps)
        ]
        return layer.contract(jnp.concatenate(rows, 0)), cache

    def _step_partial_sums(self, inputs: Array, index: Array, cache: Array) -> tuple[Array, Array]:
        # The input of site `index - exclusive` enters output `index + p_m` through tap m,
        # p_m = o - exclusive + d (K' - 1 - m) in [0, C). Output j accumulates in ring slot
        # j mod C, so the kernel is laid out by slot once per step (a roll of a tiny array)
        # and one product adds every contribution in place.
        layer, ring = self.layer, self.ring_size
        d, taps = layer.kernel_dilation, layer.n_taps
        f_in, f_out = layer.in_features, layer.out_features
        tap_at = {layer.offset - int(layer.exclusive) + d * (taps - 1 - m): m for m in range(taps)}
        zeros = jnp.zeros((f_in, f_out), layer.kernel.dtype)
        by_offset = [layer.kernel[tap_at[p]] if p in tap_at else zeros for p in range(ring)]
        slot, zero = shift_mod(index, 0, ring), np.int32(0)
        weights = roll_blocks(by_offset, slot).transpose(1, 0, 2).reshape(f_in, -1)
        sums = cache + (inputs @ weights).reshape(ring, f_out)
        out = lax.dynamic_slice(sums, (slot, zero), (1, f_out))[0]
        if layer.bias is not None:
            out = out + layer.bias
        # slot `index` is finished: empty it for output `index + C`
        sums = lax.dynamic_update_slice(sums, jnp.zeros((1, f_out), sums.dtype), (slot, zero))
        return out, sums
