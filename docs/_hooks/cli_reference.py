"""MkDocs hook: add ``reference.md``, the command reference, generated from the code.

The page is built from ``gitcoop.cli.app`` at every build and never written to the source
tree, so it cannot go stale (docs/decisions/0017-docs-site.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

PAGE = "reference.md"
GUIDE = "cli.md"


def reference(docs_dir: Path) -> str:
    """The reference page's Markdown, linking each command to its section of the guide."""
    import typer.main

    from gitcoop import clidoc
    from gitcoop.cli import app

    headings = re.findall(r"^## (.+?)\s*$", (docs_dir / GUIDE).read_text(), flags=re.M)
    commands = clidoc.walk(typer.main.get_command(app))
    return clidoc.markdown(commands, GUIDE, headings)


def on_files(files: Any, config: Any) -> Any:
    """Add the generated page to the site's files (before the nav is built from them)."""
    from mkdocs.structure.files import File

    content = reference(Path(config["docs_dir"]))
    files.append(File.generated(config, PAGE, content=content))
    return files
