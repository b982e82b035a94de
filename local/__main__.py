"""`make run`: the embedded stack on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import threading

from local.stack import LocalStack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", 3000)))
    parser.add_argument(
        "--sandbox-port", type=int, default=int(os.environ.get("SANDBOX_PORT", 3001))
    )
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("AWS_PORT", 5000)))
    parser.add_argument("--inbox-port", type=int, default=int(os.environ.get("INBOX_PORT", 3002)))
    parser.add_argument(
        "--kcp-notify-port", type=int, default=int(os.environ.get("KCP_NOTIFY_PORT", 3003))
    )
    parser.add_argument(
        "--operator-port", type=int, default=int(os.environ.get("OPERATOR_PORT", 3004))
    )
    parser.add_argument(
        "--console-port", type=int, default=int(os.environ.get("CONSOLE_PORT", 3005))
    )
    args = parser.parse_args()
    ports = {
        "api": args.api_port,
        "sandbox": args.sandbox_port,
        "moto": args.aws_port,
        "inbox": args.inbox_port,
        "kcp_notify": args.kcp_notify_port,
        "operator": args.operator_port,
        "console": args.console_port,
    }
    stack = LocalStack(ports=ports)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a supervisor's stop
        signal.signal(sig, lambda *_: stopped.set())
    env = stack.start()
    print("cancelflow local stack is up (Ctrl-C stops it)\n")
    shown = ("CONSOLE_URL", "API_URL", "SANDBOX_URL", "KCP_NOTIFY_URL", "OPERATOR_API_URL")
    for name in (*shown, "AWS_ENDPOINT_URL", "SHOP_API_KEY", "SHOP_B_API_KEY", "WEBHOOK_INBOX_URL"):
        print(f"  {name}={env[name]}")
    print(f"\n  mail:      {env['MAIL_DIR']}/")
    print("  settings:  source .local/stack.env\n", flush=True)
    try:
        while not stopped.wait(0.5):
            pass
    finally:
        stack.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
