"""Shopstack payments service."""
