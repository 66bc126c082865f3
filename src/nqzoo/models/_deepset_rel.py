"""NetKet's DeepSetRelDistance: DeepSets over the periodic pair distances of particles."""

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray, Real

from .._custom_types import Activation, Initializer
from .._misc import (
    check_hilbert,
    chunked_map,
    inexact_dtype,
    int_at_least,
    positive_int,
    positive_ints,
    positive_number,
    RealNumber,
)
from .._typecheck import check_fields
from ..hilbert import Particles
from ..nn import gelu, initializers
from ._deepset_mlp import DeepSetMLP, Pooling, Widths


#: Default number of pair rows (configurations x pairs) evaluated per chunk by
#: `DeepSetRelDistance` when `chunk_size="auto"`: with 16 features in float64 one
#: intermediate of this many rows is 1 MiB, about a core's L2 cache.
_AUTO_CHUNK_ROWS = 8192


def _layer_widths(
    features: Widths, n_layers: int, argname: str, layers_name: str, last: tuple[int, ...] = ()
) -> tuple[int, ...]:
    """One width per layer: a sequence lists them, an int `f` gives `(f, ..., f, *last)`."""
    widths = positive_ints(features, argname)
    if not isinstance(features, Sequence):
        return widths * (n_layers - len(last)) + last
    if len(widths) != n_layers:
        raise ValueError(
            f"{argname}={features!r} has {len(widths)} entries but {layers_name}={n_layers}; "
            "give one width per layer (or a single int)."
        )
    return widths


