"""`make charge-tno SUB=… PERIOD=… TNO=…`: link a subscription charge that KCP confirmed only as a
duplicate order to its tno, found in KCP's merchant admin. KCP's inquiry must confirm that tno is
a card charge of the same amount; then the charge can be refunded, and a pro-rata refund that
waited for it is sent through the cancel workflow. Safe to run again.

The same domain call (cancelflow.subscriptions.service.link_charge_tno) serves a deployed stack:
run it with the stack's settings (TABLE_NAME, KCP_BASE_URL, CANCEL_STATE_MACHINE_ARN) and AWS
credentials instead of --env."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from local.bill import stack_env
from local.template import ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shop", default="demo-shop")
    parser.add_argument("--subscription", required=True)
    parser.add_argument("--period", required=True, help="e.g. 2026-12 (see …/charges)")
    parser.add_argument("--tno", required=True, help="KCP's 14-digit transaction number")
    parser.add_argument("--env", type=Path, default=ROOT / ".local" / "stack.env")
    args = parser.parse_args()
    os.environ.update(stack_env(args.env))
    os.environ.setdefault("KCP_BASE_URL", os.environ["SANDBOX_URL"])

    from cancelflow import runtime
    from cancelflow.http.subscription_views import subscription_view
    from cancelflow.kernel.errors import Problem
    from cancelflow.subscriptions import service as subscriptions

    refund = subscriptions.refund_through_cancel_workflow(
        runtime.store(), runtime.starter(), runtime.clock
    )
    try:
        sub = subscriptions.link_charge_tno(
            runtime.billing_store(),
            runtime.gateway_for(runtime.shop(args.shop)),
            refund,
            runtime.clock,
            args.shop,
            args.subscription,
            args.period,
            args.tno,
        )
    except Problem as problem:
        sys.exit(f"{problem.code}: {problem.detail}")
    shown = subscription_view(sub).model_dump(mode="json")
    print(json.dumps(shown, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
