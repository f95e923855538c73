"""Shopstack auth service."""
