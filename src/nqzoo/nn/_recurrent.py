r"""Recurrent cells: the update of one site's hidden memory from its input and the hidden
memories of its previous neighbours (NetKet's `netket.experimental.nn.rnn` cells).

A cell acts on ONE site of ONE configuration: `inputs (F_in,)`, the cell memory carried from
the previous site `(F,)` and the hidden memories of the site's `n_neighbors` previous
neighbours `(n_neighbors, F)`; it returns the new cell memory and the new hidden memory, which
is also the site's output. The recurrent networks of [`nqzoo.models`][] scan a cell over the
sites in their autoregressive order. Kernels act on the concatenation
$v = [x, h_{n_1}, \dots, h_{n_m}]$ of the input and the neighbours' hidden memories (in the
order of the neighbours), so a kernel is `(F_in + n_neighbors F, ·)` as in NetKet.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from .._custom_types import Initializer
from .._misc import inexact_dtype, int_at_least, positive_int
from .._typecheck import check_fields
from . import initializers
from ._misc import to_param_dtype


class AbstractRNNCell(eqx.Module):
    """A recurrent cell (NetKet's `RNNCell`): `(inputs, cell_mem, hidden) -> (cell_mem, h)`.

    Subclasses hold their parameters and the static widths `in_features`, `features` and
    `n_neighbors`, and implement [`__call__`][nqzoo.nn.AbstractRNNCell.__call__]. A cell
    without a cell memory (GRU, plain) returns `cell_mem` unchanged.
    """

    in_features: eqx.AbstractVar[int]
    features: eqx.AbstractVar[int]
    n_neighbors: eqx.AbstractVar[int]

    def __check_init__(self):
        check_fields(self)

    @property
    def concat_features(self) -> int:
        """Width of the concatenated input `[x, h_1, …, h_m]`: `F_in + n_neighbors F`."""
        return self.in_features + self.n_neighbors * self.features

    @abc.abstractmethod
    def __call__(
        self,
        inputs: Inexact[ArrayLike, " {self.in_features}"],
        cell_mem: Inexact[ArrayLike, " {self.features}"],
        hidden: Inexact[ArrayLike, "{self.n_neighbors} {self.features}"],
    ) -> tuple[Inexact[Array, " {self.features}"], Inexact[Array, " {self.features}"]]:
        """One site.

        **Arguments:**

        - `inputs`: the site's input `(F_in,)`.
        - `cell_mem`: the cell memory carried from the previous site `(F,)` (zeros at the
          first site).
        - `hidden`: the hidden memories of the previous neighbours `(n_neighbors, F)` (zeros
          for a missing neighbour).

        **Returns:** `(new cell memory (F,), new hidden memory (F,))`.
        """


def _cast(inputs: ArrayLike, hidden: ArrayLike, param: Array) -> tuple[Array, Array]:
    """`inputs` and `hidden` in the parameters' dtype."""
    return to_param_dtype(inputs, param), to_param_dtype(hidden, param)


def _affine(inputs: Array, hidden: Array, kernel: Array, bias: Array) -> Array:
    """`[inputs, hidden.ravel()] @ kernel + bias`. A single input feature (the first layer's
    local value) enters as a broadcast multiply instead of a row of the product, which XLA
    fuses with the gates (no concatenated copy per step)."""
    hidden = hidden.reshape(-1)
    if inputs.shape[-1] == 1:
        return hidden @ kernel[1:] + inputs * kernel[0] + bias
    return jnp.concatenate([inputs, hidden]) @ kernel + bias


def _half_tanh(a: Array) -> Array:
    """`tanh(a / 2)`, from which the sigmoid is `(1 + tanh(a / 2)) / 2`: the same function as
    `jax.nn.sigmoid` (absolute difference ~1e-16), at a quarter of its cost on CPU, where
    XLA's vectorised `tanh` is much cheaper than the exponential and division of the
    logistic function (the gates dominate the cost of a sampling step)."""
    return jnp.tanh(a * 0.5)


def _sigmoid(a: Array) -> Array:
    return _half_tanh(a) * 0.5 + 0.5


def _widths(in_features, features, n_neighbors, param_dtype) -> tuple[int, int, int, object]:
    return (
        positive_int(in_features, "in_features"),
        positive_int(features, "features"),
        int_at_least(n_neighbors, "n_neighbors", 0),
        inexact_dtype(param_dtype),
    )


class SimpleRNNCell(AbstractRNNCell):
    r"""The plain (Elman) recurrent cell, $h = \tanh(v W + b)$ with
    $v = [x, h_{n_1}, \dots, h_{n_m}]$; it has no cell memory.

    Kernel `(F_in + n_neighbors F, F)`, bias `(F,)`. NetKet has no plain cell; this one
    follows the conventions of its LSTM and GRU cells.
    """

    kernel: Inexact[Array, "{self.concat_features} {self.features}"]
    bias: Inexact[Array, " {self.features}"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    n_neighbors: int = eqx.field(static=True)

    def __init__(
        self,
        in_features: int | np.integer,
        features: int | np.integer,
        n_neighbors: int | np.integer = 1,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = jax.nn.initializers.orthogonal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_features`: width of the site input `F_in`.
        - `features`: width of the hidden memory `F`.
        - `n_neighbors`: number of previous neighbours whose hidden memories are read.
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`, `bias_init`: initialisers (`jax.nn.initializers.orthogonal()` and
          zeros, NetKet's defaults).
        - `key`: a JAX PRNG key.
        """
        self.in_features, self.features, self.n_neighbors, dtype = _widths(
            in_features, features, n_neighbors, param_dtype
        )
        kkey, bkey = jax.random.split(key)
        self.kernel = kernel_init(kkey, (self.concat_features, self.features), dtype)
        self.bias = bias_init(bkey, (self.features,), dtype)

    def __call__(
        self,
        inputs: Inexact[ArrayLike, " {self.in_features}"],
        cell_mem: Inexact[ArrayLike, " {self.features}"],
        hidden: Inexact[ArrayLike, "{self.n_neighbors} {self.features}"],
    ) -> tuple[Inexact[Array, " {self.features}"], Inexact[Array, " {self.features}"]]:
        """`(cell_mem, tanh(v W + b))`; see [`nqzoo.nn.AbstractRNNCell.__call__`][]."""
        inputs, hidden = _cast(inputs, hidden, self.kernel)
        h = jnp.tanh(_affine(inputs, hidden, self.kernel, self.bias))
        return to_param_dtype(cell_mem, self.kernel), h


class LSTMCell(AbstractRNNCell):
    r"""Long short-term memory cell (NetKet's `LSTMCell`).

    $$(i, f, \tilde g, o) = \sigma(v W + b), \quad g = 2\tilde g - 1, \quad
    c' = f \odot c + i \odot g, \quad h' = o \odot \tanh c'$$

    with $v = [x, h_{n_1}, \dots, h_{n_m}]$, $\sigma$ the logistic sigmoid (so
    $g = \tanh$ of half the pre-activation), the gates the four consecutive blocks of width
    $F$ of the output. Kernel `(F_in + n_neighbors F, 4F)`, bias `(4F,)`. The sigmoid is
    evaluated as $(1 + \tanh(a/2))/2$ (the same function to ~1e-16, and much cheaper on CPU).

    ??? cite "Reference"

        ```bibtex
        @article{hochreiter1997long,
          title={Long short-term memory},
          author={Hochreiter, Sepp and Schmidhuber, J{\"u}rgen},
          journal={Neural Computation}, volume={9}, number={8}, pages={1735--1780},
          year={1997}
        }
        ```
    """

    kernel: Inexact[Array, "{self.concat_features} {4*self.features}"]
    bias: Inexact[Array, " {4*self.features}"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    n_neighbors: int = eqx.field(static=True)

    def __init__(
        self,
        in_features: int | np.integer,
        features: int | np.integer,
        n_neighbors: int | np.integer = 1,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = jax.nn.initializers.orthogonal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_features`: width of the site input `F_in`.
        - `features`: width of the hidden and cell memories `F`.
        - `n_neighbors`: number of previous neighbours whose hidden memories are read.
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`, `bias_init`: initialisers (`jax.nn.initializers.orthogonal()` and
          zeros, NetKet's defaults).
        - `key`: a JAX PRNG key.
        """
        self.in_features, self.features, self.n_neighbors, dtype = _widths(
            in_features, features, n_neighbors, param_dtype
        )
        kkey, bkey = jax.random.split(key)
        self.kernel = kernel_init(kkey, (self.concat_features, 4 * self.features), dtype)
        self.bias = bias_init(bkey, (4 * self.features,), dtype)

    def __call__(
        self,
        inputs: Inexact[ArrayLike, " {self.in_features}"],
        cell_mem: Inexact[ArrayLike, " {self.features}"],
        hidden: Inexact[ArrayLike, "{self.n_neighbors} {self.features}"],
    ) -> tuple[Inexact[Array, " {self.features}"], Inexact[Array, " {self.features}"]]:
        """`(c', h')` as above; see [`nqzoo.nn.AbstractRNNCell.__call__`][]."""
        inputs, hidden = _cast(inputs, hidden, self.kernel)
        # one tanh for the four gates: sigma(a) = (1 + tanh(a/2)) / 2 and 2 sigma(a) - 1 =
        # tanh(a/2)
        t = _half_tanh(_affine(inputs, hidden, self.kernel, self.bias))
        i, f, g, o = jnp.split(t, 4)
        i, f, o = i * 0.5 + 0.5, f * 0.5 + 0.5, o * 0.5 + 0.5
        c = f * to_param_dtype(cell_mem, self.kernel) + i * g
        return c, o * jnp.tanh(c)


class GRU1DCell(AbstractRNNCell):
    r"""Gated recurrent unit cell with ONE previous neighbour (NetKet's `GRU1DCell`).

    $$(r, z) = \sigma([x, h] W_{rz} + b_{rz}), \quad
    n = \tanh([x, r \odot h] W_n + b_n), \quad h' = (1 - z) \odot n + z \odot h,$$

    with $h$ the hidden memory of the previous neighbour. It has no cell memory. Kernels
    `rz_kernel (F_in + F, 2F)` and `n_kernel (F_in + F, F)`, biases `rz_bias (2F,)` and
    `n_bias (F,)`.

    ??? cite "Reference"

        ```bibtex
        @inproceedings{cho2014learning,
          title={Learning phrase representations using {RNN} encoder-decoder for statistical
                 machine translation},
          author={Cho, Kyunghyun and van Merri{\"e}nboer, Bart and Gulcehre, Caglar and
                  Bahdanau, Dzmitry and Bougares, Fethi and Schwenk, Holger and Bengio, Yoshua},
          booktitle={EMNLP}, pages={1724--1734}, year={2014}
        }
        ```
    """

    rz_kernel: Inexact[Array, "{self.concat_features} {2*self.features}"]
    rz_bias: Inexact[Array, " {2*self.features}"]
    n_kernel: Inexact[Array, "{self.concat_features} {self.features}"]
    n_bias: Inexact[Array, " {self.features}"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    n_neighbors: int = eqx.field(static=True)

    def __init__(
        self,
        in_features: int | np.integer,
        features: int | np.integer,
        n_neighbors: int | np.integer = 1,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = jax.nn.initializers.orthogonal(),
        bias_init: Initializer = initializers.zeros,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_features`: width of the site input `F_in`.
        - `features`: width of the hidden memory `F`.
        - `n_neighbors`: must be 1 (the gates act elementwise on ONE neighbour's memory).
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`, `bias_init`: initialisers (`jax.nn.initializers.orthogonal()` and
          zeros, NetKet's defaults).
        - `key`: a JAX PRNG key.

        **Raises:** `ValueError` if `n_neighbors != 1` (for 2D orderings, whose sites have
        more previous neighbours, use [`nqzoo.nn.LSTMCell`][] or [`nqzoo.nn.SimpleRNNCell`][]).
        """
        self.in_features, self.features, self.n_neighbors, dtype = _widths(
            in_features, features, n_neighbors, param_dtype
        )
        if self.n_neighbors != 1:
            raise ValueError(
                f"GRU1DCell reads exactly one previous neighbour, got n_neighbors="
                f"{n_neighbors!r}: a GRU network needs an ordering whose prev_neighbors has "
                "one column (a chain); for 2D orderings use an LSTM or a plain cell."
            )
        keys = jax.random.split(key, 4)
        width = self.concat_features
        self.rz_kernel = kernel_init(keys[0], (width, 2 * self.features), dtype)
        self.rz_bias = bias_init(keys[1], (2 * self.features,), dtype)
        self.n_kernel = kernel_init(keys[2], (width, self.features), dtype)
        self.n_bias = bias_init(keys[3], (self.features,), dtype)

    def __call__(
        self,
        inputs: Inexact[ArrayLike, " {self.in_features}"],
        cell_mem: Inexact[ArrayLike, " {self.features}"],
        hidden: Inexact[ArrayLike, "{self.n_neighbors} {self.features}"],
    ) -> tuple[Inexact[Array, " {self.features}"], Inexact[Array, " {self.features}"]]:
        """`(cell_mem, h')` as above; see [`nqzoo.nn.AbstractRNNCell.__call__`][]."""
        inputs, hidden = _cast(inputs, hidden, self.rz_kernel)
        h = hidden[0]
        r, z = jnp.split(_sigmoid(_affine(inputs, h, self.rz_kernel, self.rz_bias)), 2)
        n = jnp.tanh(_affine(inputs, r * h, self.n_kernel, self.n_bias))
        one = jnp.asarray(1, z.dtype)
        return to_param_dtype(cell_mem, self.rz_kernel), (one - z) * n + z * h
