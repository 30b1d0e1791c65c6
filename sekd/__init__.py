"""sekd."""
