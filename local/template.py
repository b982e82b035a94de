"""Read template.yaml as CloudFormation would, for the local stack: the one list of resources.

Resolves the intrinsics the template uses (Ref, GetAtt, Sub, If, Equals, Not, Join, Select,
Split) against local physical names, so tables, functions, environments and state machines are
built from the same file that deploys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
REGION = "ap-northeast-2"
ACCOUNT = "123456789012"  # moto's default account
NO_VALUE = object()


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # YAML has no other kind of node
        raise TypeError(f"a YAML node of no known kind: {node!r}")
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass
class Function:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int = 30  # seconds (Lambda's default is 3; the template's Globals say 30)


class Template:
    def __init__(
        self,
        path: Path = ROOT / "template.yaml",
        stack_name: str = "cancelflow",
        parameters: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.doc = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 (our loader)
        self.stack_name = stack_name
        self.resources: dict[str, dict[str, Any]] = self.doc["Resources"]
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in self.doc["Parameters"].items()
        }
        for name, value in (parameters or {}).items():
            if name not in self.parameters:
                raise KeyError(f"template has no parameter {name}")
            self.parameters[name] = str(value)

    # --- names ---------------------------------------------------------------------------

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    def physical_name(self, logical_id: str) -> str:
        props = self.resources[logical_id].get("Properties", {})
        for key in (
            "Name",
            "TableName",
            "FunctionName",
            "LogGroupName",
            "BucketName",
            "EmailIdentity",
        ):
            if key in props:
                return str(self.resolve(props[key]))
        if self.resources[logical_id]["Type"] == "AWS::S3::Bucket":
            return f"{self.stack_name}-{logical_id}".lower()  # bucket names are lowercase
        return f"{self.stack_name}-{logical_id}"

    def arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        if kind == "AWS::Serverless::Function":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        if kind == "AWS::Serverless::StateMachine":
            return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{name}"
        if kind == "AWS::Serverless::LayerVersion":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}:1"
        return f"arn:aws:local:{REGION}:{ACCOUNT}:{name}"

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name.endswith(".Stage"):  # SAM: an Api's stage, by its name
            return self.resolve(
                self.resources[name.removesuffix(".Stage")]["Properties"]["StageName"]
            )
        if name in self.parameters:
            spec = self.doc["Parameters"][name]
            value = self.parameters[name]
            if spec.get("Type") == "CommaDelimitedList":
                return [v for v in value.split(",")] if value else [""]
            return value
        kind = self.resources[name]["Type"]
        if kind in ("AWS::Serverless::StateMachine", "AWS::Serverless::LayerVersion"):
            return self.arn(name)
        return self.physical_name(name)

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "Name":
            return self.physical_name(logical_id)
        raise KeyError(f"GetAtt {logical_id}.{attribute} is not known locally")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.doc["Conditions"][name]))

    # --- intrinsics ----------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                return self._get_att(*arg)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return left == right
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.resolve(parts))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(index)]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key == "Condition":
                return self.condition(arg)
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        variables = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self._get_att(*name.split(".", 1)))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    # --- what the local stack builds -----------------------------------------------------

    def functions(self) -> dict[str, Function]:
        globals_ = self.doc.get("Globals", {}).get("Function", {})
        base_env = globals_.get("Environment", {}).get("Variables", {})
        found = {}
        for logical_id, spec in self.of_type("AWS::Serverless::Function").items():
            props = spec["Properties"]
            env = dict(base_env) | props.get("Environment", {}).get("Variables", {})
            found[logical_id] = Function(
                logical_id=logical_id,
                name=self.physical_name(logical_id),
                arn=self.arn(logical_id),
                code_dir=ROOT / props["CodeUri"],
                handler=props.get("Handler", globals_.get("Handler", "app.handler")),
                environment={k: str(v) for k, v in self.resolve(env).items()},
                timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
            )
        return found

    def table_definitions(self) -> list[dict[str, Any]]:
        """create_table arguments from each table's Properties (and its TTL setting)."""
        tables = []
        for logical_id, spec in self.of_type("AWS::DynamoDB::Table").items():
            props = self.resolve(spec["Properties"])
            args = {
                k: props[k]
                for k in (
                    "AttributeDefinitions",
                    "KeySchema",
                    "GlobalSecondaryIndexes",
                    "BillingMode",
                )
                if k in props
            }
            if "SSESpecification" in props:  # CloudFormation's name differs from the API's
                args["SSESpecification"] = {"Enabled": props["SSESpecification"]["SSEEnabled"]}
            args["TableName"] = self.physical_name(logical_id)
            tables.append({"create": args, "ttl": props.get("TimeToLiveSpecification")})
        return tables

    def state_machines(self) -> list[dict[str, Any]]:
        machines = []
        for logical_id, spec in self.of_type("AWS::Serverless::StateMachine").items():
            props = spec["Properties"]
            text = (ROOT / props["DefinitionUri"]).read_text()
            subs = self.resolve(props.get("DefinitionSubstitutions", {}))
            for name, value in subs.items():
                text = text.replace("${" + name + "}", str(value))
            machines.append(
                {
                    "logical_id": logical_id,
                    "name": self.physical_name(logical_id),
                    "arn": self.arn(logical_id),
                    "definition": text,
                    "type": props.get("Type", "STANDARD"),
                }
            )
        return machines

    def api_routes(self) -> list[dict[str, str]]:
        """(method, path template, function) for every Api event, as API Gateway routes them."""
        routes = []
        for logical_id, spec in self.of_type("AWS::Serverless::Function").items():
            for event in spec["Properties"].get("Events", {}).values():
                if event["Type"] == "Api":
                    props = event["Properties"]
                    routes.append(
                        {
                            "method": props["Method"].upper(),
                            "path": props["Path"],
                            "function": logical_id,
                            "api": props["RestApiId"]["Ref"],
                        }
                    )
        return routes

    def api(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resolve(self.resources[logical_id]["Properties"])
        return properties

    def usage_plans(self, api_id: str) -> list[tuple[float, int]]:
        """(rate, burst) of each usage plan on the API's stage, as the template sets them."""
        plans = []
        for spec in self.of_type("AWS::ApiGateway::UsagePlan").values():
            stages = spec["Properties"].get("ApiStages", [])
            if any(stage.get("ApiId") == {"Ref": api_id} for stage in stages):
                throttle = self.resolve(spec["Properties"].get("Throttle", {}))
                plans.append((float(throttle["RateLimit"]), int(throttle["BurstLimit"])))
        return plans

    def buckets(self) -> list[str]:
        return [self.physical_name(k) for k in self.of_type("AWS::S3::Bucket")]

    def generated_secrets(self) -> list[tuple[str, int]]:
        """(name, length) of each secret whose value the template generates."""
        found = []
        for logical_id, spec in self.of_type("AWS::SecretsManager::Secret").items():
            generate = spec["Properties"].get("GenerateSecretString")
            if generate:
                found.append((self.physical_name(logical_id), int(generate["PasswordLength"])))
        return found

    def email_identities(self) -> list[str]:
        return [
            self.resolve(spec["Properties"]["EmailIdentity"])
            for spec in self.of_type("AWS::SES::EmailIdentity").values()
        ]
