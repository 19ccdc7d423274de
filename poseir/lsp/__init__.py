"""The language server: a face over the compiler, with no compiler logic of its own."""
