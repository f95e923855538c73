"""Shopstack orders service."""
