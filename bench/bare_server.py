"""The baseline for bench/startup.py: a pygls 2 server with no features of its own."""

from pygls.lsp.server import LanguageServer

if __name__ == "__main__":
    LanguageServer("bare", "1.0").start_io()
