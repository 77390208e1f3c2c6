#!/usr/bin/env python3
"""Validates a JUnit XML report against XML Schemas and prints what it holds.

    validate.py REPORT.xml SCHEMA.xsd [SCHEMA.xsd ...]

Exit 0 when the report is well-formed XML 1.0 and valid against every schema,
1 when it is not (each error on stderr as `SCHEMA:LINE: message`), 2 on a
usage or I/O error. Either way, when the report parses, stdout holds one JSON
document with what a consumer reads from it, so that a test can compare it
with what `vnx gate` found:

    {"suites": [{"attributes": {...}, "properties": {NAME: VALUE},
                 "system_out": TEXT, "system_err": TEXT,
                 "cases": [{"attributes": {...},
                            "failure": {"attributes": {...}, "text": TEXT} | null,
                            "error":   {"attributes": {...}, "text": TEXT} | null}]}]}

Attribute values and texts are as an XML parser reports them (entities and
character references resolved, attribute values normalized per XML 1.0 §3.3.3).
"""

import json
import sys

from lxml import etree


def element(e):
    if e is None:
        return None
    return {"attributes": dict(e.attrib), "text": e.text or ""}


def describe(root):
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    out = []
    for s in suites:
        props = {p.get("name"): p.get("value") for p in s.findall("properties/property")}
        cases = [
            {
                "attributes": dict(c.attrib),
                "failure": element(c.find("failure")),
                "error": element(c.find("error")),
            }
            for c in s.findall("testcase")
        ]
        out.append(
            {
                "attributes": dict(s.attrib),
                "properties": props,
                "system_out": s.findtext("system-out") or "",
                "system_err": s.findtext("system-err") or "",
                "cases": cases,
            }
        )
    return {"root": root.tag, "suites": out}


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    report, schemas = argv[1], argv[2:]
    # No DTDs, entities or network: a report is data, never instructions.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        doc = etree.parse(report, parser)
    except etree.XMLSyntaxError as e:
        print(f"{report}: not well-formed XML: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"cannot read {report}: {e}", file=sys.stderr)
        return 2
    valid = True
    for path in schemas:
        try:
            schema = etree.XMLSchema(etree.parse(path))
        except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as e:
            print(f"cannot load schema {path}: {e}", file=sys.stderr)
            return 2
        if not schema.validate(doc):
            valid = False
            for err in schema.error_log:
                print(f"{path}:{err.line}: {err.message}", file=sys.stderr)
    print(json.dumps(describe(doc.getroot())))
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
