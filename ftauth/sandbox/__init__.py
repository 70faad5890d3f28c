"""A local France Travail identity server for development, demos and tests."""
