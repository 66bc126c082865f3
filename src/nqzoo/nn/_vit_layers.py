"""The layers of the Vision Transformer wave function: layer normalisation, factored
(positional) attention and the pre-norm encoder block."""

import functools
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._misc import inexact_dtype, positive_int, positive_ints
from .._typecheck import check_fields
from . import initializers
from ._activations import gelu
from ._attention import LayerNorm
from ._dense import Dense


@functools.lru_cache(maxsize=64)
def relative_patch_index(patch_grid: tuple[int, ...]) -> np.ndarray:
    """The `(n, n)` table `idx[i, j]` = flat index of the periodic displacement
    `(r_i - r_j) mod patch_grid` of patches `i`, `j` on the patch lattice (row-major).

    **Arguments:**

    - `patch_grid`: the number of patches along each axis.

    **Returns:** an int array of shape `(n, n)`, `n = prod(patch_grid)`.
    """
    coords = np.indices(patch_grid).reshape(len(patch_grid), -1).T  # (n, D)
    disp = (coords[:, None, :] - coords[None, :, :]) % np.asarray(patch_grid)
    idx = np.ravel_multi_index(tuple(np.moveaxis(disp, -1, 0)), patch_grid)
    idx.setflags(write=False)
    return idx


class FactoredAttention(eqx.Module):
    r"""Multi-head factored (positional) attention on a periodic lattice of `n` patches.

    The attention weights depend only on the relative position of the two patches, not on
    their content (no queries, no keys): for head $h = 1, \dots, H$ with $d_h = d / H$,

    $$y_i = W_O \big[\,\textstyle\sum_j \alpha^1_{r_i - r_j} v^1_j\,;\ \dots\,;\
      \sum_j \alpha^H_{r_i - r_j} v^H_j\,\big] + b_O,
      \qquad v_j = W_V x_j + b_V = [v^1_j; \dots; v^H_j],$$

    with $r_i$ the position of patch $i$ on the patch lattice and $r_i - r_j$ taken modulo
    its extent (in 2D the 2D displacement). The map is equivariant under translations of the
    patch lattice: shifting the input patches shifts the output patches.
    """

    alpha: Float[Array, "{self.heads} {self.n_patches}"]
    value: Dense
    output: Dense
    patch_grid: tuple[int, ...] = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)

    def __init__(
        self,
        patch_grid: int | np.integer | Sequence[float | int | np.floating | np.integer],
        d_model: int | np.integer,
        heads: int | np.integer,
        param_dtype: jnp.dtype | type = jnp.float64,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `patch_grid`: the number of patches along each axis of the (periodic) patch
          lattice, e.g. `(4,)` or `(2, 2)`.
        - `d_model`: width `d` of the patch vectors.
        - `heads`: number of heads `H`; must divide `d_model`.
        - `param_dtype`: a real floating dtype.
        - `key`: a JAX PRNG key.

        `alpha` starts normal with variance `1/n`; `W_V`, `W_O` are LeCun-normal, the biases
        zero.
        """
        self.patch_grid = positive_ints(patch_grid, "patch_grid")
        self.d_model = positive_int(d_model, "d_model")
        self.heads = positive_int(heads, "heads")
        if self.d_model % self.heads:
            raise ValueError(
                f"d_model must be divisible by heads (each head has d_model / heads "
                f"features), got d_model={self.d_model} and heads={self.heads}."
            )
        dtype = inexact_dtype(param_dtype, real=True, hint=" for the ViT's real parameters")
        akey, vkey, okey = jax.random.split(key, 3)
        n = self.n_patches
        self.alpha = initializers.normal(1 / math.sqrt(n))(akey, (self.heads, n), dtype)
        self.value = Dense(self.d_model, self.d_model, param_dtype=dtype, key=vkey)
        self.output = Dense(self.d_model, self.d_model, param_dtype=dtype, key=okey)

    def __check_init__(self):
        check_fields(self)

    @property
    def n_patches(self) -> int:
        """Number of patches `n = prod(patch_grid)`."""
        return math.prod(self.patch_grid)

    def weights(self) -> Float[Array, "{self.heads} {self.n_patches} {self.n_patches}"]:
        """**Returns:** the attention matrices `A[h, i, j] = alpha[h, (r_i - r_j) mod grid]`."""
        check_fields(self)
        return self.alpha[:, relative_patch_index(self.patch_grid)]

    def __call__(
        self, x: Float[Array, "*batch {self.n_patches} {self.d_model}"]
    ) -> Float[Array, "*batch {self.n_patches} {self.d_model}"]:
        """**Arguments:**

        - `x`: patch vectors, `(*batch, n, d)`.

        **Returns:** `y`, `(*batch, n, d)`.
        """
        check_fields(self)
        v = self.value(x)
        v = v.reshape(*v.shape[:-1], self.heads, self.d_model // self.heads)
        y = jnp.einsum("hij,...jhk->...ihk", self.weights().astype(v.dtype), v)
        return self.output(y.reshape(x.shape))


class ViTEncoderBlock(eqx.Module):
    r"""A pre-norm encoder block of the ViT wave function:

    $$x \leftarrow x + \mathrm{FA}(\mathrm{LN}_1(x)), \qquad
      x \leftarrow x + W_2\,\mathrm{gelu}(W_1 \mathrm{LN}_2(x) + b_1) + b_2,$$

    with FA the [`nqzoo.nn.FactoredAttention`][] and a feed-forward network of hidden width
    `mlp_ratio * d_model`, applied to every patch.
    """

    norm1: LayerNorm
    attention: FactoredAttention
    norm2: LayerNorm
    hidden: Dense
    out: Dense

    def __init__(
        self,
        patch_grid: int | np.integer | Sequence[float | int | np.floating | np.integer],
        d_model: int | np.integer,
        heads: int | np.integer,
        mlp_ratio: int | np.integer = 4,
        param_dtype: jnp.dtype | type = jnp.float64,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `patch_grid`, `d_model`, `heads`: as [`nqzoo.nn.FactoredAttention`][].
        - `mlp_ratio`: hidden width of the feed-forward network in units of `d_model`.
        - `param_dtype`: a real floating dtype.
        - `key`: a JAX PRNG key.
        """
        akey, hkey, okey = jax.random.split(key, 3)
        self.attention = FactoredAttention(patch_grid, d_model, heads, param_dtype, key=akey)
        d = self.attention.d_model
        width = d * positive_int(mlp_ratio, "mlp_ratio")
        dtype = self.attention.alpha.dtype
        self.norm1 = LayerNorm(d, param_dtype=dtype)
        self.norm2 = LayerNorm(d, param_dtype=dtype)
        self.hidden = Dense(d, width, param_dtype=dtype, key=hkey)
        self.out = Dense(width, d, param_dtype=dtype, key=okey)

    def __check_init__(self):
        d = self.attention.d_model
        widths = (self.norm1.features, self.norm2.features, self.hidden.in_features)
        if widths != (d, d, d) or self.out.in_features != self.hidden.out_features or (
            self.out.out_features != d
        ):
            raise ValueError(
                f"ViTEncoderBlock layers do not chain at d_model={d}: norm1/norm2/hidden in "
                f"{widths}, hidden out {self.hidden.out_features}, out "
                f"{(self.out.in_features, self.out.out_features)}."
            )

    def __call__(
        self, x: Float[Array, "*batch n_patches d_model"]
    ) -> Float[Array, "*batch n_patches d_model"]:
        """**Arguments:**

        - `x`: patch vectors, `(*batch, n, d)`.

        **Returns:** the block's output, `(*batch, n, d)`.
        """
        x = x + self.attention(self.norm1(x))
        return x + self.out(gelu(self.hidden(self.norm2(x))))
