"""Layer 1, the base: errors and the settings table, request context, scrubbing, the internal-error
guard, typed events, semantic-convention helpers and the third-party compatibility shim.

Imports nothing of atoms_otel above it. See docs/architecture.md.
"""
