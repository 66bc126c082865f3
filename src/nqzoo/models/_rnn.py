r"""Recurrent autoregressive networks (NetKet's `netket.experimental.models` RNNs) and their
fast twins, which keep each layer's recurrent memories in an `eqx.nn.State`.

One step `k` of the recurrence visits site $s_k$ (`reorder_idx[k]`) and runs every layer there:
layer 0 reads the local value of the site visited before ($x_{s_{k-1}}$, zero at $k = 0$), layer
$l > 0$ the hidden memory layer $l-1$ has just computed at $s_k$, and each layer also reads its
own hidden memories at the previous neighbours of $s_k$ and the cell memory of step $k-1$. The
slow model runs the steps with one `lax.scan`; the fast model runs one step per `conditional`.
Both go through the same step function, so they agree exactly.
"""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact, Int, PRNGKeyArray, Real

from .._custom_types import Initializer
from .._misc import inexact_dtype, site_index
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert
from ..nn import AbstractRNNCell, GRU1DCell, initializers, LSTMCell, SimpleRNNCell
from ..nn._rnn_ordering import resolve_ordering, step_tables, StepTables
from ._arnn import feature_list
from ._autoreg import (
    AbstractARNN,
    AbstractFastARNN,
    check_autoregressive_hilbert,
    check_machine_pow,
    normalize_log_conditionals,
)


#: An integer array of an ordering: a NumPy or JAX array, or (nested) sequences of ints.
IndexArray = ArrayLike | Sequence

#: The recurrent memories of one layer at one step: `(cell memory (F,), hidden memories
#: still to be read (R, F))`.
Carry = tuple[Array, Array]


