"""Exact sampling with the fast recurrent networks against NetKet's ARDirectSampler (float64,
CPU; issue 12).

Both sides draw 1024 exact samples of the same network: NetKet's
`netket.experimental.models` module with random parameters, and the nqzoo model converted
from it with `from_netket` (the same parameters). The rows reuse the autoregressive group's
row builder (`rows_autoreg.py`).

Targets (issue 12): FastLSTMNet and FastGRUNet1D (2 layers, 16 features) on a chain of 100
sites and FastLSTMNet on a 10x10 square lattice in the snake order at least 3x NetKet's
throughput; first call no slower than NetKet's.
"""

import jax.numpy as jnp
import netket as nk
import rows_autoreg
from _harness import Row


def rows() -> list[Row]:
    chain = nk.hilbert.Spin(0.5, 100)
    square = nk.graph.Square(10, pbc=False)
    lattice = nk.hilbert.Spin(0.5, square.n_nodes)
    common = dict(layers=2, features=16, param_dtype=jnp.float64)
    models = nk.experimental.models
    n = rows_autoreg.N_SAMPLES
    return [
        rows_autoreg.build_row(
            f"sample FastLSTMNet N=100, {n}",
            models.FastLSTMNet(hilbert=chain, **common),
            chain,
            n,
            note="target >= 3x",
        ),
        rows_autoreg.build_row(
            f"sample FastGRUNet1D N=100, {n}",
            models.FastGRUNet1D(hilbert=chain, **common),
            chain,
            n,
            note="target >= 3x",
        ),
        rows_autoreg.build_row(
            f"sample FastLSTMNet 10x10 snake, {n}",
            models.FastLSTMNet(hilbert=lattice, graph=square, **common),
            lattice,
            n,
            note="target >= 3x",
        ),
    ]
