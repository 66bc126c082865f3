import functools
import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Num, PRNGKeyArray, Real

from .._checks import check_fields
from .._custom_types import Activation, Initializer
from ..hilbert import Particles
from ..nn import initializers
from ..nn._activations import gelu
from ..nn._dense import Dense


#: Pooling over the set axis: called as `pooling(x, axis=-2)` (e.g. `jnp.sum`, `jnp.mean`).
Pooling = Callable[..., Array]

#: Default number of pair rows (configurations x pairs) evaluated per chunk by
#: `DeepSetRelDistance` when `chunk_size="auto"`: with 16 features in float64 one
#: intermediate of this many rows is 1 MiB, about a core's L2 cache.
_AUTO_CHUNK_ROWS = 8192


def _is_width(f: object) -> bool:
    return not isinstance(f, bool) and isinstance(f, int | np.integer) and f >= 1


def _widths(features: object, argname: str) -> tuple[int, ...]:
    """A tuple of positive widths from an int or a sequence, else ValueError naming the arg."""
    if _is_width(features):
        return (int(features),)
    if isinstance(features, Sequence) and not isinstance(features, str):
        if all(_is_width(f) for f in features):
            return tuple(int(f) for f in features)
    raise ValueError(
        f"{argname} must be a positive integer or a sequence of positive integers, "
        f"got {argname}={features!r}."
    )


