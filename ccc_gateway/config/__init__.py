"""Configuration: the YAML model, its loading and validation (every problem by key path)."""
