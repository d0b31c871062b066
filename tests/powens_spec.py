"""Powens' official OpenAPI description (S3), read from `../shared/reference/powens-openapi/`
beside the repository (or `PFO_POWENS_OPENAPI_DIR`), as JSON Schema validators of its responses.

The files are reference material we may not copy into the project (their README), so they are
read where they are; a test that needs them skips, saying why, when they are absent. Their README
names the quirks handled here:
- the header says OpenAPI 3.0.1, yet schemas mix 3.0 `nullable: true` with 3.1 forms
  (`type: null` branches, type lists): both are read as JSON Schema 2020-12 (`nullable` becomes a
  `null` type), and a `oneOf` with a `null` branch as `anyOf` (a nullable first branch would
  otherwise match null twice);
- `format: sql-date-time` is Powens' naive `YYYY-MM-DD HH:MM:SS`: its `pattern` checks it;
- the connection `error` enum omits null, though S1's own examples send `"error": null`: null is
  accepted there, as for `state`;
- lists document `offset`/`limit` and no `_links`: extra keys are allowed (no schema closes them).
Formats are asserted: dates, UUIDs, ISO 4217 codes and IBANs (length per country, mod-97 check).
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO = Path(__file__).resolve().parents[1]
SPEC_ENV = "PFO_POWENS_OPENAPI_DIR"
FILES = (
    "core.yml", "authentication.yml", "users.yml", "connectors.yml", "connections.yml",
    "bank-accounts.yml", "bank-account-types.yml", "bank-transactions.yml",
)  # fmt: skip
IBAN_LENGTHS = {"FR": 27, "NL": 18, "SE": 24, "DE": 22, "GB": 22, "ES": 24, "IT": 27, "BE": 16}


def spec_dir() -> Path:
    return Path(os.environ.get(SPEC_ENV) or REPO.parent / "shared/reference/powens-openapi")


def require_spec() -> Path:
    """The spec's folder, or skip the calling test saying where it was looked for."""
    folder = spec_dir()
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        pytest.skip(
            f"Powens' OpenAPI files are not at {folder} (missing {', '.join(missing)}): set "
            f"{SPEC_ENV} to the folder holding powenscompany/powens-sdks lib/specs/*.yml"
        )
    return folder


def _normalised(node: Any) -> Any:
    """OpenAPI 3.0/3.1 schema forms as JSON Schema 2020-12 (see the module docstring)."""
    if isinstance(node, list):
        return [_normalised(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _normalised(value) for key, value in node.items()}
    if "type" in node and node["type"] is None:
        node["type"] = "null"
    if isinstance(node.get("type"), list):
        node["type"] = ["null" if t is None else t for t in node["type"]]
    if node.pop("nullable", False):
        if "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            node["type"] = [*types, "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    branches = node.get("oneOf")
    if isinstance(branches, list) and {"type": "null"} in branches:
        node["anyOf"] = node.pop("oneOf")
    return node


@cache
def _registry(folder: str) -> Registry:
    resources = []
    for name in FILES:
        document = _normalised(yaml.safe_load((Path(folder) / name).read_text()))
        if name == "connections.yml":  # the `error` quirk: null as in S1's examples
            props = document["components"]["schemas"]["Connection"]["properties"]
            props["error"] = {"anyOf": [props["error"], {"type": "null"}]}
        uri = (Path(folder) / name).as_uri()
        resources.append((uri, Resource.from_contents(document, DRAFT202012)))
    return Registry().with_resources(resources)


def _is_iban(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats judge strings only; the type is the schema's concern
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", value):
        return False
    if IBAN_LENGTHS.get(value[:2], len(value)) != len(value):
        return False
    rotated = value[4:] + value[:4]
    return int("".join(str(int(c, 36)) for c in rotated)) % 97 == 1


FORMATS = jsonschema.FormatChecker(["date", "uuid"])
FORMATS.checks("iban")(_is_iban)
FORMATS.checks("iso-4217")(lambda v: not isinstance(v, str) or bool(re.fullmatch("[A-Z]{3}", v)))


@cache
def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@cache
def validator(file: str, pointer: str) -> jsonschema.Draft202012Validator:
    """A validator of the schema at `file#pointer` (e.g. `/components/schemas/TransactionsList`)."""
    folder = require_spec()
    uri = (folder / file).as_uri()
    return jsonschema.Draft202012Validator(
        {"$ref": f"{uri}#{pointer}"}, registry=_registry(str(folder)), format_checker=FORMATS
    )


@cache
def response_schema(path: str, method: str, status: int) -> tuple[str, str]:
    """(file, pointer) of what S3 says `method path` answers with `status`; errors it does not
    document (401, 403, 404, 429, a 400 on a bad parameter) take its common `ServiceError`."""
    folder = require_spec()
    index = _yaml(folder / "powens-api.yml")["paths"]
    file, _, pointer = index[path]["$ref"].partition("#")
    item = _yaml(folder / file.removeprefix("./"))
    for part in pointer.strip("/").split("/"):
        item = item[part.replace("~1", "/").replace("~0", "~")]
    response = item[method.lower()]["responses"].get(str(status))
    if response is None:
        return "core.yml", "/components/schemas/ServiceError"
    if "$ref" in response:  # a shared response, e.g. core.yml's NoAccountError
        ref_file, _, ref_pointer = response["$ref"].partition("#")
        response = _yaml(folder / ref_file)
        for part in ref_pointer.strip("/").split("/"):
            response = response[part]
        file = ref_file
    ref = response["content"]["application/json"]["schema"]["$ref"]
    ref_file, _, ref_pointer = ref.partition("#")
    return (ref_file or file.removeprefix("./")), ref_pointer


def violations(body: Any, path: str, method: str, status: int) -> list[str]:
    """Where `body` breaks the schema S3 gives that answer (empty: it follows it)."""
    check = validator(*response_schema(path, method, status))
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<body>'}: {error.message[:160]}"
        for error in check.iter_errors(body)
    ]
