"""compliance models."""
