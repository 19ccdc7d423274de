"""poseir: a compiler for 3D human pose networks that gets their shapes right before they run."""


def installed_version() -> str:
    """poseir's version from the installed package metadata ("unknown" when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("poseir")
    except PackageNotFoundError:
        return "unknown"
