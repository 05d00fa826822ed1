"""Shared jaxtyping aliases used across jaxdm's signatures."""

from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray, PyTree

Key = PRNGKeyArray
Scalar = Float[Array, ""]
ScalarLike = float | Float[ArrayLike, ""]

__all__ = [
    "Array",
    "ArrayLike",
    "Bool",
    "Float",
    "Int",
    "Key",
    "PRNGKeyArray",
    "PyTree",
    "Scalar",
    "ScalarLike",
]
