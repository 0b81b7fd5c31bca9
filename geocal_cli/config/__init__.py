"""Configuration models (one per subcommand), YAML loading and CLI overrides."""
