"""Backends carry a plan to an engine; each is imported lazily."""
