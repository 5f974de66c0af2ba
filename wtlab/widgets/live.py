"""Live: connect to a WebTransport server, run a bulk transfer, watch the window as it runs.

::

    from wtlab.widgets import LiveWidget
    live = LiveWidget()                      # empty URL: wtlab's embedded server on 127.0.0.1
    live                                     # press Connect (or: task = live.connect())
    live.trace()                             # the recorded session, one row per event

What a user may rely on:

* Connect runs the session as an asyncio task on the running loop (the kernel's): the
  kernel never blocks. A second task redraws the plots from the recorder every
  ``tick_s`` wall seconds while the session runs (less often when a redraw takes longer
  than a tenth of that: the session shares the loop), and once more at its end.
* With an empty URL the widget starts ``wtlab.serve(port=0)`` on 127.0.0.1 for the
  session (route ``/echo`` or ``/sink``) and stops it afterwards. With a URL, give the
  server certificate's SHA-256 for a self-signed certificate (else CA verification).
* The session opens one bidirectional stream and writes ``size_mb`` megabytes (or until
  ``max s`` wall seconds pass), then FIN. On ``/echo`` it reads the echo back and
  counts it; on ``/sink`` it reads the server's JSON report (bytes the server received);
  on any other path it reads whatever the server answers until FIN.
* The recording is the client's (the sending end of the upload), so it can be replayed
  with another controller: ``ReplayWidget(live.recorder)``. On ``/sink`` the recorder's
  ``meta["workload"]`` names the upload exactly; after ``/echo`` replay treats the
  session as an upload of the acknowledged bytes (the echoed half is not replayed).
* Disconnect cancels the session (the session is closed, the embedded server stopped);
  the trace recorded so far stays in ``recorder``. ``summary`` holds the outcome.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from typing import Any
from urllib.parse import urlparse

import ipywidgets as W
import pandas as pd

import wtlab.cc
from wtlab.errors import ConfigError, WtlabError
from wtlab.trace.metrics import run_metrics
from wtlab.widgets.trace_view import TraceView, columns_of_records

CHUNK_BYTES = 64 * 1024
REDRAW_SHARE_INV = 10  # wait at least 10x a redraw's duration before the next one
_BLOCK = bytes(range(256)) * (CHUNK_BYTES // 256)


class LiveWidget:
    """``LiveWidget(url=None, cc="cubic")`` then display it; Connect / Disconnect.

    From code: ``connect()`` returns the session task (await it, bounded, e.g. with
    ``asyncio.wait_for``), ``disconnect()`` stops it, ``trace()`` is the DataFrame so
    far, ``summary`` the outcome (bytes sent / received, duration, goodput, error).
    """

    def __init__(self, url: str | None = None, *, cert_sha256: str | None = None,
                 cc: str = "cubic", route: str = "/echo", size_mb: float = 20.0,
                 max_duration_s: float = 10.0, tick_s: float = 0.5,
                 connect_timeout_s: float = 10.0) -> None:
        if route not in ("/echo", "/sink"):
            raise ConfigError(f"route={route!r}: the embedded server offers '/echo' or '/sink'")
        if not tick_s > 0:
            raise ConfigError(f"tick_s={tick_s!r} must be > 0 (seconds between redraws)")
        self.tick_s = float(tick_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.url = W.Text(value=url or "", description="URL", layout=W.Layout(width="460px"),
                          placeholder="empty: wtlab's embedded server on 127.0.0.1")
        self.cert = W.Text(value=cert_sha256 or "", description="cert sha256",
                           placeholder="hex SHA-256 of a self-signed certificate",
                           layout=W.Layout(width="460px"))
        self.route = W.Dropdown(options=["/echo", "/sink"], value=route, description="route",
                                tooltip="route of the embedded server (empty URL)")
        names = wtlab.cc.names()
        self.algorithm = W.Dropdown(options=names, value=cc if cc in names else names[0],
                                    description="controller")
        # a text box, not a log slider: the browser snaps slider values to the slider's
        # grid (500 MB would come back as 501.19)
        self.size = W.BoundedFloatText(value=size_mb, min=0.001, max=1e6, description="size MB",
                                       layout=W.Layout(width="200px"))
        self.duration = W.FloatSlider(value=max_duration_s, min=1, max=120, step=1,
                                      description="max s")
        self.connect_button = W.Button(description="Connect", icon="plug", button_style="success")
        self.disconnect_button = W.Button(description="Disconnect", icon="stop", disabled=True)
        self.status = W.HTML("not connected")
        self.view = TraceView()
        self.figure = self.view.figure
        self.recorder: Any = None
        self.session: Any = None
        self.server: Any = None
        self.summary: dict[str, Any] = {}
        self.redraws = 0
        self.redraw_events: list[int] = []  # recorder size at each redraw (a log for tests)
        self.task: asyncio.Task | None = None
        self._ticker: asyncio.Task | None = None
        self._t_start = 0.0
        self._sent = 0
        self._received = 0
        self.connect_button.on_click(lambda _: self._guard(self.connect))
        self.disconnect_button.on_click(lambda _: self.disconnect())
        self.widget = W.VBox([
            W.HBox([self.url, self.route]),
            W.HBox([self.cert, self.algorithm]),
            W.HBox([self.size, self.duration, self.connect_button, self.disconnect_button]),
            self.status, self.figure,
        ])

    # ---------------------------------------------------------------- control
    @property
    def running(self) -> bool:
        """Whether a session is running."""
        return self.task is not None and not self.task.done()

    def connect(self) -> asyncio.Task:
        """Start the session on the running event loop; returns its task."""
        if self.running:
            return self.task  # type: ignore[return-value]
        url = self.url.value.strip()
        if url:
            from wtlab.transport.driver import check_url

            check_url(url)  # InvalidURL now, before any task or packet
        loop = _loop()
        from wtlab.trace.recorder import Recorder

        self.recorder = Recorder(meta={"cc": self.algorithm.value, "source": "LiveWidget",
                                       "url": url or f"embedded{self.route.value}"})
        self.summary = {}
        self.redraws, self.redraw_events = 0, []
        self._sent = self._received = 0
        self.connect_button.disabled = True
        self.disconnect_button.disabled = False
        self.status.value = "connecting…"
        self.task = loop.create_task(self._session(url))
        self._ticker = loop.create_task(self._tick_loop(self.task))
        self.task.add_done_callback(self._finished)
        return self.task

    def disconnect(self) -> None:
        """Stop the session (if running); the trace so far stays in ``recorder``."""
        if self.running:
            self.task.cancel()  # type: ignore[union-attr]

    def trace(self) -> pd.DataFrame:
        """The trace recorded so far (an empty one before the first session)."""
        if self.recorder is None:
            from wtlab.trace.recorder import Recorder

            return Recorder().to_pandas()
        return self.recorder.to_pandas()

    # ---------------------------------------------------------------- session
    async def _session(self, url: str) -> dict[str, Any]:
        import wtlab

        cc = self.algorithm.value
        size = int(self.size.value * 1e6)
        budget_s = float(self.duration.value)
        hashes = [self.cert.value.strip()] if self.cert.value.strip() else None
        try:
            if not url:
                self.server = await wtlab.serve("127.0.0.1", 0)
                url = self.server.url(self.route.value)
                hashes = [self.server.cert_sha256]
            mode = _mode(url)
            async with wtlab.connect(url, cert_hashes=hashes, congestion_control=cc,
                                     recorder=self.recorder,
                                     timeout=self.connect_timeout_s) as session:
                self.session = session
                self._t_start = time.monotonic()
                self.status.value = f"connected to {html.escape(url)} ({cc})"
                stream = await session.open_bidi()
                reader = asyncio.ensure_future(self._read(stream))
                try:
                    deadline = self._t_start + budget_s
                    while self._sent < size and time.monotonic() < deadline:
                        n = min(CHUNK_BYTES, size - self._sent)
                        await stream.write(_BLOCK[:n])  # waits while the stream is backed up
                        self._sent += n
                    stream.write_eof()
                    # the answer gets the rest of the budget, plus a grace for the tail
                    answer = await asyncio.wait_for(
                        asyncio.shield(reader),
                        timeout=max(0.0, deadline - time.monotonic()) + 10.0)
                finally:
                    reader.cancel()
                elapsed = time.monotonic() - self._t_start
                if mode == "sink":  # exactly wtlab's Bulk upload: a ReplayWidget can rerun it
                    from wtlab.lab.replay import record_workload
                    from wtlab.transport.workloads import Bulk

                    record_workload(self.recorder, Bulk(size_bytes=max(1, self._sent),
                                                        direction="up"))
                # goodput as everywhere (wtlab.trace.metrics): the sending end's acknowledged
                # payload; this end sends the bulk of the data only in "sink" mode
                goodput = (run_metrics(self.recorder.to_pandas(), to_s=None)["goodput_bps"]
                           if mode == "sink" else float("nan"))
                self.summary = {
                    "url": url, "cc": cc, "mode": mode, "sent_bytes": self._sent,
                    "received_bytes": self._received, "duration_s": elapsed,
                    "goodput_bps": goodput,
                    **_answer_fields(mode, answer),
                    **{k: session.stats().get(k) for k in ("srtt_s", "cwnd", "controller")},
                }
                return self.summary
        finally:
            self.session = None
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()
                self.server = None

    async def _read(self, stream: Any) -> bytes:
        """Read the answer to FIN; keep at most 64 KB of it (an echo is only counted)."""
        head = bytearray()
        while chunk := await stream.read(CHUNK_BYTES):
            self._received += len(chunk)
            if len(head) < CHUNK_BYTES:
                head += chunk[:CHUNK_BYTES - len(head)]
        return bytes(head)

    # ----------------------------------------------------------------- drawing
    async def _tick_loop(self, task: asyncio.Task) -> None:
        max_ticks = int((self.duration.value + self.connect_timeout_s + 30) / self.tick_s) + 1
        for _ in range(max_ticks):  # bounded: stops with the session at the latest
            if task.done():
                return
            t = time.perf_counter()
            self.redraw()
            # The session shares this loop: keep redraws under ~10 % of its time, however
            # long the recording grows (a 1M-event redraw takes ~0.1-0.2 s).
            wait_s = max(self.tick_s, REDRAW_SHARE_INV * (time.perf_counter() - t))
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=wait_s)
            except TimeoutError:
                continue
            except BaseException:  # the session failed or was cancelled: _finished reports it
                return

    def redraw(self) -> None:
        """Redraw the plots from the recorder (one batched figure update)."""
        if self.recorder is None:
            return
        # straight from the packed records: no DataFrame per tick (to_pandas of 1M events
        # takes about a second; this takes a tenth of that)
        rec = self.recorder.records()
        cols = columns_of_records(rec, self.recorder.kinds)
        self.view.set_traces([(str(self.algorithm.value), cols, "solid")])
        self.redraws += 1
        self.redraw_events.append(len(rec))
        if self.running and self.session is not None:
            st = self.session.stats()
            elapsed = time.monotonic() - self._t_start
            cwnd = st.get("cwnd")
            srtt = st.get("srtt_s")
            self.status.value = (
                f"running {elapsed:.1f} s · sent {self._sent / 1e6:.1f} MB · received "
                f"{self._received / 1e6:.1f} MB · {len(rec):,} events"
                + (f" · cwnd {cwnd / 1e3:.1f} KB" if cwnd else "")
                + (f" · srtt {srtt * 1e3:.2f} ms" if srtt else ""))

    def _finished(self, task: asyncio.Task) -> None:
        self.connect_button.disabled = False
        self.disconnect_button.disabled = True
        if self._ticker is not None:
            self._ticker.cancel()
        self.redraw()
        n = len(self.recorder) if self.recorder is not None else 0
        if task.cancelled():
            self.summary = {"cancelled": True, "sent_bytes": self._sent,
                            "received_bytes": self._received}
            self.status.value = (f"disconnected after {self._sent / 1e6:.1f} MB sent; "
                                 f"{n:,} events recorded")
            return
        exc = task.exception()
        if exc is not None:
            self.summary = {"error": str(exc), "sent_bytes": self._sent,
                            "received_bytes": self._received}
            self.status.value = f"<b>session failed:</b> {html.escape(str(exc))}"
            return
        s = self.summary
        rate = (f" (goodput {s['goodput_bps'] / 1e6:.1f} Mbit/s)"
                if s.get("goodput_bps", float("nan")) == s.get("goodput_bps") else "")
        self.status.value = (f"done: {s['sent_bytes'] / 1e6:.1f} MB in {s['duration_s']:.2f} s"
                             f"{rate} · received {s['received_bytes'] / 1e6:.1f} MB · "
                             f"{n:,} events")

    def _guard(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except WtlabError as exc:
            self.status.value = f"<b>error:</b> {html.escape(str(exc))}"
            return None

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


def _mode(url: str) -> str:
    path = urlparse(url).path.rstrip("/")
    return "echo" if path.endswith("/echo") else "sink" if path.endswith("/sink") else "send"


def _answer_fields(mode: str, answer: bytes) -> dict[str, Any]:
    if mode == "sink":
        try:
            report = json.loads(answer.decode())
        except (UnicodeDecodeError, ValueError):
            return {"server_report": None}
        return {"server_report": report, "server_bytes": report.get("stream_bytes")}
    return {}


def _loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop()
