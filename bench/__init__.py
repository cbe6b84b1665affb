"""The benchmark suite: ``python -m bench`` runs every benchmark (see bench/run.py)."""
