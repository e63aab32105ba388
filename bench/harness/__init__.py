"""Sluice benchmark harness: see bench/README.md. Entry point: bench/run."""
