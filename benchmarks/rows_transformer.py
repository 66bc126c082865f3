"""Exact sampling with the autoregressive Transformer (float64, CPU): nqzoo only.

NetKet has no autoregressive Transformer, so these rows have no NetKet side (the NetKet
column shows `-`); they compare nqzoo models drawing exact samples of a chain of N = 100
spins with `nqz.sample` under `eqx.filter_jit`:

1. `FastARTransformer` (2 layers, d_model 16, 2 heads, mlp_ratio 4), 1024 samples: one
   position per step through the key-value caches;
2. `FastARNNConv1D` of the same width (2 layers, 16 features), 1024 samples, with the
   kernel whose receptive field covers the chain (`1 + ceil((N - 1) / layers)` = 51, as
   `examples/ground_state.py` picks), so both models condition every site on all earlier
   ones;
3. and 4. rows 1 and 2 with `chunk_size=128` (the Transformer's caches of 1024 samples,
   52 MB, do not fit in this CPU's L3 cache; 128 samples' do);
5. and 6. the fast Transformer and its slow path (`ARTransformer` with the same
   parameters, whose default `conditional` recomputes the whole sequence at every site),
   128 samples each (the slow path takes 40 s to minutes for 1024).

Targets (issue 13): the fast Transformer at least 5x faster than its slow path (row 6 /
row 5), and within 2x of FastARNNConv1D (row 1 / row 2). The ratios are read off the
`nqzoo ms` column (`compare_netket.py` times the rows one after the other in one process).
Running this file, `python benchmarks/rows_transformer.py [repeats]`, times the six
interleaved and prints the ratios.

Per step and sample, the Transformer does ~12.6k multiply-adds (per block: the q, k, v
projections 768, the output projection 256, the MLP 2048, the attention over the N-long
cache 3200, of which the masked half is wasted work) against ~2.4k for the convolution
(51 x 16 + 51 x 16 x 2), and its attention is a batched matrix-vector product per chain
and head rather than one matrix product shared by the chains.
"""

import statistics
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
from _harness import Row

import nqzoo as nqz


N_SITES = 100
N_SAMPLES = 1024
#: The slow path recomputes the whole sequence at every site: 40 s or more for 1024, so its
#: row and the fast row it is compared with draw 128 (the ratio does not depend on it much).
N_SLOW = 128
#: The chunk size of the chunked rows: the Transformer's caches (51 kB per sample, 52 MB for
#: 1024) do not fit in the L3 cache of this CPU (32 MB, shared), a chunk's (6.5 MB) do.
CHUNK = 128
LAYERS, WIDTH, HEADS = 2, 16, 2
KERNEL = 1 + -(-(N_SITES - 1) // LAYERS)  # the receptive field covers the chain: 51


def _cache_bytes(state) -> str:
    return "-" if state is None else str(sum(leaf.nbytes for leaf in jax.tree.leaves(state)))


def _sampler(model, state, n_samples: int, chunk_size: int | None = None):
    sample = eqx.filter_jit(
        lambda m, s, k: nqz.sample(m, n_samples, key=k, state=s, chunk_size=chunk_size)
    )
    key = jax.random.key(1)
    return lambda: sample(model, state, key)


def models():
    """`{name: (model, state, n_samples)}` of the four rows."""
    hi = nqz.hilbert.Spin(0.5, N_SITES)
    key = jax.random.key(0)
    fast, state = eqx.nn.make_with_state(nqz.models.FastARTransformer)(
        hi, layers=LAYERS, d_model=WIDTH, heads=HEADS, param_dtype=jnp.float64, key=key
    )
    conv, conv_state = eqx.nn.make_with_state(nqz.models.FastARNNConv1D)(
        hi, layers=LAYERS, features=WIDTH, kernel_size=KERNEL, param_dtype=jnp.float64, key=key
    )
    return {
        "fast": (fast, state, N_SAMPLES),
        "conv": (conv, conv_state, N_SAMPLES),
        "fast_chunked": (fast, state, N_SAMPLES, CHUNK),
        "conv_chunked": (conv, conv_state, N_SAMPLES, CHUNK),
        "fast_small": (fast, state, N_SLOW),
        "slow_small": (fast.to_slow(), None, N_SLOW),
    }


def rows() -> list[Row]:
    m = models()
    size = f"N={N_SITES} L{LAYERS} d{WIDTH} H{HEADS}"
    target = "target: fast <= 2x conv (row 2), slow/fast >= 5x (rows 5, 6)"
    return [
        Row(
            f"sample FastARTransformer {size}, {N_SAMPLES}",
            _sampler(*m["fast"]),
            None,
            note=f"NetKet: none (no Transformer); {target}",
            extra={"cache B/sample": _cache_bytes(m["fast"][1])},
        ),
        Row(
            f"sample FastARNNConv1D N={N_SITES} L{LAYERS} f{WIDTH} k{KERNEL}, {N_SAMPLES}",
            _sampler(*m["conv"]),
            None,
            note="the reference of row 1 (same width, receptive field = chain)",
            extra={"cache B/sample": _cache_bytes(m["conv"][1])},
        ),
        Row(
            f"sample FastARTransformer {size}, {N_SAMPLES}, chunk_size={CHUNK}",
            _sampler(*m["fast_chunked"]),
            None,
            note="row 1 in chunks: 6.5 MB of caches at a time instead of 52 MB",
        ),
        Row(
            f"sample FastARNNConv1D N={N_SITES} L{LAYERS} f{WIDTH} k{KERNEL}, {N_SAMPLES}, "
            f"chunk_size={CHUNK}",
            _sampler(*m["conv_chunked"]),
            None,
            note="row 2 in chunks (the reference of the row above)",
        ),
        Row(
            f"sample FastARTransformer {size}, {N_SLOW}",
            _sampler(*m["fast_small"]),
            None,
            note="the reference of row 6",
        ),
        Row(
            f"sample ARTransformer (slow path) {size}, {N_SLOW}",
            _sampler(*m["slow_small"]),
            None,
            note="recomputes the sequence at every site",
        ),
    ]


def _timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    calls = {name: _sampler(*entry) for name, entry in models().items()}
    times = {name: [] for name in calls}
    firsts = {name: _timed(fn) for name, fn in calls.items()}
    for _ in range(repeats):  # interleaved, so that a burst of load hits every model
        for name, fn in calls.items():
            times[name].append(_timed(fn))
    med = {name: statistics.median(t) for name, t in times.items()}
    for name in calls:
        print(f"{name}: median {1e3 * med[name]:.1f} ms, first call {1e3 * firsts[name]:.0f} ms")
    print(f"fast / conv = {med['fast'] / med['conv']:.2f} (target <= 2), {N_SAMPLES} samples")
    chunked = med["fast_chunked"] / med["conv_chunked"]
    print(f"fast / conv = {chunked:.2f}, {N_SAMPLES} samples, chunk_size={CHUNK}")
    print(f"fast chunked / conv = {med['fast_chunked'] / med['conv']:.2f}")
    slow_fast = med["slow_small"] / med["fast_small"]
    print(f"slow / fast = {slow_fast:.1f} (target >= 5), {N_SLOW} samples")
