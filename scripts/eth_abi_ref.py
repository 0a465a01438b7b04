#!/usr/bin/env python3
"""The decoded-event tests' reference: eth-abi encodes event logs, fastavro reads back what
the service's decoder wrote, and the two are compared value by value.

  eth_abi_ref.py cases OUT.json
      writes the cases: per case an ABI event item, its topics after the selector (hex),
      its data (hex), and the values eth-abi encoded, keyed by the Avro field names
  eth_abi_ref.py read SCHEMA.json VALUES
      VALUES: one hex-encoded single-object value per line; checks C3 01 and the schema's
      fingerprint, and prints each record as one JSON object (bytes as 0x hex, decimals as
      decimal strings)
  eth_abi_ref.py check CASES.json DECODED.json
      DECODED.json: per case {"schema": <Avro JSON>, "value": <hex single-object value>,
      "log": {<the log fields the decoder was given>}}; checks C3 01 and the fingerprint,
      decodes with fastavro and compares every field; prints "ok <n>" or exits 1
"""
import hashlib
import io
import json
import sys

from eth_abi import encode
from fastavro import schemaless_reader
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

A1 = "0x" + "ab" * 20
A2 = "0x00000000000000000000000000000000000000ff"
A3 = "0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF"


def p(name, ty, indexed=False, components=None, internal=None):
    out = {"name": name, "type": ty, "indexed": indexed}
    if components is not None:
        out["components"] = components
    if internal is not None:
        out["internalType"] = internal
    return out


def c(name, ty, components=None, internal=None):
    out = p(name, ty, components=components, internal=internal)
    del out["indexed"]
    return out


INNER = [c("flag", "bool"), c("note", "string")]
ORDER = [
    c("maker", "address"),
    c("amounts", "uint256[]"),
    c("inner", "tuple", INNER, "struct Book.Inner"),
    c("", "int256"),
]

# (event name, params, values)
CASES = [
    (
        "Transfer",
        [p("from", "address", True), p("to", "address", True), p("value", "uint256")],
        [A1, A2, 2**256 - 1],
    ),
    (
        "Transfer",
        [p("from", "address", True), p("to", "address", True), p("value", "uint256")],
        [A3, A1, 0],
    ),
    (
        "Ints",
        [
            p("a", "int256"),
            p("b", "int8"),
            p("c", "int64", True),
            p("d", "uint56"),
            p("e", "uint64"),
            p("f", "int256", True),
            p("g", "int72"),
            p("h", "uint8", True),
            p("i", "int256"),
        ],
        [-1, -128, -(2**63), 2**56 - 1, 2**64 - 1, -(2**255), 2**71 - 1, 255, 2**255 - 1],
    ),
    (
        "Blobs",
        [
            p("a", "bytes"),
            p("b", "string"),
            p("c", "bytes32"),
            p("d", "bytes1", True),
            p("e", "string", True),
            p("f", "bytes", True),
            p("g", "string"),
            p("h", "bytes"),
            p("i", "bool", True),
            p("j", "bool"),
        ],
        [b"", "", b"\x01" * 32, b"\xff", "hello", b"\x00\x01", "h\u00e9llo \u2603", bytes(range(70)), True, False],
    ),
    (
        "Arrays",
        [
            p("a", "uint256[]"),
            p("b", "int16[3]"),
            p("c", "string[]"),
            p("d", "address[2][]"),
            p("e", "uint8[]", True),
            p("f", "bytes[]"),
            p("g", "uint256[]"),
        ],
        [[1, 2**256 - 1], [-1, 0, 32767], ["", "x"], [[A1, A2], [A2, A1]], [1, 2], [b"", b"\x01\x02"], []],
    ),
    (
        "Nested",
        [
            p("order", "tuple", False, ORDER, "struct Book.Order"),
            p("orders", "tuple[]", False, ORDER, "struct Book.Order[]"),
            p("", "uint32"),
            p("address", "bool"),
            p("pair", "tuple[2]", False, [c("x", "int128"), c("y", "bytes")]),
            p("hidden", "tuple", True, [c("k", "uint256")], "struct Book.Hidden"),
        ],
        [
            (A1, [5, 2**200], (True, "first"), -(2**200)),
            [(A2, [], (False, ""), 0), (A3, [1], (True, "z"), -5)],
            4294967295,
            True,
            [(-(2**127), b""), (2**127 - 1, b"\xaa")],
            (9,),
        ],
    ),
]

LOG_FIELDS = [
    "chain_id",
    "block_number",
    "block_hash",
    "block_timestamp",
    "transaction_hash",
    "transaction_index",
    "log_index",
    "address",
]


