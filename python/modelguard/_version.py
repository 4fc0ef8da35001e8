# Kept equal to Cargo.toml's version (a test checks); part of the conversion cache key.
__version__ = "0.1.0"
