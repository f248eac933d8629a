"""The digits challenge's evaluator (protected: contributors cannot change it).

Fits ``model.build_model()`` on a fixed training split of scikit-learn's bundled digits
dataset and prints the held-out accuracy as the last stdout line, e.g. ``{"accuracy": 0.9722}``.
Anything else goes to stderr, so stdout holds nothing but the score.
"""

from __future__ import annotations

import json
import sys
import time

from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

TEST_SIZE = 0.3
SPLIT_SEED = 0
DIGITS = 4


def main() -> int:
    started = time.perf_counter()
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y
    )

    from model import build_model  # the contributors' code, imported only after the split

    model = build_model()
    model.fit(X_train, y_train)
    accuracy = float(accuracy_score(y_test, model.predict(X_test)))
    print(
        f"evaluate: {type(model).__name__} on {len(y_train)} train / {len(y_test)} test "
        f"digits in {time.perf_counter() - started:.2f}s",
        file=sys.stderr,
    )
    print(json.dumps({"accuracy": round(accuracy, DIGITS)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
