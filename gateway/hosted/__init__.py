"""Hosted stdio servers: the child processes the gateway runs for them (children.py) and their bookkeeping."""
