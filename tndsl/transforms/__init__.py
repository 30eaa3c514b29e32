"""Transforms: pure IR → IR rewrites (grad, vjp, jvp, vmap) and the Π simplifications."""

from . import rewrite, simplify

__all__ = ["rewrite", "simplify"]
