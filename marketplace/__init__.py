"""Marketplace: listings, submissions and one-click endpoints (later issues)."""
