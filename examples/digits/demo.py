"""Play the digits challenge end to end: a maintainer and three contributors, all local.

Run it from a checkout of gitcoop with ``.venv/bin/python examples/digits/demo.py`` (or
``make demo``). Everything happens in a temporary directory: a bare repository stands in
for the shared remote, and every person has their own clone, git identity and gitcoop key.
Your own git and gitcoop configuration is never read or touched. ``--keep`` leaves the
directory in place so you can look around afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

EXAMPLE_DIR = Path(__file__).resolve().parent
CHALLENGE_FILES = ("model.py", "evaluate.py", "README.md")
VENV_BIN = Path(sys.executable).parent

@dataclass(frozen=True)
class Person:
    """Someone taking part: a git identity plus a private gitcoop home for their key."""

    name: str
    email: str

    @property
    def slug(self) -> str:
        return self.name.lower()


MAINTAINER = Person("Morgan", "morgan@example.org")
ADA = Person("Ada", "ada@example.org")
GRACE = Person("Grace", "grace@example.org")
ALAN = Person("Alan", "alan@example.org")

# Each contributor's change to model.py: a real model, not a cosmetic edit.
SCALED_LOGREG = '''\
"""Ada: standardise the pixels, then a multinomial logistic regression."""

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def build_model() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
'''

RBF_SVC = '''\
"""Grace: an RBF support vector machine with a small kernel width for 0-16 pixel values."""

from sklearn.svm import SVC


def build_model() -> SVC:
    return SVC(kernel="rbf", gamma=0.001)
'''

NEAREST_NEIGHBOURS = '''\
"""Alan: k-nearest neighbours on the raw pixels."""

from sklearn.neighbors import KNeighborsClassifier


def build_model() -> KNeighborsClassifier:
    return KNeighborsClassifier(n_neighbors=3)
'''

TUNED_SVC = '''\
"""Alan: back to Grace's RBF SVM, with a softer margin penalty (C=10)."""

from sklearn.svm import SVC


def build_model() -> SVC:
    return SVC(kernel="rbf", gamma=0.001, C=10.0)
