"""The RBM family: NetKet's RBM, RBMModPhase and RBMMultiVal."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Complex, Float, Inexact, PRNGKeyArray, Real

from .._custom_types import Activation, Initializer
from .._misc import (
    add_rows,
    check_hilbert,
    inexact_dtype,
    positive_number,
    RealNumber,
    units_from_density,
)
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert, Qubit
from ..nn import initializers, log_cosh
from ..nn._activations import log_cosh_parts
from ._lookup import AbstractLookupModel, log_cosh_sum


def _sizes(hilbert: object, alpha: object, model: str) -> tuple[AbstractDiscreteHilbert, int, int]:
    """The checked space and the numbers of visible and hidden units `int(alpha * N)`."""
    hilbert = check_hilbert(
        hilbert,
        AbstractDiscreteHilbert,
        f"{model} needs a discrete nqzoo Hilbert space (an "
        "nqzoo.hilbert.AbstractDiscreteHilbert: Spin, Qubit, Fock)",
    )
    n_visible = hilbert.size
    n_hidden = units_from_density(
        alpha, "alpha", n_visible, inputs="visible units", units="hidden units"
    )
    return hilbert, n_visible, n_hidden


def _affine(x: Array, kernel: Array, bias: Array | None) -> Array:
    """`x @ kernel + bias`, the bias broadcast explicitly over the batch axes."""
    theta = x @ kernel
    if bias is None:
        return theta
    return theta + jnp.broadcast_to(bias.astype(theta.dtype), theta.shape)


def _part(a: Array | None, part: str) -> Array | None:
    return None if a is None else getattr(a, part)


class AbstractRBM(AbstractLookupModel):
    """The math shared by [`nqzoo.models.RBM`][] and [`nqzoo.models.RBMModPhase`][]: `M =
    int(alpha * N)` hidden units, each contributing `activation(x W + b)` to `log ψ`.

    The lookup table ([`nqzoo.models.AbstractLookupModel`][]) holds the pre-activations
    `θ = x W + b` (and the visible term `a·x`): changing `k` sites costs `O(k M)` instead of
    the `O(N M)` of a new evaluation, which the Metropolis samplers and the local energies
    use.
    """

    hilbert: eqx.AbstractVar[AbstractDiscreteHilbert]
    alpha: eqx.AbstractVar[float | int]
    activation: eqx.AbstractVar[Activation]

    def __check_init__(self):
        check_fields(self)

    @property
    def n_hidden(self) -> int:
        """Number of hidden units `M = int(alpha * N)` (of each RBM, for RBMModPhase)."""
        return int(self.alpha * self.hilbert.size)

    def _as_input(self, x: ArrayLike, kernel: Array) -> Array:
        """`x` in the real dtype of the parameters (int8 spins become floats)."""
        return jnp.asarray(x).astype(jnp.finfo(kernel.dtype).dtype)

    def _split(self, kernel: Array, bias: Array | None) -> list[tuple[Array, Array | None]]:
        """The (matrix, bias) pairs whose pre-activations the model keeps: the real and
        imaginary parts of a complex kernel under `log_cosh` (the common case: spins times
        complex weights, computed as two real matmuls, half the flops of a complex one, and
        `log_cosh_parts`), else the kernel itself."""
        if self.activation is log_cosh and jnp.iscomplexobj(kernel):
            return [(kernel.real, _part(bias, "real")), (kernel.imag, _part(bias, "imag"))]
        return [(kernel, bias)]

    def _pre_activations(self, x: Array, kernel: Array, bias: Array | None) -> tuple:
        """`x @ kernel + bias` as the tuple of parts of `_split`, for `x` in the parameters'
        real dtype."""
        pairs = self._split(kernel, bias)
        if len(pairs) == 2:
            return tuple(_affine(x, m, b) for m, b in pairs)
        return (_affine(x.astype(kernel.dtype), kernel, bias),)

    def _activate(self, parts: tuple) -> Array:
        """`Σ_j activation(θ_j)` from the parts of the pre-activations `θ`."""
        if len(parts) == 2:
            re, im = log_cosh_parts(*parts)
            return jax.lax.complex(re.sum(axis=-1), im.sum(axis=-1))
        return self.activation(parts[0]).sum(axis=-1)

    def _fast_activate(self, parts: tuple) -> Array:
        """`_activate`, with `log_cosh_sum` for real pre-activations under `log_cosh`."""
        if self.activation is log_cosh and len(parts) == 1 and not jnp.iscomplexobj(parts[0]):
            return log_cosh_sum(parts[0])
        return self._activate(parts)

    def _moved(self, parts: tuple, kernel: Array, bias: Array | None, sites, delta) -> tuple:
        """The pre-activations after the inputs at `sites` change by `delta`."""
        matrices = [m for m, _ in self._split(kernel, bias)]
        return tuple(add_rows(p, m, sites, delta) for p, m in zip(parts, matrices))

    def _hidden_sum(self, x: Array, kernel: Array, bias: Array | None) -> Array:
        """`Σ_j activation((x @ kernel + bias)_j)` for `x` in the parameters' real dtype."""
        return self._activate(self._pre_activations(x, kernel, bias))

    def _delta(self, old: ArrayLike, new: ArrayLike, kernel: Array) -> Array:
        real = jnp.finfo(kernel.dtype).dtype
        return jnp.asarray(new).astype(real) - jnp.asarray(old).astype(real)


