r"""Reusable pieces of the transverse-field Ising ground-state example.

The Hamiltonian, with Pauli matrices and periodic boundaries,

$$H = -J \sum_{\langle ij \rangle} \sigma^z_i \sigma^z_j - h \sum_i \sigma^x_i ,$$

on a chain (`lattice=(L,)`) or a rectangular lattice (`lattice=(L1, L2)`, sites in
row-major order, site = r * L2 + c).

This module holds what the script `ground_state.py`, the tests and the benchmarks share:

- [`TFIM`][]: the Hamiltonian and its local energy
  $E_\mathrm{loc}(x) = \sum_y H_{xy}\,\psi(y)/\psi(x)$ in JAX;
- [`exact_energy_chain`][] (Jordan-Wigner closed form) and [`exact_energy_lanczos`][]
  (exact diagonalisation with a Lanczos iteration written in JAX);
- [`make_train_step`][]: an `eqx.filter_jit` training step with an optax optimiser, from
  exact samples (`nqz.sample`) and the estimators `nqz.vmc.energy_and_grad` and
  `nqz.vmc.natural_gradient`.
"""

import dataclasses
import math

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

import nqzoo as nqz


# ------------------------------------------------------------------------------------
# The Hamiltonian
# ------------------------------------------------------------------------------------


def parse_lattice(text: str) -> tuple[int, ...]:
    """`"20"` -> `(20,)` (a chain), `"4x4"` -> `(4, 4)` (a periodic rectangular
    lattice)."""
    try:
        dims = tuple(int(t) for t in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) not in (1, 2) or any(d < 2 for d in dims):
        raise ValueError(
            f"lattice must be 'L' (a chain of L >= 2 sites) or 'L1xL2' (a periodic "
            f"rectangular lattice, both >= 2), got {text!r}."
        )
    return dims


