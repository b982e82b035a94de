"""The one catalogue of errors a shop can see: stable codes, HTTP status, a plain title.

Everything the API refuses is a Problem (RFC 9457 problem+json); `code` is the contract.
"""

from __future__ import annotations

from typing import Any

from cancelflow.kernel.reasons import REASONS

# code: (HTTP status, title)
CATALOGUE: dict[str, tuple[int, str]] = {
    "MALFORMED_JSON": (400, "The request body is not valid JSON."),
    "VALIDATION_FAILED": (400, "Some fields are missing or invalid."),
    "INVALID_CURSOR": (
        400,
        "The cursor is not valid for these filters; start from the first page.",
    ),
    "IDEMPOTENCY_KEY_REQUIRED": (400, "Send an Idempotency-Key header with this request."),
    "UNAUTHORIZED": (401, "Missing or unknown API key."),
    "FORBIDDEN": (
        403,
        "Sign the request with AWS SigV4 credentials allowed to call the operator API.",
    ),
    "NOT_FOUND": (404, "No such resource."),
    "PAYMENT_NOT_FOUND": (404, "No payment with this tno for your shop."),
    "CANCELLATION_NOT_FOUND": (404, "No cancellation with this id for your shop."),
    "METHOD_NOT_ALLOWED": (405, "This method is not allowed here."),
    "PAYMENT_CONFLICT": (409, "This tno is already registered with different details."),
    "REVIEW_PENDING": (409, "Another cancel of this payment is still open; its amount is held."),
    "SHOP_NOT_FOUND": (404, "No such shop."),
    "API_KEY_NOT_FOUND": (404, "No such API key for this shop."),
    "SHOP_EXISTS": (409, "A shop with this id exists already."),
    "REVIEW_NOT_OPEN": (409, "This cancellation is not waiting for a review."),
    "REVIEW_DECIDED": (409, "This review was already decided otherwise."),
    "REVIEW_CHANGED": (409, "The review changed while you decided; read it again."),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Send the body as application/json."),
    "PAYMENT_MISMATCH": (422, "KCP does not hold this payment as described."),
    "FULFILLMENT_TRANSITION_INVALID": (422, "The payment cannot move to that fulfillment status."),
    "IDEMPOTENCY_KEY_REUSED": (422, "This Idempotency-Key was used with a different request."),
    "SERVICE_UNAVAILABLE": (503, "Temporarily unavailable; retry."),
    "INTERNAL_ERROR": (500, "Something went wrong on our side."),
    # Subscriptions (issue 6)
    "SUBSCRIPTION_NOT_FOUND": (404, "No subscription with this id for your shop."),
    "SUBSCRIPTION_STATE_CONFLICT": (409, "The subscription's status does not allow this."),
    "SUBSCRIPTION_REFUND_MANUAL": (409, "Cancelled, but the refund must be made by hand."),
    "CHARGE_NOT_FOUND": (404, "No such charge of this subscription."),
    # Webhooks (issue 15)
    "WEBHOOK_ENDPOINT_NOT_FOUND": (404, "No webhook endpoint with this id for your shop."),
    "WEBHOOK_DELIVERY_NOT_FOUND": (404, "No delivery of this event to this endpoint."),
    "WEBHOOK_ENDPOINT_LIMIT": (409, "The shop has as many webhook endpoints as allowed."),
    "WEBHOOK_ENDPOINT_DISABLED": (409, "The webhook endpoint is disabled."),
    "WEBHOOK_URL_REFUSED": (422, "Webhooks go only to HTTPS URLs at public addresses."),
    "WEBHOOK_EVENT_UNKNOWN": (422, "Some event types are not known."),
    # Bulk cancels (issue 16)
    "BATCH_NOT_FOUND": (404, "No cancellation batch with this id for your shop."),
    "BATCH_ENDED": (409, "This batch has ended; there is nothing left to stop."),
    "BATCH_DUPLICATE_TNO": (422, "A batch names each payment once."),
}
# Every reason a cancel can be refused for (eligibility) is also a 422 code the API may answer.
CATALOGUE |= {code: (422, text["en"]) for code, text in REASONS.items() if code not in CATALOGUE}


class Problem(Exception):
    """An error with a stable code that the API shows as problem+json."""

    def __init__(self, code: str, detail: str = "", **extra: Any) -> None:
        if code not in CATALOGUE:
            raise KeyError(f"unknown problem code {code}")
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.status, self.title = CATALOGUE[code]
        self.detail = detail or self.title
        self.extra = extra

    def body(self, instance: str = "") -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": f"https://cancelflow.dev/problems/{self.code.lower().replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


class Conflict(Exception):
    """A conditional write lost: the item is not in the state the caller expected."""
