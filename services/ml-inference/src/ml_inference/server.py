"""Run the app under uvicorn (uvloop + httptools), with a shared SO_REUSEPORT port and SIGTERM drain.

The shared port is bound at start (so a clash shows at once) but listened on only once the model
is loaded: the kernel balances connections over the sockets that listen, so a replica that is
still loading gets none of them instead of answering its share with 503.

Connections are guarded by protocol.py (read timeout with 408, lingering close after a 413) and
capped at `max_connections` (a connection opened beyond it gets a 503); idle keep-alive connections close
after `keep_alive_timeout_seconds`.

Drain, in order, from SIGTERM:
  1. /ready turns 503 and the shared listener closes at once (the kernel sends new connections to
     the other replicas);
  2. settle: for `settle_seconds` the process keeps listening and answering, with
     `Connection: close` so keep-alive clients move away, while load balancers (kube-proxy, the
     endpoints controller) stop sending it traffic;
  3. drain: it keeps answering until no whole request is being served, or `drain_timeout_seconds`
     have passed; a request still arriving is not waited for;
  4. uvicorn stops listening; requests still arriving get a 503 and their connections close;
     what is still being served gets what is left of the drain timeout; exit 0.
So the process exits at most settle + drain seconds after SIGTERM. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import time
from types import FrameType

import uvicorn

from ml_inference.app import create_app
from ml_inference.protocol import guarded_protocol
from ml_inference.settings import Settings
from ml_inference.state import ServiceState

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.05
BACKLOG = 2048


class DrainingServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        service: ServiceState,
        shared: socket.socket | None,
        *,
        settle_seconds: float,
        drain_seconds: float,
    ) -> None:
        super().__init__(config)
        self.service = service
        self.settle_seconds = settle_seconds
        self.drain_seconds = drain_seconds
        self.shared = shared
        self._drain: asyncio.Task[None] | None = None
        self._joining: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.shared is not None:
            self._joining = self._loop.create_task(self._join_shared_port_when_ready())

    async def _join_shared_port_when_ready(self) -> None:
        assert self.shared is not None and self._loop is not None
        while not self.service.ready:
            if self.service.draining or self.service.load_error is not None:
                return
            await asyncio.sleep(POLL_SECONDS)
        config = self.config

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            # The same protocol uvicorn gives its own listeners (see uvicorn.Server.startup).
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
            )

        # create_server calls listen(): from here on the kernel sends this replica its share.
        listener = await self._loop.create_server(create_protocol, sock=self.shared, backlog=config.backlog)
        self.servers.append(listener)
        logger.info("joined shared port", extra={"shared_port": self.shared.getsockname()[1]})

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in _captured_signals: uvicorn would re-raise it at exit and the status would
        # be 128+15 instead of the 0 that a completed drain deserves.
        if self._drain is not None or self._loop is None:
            self.should_exit = self.force_exit = True
            return
        self._drain = self._loop.create_task(self._drain_then_exit(signal.Signals(sig).name))

    async def _drain_then_exit(self, signal_name: str) -> None:
        settle_until = time.monotonic() + self.settle_seconds
        deadline = settle_until + self.drain_seconds
        self.service.draining = True
        if self._joining is not None:
            # Never close the shared socket under a listener that is being opened: let it finish (or
            # give up, seeing `draining`) first.
            await asyncio.wait([self._joining])
        self._close_shared_listener()
        logger.info("draining", extra={"signal": signal_name, "in_flight": self.service.in_flight})
        while time.monotonic() < settle_until or (time.monotonic() < deadline and self._serving()):
            await asyncio.sleep(POLL_SECONDS)
        # uvicorn annotates this int but only hands it to asyncio as a timeout, where seconds are floats.
        self.config.timeout_graceful_shutdown = max(  # type: ignore[assignment]
            deadline - time.monotonic(), POLL_SECONDS
        )
        self.should_exit = True

    def _serving(self) -> bool:
        """Whether any connection has a whole request being answered (one still arriving does not count)."""
        return any(getattr(connection, "serving", True) for connection in self.server_state.connections)

    def _close_shared_listener(self) -> None:
        if self.shared is None:
            return
        for listener in self.servers:
            if any(sock.fileno() == self.shared.fileno() for sock in listener.sockets):
                listener.close()
        self.shared.close()


#: Exit status when the replica's own port is already taken (sysexits' EX_TEMPFAIL): whoever
#: chose the port (the local reconciler) picks another rather than counting a crash.
EXIT_PORT_IN_USE = 75


class PortInUseError(Exception):
    """The port to listen on is held by another program."""


def bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings) -> None:
    app = create_app(settings)
    try:
        sockets = [bind(settings.host, settings.port)]
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise PortInUseError(
            f"port {settings.port} on {settings.host} is in use by another program"
        ) from None
    shared = None
    if settings.shared_port is not None:
        # Bound now, listened on by DrainingServer once the model is loaded.
        shared = bind("127.0.0.1", settings.shared_port, reuse_port=True, listen=False)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        backlog=BACKLOG,
        timeout_graceful_shutdown=settings.drain_timeout_seconds,  # type: ignore[arg-type]
        http=guarded_protocol(settings.body_timeout_seconds, settings.max_connections, app.state.at_capacity),
        timeout_keep_alive=settings.keep_alive_timeout_seconds,  # type: ignore[arg-type]
    )
    logger.info(
        "listening",
        extra={
            "host": settings.host,
            "port": sockets[0].getsockname()[1],
            "shared_port": settings.shared_port,
            "model_dir": str(settings.model_dir),
        },
    )
    DrainingServer(
        config,
        app.state.service,
        shared,
        settle_seconds=settings.settle_seconds,
        drain_seconds=settings.drain_timeout_seconds,
    ).run(sockets=sockets)
