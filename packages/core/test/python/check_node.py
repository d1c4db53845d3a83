"""Exercises a zactor node serving the Calculator contract of test/fixtures/python-peer-node.ts with the Python
client written from docs/PROTOCOL.md, one check per documented behaviour.

    python3 check_node.py <endpoint> [--node-id python-peer]

Prints one JSON object {"ok": bool, "results": [{"name", "ok", "detail"}...]} on stdout and exits 0 only if
every check passed.
"""

import argparse
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import msgpack  # noqa: E402

from zactor_client import FAILURE, HELLO, REQUEST, Client, node_info, pack  # noqa: E402

results = []


def check(name):
    """Runs the decorated function at once (checks run in the order they are written); it passes unless it
    raises. Its return value becomes the detail."""

    def register(function):
        started = time.monotonic()
        try:
            detail = function()
            results.append({"name": name, "ok": True, "detail": detail, "ms": ms_since(started)})
        except Exception as error:  # noqa: BLE001 - a failed check is reported, the others still run
            results.append(
                {
                    "name": name,
                    "ok": False,
                    "detail": f"{type(error).__name__}: {error}",
                    "trace": traceback.format_exc(limit=3),
                    "ms": ms_since(started),
                }
            )
        return function

    return register


def ms_since(started):
    return round((time.monotonic() - started) * 1000, 1)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def expect_failure(outcome, code):
    expect(not outcome.ok, f"expected FAILURE {code}, got {outcome!r}")
    expect(outcome.code == code, f"expected code {code}, got {outcome!r}")
    expect(not outcome.local, f"expected the node's FAILURE {code}, got a local one: {outcome!r}")
    return outcome


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("--node-id", default="python-peer")
    args = parser.parse_args()
    client = Client(args.endpoint, node_id="python-checker")

    def one(target, body, timeout_ms=5000, headers=None, grace_ms=0):
        id_ = client.request(target, body, timeout_ms, headers)
        return client.wait([id_], grace_ms)[id_]

    def raw_add(a, b, encoded_a):
        """Calculator/add with the payload packed by msgpack itself; checks `a` went out as `encoded_a` (hex)."""
        id_ = client.track(client.next_id(), 5000)
        payload = msgpack.packb([1, REQUEST, id_, "Calculator/add", {"a": a, "b": b}, 5000, None])
        expect(payload.find(bytes.fromhex("a161" + encoded_a)) > 0, f"msgpack wrote {a!r} as {encoded_a}")
        client.send_payloads([payload])
        return client.wait([id_])[id_].unwrap()

    def wait_for_inflight(n, timeout_s=3.0):
        deadline = time.monotonic() + timeout_s
        while True:
            inflight = client.ping()["inflight"]
            if inflight == n or time.monotonic() > deadline:
                expect(inflight == n, f"inflight {inflight}, expected {n}")
                return inflight
            time.sleep(0.02)

    @check("hello_welcome")
    def _():
        info = client.hello()
        expect(info["id"] == args.node_id, f"node id {info['id']!r}")
        expect("Calculator" in info["services"], f"services {info['services']!r}")
        expect(args.endpoint in info["endpoints"], f"endpoints {info['endpoints']!r}")
        expect(info["actors"] == [] and info["meta"] == {}, f"actors/meta {info!r}")
        # Section 3.3: optional liveness settings and the process incarnation.
        heartbeat = info.get("heartbeat")
        expect(heartbeat is None or heartbeat["timeoutMs"] >= 2 * heartbeat["intervalMs"], f"heartbeat {heartbeat!r}")
        return info

    @check("worked_example_bytes")
    def _():
        # Section 5, byte for byte: the REQUEST frame as the implementation writes it, and the REPLY frame.
        request = bytes.fromhex(
            "01 00 00 00 00 20 97 01 02 01 ae 43 61 6c 63 75 6c 61 74 6f 72 2f 61 64 64 de 00 02 a1 61 02 a1"
            " 62 03 cd 03 e8 c0"
        )
        expected_reply = bytes.fromhex("01 00 00 00 00 05 94 01 03 01 05")
        id_ = client.next_id()
        expect(id_ == 1, f"the first call of the connection has id 1, not {id_}")
        # The Python encoding of the same envelope (fixmap) is the 30-byte variant the document gives.
        python_payload = pack([1, REQUEST, 1, "Calculator/add", {"a": 2, "b": 3}, 1000, None])
        expect(len(python_payload) == 30 and python_payload[:4] == bytes.fromhex("97010201"), python_payload.hex())
        expect(msgpack.unpackb(python_payload) == msgpack.unpackb(request[6:]), "both encodings are one value")
        client.send_frame(request)
        expect(client.socket.poll(5000), "no reply within 5 s")
        frames = client.socket.recv_multipart()
        expect(frames == [expected_reply], f"reply frames {[f.hex(' ') for f in frames]}")
        return expected_reply.hex(" ")

    @check("add")
    def _():
        value = client.call("Calculator/add", {"a": 2, "b": 3})
        expect(value == 5, f"2 + 3 = {value!r}")
        value = client.call("Calculator/divide", {"a": 7, "b": 2})
        expect(value == 3.5, f"7 / 2 = {value!r}")
        return value

    @check("batch_of_100")
    def _():
        sent = client.batches_sent
        outcomes = client.call_many([("Calculator/add", {"a": i, "b": i * 2}) for i in range(100)])
        expect(client.batches_sent == sent + 1, "the 100 calls left in one frame")
        wrong = [(i, o) for i, o in enumerate(outcomes) if not o.ok or o.body != i * 3]
        expect(not wrong, f"wrong answers: {wrong[:3]!r}")
        return {"calls": len(outcomes)}

    @check("application_error")
    def _():
        outcome = expect_failure(one("Calculator/divide", {"a": 7, "b": 0}), "application")
        expect(outcome.error == {"_tag": "DivisionByZero", "dividend": 7}, f"error body {outcome.error!r}")
        # Section 3.7: an error without a message of its own carries its _tag as message.
        expect(outcome.message == "DivisionByZero", f"message {outcome.message!r}")
        return {"message": outcome.message, "error": outcome.error}

    @check("not_found")
    def _():
        messages = [
            expect_failure(one("Calculator/nope", {}), "not_found").message,
            expect_failure(one("Nope/add", {"a": 1, "b": 2}), "not_found").message,
            expect_failure(one("no-slash", {}), "not_found").message,
        ]
        return messages

    @check("invalid_argument")
    def _():
        return [
            expect_failure(one("Calculator/add", {"a": "x", "b": 1}), "invalid_argument").message,
            expect_failure(one("Calculator/add", {"a": 1}), "invalid_argument").message,
        ]

    @check("large_integers")
    def _():
        # Section 3.1: the 64-bit integer formats are numbers to the node, as is float64; integers beyond 32 bits
        # come back as float64.
        values = [
            raw_add(2**40, 1, "cf0000010000000000"),  # uint64
            raw_add(-(2**40), -1, "d3ffffff0000000000"),  # int64
            raw_add(float(2**40), 1, "cb4270000000000000"),  # float64
            client.call("Calculator/add", {"a": 2**52, "b": 2**52 - 1}),  # 2^53 - 1: still exact
        ]
        expected = [2**40 + 1, -(2**40) - 1, 2**40 + 1, 2**53 - 1]
        expect(values == expected, f"sums {values!r}, expected {expected!r}")
        return [int(value) for value in values]

    @check("optional_field_and_void_reply")
    def _():
        expect(client.call("Calculator/greet", {"name": "Ada"}) == "hello Ada", "greet without title")
        expect(client.call("Calculator/greet", {"name": "Ada", "title": "Dr"}) == "hello Dr Ada", "greet with title")
        expect_failure(one("Calculator/greet", {"name": "Ada", "title": None}), "invalid_argument")
        expect(client.call("Calculator/remember", {"value": 1}) is None, "a Void success is a nil body")
        return "ok"

    @check("headers_and_caller_id")
    def _():
        seen = client.call("Calculator/whoami", {}, headers={"ik": "key-1", "at": 2, "tp": "00-abc-def-01", "x-app": "v"})
        expect(seen["nodeId"] == "python-checker", f"caller node id {seen!r}")
        expect(seen["headers"] == {"ik": "key-1", "at": 2, "tp": "00-abc-def-01", "x-app": "v"}, f"headers {seen!r}")
        return seen

    @check("deadline_exceeded_on_the_node")
    def _():
        started = time.monotonic()
        outcome = expect_failure(one("Calculator/sleep", {"ms": 5000}, timeout_ms=100, grace_ms=2000), "deadline_exceeded")
        elapsed = ms_since(started)
        expect(95 <= elapsed < 1500, f"answered after {elapsed} ms")
        expect(client.ping()["inflight"] == 0, "the handler was interrupted")
        return {"elapsed_ms": elapsed, "message": outcome.message}

    @check("client_timeout_and_cancel")
    def _():
        # Without grace, the client's own deadline fires first: it sends CANCEL and fails the call locally.
        started = time.monotonic()
        id_ = client.request("Calculator/sleep", {"ms": 5000}, 150)
        outcome = client.wait([id_])[id_]
        expect(outcome.code == "deadline_exceeded" and outcome.local, f"local timeout: {outcome!r}")
        local_timeout_ms = ms_since(started)
        # An explicit CANCEL: the node interrupts the handler and sends no answer.
        id_ = client.request("Calculator/sleep", {"ms": 5000}, 10_000)
        inflight = wait_for_inflight(1)
        client.cancel(id_)
        wait_for_inflight(0)
        client.poll(300)
        expect(not [e for e in client.other if e[0] == "envelope"], f"unexpected envelopes {client.other!r}")
        return {"local_timeout_ms": local_timeout_ms, "inflight_before_cancel": inflight}

    @check("timeout_zero_is_dropped")
    def _():
        id_ = client.request("Calculator/add", {"a": 1, "b": 1}, 0)
        outcome = client.wait([id_], grace_ms=500)[id_]
        expect(outcome.local, f"no answer expected, got {outcome!r}")
        return "no answer"

    @check("timeout_beyond_the_timer_limit")
    def _():
        # Section 3.7: a timeoutMs past 2^31-1 is waited as 2^31-1 (about 24.8 days), not expired at once.
        timeout_ms = 2**31 + 5
        expect(msgpack.packb(timeout_ms) == bytes.fromhex("ce80000005"), "2^31 + 5 travels as uint32")
        value = client.call("Calculator/add", {"a": 2, "b": 3}, timeout_ms=timeout_ms)
        expect(value == 5, f"2 + 3 = {value!r}")
        slept = client.call("Calculator/sleep", {"ms": 100}, timeout_ms=timeout_ms)
        expect(slept == "slept 100", f"sleep answered {slept!r}")
        # The same in a 64-bit format.
        slept = client.call("Calculator/sleep", {"ms": 50}, timeout_ms=2**40)
        expect(slept == "slept 50", f"sleep answered {slept!r}")
        return value

    @check("duplicate_id_in_flight")
    def _():
        id_, first = client.request_envelope("Calculator/sleep", {"ms": 300}, 5000)
        second = [1, REQUEST, id_, "Calculator/add", {"a": 1, "b": 1}, 5000, None]
        client.send(first, second)
        outcome = expect_failure(client.wait([id_])[id_], "invalid_argument")
        client.track(id_, 5000)
        later = client.wait([id_])[id_]
        expect(later.ok and later.body == "slept 300", f"the first call still answers: {later!r}")
        return outcome.message

    @check("tell")
    def _():
        before = client.call("Calculator/recall", {})
        client.tell("Calculator/remember", {"value": 42})
        client.tell("Calculator/remember", {"value": "not a number"})  # fails the schema: dropped
        client.tell("Calculator/nope", {})  # unknown target: dropped
        deadline = time.monotonic() + 3
        while True:
            values = client.call("Calculator/recall", {})
            if len(values) > len(before) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        expect(values == before + [42], f"remembered {values!r} after {before!r}")
        expect(not [e for e in client.other if e[0] == "envelope"], f"a TELL was answered: {client.other!r}")
        return values

    @check("ping_pong")
    def _():
        load = client.ping()
        # Section 3.12: the load map has at least `inflight`; other keys (eventLoopDelayMs, mailbox) are numbers.
        expect(load.get("inflight") == 0, f"PONG load {load!r}")
        expect(all(isinstance(v, (int, float)) for v in load.values()), f"PONG load values {load!r}")
        return load

    @check("repeated_hello_is_an_update")
    def _():
        welcomes = client.welcomes
        info = client.hello()
        expect(client.welcomes == welcomes + 1 and info["id"] == args.node_id, "a second WELCOME")
        return client.welcomes

    @check("malformed_input_keeps_the_node_answering")
    def _():
        id_ = client.track(client.next_id(), 5000)
        reports = len(client.reports)
        client.send_payloads(
            [
                b"\xc1",  # never used in msgpack
                msgpack.packb("not an array"),
                msgpack.packb([1]),
                msgpack.packb([1, 99, 5]),  # unknown kind: FAILURE id 0
                msgpack.packb([1, 3]),  # REPLY without fields: dropped
                msgpack.packb([1, HELLO, {"id": 5}]),  # malformed NodeInfo: FAILURE id 0
                msgpack.packb([1, REQUEST, -1, "Calculator/add", {"a": 1, "b": 1}, 5000, None]),  # no id: dropped
                msgpack.packb([1, REQUEST, id_, "Calculator/add", {"a": 1, "b": 1}, "soon", None]),  # FAILURE id_
                b"",
            ]
        )
        client.send_frame(b"\x09\x00\x00\x00\x00\x01\xc0")  # unknown batch version: rejected as a whole
        client.send_frame(b"\x01\x00\x00\x00\x00\x09\xc0")  # length overruns the frame
        client.send_frame(b"\x01")  # too short
        outcome = expect_failure(client.wait([id_])[id_], "invalid_argument")
        # Section 3.13: after WELCOME, a FAILURE id 0 other than incompatible_version is a report, not a refusal.
        new_reports = client.reports[reports:]
        expect([r.code for r in new_reports] == ["invalid_argument"] * 2, f"id-0 reports {new_reports!r}")
        expect(client.refused is None, f"the connection was refused: {client.refused!r}")
        expect(client.call("Calculator/add", {"a": 20, "b": 22}) == 42, "still answering")
        # The unreadable HELLO did not replace the node's record of us.
        expect(client.call("Calculator/whoami", {})["nodeId"] == "python-checker", "the caller's node id is kept")
        return {"request": outcome.message, "reports": [r.message for r in new_reports]}

    @check("malformed_hello_refuses_before_welcome")
    def _():
        # Section 3.13: before WELCOME, a FAILURE id 0 of any code refuses the connection, and every call with it.
        with Client(args.endpoint, node_id="python-bad-hello") as other:
            other.send([1, HELLO, {"id": "python-bad-hello"}])
            id_ = other.request("Calculator/add", {"a": 1, "b": 1}, 5000)  # sent before the refusal arrives
            outcome = other.wait([id_])[id_]
            expect(other.refused is not None and other.refused.code == "invalid_argument", f"{other.refused!r}")
            expect(outcome.code == "invalid_argument" and not outcome.local, f"pending call {outcome!r}")
            expect(other.node is None and other.reports == [], "no WELCOME, no report")
            later = other.wait([other.request("Calculator/add", {"a": 1, "b": 1}, 5000)])
            expect([o.code for o in later.values()] == ["invalid_argument"], f"a later call {later!r}")
            return other.refused.message

    @check("unknown_failure_code_is_internal")
    def _():
        # Section 3.8, on the client's side: a code from a newer node counts as internal, its message kept.
        id_ = client.track(client.next_id(), 5000)
        client._on_payload(pack([1, FAILURE, id_, "some_future_code", "from the future", None]))
        outcome = client.wait([id_])[id_]
        expect(outcome.code == "internal" and outcome.message == "from the future", repr(outcome))
        return outcome.code

    @check("incompatible_version_request")
    def _():
        id_, envelope = client.request_envelope("Calculator/add", {"a": 1, "b": 1}, 5000)
        envelope[0] = 2
        client.send(envelope)
        outcome = expect_failure(client.wait([id_])[id_], "incompatible_version")
        expect(client.refused is None, "a refused request does not refuse the connection")
        expect(client.call("Calculator/add", {"a": 1, "b": 1}) == 2, "version 1 calls still work")
        return outcome.message

    @check("incompatible_version_connection")
    def _():
        # Another connection (its own routing id, so its own ids) says HELLO in version 2: FAILURE id 0.
        with Client(args.endpoint, node_id="python-v2") as other:
            other.send([2, HELLO, node_info("python-v2")])
            deadline = time.monotonic() + 5
            while other.refused is None and time.monotonic() < deadline:
                other.poll(100)
            expect(other.refused is not None, "no FAILURE id 0")
            expect(other.refused.code == "incompatible_version", f"refusal {other.refused!r}")
            expect(other.node is None, "no WELCOME")
            return other.refused.message

    @check("failure_envelope_is_well_formed")
    def _():
        # Raw check of one FAILURE as the node writes it: [1, 4, id, code, message, error].
        client.poll(200)  # drain late answers of earlier checks
        id_ = client.next_id()
        client.send([1, REQUEST, id_, "Calculator/nope", {}, 5000, None])
        expect(client.socket.poll(5000), "no answer")
        [frame] = client.socket.recv_multipart()
        payload = frame[6:]
        envelope = msgpack.unpackb(payload)
        expect(frame[:2] == b"\x01\x00" and int.from_bytes(frame[2:6], "big") == len(payload), frame.hex())
        expect(envelope[:4] == [1, FAILURE, id_, "not_found"] and envelope[5] is None, repr(envelope))
        return envelope

    client.close()
    ok = all(result["ok"] for result in results)
    print(json.dumps({"ok": ok, "results": results}, default=repr))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
