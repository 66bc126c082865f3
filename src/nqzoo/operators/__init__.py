r"""Lattice Hamiltonians with jittable connected elements, and local energies.

Every operator is an Equinox module with static fields (Hilbert space, lattice, couplings)
whose [`connected`][nqzoo.operators.AbstractOperator.connected] method gives a fixed number of
connected configurations and matrix elements; [`local_energy`][nqzoo.operators.local_energy]
turns them into $E_\mathrm{loc}(x)$ for any wavefunction.
"""

from ._base import AbstractOperator as AbstractOperator, MAX_DENSE_STATES as MAX_DENSE_STATES
from ._bose_hubbard import BoseHubbard as BoseHubbard
from ._heisenberg import Heisenberg as Heisenberg
from ._ising import Ising as Ising
from ._local_energy import local_energy as local_energy
