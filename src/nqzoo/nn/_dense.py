"""A dense (affine) layer with NetKet/Flax parameter conventions.

Used as the building block of the DeepSet networks. The kernel is stored `(in, out)` as in
Flax's `nn.Dense`, so parameters copy over without a transpose.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, Num, PRNGKeyArray

from .._checks import check_fields
from .._custom_types import Initializer
from . import initializers


#: Up to this many input features the layer is evaluated as broadcast multiply-adds instead of
#: a matrix product; XLA then fuses it with the elementwise work around it (no GEMM with a
#: contraction of length 1-4, no materialised input).
_BROADCAST_MAX_IN = 4


def _check_width(value: object, argname: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argname} must be a positive integer, got {argname}={value!r}.")
    return value


class Dense(eqx.Module):
    r"""Affine map $y = x W + b$ over the last axis, $W$ of shape `(in_features, out_features)`.

    Matches Flax's `nn.Dense` (NetKet's `Dense_k` parameters `kernel`, `bias`); the
    computation dtype is the promotion of the input and parameter dtypes.
    """

    kernel: Inexact[Array, "{self.in_features} {self.out_features}"]
    bias: Inexact[Array, "{self.out_features}"] | None  # noqa: F821
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        out_features: int,
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
        - `param_dtype`: dtype of `W` and `b`.
        - `kernel_init`, `bias_init`: initialisers `init(key, shape, dtype)`.
        - `key`: a JAX PRNG key.
        """
        self.in_features = _check_width(in_features, "in_features")
        self.out_features = _check_width(out_features, "out_features")
        wkey, bkey = jax.random.split(key)
        self.kernel = kernel_init(wkey, (in_features, out_features), param_dtype)
        self.bias = bias_init(bkey, (out_features,), param_dtype) if use_bias else None

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
        dtype = jnp.result_type(x, self.kernel)
        x = jnp.asarray(x, dtype)
        kernel = self.kernel.astype(dtype)
        if self.in_features <= _BROADCAST_MAX_IN:
            y = x[..., 0, None] * kernel[0]
            for k in range(1, self.in_features):
                y = y + x[..., k, None] * kernel[k]
        else:
            y = jnp.matmul(x, kernel)
        if self.bias is not None:
            y = y + self.bias.astype(dtype)
        return y
