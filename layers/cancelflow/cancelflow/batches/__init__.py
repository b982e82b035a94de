"""Bulk cancels: one request names many payments of a shop; each becomes an ordinary cancellation,
sent to KCP at the shop's TPS budget (issue 16)."""
