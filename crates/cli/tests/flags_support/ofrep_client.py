"""Evaluates flags of every type against a running slipway with the official OpenFeature OFREP provider.

Usage: ofrep_client.py BASE_URL KEY. Prints one JSON object: flag -> {value, variant, reason, error}.
"""

import json
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

base_url, key = sys.argv[1], sys.argv[2]
api.set_provider(OFREPProvider(base_url, headers_factory=lambda: {"X-API-Key": key}))
client = api.get_client()

staff = EvaluationContext(targeting_key="user-1", attributes={"email": "ana@example.com"})
anyone = EvaluationContext(targeting_key="user-2", attributes={"email": "bo@elsewhere.org"})

checks = {
    "bool-staff": client.get_boolean_details("new-checkout", False, staff),
    "bool-anyone": client.get_boolean_details("new-checkout", True, anyone),
    "string": client.get_string_details("color", "none", anyone),
    "integer": client.get_integer_details("limit", -1, anyone),
    "float": client.get_float_details("ratio", -1.0, anyone),
    "object": client.get_object_details("config", {}, anyone),
    "missing": client.get_boolean_details("no-such-flag", True, anyone),
}


def describe(details):
    code = details.error_code
    return {
        "value": details.value,
        "variant": details.variant,
        "reason": str(details.reason.value if hasattr(details.reason, "value") else details.reason),
        "error": None if code is None else str(code.value if hasattr(code, "value") else code),
    }


print(json.dumps({name: describe(d) for name, d in checks.items()}))
