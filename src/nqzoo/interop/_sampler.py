"""A NetKet sampler that draws exact samples of autoregressive models through `nqz.sample`, and
a clear error for NetKet's own `ARDirectSampler` with an nqzoo model."""

import importlib._bootstrap_external
import importlib.util
import sys
from functools import partial
from typing import Any

import equinox as eqx
import jax
from jax.sharding import NamedSharding, PartitionSpec

from .. import hilbert as nqh
from .._misc import positive_int
from ..models import AbstractARNN, AbstractFastARNN
from ..sampling import sample
from ._hilbert import hilbert_from_netket, hilbert_to_netket


def _import_netket() -> Any:
    """NetKet, imported with Python's own bytecode cache.

    This module needs NetKet's classes when it is executed, which happens under nqzoo's
    import hook: while jaxtyping's hook executes an nqzoo module it replaces
    `importlib._bootstrap_external.cache_from_source` with a function giving names of its
    own, so NetKet, Flax, Optax, ... imported for the first time from here would miss their
    `__pycache__` and be compiled from source (about 15 s on this machine). The standard
    function (`importlib.util.cache_from_source` is the same object) is put back for the
    duration of the import.
    """
    if "netket" not in sys.modules:
        bootstrap = importlib._bootstrap_external
        hooked = bootstrap.cache_from_source
        bootstrap.cache_from_source = importlib.util.cache_from_source
        try:
            import netket  # noqa: F401
        finally:
            bootstrap.cache_from_source = hooked
    return sys.modules["netket"]


nk = _import_netket()
_EquinoxFramework = nk.utils.model_frameworks.equinox.EquinoxFramework
_EquinoxWrapper = nk.utils.model_frameworks.equinox.EquinoxWrapper


class NqzooARSamplerState(nk.sampler.SamplerState):
    """The state of [`nqzoo.interop.netket.NqzooARSampler`][]: the PRNG key of the next
    draw (exact samples need nothing else)."""

    key: jax.Array

    def __init__(self, key: jax.Array):
        self.key = key
        super().__init__()


