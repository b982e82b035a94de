"""The fault bench (bench/faults.py, `make faults`) in small: 300 cancels (FAULTS_TEST_N= for
another count), full and partial, several per payment and concurrent, under drawn KCP faults
(late answers across and beyond the read timeout and the reconcile window, 500, reset, malformed,
refusals, commit-then-timeout, inquiry faults) and AWS faults (DynamoDB throttling,
conditional-write races, SES down), then every payment compared with the sandbox's ledger, after
the sweep.

Stall-free profile: the faults that may leave a cancel open (holding its payment's send lock, so
that payment's other cancels would wait minutes for it) strike single-cancel payments only, so it
runs in about a minute. `make faults` draws every fault on every payment.

It runs as `make faults` does, in a process of its own with a stack of its own: it patches the
sandbox and hooks the handlers' clients, and a long run must not share moto's in-process state
with the other tests of this worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
N = int(os.environ.get("FAULTS_TEST_N", "300"))
SEED = int(os.environ.get("FAULTS_TEST_SEED", "20261203"))  # fixed: a failure repeats


def _fresh_env() -> dict[str, str]:
    """This process's environment without the session stack's endpoints."""
    return {k: v for k, v in dict(os.environ).items() if k not in ("AWS_ENDPOINT_URL", "MOTO_PORT")}


def test_cancels_under_drawn_faults_match_kcps_ledger(tmp_path: Path) -> None:
    figures_file = tmp_path / "figures.json"
    command = [sys.executable, "bench/faults.py", f"--n={N}", f"--seed={SEED}", "--stall-free"]
    command += ["--in-flight=60", "--ses-down=0.1", "--quiet", f"--json={figures_file}"]
    done = subprocess.run(  # noqa: S603 (our own interpreter and script)
        command,
        cwd=ROOT,
        env=_fresh_env() | {"PYTHONPATH": f"{ROOT / 'layers' / 'cancelflow'}:{ROOT}"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = done.stdout[-6000:] + done.stderr[-3000:]
    assert figures_file.exists(), summary
    figures = json.loads(figures_file.read_text())

    for figure in ("doubles", "lost", "lost_until_corrected", "mismatches", "hold_mismatches"):
        assert figures[figure] == 0, summary
    assert figures["non_terminal"] == 0, summary
    assert figures["sweep"], summary  # the sweep ran: open cases KCP applied were corrected
    # The faults were drawn and struck: the run proves something.
    struck = set(figures["table"])
    assert {"kcp commit_then_timeout", "kcp http_500", "kcp malformed"} <= struck, summary
    assert any(label.startswith("kcp latency: beyond") for label in struck), summary
    assert {"aws race", "aws ses_down", "aws throttle_surfaced"} <= struck, summary
