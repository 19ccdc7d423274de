"""Elaboration: the surface tree to the immutable IR (imports, scopes, modules, statements, expressions, op calls)."""
