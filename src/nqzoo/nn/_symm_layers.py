r"""Symmetric layers: the lift from sites to a permutation group and the group convolution.

Feature maps on a group $G$ of $|G|$ permutations are arrays `(..., features, |G|)` (NetKet's
layout). [`nqzoo.nn.DenseSymm`][] lifts a configuration on the sites to such a map and
[`nqzoo.nn.DenseEquivariant`][] convolves maps over the group; both commute with the action of
the group, so a sum over group elements of the last map is invariant (this is how
[`nqzoo.models.GCNN`][] is built).

Two forms of the group convolution, equal as functions of their parameters:

- `"fft"`, for a space group $G = T \cdot P$ whose translations $T \cong \mathbb{Z}_{L_1}
  \times \dots \times \mathbb{Z}_{L_d}$ come first (element $g = t\,|P| + p$ is the
  translation $t$ after the point-group element $p$, NetKet's order). Writing $g = t_g p_g$,
  $g^{-1} h = p_g^{-1}\, t_{h} t_g^{-1}\, p_h$, so for every pair $(p_g, p_h)$ the
  convolution is a periodic convolution over the translations, which is diagonal in the
  momenta $k$ of $T$. Real feature maps are transformed with a real Fourier basis over $T$
  (cosines, and sines of the momenta $k \neq -k$), in which the convolution is a real
  $(|P| F_{in}) \times (|P| F)$ matrix at every self-conjugate momentum and a
  $2 \times 2$-block (complex multiplication) matrix at every pair $\pm k$: per sample
  $|T|\,(|P|F)^2$ real multiply-adds instead of $(|G| F)^2$ for the dense kernel.
- `"irreps"`, for any group: the group Fourier transform over the irreducible
  representations $\rho$ (the group's `irrep_matrices()`), where the convolution is the
  matrix product $\hat y_\rho = \sum_j \hat f^{(j)}_\rho \hat W_\rho^{(j)}$.
"""

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from .._custom_types import Initializer
from .._misc import inexact_dtype, positive_int
from .._typecheck import check_fields
from ..symmetry import check_group, PermutationGroup
from ._activations import reim_selu


#: NetKet's default kernel initialiser of the symmetric layers: truncated normal with variance
#: `1 / (in_features * n_kernel)` for kernels `(features, in_features, n_kernel)`.
default_equivariant_init: Initializer = jax.nn.initializers.lecun_normal(in_axis=1, out_axis=0)


# -- helpers shared by the layers and the GCNN ---------------------------------------------


