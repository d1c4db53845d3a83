"""A minimal zactor client in Python, written from docs/PROTOCOL.md alone (pyzmq + msgpack, Python 3.9+).

It connects one DEALER to a node, greets it (HELLO/WELCOME), and makes calls: each REQUEST goes out in a batch
frame (several calls may share one), answers are matched by correlation id, and every call has a deadline
carried on the wire and enforced locally (CANCEL is sent when it passes).

    client = Client("tcp://127.0.0.1:5555", node_id="py-client")
    info = client.hello()
    client.call("Calculator/add", {"a": 2, "b": 3})            # -> 5
    client.call("Calculator/divide", {"a": 1, "b": 0})         # raises ZactorError(code="application", ...)
"""

import base64
import os
import struct
import time

import msgpack
import zmq

PROTOCOL_VERSION = 1
BATCH_VERSION = 1

# Envelope kinds (section 3.2).
HELLO, WELCOME, REQUEST, REPLY, FAILURE, CANCEL, TELL, ITEM, END, CREDIT, ACK, PING, PONG = range(13)

# Correlation ids run 1 .. 2^31-1 and wrap to 1; 0 names the connection (section 3.7).
MAX_ID = 2**31 - 1
# msgpack has integer formats down to int64 and up to uint64; anything beyond travels as float64. The node holds
# numbers as float64 either way: integers are exact up to 2^53 (section 3.1).
INT_MIN, INT_MAX = -(2**63), 2**64 - 1

# The framework codes (section 3.8); FAILURE may also carry "application". Any other code counts as internal.
CODES = frozenset(
    (
        "unavailable",
        "deadline_exceeded",
        "cancelled",
        "not_found",
        "invalid_argument",
        "overloaded",
        "internal",
        "unauthenticated",
        "permission_denied",
        "incompatible_version",
        "idempotency_conflict",
        "application",
    )
)

LOCAL_TIMEOUT = "deadline_exceeded"


class ZactorError(Exception):
    """A failed call: a framework `code` (section 3.8) or "application" with the contract's `error` value."""

    def __init__(self, code, message, error=None, local=False):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.error = error
        # True when this client produced the failure itself (its own deadline), not the node.
        self.local = local


class Outcome:
    """How one call ended: a REPLY (`ok`, `body`) or a FAILURE (`code`, `message`, `error`)."""

    __slots__ = ("ok", "body", "code", "message", "error", "local")

    def __init__(self, ok, body=None, code=None, message=None, error=None, local=False):
        self.ok = ok
        self.body = body
        self.code = code
        self.message = message
        self.error = error
        self.local = local

    def unwrap(self):
        if self.ok:
            return self.body
        raise ZactorError(self.code, self.message, self.error, self.local)

    def __repr__(self):
        if self.ok:
            return f"Outcome(ok, {self.body!r})"
        return f"Outcome({self.code}, {self.message!r}, {self.error!r}, local={self.local})"


# ---- batch frame (section 2) ----------------------------------------------------------------------------------


def encode_batch(payloads):
    """One batch frame holding `payloads` (bytes), without a CURVE proof."""
    if not payloads:
        raise ValueError("a batch holds at least one payload")
    parts = [bytes((BATCH_VERSION, 0))]
    for payload in payloads:
        parts.append(struct.pack(">I", len(payload)))
        parts.append(payload)
    return b"".join(parts)


def decode_batch(frame):
    """The payloads of a batch frame; raises ValueError on a malformed frame."""
    if len(frame) < 6:
        raise ValueError("batch frame shorter than 6 bytes")
    if frame[0] != BATCH_VERSION:
        raise ValueError(f"batch version {frame[0]}")
    flags = frame[1]
    if flags & ~1:
        raise ValueError(f"unknown batch flags {flags:#x}")
    offset = 2 + (64 if flags & 1 else 0)
    payloads = []
    while offset < len(frame):
        if len(frame) - offset < 4:
            raise ValueError("truncated length prefix")
        (length,) = struct.unpack_from(">I", frame, offset)
        offset += 4
        if length > len(frame) - offset:
            raise ValueError("payload overruns the frame")
        payloads.append(frame[offset : offset + length])
        offset += length
    if not payloads:
        raise ValueError("batch without payloads")
    return payloads


# ---- envelopes (section 3) ------------------------------------------------------------------------------------