def lattice_bonds(lattice: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Nearest-neighbour bonds `(i, j)`, `i < j`, of a periodic chain or rectangular
    lattice.

    Each bond appears once (a periodic dimension of length 2 has a single bond per
    pair).
    """
    n_sites = math.prod(lattice)
    bonds = set()
    for site in range(n_sites):
        coords = np.unravel_index(site, lattice)
        for axis in range(len(lattice)):
            nb = list(coords)
            nb[axis] = (nb[axis] + 1) % lattice[axis]
            j = int(np.ravel_multi_index(tuple(nb), lattice))
            if j != site:
                bonds.add((min(site, j), max(site, j)))
    return tuple(sorted(bonds))


@dataclasses.dataclass(frozen=True)
class TFIM:
    r"""The transverse-field Ising model $-J\sum_{\langle ij\rangle}\sigma^z_i\sigma^z_j
    - h\sum_i\sigma^x_i$ on a periodic lattice.

    Hashable and immutable, so it can be a static argument of `eqx.filter_jit`.

    **Arguments:**

    - `lattice`: `(L,)` for a chain, `(L1, L2)` for a rectangular lattice.
    - `h`: transverse field.
    - `J`: Ising coupling (ferromagnetic for `J > 0`).
    """

    lattice: tuple[int, ...]
    h: float = 1.0
    J: float = 1.0

    @property
    def n_sites(self) -> int:
        return math.prod(self.lattice)

    @property
    def bonds(self) -> tuple[tuple[int, int], ...]:
        return lattice_bonds(self.lattice)

    def hilbert(self) -> nqz.hilbert.Spin:
        return nqz.hilbert.Spin(s=0.5, N=self.n_sites)

    def local_energy(self, log_psi, x: jax.Array, chunk_size: int | None = None) -> jax.Array:
        r"""$E_\mathrm{loc}(x) = -J\sum x_i x_j - h \sum_i \psi(x^{(i)})/\psi(x)$.

        $x^{(i)}$ is $x$ with spin $i$ flipped: `nqz.operators.local_energy` with the
        equivalent `nqz.operators.Ising` ([`TFIM.operator`][]), which evaluates every
        sample and its connected configurations in one batched call of `log_psi`.

        **Arguments:**

        - `log_psi`: a callable (e.g. an nqzoo model) mapping `(*batch, N)` to
          `(*batch,)`.
        - `x`: configurations `(B, N)` with values ±1.
        - `chunk_size`: if given, process this many samples at a time (`jax.lax.map`;
          the last chunk is padded), bounding the `(chunk, N + 1, N)` connected batch.
          Small chunks are also faster on CPU: the network's intermediates stay in cache.

        **Returns:** local energies `(B,)` (complex if `log_psi` is complex).
        """
        return nqz.operators.local_energy(log_psi, self.operator(), x, chunk_size)

    def operator(self) -> nqz.operators.Ising:
        """The same Hamiltonian as an `nqz.operators.Ising` (NetKet's sign convention:
        `-h sum X + J' sum ZZ` with `J' = -J`)."""
        lattice = nqz.lattice.Grid(self.lattice, pbc=True)
        return nqz.operators.Ising(self.hilbert(), lattice, h=self.h, J=-self.J)

    def matvec(self, psi: jax.Array, diag: jax.Array | None = None) -> jax.Array:
        """`H @ psi` on the full `2^N` basis (NetKet's order: site 0 is the most
        significant digit, local index 0 = spin +1), without building the matrix.

        `diag` is [`TFIM.diagonal_all`][] (computed here if not given; pass it in under
        `jit` so that XLA does not constant-fold a `2^N` array).
        """
        n = self.n_sites
        if diag is None:
            diag = self.diagonal_all()
        psi_t = psi.reshape((2,) * n)
        off = sum(jnp.flip(psi_t, axis=i) for i in range(n)).reshape(-1)
        return diag * psi - self.h * off

    def diagonal_all(self) -> np.ndarray:
        """The diagonal of H on every basis state (numpy, float64, length `2^N`)."""
        n = self.n_sites
        diag = np.zeros(2**n)
        idx = np.arange(2**n)
        for i, j in self.bonds:
            si = 1 - 2 * ((idx >> (n - 1 - i)) & 1)
            sj = 1 - 2 * ((idx >> (n - 1 - j)) & 1)
            diag -= self.J * si * sj
        return diag

    def dense(self) -> np.ndarray:
        """The dense `2^N x 2^N` matrix (small N only; for tests)."""
        n = self.n_sites
        eye = jnp.eye(2**n)
        return np.asarray(jax.vmap(self.matvec, in_axes=1, out_axes=1)(eye))


# ------------------------------------------------------------------------------------
# Exact energies
# ------------------------------------------------------------------------------------


def exact_energy_chain(n_sites: int, h: float, J: float = 1.0) -> float:
    r"""Ground-state energy of the periodic TFIM chain (Pauli matrices), closed form.

    After a Jordan-Wigner transformation the chain is a free-fermion model with mode
    energies $\Lambda_k = 2\sqrt{J^2 + h^2 - 2Jh\cos k}$. For $J > 0$ the ground state
    lies in the even-parity sector, where the fermions obey antiperiodic boundary
    conditions, $k = \pi(2m+1)/N$, $m = 0, \dots, N-1$, and $E_0 = -\tfrac12\sum_k
    \Lambda_k$.
    """
    if J <= 0:
        raise ValueError(f"exact_energy_chain assumes a ferromagnetic J > 0, got J={J!r}.")
    k = np.pi * (2 * np.arange(n_sites) + 1) / n_sites
    return float(-np.sum(np.sqrt(J**2 + h**2 - 2 * J * h * np.cos(k))))


def exact_energy_lanczos(model: TFIM, n_iter: int = 200, seed: int = 0) -> float:
    """Ground-state energy by exact diagonalisation: a Lanczos iteration in JAX.

    The Hamiltonian acts on the `2^N` vector through [`TFIM.matvec`][] (no matrix is
    stored); `n_iter` Lanczos steps run in a `jax.lax.scan` (no reorthogonalisation: the
    lowest Ritz value converges long before ghosts matter), then the tridiagonal matrix
    is diagonalised. Practical up to N = 20 or so (a vector of 2^20 float64 is 8 MB).
    """
    n = model.n_sites
    if n > 24:
        raise ValueError(f"exact diagonalisation needs N <= 24 sites, got N={n}.")
    dim = 2**n
    n_iter = min(n_iter, dim)
    # A positive random start vector overlaps the (positive, stoquastic) ground state.
    v0 = jax.random.uniform(jax.random.key(seed), (dim,), dtype=jnp.float64) + 0.5
    v0 = v0 / jnp.linalg.norm(v0)

    @jax.jit
    def run(v0, diag):
        def step(carry, _):
            v_prev, v, beta = carry
            w = model.matvec(v, diag) - beta * v_prev
            alpha = jnp.vdot(v, w).real
            w = w - alpha * v
            beta_new = jnp.linalg.norm(w)
            v_new = w / jnp.where(beta_new > 0, beta_new, 1.0)
            return (v, v_new, beta_new), (alpha, beta_new)

        _, (alphas, betas) = jax.lax.scan(
            step, (jnp.zeros_like(v0), v0, jnp.zeros((), v0.dtype)), None, length=n_iter
        )
        return alphas, betas

    alphas, betas = map(np.asarray, run(v0, jnp.asarray(model.diagonal_all())))
    # Stop at an invariant subspace (beta ~ 0): the Krylov space is exhausted.
    small = np.nonzero(betas < 1e-10 * max(1.0, np.abs(alphas).max()))[0]
    m = int(small[0]) + 1 if small.size else n_iter
    t = np.diag(alphas[:m]) + np.diag(betas[: m - 1], 1) + np.diag(betas[: m - 1], -1)
    return float(np.linalg.eigvalsh(t)[0])


def exact_energy(model: TFIM) -> float | None:
    """Closed form on chains, Lanczos on lattices of at most 20 sites, else `None`."""
    if len(model.lattice) == 1 and model.J > 0:
        return exact_energy_chain(model.n_sites, model.h, model.J)
    if model.n_sites <= 20:
        return exact_energy_lanczos(model)
    return None


# ------------------------------------------------------------------------------------
# VMC: energy, gradient, training step
# ------------------------------------------------------------------------------------


def make_train_step(
    hamiltonian: TFIM,
    optimiser,
    n_samples: int,
    chunk_size: int | str | None = "auto",
    sr_diag_shift: float | None = None,
    sample_chunk_size: int | None = None,
    grad_chunk_size: int | None = 64,
):
    """An `eqx.filter_jit` VMC step: sample, local energies, gradient, optimiser update.

    **Arguments:**

    - `hamiltonian`: the [`TFIM`][].
    - `optimiser`: an optax `GradientTransformation`.
    - `n_samples`: exact samples per step.
    - `chunk_size`: samples per chunk of the local energies (see
      [`TFIM.local_energy`][]); `None` for one batch; `"auto"` uses `max(1, 2**18 // N**3)`
      samples (32 for N = 20, 4 for N = 40): the network's intermediates, which grow
      like N^2 per sample with a kernel covering the chain, then stay in cache.
    - `sr_diag_shift`: if given, the optimiser receives the natural gradient of
      `nqz.vmc.natural_gradient` (stochastic reconfiguration) with this diagonal shift
      instead of the plain energy gradient.
    - `sample_chunk_size`: the `chunk_size` of `nqz.sample` (bounds its memory).
    - `grad_chunk_size`: samples per chunk of the gradient (or SR Jacobian).

    **Returns:** `step(model, state, opt_state, key) -> (model, opt_state, stats)`;
    `stats` holds the energy, its statistical error and the variance of the local
    energy. `state` is the model's `eqx.nn.State` (its cache layout; sampling starts
    every chain from an empty cache, so the state passed in is never modified).
    """

    chunk_size = auto_chunk_size(hamiltonian, chunk_size)

    @eqx.filter_jit
    def step(model, state, opt_state, key):
        x = nqz.sample(model, n_samples, key=key, state=state, chunk_size=sample_chunk_size)
        e_loc = hamiltonian.local_energy(model, x, chunk_size=chunk_size)
        if sr_diag_shift is None:
            energy, grads = nqz.vmc.energy_and_grad(model, x, e_loc, chunk_size=grad_chunk_size)
        else:
            energy, grads = nqz.vmc.natural_gradient(
                model, x, e_loc, sr_diag_shift, chunk_size=grad_chunk_size
            )
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        model = eqx.apply_updates(model, updates)
        variance = jnp.mean(jnp.abs(e_loc - energy) ** 2)
        stats = {
            "energy": energy.real,
            "error": jnp.sqrt(variance / n_samples),
            "variance": variance,
        }
        return model, opt_state, stats

    return step


def auto_chunk_size(hamiltonian: TFIM, chunk_size: int | str | None) -> int | None:
    """`"auto"` -> `max(1, 2**18 // N**3)` samples per local-energy chunk."""
    if chunk_size == "auto":
        return max(1, 2**18 // hamiltonian.n_sites**3)
    return chunk_size


def make_estimate(hamiltonian: TFIM, n_samples: int, chunk_size: int | str | None = "auto"):
    """A jitted energy estimate `estimate(model, state, key) -> (energy, error)` from
    fresh exact samples (independent, so the error is sqrt(variance / n_samples))."""

    chunk_size = auto_chunk_size(hamiltonian, chunk_size)

    @eqx.filter_jit
    def estimate(model, state, key):
        x = nqz.sample(model, n_samples, key=key, state=state)
        e_loc = hamiltonian.local_energy(model, x, chunk_size=chunk_size)
        energy = jnp.mean(e_loc).real
        error = jnp.sqrt(jnp.mean(jnp.abs(e_loc - energy) ** 2) / n_samples)
        return energy, error

    return estimate


def init_optimiser(optimiser, model):
    """`optimiser.init` on the model's inexact array leaves."""
    return optimiser.init(eqx.filter(model, eqx.is_inexact_array))
