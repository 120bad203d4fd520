"""Companion runbooks for compute nodes and the cloud controller (operations guide)."""
