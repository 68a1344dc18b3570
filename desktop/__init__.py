"""facescope desktop application (PySide6 + pyqtgraph). All Qt code lives in this package.

The window itself is built in a later milestone (issue P3); the package exists now so that
the import-linter contracts in pyproject.toml guard the boundary from the start.
"""