def check_shape(group: PermutationGroup, shape: object, name: str = "shape") -> tuple[int, ...]:
    """`shape` (the extent of the translation group) checked against `group`'s order.

    The group must be a space group in NetKet's order: element `t * n_point + p` is the
    translation `t` (a C-order index into `shape`) composed with the element `p` of the first
    `n_point` elements, and the translations `0, n_point, 2 n_point, ...` form the periodic
    group `Z_shape[0] x Z_shape[1] x ...`, each of which moves every site (so `prod(shape)`
    divides the number of sites). A group of a periodic lattice (with a `lattice_action`)
    needs `shape` equal to the lattice's extent.

    **Raises:** `ValueError` naming `name` if `shape` is not a tuple of positive integers, is
    not the extent of the group's lattice, or the group does not have this structure.
    """
    if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
        shape = (shape,)
    if (
        not isinstance(shape, Sequence)
        or isinstance(shape, str)
        or not shape
        or not all(isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1
                   for s in shape)
    ):
        raise ValueError(
            f"{name} must be a tuple of positive integers (the extent of the translation "
            f"group, e.g. a lattice's extent), got {name}={shape!r}."
        )
    shape = tuple(int(s) for s in shape)
    action = getattr(group, "lattice_action", None)
    if action is not None and all(action.pbc) and shape != tuple(action.extent):
        extent = tuple(int(e) for e in action.extent)
        raise ValueError(
            f"{name}={shape} does not match the group, which acts on a periodic lattice of "
            f"extent {extent}; give {name}={extent} (or leave {name}=None to read it from "
            "the group)."
        )
    n_cells = math.prod(shape)
    n = group.n_elements
    if n % n_cells:
        raise ValueError(
            f"{name}={shape} has {n_cells} translations, which does not divide the group "
            f"order {n}; give the extent of the lattice whose space group this is."
        )
    if group.n_sites % n_cells:
        raise ValueError(
            f"{name}={shape} has {n_cells} translations, which does not divide the "
            f"{group.n_sites} sites the group permutes (translations move every site, so "
            f"their orbits have {n_cells} sites each); give the extent of the lattice whose "
            "space group this is, or use mode='irreps'."
        )
    n_point = n // n_cells
    pt = group.product_table
    t = np.arange(n_cells) * n_point
    p = np.arange(n_point)
    if not np.array_equal(pt[t[:, None], p[None, :]], t[:, None] + p[None, :]):
        raise ValueError(
            f"the group is not ordered as a space group with {name}={shape}: element "
            f"t*{n_point} + p must be the translation t times element p (NetKet's order, as "
            "Grid.space_group() gives); use mode='irreps' for other groups."
        )
    coords = np.indices(shape).reshape(len(shape), -1).T
    summed = (coords[:, None, :] + coords[None, :, :]) % np.asarray(shape)
    expected = np.ravel_multi_index(tuple(np.moveaxis(summed, -1, 0)), shape) * n_point
    if not np.array_equal(pt[t[:, None], t[None, :]], expected):
        raise ValueError(
            f"the translations of the group (elements 0, {n_point}, {2 * n_point}, ...) do not "
            f"compose as the periodic grid {name}={shape}; give the lattice's extent or use "
            "mode='irreps'."
        )
    moved = group.perms[t[1:]] != np.arange(group.n_sites)
    if not np.all(moved):
        bad = int(t[1:][np.flatnonzero(~moved.all(axis=1))[0]])
        raise ValueError(
            f"with {name}={shape} element {bad} of the group would be a translation, but it "
            "leaves a site in place (a translation moves every site); give the lattice's "
            "extent or use mode='irreps'."
        )
    return shape


class _FFTPlan(NamedTuple):
    n_cells: int
    n_point: int
    n_self: int  # self-conjugate momenta (k = -k), one real row each
    n_pair: int  # pairs {k, -k}, two rows each (cosine, -sine)
    kernel_index: Any  # _Rows (P, P*T): element p1^-1 t_d p2 at [p1, p2*T + d]
    kernel_inverse: Any  # _Rows: the inverse permutations (each row is one of G)
    dft: np.ndarray  # (T, T) real Fourier basis (rows: momenta components, columns: t)
    idft: np.ndarray  # (T, T) its inverse


