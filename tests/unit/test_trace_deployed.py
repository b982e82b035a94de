"""`make trace STACK=…` finds a deployed stack's operator API and log groups from CloudFormation."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from local.trace import deployed_env

TEMPLATE = {
    "Resources": {
        "SettleFunctionLogs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": "/aws/lambda/prod-settle"},
        },
        "NotifyFunctionLogs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": "/aws/lambda/prod-notify"},
        },
        "Topic": {"Type": "AWS::SNS::Topic"},
    },
    "Outputs": {
        "OperatorApiUrl": {"Value": "https://abc123.execute-api.ap-northeast-2.amazonaws.com/prod"}
    },
}


@mock_aws
def test_a_deployed_stacks_operator_api_and_only_its_own_log_groups_are_read() -> None:
    region = "ap-northeast-2"
    cloudformation = boto3.client("cloudformation", region_name=region)
    cloudformation.create_stack(StackName="prod", TemplateBody=json.dumps(TEMPLATE))
    boto3.client("logs", region_name=region).create_log_group(logGroupName="/aws/lambda/other")

    env = deployed_env("prod", region, "hanok-tea")

    assert env["OPERATOR_API_URL"].endswith(".execute-api.ap-northeast-2.amazonaws.com/prod")
    assert env["LOG_GROUPS"].split(",") == ["/aws/lambda/prod-notify", "/aws/lambda/prod-settle"]
    assert (env["STACK_NAME"], env["AWS_REGION"], env["SHOP_IDS"]) == ("prod", region, "hanok-tea")
    assert "AWS_ENDPOINT_URL" not in env  # AWS itself, with the caller's credentials
