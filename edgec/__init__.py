"""edgec: an ahead-of-time compiler and firmware bundler for ML models on microcontrollers."""
from .ir.version import __version__  # noqa: F401


def compile(model, target=None, backend="native", name="model", **kw):  # noqa: A001
    """Compile a model file into a bundle (see :mod:`edgec.pipeline`)."""
    from .pipeline import compile as _compile
    return _compile(model, target=target, backend=backend, name=name, **kw)


def build(model, out_dir, target=None, **kw):
    """Compile a model file and write the bundle directory."""
    from .pipeline import build as _build
    return _build(model, out_dir, target=target, **kw)


def load(model, input_shapes=None):
    """Import a model file into edgec's IR (:class:`edgec.ir.graph.Graph`)."""
    from .pipeline import load as _load
    return _load(model, input_shapes)
