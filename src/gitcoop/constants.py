"""Names shared across gitcoop: refs, files, payload types. No logic."""

from __future__ import annotations

LEDGER_REF = "refs/coop/ledger"
DEFAULT_REMOTE = "origin"  # what `git coop sync` talks to when not told
NOTES_REF = "refs/notes/coop"  # derived from the ledger, for `git log --notes=coop`
COOP_DIR = ".coop"
CHALLENGE_FILE = ".coop/challenge.yaml"
SIGNERS_FILE = ".coop/allowed_signers"
LOCAL_DIR = "coop"  # under the git common dir: caches, worktrees, verify pin

ENTRY_FILE = "entry.json"
PINNED_TREE = "challenge"  # subtree of every ledger commit: the evaluator in force

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://gitcoop.dev/metric-delta/v1"
REVIEW_PREDICATE_TYPE = "https://gitcoop.dev/review/v1"
EVENT_TYPE = "https://gitcoop.dev/event/v1"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
EVENT_PAYLOAD_TYPE = "application/vnd.gitcoop.event+json"

ENTRY_VERSION = 1
CHALLENGE_VERSION = 1

HOOK_GUARD_ENV = "GITCOOP_HOOK_RUNNING"
HOME_ENV = "GITCOOP_HOME"
