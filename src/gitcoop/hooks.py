"""Install and remove the pre-push hook shim, keeping any existing hook as ``.legacy``."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from gitcoop import _fs, _gitcli, resources
from gitcoop.errors import ConfigError

MARKER = "# gitcoop-hook"
HOOK = "pre-push"


def _ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return False


def hooks_dir(workdir: Path) -> Path:
    """The directory git runs hooks from; raises ConfigError when core.hooksPath moves it."""
    path, custom = _gitcli.hooks_dir(workdir)
    if custom:
        raise ConfigError(
            f"core.hooksPath is set ({custom}), so git does not run hooks from .git/hooks",
            hint='add `python -m gitcoop hook-impl pre-push "$@"` to your pre-push hook there, '
            "or run `git config --unset core.hooksPath`, or pass --no-hooks",
        )
    return path


def install(workdir: Path) -> Path:
    """Install the shim; an existing foreign hook becomes ``pre-push.legacy`` and still runs.

    Returns the hook's path; raises ConfigError when a legacy hook would be overwritten.
    """
    return install_shim(hooks_dir(workdir), HOOK)


def install_shim(directory: Path, name: str) -> Path:
    """Write gitcoop's shim for hook ``name`` into ``directory``, keeping a foreign hook
    there as ``<name>.legacy`` (which the shim runs first); return the hook's path.

    Raises ConfigError when a kept legacy hook would be overwritten.
    """
    directory.mkdir(parents=True, exist_ok=True)
    hook, legacy = directory / name, directory / f"{name}.legacy"
    if hook.exists() and not _ours(hook):
        if legacy.exists():
            raise ConfigError(
                f"both {hook} and {legacy} exist", hint="merge them into one, then run this again"
            )
        os.replace(hook, legacy)
    text = resources.read_text("hooks", name).replace(
        "@INSTALL_PYTHON@", shlex.quote(sys.executable)
    )
    _fs.atomic_write(hook, text.encode(), mode=0o755)
    return hook


def installed(workdir: Path) -> bool:
    """Whether our shim is the active pre-push hook."""
    try:
        return _ours(hooks_dir(workdir) / HOOK)
    except ConfigError:
        return False


def uninstall(workdir: Path) -> None:
    """Remove our shim and put a kept ``.legacy`` hook back."""
    directory = hooks_dir(workdir)
    hook, legacy = directory / HOOK, directory / f"{HOOK}.legacy"
    if _ours(hook):
        hook.unlink()
        if legacy.exists():
            os.replace(legacy, hook)


def legacy_hook(git_dir: Path) -> Path | None:
    """The kept foreign hook to chain to, if any."""
    path = git_dir / "hooks" / f"{HOOK}.legacy"
    return path if path.exists() and os.access(path, os.X_OK) else None


def input_lines(data: bytes, width: int) -> list[list[str]]:
    """The lines of a hook's standard input that have exactly ``width`` fields, split."""
    lines = (raw.split() for raw in data.decode("utf-8", errors="replace").splitlines())
    return [fields for fields in lines if len(fields) == width]
