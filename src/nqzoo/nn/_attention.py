r"""Layer normalisation, multi-head causal self-attention and its fast (cached) wrapper.

All three work with real and complex parameters. With complex parameters the attention
weights stay real and normalised (the logits are $\operatorname{Re}(q \cdot \bar k)$, the real
inner product of $\mathbb{C}^d \cong \mathbb{R}^{2d}$) and the layer norm divides by the root
mean square modulus, so neither has a pole and both reduce to the usual layers on real
inputs.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Bool, Inexact, Int, PRNGKeyArray, Real

from .._custom_types import Initializer
from .._misc import inexact_dtype, positive_int, positive_number, site_index
from .._typecheck import check_fields
from . import initializers
from ._misc import to_param_dtype


#: A fast attention layer's cache: the keys and the values of every position, each
#: `(heads, head_dim, n_sites)`.
KVCache = tuple[Array, Array]


def _along(param: Array, x: Array) -> Array:
    """`param` (the trailing axes of `x`) with the rank of `x` and its dtype, for an explicit
    broadcast (the package runs under `jax_numpy_rank_promotion="raise"` in the tests)."""
    return param.astype(x.dtype).reshape((1,) * (x.ndim - param.ndim) + param.shape)


def _sq_modulus(x: Array) -> Array:
    """`|x|^2` without the square root of `abs` (whose gradient is NaN at 0)."""
    if jnp.iscomplexobj(x):
        return x.real * x.real + x.imag * x.imag
    return x * x


class LayerNorm(eqx.Module):
    r"""Layer normalisation over the last axis, for real or complex features.

    $$\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,
    \qquad \mu = \frac1d \sum_a x_a, \quad \sigma^2 = \frac1d \sum_a |x_a - \mu|^2,$$

    with $\gamma$ (`scale`, ones at init) and $\beta$ (`bias`, zeros) of the parameter dtype.
    For real $x$ this is Ba et al.'s layer norm; for complex $x$ the mean is complex and the
    variance is the mean squared modulus (a real, positive number), so the output is finite
    for every input.
    """

    scale: Inexact[Array, " {self.features}"]
    bias: Inexact[Array, " {self.features}"]
    features: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    def __init__(
        self,
        features: int | np.integer,
        eps: float = 1e-5,
        param_dtype: jnp.dtype | type = jnp.float64,
    ):
        """**Arguments:**

        - `features`: the width `d` of the normalised axis.
        - `eps`: `ε > 0` added to the variance.
        - `param_dtype`: dtype of `scale` and `bias` (floating or complex).
        """
        self.features = positive_int(features, "features")
        self.eps = float(positive_number(eps, "eps"))
        param_dtype = inexact_dtype(param_dtype)
        self.scale = jnp.ones((self.features,), param_dtype)
        self.bias = jnp.zeros((self.features,), param_dtype)

    def __check_init__(self):
        check_fields(self)

    def __call__(
        self, x: Inexact[ArrayLike, "*batch {self.features}"]
    ) -> Inexact[Array, "*batch {self.features}"]:
        """**Arguments:**

        - `x`: `(*batch, d)`.

        **Returns:** the normalised `(*batch, d)`, in the parameters' dtype (complex if `x`
        is).
        """
        check_fields(self)
        x = to_param_dtype(x, self.scale)
        centred = x - jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(_sq_modulus(centred), axis=-1, keepdims=True)
        inv = lax.rsqrt(var + jnp.asarray(self.eps, var.dtype)).astype(x.dtype)
        return centred * inv * _along(self.scale, x) + _along(self.bias, x)


class CausalSelfAttention(eqx.Module):
    r"""Multi-head causal self-attention (Vaswani et al. 2017) over the positions of one
    sequence.

    With $H$ heads of width $d_h = d/H$, for every head $h$ and position $i$:

    $$q^h_i = x_i W^h_Q + b^h_Q,\quad k^h_i = x_i W^h_K + b^h_K,\quad
    v^h_i = x_i W^h_V + b^h_V,$$

    $$s^h_{ij} = \frac{\operatorname{Re}\big(q^h_i \cdot \overline{k^h_j}\big)}{\sqrt{d_h}},
    \qquad a^h_{ij} = \frac{e^{s^h_{ij}}\,[j \le i]}{\sum_{j' \le i} e^{s^h_{ij'}}},\qquad
    y_i = \sum_h \Big(\sum_{j} a^h_{ij} v^h_j\Big) W^h_O + b_O,$$

    i.e. $\mathrm{softmax}(QK^\top/\sqrt{d_h} + M)V$ per head with $M_{ij} = -\infty$ for
    $j > i$, heads concatenated and projected. Position $i$ sees positions $j \le i$. With
    real parameters the real part is the identity; with complex ones the logits are the real
    inner product of $\mathbb{C}^{d_h} \cong \mathbb{R}^{2d_h}$, so the weights $a^h_{ij}$
    are real, positive and sum to 1 (the values and the output stay complex).

    Parameters: `qkv_kernel` `(d, 3, H, d_h)` (query, key, value), `qkv_bias`
    `(3, H, d_h)`, `out_kernel` `(H, d_h, d)`, `out_bias` `(d,)`.

    ??? cite "Reference"

        ```bibtex
        @inproceedings{vaswani2017attention,
          title={Attention is all you need},
          author={Vaswani, Ashish and Shazeer, Noam and Parmar, Niki and Uszkoreit, Jakob and
                  Jones, Llion and Gomez, Aidan N. and Kaiser, {\L}ukasz and
                  Polosukhin, Illia},
          booktitle={Advances in Neural Information Processing Systems}, volume={30},
          year={2017}
        }
        ```
    """

    qkv_kernel: Inexact[Array, "{self.d_model} 3 {self.heads} {self.head_dim}"]
    qkv_bias: Inexact[Array, "3 {self.heads} {self.head_dim}"] | None
    out_kernel: Inexact[Array, "{self.heads} {self.head_dim} {self.d_model}"]
    out_bias: Inexact[Array, " {self.d_model}"] | None
    d_model: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)

    def __init__(
        self,
        d_model: int | np.integer,
        heads: int | np.integer,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `d_model`: the width `d` of the inputs and outputs.
        - `heads`: the number of heads `H`, which must divide `d_model`.
        - `use_bias`: whether the projections have biases.
        - `param_dtype`: dtype of the parameters (floating or complex).
        - `kernel_init`, `bias_init`: initialisers (lecun normal over the `d` inputs of each
          projection, and zeros).
        - `key`: a JAX PRNG key.

        **Raises:** `ValueError` if `d_model` is not a multiple of `heads`.
        """
        self.d_model = positive_int(d_model, "d_model")
        self.heads = positive_int(heads, "heads")
        if self.d_model % self.heads:
            raise ValueError(
                f"d_model must be a multiple of heads (each head has d_model / heads "
                f"features), got d_model={self.d_model}, heads={self.heads}."
            )
        param_dtype = inexact_dtype(param_dtype)
        d, h, dh = self.d_model, self.heads, self.head_dim
        qkey, okey, bkey = jax.random.split(key, 3)
        self.qkv_kernel = kernel_init(qkey, (d, 3 * d), param_dtype).reshape(d, 3, h, dh)
        self.out_kernel = kernel_init(okey, (d, d), param_dtype).reshape(h, dh, d)
        if use_bias:
            qkv_key, out_key = jax.random.split(bkey)
            self.qkv_bias = bias_init(qkv_key, (3, h, dh), param_dtype)
            self.out_bias = bias_init(out_key, (d,), param_dtype)
        else:
            self.qkv_bias = self.out_bias = None

    def __check_init__(self):
        check_fields(self)

    @property
    def head_dim(self) -> int:
        """`d_h = d_model / heads`."""
        return self.d_model // self.heads

    def project(
        self, x: Inexact[ArrayLike, "*sites {self.d_model}"]
    ) -> Inexact[Array, "*sites 3 {self.heads} {self.head_dim}"]:
        """Queries, keys and values `(q, k, v)` of every position, stacked on axis `-3`."""
        check_fields(self)
        x = to_param_dtype(x, self.qkv_kernel)
        kernel = self.qkv_kernel.astype(x.dtype).reshape(self.d_model, -1)
        out = jnp.matmul(x, kernel).reshape(*x.shape[:-1], 3, self.heads, self.head_dim)
        if self.qkv_bias is not None:
            out = out + _along(self.qkv_bias, out)
        return out

    def logits(
        self,
        q: Inexact[Array, "*queries {self.heads} {self.head_dim}"],
        k: Inexact[Array, "{self.heads} {self.head_dim} n_keys"],
    ) -> Real[Array, "*queries {self.heads} n_keys"]:
        r"""$s_{ij} = \operatorname{Re}(q_i \cdot \bar k_j)/\sqrt{d_h}$ for every head; the keys
        are laid out `(H, d_h, n)`."""
        scale = jnp.asarray(1 / math.sqrt(self.head_dim), jnp.finfo(q.dtype).dtype)
        if jnp.iscomplexobj(q):
            s = jnp.einsum("...hd,hdn->...hn", q.real, k.real) + jnp.einsum(
                "...hd,hdn->...hn", q.imag, k.imag
            )
        else:
            s = jnp.einsum("...hd,hdn->...hn", q, k)
        return s * scale

    def attend(
        self,
        q: Inexact[Array, "*queries {self.heads} {self.head_dim}"],
        k: Inexact[Array, "{self.heads} {self.head_dim} n_keys"],
        v: Inexact[Array, "{self.heads} {self.head_dim} n_keys"],
        mask: Bool[Array, "*queries n_keys"],
    ) -> Inexact[Array, "*queries {self.d_model}"]:
        """The output of the queries `q`, attending the keys and values allowed by `mask`
        (every query must allow at least one key), projected by `out_kernel`.

        Keys and values are laid out `(H, d_h, n)`, positions last: vmapped over chains, the
        cached step's two products are then batched matrix-vector products over `(chain,
        head)` that read the cache in place, contiguous along the positions (with
        `(n, H, d_h)` XLA transposes the whole cache at every step, 4x slower on CPU; with
        `(H, n, d_h)` the two products took 1.5x to 2x as long).
        """
        s = self.logits(q, k)
        s = jnp.where(mask[..., None, :], s, jnp.full((), -jnp.inf, s.dtype))
        # softmax, normalised after the product with the values (d_h divisions per head
        # rather than n); the shift by the maximum changes nothing but the range of exp
        s = s - lax.stop_gradient(jnp.max(s, axis=-1, keepdims=True))
        weights = jnp.exp(s)
        total = jnp.sum(weights, axis=-1)
        heads = jnp.einsum("...hn,hdn->...hd", weights.astype(v.dtype), v)
        heads = heads / total[..., None].astype(v.dtype)
        out = jnp.matmul(
            heads.reshape(*heads.shape[:-2], self.d_model),
            self.out_kernel.astype(v.dtype).reshape(self.d_model, self.d_model),
        )
        if self.out_bias is not None:
            out = out + _along(self.out_bias, out)
        return out

    def __call__(
        self, x: Inexact[ArrayLike, "n_sites {self.d_model}"]
    ) -> Inexact[Array, "n_sites {self.d_model}"]:
        """**Arguments:**

        - `x`: the inputs of one sequence, `(n, d_model)`.

        **Returns:** `(n, d_model)`; row `i` depends on rows `j <= i` only.
        """
        qkv = self.project(x)
        q = qkv[:, 0]
        k, v = jnp.transpose(qkv[:, 1], (1, 2, 0)), jnp.transpose(qkv[:, 2], (1, 2, 0))
        n = q.shape[0]
        positions = np.arange(n)
        return self.attend(q, k, v, jnp.asarray(positions[None, :] <= positions[:, None]))


