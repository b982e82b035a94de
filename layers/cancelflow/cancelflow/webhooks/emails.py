"""The email a shop gets when its endpoint is disabled after failing for days."""

from __future__ import annotations

from cancelflow.kernel.email import Email
from cancelflow.shops.model import Shop
from cancelflow.webhooks.model import Endpoint


def disabled_email(shop: Shop, endpoint: Endpoint, lang: str = "ko") -> Email:
    if lang == "en":
        return Email(
            to=shop.email,
            subject=f"[cancelflow] Webhook endpoint disabled: {endpoint.url}",
            body=(
                f"Deliveries to {endpoint.url} ({endpoint.endpoint_id}) have failed for 3 days, "
                "so the endpoint is now disabled. Fix the receiver, enable it again with PATCH "
                f'/v1/webhook-endpoints/{endpoint.endpoint_id} {{"enabled": true}}, and '
                "redeliver the events it missed (GET …/deliveries lists them)."
            ),
        )
    return Email(
        to=shop.email,
        subject=f"[cancelflow] 웹훅 엔드포인트가 비활성화되었습니다: {endpoint.url}",
        body=(
            f"{endpoint.url} ({endpoint.endpoint_id}) 로의 전송이 3일 동안 실패하여 엔드포인트를 "
            "비활성화했습니다. 수신 서버를 고친 뒤 PATCH "
            f'/v1/webhook-endpoints/{endpoint.endpoint_id} {{"enabled": true}} 로 다시 켜고, '
            "놓친 이벤트는 …/deliveries 에서 찾아 재전송하세요."
        ),
    )
