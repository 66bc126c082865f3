"""The Vision Transformer (ViT) wave function of Viteritti, Rende and Becca."""

import math
import numbers
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float, PRNGKeyArray, Real

from .._custom_types import Initializer
from .._misc import check_hilbert, inexact_dtype, positive_int
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert
from ..lattice import Grid
from ..nn import initializers
from ..nn._activations import log_cosh_parts
from ..nn._attention import LayerNorm
from ..nn._dense import Dense
from ..nn._vit_layers import ViTEncoderBlock


def _extent_of(lattice: object, n_sites: int) -> tuple[int, ...]:
    """The lattice extent `(L,)` or `(L1, L2)` from a Grid, an extent or `None` (a chain)."""
    if lattice is None:
        return (n_sites,)
    if isinstance(lattice, Grid):
        extent = lattice.extent
    elif isinstance(lattice, numbers.Integral) and not isinstance(lattice, bool):
        extent = (int(lattice),)
    elif isinstance(lattice, Sequence) and not isinstance(lattice, str):
        extent = tuple(lattice)
    else:
        extent = None
    if (
        extent is None
        or len(extent) not in (1, 2)
        or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool) and e >= 1
                   for e in extent)
    ):
        raise ValueError(
            "lattice must be an nqzoo.lattice.Grid of 1 or 2 axes, an extent (L,) or "
            f"(L1, L2) of positive integers, or None (a chain), got lattice={lattice!r}."
        )
    extent = tuple(int(e) for e in extent)
    if math.prod(extent) != n_sites:
        raise ValueError(
            f"lattice={lattice!r} has {math.prod(extent)} sites but the Hilbert space has "
            f"N={n_sites}; give the lattice the space was built for."
        )
    return extent


