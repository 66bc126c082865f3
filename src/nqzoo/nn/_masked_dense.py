"""The masked dense layer over a chain and its fast (cached) wrapper."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact, Int, PRNGKeyArray

from .._custom_types import Initializer
from .._misc import inexact_dtype, positive_int, site_index
from .._typecheck import check_fields
from . import initializers
from ._misc import AbstractFastLayer, init_bias, masked_init, to_param_dtype


def dense_mask(exclusive: bool, i, j):
    """Whether input site `i` feeds output site `j`: `i <= j - exclusive` (NetKet's triu)."""
    return i <= j - int(exclusive)


class MaskedDense1D(eqx.Module):
    r"""Dense layer over a chain with an autoregressive mask.

    $$y_{jo} = \sum_{i \le j - e} \sum_a x_{ia} K_{(i F_\text{in} + a),(j F_\text{out} + o)}
    + b_{jo},$$

    $e$ = `exclusive`. The kernel is stored `(N·F_in, N·F_out)` and the bias per site,
    `(N, F_out)`, as in NetKet (`netket.nn.MaskedDense1D`, whose parameters copy over
    unchanged); masked entries are multiplied by zero in the forward pass. The layer acts on
    ONE configuration `(N, F_in)`; models `vmap` over batch axes.
    """

    kernel: Inexact[Array, "{self.n_sites*self.in_features} {self.n_sites*self.out_features}"]
    bias: Inexact[Array, "{self.n_sites} {self.out_features}"] | None
    n_sites: int = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    exclusive: bool = eqx.field(static=True)

    def __init__(
        self,
        n_sites: int | np.integer,
        in_features: int | np.integer,
        out_features: int | np.integer,
        exclusive: bool,
        use_bias: bool = True,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.lecun_normal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `n_sites`: number of sites `N`.
        - `in_features`, `out_features`: feature widths per site.
        - `exclusive`: if true, site `j` sees only sites `< j` (first layer of a network).
        - `use_bias`: whether to add the per-site bias.
        - `param_dtype`: dtype of the parameters, floating or complex (an integer dtype is
          refused).
        - `kernel_init`: initialiser, wrapped with NetKet's mask correction
          `sqrt(mask.size / mask.sum()) * mask * kernel_init(...)`.
        - `bias_init`: initialiser of the bias (zeros by default).
        - `key`: a JAX PRNG key.
        """
        self.n_sites = positive_int(n_sites, "n_sites")
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.exclusive = bool(exclusive)
        param_dtype = inexact_dtype(param_dtype)
        kkey, bkey = jax.random.split(key)
        shape = (self.n_sites * self.in_features, self.n_sites * self.out_features)
        self.kernel = masked_init(kernel_init, self.mask(), kkey, shape, param_dtype)
        self.bias = init_bias(
            bias_init, use_bias, bkey, (self.n_sites, self.out_features), param_dtype
        )

    def __check_init__(self):
        check_fields(self)

    def mask(self) -> np.ndarray:
        """The `(N F_in, N F_out)` 0/1 mask of the kernel."""
        i = np.arange(self.n_sites)
        return np.kron(
            dense_mask(self.exclusive, i[:, None], i[None, :]),
            np.ones((self.in_features, self.out_features)),
        )

    def site_output(
        self,
        inputs: Inexact[Array, "{self.n_sites} {self.in_features}"],
        index: Int[ArrayLike, ""],
    ) -> Inexact[Array, " {self.out_features}"]:
        """Output at site `index` from the inputs of every site (masked sites are ignored)."""
        kernel4 = self.kernel.reshape(
            self.n_sites, self.in_features, self.n_sites, self.out_features
        )
        index = site_index(index, self.n_sites)
        column = lax.dynamic_index_in_dim(kernel4, index, axis=2, keepdims=False)
        allowed = dense_mask(self.exclusive, jnp.arange(self.n_sites, dtype=index.dtype), index)
        column = jnp.where(allowed[:, None, None], column, jnp.zeros((), column.dtype))
        out = to_param_dtype(inputs, column).reshape(-1) @ column.reshape(-1, self.out_features)
        if self.bias is not None:
            out = out + lax.dynamic_index_in_dim(self.bias, index, axis=0, keepdims=False)
        return out

    def __call__(
        self, x: Inexact[ArrayLike, "{self.n_sites} {self.in_features}"]
    ) -> Inexact[Array, "{self.n_sites} {self.out_features}"]:
        """**Arguments:**

        - `x`: the inputs of one configuration, `(N, F_in)`.

        **Returns:** `(N, F_out)`, output `j` depending on input sites `i <= j - exclusive`.
        """
        check_fields(self)
        kernel = jnp.where(self.mask(), self.kernel, jnp.zeros((), self.kernel.dtype))
        y = to_param_dtype(x, self.kernel).reshape(-1) @ kernel
        y = y.reshape(self.n_sites, self.out_features)
        if self.bias is not None:
            y = y + self.bias
        return y


class FastMaskedDense1D(AbstractFastLayer):
    """[`nqzoo.nn.MaskedDense1D`][] with a cache of the inputs of every site, `(N, F_in)`.

    Holds the wrapped layer as `layer` (its `__call__` is the layer's) and the cache behind
    `cache`, an `eqx.nn.StateIndex`. A step reads one kernel column `K[:, :, index, :]` with
    `dynamic_index_in_dim`, so it runs under `jax.jit` and `lax.scan` with a traced index
    (NetKet's fast dense layer does not); its cost is `O(N F_in F_out)`, inherent to a dense
    layer.
    """

    layer: MaskedDense1D
    cache: eqx.nn.StateIndex[Inexact[Array, "{self.layer.n_sites} {self.layer.in_features}"]]

    def __init__(self, layer: MaskedDense1D, cache: eqx.nn.StateIndex | None = None):
        """**Arguments:**

        - `layer`: the [`nqzoo.nn.MaskedDense1D`][] to wrap.
        - `cache`: the state index of an existing cache to use (fast models keep one per
          layer); by default a new one, holding an all-zero cache of the layer's dtype.

        Build with `layer, state = eqx.nn.make_with_state(FastMaskedDense1D)(dense)`.
        """
        self.layer = layer
        if cache is None:
            cache = eqx.nn.StateIndex(self.empty_cache())
        self.cache = cache

    @property
    def cache_shape(self) -> tuple[int, int]:
        """`(N, F_in)`: the input of every site."""
        return self.layer.n_sites, self.layer.in_features

    @property
    def n_sites(self) -> int:
        """The chain length `N` of the wrapped layer."""
        return self.layer.n_sites

    def step(self, inputs: Array, index: Array, cache: Array) -> tuple[Array, Array]:
        # store the input of site `index - exclusive` (site -1 writes zeros at site 0, which
        # site 0's own input overwrites next), read kernel column `index`
        site = lax.max(index - int(self.layer.exclusive), np.int32(0))
        cache = lax.dynamic_update_slice(cache, inputs[None], (site, np.int32(0)))
        return self.layer.site_output(cache, index), cache
