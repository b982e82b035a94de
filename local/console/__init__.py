"""The operator console of the local stack (issue 14): executions with the path each took, the
review queue, a payment beside KCP's record of it, the mail that went out, the billing runs.

Server-rendered (Jinja2), the graph laid out by Graphviz's `dot` as inline SVG; everything it
loads is served by the stack. `make run` prints its CONSOLE_URL.
"""

from local.console.server import Console

__all__ = ["Console"]
