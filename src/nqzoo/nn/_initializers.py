"""Parameter initialisers with NetKet's (and JAX's) conventions.

Each returns a function `init(key, shape, dtype) -> array`. Real dtypes draw real numbers;
complex dtypes follow JAX's complex conventions (for `normal`, real and imaginary parts each
have variance `stddev**2 / 2`; `lecun_normal` truncates the modulus). Dense kernels are
`(fan_in, fan_out)`, convolution kernels `(*spatial, fan_in, fan_out)`.
"""

import jax
import jax.numpy as jnp

from .._custom_types import Initializer


def normal(stddev: float = 1e-2) -> Initializer:
    """Normal with standard deviation `stddev` (NetKet's RBM default is 0.01)."""
    return jax.nn.initializers.normal(stddev)


def lecun_normal() -> Initializer:
    """Truncated normal (at ±2σ) with variance `1/fan_in`; the modulus is truncated for complex.

    NetKet's default for MLP, ARNN and DeepSet kernels.
    """
    return jax.nn.initializers.lecun_normal()


def zeros(key, shape, dtype=jnp.float64):
    """All zeros."""
    del key
    return jnp.zeros(shape, dtype)


def ones(key, shape, dtype=jnp.float64):
    """All ones."""
    del key
    return jnp.ones(shape, dtype)