class RBM(AbstractRBM):
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
    hidden_bias: Inexact[Array, "{self.n_hidden}"] | None  # noqa: F821
    visible_bias: Inexact[Array, "{self.hilbert.size}"] | None  # noqa: F821
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    alpha: float | int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        alpha: RealNumber = 1,
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

        - `hilbert`: the discrete Hilbert space (only its `size` enters the formula); a NetKet
          space is refused with a pointer to `nqzoo.interop.netket.hilbert_from_netket`.
        - `alpha`: hidden-unit density, a finite positive number; `M = int(alpha * N)` must
          be at least 1.
        - `use_hidden_bias`, `use_visible_bias`: whether to include `b` and `a`.
        - `activation`: the elementwise function `g` (default `log_cosh`).
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`, `hidden_bias_init`, `visible_bias_init`: initialisers
          `init(key, shape, dtype)` (NetKet's default `normal(0.01)` for all three).
        - `key`: a JAX PRNG key.
        """
        hilbert, n_visible, n_hidden = _sizes(hilbert, alpha, "RBM")
        param_dtype = inexact_dtype(param_dtype)
        wkey, hkey, vkey = jax.random.split(key, 3)
        self.hilbert = hilbert
        self.alpha = positive_number(alpha, "alpha")  # a Python number (NumPy scalars too)
        self.activation = activation
        self.kernel = kernel_init(wkey, (n_visible, n_hidden), param_dtype)
        self.hidden_bias = (
            hidden_bias_init(hkey, (n_hidden,), param_dtype) if use_hidden_bias else None
        )
        self.visible_bias = (
            visible_bias_init(vkey, (n_visible,), param_dtype) if use_visible_bias else None
        )

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)` (any real dtype; int8 samples are cast to the
          real dtype of the parameters).

        **Returns:** `log ψ(x)`, shape `(*batch,)`, in the parameter dtype (real for real
        parameters and complex for complex ones).
        """
        return self.log_psi_from_lookup(self.lookup(x))

    def lookup(self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]) -> tuple:
        """The pre-activations `θ = x W + b` (a tuple of parts) and the visible term `a·x`
        (`None` without a visible bias) of `x`."""
        check_fields(self)
        x = self._as_input(x, self.kernel)
        theta = self._pre_activations(x, self.kernel, self.hidden_bias)
        vb = self.visible_bias
        return theta, (None if vb is None else x.astype(vb.dtype) @ vb)

    def log_psi_from_lookup(self, table: tuple) -> Inexact[Array, "*batch"]:
        theta, visible = table
        log_psi = self._activate(theta)
        return log_psi if visible is None else log_psi + visible

    def fast_log_psi_from_lookup(self, table: tuple) -> Inexact[Array, "*batch"]:
        theta, visible = table
        log_psi = self._fast_activate(theta)
        return log_psi if visible is None else log_psi + visible

    def update_lookup(self, table: tuple, sites: ArrayLike, old: ArrayLike, new: ArrayLike):
        theta, visible = table
        sites = jnp.asarray(sites)
        delta = self._delta(old, new, self.kernel)
        theta = self._moved(theta, self.kernel, self.hidden_bias, sites, delta)
        if visible is not None:
            vb = self.visible_bias
            visible = visible + jnp.sum(delta.astype(vb.dtype) * vb[sites], axis=-1)
        return theta, visible


class RBMModPhase(AbstractRBM):
    r"""Two real RBMs for the log-modulus and the phase of the wave function.

    $$\log\psi(x) = \sum_{j=1}^{M} g\Big(\sum_i x_i W_{ij} + b_j\Big)
      + i \sum_{j=1}^{M} g\Big(\sum_i x_i V_{ij} + c_j\Big),$$

    with real parameters, $g$ = [`nqzoo.nn.log_cosh`][] by default, $M = \lfloor\alpha N\rfloor$
    and no visible bias. The output is complex. Parameters match NetKet's `RBMModPhase`
    (`Dense_0` = `modulus_kernel`/`modulus_bias`, `Dense_1` = `phase_kernel`/`phase_bias`).

    ??? cite "Reference"

        ```bibtex
        @article{torlai2018neural,
          title={Neural-network quantum state tomography},
          author={Torlai, Giacomo and Mazzola, Guglielmo and Carrasquilla, Juan and
                  Troyer, Matthias and Melko, Roger and Carleo, Giuseppe},
          journal={Nature Physics}, volume={14}, number={5}, pages={447--450}, year={2018}
        }
        ```
    """

    modulus_kernel: Float[Array, "{self.hilbert.size} {self.n_hidden}"]
    modulus_bias: Float[Array, "{self.n_hidden}"] | None  # noqa: F821
    phase_kernel: Float[Array, "{self.hilbert.size} {self.n_hidden}"]
    phase_bias: Float[Array, "{self.n_hidden}"] | None  # noqa: F821
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    alpha: float | int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        alpha: RealNumber = 1,
        use_hidden_bias: bool = True,
        activation: Activation = log_cosh,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.normal(0.01),
        hidden_bias_init: Initializer = initializers.normal(0.01),
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: the discrete Hilbert space (only its `size` enters the formula).
        - `alpha`: hidden-unit density of each RBM; `M = int(alpha * N)` must be at least 1.
        - `use_hidden_bias`: whether to include the hidden biases `b` and `c`.
        - `activation`: the elementwise function `g` (default `log_cosh`).
        - `param_dtype`: a real dtype (default float64).
        - `kernel_init`, `hidden_bias_init`: initialisers (NetKet's default `normal(0.01)`).
        - `key`: a JAX PRNG key.
        """
        hilbert, n_visible, n_hidden = _sizes(hilbert, alpha, "RBMModPhase")
        param_dtype = inexact_dtype(
            param_dtype, real=True, hint=" for RBMModPhase's real parameters"
        )
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.hilbert = hilbert
        self.alpha = positive_number(alpha, "alpha")  # a Python number (NumPy scalars too)
        self.activation = activation
        self.modulus_kernel = kernel_init(k1, (n_visible, n_hidden), param_dtype)
        self.phase_kernel = kernel_init(k3, (n_visible, n_hidden), param_dtype)
        if use_hidden_bias:
            self.modulus_bias = hidden_bias_init(k2, (n_hidden,), param_dtype)
            self.phase_bias = hidden_bias_init(k4, (n_hidden,), param_dtype)
        else:
            self.modulus_bias = self.phase_bias = None

    def __check_init__(self):
        if (self.modulus_bias is None) != (self.phase_bias is None):
            raise ValueError(
                "RBMModPhase needs both hidden biases or neither, got modulus_bias="
                f"{'None' if self.modulus_bias is None else 'an array'} and phase_bias="
                f"{'None' if self.phase_bias is None else 'an array'}."
            )

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Complex[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)`.

        **Returns:** `log ψ(x)`, complex of the parameters' precision, shape `(*batch,)`.
        """
        return self.log_psi_from_lookup(self.lookup(x))

    def lookup(self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]) -> tuple:
        """The pre-activations of the modulus and the phase RBM of `x`."""
        check_fields(self)
        x = self._as_input(x, self.modulus_kernel)
        return (
            self._pre_activations(x, self.modulus_kernel, self.modulus_bias),
            self._pre_activations(x, self.phase_kernel, self.phase_bias),
        )

    def log_psi_from_lookup(self, table: tuple) -> Complex[Array, "*batch"]:
        re, im = self._activate(table[0]), self._activate(table[1])
        if jnp.iscomplexobj(re) or jnp.iscomplexobj(im):  # a complex-valued activation
            re, im = re.real - im.imag, re.imag + im.real
        return jax.lax.complex(re, im)

    def fast_log_psi_from_lookup(self, table: tuple) -> Complex[Array, "*batch"]:
        if self.activation is not log_cosh:
            return self.log_psi_from_lookup(table)
        return jax.lax.complex(self._fast_activate(table[0]), self._fast_activate(table[1]))

    def update_lookup(self, table: tuple, sites: ArrayLike, old: ArrayLike, new: ArrayLike):
        sites = jnp.asarray(sites)
        delta = self._delta(old, new, self.modulus_kernel)
        return (
            self._moved(table[0], self.modulus_kernel, self.modulus_bias, sites, delta),
            self._moved(table[1], self.phase_kernel, self.phase_bias, sites, delta),
        )


class RBMMultiVal(eqx.Module):
    r"""An [`nqzoo.models.RBM`][] on one-hot encoded multi-valued sites.

    Each site value $x_i \in \{0, \dots, C-1\}$ becomes the one-hot vector
    $e_{x_i} \in \{0, 1\}^C$; the $C N$ bits feed an inner RBM with $\lfloor\alpha C N\rfloor$
    hidden units:

    $$\log\psi(x) = \mathrm{RBM}(e_{x_1}, \dots, e_{x_N}).$$

    The local states of `hilbert` must be exactly $0, 1, \dots, C-1$ (e.g. `Fock` or `Qubit`),
    with $C$ = `hilbert.local_size`. Parameters match NetKet's `RBMMultiVal`
    (`RBM/Dense/kernel` = `rbm.kernel`, …).
    """

    rbm: RBM
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)

    def __init__(
        self, hilbert: object, alpha: RealNumber = 1, *, key: PRNGKeyArray, **rbm_kwargs
    ):
        """**Arguments:**

        - `hilbert`: a discrete Hilbert space whose local states are `0, 1, …, C-1`
          (`Fock`, `Qubit`); `C = hilbert.local_size` is the number of one-hot classes.
        - `alpha`: hidden-unit density relative to the `C * N` one-hot inputs.
        - `key`: a JAX PRNG key.
        - `**rbm_kwargs`: the other keyword arguments of [`nqzoo.models.RBM`][]
          (`use_hidden_bias`, `use_visible_bias`, `activation`, `param_dtype`, `kernel_init`,
          `hidden_bias_init`, `visible_bias_init`, with the same defaults), passed to the
          inner RBM.
        """
        hilbert = check_hilbert(
            hilbert,
            AbstractDiscreteHilbert,
            "RBMMultiVal needs a discrete nqzoo Hilbert space (an "
            "nqzoo.hilbert.AbstractDiscreteHilbert: Fock, Qubit)",
        )
        n_classes = hilbert.local_size
        if tuple(hilbert.local_states) != tuple(range(n_classes)):
            raise ValueError(
                "RBMMultiVal one-hot encodes the local values, so they must be 0, 1, …, C-1 "
                f"(as in Fock or Qubit), but hilbert={hilbert!r} has local_states="
                f"{list(hilbert.local_states)}."
            )
        self.hilbert = hilbert
        self.rbm = RBM(Qubit(n_classes * hilbert.size), alpha, key=key, **rbm_kwargs)

    def __check_init__(self):
        check_fields(self)
        if self.rbm.hilbert.size != self.n_classes * self.hilbert.size:
            raise ValueError(
                f"RBMMultiVal.rbm must act on {self.n_classes} * {self.hilbert.size} one-hot "
                f"inputs, but it has {self.rbm.hilbert.size} visible units."
            )

    @property
    def n_classes(self) -> int:
        """Number of one-hot classes `C = hilbert.local_size`."""
        return self.hilbert.local_size

    @property
    def alpha(self) -> float | int:
        """Hidden-unit density of the inner RBM."""
        return self.rbm.alpha

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)`, values in `0, …, C-1`.

        **Returns:** `log ψ(x)`, shape `(*batch,)`.
        """
        check_fields(self)
        x = x_in = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.integer):
            x = x.astype(jnp.int32)
        real = jnp.finfo(self.rbm.kernel.dtype).dtype
        one_hot = jax.nn.one_hot(x, self.n_classes, dtype=real)
        log_psi = self.rbm(one_hot.reshape(*x.shape[:-1], self.n_classes * self.hilbert.size))
        # A value outside the local states (NaN, 0.5, n_max + 1) would one-hot to zeros or
        # to a neighbouring class: its row is NaN instead.
        valid = jnp.all(self.hilbert.is_local_state(x_in), axis=-1)
        return jnp.where(valid, log_psi, jnp.full((), jnp.nan, log_psi.dtype))
