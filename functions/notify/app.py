"""Workflow step: email the outcome to the customer and the shop."""

from aws_lambda_powertools import Logger

from cancelflow import runtime
from cancelflow.cancellations.emails import outcome_emails

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="execution_id")
def handler(event: dict, context: object) -> dict:
    store = runtime.store()
    shop = runtime.shop(event["shop_id"])
    cancellation = store.get_cancellation(shop.shop_id, event["cancellation_id"])
    payment = store.get_payment(shop.shop_id, cancellation.tno) if cancellation else None
    if cancellation is None or payment is None:
        raise LookupError("cancellation or payment vanished")
    language = store.get_policy(shop.shop_id).email_language
    emails = outcome_emails(shop, payment, cancellation, language)
    for email in emails:
        runtime.mailer().send(email)
    return {"sent": len(emails)}