class ViT(eqx.Module):
    r"""The Vision Transformer wave function on a chain or a square (rectangular) lattice.

    **Patches.** The configuration $\sigma$ of $N$ sites is cut into $n = N / b^D$ patches:
    $b$ consecutive sites of a chain ($D = 1$), or $b \times b$ squares of an
    $L_1 \times L_2$ lattice ($D = 2$, sites numbered row-major as in
    [`nqzoo.lattice.Grid`][]). The patches form a periodic patch lattice of extent
    $(L_1/b, L_2/b)$, numbered row-major; patch $i$ is the vector $p_i \in \mathbb{R}^{b^D}$ of
    its spins (row-major inside the patch). Each is embedded linearly,
    $x_i = E\,p_i + e \in \mathbb{R}^d$.

    **Encoder.** `layers` pre-norm blocks ([`nqzoo.nn.ViTEncoderBlock`][]), each

    $$x_i \leftarrow x_i + \mathrm{FA}(\mathrm{LN}(x))_i, \qquad
      x_i \leftarrow x_i + W_2\,\mathrm{gelu}(W_1\,\mathrm{LN}(x_i) + b_1) + b_2,$$

    with the factored attention ([`nqzoo.nn.FactoredAttention`][]) of $H$ heads of width
    $d/H$, whose weights depend only on the displacement $r_i - r_j$ of the two patches on the
    periodic patch lattice (no queries or keys):

    $$\mathrm{FA}(x)_i = W_O\big[\,\textstyle\sum_j \alpha^h_{r_i - r_j}\,
      (W_V x_j + b_V)^h\,\big]_{h=1}^{H} + b_O .$$

    **Output.** The encoder's outputs $y_i$ are summed over the patches and fed to a complex
    fully connected layer with the $\log\cosh$ activation, summed over its `output_features`
    units $k$ (the papers' $g$):

    $$z = \sum_{i=1}^{n} y_i, \qquad
      \log\psi(\sigma) = \sum_{k} \log\cosh\big(w_k \cdot z + c_k\big),
      \qquad w_k = w^{\mathrm{re}}_k + i\,w^{\mathrm{im}}_k,\ c_k = c^{\mathrm{re}}_k +
      i\,c^{\mathrm{im}}_k .$$

    With `output_norm=True` the head is the one of the authors' public implementation
    (NetKet's ViT tutorial, Rende and Viteritti 2025): $z$ and the real and imaginary parts
    of the pre-activations are layer-normalised, each with its own learned scale and shift,

    $$\log\psi(\sigma) = \sum_k \log\cosh\big(\mathrm{LN}_a(W^{\mathrm{re}}\hat z +
      c^{\mathrm{re}})_k + i\,\mathrm{LN}_b(W^{\mathrm{im}}\hat z + c^{\mathrm{im}})_k\big),
      \qquad \hat z = \mathrm{LN}(z),$$

    which bounds the spread of $\log|\psi|$ and keeps the optimisation stable.

    All parameters are real (the complex layer through its real and imaginary parts) and
    $\log\psi$ is complex: its phase can learn the sign structure. Since every block is
    equivariant under translations of the patch lattice and $z$ sums over it, $\psi$ is
    exactly invariant under translations by whole patches ($b$ sites along an axis). The
    complex $\log\cosh$ is [`nqzoo.nn.log_cosh`][]'s stable form.

    ??? cite "References"

        ```bibtex
        @article{viteritti2023transformer,
          title={Transformer Variational Wave Functions for Frustrated Quantum Spin Systems},
          author={Viteritti, Luciano Loris and Rende, Riccardo and Becca, Federico},
          journal={Physical Review Letters}, volume={130}, number={23}, pages={236401},
          year={2023}
        }
        @article{rende2024simple,
          title={A simple linear algebra identity to optimize large-scale neural network
                 quantum states},
          author={Rende, Riccardo and Viteritti, Luciano Loris and Bardone, Lorenzo and
                  Becca, Federico and Goldt, Sebastian},
          journal={Communications Physics}, volume={7}, pages={260}, year={2024}
        }
        @article{rende2024queries,
          title={Are queries and keys always relevant? A case study on Transformer wave
                 functions},
          author={Rende, Riccardo and Viteritti, Luciano Loris},
          journal={arXiv:2405.18874}, year={2024}
        }
        ```
    """

    embedding: Dense
    blocks: tuple[ViTEncoderBlock, ...]
    output_kernel_real: Float[Array, "{self.d_model} {self.output_features}"]
    output_kernel_imag: Float[Array, "{self.d_model} {self.output_features}"]
    output_bias_real: Float[Array, "{self.output_features}"]  # noqa: F821
    output_bias_imag: Float[Array, "{self.output_features}"]  # noqa: F821
    output_norms: tuple[LayerNorm, LayerNorm, LayerNorm] | None
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    extent: tuple[int, ...] = eqx.field(static=True)
    patch_size: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    output_features: int = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        *,
        lattice: object = None,
        patch_size: int | np.integer = 2,
        d_model: int | np.integer = 16,
        heads: int | np.integer = 4,
        layers: int | np.integer = 2,
        mlp_ratio: int | np.integer = 4,
        output_features: int | np.integer | None = None,
        output_norm: bool = False,
        param_dtype: jnp.dtype | type = jnp.float64,
        output_init: Initializer = initializers.normal(0.01),
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: the discrete Hilbert space; its local values (e.g. $\\pm 1$ spins) are
          the patches' entries.
        - `lattice`: an [`nqzoo.lattice.Grid`][] of 1 or 2 axes, an extent `(L,)` or
          `(L1, L2)`, or `None` for a chain of `hilbert.size` sites. Its number of sites must
          be `hilbert.size`; only the extent is used (the patch lattice is periodic).
        - `patch_size`: the patch's linear size `b` (`b` sites on a chain, `b x b` on a 2D
          lattice); it must divide every axis of the lattice.
        - `d_model`: embedding width `d`.
        - `heads`: number of attention heads; must divide `d_model`.
        - `layers`: number of encoder blocks (at least 1).
        - `mlp_ratio`: hidden width of the feed-forward networks in units of `d_model`.
        - `output_features`: number of complex $\\log\\cosh$ units of the output layer
          (default `d_model`, as in the papers).
        - `output_norm`: layer-normalise `z` and the real and imaginary pre-activations of
          the output layer (`output_norms`, the authors' implementation); default `False`,
          the papers' formula.
        - `param_dtype`: a real floating dtype (float32 or float64). Complex dtypes are
          refused: the ansatz has real parameters and a complex output built from them.
        - `output_init`: initialiser of the real and imaginary parts of the output kernel
          (default `normal(0.01)`: a small output layer, so that the initial `|ψ|^2` is close to
          uniform and Markov chains mix); the output biases start at zero.
        - `key`: a JAX PRNG key.
        """
        hilbert = check_hilbert(
            hilbert,
            AbstractDiscreteHilbert,
            "ViT needs a discrete nqzoo Hilbert space (an nqzoo.hilbert.AbstractDiscreteHilbert:"
            " Spin, Qubit, Fock)",
        )
        dtype = inexact_dtype(
            param_dtype,
            real=True,
            hint=" (the ViT has real parameters; its output layer is complex through separate "
            "real and imaginary parts)",
        )
        extent = _extent_of(lattice, hilbert.size)
        b = positive_int(patch_size, "patch_size")
        if any(length % b for length in extent):
            raise ValueError(
                f"patch_size={b} must divide every axis of the lattice, got extent={extent} "
                f"(patches are {' x '.join([str(b)] * len(extent))} blocks of sites)."
            )
        self.hilbert = hilbert
        self.extent = extent
        self.patch_size = b
        self.d_model = positive_int(d_model, "d_model")
        self.heads = positive_int(heads, "heads")
        if self.d_model % self.heads:
            raise ValueError(
                f"d_model must be divisible by heads (each head has d_model / heads "
                f"features), got d_model={self.d_model} and heads={self.heads}."
            )
        n_layers = positive_int(layers, "layers")
        mlp_ratio = positive_int(mlp_ratio, "mlp_ratio")
        self.output_features = (
            self.d_model
            if output_features is None
            else positive_int(output_features, "output_features")
        )
        ekey, bkey, okey = jax.random.split(key, 3)
        self.embedding = Dense(self.patch_volume, self.d_model, param_dtype=dtype, key=ekey)
        self.blocks = tuple(
            ViTEncoderBlock(self.patch_grid, self.d_model, self.heads, mlp_ratio, dtype, key=k)
            for k in jax.random.split(bkey, n_layers)
        )
        rkey, ikey = jax.random.split(okey)
        shape = (self.d_model, self.output_features)
        self.output_kernel_real = output_init(rkey, shape, dtype)
        self.output_kernel_imag = output_init(ikey, shape, dtype)
        self.output_bias_real = jnp.zeros((self.output_features,), dtype)
        self.output_bias_imag = jnp.zeros((self.output_features,), dtype)
        if not isinstance(output_norm, bool):
            raise TypeError(f"output_norm must be a bool, got output_norm={output_norm!r}.")
        self.output_norms = (
            (
                LayerNorm(self.d_model, param_dtype=dtype),
                LayerNorm(self.output_features, param_dtype=dtype),
                LayerNorm(self.output_features, param_dtype=dtype),
            )
            if output_norm
            else None
        )

    def __check_init__(self):
        check_fields(self)
        if math.prod(self.extent) != self.hilbert.size or any(
            length % self.patch_size for length in self.extent
        ):
            raise ValueError(
                f"ViT extent={self.extent} with patch_size={self.patch_size} does not tile the "
                f"{self.hilbert.size} sites of the Hilbert space."
            )
        attention = [block.attention for block in self.blocks]
        if (
            not self.blocks
            or self.embedding.in_features != self.patch_volume
            or self.embedding.out_features != self.d_model
            or any(a.patch_grid != self.patch_grid for a in attention)
            or any((a.d_model, a.heads) != (self.d_model, self.heads) for a in attention)
            or (
                self.output_norms is not None
                and tuple(n.features for n in self.output_norms)
                != (self.d_model, self.output_features, self.output_features)
            )
        ):
            raise ValueError(
                f"ViT layers do not match patch_grid={self.patch_grid}, d_model={self.d_model}"
                f", heads={self.heads}: embedding "
                f"{(self.embedding.in_features, self.embedding.out_features)}, attention "
                f"{[(a.patch_grid, a.d_model, a.heads) for a in attention]}."
            )

    @property
    def layers(self) -> int:
        """Number of encoder blocks."""
        return len(self.blocks)

    @property
    def patch_grid(self) -> tuple[int, ...]:
        """The extent of the patch lattice, `extent // patch_size` along each axis."""
        return tuple(length // self.patch_size for length in self.extent)

    @property
    def n_patches(self) -> int:
        """Number of patches `n = N / b^D`."""
        return math.prod(self.patch_grid)

    @property
    def patch_volume(self) -> int:
        """Sites per patch, `b^D`."""
        return self.patch_size ** len(self.extent)

    def patches(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Float[Array, "*batch {self.n_patches} {self.patch_volume}"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)`.

        **Returns:** the patches `p_i`, `(*batch, n, b^D)` in the parameters' dtype: patch
        `i` is the `i`-th block of `b` sites of the chain, or the `i`-th `b x b` square of the
        lattice with the squares and the sites inside each square in row-major order.
        """
        check_fields(self)
        x = jnp.asarray(x).astype(self.output_kernel_real.dtype)
        batch, b = x.shape[:-1], self.patch_size
        if len(self.extent) == 1:
            return x.reshape(*batch, self.n_patches, b)
        (p1, p2), nb = self.patch_grid, len(batch)
        x = x.reshape(*batch, p1, b, p2, b)
        axes = (*range(nb), nb, nb + 2, nb + 1, nb + 3)  # (.., P1, P2, b, b)
        return x.transpose(axes).reshape(*batch, self.n_patches, b * b)

    def hidden(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Float[Array, "*batch {self.d_model}"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)`.

        **Returns:** the translation-invariant representation `z = Σ_i y_i`, `(*batch, d)`.
        """
        h = self.embedding(self.patches(x))
        for block in self.blocks:
            h = block(h)
        return h.sum(axis=-2)

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Complex[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)` (any real dtype; int8 samples are cast to the
          parameters' dtype).

        **Returns:** `log ψ(x)`, complex of the parameters' precision, shape `(*batch,)`.
        """
        z = self.hidden(x)
        norms = self.output_norms
        if norms is not None:
            z = norms[0](z)

        def affine(kernel, bias):
            theta = z @ kernel
            return theta + jnp.broadcast_to(bias, theta.shape)

        re = affine(self.output_kernel_real, self.output_bias_real)
        im = affine(self.output_kernel_imag, self.output_bias_imag)
        if norms is not None:
            re, im = norms[1](re), norms[2](im)
        re, im = log_cosh_parts(re, im)
        return jax.lax.complex(re.sum(axis=-1), im.sum(axis=-1))
