"""The fault bench (bench/faults.py, `make faults`) in small: 300 cancels (FAULTS_TEST_N= for
another count), full and partial, several per payment and concurrent, under drawn KCP faults
(late answers across and beyond the read timeout and the reconcile window, 500, reset, malformed,
refusals, commit-then-timeout, inquiry faults) and AWS faults (DynamoDB throttling,
conditional-write races, SES down), then every payment compared with the sandbox's ledger, after
the sweep.

Stall-free profile: the faults that may leave a cancel open (holding its payment's send lock, so
that payment's other cancels would wait minutes for it) strike single-cancel payments only, so it
runs in about a minute. `make faults` draws every fault on every payment.
"""

from __future__ import annotations

import os

from bench.faults import Settings, report, run
from local.stack import LocalStack

N = int(os.environ.get("FAULTS_TEST_N", "300"))
SEED = int(os.environ.get("FAULTS_TEST_SEED", "20261203"))  # fixed: a failure repeats


def test_cancels_under_drawn_faults_match_kcps_ledger(stack: LocalStack) -> None:
    settings = Settings(n=N, seed=SEED, stall_free=True, quiet=True, in_flight=60, ses_down=0.1)
    figures = run(settings, stack)

    summary = report(figures)
    assert figures.doubles == 0, summary
    assert figures.lost == 0, summary
    assert figures.lost_until_corrected == 0, summary
    assert figures.mismatches == 0, summary
    assert figures.hold_mismatches == 0, summary
    assert figures.non_terminal == 0, summary
    # The faults were drawn and struck: the run proves something.
    struck = set(figures.table)
    assert {"kcp commit_then_timeout", "kcp http_500", "kcp malformed"} <= struck, summary
    assert any(label.startswith("kcp latency: beyond") for label in struck), summary
    assert {"aws race", "aws ses_down"} <= struck, summary
