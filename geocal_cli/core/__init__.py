"""Pure numerics: no file I/O, no CLI, no config parsing."""
