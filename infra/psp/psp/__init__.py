"""A card processor standing in for a real PSP (Shopstack's payments service calls it)."""
