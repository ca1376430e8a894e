"""The package's version, in a module of its own: the low layers that stamp it into checkpoints and exports
(engine/checkpoint.py, deploy/) import it from here, not from the package root, whose `__getattr__` reaches up
to the API (tests/test_imports.py checks the layers)."""

__version__ = "0.2.0"
