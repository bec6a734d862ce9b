"""The Compose file loader: one pipeline from YAML text to a typed, frozen project model."""
