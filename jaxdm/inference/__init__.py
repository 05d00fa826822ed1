"""Amortized inference: neural posterior and ratio estimation, diagnostics."""
