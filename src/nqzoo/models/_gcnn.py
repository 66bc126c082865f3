"""The group-convolutional neural network (NetKet's GCNN, FFT and irreps forms)."""

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray, Real

from .._custom_types import Initializer
from .._misc import check_hilbert, inexact_dtype, positive_int, positive_ints
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert
from ..nn import reim_selu
from ..nn._symm_layers import (
    complex_dtype,
    default_equivariant_init,
    DenseEquivariant,
    DenseSymm,
    fast_activation,
    resolve_mode,
)
from ..symmetry import check_characters, check_group, PermutationGroup


def _resolve_group(symmetries: object, n_sites: int, shape: object) -> tuple:
    """`(group, shape)`: a lattice (anything with `space_group()` and `extent`) gives its space
    group and, when `shape` is None, its extent."""
    if hasattr(symmetries, "space_group") and hasattr(symmetries, "extent"):
        if shape is None:
            shape = tuple(symmetries.extent)
        symmetries = symmetries.space_group()
    return check_group(symmetries, n_sites, "symmetries"), shape


def _log_sum_exp(h: Array, characters: np.ndarray, complex_output: bool) -> Array:
    r"""$\log \sum_{g, f} \chi_g e^{h_{g f b}}$ for every `b`, for `h` `(G, F, B)` (stable: the
    largest real part is factored out; negative or complex characters give a complex log)."""
    real = jnp.finfo(h.dtype).dtype
    shift = jax.lax.stop_gradient(jnp.max(h.real if jnp.iscomplexobj(h) else h, axis=(0, 1)))
    e = jnp.exp(h - shift.astype(h.dtype)[None, None, :]).sum(axis=1)  # (G, B)
    if np.all(characters.imag == 0):
        chi = jnp.asarray(characters.real, real)
        s = _contract(chi, e)
    else:
        s = _contract(jnp.asarray(characters, complex_dtype(real)), e)
    if complex_output and not jnp.iscomplexobj(s):
        s = s.astype(complex_dtype(real))
    return jnp.log(s) + shift.astype(s.dtype)


def _contract(chi: Array, e: Array) -> Array:
    if jnp.iscomplexobj(chi) and not jnp.iscomplexobj(e):
        return jax.lax.complex(chi.real @ e, chi.imag @ e)
    if jnp.iscomplexobj(e) and not jnp.iscomplexobj(chi):
        return jax.lax.complex(chi @ e.real, chi @ e.imag)
    return chi @ e


