"""Judging the sandbox's answers by what the vendors publish: their OpenAPI 3.0 documents.

The documents (slimmed copies in `integration_assets_tests/sandbox/openapi/`, see its README) are OpenAPI 3.0,
whose `nullable` plain JSON Schema does not know: bodies are validated with openapi-schema-validator's
`OAS30Validator` and its format checker, each document a `referencing` resource so that its `$ref`s resolve
inside it. An answer is found its operation by method and path template, its declared response by status
(exact, then the `4XX` range, then `default`), and is checked for content type, body and declared headers.
Every violation names vendor, operation, status and the JSON path it is at.

One reading of `nullable` is the documents' own: OpenAPI 3.0.0 (Stripe's version) lets `nullable: true` admit
null for the schema it sits on, and Stripe's document puts it on `anyOf` wrappers of expandable fields
(`{"anyOf": [{"$ref": "#/components/schemas/address"}], "nullable": true}`) and beside enums that do not list
null (`automatic_tax.status`, null while automatic tax is off). `OAS30Validator` follows 3.0.3, where `nullable`
needs a sibling `type` and an enum must list null itself, and would refuse every null such a field holds;
`NullableValidator` lets those schemas admit null, as the document means (openapi-schema-validator issue 220).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError, best_match
from jsonschema.validators import extend
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = ["DOCUMENTS", "Answer", "Operation", "Verdict", "Violation", "documents_for", "judge"]

DOCUMENTS = Path(__file__).resolve().parents[1] / "sandbox" / "openapi"
METHODS = ("get", "post", "put", "patch", "delete")
# HubSpot publishes deals under their object type id (`0-3`); its API answers the same under `deals`.
PATH_ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "hubspot": (("/crm/v3/objects/deals", "/crm/v3/objects/0-3"),),
}


def _admitting_null(keyword: str):
    checks = OAS30Validator.VALIDATORS[keyword]

    def check(validator, value, instance, schema):
        if instance is None and schema.get("nullable") is True:
            return
        yield from checks(validator, value, instance, schema)

    return check


NullableValidator = extend(OAS30Validator, {k: _admitting_null(k) for k in ("anyOf", "oneOf", "allOf", "enum")})


@dataclass(frozen=True)
class Answer:
    """What the sandbox sent: status, headers (names lower-cased) and the raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def of(cls, response: Any) -> Answer:
        """From a `requests.Response`."""
        return cls(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


@dataclass(frozen=True)
class Violation:
    vendor: str
    operation: str  # "METHOD /template" as the document names it (or the request path when none matches)
    status: int
    at: str  # JSON path in the body, `$` for the answer as a whole
    keyword: str  # the schema keyword that failed, or `operation`, `status`, `content-type`, `body`, `header`
    message: str

    def __str__(self) -> str:
        return f"{self.vendor} {self.operation} {self.status} {self.at} [{self.keyword}]: {self.message}"


@dataclass
class Verdict:
    """One answer judged: the operation and response it was judged by, and what did not conform."""

    vendor: str
    operation: str
    status: int
    violations: list[Violation] = field(default_factory=list)


@dataclass(frozen=True)
class Operation:
    vendor: str
    method: str
    template: str
    document: Document
    pointer: str  # JSON pointer of the operation object inside its document

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def responses(self) -> Mapping[str, Any]:
        return self.document.resolve(self.document.at(self.pointer)).get("responses") or {}


@dataclass(frozen=True, eq=False)
class Document:
    """One vendor document, registered as a resource so `#/components/...` resolves within it."""

    name: str
    contents: Mapping[str, Any]

    @property
    def uri(self) -> str:
        return f"urn:openapi:{self.name}"

    @cached_property
    def registry(self) -> Registry:
        return Registry().with_resource(self.uri, Resource.from_contents(self.contents, default_specification=DRAFT4))

    def at(self, pointer: str) -> Any:
        return self.registry.resolver(self.uri).lookup(f"#{pointer}").contents

    def resolve(self, node: Any) -> Any:
        """A response or operation object that is itself a `$ref` (e.g. `#/components/responses/Error`)."""
        while isinstance(node, Mapping) and "$ref" in node:
            node = self.registry.resolver(self.uri).lookup(node["$ref"]).contents
        return node

    def validator(self, pointer: str) -> OAS30Validator:
        return NullableValidator(
            {"$ref": f"{self.uri}#{pointer}"}, registry=self.registry, format_checker=oas30_format_checker
        )


@dataclass(frozen=True)
class VendorDocuments:
    vendor: str
    operations: tuple[Operation, ...]

    def find(self, method: str, path: str) -> Operation | None:
        """The operation whose template matches; of several, the one with the fewest path parameters."""
        for published, served in ((p, s) for p, s in PATH_ALIASES.get(self.vendor, ())):
            if path == published or path.startswith(published + "/"):
                path = served + path[len(published) :]
        found = [op for op in self.operations if op.method == method and _template_regex(op.template).match(path)]
        return min(found, key=lambda op: op.template.count("{"), default=None)


@cache
def documents_for(vendor: str, folder: Path = DOCUMENTS) -> VendorDocuments:
    """Every operation of the vendor's documents (`<vendor>.json` and `<vendor>-*.json`)."""
    operations: list[Operation] = []
    files = sorted([*folder.glob(f"{vendor}.json"), *folder.glob(f"{vendor}-*.json")])
    if not files:
        raise FileNotFoundError(f"{folder}: no OpenAPI document for {vendor!r} ({vendor}.json or {vendor}-*.json)")
    for path in files:
        document = Document(path.name, json.loads(path.read_text(encoding="utf-8")))
        for template, item in (document.contents.get("paths") or {}).items():
            for method in METHODS:
                if method in item:
                    pointer = f"/paths/{_escape(template)}/{method}"
                    operations.append(Operation(vendor, method.upper(), template, document, pointer))
    return VendorDocuments(vendor, tuple(operations))


def judge(vendor: str, method: str, path: str, answer: Answer, folder: Path = DOCUMENTS) -> Verdict:
    """Checks one answer against the vendor's published document."""
    operation = documents_for(vendor, folder).find(method, path)
    if operation is None:
        verdict = Verdict(vendor, f"{method} {path}", answer.status)
        verdict.violations.append(
            Violation(vendor, verdict.operation, answer.status, "$", "operation", "no operation in the document")
        )
        return verdict
    verdict = Verdict(vendor, operation.name, answer.status)

    def fail(at: str, keyword: str, message: str) -> None:
        verdict.violations.append(Violation(vendor, operation.name, answer.status, at, keyword, message))

    key = _response_key(operation.responses, answer.status)
    if key is None:
        declared = ", ".join(operation.responses) or "none"
        fail("$", "status", f"status {answer.status} is not declared (declared: {declared})")
        return verdict
    document = operation.document
    response_pointer = f"{operation.pointer}/responses/{_escape(key)}"
    response = document.resolve(operation.responses[key])
    if isinstance(operation.responses[key], Mapping) and "$ref" in operation.responses[key]:
        response_pointer = operation.responses[key]["$ref"].removeprefix("#")
    for name in response.get("headers") or {}:
        if name.lower() not in answer.headers:
            fail("$", "header", f"declared header {name} is missing")
    content = response.get("content") or {}
    if not content:
        if answer.body:
            fail("$", "body", f"the document declares no body, the answer has {len(answer.body)} bytes")
        return verdict
    media_type = (answer.headers.get("content-type") or "").split(";")[0].strip().lower()
    declared_type = _media_key(content, media_type)
    if declared_type is None:
        fail("$", "content-type", f"{media_type or 'no content type'} is not one of {', '.join(content)}")
        return verdict
    schema = (content[declared_type] or {}).get("schema")
    if schema is None:
        return verdict
    try:
        body = json.loads(answer.body)
    except ValueError as error:
        fail("$", "body", f"not JSON: {error}")
        return verdict
    validator = document.validator(f"{response_pointer}/content/{_escape(declared_type)}/schema")
    for error in validator.iter_errors(body):
        at, message = _locate(error)
        fail(at, str(error.validator), message)
    return verdict


def _locate(error: ValidationError) -> tuple[str, str]:
    """A violation's JSON path and message: a missing property is named in the path, and of an `anyOf`
    or `oneOf` the closest alternative's complaint is given."""
    if error.validator == "required":
        found = re.fullmatch(r"'(.+)' is a required property", error.message)
        if found:
            return f"{error.json_path}.{found.group(1)}", "required property is missing"
    message = error.message
    if error.validator in ("anyOf", "oneOf") and error.context:
        alternatives: dict[Any, list[ValidationError]] = {}
        for complaint in error.context:
            alternatives.setdefault(complaint.relative_schema_path[0], []).append(complaint)
        closest = best_match(min(alternatives.values(), key=len))  # the alternative with the fewest complaints
        message = f"no alternative fits; closest: {closest.json_path} {closest.message}"
    return error.json_path, message[:300]


def _response_key(responses: Mapping[str, Any], status: int) -> str | None:
    for key in (str(status), f"{status // 100}XX", "default"):
        if key in responses:
            return key
    return None


def _media_key(content: Mapping[str, Any], media_type: str) -> str | None:
    """The declared media type an answer's type falls under (exact, `type/*`, then `*/*`)."""
    major = media_type.split("/")[0]
    for key in (media_type, f"{major}/*", "*/*"):
        if key in content:
            return key
    return None


@cache
def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


def _escape(token: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")
