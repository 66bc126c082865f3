"""Converters of NetKet's recurrent networks (`netket.experimental.models`: LSTMNet,
GRUNet1D and their Fast twins), whose parameters are `params/_layers_{i}/cell/...`.

NetKet has no network of plain cells; nqzoo's [`nqzoo.models.RNN`][] (plain cells) converts to
`SimpleRNNNet` / `FastSimpleRNNNet`, subclasses of NetKet's `RNN` / `FastRNN` built here on
NetKet's own recurrent layers, with a plain cell `h = tanh([x, h_prev] @ kernel + bias)`
(see [`netket_simple_rnn`][]). An `RNN` of LSTM or GRU cells converts to NetKet's LSTMNet or
GRUNet1D.

The ordering (`reorder_idx`, `inv_reorder_idx`, `prev_neighbors`) is copied as NetKet's module
holds it after construction (NetKet derives it from a `graph` there), and checked by nqzoo; a
NetKet module built from a `graph` converts back to one holding the three arrays (`graph=None`).
"""

import functools
import typing
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .. import models as nqm, nn as nqn
from ._hilbert import hilbert_to_netket
from ._params import params_of, placeholders, with_params


_CELL_PARAMS = {
    nqn.LSTMCell: ("kernel", "bias"),
    nqn.SimpleRNNCell: ("kernel", "bias"),
    nqn.GRU1DCell: ("rz_kernel", "rz_bias", "n_kernel", "n_bias"),
}

#: NetKet class name of the slow and fast networks of each cell.
_NETKET_NAMES = {
    nqn.LSTMCell: ("LSTMNet", "FastLSTMNet"),
    nqn.GRU1DCell: ("GRUNet1D", "FastGRUNet1D"),
    nqn.SimpleRNNCell: ("SimpleRNNNet", "FastSimpleRNNNet"),
}


# Not checked by nqzoo's import hook: the Flax modules defined inside carry NetKet's
# annotations (protocols that beartype cannot check).
@functools.cache
@typing.no_type_check
def netket_simple_rnn() -> dict[str, type]:
    """NetKet (Flax) modules for networks of plain cells, which NetKet lacks: `SimpleRNNCell`
    (a subclass of NetKet's `RNNCell`, `h = tanh([x, h_prev] @ kernel + bias)`), and
    `SimpleRNNNet` / `FastSimpleRNNNet` (subclasses of NetKet's `RNN` / `FastRNN` with NetKet's
    `RNNLayer` / `FastRNNLayer` of that cell; the arguments of NetKet's `LSTMNet`).

    **Returns:** `{"SimpleRNNCell": ..., "SimpleRNNNet": ..., "FastSimpleRNNNet": ...}`.
    """
    import flax.linen as nn
    from flax.linen.dtypes import promote_dtype
    from netket.experimental import models as nkx, nn as nkxnn

    class SimpleRNNCell(nkxnn.rnn.RNNCell):
        """Plain recurrent cell: `h = tanh([x, h_prev] @ kernel + bias)`; no cell memory."""

        kernel_init: Any = nkxnn.rnn.default_kernel_init
        bias_init: Any = nn.initializers.zeros

        @nn.compact
        def __call__(self, inputs, cell_mem, hidden):
            v = jnp.concatenate([inputs, hidden.reshape((inputs.shape[0], -1))], axis=-1)
            shape = (v.shape[-1], self.features)
            kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
            bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            v, kernel, bias = promote_dtype(v, kernel, bias, dtype=None)
            return cell_mem, jnp.tanh(v @ kernel + bias)

    def layers(module, layer_cls, **extra):
        features = module.features
        if isinstance(features, int):
            features = (features,) * (module.layers - 1) + (module.hilbert.local_size,)
        return [
            layer_cls(
                cell=SimpleRNNCell(
                    features=f,
                    param_dtype=module.param_dtype,
                    kernel_init=module.kernel_init,
                    bias_init=module.bias_init,
                ),
                exclusive=(i == 0),
                reorder_idx=module.reorder_idx,
                inv_reorder_idx=module.inv_reorder_idx,
                prev_neighbors=module.prev_neighbors,
                **extra,
            )
            for i, f in enumerate(features)
        ]

    class SimpleRNNNet(nkx.RNN):
        """A recurrent network of plain cells (nqzoo's `RNN`), on NetKet's `RNNLayer`."""

        def setup(self):
            self._layers = layers(self, nkxnn.rnn.RNNLayer)

    class FastSimpleRNNNet(nkx.FastRNN):
        """`SimpleRNNNet` with NetKet's fast sampling (`FastRNNLayer`)."""

        def setup(self):
            self._layers = layers(self, nkxnn.rnn.FastRNNLayer, size=self.hilbert.size)

    return dict(
        SimpleRNNCell=SimpleRNNCell, SimpleRNNNet=SimpleRNNNet, FastSimpleRNNNet=FastSimpleRNNNet
    )


