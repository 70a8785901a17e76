"""``services.gateway.signatures`` is what a receiver imports: the standard library only."""

from __future__ import annotations

import json
import subprocess
import sys

from services.gateway import signatures, webhooks
from tests.conftest import ROOT

#: Top-level packages the receiver's module must not pull in.
HEAVY = ("flask", "sqlalchemy", "alembic", "cryptography", "requests", "redis", "zeep",
         "marshmallow", "werkzeug", "shared")


def test_checking_a_webhook_imports_nothing_but_the_standard_library() -> None:
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "from services.gateway.signatures import signature_header, verify\n"
        "verify('s', signature_header('s', b'{}'), b'{}')\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    loaded = json.loads(out)
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert heavy == [], heavy
    outside = [m for m in loaded if m.split(".")[0] not in {"services", *sys.stdlib_module_names}]
    assert outside == [], outside


def test_the_sender_signs_with_the_same_functions() -> None:
    assert webhooks.verify is signatures.verify
    assert webhooks.signature_header is signatures.signature_header
