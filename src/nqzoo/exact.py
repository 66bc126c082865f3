"""Exact references: ground-state energies by Lanczos and closed forms."""
