#!/usr/bin/env python3
"""The tests' reference Avro implementation: fastavro, independent of the service's encoder.

  avro_ref.py fingerprint SCHEMA        prints the CRC-64-AVRO fingerprint (header byte order)
  avro_ref.py decode SCHEMA VALUES      VALUES: one hex-encoded single-object value per line;
                                        checks C3 01 and the fingerprint, decodes the body and
                                        prints one JSON object per value (data as hex,
                                        block_timestamp in ms)
"""
import io
import json
import sys

from fastavro import schemaless_reader
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form


def main():
    command, schema_path = sys.argv[1], sys.argv[2]
    with open(schema_path) as f:
        schema = parse_schema(json.load(f))
    fp = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
    if command == "fingerprint":
        print(fp)
        return
    with open(sys.argv[3]) as f:
        for n, line in enumerate(f, 1):
            raw = bytes.fromhex(line.strip())
            if raw[:2] != b"\xc3\x01":
                sys.exit(f"value {n}: not single-object encoding ({raw[:2].hex()})")
            if raw[2:10].hex() != fp:
                sys.exit(f"value {n}: fingerprint {raw[2:10].hex()} is not the schema's {fp}")
            record = schemaless_reader(io.BytesIO(raw[10:]), schema)
            ts = record["block_timestamp"]
            record["block_timestamp"] = round(ts.timestamp() * 1000) if hasattr(ts, "timestamp") else ts
            record["data"] = record["data"].hex()
            print(json.dumps(record))


if __name__ == "__main__":
    main()