def _netket_class(name: str) -> type:
    from netket.experimental import models as nkx

    return getattr(nkx, name) if hasattr(nkx, name) else netket_simple_rnn()[name]


def _slow(model: Any) -> Any:
    return model.rnn if isinstance(model, nqm.AbstractFastRNN) else model


def _rnn_paths(cell_cls: type, n_layers: int) -> dict:
    paths = {}
    for i in range(n_layers):
        for name in _CELL_PARAMS[cell_cls]:
            paths[(f"_layers_{i}", "cell", name)] = (
                lambda m, i=i, name=name: getattr(_slow(m).layers[i], name)
            )
    return paths


def _array(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray(value)


def _cell_of(cls: type) -> type:
    """The cell class of an nqzoo recurrent model class."""
    slow = {
        nqm.FastRNN: nqm.RNN,
        nqm.FastLSTMNet: nqm.LSTMNet,
        nqm.FastGRUNet1D: nqm.GRUNet1D,
    }.get(cls, cls)
    return {nqm.RNN: nqn.SimpleRNNCell, nqm.LSTMNet: nqn.LSTMCell, nqm.GRUNet1D: nqn.GRU1DCell}[
        slow
    ]


def rnn_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo recurrent network equal to NetKet's (of class `cls`; `(model, state)` for a
    fast one)."""
    kwargs = dict(
        layers=module.layers,
        features=module.features,
        reorder_idx=_array(module.reorder_idx),
        inv_reorder_idx=_array(module.inv_reorder_idx),
        prev_neighbors=_array(module.prev_neighbors),
        param_dtype=module.param_dtype,
        machine_pow=module.machine_pow,
        **placeholders("kernel_init", "bias_init"),
    )
    paths = _rnn_paths(_cell_of(cls), module.layers)
    if issubclass(cls, nqm.AbstractFastRNN):
        model, state = eqx.nn.make_with_state(cls)(hilbert, **kwargs)
        return with_params(model, params, paths, module), state
    return with_params(cls(hilbert, **kwargs), params, paths, module)


def rnn_to_netket(nk_cls: Any, model: Any) -> tuple[Any, dict]:
    """NetKet's recurrent network and its parameters, equal to an nqzoo one (`nk_cls` is
    ignored: the class follows from the model's cells and whether it is fast)."""
    from netket.utils import HashableArray

    slow = _slow(model)
    cell_cls = type(slow.layers[0])
    if cell_cls not in _NETKET_NAMES:
        raise TypeError(
            f"to_netket converts recurrent networks of LSTMCell, GRU1DCell or SimpleRNNCell "
            f"cells; this {type(model).__name__} has {cell_cls.__name__} cells."
        )
    name = _NETKET_NAMES[cell_cls][isinstance(model, nqm.AbstractFastRNN)]

    def hashable(value):
        return None if value is None else HashableArray(np.asarray(value, dtype=np.int64))

    module = _netket_class(name)(
        hilbert=hilbert_to_netket(slow.hilbert),
        layers=len(slow.layers),
        features=tuple(slow.features),
        reorder_idx=hashable(slow.reorder_idx),
        inv_reorder_idx=hashable(slow.inv_reorder_idx),
        prev_neighbors=hashable(slow.prev_neighbors),
        param_dtype=slow.param_dtype,
        machine_pow=slow.machine_pow,
    )
    return module, params_of(model, _rnn_paths(cell_cls, len(slow.layers)))
