"""A call the server has not read yet holds at most --request-window-bytes of its request in gRPC core.

The test speaks HTTP/2 itself (h2), so it sees the flow-control windows the server grants: while the only
gRPC thread is held, a 1,024-link PredictBandwidth request (533 KB) may send only its window; once the call
is read the rest flows and the call is answered. With gRPC's own windows (`--request-window-bytes 0`) BDP
probing let the whole request in while the call waited, which is what made peak RSS grow with the callers.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events

from server.settings import Settings
from tests.server.helpers import build_request, gated_server, random_inputs

RPC = "PredictBandwidth"
QUIET_S = 1.0  # no frame and no window for this long: the server grants nothing more for now


class Http2Call:
    """One gRPC call made over a raw HTTP/2 connection, sending as much of its body as the windows allow."""

    def __init__(self, port: int, method: str, message: bytes) -> None:
        self.body = b"\0" + struct.pack(">I", len(message)) + message  # gRPC framing: not compressed, length
        self.sent = 0
        self.trailers: dict[str, str] | None = None
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.stream = self.conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", method), (":authority", "127.0.0.1")]
        self.conn.send_headers(self.stream, [*headers, ("content-type", "application/grpc"), ("te", "trailers")])
        self.sock.sendall(self.conn.data_to_send())

    def pump(self, until_answered: bool = False, give_up_s: float = 20.0) -> None:
        """Send what the windows allow and answer the server's frames (h2 acks its pings and settings).

        Returns once nothing moved for QUIET_S (or, `until_answered`, once the call's trailers came).
        """
        self.sock.settimeout(0.05)
        last_progress, started = time.monotonic(), time.monotonic()
        while self.trailers is None and time.monotonic() - started < give_up_s:
            if not until_answered and time.monotonic() - last_progress > QUIET_S:
                return
            window = min(self.conn.local_flow_control_window(self.stream), self.conn.max_outbound_frame_size)
            if self.sent < len(self.body) and window > 0:
                chunk = self.body[self.sent : self.sent + window]
                self.sent += len(chunk)
                self.conn.send_data(self.stream, chunk, end_stream=self.sent == len(self.body))
                last_progress = time.monotonic()
            self.sock.sendall(self.conn.data_to_send())
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            assert data, "the server closed the connection"
            for event in self.conn.receive_data(data):
                last_progress = time.monotonic()
                if isinstance(event, h2.events.TrailersReceived):
                    self.trailers = dict(event.headers)  # type: ignore[arg-type]
                assert not isinstance(event, h2.events.StreamReset), f"stream reset: {event.error_code}"
            self.sock.sendall(self.conn.data_to_send())

    def close(self) -> None:
        self.sock.close()


def test_a_call_waiting_for_a_thread_holds_only_its_window_of_request_bytes(model_dir: Path) -> None:
    window = Settings().request_window_bytes
    with gated_server(model_dir) as (running, release, entered):
        held = getattr(running.stub, RPC).future(build_request(RPC, random_inputs(RPC, 1)), timeout=30)
        assert entered.wait(10)  # the only gRPC thread is taken: the next call waits unread
        message = build_request(RPC, random_inputs(RPC, 1024)).SerializeToString()
        call = Http2Call(running.app.grpc_port, f"/dwcp.inference.v1.InferenceService/{RPC}", message)
        try:
            call.pump()
            assert len(call.body) > 30 * window
            assert call.sent == window, f"{call.sent} bytes of an unread call let in; the window is {window}"
            release.set()
            call.pump(until_answered=True)  # read now: gRPC opens the window for the rest of the message
            assert call.sent == len(call.body)
            assert call.trailers is not None and call.trailers.get("grpc-status") == "0", call.trailers
        finally:
            call.close()
        assert len(held.result().predictions) == 1