class FastCausalSelfAttention(eqx.Module):
    r"""[`nqzoo.nn.CausalSelfAttention`][] with a key-value cache: one position per step.

    Holds the wrapped layer as `layer` (its `__call__` is the layer's) and, behind `cache`
    (an `eqx.nn.StateIndex`), the keys and values of every position of the sequence, two
    arrays `(heads, head_dim, n_sites)` of the parameter dtype (positions last, so that the
    products of a step read the cache in place). Step `i`
    ([`update_site`][nqzoo.nn.FastCausalSelfAttention.update_site]) projects the input of
    position $i$ once, writes its key and value into column $i$ (`dynamic_update_slice`) and
    attends over the columns $j \le i$ (a mask hides the columns $j > i$, whatever they
    hold):
    shapes are static, so it runs under `lax.scan` with a traced position, and the result
    equals row $i$ of the layer's output once positions `0..i` were fed in order.

    The per-step cost is $O(d^2 + n\,d)$: the projections of one input and one product with
    each cache (which is `n` rows long whatever `i`; the rows beyond `i` are masked).
    """

    layer: CausalSelfAttention
    n_sites: int = eqx.field(static=True)
    cache: eqx.nn.StateIndex[KVCache]

    def __init__(
        self,
        layer: CausalSelfAttention,
        n_sites: int | np.integer,
        cache: eqx.nn.StateIndex | None = None,
    ):
        """**Arguments:**

        - `layer`: the [`nqzoo.nn.CausalSelfAttention`][] to wrap.
        - `n_sites`: the length `n` of the sequences (the rows of the cache).
        - `cache`: the state index of an existing cache to use (fast models keep one per
          layer); by default a new one, holding all-zero keys and values.

        Build with `layer, state = eqx.nn.make_with_state(FastCausalSelfAttention)(attn, n)`.
        """
        self.layer = layer
        self.n_sites = positive_int(n_sites, "n_sites")
        if cache is None:
            cache = eqx.nn.StateIndex(self.empty_cache())
        self.cache = cache

    @property
    def cache_shape(self) -> tuple[int, int, int]:
        """`(heads, head_dim, n_sites)`, the shape of the keys and of the values (positions
        last: see [`attend`][nqzoo.nn.CausalSelfAttention.attend])."""
        return self.layer.heads, self.layer.head_dim, self.n_sites

    def empty_cache(self) -> KVCache:
        """All-zero keys and values (the cache that starts a sequence)."""
        zeros = jnp.zeros(self.cache_shape, self.layer.qkv_kernel.dtype)
        return zeros, zeros

    def __call__(
        self, x: Inexact[ArrayLike, "{self.n_sites} {self.layer.d_model}"]
    ) -> Inexact[Array, "{self.n_sites} {self.layer.d_model}"]:
        """The wrapped layer's full forward pass."""
        return self.layer(x)

    def update_site(
        self,
        inputs: Inexact[ArrayLike, " {self.layer.d_model}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None,
    ) -> tuple[Inexact[Array, " {self.layer.d_model}"], eqx.nn.State]:
        """One step: store the key and value of position `index`, return its output.

        The state passed in stays valid (eagerly too): a state is a value.

        **Arguments:**

        - `inputs`: the layer input at position `index`, `(d_model,)`.
        - `index`: the position, `0 <= index < n_sites` (a traced integer is fine).
        - `state`: the state holding this layer's cache.

        **Returns:** `(output (d_model,), state)`, the new state holding the new cache.

        **Raises:** `TypeError` if `state` is not an `eqx.nn.State`; `ValueError` if it holds
        no cache for this layer or one of another structure, shape or dtype (a state made for
        another model), or was retired by an eager `state.set`; or if a concrete `index` is
        out of range.
        """
        layer = self.layer
        keys, values = self.read_cache(state)
        index = site_index(index, self.n_sites)
        qkv = layer.project(inputs)
        q, k, v = qkv[0], qkv[1], qkv[2]
        zero = np.int32(0)
        keys = lax.dynamic_update_slice(keys, k[..., None].astype(keys.dtype), (zero, zero, index))
        values = lax.dynamic_update_slice(
            values, v[..., None].astype(values.dtype), (zero, zero, index)
        )
        mask = jnp.arange(self.n_sites, dtype=np.int32) <= index
        out = layer.attend(q, keys, values, mask)
        # `set` retires the State it is called on: set on a copy, keep the caller's usable
        return out, jax.tree.map(lambda leaf: leaf, state).set(self.cache, (keys, values))

    def read_cache(self, state: eqx.nn.State | None) -> KVCache:
        """This layer's `(keys, values)` from `state`, checked against `cache_shape` and the
        parameter dtype (see `update_site` for the errors)."""
        name = type(self).__name__
        marker = self.cache.marker
        where = f"{name} ({marker})" if isinstance(marker, str) else name
        fix = (
            "Pass the state built together with this model or layer: `model, state = "
            "eqx.nn.make_with_state(Model)(...)` (any state of that structure works: the "
            "sampler starts every chain from an all-zero cache)."
        )
        if not isinstance(state, eqx.nn.State):
            raise TypeError(
                f"{name}.update_site needs the layer's key-value cache state, got state="
                f"{type(state).__name__}. Build the layer (or model) with "
                "`model, state = eqx.nn.make_with_state(Cls)(...)` and pass `state`."
            )
        try:
            cache = state.get(self.cache)
        except KeyError:
            raise ValueError(
                f"The state has no key-value cache for the layer {where}: it was built for "
                f"another model or layer (e.g. with fewer layers, or another class). {fix}"
            ) from None
        except ValueError as err:  # Equinox's "Attempted to use old state"
            raise ValueError(
                f"The state given to {where} was retired: an eager `state.set(...)` "
                "invalidates the State it is called on. Pass the state that call returned, "
                f"or a fresh one. {fix}"
            ) from err
        dtype = jnp.dtype(self.layer.qkv_kernel.dtype)
        expected = f"(keys, values), each {dtype.name}{list(self.cache_shape)}"
        ok = isinstance(cache, tuple) and len(cache) == 2
        if ok:
            ok = all(
                jnp.shape(c) == self.cache_shape and jnp.result_type(c) == dtype for c in cache
            )
        if not ok:
            leaves = jax.tree.leaves(cache)
            got = ", ".join(f"{jnp.result_type(c).name}{list(jnp.shape(c))}" for c in leaves)
            raise ValueError(
                f"The state holds the key-value cache [{got}] for the layer {where}, which "
                f"expects {expected}: the state was built for another model or layer (other "
                f"number of sites, d_model, heads or param_dtype). {fix}"
            )
        return cache


def split_gelu(x: Inexact[Array, "*shape"]) -> Inexact[Array, "*shape"]:
    r"""GELU (tanh form) of a real array; of the real and imaginary parts separately for a
    complex one, $\mathrm{gelu}(\operatorname{Re} z) + i\,\mathrm{gelu}(\operatorname{Im} z)$.

    The complex GELU $\frac z2(1 + \tanh(\cdot))$ has the poles of $\tanh$ on the imaginary
    axis; the split form is finite everywhere and equals GELU on real inputs.
    """
    if jnp.iscomplexobj(x):
        return lax.complex(
            jax.nn.gelu(x.real, approximate=True), jax.nn.gelu(x.imag, approximate=True)
        )
    return jax.nn.gelu(x, approximate=True)


class TransformerBlock(eqx.Module):
    r"""A pre-norm Transformer decoder block (GPT-2; Xiong et al. 2020):

    $$x \leftarrow x + \mathrm{MHA}(\mathrm{LN}_1(x)), \qquad
    x \leftarrow x + W_2\,\mathrm{gelu}(W_1\,\mathrm{LN}_2(x) + b_1) + b_2,$$

    with [`nqzoo.nn.CausalSelfAttention`][] as MHA, [`nqzoo.nn.LayerNorm`][] as LN, and an
    MLP of width `mlp_ratio * d_model` ([`nqzoo.nn.split_gelu`][] for complex parameters):
    `mlp_in_kernel` `(d, w)`, `mlp_in_bias` `(w,)`, `mlp_out_kernel` `(w, d)`,
    `mlp_out_bias` `(d,)`.

    ??? cite "Reference"

        ```bibtex
        @inproceedings{xiong2020layer,
          title={On Layer Normalization in the Transformer Architecture},
          author={Xiong, Ruibin and Yang, Yunchang and He, Di and Zheng, Kai and
                  Zheng, Shuxin and Xing, Chen and Zhang, Huishuai and Lan, Yanyan and
                  Wang, Liwei and Liu, Tieyan},
          booktitle={International Conference on Machine Learning}, pages={10524--10533},
          year={2020}
        }
        ```
    """

    attention_norm: LayerNorm
    attention: CausalSelfAttention
    mlp_norm: LayerNorm
    mlp_in_kernel: Inexact[Array, "{self.d_model} {self.mlp_width}"]
    mlp_in_bias: Inexact[Array, " {self.mlp_width}"]
    mlp_out_kernel: Inexact[Array, "{self.mlp_width} {self.d_model}"]
    mlp_out_bias: Inexact[Array, " {self.d_model}"]
    mlp_ratio: int = eqx.field(static=True)

    def __init__(
        self,
        d_model: int | np.integer,
        heads: int | np.integer,
        mlp_ratio: int | np.integer = 4,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `d_model`: the width of the residual stream.
        - `heads`: attention heads (dividing `d_model`).
        - `mlp_ratio`: the MLP's hidden width is `mlp_ratio * d_model`.
        - `param_dtype`: dtype of the parameters (floating or complex).
        - `kernel_init`, `bias_init`: initialisers of every kernel and bias.
        - `key`: a JAX PRNG key.
        """
        self.mlp_ratio = positive_int(mlp_ratio, "mlp_ratio")
        akey, ikey, okey, bkey1, bkey2 = jax.random.split(key, 5)
        self.attention = CausalSelfAttention(
            d_model, heads, param_dtype=param_dtype, kernel_init=kernel_init,
            bias_init=bias_init, key=akey,
        )  # fmt: skip
        param_dtype = inexact_dtype(param_dtype)
        d, w = self.attention.d_model, self.mlp_ratio * self.attention.d_model
        self.attention_norm = LayerNorm(d, param_dtype=param_dtype)
        self.mlp_norm = LayerNorm(d, param_dtype=param_dtype)
        self.mlp_in_kernel = kernel_init(ikey, (d, w), param_dtype)
        self.mlp_in_bias = bias_init(bkey1, (w,), param_dtype)
        self.mlp_out_kernel = kernel_init(okey, (w, d), param_dtype)
        self.mlp_out_bias = bias_init(bkey2, (d,), param_dtype)

    def __check_init__(self):
        check_fields(self)

    @property
    def mlp_width(self) -> int:
        """`mlp_ratio * d_model`."""
        return self.mlp_ratio * self.d_model

    @property
    def d_model(self) -> int:
        return self.attention.d_model

    def feed_forward(
        self, x: Inexact[Array, "*sites {self.d_model}"]
    ) -> Inexact[Array, "*sites {self.d_model}"]:
        """The MLP half with its residual: `x + W2 gelu(W1 LN2(x) + b1) + b2`."""
        check_fields(self)
        h = jnp.matmul(self.mlp_norm(x), self.mlp_in_kernel)
        h = split_gelu(h + _along(self.mlp_in_bias, h))
        h = jnp.matmul(h, self.mlp_out_kernel)
        return x + h + _along(self.mlp_out_bias, h)

    def __call__(
        self, x: Inexact[Array, "n_sites {self.d_model}"]
    ) -> Inexact[Array, "n_sites {self.d_model}"]:
        """**Arguments:**

        - `x`: the residual stream of one sequence, `(n, d_model)`.

        **Returns:** `(n, d_model)`; row `i` depends on rows `j <= i` only.
        """
        x = x + self.attention(self.attention_norm(x))
        return self.feed_forward(x)
