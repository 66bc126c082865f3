"""nqzoo: neural-network quantum states as Equinox modules.

Runtime shape checking is on by default: every module of the package is imported through
jaxtyping's import hook with beartype as the type checker (`nqzoo._typecheck`, which also
lists the expected size of every symbolic axis in error messages, and applies beartype to a
function at its first call rather than at import), so every annotated function and method checks
its arguments (and models check their fields). Set `JAXTYPING_DISABLE=1` (or
`jaxtyping.config.update("jaxtyping_disable", True)`) to turn it off. Inside `eqx.filter_jit`
the checks run once, at trace time.
"""

import importlib.metadata

# The dependencies are imported before the hook is installed. While the hook executes one of
# nqzoo's modules, jaxtyping points the bytecode cache at its own file names, so any module
# imported for the first time from inside nqzoo (all of jax, equinox, ...) would miss its
# `__pycache__` and be compiled from source (this doubled the import time).
import equinox as _equinox  # noqa: F401
import jax as _jax  # noqa: F401
import jax.flatten_util as _jax_flatten_util  # noqa: F401 (nqzoo.vmc)
import jax.numpy as _jnp  # noqa: F401
import jaxtyping as _jaxtyping
import numpy as _np  # noqa: F401

# The checker itself is imported before the hook, so it is not checked.
from . import _typecheck as _typecheck


# Installed for the lifetime of the process (not as a context manager) so that submodules
# imported later, such as `nqzoo.interop.netket`, are checked too.
_jaxtyping.install_import_hook("nqzoo", "nqzoo._typecheck.typechecker")

from . import (  # noqa: E402
    exact as exact,
    hilbert as hilbert,
    lattice as lattice,
    mcmc as mcmc,
    models as models,
    nn as nn,
    operators as operators,
    symmetry as symmetry,
    vmc as vmc,
)
from .sampling import sample as sample  # noqa: E402


try:
    __version__ = importlib.metadata.version("nqzoo")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"
