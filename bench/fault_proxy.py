"""A TCP proxy between app servers (or a test's copy) and PostgreSQL that cuts connections on cue: the fault of a
network that fails as a COMMIT is under way. It reads PostgreSQL's wire protocol just far enough to see a COMMIT go
by (a simple-query message holding it), then, by the cue set:

- `after_commit`: passes the COMMIT on, lets PostgreSQL answer, and drops the answer and the connection: the write
  landed, and the client was not told;
- `before_commit`: drops the connection instead of passing the COMMIT on: the write did not land;
- `cut_all`: drops every connection at once (a network cut), whatever is under way.

Each cue is spent by the first COMMIT it meets; `cuts` counts what was done."""

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path


def _commit_in(data: bytes) -> bool:
    """Whether a chunk the client sent holds a simple-query message whose text is COMMIT."""
    at = data.find(b"Q")
    while at != -1:
        if data[at + 5 : at + 12].upper() == b"COMMIT\x00" or data[at + 5 : at + 11].upper() == b"COMMIT":
            return True
        at = data.find(b"Q", at + 1)
    return False


@dataclass
class FaultProxy:
    """Listens on 127.0.0.1:`port` and forwards to PostgreSQL's Unix socket in `socket_dir` (port `pg_port`), or
    to `target` (host, port)."""

    socket_dir: Path | None = None
    pg_port: int = 5432
    target: tuple[str, int] | None = None
    cue: str = ""  # "", "after_commit", "before_commit"
    cuts: dict[str, int] = field(default_factory=lambda: {"after_commit": 0, "before_commit": 0, "cut_all": 0})
    _server: socket.socket | None = None
    _pairs: list[tuple[socket.socket, socket.socket]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _doomed: set[int] = field(default_factory=set)  # clients whose next answer is dropped, with their connection
    port: int = 0

    def start(self) -> "FaultProxy":
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()
        return self

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.close()
        self.cut_all(count=False)

    def cut_all(self, count: bool = True) -> None:
        """Drop every connection now."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
        if count:
            self.cuts["cut_all"] += 1

    def _upstream(self) -> socket.socket:
        if self.target is not None:
            return socket.create_connection(self.target, timeout=10)
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(Path(str(self.socket_dir)) / f".s.PGSQL.{self.pg_port}"))
        return s

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = self._upstream()
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._client_to_server, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """PostgreSQL's answers to the client; a doomed client's next answer (its COMMIT's) is dropped with it."""
        try:
            while data := source.recv(65536):
                if id(sink) in self._doomed:
                    self._doomed.discard(id(sink))
                    break
                sink.sendall(data)
        except OSError:
            pass
        self._close(source, sink)

    def _client_to_server(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                cue = self.cue
                if cue and _commit_in(data):
                    self.cue = ""
                    self.cuts[cue] += 1
                    if cue == "after_commit":  # PostgreSQL takes the COMMIT; its answer never reaches the client
                        self._doomed.add(id(client))
                        upstream.sendall(data)
                        return
                    self._close(client, upstream)  # before_commit: the COMMIT never reaches PostgreSQL
                    return
                upstream.sendall(data)
        except OSError:
            pass
        self._close(client, upstream)

    def _close(self, *sockets: socket.socket) -> None:
        for s in sockets:  # shut down first: a close alone leaves a recv blocked in the other thread, and the peer
            with contextlib.suppress(OSError):  # none the wiser
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