class AbstractRNN(AbstractARNN):
    r"""A recurrent autoregressive network: a stack of recurrent cells scanned over the sites
    in an autoregressive order (NetKet's `RNN`).

    With $h^{(l)}_i$ the hidden memory of layer $l$ at site $i$,
    $h^{(l)}_{s_k} = \mathrm{cell}_l\big(u^{(l)}_k,\, c^{(l)}_{k-1},\,
    [h^{(l)}_j]_{j \in \mathrm{prev}(s_k)}\big)$ with $u^{(0)}_k = x_{s_{k-1}}$ ($0$ at
    $k = 0$) and $u^{(l)}_k = h^{(l-1)}_{s_k}$; the last layer has `local_size` features $z$,
    and $\log\psi_i(k \mid \cdot) = z_{ik} - \frac1p \log\sum_{k'} e^{p\,\mathrm{Re}\,z_{ik'}}$
    ($p$ = `machine_pow`), so that $\sum_x |\psi(x)|^p = 1$.

    Without an ordering (`reorder_idx is None`), the sites are visited in order and each reads
    the one before (a chain). Concrete models provide the cells (`layers`) and the ordering
    fields; everything else is shared.
    """

    layers: eqx.AbstractVar[tuple[AbstractRNNCell, ...]]
    reorder_idx: eqx.AbstractVar[tuple[int, ...] | None]
    inv_reorder_idx: eqx.AbstractVar[tuple[int, ...] | None]
    prev_neighbors: eqx.AbstractVar[tuple[tuple[int, ...], ...] | None]

    @property
    def param_dtype(self) -> np.dtype:
        """The parameters' dtype, in which the local values enter the first layer."""
        return jax.tree.leaves(eqx.filter(self.layers[0], eqx.is_inexact_array))[0].dtype

    @property
    def tables(self) -> StepTables | None:
        """What each step reads (`None` for a chain in site order)."""
        if self.reorder_idx is None:
            return None
        return step_tables(self.reorder_idx, self.inv_reorder_idx, self.prev_neighbors)

    def reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """`x` with the site axis in autoregressive order (NetKet's `reorder`; here the site
        axis is the last by default): entry `k` is site `reorder_idx[k]`.
        `model.reorder(jnp.arange(N))` is the order in which sites are sampled."""
        x = jnp.asarray(x)
        return x if self.reorder_idx is None else jnp.take(x, np.asarray(self.reorder_idx), axis)

    def inverse_reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """The inverse of [`reorder`][nqzoo.models.AbstractRNN.reorder]."""
        x = jnp.asarray(x)
        if self.inv_reorder_idx is None:
            return x
        return jnp.take(x, np.asarray(self.inv_reorder_idx), axis)

    def initial_carries(self) -> tuple[Carry, ...]:
        """The all-zero memories of every layer before the first step: a cell memory `(F,)`
        and the hidden memories later steps still read, `(R, F)` (`R = 1` for a chain, the
        previous site; with an ordering, the most memories needed at once plus one row that
        stays zero, for missing neighbours)."""
        tables = self.tables
        rows = 1 if tables is None else tables.n_slots
        dtype = self.param_dtype
        return tuple(
            (jnp.zeros((cell.features,), dtype), jnp.zeros((rows, cell.features), dtype))
            for cell in self.layers
        )

    def recurrent_step(
        self,
        value: Inexact[Array, ""],
        k: Int[Array, ""],
        carries: tuple[Carry, ...],
    ) -> tuple[Inexact[Array, " {self.hilbert.local_size}"], tuple[Carry, ...]]:
        """Step `k` of every layer: the raw outputs `z` of site `reorder_idx[k]`.

        **Arguments:**

        - `value`: the local value of the site visited at step `k - 1`, in the parameters'
          dtype (ignored at `k = 0`).
        - `k`: the step, an int32 scalar (may be traced).
        - `carries`: every layer's memories after step `k - 1`.

        **Returns:** `(z (local_size,), carries after step k)`.
        """
        tables = self.tables
        h = jnp.where(k >= 1, value, jnp.zeros((), value.dtype))[None]
        new = []
        for cell, (c, memories) in zip(self.layers, carries):
            if tables is None:
                # a chain: the previous site's hidden memory (zero before the first site)
                c, h = cell(h, c, memories)
                memories = h[None]
            else:
                hidden = jnp.take(memories, jnp.asarray(tables.read_slot)[k], axis=0)
                c, h = cell(h, c, hidden)
                slot = jnp.asarray(tables.write_slot)[k]
                memories = lax.dynamic_update_index_in_dim(memories, h, slot, axis=0)
            new.append((c, memories))
        return h, tuple(new)

    def conditionals_log_psi(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """Normalised log-conditionals `log ψ_i(k | earlier sites)` of every site, in site
        order (one `lax.scan` over the steps).

        **Arguments:**

        - `x`: configurations `(*batch, N)` of local values.

        **Returns:** `(*batch, N, local_size)`; row `i` is site `i` given the sites visited
        before it.
        """
        for cell in self.layers:
            check_fields(cell)
        x = jnp.asarray(x)
        n, local_size = self.hilbert.size, self.hilbert.local_size
        batch = x.shape[:-1]
        flat = x.reshape(-1, n).astype(self.param_dtype)
        tables = self.tables
        carries = self.initial_carries()

        def one(config):
            # the value read at step k is that of the site visited at step k - 1
            values = jnp.roll(config, 1) if tables is None else config[tables.prev_site]

            def body(carries, inputs):
                k, value = inputs
                z, carries = self.recurrent_step(value, k, carries)
                return carries, z

            _, z = lax.scan(body, carries, (jnp.arange(n, dtype=jnp.int32), values))
            return z if tables is None else z[tables.step]

        z = jax.vmap(one)(flat)
        return normalize_log_conditionals(z, self.machine_pow).reshape(*batch, n, local_size)


def _init_rnn(
    self,
    cell_cls: type,
    hilbert,
    layers,
    features,
    reorder_idx,
    inv_reorder_idx,
    prev_neighbors,
    graph,
    param_dtype,
    kernel_init,
    bias_init,
    machine_pow,
    key,
) -> None:
    """Fill in the fields of a recurrent model (shared by the final classes' `__init__`)."""
    self.hilbert = check_autoregressive_hilbert(hilbert)
    self.machine_pow = check_machine_pow(machine_pow)
    self.features = feature_list(features, layers, hilbert.local_size)
    param_dtype = inexact_dtype(param_dtype)
    ordering = resolve_ordering(
        hilbert.size,
        reorder_idx=reorder_idx,
        inv_reorder_idx=inv_reorder_idx,
        prev_neighbors=prev_neighbors,
        graph=graph,
    )
    self.reorder_idx, self.inv_reorder_idx, self.prev_neighbors = ordering or (None,) * 3
    n_neighbors = 1 if ordering is None else len(self.prev_neighbors[0])
    widths = (1, *self.features)
    self.layers = tuple(
        cell_cls(
            widths[i],
            widths[i + 1],
            n_neighbors,
            param_dtype,
            kernel_init=kernel_init,
            bias_init=bias_init,
            key=k,
        )
        for i, k in enumerate(jax.random.split(key, len(self.features)))
    )


class RNN(AbstractRNN):
    r"""A recurrent autoregressive network of any cell, by default the plain
    [`nqzoo.nn.SimpleRNNCell`][] $h = \tanh([x, h_{\mathrm{prev}}] W + b)$ (see
    [`nqzoo.models.AbstractRNN`][] for the network). NetKet's `RNN` is the base class its
    LSTM and GRU networks fill in with a cell; here the cell is an argument.
    """

    layers: tuple[AbstractRNNCell, ...]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    reorder_idx: tuple[int, ...] | None = eqx.field(static=True)
    inv_reorder_idx: tuple[int, ...] | None = eqx.field(static=True)
    prev_neighbors: tuple[tuple[int, ...], ...] | None = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        layers: int | np.integer,
        features: int | np.integer | Sequence[float | int | np.floating | np.integer],
        reorder_idx: IndexArray | None = None,
        inv_reorder_idx: IndexArray | None = None,
        prev_neighbors: IndexArray | None = None,
        graph: object = None,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = jax.nn.initializers.orthogonal(),
        bias_init: Initializer = initializers.zeros,
        machine_pow: float | int | np.floating | np.integer = 2,
        *,
        cell: type[AbstractRNNCell] = SimpleRNNCell,
        key: PRNGKeyArray,
    ):
        """As [`nqzoo.models.LSTMNet`][], plus `cell`: the class of the recurrent cells
        (a subclass of [`nqzoo.nn.AbstractRNNCell`][] built as
        `cell(in_features, features, n_neighbors, param_dtype, kernel_init=...,
        bias_init=..., key=...)`), [`nqzoo.nn.SimpleRNNCell`][] by default."""
        if not (isinstance(cell, type) and issubclass(cell, AbstractRNNCell)):
            raise TypeError(
                f"cell must be a subclass of nqzoo.nn.AbstractRNNCell (e.g. "
                f"nqzoo.nn.SimpleRNNCell, LSTMCell, GRU1DCell), got cell={cell!r}."
            )
        _init_rnn(
            self, cell, hilbert, layers, features, reorder_idx, inv_reorder_idx,
            prev_neighbors, graph, param_dtype, kernel_init, bias_init, machine_pow, key,
        )  # fmt: skip


