"""The package's version, in a leaf module: any layer may record it (env.json) without importing the top."""
__version__ = "0.1.0"
