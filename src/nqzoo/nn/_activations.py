import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Inexact


_LOG2 = math.log(2.0)


# log cosh is computed with real arithmetic only, also for complex input. With z = a + ib,
# s = sign(a) (+1 for +0.0, as `signbit`), r = exp(-2|a|) in (0, 1], T = tanh a, t = tan b and
# k the integer with b - k*pi in [-pi/2, pi/2]:
#
#   Re log cosh z = |a| - log 2 + log((1 - r)^2 + 4 r / (1 + t^2)) / 2
#   Im log cosh z = s k pi + atan(T t)
#
# This is the stable form y + log1p(exp(-2y)) - log 2 (y = s z) evaluated with principal
# logarithms, i.e. NetKet's branch: Im = s (b - arg(1 + r e^{2ib})), and for |phi| < pi,
# arg(1 + r e^{i phi}) = phi/2 - atan((1-r)/(1+r) tan(phi/2)). One tan and one atan replace
# the complex exp and log1p (on CPU, trigonometric functions dominate the cost). The
# derivative is tanh z = (T (1 + t^2) + i t (1 - T^2)) / (1 + T^2 t^2), rebuilt from the same
# quantities by the JVP rules below.


@jax.custom_jvp
def _log_cosh_real(x):
    y = jnp.abs(x)
    return y + jnp.log1p(jnp.exp(-2 * y)) - _LOG2


@_log_cosh_real.defjvp
def _log_cosh_real_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    y = jnp.abs(x)
    r = jnp.exp(-2 * y)
    out = y + jnp.log1p(r) - _LOG2
    tanh = jnp.where(jnp.signbit(x), -1, 1) * (1 - r) / (1 + r)
    return out, tanh * dx


def _log_cosh_reim_impl(a, b):
    abs_a = jnp.abs(a)
    r = jnp.exp(-2 * abs_a)
    one_minus_r = -jnp.expm1(-2 * abs_a)
    T = jnp.tanh(a)
    t = jnp.tan(b)
    t2 = t * t
    # |1 + exp(-2y)|^2 = (1 - r)^2 + 4 r cos^2 b: a sum of non-negative terms, accurate also
    # next to the zeros of cosh (where 1 + r^2 + 2 r cos 2b would cancel).
    re = abs_a - _LOG2 + 0.5 * jnp.log(one_minus_r * one_minus_r + 4 * r / (1 + t2))
    # k = round(b / pi), made consistent with the sign of tan b near the boundaries b - k pi
    # = +-pi/2 (where the rounding of b / pi and the reduction inside tan may disagree).
    k = jnp.round(b / math.pi)
    rest = b - k * math.pi
    far = jnp.abs(rest) > math.pi / 4
    k = k + jnp.where(far & (rest > 0) & (t < 0), 1, 0)
    k = k - jnp.where(far & (rest < 0) & (t > 0), 1, 0)
    s = jnp.where(jnp.signbit(a), -1.0, 1.0).astype(a.dtype)
    im = s * k * math.pi + jnp.arctan(T * t)
    return re, im, r, T, t, t2


@jax.custom_jvp
def _log_cosh_reim(a, b):
    return _log_cosh_reim_impl(a, b)[:2]


@_log_cosh_reim.defjvp
def _log_cosh_reim_jvp(primals, tangents):
    (a, b), (da, db) = primals, tangents
    re, im, r, T, t, t2 = _log_cosh_reim_impl(a, b)
    denom = 1 + T * T * t2
    sech2 = 4 * r / ((1 + r) * (1 + r))
    t_re = T * (1 + t2) / denom
    t_im = t * sech2 / denom
    return (re, im), (t_re * da - t_im * db, t_im * da + t_re * db)


def log_cosh_parts(
    a: Float[Array, "*shape"], b: Float[Array, "*shape"]
) -> tuple[Float[Array, "*shape"], Float[Array, "*shape"]]:
    r"""Real and imaginary parts of $\log\cosh(a + ib)$ from real $a$, $b$.

    The same numbers (and branch) as [`nqzoo.nn.log_cosh`][] on `a + 1j * b`, without forming
    complex intermediates. Models use it to keep complex hidden pre-activations split.
    """
    return _log_cosh_reim(a, b)


def log_cosh(x: Inexact[ArrayLike, "*shape"]) -> Inexact[Array, "*shape"]:
    r"""Numerically stable $\log\cosh x$, for real and complex $x$.

    With $s = \pm 1$ the sign of $\operatorname{Re} x$ (+1 for +0) and $y = s x$,

    $$\log\cosh x = y + \operatorname{log1p}(e^{-2y}) - \log 2 .$$

    This never overflows (`log_cosh(1e4)` is finite) and, for complex input, picks the same
    branch of the logarithm as NetKet's `nk.nn.activation.log_cosh` (which can differ from
    `log(cosh(z))` by $2\pi i k$). For complex $x = a + ib$ it is evaluated with real
    arithmetic only, as $\operatorname{Im} = s k\pi + \arctan(\tanh a \tan b)$ with
    $k$ the integer nearest $b/\pi$ (the same branch, about three times faster than complex
    `exp` and `log1p` on CPU). The derivative is $\tanh x$ (holomorphic for complex $x$).

    **Arguments:**

    - `x`: real or complex array.

    **Returns:** an array of the same shape and dtype.
    """
    x = jnp.asarray(x)
    if jnp.iscomplexobj(x):
        re, im = _log_cosh_reim(x.real, x.imag)
        return jax.lax.complex(re, im)
    return _log_cosh_real(x)


def reim_selu(x: Inexact[ArrayLike, "*shape"]) -> Inexact[Array, "*shape"]:
    r"""SELU for real input; for complex input SELU applied to real and imaginary parts.

    Complex: $(\mathrm{selu}(\sqrt2\,\operatorname{Re} x) +
    i\,\mathrm{selu}(\sqrt2\,\operatorname{Im} x))/\sqrt2$, as NetKet's `reim_selu`.

    **Arguments:**

    - `x`: real or complex array.

    **Returns:** an array of the same shape and dtype.
    """
    x = jnp.asarray(x)
    if jnp.iscomplexobj(x):
        r2 = math.sqrt(2.0)
        return jax.lax.complex(jax.nn.selu(r2 * x.real), jax.nn.selu(r2 * x.imag)) / r2
    return jax.nn.selu(x)


def gelu(x: Inexact[ArrayLike, "*shape"]) -> Inexact[Array, "*shape"]:
    r"""GELU in its tanh form, NetKet's default (`jax.nn.gelu(x, approximate=True)`).

    $\mathrm{gelu}(x) = \frac{x}{2}\big(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715\,x^3))\big)$.

    **Arguments:**

    - `x`: real or complex array.

    **Returns:** an array of the same shape and dtype.
    """
    return jax.nn.gelu(x, approximate=True)