'''


class Demo:
    """The shared scratch area: where repositories, homes and keys live, and how to run git."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.remote = root / "remote.git"
        self.env = hermetic_env(root)

    def workdir(self, person: Person) -> Path:
        return self.root / "work" / person.slug

    def env_for(self, person: Person) -> dict[str, str]:
        # Outside every work tree: gitcoop refuses to keep a key inside a repository.
        return {**self.env, "GITCOOP_HOME": str(self.root / "keys" / person.slug)}

    def run(self, person: Person, *argv: str, cwd: Path | None = None) -> str:
        """Run a command as ``person``, echo it and its output; raise if it fails."""
        where = cwd or self.workdir(person)
        print(f"  [{person.name}] $ {' '.join(quote(a) for a in argv)}", flush=True)
        done = subprocess.run(list(argv), cwd=where, env=self.env_for(person), check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        show(done.stdout)
        return done.stdout


def hermetic_env(root: Path) -> dict[str, str]:
    """An environment that sees no real user or system git/gitcoop configuration."""
    home = root / "home"
    template = root / "git-template"
    for directory in (home, template):
        directory.mkdir(parents=True, exist_ok=True)
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("GIT_", "GITCOOP_", "XDG_"))}
    return {
        **inherited,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TEMPLATE_DIR": str(template),
        "GIT_TERMINAL_PROMPT": "0",
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]),
    }


def quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def show(output: str, file: TextIO = sys.stdout) -> None:
    if output.strip():
        print(textwrap.indent(output.rstrip(), "      "), file=file, flush=True)


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def set_identity(demo: Demo, person: Person) -> None:
    demo.run(person, "git", "config", "user.name", person.name)
    demo.run(person, "git", "config", "user.email", person.email)


def commit_model(demo: Demo, person: Person, source: str, message: str) -> None:
    (demo.workdir(person) / "model.py").write_text(source, encoding="utf-8")
    demo.run(person, "git", "commit", "--quiet", "-m", message, "model.py")


# --- the story ---------------------------------------------------------------------------


def maintainer_creates_challenge(demo: Demo) -> None:
    say("Morgan (the maintainer) puts the digits challenge in a new repository")
    work = demo.workdir(MAINTAINER)
    work.mkdir(parents=True)
    for name in CHALLENGE_FILES:
        shutil.copy2(EXAMPLE_DIR / name, work / name)
    demo.run(MAINTAINER, "git", "init", "--quiet", "-b", "main")
    set_identity(demo, MAINTAINER)
    demo.run(MAINTAINER, "git", "add", *CHALLENGE_FILES)
    demo.run(MAINTAINER, "git", "commit", "--quiet", "-m", "digits challenge: GaussianNB baseline")
    demo.run(MAINTAINER, "git", "init", "--quiet", "--bare", "-b", "main", str(demo.remote),
             cwd=demo.root)
    demo.run(MAINTAINER, "git", "remote", "add", "origin", str(demo.remote))

    say("Morgan writes the challenge: evaluate.py is protected, a season-long round, a pool "
        "of 1,000 points paid in proportion to credit")
    (work / ".coop").mkdir()
    (work / ".coop" / "challenge.yaml").write_text(challenge_yaml(), encoding="utf-8")
    demo.run(MAINTAINER, "cat", ".coop/challenge.yaml")
    demo.run(MAINTAINER, "git", "add", ".coop/challenge.yaml")
    demo.run(MAINTAINER, "git", "commit", "--quiet", "-m", "the digits challenge")
    say("Morgan starts the challenge: the baseline is scored and the ledger begins")
    demo.run(MAINTAINER, "git", "coop", "init")
    demo.run(MAINTAINER, "git", "push", "-u", "origin", "main")


def challenge_yaml() -> str:
    """The challenge file, with a round that runs from an hour ago for a week."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    start = (now - dt.timedelta(hours=1)).strftime(stamp)
    end = (now + dt.timedelta(days=7)).strftime(stamp)
    return textwrap.dedent(f"""\
        version: 1
        name: digits
        metric:
          command: python evaluate.py
          name: accuracy
          direction: maximize
        protect: [evaluate.py]
        credit:
          min_delta: "0.001"
        rounds:
          - {{name: season-1, start: "{start}", end: "{end}"}}
        rewards: {{pool: 1000, unit: points, rule: proportional}}
        """)


def contributor_joins(demo: Demo, person: Person) -> None:
    say(f"{person.name} clones the challenge and joins it (own key, own identity)")
    demo.run(person, "git", "clone", "--quiet", str(demo.remote), str(demo.workdir(person)),
             cwd=demo.root)
    set_identity(demo, person)
    demo.run(person, "git", "coop", "init")
    say(f"{person.name} proposes their key for the trust list, as a commit")
    demo.run(person, "git", "coop", "join")
    demo.run(person, "git", "push")


def ada_plays(demo: Demo) -> None:
    say("Ada pushes a scaled logistic regression; the pre-push hook scores and signs it")
    commit_model(demo, ADA, SCALED_LOGREG, "Scale pixels, use logistic regression")
    demo.run(ADA, "git", "push")


def grace_plays(demo: Demo) -> None:
    say("Grace pushes an RBF support vector machine (gamma=0.001)")
    commit_model(demo, GRACE, RBF_SVC, "RBF SVM with gamma=0.001")
    demo.run(GRACE, "git", "push")


def alan_plays(demo: Demo) -> None:
    say("Alan cloned early, so he first pulls Ada's and Grace's work")
    demo.run(ALAN, "git", "pull", "--ff-only")
    say("Alan tries k-nearest neighbours (k=3): simpler, but worse than Grace's SVM")
    commit_model(demo, ALAN, NEAREST_NEIGHBOURS, "Try 3-nearest neighbours")
    demo.run(ALAN, "git", "push")
    say("Alan goes back to the SVM and tunes its margin (C=10)")
    commit_model(demo, ALAN, TUNED_SVC, "RBF SVM with C=10")
    demo.run(ALAN, "git", "push")


def maintainer_reviews(demo: Demo) -> None:
    say("Morgan pulls, brings the ledger in, and asks who improved the score")
    demo.run(MAINTAINER, "git", "pull", "--ff-only")
    demo.run(MAINTAINER, "git", "coop", "sync", "origin")
    demo.run(MAINTAINER, "git", "log", "--oneline", "--format=%h %an: %s")
    say("Morgan accepts the three joins with one signed trust update: until then their "
        "scores count for nothing")
    demo.run(MAINTAINER, "git", "coop", "join", "--accept")
    say("Morgan reproduces the newest score on this machine and signs the verdict")
    demo.run(MAINTAINER, "git", "coop", "review", "HEAD", "--reproduce")
    demo.run(MAINTAINER, "git", "coop", "sync", "origin")
    demo.run(MAINTAINER, "git", "coop", "credit")
    say("The leaderboard (scores rounded to min_delta) and the season's payout so far")
    demo.run(MAINTAINER, "git", "coop", "leaderboard", "--round", "season-1")
    demo.run(MAINTAINER, "git", "coop", "payout", "--round", "season-1")
    say("Anyone can check the ledger: every entry linked, signed and about a real commit")
    demo.run(MAINTAINER, "git", "coop", "verify")
    report = demo.root / "report.html"
    demo.run(MAINTAINER, "git", "coop", "report", "--html", str(report))
    say("A page to look at, viewed with no network: report.html in the demo directory "
        "(run the demo with --keep to open it)")


def play(root: Path) -> None:
    demo = Demo(root)
    maintainer_creates_challenge(demo)
    contributor_joins(demo, ALAN)
    contributor_joins(demo, ADA)
    ada_plays(demo)
    contributor_joins(demo, GRACE)
    grace_plays(demo)
    alan_plays(demo)
    maintainer_reviews(demo)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory and print where it is")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="gitcoop-digits-demo-"))
    started = time.monotonic()
    try:
        play(root)
    except subprocess.CalledProcessError as exc:
        print(f"\ndemo FAILED: {' '.join(map(quote, exc.cmd))} exited {exc.returncode}",
              file=sys.stderr)
        show(exc.output or "", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"\nkept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\ndemo finished in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
