"""Use cases behind the CLI: typed inputs in, results out, no printing."""
