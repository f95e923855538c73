"""Shopstack cart service."""
