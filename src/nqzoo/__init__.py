"""nqzoo: neural-network quantum states as Equinox modules.

Runtime shape checking is on by default: every module of the package is imported through
jaxtyping's import hook with beartype as the type checker (`nqzoo._typecheck`, which also
lists the expected size of every symbolic axis in error messages), so every annotated function
and method checks its arguments (and models check their fields). Set `JAXTYPING_DISABLE=1` (or
`jaxtyping.config.update("jaxtyping_disable", True)`) to turn it off. Inside `eqx.filter_jit`
the checks run once, at trace time.
"""

import importlib.metadata

import jaxtyping as _jaxtyping

# The checker itself is imported before the hook, so it is not checked.
from . import _typecheck as _typecheck


# Installed for the lifetime of the process (not as a context manager) so that submodules
# imported later, such as `nqzoo.interop.netket`, are checked too.
_jaxtyping.install_import_hook("nqzoo", "nqzoo._typecheck.typechecker")

from . import hilbert as hilbert, models as models, nn as nn  # noqa: E402
from .sampling import sample as sample  # noqa: E402


try:
    __version__ = importlib.metadata.version("nqzoo")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"
