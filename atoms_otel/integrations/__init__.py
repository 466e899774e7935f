"""Integrations produce signals from other libraries (FastAPI, MCP). They never import plugins."""
