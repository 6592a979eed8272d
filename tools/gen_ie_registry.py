#!/usr/bin/env python3
"""Generate src/ipfix/ie_registry_data.cpp from data/*.csv.

Inputs (see data/README.md for their origin):
  data/iana-ipfix-elements.csv     IANA information elements (enterprise 0)
  data/nprobe-template-fields.csv  nProbe field names, aliases and ntop elements (enterprise 35632)

Output: one sorted table of every element flowsec knows, keyed by (enterprise, id):
  - IANA elements with their abstract data type and name;
  - RFC 5103 reverse elements (enterprise 29305) for every reversible IANA element;
  - ntop's enterprise 35632 elements, typed from their nProbe length and description;
and a table of nProbe names (including "[Aliased to %X]" aliases) pointing into it.

  tools/gen_ie_registry.py           rewrite the output file
  tools/gen_ie_registry.py --check   exit 1 if the checked-in file is not current (CI runs this)
"""
import csv
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IANA_CSV = ROOT / "data" / "iana-ipfix-elements.csv"
NPROBE_CSV = ROOT / "data" / "nprobe-template-fields.csv"
OUT = ROOT / "src" / "ipfix" / "ie_registry_data.cpp"

IANA_PEN = 0
REVERSE_PEN = 29305
NTOP_PEN = 35632
VARLEN = 65535

# RFC 5103 §6.1: elements that identify the exporting process, the template, or the
# record itself have no reverse counterpart.
NOT_REVERSIBLE = {
    40, 41, 42,            # exportedOctetTotalCount, exportedMessageTotalCount, exportedFlowRecordTotalCount
    130, 131,              # exporterIPv4Address, exporterIPv6Address
    137, 138, 141, 143, 144, 145, 148, 149,  # commonPropertiesId ... observationDomainId
    164, 165, 166, 167, 168, 169, 170, 171, 172,  # ignored/notSent counts
    173,                   # flowKeyIndicator
    210,                   # paddingOctets
    211, 212, 213, 214, 215, 216, 217,  # collector/exporter transport description
    239,                   # biflowDirection
    291, 292, 293,         # basicList, subTemplateList, subTemplateMultiList
}

TYPES = [
    "octetArray", "unsigned8", "unsigned16", "unsigned32", "unsigned64", "signed8", "signed16",
    "signed32", "signed64", "float32", "float64", "boolean", "macAddress", "string",
    "dateTimeSeconds", "dateTimeMilliseconds", "dateTimeMicroseconds", "dateTimeNanoseconds",
    "ipv4Address", "ipv6Address", "basicList", "subTemplateList", "subTemplateMultiList",
]
DEFAULT_LENGTH = {
    "unsigned8": 1, "unsigned16": 2, "unsigned32": 4, "unsigned64": 8, "signed8": 1,
    "signed16": 2, "signed32": 4, "signed64": 8, "float32": 4, "float64": 8, "boolean": 1,
    "macAddress": 6, "dateTimeSeconds": 4, "dateTimeMilliseconds": 8,
    "dateTimeMicroseconds": 8, "dateTimeNanoseconds": 8, "ipv4Address": 4, "ipv6Address": 16,
}


def ntop_type(row):
    """ntop's table has no data type: infer it from length and wording."""
    length = int(row["length"])
    text = (row["name"] + " " + row["description"]).upper()
    if row["varlen"] == "yes":
        return "string"
    if length == 4 and ("IPV4" in text and "ADDR" in text):
        return "ipv4Address"
    if length == 16 and ("IPV6" in text and "ADDR" in text):
        return "ipv6Address"
    if length == 6 and "MAC" in text:
        return "macAddress"
    if length in (1, 2, 4, 8):
        return {1: "unsigned8", 2: "unsigned16", 4: "unsigned32", 8: "unsigned64"}[length]
    return "string"


def reverse_name(name):
    return "reverse" + name[0].upper() + name[1:]


def cstr(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generate():
    elements = {}  # (pen, id) -> dict
    with open(IANA_CSV, newline="") as f:
        for row in csv.DictReader(f):
            eid = int(row["ElementID"])
            dtype = row["DataType"]
            assert dtype in TYPES, dtype
            elements[(IANA_PEN, eid)] = dict(
                type=dtype, name=row["Name"], length=DEFAULT_LENGTH.get(dtype, VARLEN),
                nprobe="", v9=eid if eid < 32768 else 0)
    for (pen, eid), e in list(elements.items()):
        if eid in NOT_REVERSIBLE:
            continue
        elements[(REVERSE_PEN, eid)] = dict(
            type=e["type"], name=reverse_name(e["name"]), length=e["length"], nprobe="", v9=0)

    names = {}  # nProbe name or alias -> (pen, id)
    with open(NPROBE_CSV, newline="") as f:
        for row in csv.DictReader(f):
            pen, eid = int(row["pen"]), int(row["element_id"])
            length = VARLEN if row["varlen"] == "yes" else int(row["length"])
            key = (pen, eid)
            if key not in elements:
                if pen == IANA_PEN:
                    # An IANA id nProbe knows but the registry snapshot lacks: keep nProbe's view.
                    elements[key] = dict(type=ntop_type(row), name=row["ipfix_name"] or row["name"],
                                         length=length, nprobe="", v9=int(row["nfv9_id"]))
                else:
                    elements[key] = dict(type=ntop_type(row), name=row["name"], length=length,
                                         nprobe="", v9=int(row["nfv9_id"]))
            e = elements[key]
            if not e["nprobe"]:
                e["nprobe"] = row["name"]
                e["length"] = length  # what nProbe exports by default
                e["v9"] = int(row["nfv9_id"])
            names.setdefault(row["name"], key)
            for alias in re.findall(r"Aliased to %([A-Z0-9_]+)", row["description"]):
                names.setdefault(alias, key)

    out = io.StringIO()
    w = out.write
    w("// GENERATED by tools/gen_ie_registry.py from data/iana-ipfix-elements.csv and\n")
    w("// data/nprobe-template-fields.csv. Do not edit; run the generator instead.\n")
    w("// clang-format off\n#include \"ipfix/ie_registry.hpp\"\n\n")
    w("namespace flowsec::ipfix::detail {\n\n")
    w("using enum DataType;\n\n")
    # constinit: the tables are built by the compiler, in read-only data. As plain const,
    # GCC initialised them with 110 kB of code at every start (docs/benchmarks.md).
    w("// Sorted by (enterprise, id) for binary search.\n")
    w("constinit const ElementInfo kElements[] = {\n")
    order = sorted(elements)
    for pen, eid in order:
        e = elements[(pen, eid)]
        w(f"    {{{pen}u, {eid}u, {e['type']}, {e['length']}u, {e['v9']}u, {cstr(e['name'])}, "
          f"{cstr(e['nprobe'])}}},\n")
    w("};\n")
    w(f"constinit const std::size_t kElementCount = {len(order)};\n\n")
    w("// nProbe field names and aliases, sorted by name, with their element.\n")
    w("constinit const NameEntry kNprobeNames[] = {\n")
    for name in sorted(names):
        pen, eid = names[name]
        w(f"    {{{cstr(name)}, {pen}u, {eid}u}},\n")
    w("};\n")
    w(f"constinit const std::size_t kNprobeNameCount = {len(names)};\n\n")
    w("}  // namespace flowsec::ipfix::detail\n")
    return out.getvalue()


def main():
    text = generate()
    if "--check" in sys.argv[1:]:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run tools/gen_ie_registry.py", file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(ROOT)} is current")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