class NqzooARSampler(nk.sampler.Sampler):
    r"""Exact samples of an autoregressive model for NetKet's `MCState` and drivers, drawn by
    [`nqzoo.sample`][].

    A drop-in replacement of NetKet's `nk.sampler.ARDirectSampler`: independent samples of
    $|\psi(x)|^p$ ($p$ the model's `machine_pow`), one site at a time, with nqzoo's
    `jax.lax.scan` over the sites. Fast models step their `eqx.nn.State` cache; other
    autoregressive models recompute their conditionals. The model given to the `MCState` may
    be

    - an nqzoo autoregressive model ([`nqzoo.models.AbstractARNN`][], your own subclasses
      included), which NetKet wraps as an Equinox module; a fast model
      ([`nqzoo.models.AbstractFastARNN`][]) needs its cache `state` here, since NetKet keeps
      only the model;
    - a NetKet autoregressive model that [`nqzoo.interop.netket.from_netket`][] converts
      (`nk.models.ARNNDense`, `FastARNNConv1D`, ... or the module of
      [`nqzoo.interop.netket.to_netket`][]), which is converted (inside the jitted
      sampling function) at every draw, so its parameters stay NetKet's.

    ```python
    sampler = NqzooARSampler(nk_hilbert, state=state)   # state: from eqx.nn.make_with_state
    vstate = nk.vqs.MCState(sampler, model, n_samples=1024, seed=0)
    ```

    Samples come in NetKet's layout, `(n_chains, n_samples // n_chains, N)` with one chain
    per device, in the sampler's `dtype`. The key of each draw is split from the sampler
    state, so a seed gives reproducible samples; an nqzoo model and its `to_netket`
    conversion give identical samples.
    """

    state: Any = nk.utils.struct.field(default=None)
    """The cache state of a fast nqzoo model (only its structure, shapes and dtypes are
    used), or None."""

    chunk_size: int | None = nk.utils.struct.field(pytree_node=False, default=None)
    """Samples drawn at once (see [`nqzoo.sample`][]), or None for all of them."""

    def __init__(
        self,
        hilbert: Any,
        *,
        state: eqx.nn.State | None = None,
        chunk_size: int | None = None,
        dtype: Any = None,
    ):
        """**Arguments:**

        - `hilbert`: the space to sample, a NetKet or an nqzoo discrete space (homogeneous,
          unconstrained; an nqzoo space is converted with
          [`nqzoo.interop.netket.hilbert_to_netket`][]).
        - `state`: the `eqx.nn.State` of a fast nqzoo model, as returned with it by
          `eqx.nn.make_with_state` or `from_netket`. Required for fast nqzoo models, ignored
          for the others (a NetKet fast model's cache comes from its conversion).
        - `chunk_size`: if given, at most this many samples are drawn at once (bounding the
          memory of caches and activations; the samples do not change).
        - `dtype`: dtype of the samples NetKet sees (default: that of the space's local
          states, as `ARDirectSampler`).

        **Raises:** `TypeError` for a `hilbert` that is not a Hilbert space (and, from the
        runtime type check, a `state` that is not an `eqx.nn.State`); `ValueError` for a
        constrained or non-discrete space or a `chunk_size` that is not a positive integer.
        """
        if isinstance(hilbert, nqh.AbstractHilbert):
            hilbert = hilbert_to_netket(hilbert)
        if not isinstance(hilbert, nk.hilbert.AbstractHilbert):
            raise TypeError(
                f"hilbert must be a NetKet or an nqzoo Hilbert space, got hilbert={hilbert!r}."
            )
        if not isinstance(hilbert, nk.hilbert.DiscreteHilbert) or hilbert.constrained:
            raise ValueError(
                "NqzooARSampler samples autoregressive models, which need a discrete, "
                f"unconstrained Hilbert space; got hilbert={hilbert!r}."
            )
        super().__init__(hilbert, machine_pow=2, dtype=dtype)
        # As NetKet's ARDirectSampler: the distribution is |psi|^p with the model's p.
        self.machine_pow = float(self.machine_pow)
        self.state = state
        self.chunk_size = None if chunk_size is None else positive_int(chunk_size, "chunk_size")

    @property
    def is_exact(self) -> bool:
        """`True`: the samples are independent and distributed exactly as $|\\psi|^p$."""
        return True

    def _init_state(self, model: Any, variables: Any, key: jax.Array) -> NqzooARSamplerState:
        # Called eagerly when the sampler is given to an MCState: the place to refuse a model
        # this sampler cannot draw from, before anything is compiled.
        arnn, _ = self._model_and_state(model, variables)
        space = hilbert_from_netket(self.hilbert)
        if arnn.hilbert != space:
            raise ValueError(
                f"The model is defined on {arnn.hilbert!r} but the sampler's hilbert is "
                f"{self.hilbert!r} ({space!r} in nqzoo); build the sampler on the model's "
                "space."
            )
        return NqzooARSamplerState(key)

    def _reset(self, model: Any, variables: Any, state: NqzooARSamplerState) -> Any:
        return state

    @partial(jax.jit, static_argnames=("model", "chain_length", "return_log_probabilities"))
    def _sample_chain(
        self,
        model: Any,
        variables: Any,
        state: NqzooARSamplerState,
        chain_length: int,
        return_log_probabilities: bool = False,
    ) -> Any:
        arnn, cache = self._model_and_state(model, variables)
        key, new_key = jax.random.split(state.key)
        n_samples = self.n_batches * chain_length
        x, log_prob = sample(
            arnn,
            n_samples,
            key=key,
            state=cache,
            chunk_size=self.chunk_size,
            return_log_prob=True,
        )
        x = x.astype(self.dtype).reshape(self.n_batches, chain_length, self.hilbert.size)
        log_prob = log_prob.reshape(self.n_batches, chain_length)
        if nk.config.netket_sharding:
            # NetKet's layout: the chain axis over the devices of the current mesh.
            sharding = NamedSharding(jax.sharding.get_abstract_mesh(), PartitionSpec("S"))
            x = jax.lax.with_sharding_constraint(x, sharding)
            log_prob = jax.lax.with_sharding_constraint(log_prob, sharding)
        new_state = state.replace(key=new_key)
        if return_log_probabilities:
            return (x, log_prob), new_state
        return x, new_state

    def _model_and_state(self, model: Any, variables: Any) -> tuple[AbstractARNN, Any]:
        """The nqzoo model NetKet's (wrapped or Flax) `model` with `variables` stands for, and
        the cache state to sample it with."""
        if isinstance(model, _EquinoxWrapper):
            arnn = _EquinoxFramework.unwrap(model, variables)
            if not isinstance(arnn, AbstractARNN):
                raise TypeError(_not_autoregressive(type(arnn).__name__))
            if isinstance(arnn, AbstractFastARNN) and self.state is None:
                name = type(arnn).__name__
                raise TypeError(
                    f"{name} is a fast autoregressive model and NqzooARSampler needs its cache "
                    f"state, which NetKet's MCState does not keep: build the sampler with "
                    f"`NqzooARSampler(hilbert, state=state)`, `state` being the one of "
                    f"`model, state = eqx.nn.make_with_state({name})(...)`."
                )
            return arnn, self.state
        import flax.linen

        if isinstance(model, flax.linen.Module):
            from .netket import _CONVERTERS, from_netket  # the table lives there

            entry = _CONVERTERS.get(type(model).__name__)
            if entry is None or not issubclass(entry[0], AbstractARNN):
                raise TypeError(_not_autoregressive(f"NetKet's {type(model).__name__}"))
            converted = from_netket(model, variables)
            return converted if isinstance(converted, tuple) else (converted, None)
        raise TypeError(_not_autoregressive(type(model).__name__))