def _count(value: object, argname: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{argname} must be an integer >= {minimum}, got {argname}={value!r}.")
    return int(value)


def _dense_stack(
    widths: tuple[int, ...],
    in_features: int,
    use_bias: bool,
    param_dtype,
    kernel_init: Initializer,
    bias_init: Initializer,
    key: PRNGKeyArray,
) -> tuple[Dense, ...]:
    keys = jax.random.split(key, max(len(widths), 1))
    layers = []
    for k, width in zip(keys, widths):
        layers.append(
            Dense(in_features, width, use_bias, param_dtype, kernel_init, bias_init, key=k)
        )
        in_features = width
    return tuple(layers)


def _apply(act: Activation | None, x: Array) -> Array:
    return x if act is None else act(x)


class DeepSetMLP(eqx.Module):
    r"""The DeepSets network: a permutation-invariant function of a set of vectors.

    $$f(x_1, \dots, x_n) = \rho\Big(\operatorname*{pool}_{i=1}^{n} \phi(x_i)\Big),$$

    with $\phi$ and $\rho$ multilayer perceptrons and the pooling (a sum by default) taken
    over the set axis, the second to last axis of the input. Every layer of $\phi$ is
    followed by `hidden_activation` (its output layer too); $\rho$ applies `hidden_activation`
    after its hidden layers, ends with a width-1 layer followed by `output_activation`, and its
    output is squeezed. Parameters and conventions match NetKet's `nk.models.DeepSetMLP`
    (`DeepSetMLP_0/ds_phi/Dense_k`, `DeepSetMLP_0/ds_rho/Dense_k`).

    ??? cite "Reference"

        ```bibtex
        @inproceedings{zaheer2017deep,
          title={Deep Sets},
          author={Zaheer, Manzil and Kottur, Satwik and Ravanbakhsh, Siamak and
                  Poczos, Barnabas and Salakhutdinov, Russ R and Smola, Alexander J},
          booktitle={Advances in Neural Information Processing Systems}, volume={30},
          year={2017}
        }
        ```
    """

    phi: tuple[Dense, ...]
    rho: tuple[Dense, ...]
    in_features: int = eqx.field(static=True)
    hidden_activation: Activation | None = eqx.field(static=True)
    output_activation: Activation | None = eqx.field(static=True)
    pooling: Pooling = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        features_phi: int | Sequence[int] | None = None,
        features_rho: int | Sequence[int] | None = None,
        hidden_activation: Activation | None = gelu,
        output_activation: Activation | None = None,
        pooling: Pooling = jnp.sum,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_features`: width `D` of each set element (the input is `(*batch, n, D)`).
        - `features_phi`: widths of the layers of $\\phi$. `None` (or `()`) means no $\\phi$
          (the raw elements are pooled), an int `f` one layer of width `f`, a sequence one
          layer per entry.
        - `features_rho`: widths of the hidden layers of $\\rho$; a final width-1 layer is
          always appended. `None` means $\\rho$ is that single layer, an int `f` gives widths
          `(f, 1)`, a sequence `(*features_rho, 1)` (NetKet's convention).
        - `hidden_activation`: activation after every $\\phi$ layer and every hidden $\\rho$
          layer (default `nqzoo.nn.gelu`, the tanh form); `None` for none.
        - `output_activation`: activation after the last layer (default `None`).
        - `pooling`: reduction over the set axis, called as `pooling(x, axis=-2)`
          (default `jnp.sum`).
        - `use_bias`: whether every layer has a bias.
        - `param_dtype`: dtype of the parameters.
        - `kernel_init`, `bias_init`: initialisers (defaults `lecun_normal()`, `zeros`).
        - `key`: a JAX PRNG key.
        """
        in_features = _count(in_features, "in_features", 1)
        phi_widths = () if features_phi is None else _widths(features_phi, "features_phi")
        rho_hidden = () if features_rho is None else _widths(features_rho, "features_rho")
        if pooling is None or not callable(pooling):
            raise TypeError(f"pooling must be a callable like jnp.sum, got pooling={pooling!r}.")
        pkey, rkey = jax.random.split(key)
        self.in_features = in_features
        self.hidden_activation = hidden_activation
        self.output_activation = output_activation
        self.pooling = pooling
        args = (use_bias, param_dtype, kernel_init, bias_init)
        self.phi = _dense_stack(phi_widths, in_features, *args, pkey)
        rho_in = phi_widths[-1] if phi_widths else in_features
        self.rho = _dense_stack((*rho_hidden, 1), rho_in, *args, rkey)

    def __check_init__(self):
        check_fields(self)
        widths = (
            [self.in_features]
            + [
                w
                for layer in (*self.phi, *self.rho)
                for w in (layer.in_features, layer.out_features)
            ]
            + [1]
        )
        chained = all(a == b for a, b in zip(widths[::2], widths[1::2]))
        if not self.rho or not chained:
            raise ValueError(
                f"DeepSetMLP layers do not chain from in_features={self.in_features} to a "
                f"final width 1: (in, out) per layer = "
                f"{[(lay.in_features, lay.out_features) for lay in (*self.phi, *self.rho)]}."
            )

    @property
    def features_phi(self) -> tuple[int, ...]:
        """Widths of the $\\phi$ layers (empty when there is no $\\phi$)."""
        return tuple(layer.out_features for layer in self.phi)

    @property
    def features_rho(self) -> tuple[int, ...]:
        """Widths of the hidden $\\rho$ layers (the final width-1 layer excluded)."""
        return tuple(layer.out_features for layer in self.rho[:-1])

    def __call__(
        self, x: Num[ArrayLike, "*batch n_set {self.in_features}"]
    ) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: a set of `n_set` vectors per batch entry, `(*batch, n_set, in_features)`.

        **Returns:** `f(x)`, shape `(*batch,)`.
        """
        check_fields(self)
        h = jnp.asarray(x)
        for layer in self.phi:
            h = _apply(self.hidden_activation, layer(h))
        h = self.pooling(h, axis=-2)
        for layer in self.rho[:-1]:
            h = _apply(self.hidden_activation, layer(h))
        h = _apply(self.output_activation, self.rho[-1](h))
        return h[..., 0]


def _rel_features_rho(features_rho: object, layers_rho: int) -> tuple[int, ...]:
    if _is_width(features_rho):
        return (int(features_rho),) * (layers_rho - 1) + (1,)
    return _widths(features_rho, "features_rho")


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

    ??? cite "References"

        ```bibtex
        @article{pescia2022neural,
          title={Neural-network quantum states for periodic systems in continuous space},
          author={Pescia, Gabriel and Han, Jiequn and Lovato, Alessandro and Lu, Jianfeng and
                  Carleo, Giuseppe},
          journal={Physical Review Research}, volume={4}, number={2}, pages={023138},
          year={2022}
        }
        @inproceedings{zaheer2017deep,
          title={Deep Sets},
          author={Zaheer, Manzil and Kottur, Satwik and Ravanbakhsh, Siamak and
                  Poczos, Barnabas and Salakhutdinov, Russ R and Smola, Alexander J},
          booktitle={Advances in Neural Information Processing Systems}, volume={30},
          year={2017}
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
        hilbert: Particles,
        layers_phi: int,
        layers_rho: int,
        features_phi: int | Sequence[int],
        features_rho: int | Sequence[int],
        cusp_exponent: int | float | None = None,
        activation: Activation | None = gelu,
        output_activation: Activation | None = None,
        pooling: Pooling = jnp.sum,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        params_init: Initializer = initializers.ones,
        chunk_size: int | str | None = "auto",
        *,
        key: PRNGKeyArray,
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
        - `output_activation`: activation after the last layer (default `None`).
        - `pooling`: reduction over the pairs, `pooling(x, axis=-2)` (default `jnp.sum`).
        - `use_bias`: whether every dense layer has a bias.
        - `param_dtype`: dtype of the parameters.
        - `kernel_init`, `bias_init`: initialisers of the dense layers (defaults
          `lecun_normal()`, `zeros`).
        - `params_init`: initialiser of the cusp parameter $b$ (default `ones`).
        - `chunk_size`: configurations evaluated at once. `"auto"` (default) picks
          `max(1, 8192 // n_pairs)` to keep the pair tensors of a chunk in cache; an int sets
          it; `None` evaluates the whole batch at once (memory grows with the batch).
        - `key`: a JAX PRNG key.
        """
        if not isinstance(hilbert, Particles):
            raise TypeError(
                f"hilbert must be an nqzoo.hilbert.Particles box, got hilbert={hilbert!r}."
            )
        if not all(hilbert.pbc):
            raise ValueError(
                "DeepSetRelDistance needs a box periodic in every direction; got "
                f"hilbert.pbc={hilbert.pbc!r} (use Particles(..., pbc=True))."
            )
        layers_phi = _count(layers_phi, "layers_phi", 0)
        layers_rho = _count(layers_rho, "layers_rho", 1)
        if _is_width(features_phi):
            phi_widths = (int(features_phi),) * layers_phi
        elif isinstance(features_phi, Sequence) and len(features_phi) == 0:
            phi_widths = ()
        else:
            phi_widths = _widths(features_phi, "features_phi")
        if len(phi_widths) != layers_phi:
            raise ValueError(
                f"features_phi={features_phi!r} has {len(phi_widths)} entries but "
                f"layers_phi={layers_phi}; give one width per layer (or a single int)."
            )
        rho_widths = _rel_features_rho(features_rho, layers_rho)
        if len(rho_widths) != layers_rho:
            raise ValueError(
                f"features_rho={features_rho!r} has {len(rho_widths)} entries but "
                f"layers_rho={layers_rho}; give one width per layer (or a single int)."
            )
        if rho_widths[-1] != 1:
            raise ValueError(
                f"The last entry of features_rho must be 1 (NetKet's convention), got "
                f"features_rho={features_rho!r}."
            )
        if cusp_exponent is not None and (
            isinstance(cusp_exponent, bool)
            or not isinstance(cusp_exponent, int | float | np.integer | np.floating)
            or not math.isfinite(cusp_exponent)
            or cusp_exponent <= 0
        ):
            raise ValueError(
                f"cusp_exponent must be None or a positive number, got "
                f"cusp_exponent={cusp_exponent!r}."
            )
        if not (chunk_size is None or chunk_size == "auto" or _is_width(chunk_size)):
            raise ValueError(
                f"chunk_size must be a positive integer, 'auto' or None, got "
                f"chunk_size={chunk_size!r}."
            )
        ckey, dkey = jax.random.split(key)
        self.hilbert = hilbert
        self.layers_phi = layers_phi
        self.layers_rho = layers_rho
        self.cusp_exponent = cusp_exponent
        self.chunk_size = int(chunk_size) if _is_width(chunk_size) else chunk_size
        self.cusp = params_init(ckey, (1,), param_dtype)
        self.deepset = DeepSetMLP(
            hilbert.d,
            phi_widths or None,
            rho_widths,
            hidden_activation=activation,
            output_activation=output_activation,
            pooling=pooling,
            use_bias=use_bias,
            param_dtype=param_dtype,
            kernel_init=kernel_init,
            bias_init=bias_init,
            key=dkey,
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

        **Returns:** `log ψ(x)`, shape `(*batch,)`.
        """
        check_fields(self)
        x = jnp.asarray(x)
        batch_shape = x.shape[:-1]
        # Positions stay real when the parameters are complex.
        dtype = jnp.result_type(x, jnp.finfo(self.cusp.dtype).dtype)
        flat = x.astype(dtype).reshape(-1, self.hilbert.size)
        n_conf = flat.shape[0]
        chunk = self.resolved_chunk_size()
        if chunk is None or n_conf <= chunk:
            out = self._log_psi_block(flat)
        else:
            n_chunks = -(-n_conf // chunk)
            pad = n_chunks * chunk - n_conf
            if pad:
                # Padding repeats the first configuration: valid input, result discarded.
                filler = jnp.broadcast_to(flat[:1], (pad, self.hilbert.size))
                flat = jnp.concatenate([flat, filler])
            dynamic, static = eqx.partition(self, eqx.is_array)

            @functools.partial(jax.checkpoint, prevent_cse=False)
            def body(dynamic, xc):
                return eqx.combine(dynamic, static)._log_psi_block(xc)

            chunks = flat.reshape(n_chunks, chunk, self.hilbert.size)
            out = jax.lax.map(lambda xc: body(dynamic, xc), chunks)
            out = out.reshape(-1)[:n_conf]
        return out.reshape(batch_shape)

    def _log_psi_block(self, x: Array) -> Array:
        """`log ψ` of a block of configurations `(C, N*d)` -> `(C,)`."""
        N, d = self.hilbert.N, self.hilbert.d
        L = jnp.asarray(self.hilbert.L, x.dtype)
        pos = x.reshape(x.shape[0], N, d)
        i, j = np.triu_indices(N, 1)
        delta = pos[:, i, :] - pos[:, j, :]  # (C, P, d), pair order of jnp.triu_indices
        dist = L / 2.0 * _sin(jnp.pi * delta / L)
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
        regular = -0.5 * jnp.sum(b / r**self.cusp_exponent, axis=-1)
        singular = jax.lax.stop_gradient(_diverging_limit(b))
        return jnp.where(jnp.any(coincident, axis=-1), singular, regular)


# sin for float64 as a polynomial XLA vectorises (jnp.sin is a scalar libm call on CPU, about
# 8x slower and, with one sine per pair and component, a large part of the forward pass).
# Cody-Waite reduction by pi in three parts (the first two with 27 significant bits, so n*P1
# and n*P2 are exact for |n| < 2^26), then the odd Taylor series to degree 25 on [-pi/2, pi/2]
# (truncation below 1e-22). Agrees with jnp.sin to 2 ulp, relative accuracy included at 0.
_PI_PARTS = (3.141592651605606, 1.9841871479187034e-09, 1.1442377452219664e-17)
_SIN_TAYLOR = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(1, 13))


def _sin(t: Array) -> Array:
    if t.dtype != jnp.float64:
        return jnp.sin(t)
    n = jnp.round(t * (1.0 / math.pi))
    p1, p2, p3 = _PI_PARTS
    r = ((t - n * p1) - n * p2) - n * p3  # t - n pi, |r| <= pi/2
    r2 = r * r
    poly = _SIN_TAYLOR[-1]
    for c in _SIN_TAYLOR[-2::-1]:
        poly = poly * r2 + c
    half = 0.5 * n
    sign = jnp.where(half == jnp.floor(half), 1.0, -1.0)  # sin(t) = (-1)^n sin(r)
    return sign * (r + r * (r2 * poly))


def _diverging_limit(b: Array) -> Array:
    """Limit of `-b/2 * s` as `s -> +inf`, componentwise for complex `b`; 0 where `b == 0`."""

    def limit(t):
        return jnp.where(t > 0, -jnp.inf, jnp.where(t < 0, jnp.inf, 0.0)).astype(t.dtype)

    if jnp.iscomplexobj(b):
        return jax.lax.complex(limit(b.real), limit(b.imag))
    return limit(b)
