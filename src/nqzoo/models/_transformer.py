r"""The autoregressive Transformer (a decoder-only, causal Transformer over the sites) and its
fast twin, which keeps every layer's keys and values in an `eqx.nn.State`.

Position $k$ of the sequence predicts site $s_k$ (the $k$-th site of the model's order) and
reads the local value of $s_{k-1}$ (a learned start token at $k = 0$): the inputs are shifted
right by one, so causal self-attention over positions $j \le k$ makes the conditional of $s_k$
depend on the sites generated before it only. The slow model runs the whole sequence at
once; the fast model one position per `conditional`, through the same layers, so they agree
to rounding.
"""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact, Int, Num, PRNGKeyArray

from .._custom_types import Initializer
from .._misc import as_index, inexact_dtype, positive_int, positive_ints, site_index
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert
from ..nn import initializers
from ..nn._attention import FastCausalSelfAttention, KVCache, LayerNorm, TransformerBlock
from ._autoreg import (
    AbstractARNN,
    AbstractFastARNN,
    check_autoregressive_hilbert,
    check_machine_pow,
    normalize_log_conditionals,
)


_ORDERS = ("snake", "row-major")
_POSITIONALS = ("learned", "2d")


def _lattice_shape(lattice_shape: object, n_sites: int) -> tuple[int, ...]:
    if lattice_shape is None:
        return (n_sites,)
    shape = positive_ints(lattice_shape, "lattice_shape")
    if int(np.prod(shape)) != n_sites:
        raise ValueError(
            f"lattice_shape={shape} has {int(np.prod(shape))} sites but the Hilbert space has "
            f"N={n_sites}; give the extent of the lattice the sites live on (row-major site "
            "numbering, as nqzoo.lattice.Grid), or None for a chain."
        )
    return shape


