"""Conversion of Hilbert spaces between nqzoo and NetKet."""

from typing import Any

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
        if nk_hilbert.constrained:
            raise ValueError("Fock spaces with n_particles constraints have no nqzoo equivalent.")
        return nqh.Fock(nk_hilbert.n_max, nk_hilbert.size)
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
        return nk.hilbert.Fock(hilbert.n_max, hilbert.N)
    if isinstance(hilbert, nqh.Particles):
        geometry = nk.experimental.geometry.Cell(d=hilbert.d, L=hilbert.L, pbc=hilbert.pbc)
        return nk.experimental.hilbert.Particle(N=hilbert.N, geometry=geometry)
    raise TypeError(f"No NetKet equivalent of {hilbert!r}.")
