"""Reference answers from flagd's own evaluator, for the differential test (tests/differential.rs).

Usage: flagd_reference.py TESTKIT_FLAGS_JSON SEED CONTEXTS

Builds a flag set (the testbed's flags plus randomly generated fractional, sem_ver and string-operator
flags), evaluates every flag for CONTEXTS random contexts with openfeature-flagd-core's FlagdCore, and
prints JSON lines: first {"definition": ...}, then one {"flag", "context", "variant", "reason", "error"}
per evaluation. Deterministic for a given SEED.
"""

import json
import logging
import random
import sys

from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import OpenFeatureError

NAMES = ["jack", "queen", "ten", "nine", "3", "seven", "two", "ann", "bob", "", "Zoë", "李"]
EMAILS = ["ballmer@macrosoft.com", "jobs@orange.com", "wozniak@orange.com", "user@example.com", ""]
VERSIONS = ["1.0.0", "2.0.0", "2.1.0", "1.9.0", "2.0.0-alpha", "2.0.0-rc.1", "2.0.0.0", "3.0.1", "3.1.0",
            "v1.0.0", "V2.3.4", "1", "1.2", "1.0.0+build", "01.0.0", "not-a-version", "", "10.20.30",
            "1.0.0-alpha.beta", "1.0.0-0.3.7", "1-rc.1"]
SEMVER_OPS = ["=", "!=", "<", "<=", ">", ">=", "^", "~", "===", "=="]
IDS = ["abcdef", "uvwxyz", "abcxyz", "lmnopq", "abc", "xyz", "", "ABCxyz", "xabc", "abcx yz"]


def random_string(rng, length):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_@.") for _ in range(length))


def fractional_flag(rng, index):
    variants = {f"v{i}": f"value-{i}" for i in range(rng.randint(1, 5))}
    names = list(variants)
    buckets = []
    for _ in range(rng.randint(1, 6)):
        name = rng.choice(names) if rng.random() < 0.95 else "not-a-variant"
        roll = rng.random()
        if roll < 0.1:
            buckets.append([name])
        elif roll < 0.15:
            buckets.append([name, -rng.randint(1, 50)])
        else:
            buckets.append([name, rng.randint(0, 100)])
    key_rule = rng.choice([
        None,  # shorthand: flag key + targeting key
        {"var": "targetingKey"},
        {"cat": [{"var": "$flagd.flagKey"}, {"var": "user.name"}]},
        {"var": "email"},
        {"cat": ["seed-", {"var": "targetingKey"}]},
    ])
    args = buckets if key_rule is None else [key_rule] + buckets
    return {
        "state": "ENABLED",
        "variants": variants,
        "defaultVariant": rng.choice(names + [None]),
        "targeting": {"fractional": args},
    }


def sem_ver_flag(rng):
    check = {"sem_ver": [{"var": "version"}, rng.choice(SEMVER_OPS), rng.choice(VERSIONS)]}
    if rng.random() < 0.3:
        # The bare operator: true/false select the variants named "true"/"false"; null the default.
        return {"state": "ENABLED", "variants": {"true": "yes", "false": "no", "other": "other"},
                "defaultVariant": "other", "targeting": check}
    return {"state": "ENABLED", "variants": {"match": "match", "no-match": "no-match"},
            "defaultVariant": rng.choice(["match", "no-match", None]),
            "targeting": {"if": [check, "match", rng.choice(["no-match", None])]}}


def string_flag(rng):
    prefix = rng.choice(["abc", "xyz", "", "ab", "lm"])
    suffix = rng.choice(["xyz", "abc", "", "yz", "q"])
    rule = {"if": [
        {"starts_with": [{"var": "id"}, prefix]}, "prefix",
        {"ends_with": [{"var": "id"}, suffix]}, "postfix",
        {"in": [{"var": "email"}, ["jobs@orange.com", "wozniak@orange.com"]]}, "apple",
        {"and": [{"==": [{"var": "tier"}, "premium"]}, {">": [{"var": "num"}, rng.randint(0, 200)]}]}, "vip",
    ]}
    if rng.random() < 0.5:
        rule["if"].append(rng.choice(["none", None]))
    return {"state": rng.choice(["ENABLED", "ENABLED", "ENABLED", "DISABLED"]),
            "variants": {"prefix": "prefix", "postfix": "postfix", "apple": "apple", "vip": "vip", "none": "none"},
            "defaultVariant": rng.choice(["none", None]), "targeting": rule}


def random_context(rng):
    context = {}
    roll = rng.random()
    if roll < 0.8:
        context["targetingKey"] = random_string(rng, rng.randint(1, 24))
    elif roll < 0.85:
        context["targetingKey"] = ""
    if rng.random() < 0.7:
        context["email"] = rng.choice(EMAILS) if rng.random() < 0.7 else random_string(rng, 12)
    if rng.random() < 0.7:
        context["user"] = {"name": rng.choice(NAMES) if rng.random() < 0.5 else random_string(rng, 8)}
    if rng.random() < 0.7:
        context["version"] = rng.choice(VERSIONS + [1, 2, 1.2, 2.0, 3])
    if rng.random() < 0.7:
        context["id"] = rng.choice(IDS) if rng.random() < 0.7 else random_string(rng, 6)
    if rng.random() < 0.5:
        context["num"] = rng.randint(-10, 300)
    if rng.random() < 0.5:
        context["tier"] = rng.choice(["premium", "basic"])
    if rng.random() < 0.5:
        context["color"] = rng.choice(["red", "green", "blue", "yellow", ""])
    return context


RESOLVERS = {
    bool: "resolve_boolean_value",
    str: "resolve_string_value",
    int: "resolve_float_value",
    float: "resolve_float_value",
    dict: "resolve_object_value",
}
FALLBACKS = {bool: False, str: "", int: 0.0, float: 0.0, dict: {}}


def main():
    # The reference operators log every malformed input; the answers are all this script is for.
    logging.disable(logging.CRITICAL)
    testkit_path, seed, contexts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    with open(testkit_path) as f:
        definition = json.load(f)
    for i in range(12):
        definition["flags"][f"random-fractional-{i}"] = fractional_flag(rng, i)
    for i in range(8):
        definition["flags"][f"random-sem-ver-{i}"] = sem_ver_flag(rng)
    for i in range(6):
        definition["flags"][f"random-string-{i}"] = string_flag(rng)

    core = FlagdCore()
    core.set_flags(json.dumps(definition))
    out = sys.stdout
    out.write(json.dumps({"definition": definition}) + "\n")

    keys = sorted(definition["flags"])
    for _ in range(contexts):
        context = random_context(rng)
        attributes = {k: v for k, v in context.items() if k != "targetingKey"}
        ctx = EvaluationContext(targeting_key=context.get("targetingKey"), attributes=attributes)
        for key in keys:
            variants = definition["flags"][key].get("variants") or {"true": True}
            kind = type(next(iter(variants.values())))
            try:
                details = getattr(core, RESOLVERS[kind])(key, FALLBACKS[kind], ctx)
                line = {"variant": details.variant, "reason": str(details.reason.value), "error": None}
            except OpenFeatureError as e:
                line = {"variant": None, "reason": "ERROR", "error": e.error_code.value}
            line.update(flag=key, context=context)
            out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
