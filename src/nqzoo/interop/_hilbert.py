"""Conversion of Hilbert spaces between nqzoo and NetKet."""

from typing import Any

import numpy as np

from .. import hilbert as nqh


def hilbert_from_netket(nk_hilbert: Any) -> nqh.AbstractHilbert:
    """The nqzoo space equal to a NetKet Spin, Qubit, Fock or Particle space."""
    import netket as nk

    name = type(nk_hilbert).__name__
    if isinstance(nk_hilbert, nk.hilbert.Spin):
        if list(nk_hilbert.local_states) != list(nqh.Spin(nk_hilbert._s, 1).local_states):
            raise ValueError(
                "NetKet Spin with inverted_ordering=True has local states "
                f"{list(nk_hilbert.local_states)}; nqzoo only has NetKet's default order."
            )
        total_sz = nk_hilbert._total_sz
        if nk_hilbert.constrained and total_sz is None:
            raise ValueError(
                f"The NetKet space {nk_hilbert!r} has a constraint other than total_sz; "
                "nqzoo's Spin spaces can only be constrained by total_sz."
            )
        return nqh.Spin(nk_hilbert._s, nk_hilbert.size, total_sz=total_sz)
    if isinstance(nk_hilbert, nk.hilbert.Qubit):
        return nqh.Qubit(nk_hilbert.size)
    if isinstance(nk_hilbert, nk.hilbert.Fock):
        n_particles = nk_hilbert.n_particles
        if nk_hilbert.constrained and n_particles is None:
            raise ValueError(
                f"The NetKet space {nk_hilbert!r} has a constraint other than n_particles; "
                "nqzoo's Fock spaces can only be constrained by n_particles."
            )
        if nk_hilbert.n_max >= np.iinfo(np.intp).max - 1:  # NetKet's FOCK_MAX: n_max=None
            raise ValueError(
                f"The NetKet space {nk_hilbert!r} has unbounded occupations; nqzoo's Fock "
                "spaces need a finite n_max."
            )
        return nqh.Fock(nk_hilbert.n_max, nk_hilbert.size, n_particles=n_particles)
    if name in ("Particle", "ContinuousParticle"):
        geometry = nk_hilbert.geometry
        return nqh.Particles(nk_hilbert.n_particles, tuple(geometry.extent), tuple(geometry.pbc))
    raise TypeError(f"No nqzoo equivalent of the NetKet Hilbert space {nk_hilbert!r}.")


def hilbert_to_netket(hilbert: nqh.AbstractHilbert) -> Any:
    """The NetKet space equal to an nqzoo space."""
    import netket as nk

    if isinstance(hilbert, nqh.Spin):
        return nk.hilbert.Spin(hilbert.s, hilbert.N, total_sz=hilbert.total_sz)
    if isinstance(hilbert, nqh.Qubit):
        return nk.hilbert.Qubit(hilbert.N)
    if isinstance(hilbert, nqh.Fock):
        return nk.hilbert.Fock(hilbert.n_max, hilbert.N, n_particles=hilbert.n_particles)
    if isinstance(hilbert, nqh.Particles):
        geometry = nk.experimental.geometry.Cell(d=hilbert.d, L=hilbert.L, pbc=hilbert.pbc)
        return nk.experimental.hilbert.Particle(N=hilbert.N, geometry=geometry)
    raise TypeError(f"No NetKet equivalent of {hilbert!r}.")
