"""KCP's notification API admits only KCP's published senders: declared in the template (API
Gateway enforces it in AWS) and honoured the same way by the local gateway."""

from __future__ import annotations

from local.api_gateway import LocalApi
from local.template import Template

TEMPLATE = Template()


def test_the_resource_policy_allows_only_the_kcp_sender_parameter() -> None:
    api = TEMPLATE.resources["KcpNotifyApi"]["Properties"]
    (statement,) = api["Auth"]["ResourcePolicy"]["CustomStatements"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    assert statement["Condition"] == {
        "IpAddress": {"aws:SourceIp": {"Fn::Split": [",", {"Ref": "KcpNotifySourceIps"}]}}
    }
    default = TEMPLATE.doc["Parameters"]["KcpNotifySourceIps"]["Default"].split(",")
    assert {"210.122.73.58/32", "203.238.36.173/32", "203.238.36.178/32"} <= set(default)


def test_the_local_gateway_admits_kcps_senders_and_refuses_everyone_else() -> None:
    api = LocalApi(TEMPLATE, lambdas=None, api_id="KcpNotifyApi")  # type: ignore[arg-type]

    assert api.admits("203.238.36.178") and api.admits("210.122.73.58")
    assert not api.admits("127.0.0.1") and not api.admits("203.238.36.179")
    status, _, _ = api.handle("POST", "/kcp/notifications", {}, b"", source_ip="8.8.8.8")
    assert status == 403


def test_the_shop_api_has_no_address_policy() -> None:
    assert LocalApi(TEMPLATE, lambdas=None).admits("8.8.8.8")  # type: ignore[arg-type]
