"""delivery models."""