def _not_autoregressive(name: str) -> str:
    return (
        f"NqzooARSampler draws exact samples of autoregressive models only (nqzoo's "
        f"AbstractARNN models, or NetKet's ARNNs that nqzoo.interop.netket.from_netket "
        f"converts), got {name}. Sample other models with a Markov chain, e.g. "
        "nk.sampler.MetropolisLocal."
    )


class _ARNNWrapper(_EquinoxWrapper):
    """NetKet's Equinox wrapper of an nqzoo autoregressive model, whose `init` (called by
    `ARDirectSampler` to build a Flax cache, which Equinox models do not have) raises an
    error naming the sampler that works."""

    # Equal wrappers of equal models (same hyperparameters and parameter structure): NetKet
    # jits its sampling and expectation functions with the model as a static argument, so
    # a new MCState of the same model reuses them (NetKet's wrapper compares by identity).
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (self.static_module, self.params_treedef) == (
            other.static_module,
            other.params_treedef,
        )

    def __hash__(self) -> int:
        return hash((type(self), self.static_module, self.params_treedef))

    def init(self, rng: Any, *args: Any, method: Any = None, **kwargs: Any) -> Any:
        name = type(self.static_module).__name__
        fast = isinstance(self.static_module, AbstractFastARNN)
        sampler = "NqzooARSampler(hilbert, state=state)" if fast else "NqzooARSampler(hilbert)"
        target = getattr(method, "keywords", {}).get("method", method)
        if target == "conditional":
            raise TypeError(
                f"NetKet's ARDirectSampler cannot sample the nqzoo model {name}: it builds the "
                "model's cache with Flax's init and a mutable 'cache' collection, which "
                f"Equinox models do not have. Use nqzoo.interop.netket.{sampler} instead "
                "(exact samples through nqz.sample"
                + (", with the eqx.nn.State of eqx.nn.make_with_state" if fast else "")
                + "), or convert the model with nqzoo.interop.netket.to_netket."
            )
        raise TypeError(
            f"The nqzoo model {name} holds its parameters (an Equinox module) and has no Flax "
            "init; pass the model itself, or its variables, to NetKet."
        )


class _ARNNFramework(_EquinoxFramework):
    """NetKet's Equinox support, for nqzoo's autoregressive models: the same wrapping, with
    the `init` of `_ARNNWrapper`. Registered ahead of Equinox's when this module is imported
    (NetKet picks the first framework that claims a model)."""

    name: str = "nqzoo-autoregressive"

    @staticmethod
    def is_my_module(module: Any) -> bool:
        return isinstance(module, AbstractARNN)

    @staticmethod
    def wrap(module: Any) -> tuple[dict, _ARNNWrapper]:
        variables, wrapper = _EquinoxFramework.wrap(module)
        return variables, _ARNNWrapper(wrapper.static_module, wrapper.params_treedef)


def _register() -> None:
    """Put `_ARNNFramework` first in NetKet's framework list (once, also on reload)."""
    frameworks = nk.utils.model_frameworks.registered_frameworks
    ours = (__name__, _ARNNFramework.__qualname__)
    frameworks[:] = [f for f in frameworks if (f.__module__, f.__qualname__) != ours]
    frameworks.insert(0, _ARNNFramework)


_register()