@functools.lru_cache(maxsize=64)
def fft_plan(group: PermutationGroup, shape: tuple[int, ...]) -> _FFTPlan:
    """The constants of the `"fft"` group convolution (for a `shape` checked by `check_shape`)."""
    n_cells = math.prod(shape)
    n_point = group.n_elements // n_cells
    pt, inv = group.product_table, group.inverse
    # element p1^-1 * (t_d p2) = p1^-1 * (d*P + p2)
    kernel_index = pt[inv[:n_point]][:, np.arange(n_cells * n_point)]
    kernel_index = kernel_index.reshape(n_point, n_cells, n_point).transpose(0, 2, 1)
    ext = np.asarray(shape)
    coords = np.indices(shape).reshape(len(shape), -1).T
    neg = np.ravel_multi_index(tuple(((-coords) % ext).T), shape)
    self_conj = np.flatnonzero(neg == np.arange(n_cells))
    reps = np.flatnonzero(neg > np.arange(n_cells))
    theta = 2 * np.pi * ((coords[:, None, :] * coords[None, :, :]) / ext).sum(-1)
    rows = [np.cos(theta[k]) for k in self_conj]
    weights = [1.0 / n_cells] * len(self_conj)
    for k in reps:
        rows += [np.cos(theta[k]), -np.sin(theta[k])]
        weights += [2.0 / n_cells] * 2
    dft = np.array(rows)
    idft = dft.T * np.array(weights)
    rows = kernel_index.reshape(n_point, n_point * n_cells)
    return _FFTPlan(
        n_cells,
        n_point,
        len(self_conj),
        len(reps),
        _Rows(rows),
        _Rows(np.argsort(rows, axis=1)),
        dft,
        idft,
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _permuted(x, index, inverse):
    """`x[..., index.rows]` for an `(R, n)` index whose every row is a permutation of the last
    axis of `x` (`inverse` holds the inverse permutations): the gradient is a gather with the
    inverse permutations summed over rows, not a scatter-add (slow on CPU)."""
    return x[..., index.rows]


def _permuted_fwd(x, index, inverse):
    return _permuted(x, index, inverse), None


def _permuted_bwd(index, inverse, _, ct):
    rows = np.arange(index.rows.shape[0])
    return (ct[..., rows[:, None], inverse.rows].sum(axis=-2),)


_permuted.defvjp(_permuted_fwd, _permuted_bwd)


class _Rows:
    """A hashable wrapper of an integer array (a static argument of `permuted`)."""

    def __init__(self, rows: np.ndarray):
        self.rows = np.asarray(rows)
        self._key = (self.rows.shape, self.rows.tobytes())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rows) and self._key == other._key


@functools.lru_cache(maxsize=64)
def _perm_rows(group: PermutationGroup) -> tuple[_Rows, _Rows]:
    return _Rows(group.perms), _Rows(np.argsort(group.perms, axis=1))


def complex_dtype(dtype: Any) -> np.dtype:
    """The complex dtype of the precision of `dtype` (complex64 for float32/complex64)."""
    real = np.dtype(jnp.finfo(dtype).dtype)
    return np.dtype(np.complex64) if real == np.float32 else np.dtype(np.complex128)


def _real_matmul(a: Array, x: Array) -> Array:
    """`a @ x` for a real matrix `a` and a real or complex `x` (two real products if complex)."""
    if jnp.iscomplexobj(x):
        return jax.lax.complex(a @ x.real, a @ x.imag)
    return a @ x


def _matmul(a: Array, x: Array) -> Array:
    """`a @ x` without promoting a real factor to complex (real ones are split)."""
    if jnp.iscomplexobj(a) and not jnp.iscomplexobj(x):
        return jax.lax.complex(a.real @ x, a.imag @ x)
    if jnp.iscomplexobj(x) and not jnp.iscomplexobj(a):
        return _real_matmul(a, x)
    return a @ x


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(x: Array) -> Array:
    # exp(min(x, 0)) - 1 instead of expm1 (same values to 1e-16 absolute; 4x faster on CPU)
    neg = jnp.exp(jnp.minimum(x, 0)) - 1
    return _SELU_SCALE * (jnp.maximum(x, 0) + _SELU_ALPHA * neg)


def fast_activation(fn: Any) -> Any:
    """A faster implementation of the same function for activations nqzoo knows (`reim_selu`),
    else `fn`."""
    if fn is reim_selu:
        return _fast_reim_selu
    return fn


def _fast_reim_selu(x: Array) -> Array:
    if jnp.iscomplexobj(x):
        r2 = math.sqrt(2.0)
        return jax.lax.complex(_selu(r2 * x.real), _selu(r2 * x.imag)) / r2
    return _selu(x)


def _mask_indices(mask: Any, size: int, name: str) -> tuple[int, ...] | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != (size,) or not (np.issubdtype(m.dtype, np.number) or m.dtype == np.bool_):
        raise ValueError(f"{name} must be an array of shape ({size},), got shape {m.shape}.")
    kept = tuple(int(i) for i in np.flatnonzero(m))
    if not kept:
        raise ValueError(f"{name} must keep at least one kernel entry (all are zero).")
    return kept


