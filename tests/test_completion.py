"""Shell completion, for real: bash through bash-completion and git's own completion, zsh
through its _git (driven in a pseudo-terminal), fish through its git completion. The
candidates come from the command tree, and the hook path loads none of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from testing.imports import loaded_modules
from testing.world import World

from gitcoop.cli import command_tree

BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")
GIT_BASH = Path("/usr/share/bash-completion/completions/git")
TOP = sorted(name for name, cmd in command_tree().commands.items() if not cmd.hidden)


def _script(shell: str) -> str:
    out = subprocess.run(
        ["git", "coop", "completion", shell], capture_output=True, text=True, check=True
    )
    return out.stdout


def _env() -> dict[str, str]:
    return dict(os.environ)


def _need(*paths: Path | str) -> None:
    for p in paths:
        if not (Path(p).exists() if isinstance(p, Path) else shutil.which(p)):
            pytest.fail(f"{p} is missing: make test installs it (Debian packages)")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_scripts_parse(shell: str, tmp_path: Path) -> None:
    _need(shell)
    path = tmp_path / f"script.{shell}"
    path.write_text(_script(shell))
    out = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_an_unknown_shell_is_a_usage_error() -> None:
    out = subprocess.run(
        ["git", "coop", "completion", "tcsh"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 2 and out.stderr.startswith("gitcoop: error: ")
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in out.stderr


# Ask git's bash completion (the function `complete -p git` names) for each line, as a TAB
# at the end of it would: COMP_WORDS/COMP_CWORD as bash sets them.
BASH_DRIVER = textwrap.dedent(
    r"""
    source /usr/share/bash-completion/bash_completion
    source /usr/share/bash-completion/completions/git
    [[ -n $SCRIPT ]] && source "$SCRIPT"
    fn=$(complete -p git | sed -E 's/.* -F ([^ ]+) .*/\1/')
    for line in "$@"; do
        COMP_LINE=$line COMP_POINT=${#line}
        read -ra COMP_WORDS <<< "$line"
        [[ $line == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        "$fn" git "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s' "$line"; printf '\t%s' "${COMPREPLY[@]}"; printf '\n'
    done
    """
)


def _bash(lines: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, list[str]]:
    out = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "driver", *lines],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    replies = {}
    for row in out.stdout.splitlines():
        line, *candidates = row.split("\t")
        replies[line] = [c for c in candidates if c]
    assert list(replies) == lines, out.stdout + out.stderr
    return replies


LINES = [
    "git coop ",
    "git coop ver",
    "git coop credit --r",
    "git coop credit --format ",
    "git coop credit --format=j",
    "git coop key ex",
    "git coop completion ",
]


def _check_bash(replies: dict[str, list[str]], where: Path) -> None:
    assert sorted(c.strip() for c in replies["git coop "]) == TOP  # the tree, nothing else
    assert replies["git coop ver"] == ["verify "]
    assert sorted(replies["git coop credit --r"]) == ["--rev ", "--round "]
    assert sorted(replies["git coop credit --format "]) == [
        "csv ",
        "json ",
        "markdown ",
        "table ",
    ]
    assert replies["git coop credit --format=j"] == ["json "]
    assert replies["git coop key ex"] == ["export "]
    assert replies["git coop completion "] == ["bash ", "zsh ", "fish "]
    assert replies[f"git -C {where} coop key ex"] == ["export "]


def test_bash_completes_git_coop_through_gits_completion(tmp_path: Path) -> None:
    _need(BASH_COMPLETION, GIT_BASH, "bash")
    script = tmp_path / "git-coop.bash"
    script.write_text(_script("bash"))
    env = {**_env(), "SCRIPT": str(script)}
    _check_bash(_bash([*LINES, f"git -C {tmp_path} coop key ex"], tmp_path, env), tmp_path)


def test_bash_completion_loads_the_installed_file_on_demand(tmp_path: Path) -> None:
    # saved where bash-completion looks (the wheel installs it there for a --user install),
    # git's completion loads it at the first `git coop <TAB>`: nothing to source
    _need(BASH_COMPLETION, GIT_BASH, "bash")
    user_dir = tmp_path / "bash-completion"
    (user_dir / "completions").mkdir(parents=True)
    (user_dir / "completions" / "git-coop").write_text(_script("bash"))
    env = {**_env(), "SCRIPT": "", "BASH_COMPLETION_USER_DIR": str(user_dir)}
    replies = _bash(["git coop ver", "git coop credit --r"], tmp_path, env)
    assert replies["git coop ver"] == ["verify "]
    assert sorted(replies["git coop credit --r"]) == ["--rev ", "--round "]


def test_bash_leaves_a_path_argument_to_file_name_completion(tmp_path: Path) -> None:
    _need(BASH_COMPLETION, GIT_BASH, "bash")
    script = tmp_path / "git-coop.bash"
    script.write_text(_script("bash"))
    replies = _bash(["git coop report --html rep"], tmp_path, {**_env(), "SCRIPT": str(script)})
    assert replies["git coop report --html rep"] == []  # bash's -o default: file names


# zsh completes only in its line editor: run an interactive zsh in a pseudo-terminal
# (zsh/zpty), type each line and TAB, then a key bound to a widget that prints the buffer.
ZSH_DRIVER = textwrap.dedent(
    r"""
    zmodload zsh/zpty
    zpty z zsh -f -i
    zpty -w z "PS1=''; fpath=($FPATH_DIR \$fpath); autoload -U compinit; compinit -u -D"
    [[ -n $SCRIPT ]] && zpty -w z "source $SCRIPT"
    zpty -w z 'setopt nobeep; bindkey "^X" dump; zle -N dump'
    zpty -w z 'dump() { BUFFER="print -r -- \${(U):-buf}${(qq)BUFFER}\${(U):-end}"
        zle accept-line }'
    zpty -w z 'print ${(U):-ready}'
    zpty -r -m z out '*READY*'
    for line in "$@"; do
        zpty -w -n z "$line"$'\t'$'\C-x'
        zpty -r -m z out '*BUF*END*'
        out=${out##*BUF}
        print -r -- "${out%%END*}"
    done
    zpty -d z
    """
)


def _zsh(lines: list[str], cwd: Path, script: str, fpath_dir: Path) -> list[str]:
    env = {**_env(), "SCRIPT": script, "FPATH_DIR": str(fpath_dir)}
    out = subprocess.run(
        ["zsh", "-f", "-c", ZSH_DRIVER, "driver", *lines],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.splitlines()


ZSH_LINES = {
    "git coop cre": "git coop credit ",
    "git coop credit --form": "git coop credit --format ",
    "git coop credit --format j": "git coop credit --format json ",
    "git coop key ex": "git coop key export ",
    "git-coop ver": "git-coop verify ",
}


@pytest.mark.parametrize("how", ["sourced", "fpath"])
def test_zsh_completes_git_coop_through_its_git_completion(tmp_path: Path, how: str) -> None:
    _need("zsh")
    script = tmp_path / "_git-coop"
    script.write_text(_script("zsh"))
    functions = tmp_path / "functions"
    functions.mkdir()
    if how == "fpath":
        shutil.copy(script, functions / "_git-coop")
    buffers = _zsh(list(ZSH_LINES), tmp_path, str(script) if how == "sourced" else "", functions)
    assert [b.strip("'") for b in buffers] == list(ZSH_LINES.values())


def _fish(lines: list[str], cwd: Path) -> dict[str, list[str]]:
    program = "git coop completion fish | source\n" + "".join(
        f"echo '>>> {line}'; complete -C '{line}'\n" for line in lines
    )
    out = subprocess.run(
        ["fish", "-c", program],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    replies: dict[str, list[str]] = {}
    for row in out.stdout.splitlines():
        if row.startswith(">>> "):
            current = replies.setdefault(row[4:], [])
        else:
            current.append(row.split("\t")[0])
    return replies


def test_fish_completes_git_coop_and_git_hyphen_coop(tmp_path: Path) -> None:
    _need("fish")
    (tmp_path / "report.html").write_text("")
    replies = _fish(
        [
            "git coop ",
            "git coop cre",
            "git coop credit --r",
            "git coop credit --format ",
            "git -C . coop key ex",
            "git-coop ver",
            "git coop report --html rep",
        ],
        tmp_path,
    )
    assert sorted(replies["git coop "]) == TOP
    assert replies["git coop cre"] == ["credit"]
    assert sorted(replies["git coop credit --r"]) == ["--rev", "--round"]
    assert sorted(replies["git coop credit --format "]) == ["csv", "json", "markdown", "table"]
    assert replies["git -C . coop key ex"] == ["export"]
    assert replies["git-coop ver"] == ["verify"]
    assert replies["git coop report --html rep"] == ["report.html"]


def test_the_hook_path_loads_no_completion_and_no_man_page_code(world: World) -> None:
    m = world.maintainer()
    head = m.head()
    stdin = f"refs/heads/main {head} refs/heads/main {head}\n"
    args = ("hook-impl", "pre-push", "origin", str(world.remote))
    modules = loaded_modules(m.repo, *args, stdin=stdin)
    assert "gitcoop.commands.hook" in modules
    assert not modules & {"gitcoop.completion", "gitcoop.manpage", "gitcoop.cli", "typer"}
