"""Shell completion for ``git coop``: the scripts ``git coop completion SHELL`` prints.

The scripts (templates/completion/) hold no command names: at each TAB they run
``git coop`` with ``_GIT_COOP_COMPLETE`` set, and the CLI answers from its own command
tree. New commands and options therefore complete without touching them. The wheel also
installs them where bash-completion, zsh and fish look under its prefix.
"""

from __future__ import annotations

from gitcoop import resources

COMPLETE_VAR = "_GIT_COOP_COMPLETE"
SCRIPTS = {"bash": "git-coop.bash", "zsh": "_git-coop", "fish": "git-coop.fish"}


def script(shell: str) -> str:
    """Return the completion script for ``shell`` (a key of SCRIPTS); raises KeyError
    for another shell and FileNotFoundError when the package lacks its templates."""
    return resources.read_text("templates", "completion", SCRIPTS[shell])
