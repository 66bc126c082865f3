"""A dense (affine) layer with NetKet/Flax parameter conventions.

Used as the building block of the DeepSet networks. The kernel is stored `(in, out)` as in
Flax's `nn.Dense`, so parameters copy over without a transpose.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Num, PRNGKeyArray

from .._custom_types import Initializer
from .._misc import inexact_dtype, positive_int
from .._typecheck import check_fields
from . import initializers
from ._misc import to_param_dtype


#: Up to this many input features the layer is evaluated as broadcast multiply-adds instead of
#: a matrix product; XLA then fuses it with the elementwise work around it (no GEMM with a
#: contraction of length 1-4, no materialised input).
_BROADCAST_MAX_IN = 4


class Dense(eqx.Module):
    r"""Affine map $y = x W + b$ over the last axis, $W$ of shape `(in_features, out_features)`.

    Matches Flax's `nn.Dense` (NetKet's `Dense_k` parameters `kernel`, `bias`). The
    computation runs in the parameter dtype: the input is cast to it (a complex input to real
    parameters keeps its imaginary part, in the complex dtype of the parameters' precision).
    """

    kernel: Inexact[Array, "{self.in_features} {self.out_features}"]
    bias: Inexact[Array, "{self.out_features}"] | None  # noqa: F821
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)

    def __init__(
        self,
        in_features: int | np.integer,
        out_features: int | np.integer,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_features`, `out_features`: input and output widths (positive integers).
        - `use_bias`: whether to add the bias `b`.
        - `param_dtype`: dtype of `W` and `b` (floating or complex).
        - `kernel_init`, `bias_init`: initialisers `init(key, shape, dtype)`.
        - `key`: a JAX PRNG key.
        """
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        param_dtype = inexact_dtype(param_dtype)
        wkey, bkey = jax.random.split(key)
        self.kernel = kernel_init(wkey, (self.in_features, self.out_features), param_dtype)
        self.bias = bias_init(bkey, (self.out_features,), param_dtype) if use_bias else None

    def __check_init__(self):
        check_fields(self)

    def __call__(
        self, x: Num[ArrayLike, "*batch {self.in_features}"]
    ) -> Inexact[Array, "*batch {self.out_features}"]:
        """**Arguments:**

        - `x`: input, `(*batch, in_features)`.

        **Returns:** `x W + b`, `(*batch, out_features)`.
        """
        check_fields(self)
        x = to_param_dtype(x, self.kernel)
        kernel = self.kernel.astype(x.dtype)
        if self.in_features <= _BROADCAST_MAX_IN:
            # the kernel's rows with the batch rank of `x` (no implicit rank promotion)
            rows = kernel.reshape((1,) * (x.ndim - 1) + kernel.shape)
            y = x[..., 0, None] * rows[..., 0, :]
            for k in range(1, self.in_features):
                y = y + x[..., k, None] * rows[..., k, :]
        else:
            y = jnp.matmul(x, kernel)
        if self.bias is not None:
            y = y + jnp.broadcast_to(self.bias.astype(x.dtype), y.shape)
        return y
