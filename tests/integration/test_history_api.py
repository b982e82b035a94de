"""What a shop's support staff do every day: find a payment, read its story, cancel part of it,
export the month. Through the API, on the real state machine."""

from __future__ import annotations

import csv
import io
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from .conftest import Sandbox, ShopClient, http


@pytest.fixture
def marker() -> str:
    """A word only this test's products carry, so other tests' payments stay out of sight."""
    return uuid.uuid4().hex[:8]


def _history(shop: ShopClient, query: str) -> tuple[int, dict]:
    answer = http("GET", f"{shop.url}/v1/payments?{query}", headers=shop.auth)
    return answer.status, answer.body


def _seed(shop: ShopClient, sandbox: Sandbox, marker: str) -> list[dict]:
    """Five payments over three days of March 2025 (KST), different products and amounts."""
    specs = [
        ("2025-03-10T09:00:00+09:00", 12000, f"Organic T-Shirt {marker}", "CARD"),
        ("2025-03-10T23:30:00+09:00", 55000, f"머그컵 {marker}", "CARD"),
        ("2025-03-11T00:10:00+09:00", 8000, f"양말 세트 {marker}", "BANK_TRANSFER"),
        ("2025-03-12T12:00:00+09:00", 30000, f"organic t-shirt XL {marker}", "CARD"),
        ("2025-03-12T18:00:00+09:00", 99000, f"겨울 코트 {marker}", "VIRTUAL_ACCOUNT"),
    ]
    payments = []
    for approved_at, amount, product, method in specs:
        payment = sandbox.approve(
            amount=amount, product_name=product, method=method, approved_at=approved_at
        )
        assert shop.register(payment).status == 201
        payments.append(payment)
    return payments


def test_find_a_payment_by_product_name_case_insensitively_newest_first(
    shop: ShopClient, sandbox: Sandbox, marker: str
) -> None:
    seeded = _seed(shop, sandbox, marker)
    status, body = _history(shop, f"product={quote('T-SHIRT XL ' + marker)}")
    assert status == 200
    assert [p["tno"] for p in body["items"]] == [seeded[3]["tno"]]
    status, body = _history(shop, f"product={quote('t-shirt')}&from=2025-03-10&to=2025-03-12")
    names = [p["product_name"] for p in body["items"] if marker in p["product_name"]]
    assert names == [f"organic t-shirt XL {marker}", f"Organic T-Shirt {marker}"]
    assert body["items"][0]["approved_at"] == "2025-03-12T12:00:00+09:00"
    assert {p["tno"] for p in body["items"] if marker in p["product_name"]} == {
        seeded[3]["tno"],
        seeded[0]["tno"],
    }


def test_dates_are_kst_days_and_amounts_bound_the_range(
    shop: ShopClient, sandbox: Sandbox, marker: str
) -> None:
    _seed(shop, sandbox, marker)
    _, day = _history(shop, f"product={marker}&from=2025-03-10&to=2025-03-10")
    assert [p["amount"] for p in day["items"]] == [55000, 12000]  # 23:30 KST is still the 10th
    _, amounts = _history(shop, f"product={marker}&min_amount=10000&max_amount=55000")
    assert sorted(p["amount"] for p in amounts["items"]) == [12000, 30000, 55000]
    _, by_method = _history(shop, f"product={marker}&method=VIRTUAL_ACCOUNT")
    assert [p["amount"] for p in by_method["items"]] == [99000]