class LSTMNet(AbstractRNN):
    r"""Long short-term memory network (NetKet's `LSTMNet`): [`nqzoo.models.AbstractRNN`][]
    with [`nqzoo.nn.LSTMCell`][] cells, on a chain or on any ordering (a 2D lattice in snake
    order, each site reading its previous neighbours).

    ??? cite "Reference"

        ```bibtex
        @article{hibatallah2020recurrent,
          title={Recurrent neural network wave functions},
          author={Hibat-Allah, Mohamed and Ganahl, Martin and Hayward, Lauren E. and
                  Melko, Roger G. and Carrasquilla, Juan},
          journal={Physical Review Research}, volume={2}, number={2}, pages={023358},
          year={2020}
        }
        ```
    """

    layers: tuple[LSTMCell, ...]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    reorder_idx: tuple[int, ...] | None = eqx.field(static=True)
    inv_reorder_idx: tuple[int, ...] | None = eqx.field(static=True)
    prev_neighbors: tuple[tuple[int, ...], ...] | None = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        layers: int | np.integer,
        features: int | np.integer | Sequence[float | int | np.floating | np.integer],
        reorder_idx: IndexArray | None = None,
        inv_reorder_idx: IndexArray | None = None,
        prev_neighbors: IndexArray | None = None,
        graph: object = None,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = jax.nn.initializers.orthogonal(),
        bias_init: Initializer = initializers.zeros,
        machine_pow: float | int | np.floating | np.integer = 2,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: a homogeneous, unconstrained discrete space (Spin, Qubit, Fock).
        - `layers`: number of recurrent layers (at least 1).
        - `features`: width of the hidden memories, an int `f` (giving
          `(f,) * (layers - 1) + (local_size,)`) or a tuple of `layers` widths ending in
          `hilbert.local_size`.
        - `reorder_idx`: the site visited at each step, `(N,)`; or
        - `inv_reorder_idx`: the step of each site, `(N,)` (give either, or both).
        - `prev_neighbors`: the previous neighbours each site reads, `(N, m)`, `-1` padded.
        - `graph`: an nqzoo lattice or a NetKet graph, from which the missing ones are
          derived as NetKet does ([`nqzoo.nn.graph_ordering`][]; on rectangular lattices the
          snake path). Give none of these four for a chain in site order; see also
          [`nqzoo.nn.snake_ordering`][].
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`: kernel initialiser (orthogonal, NetKet's default).
        - `bias_init`: bias initialiser (zeros).
        - `machine_pow`: `p` in `|ψ|^p` (the distribution that is normalised and sampled).
        - `key`: a JAX PRNG key.

        **Raises:** `ValueError` for bad widths, a graph whose size differs from the Hilbert
        space, or an inconsistent ordering (see [`nqzoo.nn.resolve_ordering`][]).
        """
        _init_rnn(
            self, LSTMCell, hilbert, layers, features, reorder_idx, inv_reorder_idx,
            prev_neighbors, graph, param_dtype, kernel_init, bias_init, machine_pow, key,
        )  # fmt: skip


class GRUNet1D(AbstractRNN):
    r"""Gated recurrent unit network (NetKet's `GRUNet1D`): [`nqzoo.models.AbstractRNN`][]
    with [`nqzoo.nn.GRU1DCell`][] cells, which read ONE previous neighbour: a chain (or an
    ordering whose `prev_neighbors` has one column)."""

    layers: tuple[GRU1DCell, ...]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    reorder_idx: tuple[int, ...] | None = eqx.field(static=True)
    inv_reorder_idx: tuple[int, ...] | None = eqx.field(static=True)
    prev_neighbors: tuple[tuple[int, ...], ...] | None = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        layers: int | np.integer,
        features: int | np.integer | Sequence[float | int | np.floating | np.integer],
        reorder_idx: IndexArray | None = None,
        inv_reorder_idx: IndexArray | None = None,
        prev_neighbors: IndexArray | None = None,
        graph: object = None,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = jax.nn.initializers.orthogonal(),
        bias_init: Initializer = initializers.zeros,
        machine_pow: float | int | np.floating | np.integer = 2,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: a homogeneous, unconstrained discrete space (Spin, Qubit, Fock).
        - `layers`: number of recurrent layers (at least 1).
        - `features`: width of the hidden memories, an int `f` (giving
          `(f,) * (layers - 1) + (local_size,)`) or a tuple of `layers` widths ending in
          `hilbert.local_size`.
        - `reorder_idx`: the site visited at each step, `(N,)`; or
        - `inv_reorder_idx`: the step of each site, `(N,)` (give either, or both).
        - `prev_neighbors`: the previous neighbours each site reads, `(N, m)`, `-1` padded.
        - `graph`: an nqzoo lattice or a NetKet graph, from which the missing ones are
          derived as NetKet does ([`nqzoo.nn.graph_ordering`][]; on rectangular lattices the
          snake path). Give none of these four for a chain in site order; see also
          [`nqzoo.nn.snake_ordering`][].
        - `param_dtype`: dtype of the parameters (real or complex).
        - `kernel_init`: kernel initialiser (orthogonal, NetKet's default).
        - `bias_init`: bias initialiser (zeros).
        - `machine_pow`: `p` in `|ψ|^p` (the distribution that is normalised and sampled).
        - `key`: a JAX PRNG key.

        **Raises:** `ValueError` for bad widths, a `prev_neighbors` with more than one
        column (a 2D ordering; GRU cells read one neighbour), a graph whose size differs
        from the Hilbert space, or an inconsistent ordering (see
        [`nqzoo.nn.resolve_ordering`][]).
        """
        _init_rnn(
            self, GRU1DCell, hilbert, layers, features, reorder_idx, inv_reorder_idx,
            prev_neighbors, graph, param_dtype, kernel_init, bias_init, machine_pow, key,
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Fast twins
# --------------------------------------------------------------------------------------------


class AbstractFastRNN(AbstractFastARNN):
    """A recurrent network (the slow model, field `rnn`) whose memories live in an
    `eqx.nn.State`, one entry per layer (`caches`): the cell memory `(F,)` and the hidden
    memories later steps still read, `(R, F)` (`R = 1` on a chain; 11 on a 10x10 snake).

    The parameters, the ordering and the full forward pass are the slow model's
    (`to_slow()` is `rnn`). [`step`][nqzoo.models.AbstractFastRNN.step] runs ONE recurrent
    step of every layer, the cost of one site whatever `N`. Steps must follow the model's
    order: `index` runs over `model.reorder(jnp.arange(N))` (`0, 1, …, N-1` on a chain).
    """

    rnn: eqx.AbstractVar[AbstractRNN]
    caches: eqx.AbstractVar[tuple[eqx.nn.StateIndex, ...]]

    @property
    def hilbert(self) -> AbstractDiscreteHilbert:
        return self.rnn.hilbert

    @property
    def machine_pow(self) -> int | float:
        return self.rnn.machine_pow

    @property
    def features(self) -> tuple[int, ...]:
        return self.rnn.features

    @property
    def reorder_idx(self) -> tuple[int, ...] | None:
        return self.rnn.reorder_idx

    @property
    def inv_reorder_idx(self) -> tuple[int, ...] | None:
        return self.rnn.inv_reorder_idx

    @property
    def prev_neighbors(self) -> tuple[tuple[int, ...], ...] | None:
        return self.rnn.prev_neighbors

    def to_slow(self) -> AbstractRNN:
        """The slow twin (e.g. `LSTMNet` for `FastLSTMNet`), which holds the parameters."""
        return self.rnn

    def reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """See [`nqzoo.models.AbstractRNN.reorder`][]."""
        return self.rnn.reorder(x, axis)

    def inverse_reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """See [`nqzoo.models.AbstractRNN.inverse_reorder`][]."""
        return self.rnn.inverse_reorder(x, axis)

    def conditionals_log_psi(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """The slow model's normalised log-conditionals (see `rnn`)."""
        return self.rnn.conditionals_log_psi(x)

    def read_carries(self, state: object) -> tuple[Carry, ...]:
        """Every layer's memories from `state`, checked against this model's layout: for
        layer `l`, a cell memory `(F_l,)` and hidden memories `(R, F_l)` in the parameters'
        dtype (`R` as in [`initial_carries`][nqzoo.models.AbstractRNN.initial_carries]).

        **Raises:** `TypeError` if `state` is not an `eqx.nn.State`; `ValueError` if it holds
        no cache for some layer (a state of another class, or with fewer layers), one of
        another layout (other features, ordering or `param_dtype`), or was retired by an
        eager `state.set`.
        """
        name = type(self).__name__
        fix = (
            f"Pass the state built together with this model: `model, state = "
            f"eqx.nn.make_with_state({name})(...)` (any state of that structure works: the "
            "sampler starts every chain from an all-zero cache)."
        )
        if not isinstance(state, eqx.nn.State):
            raise TypeError(
                f"{name}.step needs the model's cache state, got state="
                f"{type(state).__name__}. Build the model with `model, state = "
                f"eqx.nn.make_with_state({name})(...)` and pass `state`."
            )
        rnn = self.rnn
        rows = 1 if rnn.tables is None else rnn.tables.n_slots
        dtype = rnn.param_dtype
        carries = []
        for i, (cache, cell) in enumerate(zip(self.caches, rnn.layers)):
            marker = cache.marker
            where = marker if isinstance(marker, str) else f"{name}.caches[{i}]"
            where = f"{where} (layer {i}, {type(cell).__name__} of {cell.features} features)"
            try:
                carry = state.get(cache)
            except KeyError:
                raise ValueError(
                    f"The state has no cache for {where}: it was built for another model "
                    f"(e.g. with fewer layers, or another class). {fix}"
                ) from None
            except ValueError as err:  # Equinox's "Attempted to use old state"
                raise ValueError(
                    f"The state given to {name} for {where} was retired: an eager "
                    "`state.set(...)` invalidates the State it is called on. Pass the state "
                    f"that call returned, or a fresh one. {fix}"
                ) from err
            expected = ((cell.features,), (rows, cell.features))
            leaves = carry if isinstance(carry, tuple) and len(carry) == 2 else (carry,)
            got = tuple((jnp.shape(leaf), jnp.result_type(leaf)) for leaf in leaves)
            if got != tuple((shape, dtype) for shape in expected):
                held = ", ".join(_struct(*leaf) for leaf in got)
                wanted = ", ".join(_struct(shape, dtype) for shape in expected)
                raise ValueError(
                    f"The state holds a cache ({held}) for {where}, which expects "
                    f"({wanted}): the state was built for another model (other features, "
                    f"layers, cell, ordering or param_dtype). {fix}"
                )
            carries.append(carry)
        return tuple(carries)

    def step(
        self,
        x: Real[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State,
    ) -> tuple[Inexact[Array, " {self.hilbert.local_size}"], eqx.nn.State]:
        """One recurrent step from the state: the log-conditional of site `index`, reading only
        the value of the site visited just before it (the rest is in the state).

        The state passed in stays valid: the state from `eqx.nn.make_with_state` can start
        any number of passes (and be given to [`nqzoo.sample`][] afterwards).

        **Arguments:** as [`conditional`][nqzoo.models.AbstractFastARNN.conditional]; `index`
        is the site (the step is `inv_reorder_idx[index]`).

        **Returns:** `(log ψ_index(· | earlier sites) (local_size,), new state)`; NaN for a
        traced `index` outside `0..N-1`.

        **Raises:** `ValueError` for a concrete `index` outside `0..N-1`, or a state that
        holds no cache of the right layout for some layer (a state made for another model:
        see `read_carries`); `TypeError` if
        `state` is not an `eqx.nn.State`.
        """
        rnn = self.rnn
        for cell in rnn.layers:
            check_fields(cell)
        carries = self.read_carries(state)
        x = jnp.asarray(x)
        n = self.hilbert.size
        traced = isinstance(index, jax.core.Tracer)
        index = site_index(index, n)
        tables = rnn.tables
        if tables is None:
            k, prev = index, lax.max(index - 1, np.int32(0))
        else:
            k = jnp.asarray(tables.step)[index]
            prev = jnp.asarray(tables.prev_site)[k]
        value = lax.dynamic_index_in_dim(x, prev, keepdims=False).astype(rnn.param_dtype)
        z, carries = rnn.recurrent_step(value, k, carries)
        # `set` retires the State it is called on: call it on a copy (the same arrays), so
        # that the caller's state stays usable, as it does under jit.
        state = jax.tree.map(lambda leaf: leaf, state)
        for cache, carry in zip(self.caches, carries):
            state = state.set(cache, carry)
        log_psi = normalize_log_conditionals(z, self.machine_pow)
        if traced:  # out of range: NaN rather than the clamped site's conditional
            in_range = (index >= 0) & (index < n)
            log_psi = jnp.where(in_range, log_psi, jnp.full((), jnp.nan, log_psi.dtype))
        return log_psi, state


def _struct(shape: tuple[int, ...], dtype) -> str:
    return f"{jnp.dtype(dtype).name}{list(shape)}"


def _caches(rnn: AbstractRNN) -> tuple[eqx.nn.StateIndex, ...]:
    return tuple(eqx.nn.StateIndex(carry) for carry in rnn.initial_carries())


class FastRNN(AbstractFastRNN):
    """[`nqzoo.models.RNN`][] with cached sampling steps (the same parameters)."""

    rnn: RNN
    caches: tuple[eqx.nn.StateIndex[Carry], ...]

    def __init__(self, *args, **kwargs):
        """Takes the arguments of [`nqzoo.models.RNN`][]; build with
        `model, state = eqx.nn.make_with_state(FastRNN)(hilbert, ...)`."""
        self.rnn = RNN(*args, **kwargs)
        self.caches = _caches(self.rnn)


class FastLSTMNet(AbstractFastRNN):
    """[`nqzoo.models.LSTMNet`][] with cached sampling steps (the same parameters): the state
    holds each layer's cell memory and the hidden memories still to be read."""

    rnn: LSTMNet
    caches: tuple[eqx.nn.StateIndex[Carry], ...]

    def __init__(self, *args, **kwargs):
        """Takes the arguments of [`nqzoo.models.LSTMNet`][]; build with
        `model, state = eqx.nn.make_with_state(FastLSTMNet)(hilbert, ...)`."""
        self.rnn = LSTMNet(*args, **kwargs)
        self.caches = _caches(self.rnn)


class FastGRUNet1D(AbstractFastRNN):
    """[`nqzoo.models.GRUNet1D`][] with cached sampling steps (the same parameters)."""

    rnn: GRUNet1D
    caches: tuple[eqx.nn.StateIndex[Carry], ...]

    def __init__(self, *args, **kwargs):
        """Takes the arguments of [`nqzoo.models.GRUNet1D`][]; build with
        `model, state = eqx.nn.make_with_state(FastGRUNet1D)(hilbert, ...)`."""
        self.rnn = GRUNet1D(*args, **kwargs)
        self.caches = _caches(self.rnn)

