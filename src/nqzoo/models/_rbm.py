import jax
import jax.numpy as jnp
import equinox as eqx
from jaxtyping import Array, ArrayLike, Inexact, Num, PRNGKeyArray

from .._checks import check_fields
from .._custom_types import Activation, Initializer
from ..hilbert import AbstractDiscreteHilbert
from ..nn import initializers
from ..nn._activations import log_cosh


def _n_hidden(alpha: float | int, n_visible: int, argname: str = "alpha") -> int:
    if isinstance(alpha, bool) or not isinstance(alpha, float | int) or not alpha > 0:
        raise ValueError(f"{argname} must be a positive number, got {argname}={alpha!r}.")
    n_hidden = int(alpha * n_visible)
    if n_hidden < 1:
        raise ValueError(
            f"{argname}={alpha!r} with {n_visible} visible units gives int({alpha!r} * "
            f"{n_visible}) = 0 hidden units; use {argname} >= {1 / n_visible:.3g}."
        )
    return n_hidden


class RBM(eqx.Module):
    r"""Restricted Boltzmann machine with the hidden units traced out.

    $$\log\psi(x) = \sum_{j=1}^{M} g\Big(\sum_i x_i W_{ij} + b_j\Big) + \sum_i a_i x_i,$$

    with $g$ = [`nqzoo.nn.log_cosh`][] by default and $M = \lfloor\alpha N\rfloor$ hidden units.
    With complex `param_dtype` the model is holomorphic in its parameters.
    Parameters match NetKet's `RBM` (`Dense/kernel` = `kernel`, `Dense/bias` = `hidden_bias`,
    `visible_bias`).

    ??? cite "Reference"

        ```bibtex
        @article{carleo2017solving,
          title={Solving the quantum many-body problem with artificial neural networks},
          author={Carleo, Giuseppe and Troyer, Matthias},
          journal={Science}, volume={355}, number={6325}, pages={602--606}, year={2017}
        }
        ```
    """

    kernel: Inexact[Array, "{self.hilbert.size} {self.n_hidden}"]
    hidden_bias: Inexact[Array, "{self.n_hidden}"] | None
    visible_bias: Inexact[Array, "{self.hilbert.size}"] | None
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    alpha: float | int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)

    def __init__(
        self,
        hilbert: AbstractDiscreteHilbert,
        alpha: float | int = 1,
        use_hidden_bias: bool = True,
        use_visible_bias: bool = True,
        activation: Activation = log_cosh,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.normal(0.01),
        hidden_bias_init: Initializer = initializers.normal(0.01),
        visible_bias_init: Initializer = initializers.normal(0.01),
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: the discrete Hilbert space (only its `size` enters the formula).
        - `alpha`: hidden-unit density; `M = int(alpha * N)` must be at least 1.
        - `use_hidden_bias`, `use_visible_bias`: whether to include `b` and `a`.
        - `activation`: the elementwise function `g` (default `log_cosh`).
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`, `hidden_bias_init`, `visible_bias_init`: initialisers
          (NetKet's default `normal(0.01)` for all three).
        - `key`: a JAX PRNG key.
        """
        n_visible = hilbert.size
        n_hidden = _n_hidden(alpha, n_visible)
        wkey, hkey, vkey = jax.random.split(key, 3)
        self.hilbert = hilbert
        self.alpha = alpha
        self.activation = activation
        self.kernel = kernel_init(wkey, (n_visible, n_hidden), param_dtype)
        self.hidden_bias = (
            hidden_bias_init(hkey, (n_hidden,), param_dtype) if use_hidden_bias else None
        )
        self.visible_bias = (
            visible_bias_init(vkey, (n_visible,), param_dtype) if use_visible_bias else None
        )

    def __check_init__(self):
        check_fields(self)

    @property
    def n_hidden(self) -> int:
        """Number of hidden units `M = int(alpha * N)`."""
        return int(self.alpha * self.hilbert.size)

    def __call__(self, x: Num[ArrayLike, "*batch {self.hilbert.size}"]) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)`.

        **Returns:** `log ψ(x)`, shape `(*batch,)`.
        """
        check_fields(self)
        dtype = jnp.result_type(x, self.kernel)
        x = jnp.asarray(x, dtype)
        theta = x @ self.kernel
        if self.hidden_bias is not None:
            theta = theta + self.hidden_bias
        log_psi = self.activation(theta).sum(axis=-1)
        if self.visible_bias is not None:
            log_psi = log_psi + x @ self.visible_bias
        return log_psi
