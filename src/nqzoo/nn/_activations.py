import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact


_LOG2 = math.log(2.0)


def log_cosh(x: Inexact[ArrayLike, "*shape"]) -> Inexact[Array, "*shape"]:
    r"""Numerically stable $\log\cosh x$, for real and complex $x$.

    With $s = \pm 1$ the sign of $\operatorname{Re} x$ (+1 for +0) and $y = s x$,
    $\log\cosh x = y + \operatorname{log1p}(e^{-2y}) - \log 2$. This never overflows
    (`log_cosh(1e4)` is finite) and, for complex input, picks the same branch of the
    logarithm as NetKet's `nk.nn.log_cosh` (which can differ from `log(cosh(z))` by 2πi k).
    """
    x = jnp.asarray(x)
    y = jnp.where(jnp.signbit(x.real), -x, x)
    return y + jnp.log1p(jnp.exp(-2 * y)) - _LOG2


def reim_selu(x: Inexact[ArrayLike, "*shape"]) -> Inexact[Array, "*shape"]:
    r"""SELU for real input; for complex input SELU applied to real and imaginary parts.

    Complex: $(\mathrm{selu}(\sqrt2\,\operatorname{Re} x) +
    i\,\mathrm{selu}(\sqrt2\,\operatorname{Im} x))/\sqrt2$, as NetKet's `reim_selu`.
    """
    x = jnp.asarray(x)
    if jnp.iscomplexobj(x):
        r2 = math.sqrt(2.0)
        return jax.lax.complex(jax.nn.selu(r2 * x.real), jax.nn.selu(r2 * x.imag)) / r2
    return jax.nn.selu(x)


def gelu(x: Inexact[ArrayLike, "*shape"]) -> Inexact[Array, "*shape"]:
    """GELU in its tanh form (`jax.nn.gelu(x, approximate=True)`), NetKet's default."""
    return jax.nn.gelu(x, approximate=True)