def sol_type(param):
    ty = param["type"]
    if ty.startswith("tuple"):
        return "(" + ",".join(sol_type(x) for x in param["components"]) + ")" + ty[len("tuple"):]
    return ty


def hashed(param):
    ty = param["type"]
    return ty in ("string", "bytes") or ty.endswith("]") or ty.startswith("tuple")


def field_names(params, top):
    taken = list(LOG_FIELDS) if top else []
    out = []
    for i, x in enumerate(params):
        name = x["name"] or f"arg{i}"
        while name in taken:
            name += "_"
        taken.append(name)
        out.append(name)
    return out


def norm(param, value, ty=None):
    """The value as fastavro should read it back (bytes as hex, addresses lowercase)."""
    ty = ty or param["type"]
    if ty.endswith("]"):
        inner = ty[: ty.rindex("[")]
        return [norm(param, v, inner) for v in value]
    if ty == "tuple":
        comps = param["components"]
        return dict(zip(field_names(comps, False), (norm(x, v) for x, v in zip(comps, value))))
    if ty == "address":
        return value.lower()
    if ty == "bytes" or ty.startswith("bytes"):
        return "0x" + value.hex()
    return value


def cases(out_path):
    out = []
    for name, params, values in CASES:
        topics, data_types, data_values, expected = [], [], [], {}
        for fname, param, value in zip(field_names(params, True), params, values):
            if param["indexed"] and hashed(param):
                digest = hashlib.sha256(repr(value).encode()).digest()
                topics.append("0x" + digest.hex())
                expected[fname] = "0x" + digest.hex()
            elif param["indexed"]:
                topics.append("0x" + encode([sol_type(param)], [value]).hex())
                expected[fname] = norm(param, value)
            else:
                data_types.append(sol_type(param))
                data_values.append(value)
                expected[fname] = norm(param, value)
        out.append(
            {
                "event": {"type": "event", "name": name, "anonymous": False, "inputs": params},
                "topics": topics,
                "data": "0x" + encode(data_types, data_values).hex(),
                "expected": expected,
            }
        )
    with open(out_path, "w") as f:
        json.dump(out, f, default=str)


def plain(v, decimal=int):
    """fastavro's reading with bytes as hex and decimals as `decimal` of the integer."""
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if isinstance(v, list):
        return [plain(x, decimal) for x in v]
    if isinstance(v, dict):
        return {k: plain(x, decimal) for k, x in v.items()}
    if hasattr(v, "as_integer_ratio") and not isinstance(v, (int, float)):
        return decimal(int(v))  # Decimal, scale 0
    if hasattr(v, "timestamp"):
        return round(v.timestamp() * 1000)
    return v


def check(cases_path, decoded_path):
    with open(cases_path) as f:
        all_cases = json.load(f)
    with open(decoded_path) as f:
        decoded = json.load(f)
    if len(decoded) != len(all_cases):
        sys.exit(f"{len(decoded)} decoded values for {len(all_cases)} cases")
    for n, (case, got) in enumerate(zip(all_cases, decoded)):
        schema = parse_schema(json.loads(got["schema"]))
        fp = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
        raw = bytes.fromhex(got["value"])
        if raw[:2] != b"\xc3\x01" or raw[2:10].hex() != fp:
            sys.exit(f"case {n}: header {raw[:10].hex()} is not C3 01 + fingerprint {fp}")
        body = io.BytesIO(raw[10:])
        record = plain(schemaless_reader(body, schema))
        if body.read():
            sys.exit(f"case {n}: bytes left after the record")
        want = {k: got["log"][k] for k in LOG_FIELDS}
        want.update(case["expected"])
        if list(record) != list(want):
            sys.exit(f"case {n}: fields {list(record)} where {list(want)} were expected")
        for k in want:
            if record[k] != want[k]:
                sys.exit(f"case {n} ({case['event']['name']}): field {k}: read {record[k]!r}, eth-abi encoded {want[k]!r}")
    print(f"ok {len(all_cases)}")


def read(schema_path, values_path):
    with open(schema_path) as f:
        schema = parse_schema(json.load(f))
    fp = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
    with open(values_path) as f:
        for n, line in enumerate(f, 1):
            raw = bytes.fromhex(line.strip())
            if raw[:2] != b"\xc3\x01" or raw[2:10].hex() != fp:
                sys.exit(f"value {n}: header {raw[:10].hex()} is not C3 01 + fingerprint {fp}")
            body = io.BytesIO(raw[10:])
            record = schemaless_reader(body, schema)
            if body.read():
                sys.exit(f"value {n}: bytes left after the record")
            print(json.dumps(plain(record, str)))


if __name__ == "__main__":
    if sys.argv[1] == "read":
        read(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "cases":
        cases(sys.argv[2])
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