def _full_kernel(kernel: Array, kept: tuple[int, ...] | None, size: int) -> Array:
    if kept is None:
        return kernel
    full = jnp.zeros((*kernel.shape[:-1], size), kernel.dtype)
    return full.at[..., np.asarray(kept)].set(kernel)


def _add_bias(h: Array, bias: Array | None) -> Array:
    """`h` `(G, F, B)` plus `bias` `(F,)` broadcast over group elements and batch."""
    if bias is None:
        return h
    if jnp.iscomplexobj(bias) and not jnp.iscomplexobj(h):
        h = h.astype(bias.dtype)
    return h + bias.astype(h.dtype)[None, :, None]


# -- the layers ------------------------------------------------------------------------------


class DenseSymm(eqx.Module):
    r"""The lift from the sites to a permutation group (NetKet's `DenseSymm`).

    $$y^{(f)}_g = \sum_{i, r} x^{(i)}_r\, W^{(f, i)}_{\pi_g(r)} + b^{(f)},$$

    where $\pi_g$ = `symmetries.perms[g]`. Acting on the input with a group element $h$
    permutes the output over the group: $y(h\,x)_g = y(x)_{g h}$. Parameters as NetKet:
    `kernel` `(features, in_features, n_sites)` (`(…, n_kept)` with a `mask`), `bias`
    `(features,)`.
    """

    kernel: Inexact[Array, "{self.features} {self.in_features} {self.n_kernel}"]
    bias: Inexact[Array, "{self.features}"] | None  # noqa: F821
    symmetries: PermutationGroup = eqx.field(static=True)
    features: int = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    kernel_indices: tuple[int, ...] | None = eqx.field(static=True)

    def __init__(
        self,
        symmetries: PermutationGroup | ArrayLike,
        features: int | np.integer,
        *,
        in_features: int | np.integer = 1,
        use_bias: bool = True,
        mask: ArrayLike | None = None,
        param_dtype: Any = jnp.float64,
        kernel_init: Initializer = default_equivariant_init,
        bias_init: Initializer = jax.nn.initializers.zeros,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `symmetries`: a [`nqzoo.symmetry.PermutationGroup`][] or its `(n_elements, n_sites)`
          permutation array.
        - `features`: output features $F$.
        - `in_features`: input features (1 for a configuration).
        - `use_bias`: whether to add $b$.
        - `mask`: optional `(n_sites,)` array; only kernel entries at its non-zero sites are
          parameters (the others are zero).
        - `param_dtype`: real or complex dtype of the parameters.
        - `kernel_init`, `bias_init`: NetKet's defaults (`lecun_normal(in_axis=1,
          out_axis=0)`, zeros).
        - `key`: a JAX PRNG key.
        """
        group = symmetries if isinstance(symmetries, PermutationGroup) else None
        if group is None:
            group = check_group(symmetries, np.asarray(symmetries).shape[-1])
        self.symmetries = group
        self.features = positive_int(features, "features")
        self.in_features = positive_int(in_features, "in_features")
        self.kernel_indices = _mask_indices(mask, group.n_sites, "mask")
        dtype = inexact_dtype(param_dtype)
        wkey, bkey = jax.random.split(key)
        self.kernel = kernel_init(wkey, (self.features, self.in_features, self.n_kernel), dtype)
        self.bias = bias_init(bkey, (self.features,), dtype) if use_bias else None

    def __check_init__(self):
        check_fields(self)

    @property
    def n_kernel(self) -> int:
        """Kernel entries per feature pair: `n_sites`, or the number kept by the mask."""
        if self.kernel_indices is None:
            return self.symmetries.n_sites
        return len(self.kernel_indices)

    def lift(self, x: Array) -> Array:
        """`(B, in_features, n_sites)` -> `(G, F, B)` (the layout the GCNN works in)."""
        group = self.symmetries
        w = _full_kernel(self.kernel, self.kernel_indices, group.n_sites)
        # w_full[(g, f), (i, r)] = W[f, i, perms[g, r]]
        w = _permuted(w, *_perm_rows(group)).transpose(2, 0, 1, 3)
        w = w.reshape(group.n_elements * self.features, self.in_features * group.n_sites)
        batch = x.shape[0]
        xt = x.reshape(batch, -1).T
        if not jnp.iscomplexobj(w):
            xt = xt.astype(w.dtype)
        elif not jnp.iscomplexobj(xt):
            xt = xt.astype(w.real.dtype)
        h = _matmul(w, xt).reshape(group.n_elements, self.features, batch)
        return _add_bias(h, self.bias)

    def __call__(
        self, x: Inexact[ArrayLike, "*batch {self.in_features} {self.symmetries.n_sites}"]
    ) -> Inexact[Array, "*batch {self.features} {self.symmetries.n_elements}"]:
        """**Arguments:**

        - `x`: `(*batch, in_features, n_sites)`.

        **Returns:** `(*batch, features, n_elements)`.
        """
        check_fields(self)
        x = jnp.asarray(x)
        batch = x.shape[:-2]
        h = self.lift(x.reshape(-1, *x.shape[-2:]))
        return jnp.moveaxis(h, -1, 0).swapaxes(-1, -2).reshape(*batch, self.features, -1)


class DenseEquivariant(eqx.Module):
    r"""Group convolution over a permutation group (NetKet's `DenseEquivariant`).

    $$y^{(f)}_h = \sum_{g, i} x^{(i)}_g\, W^{(f, i)}_{g^{-1} h} + b^{(f)},$$

    equivariant: shifting the input over the group, $x_g \to x_{ug}$, shifts the output the
    same way. Computed in the `"fft"` form (space groups with translations of extent `shape`;
    see the module docstring) or the `"irreps"` form (any group). Parameters as NetKet:
    `kernel` `(features, in_features, n_elements)` (`(…, n_kept)` with a `mask`), `bias`
    `(features,)`.
    """

    kernel: Inexact[Array, "{self.features} {self.in_features} {self.n_kernel}"]
    bias: Inexact[Array, "{self.features}"] | None  # noqa: F821
    symmetries: PermutationGroup = eqx.field(static=True)
    features: int = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    mode: str = eqx.field(static=True)
    shape: tuple[int, ...] | None = eqx.field(static=True)
    kernel_indices: tuple[int, ...] | None = eqx.field(static=True)

    def __init__(
        self,
        symmetries: PermutationGroup | ArrayLike,
        features: int | np.integer,
        in_features: int | np.integer,
        *,
        mode: str = "auto",
        shape: Sequence[float | int | np.floating | np.integer] | None = None,
        use_bias: bool = True,
        mask: ArrayLike | None = None,
        param_dtype: Any = jnp.float64,
        kernel_init: Initializer = default_equivariant_init,
        bias_init: Initializer = jax.nn.initializers.zeros,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `symmetries`: a [`nqzoo.symmetry.PermutationGroup`][] or its permutation array.
        - `features`, `in_features`: output and input features.
        - `mode`: `"fft"` (needs `shape`), `"irreps"`, or `"auto"` (`"fft"` when `shape` is
          given or the group is a periodic lattice's space or translation group).
        - `shape`: the extent of the translation group, for `"fft"`.
        - `use_bias`, `mask` (`(n_elements,)`), `param_dtype`, `kernel_init`, `bias_init`,
          `key`: as [`nqzoo.nn.DenseSymm`][].
        """
        group = symmetries if isinstance(symmetries, PermutationGroup) else None
        if group is None:
            group = check_group(symmetries, np.asarray(symmetries).shape[-1])
        self.symmetries = group
        self.mode, self.shape = resolve_mode(group, mode, shape)
        self.features = positive_int(features, "features")
        self.in_features = positive_int(in_features, "in_features")
        self.kernel_indices = _mask_indices(mask, group.n_elements, "mask")
        dtype = inexact_dtype(param_dtype)
        wkey, bkey = jax.random.split(key)
        self.kernel = kernel_init(wkey, (self.features, self.in_features, self.n_kernel), dtype)
        self.bias = bias_init(bkey, (self.features,), dtype) if use_bias else None

    def __check_init__(self):
        check_fields(self)

    @property
    def n_kernel(self) -> int:
        """Kernel entries per feature pair: `n_elements`, or the number kept by the mask."""
        if self.kernel_indices is None:
            return self.symmetries.n_elements
        return len(self.kernel_indices)

    def convolve(self, h: Array) -> Array:
        """`(G, in_features, B)` -> `(G, features, B)` (the GCNN's layout)."""
        kernel = _full_kernel(self.kernel, self.kernel_indices, self.symmetries.n_elements)
        if self.mode == "fft":
            out = _fft_convolve(self.symmetries, self.shape, kernel, h)
        else:
            out = _irrep_convolve(self.symmetries, kernel, h)
        return _add_bias(out, self.bias)

    def __call__(
        self, x: Inexact[ArrayLike, "*batch {self.in_features} {self.symmetries.n_elements}"]
    ) -> Inexact[Array, "*batch {self.features} {self.symmetries.n_elements}"]:
        """**Arguments:**

        - `x`: `(*batch, in_features, n_elements)`.

        **Returns:** `(*batch, features, n_elements)`.
        """
        check_fields(self)
        x = jnp.asarray(x)
        batch = x.shape[:-2]
        h = x.reshape(-1, *x.shape[-2:]).transpose(2, 1, 0)
        out = self.convolve(h)
        return out.transpose(2, 1, 0).reshape(*batch, self.features, -1)


def resolve_mode(
    group: PermutationGroup, mode: object, shape: object
) -> tuple[str, tuple[int, ...] | None]:
    """`(mode, shape)` checked: `"auto"` becomes `"fft"` with a `shape`, else `"irreps"`."""
    if mode not in ("auto", "fft", "irreps"):
        raise ValueError(f"mode must be 'auto', 'fft' or 'irreps', got mode={mode!r}.")
    if mode != "irreps" and shape is None:
        shape = _lattice_shape(group)
    if mode == "auto":
        mode = "irreps" if shape is None else "fft"
    if mode == "fft":
        if shape is None:
            raise ValueError(
                "mode='fft' needs shape, the extent of the translation group (e.g. "
                "shape=lattice.extent; a periodic Grid's space group carries it), got shape=None."
            )
        return "fft", check_shape(group, shape)
    return "irreps", None


def _lattice_shape(group: PermutationGroup) -> tuple[int, ...] | None:
    """The extent of a periodic lattice's space or translation group (from its
    `lattice_action`) when the group has the `"fft"` structure, else None."""
    action = getattr(group, "lattice_action", None)
    if action is None or not all(action.pbc):
        return None
    try:
        return check_shape(group, tuple(action.extent))
    except ValueError:
        return None


def _fft_convolve(
    group: PermutationGroup, shape: tuple[int, ...], kernel: Array, h: Array
) -> Array:
    plan = fft_plan(group, shape)
    n_t, n_p, n_s, n_pair = plan.n_cells, plan.n_point, plan.n_self, plan.n_pair
    features, in_features, _ = kernel.shape
    batch = h.shape[-1]
    rdtype = jnp.finfo(kernel.dtype).dtype
    dft = jnp.asarray(plan.dft, rdtype)
    idft = jnp.asarray(plan.idft, rdtype)
    # kernel filters over translations: kf[p1, i, p2, f, d] = W[f, i, p1^-1 t_d p2]
    kf = _permuted(kernel, plan.kernel_index, plan.kernel_inverse)  # (f, i, p1, (p2, d))
    kf = kf.reshape(features, in_features, n_p, n_p, n_t)
    c_in, c_out = n_p * in_features, n_p * features
    kh = _real_matmul(dft, kf.transpose(4, 3, 0, 2, 1).reshape(n_t, -1))
    kh = kh.reshape(n_t, c_out, c_in)  # (m, (p2, f), (p1, i)): left-multiplies (c_in, B)
    m_self = kh[:n_s]
    a, b = kh[n_s::2], kh[n_s + 1 :: 2]  # Re and Im of the kernel at the pair momenta
    m_pair = jnp.concatenate(
        [jnp.concatenate([a, -b], axis=2), jnp.concatenate([b, a], axis=2)], axis=1
    )
    hh = _real_matmul(dft, h.reshape(n_t, -1)).reshape(n_t, c_in, batch)
    if n_s % 2 == 0:
        # self-conjugate momenta two by two (block-diagonal pairs): one batched product over
        # all momenta, without slicing the feature map
        if n_s:
            s1, s2 = m_self[0::2], m_self[1::2]
            zero = jnp.zeros_like(s1)
            m_self2 = jnp.concatenate(
                [jnp.concatenate([s1, zero], axis=2), jnp.concatenate([zero, s2], axis=2)],
                axis=1,
            )
            m_pair = jnp.concatenate([m_self2, m_pair], axis=0)
        y = _matmul(m_pair, hh.reshape(n_t // 2, 2 * c_in, batch))
    else:
        y_self = _matmul(m_self, hh[:n_s])
        if n_pair:
            y_pair = _matmul(m_pair, hh[n_s:].reshape(n_pair, 2 * c_in, batch))
            y = jnp.concatenate([y_self, y_pair.reshape(2 * n_pair, c_out, batch)], axis=0)
        else:
            y = y_self
    y = _real_matmul(idft, y.reshape(n_t, -1))
    return y.reshape(n_t * n_p, features, batch)


class _IrrepPlan(NamedTuple):
    dims: tuple[int, ...]  # distinct irrep dimensions
    matrices: tuple[np.ndarray, ...]  # per dimension d: (n_d, G, d, d)


@functools.lru_cache(maxsize=64)
def irrep_plan(group: PermutationGroup) -> _IrrepPlan:
    """The irreducible representations of `group`, stacked by dimension."""
    by_dim: dict[int, list[np.ndarray]] = {}
    for rho in group.irrep_matrices():
        by_dim.setdefault(rho.shape[-1], []).append(np.asarray(rho))
    dims = tuple(sorted(by_dim))
    return _IrrepPlan(dims, tuple(np.stack(by_dim[d]) for d in dims))


def _irrep_convolve(group: PermutationGroup, kernel: Array, h: Array) -> Array:
    n = group.n_elements
    features, in_features, _ = kernel.shape
    batch = h.shape[-1]
    plan = irrep_plan(group)
    cdtype = complex_dtype(kernel.dtype)
    out = None
    flat = h.reshape(n, -1)
    for d, rho in zip(plan.dims, plan.matrices):
        rho_j = jnp.asarray(rho, cdtype)  # (n_d, G, d, d)
        n_d = rho.shape[0]
        fwd = rho_j.reshape(n_d, n, d * d).transpose(0, 2, 1).reshape(n_d * d * d, n)
        # f_rho = sum_g f_g rho(g); W_rho = sum_g W_g rho(g)
        xh = _matmul(fwd, flat).reshape(n_d, d, d, in_features, batch)
        wh = jnp.einsum("fig,ngab->nfiab", kernel.astype(cdtype), rho_j)
        # y_rho = sum_i f_rho^(i) W_rho^(f, i)
        yh = jnp.einsum("nabiz,nfibc->nacfz", xh, wh)
        # y_g = sum_rho d/|G| tr(rho(g)^dagger y_rho)
        inv = (rho_j.conj() * (d / n)).reshape(n_d, n, d * d).transpose(1, 0, 2)
        y = inv.reshape(n, n_d * d * d) @ yh.reshape(n_d * d * d, features * batch)
        out = y if out is None else out + y
    out = out.reshape(n, features, batch)
    if not (jnp.iscomplexobj(kernel) or jnp.iscomplexobj(h)):
        out = out.real
    return out