def _choice(value: object, argname: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{argname} must be one of {allowed}, got {argname}={value!r}.")
    return value


class ARTransformer(AbstractARNN):
    r"""An autoregressive Transformer: a decoder-only, causal Transformer over the sites in
    the model's order $s_0, s_1, \dots, s_{N-1}$ (site order on a chain; on a 2D lattice the
    snake or the row-major path).

    **Input.** Position $k$ reads the local value of the site generated before it,

    $$h^{(0)}_k = \begin{cases} t & k = 0 \\ E_{x_{s_{k-1}}} & k \ge 1 \end{cases}
    \; + \; P_k,$$

    with $E$ (`embedding`, `(local_size, d)`) one row per local value, $t$ (`start`) a learned
    start token and $P_k$ the positional encoding: a learned row per position
    (`positional="learned"`, `(N, d)`) or, on a lattice, a sum of learned rows per coordinate
    of site $s_k$, $P_k = \sum_a P^{(a)}_{r_a(s_k)}$ (`positional="2d"`, one `(L_a, d)`
    table per axis), which knows which sites are neighbours.

    **Blocks.** `layers` pre-norm blocks ([`nqzoo.nn.TransformerBlock`][]):
    $h \leftarrow h + \mathrm{MHA}(\mathrm{LN}(h))$,
    $h \leftarrow h + \mathrm{MLP}(\mathrm{LN}(h))$, the attention causal ($k$ attends
    $j \le k$, [`nqzoo.nn.CausalSelfAttention`][]).

    **Output.** $z_k = \mathrm{LN}(h^{(L)}_k) W + b$ (`local_size` outputs) and
    $\log\psi_{s_k}(x \mid x_{s_{<k}}) = z_{k,x} - \frac1p \log\sum_{x'} e^{p\,\operatorname{Re}
    z_{k,x'}}$ ($p$ = `machine_pow`), so that $\sum_x |\psi(x)|^p = 1$.

    With complex parameters the attention weights are a softmax of
    $\operatorname{Re}(q \cdot \bar k)/\sqrt{d_h}$ (real), the layer norms divide by the root
    mean square modulus and the MLP applies GELU to real and imaginary parts: every layer is
    finite for every input, and the conditionals stay normalised.

    ??? cite "Reference"

        ```bibtex
        @article{sharir2020deep,
          title={Deep autoregressive models for the efficient variational simulation of
                 many-body quantum systems},
          author={Sharir, Or and Levine, Yoav and Wies, Noam and Carleo, Giuseppe and
                  Shashua, Amnon},
          journal={Physical Review Letters}, volume={124}, number={2}, pages={020503},
          year={2020}
        }
        ```
    """

    embedding: Inexact[Array, "{self.hilbert.local_size} {self.d_model}"]
    start: Inexact[Array, " {self.d_model}"]
    positional_tables: tuple[Inexact[Array, "_ {self.d_model}"], ...]
    blocks: tuple[TransformerBlock, ...]
    final_norm: LayerNorm
    head_kernel: Inexact[Array, "{self.d_model} {self.hilbert.local_size}"]
    head_bias: Inexact[Array, " {self.hilbert.local_size}"]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    mlp_ratio: int = eqx.field(static=True)
    lattice_shape: tuple[int, ...] = eqx.field(static=True)
    order: str = eqx.field(static=True)
    positional: str = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        layers: int | np.integer,
        d_model: int | np.integer,
        heads: int | np.integer,
        mlp_ratio: int | np.integer = 4,
        lattice_shape: int | np.integer | Sequence[float | int | np.number] | None = None,
        order: str = "snake",
        positional: str = "learned",
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        embedding_init: Initializer = initializers.normal(1.0),
        machine_pow: float | int | np.floating | np.integer = 2,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: a homogeneous discrete space (Spin, Qubit, Fock), optionally with a
          `total_sz` / `n_particles` constraint (enforced by the autoregressive base).
        - `layers`: the number of Transformer blocks (at least 1).
        - `d_model`: the embedding width `d`.
        - `heads`: the attention heads `H` (`d_model % heads == 0`).
        - `mlp_ratio`: the MLP's hidden width is `mlp_ratio * d_model`.
        - `lattice_shape`: the extent of the lattice, e.g. `(4, 4)`, with sites numbered
          row-major (as [`nqzoo.lattice.Grid`][]); `None` for a chain.
        - `order`: on a 2D lattice, `"snake"` (rows left to right and right to left in
          turn, [`nqzoo.lattice.Grid.snake_order`][]) or `"row-major"` (site order);
          ignored on a chain.
        - `positional`: `"learned"` (a row per position) or `"2d"` (a sum of rows per
          lattice coordinate; on a chain the same as `"learned"`).
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`: initialiser of every kernel (lecun normal); biases start at zero.
        - `embedding_init`: initialiser of `embedding`, `start` and the positional tables
          (normal, standard deviation 1).
        - `machine_pow`: `p` in `|ψ|^p` (the distribution that is normalised and sampled).
        - `key`: a JAX PRNG key.

        **Raises:** `ValueError` naming the argument: `d_model` not a multiple of `heads`, a
        size that is not a positive integer, a `lattice_shape` with another number of sites,
        an unknown `order` or `positional`, a `total_sz`-like constraint the base cannot
        enforce; `TypeError` for a space that is not discrete.
        """
        self.hilbert = check_autoregressive_hilbert(hilbert)
        self.machine_pow = check_machine_pow(machine_pow)
        layers = positive_int(layers, "layers")
        self.d_model = positive_int(d_model, "d_model")
        self.heads = positive_int(heads, "heads")
        if self.d_model % self.heads:
            raise ValueError(
                f"d_model must be a multiple of heads (each head has d_model / heads "
                f"features), got d_model={self.d_model}, heads={self.heads}."
            )
        self.mlp_ratio = positive_int(mlp_ratio, "mlp_ratio")
        self.lattice_shape = _lattice_shape(lattice_shape, hilbert.size)
        self.order = _choice(order, "order", _ORDERS)
        self.positional = _choice(positional, "positional", _POSITIONALS)
        param_dtype = inexact_dtype(param_dtype)
        d = self.d_model
        ekey, skey, pkey, bkey, hkey = jax.random.split(key, 5)
        self.embedding = embedding_init(ekey, (hilbert.local_size, d), param_dtype)
        self.start = embedding_init(skey, (d,), param_dtype)
        sizes = self.lattice_shape if self.positional == "2d" else (hilbert.size,)
        self.positional_tables = tuple(
            embedding_init(k, (size, d), param_dtype)
            for k, size in zip(jax.random.split(pkey, len(sizes)), sizes)
        )
        self.blocks = tuple(
            TransformerBlock(d, self.heads, self.mlp_ratio, param_dtype, kernel_init, key=k)
            for k in jax.random.split(bkey, layers)
        )
        self.final_norm = LayerNorm(d, param_dtype=param_dtype)
        self.head_kernel = kernel_init(hkey, (d, hilbert.local_size), param_dtype)
        self.head_bias = jnp.zeros((hilbert.local_size,), param_dtype)

    def __check_init__(self):
        sizes = self.lattice_shape if self.positional == "2d" else (self.hilbert.size,)
        got = tuple(table.shape for table in self.positional_tables)
        if got != tuple((size, self.d_model) for size in sizes):
            raise ValueError(
                f"positional_tables have shapes {got}, expected one (size, d_model) table per "
                f"entry of {sizes} (positional={self.positional!r})."
            )

    @property
    def layers(self) -> int:
        """The number of blocks."""
        return len(self.blocks)

    @property
    def param_dtype(self) -> np.dtype:
        """The parameters' dtype."""
        return self.embedding.dtype

    @property
    def reorder_idx(self) -> tuple[int, ...] | None:
        """The site generated at each position (`None`: site order)."""
        if len(self.lattice_shape) != 2 or self.order == "row-major":
            return None
        rows, cols = self.lattice_shape
        idx = np.arange(rows * cols).reshape(rows, cols)
        idx[1::2] = idx[1::2, ::-1]
        return tuple(int(i) for i in idx.ravel())

    @property
    def inv_reorder_idx(self) -> tuple[int, ...] | None:
        """The position of each site (`None`: site order)."""
        order = self.reorder_idx
        return None if order is None else tuple(int(i) for i in np.argsort(order))

    def reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """`x` with the site axis in autoregressive order: entry `k` is the site generated
        `k`-th (see `order`)."""
        x = jnp.asarray(x)
        order = self.reorder_idx
        return x if order is None else jnp.take(x, np.asarray(order), axis)

    def inverse_reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """The inverse of [`reorder`][nqzoo.models.ARTransformer.reorder]."""
        x = jnp.asarray(x)
        inv = self.inv_reorder_idx
        return x if inv is None else jnp.take(x, np.asarray(inv), axis)

    def coordinates(self) -> np.ndarray:
        """`(N, n_axes)` int32: the lattice coordinates of the site at each position (the
        rows read from the `"2d"` positional tables; one column, the position, otherwise)."""
        positions = np.arange(self.hilbert.size)
        if self.positional != "2d":
            return positions[:, None].astype(np.int32)
        sites = positions if self.reorder_idx is None else np.asarray(self.reorder_idx)
        return np.stack(np.unravel_index(sites, self.lattice_shape), -1).astype(np.int32)

    def positional_encoding(self) -> Inexact[Array, "{self.hilbert.size} {self.d_model}"]:
        """`P`, `(N, d_model)`: the positional encoding of every position."""
        coords = self.coordinates()
        out = self.positional_tables[0][coords[:, 0]]
        for a in range(1, coords.shape[1]):
            out = out + self.positional_tables[a][coords[:, a]]
        return out

    def output(
        self, h: Inexact[Array, "*sites {self.d_model}"]
    ) -> Inexact[Array, "*sites {self.hilbert.local_size}"]:
        """The raw outputs `z = LN(h) W + b` (before the normalisation)."""
        z = jnp.matmul(self.final_norm(h), self.head_kernel)
        return z + self.head_bias.reshape((1,) * (z.ndim - 1) + self.head_bias.shape)

    def _check_parts(self) -> None:
        check_fields(self)
        for block in self.blocks:
            check_fields(block)
            check_fields(block.attention)

    def conditionals_log_psi(
        self, x: Num[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """Normalised log-conditionals of every site, in site order: the whole sequence in
        one pass (one causal attention per block).

        **Arguments:**

        - `x`: configurations `(*batch, N)` of local values.

        **Returns:** `(*batch, N, local_size)`; row `i` is site `i` given the sites generated
        before it.
        """
        self._check_parts()
        n, local_size = self.hilbert.size, self.hilbert.local_size
        idx = self.reorder(self.hilbert.states_to_local_indices(x))
        batch = idx.shape[:-1]
        flat = idx.reshape(-1, n)
        pos = self.positional_encoding()

        def one(config):
            prev = jnp.take(self.embedding, config[:-1], axis=0)
            h = jnp.concatenate([self.start[None], prev], axis=0) + pos
            for block in self.blocks:
                h = block(h)
            return self.output(h)

        z = self.inverse_reorder(jax.vmap(one)(flat), axis=-2)
        return normalize_log_conditionals(z, self.machine_pow).reshape(*batch, n, local_size)


class FastARTransformer(AbstractFastARNN):
    r"""[`nqzoo.models.ARTransformer`][] (field `transformer`, the same parameters) with a
    key-value cache per block, behind the state indices `caches`.

    Each cache holds the keys and values of every position of that block's attention, two
    arrays `(heads, d_model / heads, N)` in the parameter dtype
    ([`nqzoo.nn.FastCausalSelfAttention`][]). [`step`][nqzoo.models.FastARTransformer.step]
    runs ONE position through every block: the embedding of the previous site, then per
    block the projections of that position, a write of its key and value into row $k$ and
    an attention over rows $j \le k$ (rows $j > k$ are masked), then the MLP. Its cost is
    $O(L(d^2 + N d))$: constant matrix products plus one product with the cache of static
    length $N$. Steps must follow the model's order: `index` runs over
    `model.reorder(jnp.arange(N))`. The position is read from `index`; no counter is kept.
    """

    transformer: ARTransformer
    caches: tuple[eqx.nn.StateIndex[KVCache], ...]

    def __init__(self, *args, **kwargs):
        """Takes the arguments of [`nqzoo.models.ARTransformer`][]; build with
        `model, state = eqx.nn.make_with_state(FastARTransformer)(hilbert, ...)`."""
        self.transformer = ARTransformer(*args, **kwargs)
        self.caches = tuple(self.fast_attention(block).cache for block in self.transformer.blocks)

    def fast_attention(
        self, block: TransformerBlock, cache: eqx.nn.StateIndex | None = None
    ) -> FastCausalSelfAttention:
        """The cached wrapper of one block's attention (with a new cache if `cache` is None)."""
        return FastCausalSelfAttention(block.attention, self.transformer.hilbert.size, cache)

    @property
    def hilbert(self) -> AbstractDiscreteHilbert:
        return self.transformer.hilbert

    @property
    def machine_pow(self) -> int | float:
        return self.transformer.machine_pow

    def to_slow(self) -> ARTransformer:
        """The slow twin, which holds the parameters."""
        return self.transformer

    def reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """See [`nqzoo.models.ARTransformer.reorder`][]."""
        return self.transformer.reorder(x, axis)

    def inverse_reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """See [`nqzoo.models.ARTransformer.inverse_reorder`][]."""
        return self.transformer.inverse_reorder(x, axis)

    def conditionals_log_psi(
        self, x: Num[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """The slow model's normalised log-conditionals (see `transformer`)."""
        return self.transformer.conditionals_log_psi(x)

    def step(
        self,
        x: Num[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State,
    ) -> tuple[Inexact[Array, " {self.hilbert.local_size}"], eqx.nn.State]:
        """One position through every block's cache: only the value of the site generated
        before `index` is read (the earlier positions are in the caches).

        **Arguments:** as [`conditional`][nqzoo.models.AbstractFastARNN.conditional]; `index`
        is the site (its position is `inv_reorder_idx[index]`).

        **Returns:** `(log ψ_index(· | earlier sites) (local_size,), new state)`; NaN for a
        traced `index` outside `0..N-1`.

        **Raises:** `ValueError` for a concrete `index` outside `0..N-1`, or a state without
        this model's key-value caches (see
        [`nqzoo.nn.FastCausalSelfAttention.update_site`][]).
        """
        model = self.transformer
        model._check_parts()
        n = model.hilbert.size
        traced = isinstance(index, jax.core.Tracer)
        index = site_index(index, n)
        inv, order = model.inv_reorder_idx, model.reorder_idx
        k = index if inv is None else jnp.asarray(inv, np.int32)[index]
        prev_k = lax.max(k - 1, np.int32(0))
        prev = prev_k if order is None else jnp.asarray(order, np.int32)[prev_k]
        local = as_index(
            lax.dynamic_index_in_dim(model.hilbert.states_to_local_indices(x), prev, keepdims=False)
        )
        token = lax.dynamic_index_in_dim(model.embedding, local, keepdims=False)
        h = jnp.where(k >= 1, token, model.start)
        coords = jnp.asarray(model.coordinates())
        for a, table in enumerate(model.positional_tables):
            h = h + lax.dynamic_index_in_dim(table, coords[k, a], keepdims=False)
        for block, cache in zip(model.blocks, self.caches):
            attention = self.fast_attention(block, cache)
            out, state = attention.update_site(block.attention_norm(h), k, state)
            h = block.feed_forward(h + out)
        log_psi = normalize_log_conditionals(model.output(h), self.machine_pow)
        if traced:  # out of range: NaN rather than the clamped site's conditional
            in_range = (index >= 0) & (index < n)
            log_psi = jnp.where(in_range, log_psi, jnp.full((), jnp.nan, log_psi.dtype))
        return log_psi, state
