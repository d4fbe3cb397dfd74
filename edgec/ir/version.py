"""edgec's version (``edgec.__version__``; the layers below the package root read it here)."""
__version__ = "0.1.0"
