"""Shared type aliases."""

from collections.abc import Callable

from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray


#: A JAX or NumPy array (what models accept as input).
ArrayLike = ArrayLike
#: An initialiser with NetKet/JAX's signature `init(key, shape, dtype) -> array`.
Initializer = Callable[..., Array]
#: An elementwise activation.
Activation = Callable[[Inexact[Array, "..."]], Inexact[Array, "..."]]
PRNGKey = PRNGKeyArray
