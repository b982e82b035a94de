"""Billing run step: charge one due subscription once for its period (or reconcile it)."""

from datetime import date

from aws_lambda_powertools import Logger

from cancelflow import runtime
from cancelflow.billing import subscriptions

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="execution_id")
def handler(event: dict, context: object) -> dict:
    shop = runtime.shop(event["shop_id"])
    deps = subscriptions.ChargeDeps(
        store=runtime.billing_store(),
        vault=runtime.batch_keys(),
        gateway=runtime.gateway_for(shop),
        mailer=runtime.mailer(),
        clock=runtime.clock,
        shop=shop,
        language=runtime.store().get_policy(shop.shop_id).email_language,
    )
    result = subscriptions.charge(
        deps,
        shop.shop_id,
        event["subscription_id"],
        date.fromisoformat(event["billing_date"]),
        event["config"],
        int(event.get("tries", 0)),
    )
    logger.info("charge step", extra=result)
    return result
