"""``python -m gitcoop``: the hook fast path skips the CLI framework's import cost."""

from __future__ import annotations

import sys


def main() -> int:
    """Entry point of `git-coop` and `python -m gitcoop`; returns the exit code."""
    if len(sys.argv) > 2 and sys.argv[1:3] == ["hook-impl", "pre-receive"]:
        from gitcoop.commands.server import main as server_main

        return server_main(sys.argv[3:])
    if len(sys.argv) > 1 and sys.argv[1] == "hook-impl":
        from gitcoop.commands.hook import main

        return main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "sync":
        from gitcoop.incoming import start_early

        start_early(sys.argv[2:])  # the transfer overlaps loading the CLI
    from gitcoop.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
