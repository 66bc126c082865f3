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


# XLA's CPU `tan`, `sin`, `cos` and `atan` run at scalar speed and slow down everything fused
# with them, so the complex path evaluates them with polynomials that XLA vectorises:
# Cody-Waite reduction b = j pi/2 + r (|r| <= pi/4, exact for |b| < 2^19 * pi/2), Taylor series
# of sin r and cos r, and atan by the reductions u -> 1/u and u -> (u sqrt3 - 1)/(u + sqrt3)
# followed by its Taylor series on |u| <= tan(pi/12). All truncation errors are below 1e-17.
_PIO2_1 = 1.57079632673412561417e00  # pi/2 split into three pieces of 33 significant bits
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624871116645580e-21
_REDUCTION_LIMIT = 2.0**19 * math.pi / 2
_SIN_COEFFS = [(-1) ** n / math.factorial(2 * n + 1) for n in range(11)]
_COS_COEFFS = [(-1) ** n / math.factorial(2 * n) for n in range(12)]
_ATAN_COEFFS = [(-1) ** n / (2 * n + 1) for n in range(16)]
_SQRT3 = math.sqrt(3.0)
_TAN_PI_12 = 2 - _SQRT3


def _horner(coeffs, x2):
    acc = coeffs[-1]
    for c in coeffs[-2::-1]:
        acc = acc * x2 + c
    return acc


def _reduce_tan(b):
    """`(j, sin r, cos r)` with `b = j pi/2 + r`, `|r| <= pi/4`."""
    j = jnp.round(b * (2 / math.pi))
    r = ((b - j * _PIO2_1) - j * _PIO2_2) - j * _PIO2_3
    r2 = r * r
    return j, r * _horner(_SIN_COEFFS, r2), _horner(_COS_COEFFS, r2)


def _atan(u):
    v = jnp.abs(u)
    inverted = v > 1
    w = jnp.where(inverted, 1 / v, v)
    shifted = w > _TAN_PI_12
    w = jnp.where(shifted, (w * _SQRT3 - 1) / (w + _SQRT3), w)
    out = w * _horner(_ATAN_COEFFS, w * w) + jnp.where(shifted, math.pi / 6, 0.0)
    out = jnp.where(inverted, math.pi / 2 - out, out)
    return jnp.where(jnp.signbit(u), -out, out)


def _log_cosh_reim_impl(a, b):
    abs_a = jnp.abs(a)
    r = jnp.exp(-2 * abs_a)
    one_minus_r = -jnp.expm1(-2 * abs_a)
    T = jnp.tanh(a)
    # b = j pi/2 + rho; tan b and cos^2 b from sin rho, cos rho (the odd quadrants swap them);
    # k = the integer with b - k pi in [-pi/2, pi/2], consistent with the sign of tan b.
    j, sin_rho, cos_rho = _reduce_tan(b)
    odd = jnp.abs(j - 2 * jnp.round(j / 2)) > 0.5
    t = jnp.where(odd, -cos_rho / sin_rho, sin_rho / cos_rho)
    cos2 = jnp.where(odd, sin_rho * sin_rho, cos_rho * cos_rho)
    k = jnp.where(odd, jnp.where(jnp.signbit(sin_rho), j - 1, j + 1), j) / 2
    # |1 + exp(-2y)|^2 = (1 - r)^2 + 4 r cos^2 b: a sum of non-negative terms, accurate also
    # next to the zeros of cosh (where 1 + r^2 + 2 r cos 2b would cancel).
    re = abs_a - _LOG2 + 0.5 * jnp.log(one_minus_r * one_minus_r + 4 * r * cos2)
    s = jnp.where(jnp.signbit(a), -1.0, 1.0).astype(a.dtype)
    im = s * k * math.pi + _atan(T * t)
    return re, im, r, T, t, cos2


def _log_cosh_reim_large(a, b):
    """Same as `_log_cosh_reim_impl` with XLA's `tan`/`atan` (any |b|, slower on CPU)."""
    abs_a = jnp.abs(a)
    r = jnp.exp(-2 * abs_a)
    one_minus_r = -jnp.expm1(-2 * abs_a)
    T = jnp.tanh(a)
    t = jnp.tan(b)
    cos2 = 1 / (1 + t * t)
    re = abs_a - _LOG2 + 0.5 * jnp.log(one_minus_r * one_minus_r + 4 * r * cos2)
    k = jnp.round(b / math.pi)
    rest = b - k * math.pi
    far = jnp.abs(rest) > math.pi / 4
    k = k + jnp.where(far & (rest > 0) & (t < 0), 1, 0)
    k = k - jnp.where(far & (rest < 0) & (t > 0), 1, 0)
    s = jnp.where(jnp.signbit(a), -1.0, 1.0).astype(a.dtype)
    im = s * k * math.pi + jnp.arctan(T * t)
    return re, im, r, T, t, cos2


def _log_cosh_reim_all(a, b):
    return jax.lax.cond(
        jnp.any(jnp.abs(b) > _REDUCTION_LIMIT),
        _log_cosh_reim_large,
        _log_cosh_reim_impl,
        a,
        b,
    )


@jax.custom_jvp
def _log_cosh_reim(a, b):
    return _log_cosh_reim_all(a, b)[:2]


@_log_cosh_reim.defjvp
def _log_cosh_reim_jvp(primals, tangents):
    (a, b), (da, db) = primals, tangents
    re, im, r, T, t, cos2 = _log_cosh_reim_all(a, b)
    # (1 + T^2 t^2) cos^2 b, so that t = +-inf (b on a pole of tan) stays finite
    denom = cos2 + T * T * (1 - cos2)
    sech2 = 4 * r / ((1 + r) * (1 + r))
    t_re = T / denom
    t_im = t * cos2 * sech2 / denom
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
