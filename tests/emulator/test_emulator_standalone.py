"""The emulator stands apart from the product (a package of its own, `powens_emulator`; that it
imports nothing of `pfo_pipeline` is tests/test_package_boundaries.py): it declares what it
imports, stays in small modules, and signs webhooks with its own implementation of Powens'
scheme — which the product's verifier must accept."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from datetime import UTC, datetime
from importlib.metadata import packages_distributions
from pathlib import Path

import powens_emulator
from pfo_pipeline.webhooks.signature import verify
from powens_emulator.signing import (
    DATE_HEADER,
    SIGNATURE_HEADER,
    bi_signature,
    rfc3339_utc,
    signed_headers,
)

PACKAGE = Path(powens_emulator.__file__).parent
ROOT = PACKAGE.parent
MAX_MODULE_LINES = 300


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in the file, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = ["powens_emulator"][: 2 - node.level]
                module = ".".join([*base, module] if module else base)
            found.append((module, [alias.name for alias in node.names]))
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def test_no_module_uses_another_modules_private_names() -> None:
    private = [
        f"{path.name}: {module}.{name}"
        for path in modules()
        for module, names in imports(path)
        if module.startswith("powens_emulator")
        for name in names
        if name.startswith("_")
    ]
    assert not private, private


def test_modules_stay_small() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in modules()}
    assert all(lines <= MAX_MODULE_LINES for lines in sizes.values()), sizes


def test_every_third_party_import_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower().replace("_", "-")
        for spec in project["dependencies"]
    }
    distributions = packages_distributions()
    missing = set()
    for path in modules():
        for module, _ in imports(path):
            top = module.split(".")[0]
            if not top or top == "powens_emulator" or top in sys.stdlib_module_names:
                continue
            names = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
            if not names & declared:
                missing.add(f"{path.name}: {top}")
    assert not missing, missing


def test_the_products_verifier_accepts_the_emulators_signature() -> None:
    """Two implementations of §8.3, written apart: a bug in either shows up here."""
    url = "http://127.0.0.1:8787/webhooks/powens/conn-powens-primary/CONNECTION_SYNCED"
    path = "/webhooks/powens/conn-powens-primary/CONNECTION_SYNCED"
    body = '{"user":{"id":1},"connection":{"id":11,"accounts":[{"name":"Compte Chèque"}]}}'.encode()
    secret = "whsec-test-0123456789"
    moment = datetime(2026, 11, 24, 7, 0, 0, tzinfo=UTC)
    headers = signed_headers(secret, url, body, moment=moment)
    assert headers[DATE_HEADER] == "2026-11-24T07:00:00Z"

    def check(body: bytes, *, path: str = path, secret: str = secret, method: str = "POST"):
        return verify(
            secret, method, path, headers[DATE_HEADER], body, headers[SIGNATURE_HEADER], now=moment
        )

    assert check(body).ok
    assert not check(body.replace(b"11", b"12")).ok  # a tampered body
    assert not check(body + b" ").ok  # the raw body, not its parsed content
    assert not check(body, path="/webhooks/powens/other/CONNECTION_SYNCED").ok
    assert not check(body, secret="another-secret").ok
    assert not check(body, method="PUT").ok


def test_the_signature_follows_the_documented_formula() -> None:
    """base64(HMAC-SHA256(secret, METHOD.PATH.DATE.BODY)): a value computed by hand once."""
    assert (
        bi_signature("secret", "post", "/hook", "2026-01-02T10:05:11Z", b'{"a":1}')
        == "LhZFSf4U88G+hXMXCSJUPmguxM7NYqjoJz0Ng4Rllzk="
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rfc3339_utc())
    assert SIGNATURE_HEADER not in signed_headers(None, "http://h/hook", b"{}")