def test_pages_follow_an_opaque_cursor_without_gaps_or_repeats(
    shop: ShopClient, sandbox: Sandbox, marker: str
) -> None:
    seeded = _seed(shop, sandbox, marker)
    seen, cursor = [], ""
    for _ in range(10):
        _, page = _history(
            shop, f"product={marker}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        )
        assert len(page["items"]) <= 2
        seen += [p["tno"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [p["tno"] for p in reversed(seeded)]


def test_a_tampered_or_borrowed_cursor_is_refused(
    shop: ShopClient, shop_b: ShopClient, sandbox: Sandbox, marker: str
) -> None:
    _seed(shop, sandbox, marker)
    _, page = _history(shop, f"product={marker}&limit=2")
    cursor = page["next_cursor"]
    body, _, signature = cursor.partition(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
    for query in (f"product={marker}&cursor={forged}", f"product=other&cursor={cursor}"):
        status, problem = _history(shop, query)
        assert (status, problem["code"]) == (400, "INVALID_CURSOR")
    status, problem = _history(shop_b, f"product={marker}&limit=2&cursor={cursor}")
    assert (status, problem["code"]) == (400, "INVALID_CURSOR")


@pytest.mark.parametrize(
    "query",
    [
        "limit=101",
        "limit=0",
        "min_amount=-1",
        "from=2025-13-01",
        "to=yesterday",
        "status=REFUNDED",
        "method=CASH",
        "from=2025-03-10T09:00:00",
    ],
)
def test_bad_filters_are_refused_with_a_code(shop: ShopClient, query: str) -> None:
    status, problem = _history(shop, query)
    assert status == 400
    assert problem["code"] == "VALIDATION_FAILED"


def test_another_shop_sees_none_of_these_payments(
    shop: ShopClient, shop_b: ShopClient, sandbox: Sandbox, marker: str
) -> None:
    seeded = _seed(shop, sandbox, marker)
    _, page = _history(shop_b, f"product={marker}")
    assert page["items"] == []
    detail = http("GET", f"{shop_b.url}/v1/payments/{seeded[0]['tno']}", headers=shop_b.auth)
    assert (detail.status, detail.body["code"]) == (404, "PAYMENT_NOT_FOUND")


def test_partially_cancel_twice_then_read_the_whole_story_in_the_detail(
    shop: ShopClient, sandbox: Sandbox, marker: str
) -> None:
    payment = _seed(shop, sandbox, marker)[1]  # 55,000 KRW mug
    tno = payment["tno"]
    sandbox.fault(tno, "res_cd", value="8012")
    failed = shop.outcome(
        shop.cancel(tno, {"reason_code": "OTHER", "amount": 5000}).body["cancellation_id"]
    )
    first = shop.outcome(
        shop.cancel(tno, {"reason_code": "OTHER", "amount": 5000}).body["cancellation_id"]
    )
    second = shop.outcome(
        shop.cancel(tno, {"reason_code": "DEFECTIVE", "amount": 20000}).body["cancellation_id"]
    )
    assert (failed["status"], first["status"], second["status"]) == (
        "FAILED",
        "SUCCEEDED",
        "SUCCEEDED",
    )

    detail = http("GET", f"{shop.url}/v1/payments/{tno}", headers=shop.auth).body

    assert (detail["amount"], detail["cancelled_amount"], detail["balance"]) == (
        55000,
        25000,
        30000,
    )
    assert detail["status"] == "PARTIALLY_CANCELLED"
    story = [(c["status"], c["amount"], c["reason_code"]) for c in detail["cancellations"]]
    assert story == [
        ("FAILED", 5000, "OTHER"),
        ("SUCCEEDED", 5000, "OTHER"),
        ("SUCCEEDED", 20000, "DEFECTIVE"),
    ]
    why = detail["cancellations"][0]["attempts"][0]["gateway"]
    assert why["res_cd"] == "8012" and why["message"] and why["hint"]
    assert [c["partial_seq"] for c in detail["cancellations"][1:]] == ["0001", "0002"]
    assert all(c["cancelled_at"] for c in detail["cancellations"][1:])
    listed = http("GET", f"{shop.url}/v1/payments/{tno}/cancellations", headers=shop.auth).body
    assert [c["cancellation_id"] for c in listed["items"]] == [
        c["cancellation_id"] for c in detail["cancellations"]
    ]
    _, cancelled = _history(shop, f"product={marker}&status=PARTIALLY_CANCELLED")
    assert [p["tno"] for p in cancelled["items"]] == [tno]


def test_export_the_month_as_csv_that_keeps_korean_intact(
    shop: ShopClient, shop_b: ShopClient, sandbox: Sandbox, marker: str
) -> None:
    _seed(shop, sandbox, marker)
    answer = http(
        "GET",
        f"{shop.url}/v1/payments/export?from=2025-03-01&to=2025-03-31&product={marker}",
        headers=shop.auth,
    )  # follows the 303 to the file
    assert answer.status == 200
    raw = answer.body.encode() if isinstance(answer.body, str) else answer.body
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    assert text.startswith("\ufeff")  # the BOM that makes Excel read UTF-8
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["승인시각(KST)", "거래번호(tno)", "주문번호", "상품명"]
    assert [r[3] for r in rows[1:]] == [
        f"겨울 코트 {marker}",
        f"organic t-shirt XL {marker}",
        f"양말 세트 {marker}",
        f"머그컵 {marker}",
        f"Organic T-Shirt {marker}",
    ]
    assert rows[1][0] == "2025-03-12 18:00:00"
    other = http("GET", f"{shop_b.url}/v1/payments/export?product={marker}", headers=shop_b.auth)
    assert len(list(csv.reader(io.StringIO(other.body.lstrip("\ufeff"))))) == 1  # header only


def test_a_product_name_that_looks_like_a_formula_is_exported_as_text(
    shop: ShopClient, sandbox: Sandbox, marker: str
) -> None:
    payment = sandbox.approve(amount=1000, product_name=f'=HYPERLINK("x") {marker}')
    shop.register(payment)
    answer = http("GET", f"{shop.url}/v1/payments/export?product={marker}", headers=shop.auth)
    rows = list(csv.reader(io.StringIO(answer.body.lstrip("\ufeff"))))
    assert rows[1][3].startswith("'=HYPERLINK")


def test_the_local_stack_serves_swagger_ui_over_the_committed_document(shop: ShopClient) -> None:
    page = http("GET", f"{shop.url}/swagger")
    assert page.status == 200 and "SwaggerUIBundle" in page.body
    spec = http("GET", f"{shop.url}/openapi.json")
    assert "/v1/payments/{tno}/cancellations" in spec.body["paths"]
    assert http("GET", f"{shop.url}/swagger/swagger-ui-bundle.js").status == 200


def test_an_export_with_from_after_to_is_refused(shop: ShopClient) -> None:
    answer = http(
        "GET", f"{shop.url}/v1/payments/export?from=2025-03-12&to=2025-03-10", headers=shop.auth
    )
    assert (answer.status, answer.body["code"]) == (400, "VALIDATION_FAILED")


def test_a_fully_cancelled_payment_has_no_goods_to_ship(shop: ShopClient, paid: dict) -> None:
    shop.outcome(shop.cancel(paid["tno"]).body["cancellation_id"])
    answer = http(
        "PATCH",
        f"{shop.url}/v1/payments/{paid['tno']}/fulfillment",
        {"status": "SHIPPED"},
        shop.auth,
    )
    assert (answer.status, answer.body["code"]) == (422, "FULFILLMENT_TRANSITION_INVALID")


def _export_link(client: ShopClient, query: str) -> str:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    request = urllib.request.Request(
        f"{client.url}/v1/payments/export?{query}", headers=client.auth
    )
    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=30)
    except urllib.error.HTTPError as answer:
        assert answer.code == 303
        return answer.headers["Location"]
    raise AssertionError("export did not answer 303")


def test_two_shops_exporting_in_the_same_second_each_get_only_their_own_file(
    shop: ShopClient, shop_b: ShopClient, sandbox: Sandbox, marker: str
) -> None:
    _seed(shop, sandbox, marker)
    with ThreadPoolExecutor(max_workers=4) as pool:
        links = list(
            pool.map(
                lambda client: _export_link(client, f"product={marker}"),
                [shop, shop_b, shop, shop_b],
            )
        )

    assert len(set(links)) == 4  # every export is its own object, even within one second
    assert all("/exports/demo-shop/" in link for link in links[0::2]), links
    assert all("/exports/shop-b/" in link for link in links[1::2])
    for link in links[1::2]:
        with urllib.request.urlopen(link, timeout=30) as answer:
            text = answer.read().decode("utf-8")
        assert marker not in text  # B's file holds none of A's rows
    with urllib.request.urlopen(links[0], timeout=30) as answer:
        assert answer.read().decode("utf-8").count(marker) == 5


def test_find_a_payment_by_its_order_id_or_its_buyer_exactly(
    shop: ShopClient, sandbox: Sandbox, marker: str
) -> None:
    mine = sandbox.approve(
        amount=4000,
        order_id=f"ORD-{marker}",
        buyer_email=f"lee.{marker}@example.com",
        buyer_name=f"이서연{marker}",
    )
    other = sandbox.approve(amount=5000, order_id=f"ORD-{marker}-2", buyer_name=f"이서{marker}")
    assert shop.register(mine).status == 201 and shop.register(other).status == 201

    for query in (
        f"order_id=ORD-{marker}",
        f"buyer={quote(f'lee.{marker}@example.com')}",
        f"buyer={quote(f'이서연{marker}')}",
    ):
        status, page = _history(shop, query)
        assert status == 200
        assert [p["tno"] for p in page["items"]] == [mine["tno"]], query
    _, partial = _history(shop, f"buyer={quote(f'이서{marker}')}")  # exact, not a prefix
    assert [p["tno"] for p in partial["items"]] == [other["tno"]]
    _, none = _history(shop, f"order_id=ORD-{marker}&buyer=nobody@example.com")
    assert none["items"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/payments?prodcut=코트",
        "/v1/payments/export?stauts=PAID",
        "/v1/subscriptions?state=ACTIVE",
        "/v1/payments/20990101000000?expand=all",
    ],
)
def test_a_misspelt_query_parameter_is_refused_naming_it(shop: ShopClient, path: str) -> None:
    answer = http("GET", f"{shop.url}{quote(path, safe='/?=&')}", headers=shop.auth)
    assert (answer.status, answer.code) == (400, "VALIDATION_FAILED"), answer.body
    (error,) = answer.body["errors"]
    name = path.split("?")[1].split("=")[0]
    assert error == {"field": name, "message": "unknown query parameter"}
    assert name in answer.body["detail"]
