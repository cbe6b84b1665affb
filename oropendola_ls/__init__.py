"""oropendola-ls: the Oropendola AI assistant as a Language Server Protocol server."""

__version__ = "0.1.0"
