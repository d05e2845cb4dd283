#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into seeds/<target>/ (run from fuzz/).

The publish_event seeds are valid PublishEventRequest messages of each kind, hand-encoded in the
protobuf wire format, so libFuzzer starts from well-formed messages and mutates from there.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire_type, payload):
    key = varint((number << 3) | wire_type)
    if wire_type == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def s(number, text):
    return field(number, 2, text.encode())


def msg(number, body):
    return field(number, 2, body)


def u(number, value):
    return field(number, 0, value)


def timestamp(seconds, nanos=0):
    return u(1, seconds) + (u(2, nanos) if nanos else b"")


def request(kind, inner, decision, node=None, key="key-1", occurred=None):
    out = s(1, key) + u(2, decision)
    if node is not None:
        out += u(3, node)
    if occurred is not None:
        out += msg(4, timestamp(*occurred))
    return out + msg(kind, inner)


beneficiary = s(1, "Ada Lovelace") + s(3, "DE89370400440532013000") + s(5, "COBADEFFXXX")
withdrawal = (
    s(1, "W-1") + s(2, "C-1") + s(3, "Ada") + s(4, "ada@example.com") + s(5, "MT5-1")
    + s(6, "1250.00") + s(7, "USD") + s(8, "bank") + msg(9, beneficiary)
    + msg(10, timestamp(1_700_000_000)) + s(11, "approved") + s(12, "ok")
)
participation = (
    s(1, "P-1") + s(2, "C-2") + s(5, "Pro") + s(6, "Phase 1") + s(7, "100000") + s(8, "499.00")
    + s(9, "EUR") + s(10, "EVAL-1") + msg(11, timestamp(1_700_000_000, 5))
)
live_stage = s(1, "L-1") + s(2, "C-3") + s(7, "200000") + s(8, "GBP") + s(10, "LIVE-9")

seeds = {
    "withdrawal_approved": request(10, withdrawal, 1, node=2, occurred=(1_700_000_100, 0)),
    "withdrawal_rejected": request(10, withdrawal, 2),
    "participation_approved": request(11, participation, 1, node=1),
    "participation_rejected": request(11, participation, 2, key="k2"),
    "live_stage_approved": request(12, live_stage, 1, node=1000),
    "live_stage_rejected": request(12, live_stage, 2, key="k3"),
}

directory = os.path.join(HERE, "publish_event")
os.makedirs(directory, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)

texts = {
    "secret": ["", "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "sixteen-chars-ok", "whsec_!!!"],
    "destination_url": ["\x00https://example.com/hooks?a=1", "\x01http://127.0.0.1:8080/x",
                        "\x00http://[::ffff:169.254.169.254]/", "\x01https://user@host/"],
    "retry_after": ["120", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"],
    "duration": ["5s,5m,30m,2h,5h,10h,14h,20h,24h", "500ms", "1.5d", " "],
    "page_token": ["\x00AgAAAAAAAAAqAAAAAAAAAAAAAAAAAAAAAA", "\x01\x00\x00\x00\x00\x00\x00\x00\x2a"],
}
for target, values in texts.items():
    directory = os.path.join(HERE, target)
    os.makedirs(directory, exist_ok=True)
    for i, value in enumerate(values):
        with open(os.path.join(directory, f"seed{i}"), "wb") as f:
            f.write(value.encode("utf-8"))