def _rel_widths(
    layers_phi: object, layers_rho: object, features_phi: Widths, features_rho: Widths
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The checked widths of phi and of rho (NetKet's convention: rho's end in 1)."""
    layers_phi = int_at_least(layers_phi, "layers_phi", 0)
    layers_rho = int_at_least(layers_rho, "layers_rho", 1)
    phi = _layer_widths(features_phi, layers_phi, "features_phi", "layers_phi")
    rho = _layer_widths(features_rho, layers_rho, "features_rho", "layers_rho", last=(1,))
    if rho[-1] != 1:
        raise ValueError(
            f"The last entry of features_rho must be 1 (NetKet's convention), got "
            f"features_rho={features_rho!r}."
        )
    return phi, rho


def _periodic_box(hilbert: object) -> Particles:
    hilbert = check_hilbert(
        hilbert,
        Particles,
        "DeepSetRelDistance needs an nqzoo.hilbert.Particles box, periodic in every direction",
    )
    if not all(hilbert.pbc):
        raise ValueError(
            "DeepSetRelDistance needs a box periodic in every direction; got "
            f"hilbert.pbc={hilbert.pbc!r} (use Particles(..., pbc=True))."
        )
    return hilbert


def _chunk_size(chunk_size: object) -> int | str | None:
    if chunk_size is None or chunk_size == "auto":
        return chunk_size
    try:
        return positive_int(chunk_size, "chunk_size")
    except ValueError:
        raise ValueError(
            f"chunk_size must be a positive integer, 'auto' or None, got chunk_size={chunk_size!r}."
        ) from None


class DeepSetRelDistance(eqx.Module):
    r"""DeepSets over periodic pair distances, with an optional two-body cusp (NetKet's model).

    For `N` particles at $x_i \in \mathbb{R}^d$ in a periodic box of extents $L_k$, every
    pair $i<j$ gets the per-component "sin distance"

    $$d_{ij,k} = \frac{L_k}{2}\sin\Big(\frac{\pi (x_{i,k} - x_{j,k})}{L_k}\Big),\qquad
    r_{ij} = \lVert d_{ij}\rVert_2,\qquad y_{ij,k} = \big(d_{ij,k}/L_k\big)^2,$$

    and

    $$\log\psi(x) = \rho\Big(\sum_{i<j}\phi(y_{ij})\Big)
    \;-\;\frac12\sum_{i<j}\frac{b}{r_{ij}^{\,e}},$$

    the second term present only when `cusp_exponent` $e$ is given. $\phi$ and $\rho$ are a
    [`nqzoo.models.DeepSetMLP`][] on the set of pairs (pooling over pairs, `pooling` = sum by
    default). The model is invariant under permutations of the particles, global translations
    and shifts of any particle by $L_k$ along axis $k$.

    **Exactly NetKet's computation, quirks included** (`nk.models.DeepSetRelDistance`, 3.23):

    - The sin distance uses $L/2$ (not $L/\pi$), so $r_{ij} \approx \frac{\pi}{2}|x_i-x_j|$ for
      close particles, and the features are $y = \sin^2(\pi\Delta x/L)/4$ per component.
    - $\rho$ has `layers_rho + 1` dense layers: the widths `features_rho` (which must end in
      1), then one more 1 → 1 layer. The activation is applied after every width in
      `features_rho`, including the final 1; `output_activation` follows the extra layer.
    - The cusp parameter $b$ (`cusp`, shape `(1,)`, initialised to 1) exists even when
      `cusp_exponent` is `None`; it is then unused.
    - NetKet's docstring writes the cusp factor as $\exp[-\frac12 (b/d_{\sin})^5]$, i.e.
      $b^5/r^5$; what NetKet computes, and this model too, is $-\frac12\sum_{i<j} b/r_{ij}^{e}$
      ($b$ to the first power, the exponent on $r$ only). Its docstring also writes
      $\rho(\sum_i \phi(\cdot))$ over particles, while the pooling runs over pairs $i<j$.

    **Periodic images.** The separations are first reduced to the nearest image,
    $\Delta - L_k \operatorname{round}(\Delta / L_k) \in [-L_k/2, L_k/2]$ (in exact
    arithmetic this only flips the sign of $d_{ij,k}$, so $y$ and $r$ are unchanged), and a
    component within $8\varepsilon L_k$ of 0 ($\varepsilon$ the machine epsilon of the
    computation) is taken as exactly 0: the rounding error of a position shifted by up to 5 box
    lengths. A particle at $x_j = x_i + L$ therefore gives the same value as $x_j = x_i$,
    instead of the $\sin(\pi) \approx 10^{-16}$ of a literal computation (NetKet's), whose
    cusp term is a huge finite number ($\sim -10^{79}$).

    **Coincident particles.** When two particles coincide ($r_{ij} = 0$, including periodic
    images) and a cusp is used, the cusp term diverges. The model returns the limit
    $r_{ij}\to 0^+$ of the formula: $\log\psi = -\infty$ (so $\psi = 0$) for $b > 0$, the
    initial value and the physical, repulsive case; $+\infty$ for $b < 0$; and the finite
    value without that pair's term for $b = 0$ (NetKet gives NaN there). For complex $b$ the
    real and imaginary parts follow the same rule. That infinite value is treated as a
    constant: its gradient with respect to every parameter and to the positions is zero, so a
    coincident configuration never puts NaN or infinities into the gradients of the other
    configurations of a batch (or of a weighted sum that gives it weight zero).

    **Memory.** The pair tensors have `N(N-1)/2` rows per configuration. Batches are evaluated
    in chunks of `chunk_size` configurations (`jax.lax.map` with rematerialisation), so memory
    is bounded by the chunk, not the batch, in the forward pass and in gradients.

    **Dtypes.** The computation runs in the parameter dtype: positions are cast to its real
    dtype (a float32 model computes in float32 even with float64 positions).

    ??? cite "Reference"

        ```bibtex
        @article{pescia2022neural,
          title={Neural-network quantum states for periodic systems in continuous space},
          author={Pescia, Gabriel and Han, Jiequn and Lovato, Alessandro and Lu, Jianfeng and
                  Carleo, Giuseppe},
          journal={Physical Review Research}, volume={4}, number={2}, pages={023138},
          year={2022}
        }
        ```
    """

    cusp: Inexact[Array, "1"]
    deepset: DeepSetMLP
    hilbert: Particles = eqx.field(static=True)
    layers_phi: int = eqx.field(static=True)
    layers_rho: int = eqx.field(static=True)
    cusp_exponent: int | float | None = eqx.field(static=True)
    chunk_size: int | str | None = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        layers_phi: int | np.integer,
        layers_rho: int | np.integer,
        features_phi: Widths,
        features_rho: Widths,
        cusp_exponent: RealNumber | None = None,
        activation: Activation | None = gelu,
        param_dtype: jnp.dtype | type = jnp.float64,
        params_init: Initializer = initializers.ones,
        chunk_size: int | np.integer | str | None = "auto",
        *,
        key: PRNGKeyArray,
        **deepset_kwargs,
    ):
        """**Arguments:**

        - `hilbert`: a `nqzoo.hilbert.Particles` box, periodic in every direction.
        - `layers_phi`: number of layers of $\\phi$ (0 means no $\\phi$).
        - `layers_rho`: number of layers of $\\rho$ listed in `features_rho` (one more 1 → 1
          layer is appended, as in NetKet).
        - `features_phi`: widths of the $\\phi$ layers: an int (every layer) or a sequence
          of length `layers_phi`.
        - `features_rho`: widths of the $\\rho$ layers: an int `f` gives
          `(f, …, f, 1)` of length `layers_rho`; a sequence must have length `layers_rho` and
          end in 1.
        - `cusp_exponent`: the exponent $e > 0$ of the cusp term, or `None` for no cusp.
        - `activation`: activation after every $\\phi$ and hidden $\\rho$ layer (default
          `nqzoo.nn.gelu`, the tanh form as NetKet's `jax.nn.gelu`).
        - `param_dtype`: dtype of the parameters (floating or complex).
        - `params_init`: initialiser of the cusp parameter $b$ (default `ones`).
        - `chunk_size`: configurations evaluated at once. `"auto"` (default) picks
          `max(1, 8192 // n_pairs)` to keep the pair tensors of a chunk in cache; an int sets
          it; `None` evaluates the whole batch at once (memory grows with the batch).
        - `key`: a JAX PRNG key.
        - `**deepset_kwargs`: the other keywords of [`nqzoo.models.DeepSetMLP`][], with its
          defaults: `output_activation` (after the last layer, default `None`), `pooling`
          (the reduction over the pairs, `pooling(x, axis=-2)`, default `jnp.sum`),
          `use_bias` (every dense layer, default `True`), `kernel_init` and `bias_init`
          (defaults `lecun_normal()` and `zeros`).
        """
        hilbert = _periodic_box(hilbert)
        phi_widths, rho_widths = _rel_widths(layers_phi, layers_rho, features_phi, features_rho)
        if cusp_exponent is not None:
            cusp_exponent = positive_number(cusp_exponent, "cusp_exponent", " (or None)")
        param_dtype = inexact_dtype(param_dtype)
        ckey, dkey = jax.random.split(key)
        self.hilbert = hilbert
        self.layers_phi = len(phi_widths)
        self.layers_rho = len(rho_widths)
        self.cusp_exponent = cusp_exponent
        self.chunk_size = _chunk_size(chunk_size)
        self.cusp = params_init(ckey, (1,), param_dtype)
        self.deepset = DeepSetMLP(
            hilbert.d,
            phi_widths or None,
            rho_widths,
            hidden_activation=activation,
            param_dtype=param_dtype,
            key=dkey,
            **deepset_kwargs,
        )

    def __check_init__(self):
        check_fields(self)
        if self.deepset.in_features != self.hilbert.d:
            raise ValueError(
                f"deepset.in_features={self.deepset.in_features} must equal the box "
                f"dimension d={self.hilbert.d}."
            )

    @property
    def n_pairs(self) -> int:
        """Number of particle pairs `N(N-1)/2`."""
        return self.hilbert.N * (self.hilbert.N - 1) // 2

    @property
    def features_phi(self) -> tuple[int, ...]:
        """Widths of the $\\phi$ layers."""
        return self.deepset.features_phi

    @property
    def features_rho(self) -> tuple[int, ...]:
        """Widths of the $\\rho$ layers as NetKet lists them (ending in 1; the extra 1 → 1
        layer not included)."""
        return self.deepset.features_rho

    @property
    def activation(self) -> Activation | None:
        return self.deepset.hidden_activation

    @property
    def output_activation(self) -> Activation | None:
        return self.deepset.output_activation

    @property
    def pooling(self) -> Pooling:
        return self.deepset.pooling

    def resolved_chunk_size(self) -> int | None:
        """The chunk size used for batches (`"auto"` resolved), or `None` for no chunking."""
        if self.chunk_size == "auto":
            return max(1, _AUTO_CHUNK_ROWS // max(self.n_pairs, 1))
        return self.chunk_size

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: particle positions `(*batch, N*d)`, particle-major
          `(x1_1, …, x1_d, x2_1, …)`; any number of batch axes.

        **Returns:** `log ψ(x)`, shape `(*batch,)`, in the parameter dtype.
        """
        check_fields(self)
        x = jnp.asarray(x)
        # Positions stay real when the parameters are complex.
        flat = x.astype(jnp.finfo(self.cusp.dtype).dtype).reshape(-1, self.hilbert.size)
        chunk = self.resolved_chunk_size()
        # (a lambda: a bound method would hash the module, arrays included)
        out = chunked_map(lambda xs: self._log_psi_block(xs), flat, chunk, checkpoint=True)
        return out.reshape(x.shape[:-1])

    def _log_psi_block(self, x: Array) -> Array:
        """`log ψ` of a block of configurations `(C, N*d)` -> `(C,)`."""
        N, d = self.hilbert.N, self.hilbert.d
        L = jnp.asarray(self.hilbert.L, x.dtype).reshape(1, 1, d)
        pos = x.reshape(x.shape[0], N, d)
        i, j = np.triu_indices(N, 1)
        delta = pos[:, i, :] - pos[:, j, :]  # (C, P, d), pair order of jnp.triu_indices
        dist = L / 2.0 * _sin(jnp.pi * _nearest_image(delta, L) / L)
        y = (dist / L) ** 2
        log_psi = self.deepset(y)
        if self.cusp_exponent is not None:
            log_psi = log_psi + self._cusp_term(dist)
        return log_psi

    def _cusp_term(self, dist: Array) -> Array:
        # r^2 = |d|^2 (d real); where r == 0 the pair is replaced by r = 1 so that neither the
        # value nor any derivative becomes NaN (double-where), and the configuration's cusp
        # term is then replaced by its r -> 0+ limit, held constant (zero gradient).
        r2 = jnp.sum(dist * dist, axis=-1)
        coincident = r2 == 0
        r = jnp.sqrt(jnp.where(coincident, 1.0, r2))
        b = self.cusp[0]
        regular = -0.5 * jnp.sum(b / (r**self.cusp_exponent).astype(b.dtype), axis=-1)
        singular = jax.lax.stop_gradient(_diverging_limit(b))
        return jnp.where(jnp.any(coincident, axis=-1), singular, regular)


#: Separations (per axis, after `_nearest_image`) up to this many machine epsilons times the
#: box length count as zero. For `x` in `[0, L)` and `y = x + k L` computed in floating point,
#: the reduced `x - y` is at most `(3 |k| + 1) / 2` eps L (the roundings of `x + k L`, of the
#: difference and of `k L`): 8 covers images up to 5 boxes away.
_IMAGE_TOLERANCE_EPS = 8


def _nearest_image(delta: Array, L: Array) -> Array:
    """`delta - L round(delta / L)`, the separation of the nearest periodic images, in
    `[-L/2, L/2]`; components within `_IMAGE_TOLERANCE_EPS` epsilons of a multiple of `L`
    become exactly 0 (so `sin(pi delta / L)` is 0 there, not the `~1e-16` of `sin(pi)`)."""
    reduced = delta - L * jnp.round(delta * (1.0 / L))
    tolerance = _IMAGE_TOLERANCE_EPS * jnp.finfo(delta.dtype).eps * L
    return jnp.where(jnp.abs(reduced) <= tolerance, jnp.zeros((), delta.dtype), reduced)


# sin for float64 as a polynomial XLA vectorises (jnp.sin is a scalar libm call on CPU, about
# 8x slower and, with one sine per pair and component, a large part of the forward pass). The
# argument is already reduced (`_nearest_image`: |t| <= pi/2 up to rounding), so the odd
# Taylor series to degree 25 on [-pi/2, pi/2] (truncation below 1e-22) is the whole function.
# Agrees with jnp.sin to 2 ulp, relative accuracy included at 0.
_SIN_TAYLOR = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(1, 13))


def _sin(t: Array) -> Array:
    """`sin(t)` for `|t| <= pi/2` (a reduced argument)."""
    if t.dtype != jnp.float64:
        return jnp.sin(t)
    t2 = t * t
    poly = _SIN_TAYLOR[-1]
    for c in _SIN_TAYLOR[-2::-1]:
        poly = poly * t2 + c
    return t + t * (t2 * poly)


def _diverging_limit(b: Array) -> Array:
    """Limit of `-b/2 * s` as `s -> +inf`, componentwise for complex `b`; 0 where `b == 0`."""

    def limit(t):
        return jnp.where(t > 0, -jnp.inf, jnp.where(t < 0, jnp.inf, 0.0)).astype(t.dtype)

    if jnp.iscomplexobj(b):
        return jax.lax.complex(limit(b.real), limit(b.imag))
    return limit(b)
