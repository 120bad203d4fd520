"""The live cluster: what swift's recon middleware and the nodes themselves report.

``recon`` is the HTTP client (one concurrent sweep), ``recon_parse`` the pure parsers
of each answer.  Nothing here imports the CLI.
"""
