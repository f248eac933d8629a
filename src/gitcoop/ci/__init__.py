"""gitcoop in continuous integration: GitHub Actions."""
