"""Interoperability with other libraries (NetKet). Import the submodules explicitly."""