def to_wire(value):
    """Makes a Python value fit the encoding rules: integers beyond msgpack's 64-bit formats travel as float64
    (section 3.1)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if INT_MIN <= value <= INT_MAX else float(value)
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    return value


def pack(envelope):
    """Encodes one envelope (a list) as plain msgpack: str for text, no extension types."""
    return msgpack.packb(to_wire(envelope), use_bin_type=True)


def unpack(payload):
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


def node_info(node_id, services=(), actors=(), endpoints=(), meta=None):
    """A NodeInfo map (section 3.3)."""
    return {
        "id": node_id,
        "services": list(services),
        "actors": list(actors),
        "endpoints": list(endpoints),
        "meta": dict(meta or {}),
    }


def make_routing_id():
    """A random routing id that does not start with a zero byte (section 1)."""
    return b"z" + base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=")


class Client:
    """One DEALER connection to one zactor node."""

    def __init__(self, endpoint, node_id=None, context=None, send_timeout_ms=5000):
        self.endpoint = endpoint
        self.node_id = node_id or "py-" + os.urandom(4).hex()
        self.context = context or zmq.Context.instance()
        self.routing_id = make_routing_id()
        socket = self.context.socket(zmq.DEALER)
        # Section 1: heartbeats as the node's, no queueing into connections that are not up, our own routing id.
        socket.setsockopt(zmq.HEARTBEAT_IVL, 250)
        socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 1000)
        socket.setsockopt(zmq.HEARTBEAT_TTL, 1000)
        socket.setsockopt(zmq.IMMEDIATE, 1)
        socket.setsockopt(zmq.ROUTING_ID, self.routing_id)
        socket.setsockopt(zmq.SNDTIMEO, send_timeout_ms)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(endpoint)
        self.socket = socket
        # The node's NodeInfo from its latest WELCOME, and how many WELCOMEs came.
        self.node = None
        self.welcomes = 0
        # Set by a FAILURE id 0 that refuses the connection (section 3.13): every call on it then fails with it.
        self.refused = None
        # Other FAILUREs id 0 (after WELCOME): reports of input the node could not attribute to a call.
        self.reports = []
        self._next_id = 1
        # id -> local deadline (time.monotonic) of calls waiting for an answer.
        self._pending = {}
        # id -> Outcome of finished calls not yet collected.
        self._outcomes = {}
        self._pongs = {}
        # Envelopes of other kinds (ITEM, END, ACK...) and unreadable input, for inspection.
        self.other = []
        self.frames_received = 0
        self.batches_sent = 0

    # ---- sending ----------------------------------------------------------------------------------------------

    def next_id(self):
        id_ = self._next_id
        self._next_id = 1 if id_ >= MAX_ID else id_ + 1
        return id_

    def send_frame(self, frame):
        """Sends one ZeroMQ message of one frame; raises zmq.Again if the node is not reachable in time."""
        self.socket.send(frame, copy=True)
        self.batches_sent += 1

    def send_payloads(self, payloads):
        self.send_frame(encode_batch(payloads))

    def send(self, *envelopes):
        """Sends envelopes (lists) in one batch frame."""
        self.send_payloads([pack(envelope) for envelope in envelopes])

    def request_envelope(self, target, body, timeout_ms, headers=None, id_=None):
        """A REQUEST envelope with a fresh id, registered as pending; returns (id, envelope)."""
        # Any integer >= 0: the node waits at most 2^31-1 ms (about 24.8 days) however large it is (section 3.7).
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms < 0:
            raise ValueError("timeout_ms is an integer >= 0")
        id_ = self.track(self.next_id() if id_ is None else id_, timeout_ms)
        return id_, [PROTOCOL_VERSION, REQUEST, id_, target, body, timeout_ms, headers]

    def track(self, id_, timeout_ms):
        """Waits for an answer with this id until `timeout_ms` from now (for envelopes built by hand); returns it."""
        self._pending[id_] = time.monotonic() + timeout_ms / 1000
        return id_

    def request(self, target, body, timeout_ms=10_000, headers=None):
        """Sends one REQUEST; returns its id (collect the outcome with `wait`). On a refused connection nothing is
        sent and the call ends at once with the refusal."""
        id_, envelope = self.request_envelope(target, body, timeout_ms, headers)
        if self.refused is not None:
            self._complete(id_, self.refused)
        else:
            self.send(envelope)
        return id_

    def tell(self, target, body, headers=None):
        """A one-way message (TELL): no id, no answer."""
        self.send([PROTOCOL_VERSION, TELL, target, body, headers])

    def cancel(self, id_):
        """Gives up on a call: the node interrupts the handler and sends no answer; a late one is ignored."""
        self._pending.pop(id_, None)
        self._outcomes.pop(id_, None)
        self.send([PROTOCOL_VERSION, CANCEL, id_])

    # ---- receiving --------------------------------------------------------------------------------------------

    def poll(self, timeout_ms):
        """Waits up to `timeout_ms` for input and handles everything that is waiting. True if something came."""
        if not self.socket.poll(max(0, int(timeout_ms)), zmq.POLLIN):
            return False
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return True
            self.frames_received += 1
            if len(frames) != 1:
                self.other.append(("bad-message", len(frames)))
                continue
            try:
                payloads = decode_batch(frames[0])
            except ValueError as error:
                self.other.append(("bad-batch", str(error)))
                continue
            for payload in payloads:
                self._on_payload(payload)

    def _on_payload(self, payload):
        try:
            envelope = unpack(payload)
        except Exception as error:  # noqa: BLE001 - anything unreadable is set aside, never fatal
            self.other.append(("not-msgpack", str(error)))
            return
        if not isinstance(envelope, list) or len(envelope) < 2:
            self.other.append(("not-an-envelope", envelope))
            return
        version, kind = envelope[0], envelope[1]
        # Every version keeps the FAILURE layout, so a refusal is read whatever its version (section 3.13).
        if kind == FAILURE and len(envelope) >= 5:
            self._on_failure(envelope)
            return
        if version != PROTOCOL_VERSION:
            self.other.append(("unknown-version", envelope))
            return
        if kind == WELCOME and len(envelope) >= 3:
            self.node = envelope[2]
            self.welcomes += 1
        elif kind == REPLY and len(envelope) >= 4:
            self._complete(envelope[2], Outcome(True, body=envelope[3]))
        elif kind == PONG and len(envelope) >= 4:
            self._pongs[envelope[2]] = envelope[3]
        else:
            self.other.append(("envelope", envelope))

    def _on_failure(self, envelope):
        id_, code, message = envelope[2], envelope[3], envelope[4]
        error = envelope[5] if len(envelope) > 5 else None
        # A code from a newer node is reported as internal, its message kept (section 3.8).
        outcome = Outcome(False, code=code if code in CODES else "internal", message=message, error=error)
        if id_ == 0:
            # Id 0 names the connection (section 3.13). Before WELCOME, or for a version mismatch at any time, the
            # node refused it: every call on it fails. Otherwise it is a report about something we sent that the
            # node could not attribute to a call (an unknown kind, an unreadable HELLO): kept, not fatal.
            if self.node is not None and code != "incompatible_version":
                self.reports.append(outcome)
                return
            self.refused = outcome
            for pending in list(self._pending):
                self._complete(pending, outcome)
            return
        self._complete(id_, outcome)

    def _complete(self, id_, outcome):
        # An answer for an id we no longer wait for (timed out, cancelled) is ignored.
        deadline = self._pending.pop(id_, None)
        if deadline is not None:
            self._outcomes[id_] = (outcome, time.monotonic(), deadline)

    # ---- high level -------------------------------------------------------------------------------------------

    def hello(self, timeout_ms=5000):
        """Sends HELLO and waits for WELCOME; returns the node's NodeInfo. Raises ZactorError if refused."""
        welcomes = self.welcomes
        self.send([PROTOCOL_VERSION, HELLO, node_info(self.node_id)])
        deadline = time.monotonic() + timeout_ms / 1000
        while self.welcomes == welcomes:
            if self.refused is not None:
                self.refused.unwrap()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ZactorError("unavailable", f"no WELCOME from {self.endpoint} within {timeout_ms} ms", local=True)
            self.poll(remaining * 1000)
        return self.node

    def wait(self, ids, grace_ms=0):
        """Waits for the outcome of each id; a call with no answer by its deadline (+ `grace_ms`) is cancelled
        and ends with a local `deadline_exceeded`. Returns {id: Outcome}."""
        ids = list(ids)
        results = {}
        while True:
            now = time.monotonic()
            waiting = []
            for id_ in ids:
                if id_ in results:
                    continue
                if id_ in self._outcomes:
                    outcome, read_at, deadline = self._outcomes.pop(id_)
                    # Read only after the deadline (this process looked late): a late answer, ignored (PROTOCOL.md 6).
                    late = read_at >= deadline + grace_ms / 1000
                    results[id_] = (
                        Outcome(False, code=LOCAL_TIMEOUT, message="answer read after the deadline", local=True)
                        if late
                        else outcome
                    )
                elif id_ not in self._pending:
                    results[id_] = Outcome(False, code="internal", message=f"no call with id {id_}", local=True)
                elif now >= self._pending[id_] + grace_ms / 1000:
                    self.cancel(id_)
                    results[id_] = Outcome(False, code=LOCAL_TIMEOUT, message="no answer before the deadline", local=True)
                else:
                    waiting.append(self._pending[id_] + grace_ms / 1000)
            if not waiting:
                return results
            self.poll((min(waiting) - now) * 1000)

    def call(self, target, body, timeout_ms=10_000, headers=None, grace_ms=0):
        """One call; returns the reply body or raises ZactorError."""
        id_ = self.request(target, body, timeout_ms, headers)
        return self.wait([id_], grace_ms)[id_].unwrap()

    def call_many(self, calls, timeout_ms=10_000):
        """Sends every (target, body) call in one batch frame; returns their Outcomes in order."""
        requests = [self.request_envelope(target, body, timeout_ms) for target, body in calls]
        if self.refused is not None:
            for id_, _ in requests:
                self._complete(id_, self.refused)
        elif requests:
            self.send(*(envelope for _, envelope in requests))
        outcomes = self.wait([id_ for id_, _ in requests])
        return [outcomes[id_] for id_, _ in requests]

    def ping(self, timeout_ms=2000):
        """PING the node; returns the load map of its PONG (e.g. {"inflight": 0})."""
        seq = int.from_bytes(os.urandom(3), "big")
        self.send([PROTOCOL_VERSION, PING, seq, {}])
        deadline = time.monotonic() + timeout_ms / 1000
        while seq not in self._pongs:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ZactorError("unavailable", f"no PONG within {timeout_ms} ms", local=True)
            self.poll(remaining * 1000)
        return self._pongs.pop(seq)

    def close(self):
        self.socket.close(linger=0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
