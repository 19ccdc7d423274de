"""The op registry and its families; importing this package registers every op."""

from poseir.ops import elementwise, index, rearrange, reduce, shape  # noqa: F401  (each family registers its ops on import)