class GCNN(eqx.Module):
    r"""Group-convolutional neural network (G-CNN), NetKet's `GCNN`.

    A lift to the group followed by group convolutions and a symmetric sum:

    $$f^{(1)}_g = \sum_r x_r\, W^{(1)}_{\pi_g(r)} + b^{(1)}, \qquad
      f^{(l+1)}_h = \sum_g \Gamma\big(f^{(l)}_g\big)\, W^{(l+1)}_{g^{-1} h} + b^{(l+1)},$$

    $$\log\psi(x) = \log \sum_{g \in G} \sum_{f} \chi_g \exp\Big(
      \sigma\big(f^{(L)}_{g}\big)^{(f)}\Big),$$

    with features $f^{(l)}_g \in \mathbb{R}^{F_l}$ (or $\mathbb{C}^{F_l}$), the
    activation $\Gamma$ ([`nqzoo.nn.reim_selu`][] by default), the output activation
    $\sigma$ (identity by default) and the characters $\chi$ of a one-dimensional
    representation (all ones by default). The wave function is covariant: with
    `x_g = x[..., perms[g]]`, $\psi(x_g) = \chi_g\,\psi(x)$ for every element (NetKet's
    convention; this is the complex conjugate of the sector that
    [`nqzoo.models.Symmetrized`][] with the same characters projects on; for real characters
    they agree). The layers are
    [`nqzoo.nn.DenseSymm`][] and [`nqzoo.nn.DenseEquivariant`][] (`"fft"` or `"irreps"`
    form; both give the same function of the same parameters, as in NetKet). Parameters as
    NetKet's `GCNN_FFT`/`GCNN_Irrep` (`dense_symm`, `equivariant_layers_{l}`).

    ??? cite "References"

        ```bibtex
        @inproceedings{cohen2016group,
          title={Group equivariant convolutional networks},
          author={Cohen, Taco and Welling, Max},
          booktitle={International Conference on Machine Learning}, pages={2990--2999},
          year={2016}
        }
        @article{roth2023high,
          title={High-accuracy variational Monte Carlo for frustrated magnets with deep
                 neural networks},
          author={Roth, Christopher and Szab{\'o}, Attila and MacDonald, Allan H.},
          journal={Physical Review B}, volume={108}, number={5}, pages={054410}, year={2023}
        }
        ```
    """

    dense_symm: DenseSymm
    equivariant_layers: tuple[DenseEquivariant, ...]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    symmetries: PermutationGroup = eqx.field(static=True)
    mode: str = eqx.field(static=True)
    shape: tuple[int, ...] | None = eqx.field(static=True)
    layers: int = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    characters: tuple[complex, ...] = eqx.field(static=True)
    activation: Callable = eqx.field(static=True)
    output_activation: Callable | None = eqx.field(static=True)
    equal_amplitudes: bool = eqx.field(static=True)
    complex_output: bool = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        symmetries: Any,
        *,
        layers: int | np.integer,
        features: int | np.integer | Sequence[float | int | np.floating | np.integer],
        characters: ArrayLike | None = None,
        mode: str = "auto",
        shape: Sequence[float | int | np.floating | np.integer] | None = None,
        param_dtype: Any = jnp.float64,
        activation: Callable = reim_selu,
        output_activation: Callable | None = None,
        equal_amplitudes: bool = False,
        use_bias: bool = True,
        complex_output: bool = True,
        input_mask: ArrayLike | None = None,
        hidden_mask: ArrayLike | None = None,
        kernel_init: Initializer = default_equivariant_init,
        bias_init: Initializer = jax.nn.initializers.zeros,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: the discrete Hilbert space.
        - `symmetries`: a [`nqzoo.symmetry.PermutationGroup`][], its `(n_elements, n_sites)`
          permutation array, or a lattice (its `space_group()`, with `shape` its extent).
        - `layers`: number of layers $L$ (the lift and $L-1$ group convolutions).
        - `features`: features per layer, one int for all or a sequence of `layers` ints.
        - `characters`: `(n_elements,)` characters of a one-dimensional representation
          (default all ones: the symmetric sector).
        - `mode`: `"fft"` (space groups in NetKet's order, needs `shape`), `"irreps"` (any
          group), or `"auto"` (`"fft"` when the shape is known: given, a lattice's extent, or
          read from the group of a periodic [`nqzoo.lattice.Grid`][]; else `"irreps"`).
        - `shape`: extent of the translation group for `"fft"` (a lattice's `extent`).
        - `param_dtype`: real or complex dtype of the parameters.
        - `activation`: $\\Gamma$, NetKet's default `reim_selu`.
        - `output_activation`: $\\sigma$ before the sum (None: identity).
        - `equal_amplitudes`: return only $i \\operatorname{Im}\\log\\psi$.
        - `use_bias`: biases in all layers.
        - `complex_output`: a complex `log ψ` also for real parameters (NetKet's default; needed
          for negative characters).
        - `input_mask`: `(n_sites,)` mask of the lift's kernel; `hidden_mask`: `(n_elements,)`
          mask of the convolution kernels.
        - `kernel_init`, `bias_init`: NetKet's defaults, `lecun_normal(in_axis=1, out_axis=0)`
          and zeros.
        - `key`: a JAX PRNG key.
        """
        hilbert = check_hilbert(
            hilbert,
            AbstractDiscreteHilbert,
            "GCNN needs a discrete nqzoo Hilbert space (Spin, Qubit, Fock)",
        )
        group, shape = _resolve_group(symmetries, hilbert.size, shape)
        mode, shape = resolve_mode(group, mode, shape)
        layers = positive_int(layers, "layers")
        feats = positive_ints(features, "features")
        if len(feats) == 1 and not isinstance(features, Sequence):
            feats = feats * layers
        if len(feats) != layers:
            raise ValueError(
                f"features must be one int or one per layer ({layers} layers), got "
                f"features={features!r}."
            )
        if characters is None:
            chi = np.ones(group.n_elements, np.complex128)
        else:
            chi = check_characters(group, characters, "characters")
        dtype = inexact_dtype(param_dtype)
        if (
            not complex_output
            and not jnp.issubdtype(dtype, jnp.complexfloating)
            and (np.any(chi.imag != 0) or np.any(chi.real < 0))
        ):
            raise ValueError(
                "complex_output=False needs positive real characters with real parameters "
                "(log ψ of a negative or complex sum is complex); use complex_output=True."
            )
        for name, mask, size in [
            ("input_mask", input_mask, group.n_sites),
            ("hidden_mask", hidden_mask, group.n_elements),
        ]:
            if mask is not None and np.shape(mask) != (size,):
                raise ValueError(
                    f"{name} must have shape ({size},), got shape {np.shape(mask)}."
                )
        keys = jax.random.split(key, layers)
        self.hilbert = hilbert
        self.symmetries = group
        self.mode, self.shape = mode, shape
        self.layers = layers
        self.features = feats
        self.characters = tuple(complex(c) for c in chi)
        self.activation = activation
        self.output_activation = output_activation
        self.equal_amplitudes = bool(equal_amplitudes)
        self.complex_output = bool(complex_output)
        common = dict(
            use_bias=use_bias, param_dtype=dtype, kernel_init=kernel_init, bias_init=bias_init
        )
        self.dense_symm = DenseSymm(group, feats[0], mask=input_mask, key=keys[0], **common)
        self.equivariant_layers = tuple(
            DenseEquivariant(
                group,
                feats[l + 1],
                feats[l],
                mode=mode,
                shape=shape,
                mask=hidden_mask,
                key=keys[l + 1],
                **common,
            )
            for l in range(layers - 1)  # noqa: E741
        )

    def __check_init__(self):
        if self.dense_symm.symmetries != self.symmetries or any(
            layer.symmetries != self.symmetries for layer in self.equivariant_layers
        ):
            raise ValueError("the layers of a GCNN must act on the model's symmetries.")

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations `(*batch, N)`.

        **Returns:** `log ψ(x)`, `(*batch,)`: complex (unless `complex_output=False` with real
        parameters).
        """
        check_fields(self.dense_symm)
        x = jnp.asarray(x)
        batch = x.shape[:-1]
        h = self.dense_symm.lift(x.reshape(-1, 1, x.shape[-1]))  # (G, F, B)
        act = fast_activation(self.activation)
        for layer in self.equivariant_layers:
            check_fields(layer)
            h = layer.convolve(act(h))
        if self.output_activation is not None:
            h = fast_activation(self.output_activation)(h)
        out = _log_sum_exp(h, np.asarray(self.characters), self.complex_output)
        if self.equal_amplitudes:
            out = jax.lax.complex(jnp.zeros_like(out.real), out.imag)
        return out.reshape(batch)
