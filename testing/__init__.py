"""Reusable helpers for gitcoop's tests: real git repositories, remotes and players."""
