"""A bounded i-PI socket client: it serves a driver and exits when the server goes away.

i-PI's own client (``i-pi-py_driver``) loops on empty reads forever once the server has
died; this one stops with :class:`ServerGoneError` on end of file, a reset or broken
connection, or when no byte arrives for ``timeout_s`` seconds.

The protocol (i-PI 3.3; native byte order, float64 and int32; 12-byte space-padded
headers): the server sends ``STATUS`` (answered ``NEEDINIT``, ``READY`` or
``HAVEDATA``), ``INIT`` (replica index, length, string; ``batch_size:N`` in the string
switches to batched requests), ``POSDATA`` (cell h with the lattice vectors as columns,
its inverse, the number of atoms, the positions; batched: the number of atoms, then h
and its inverse for each structure, then all positions), ``GETFORCE`` (answered
``FORCEREADY``, the energy, the number of atoms, the forces, the virial, and the extras
string with its length; batched: all energies, the number of atoms, all forces, all
virials, then each extras string) and ``EXIT``. All in atomic units.

Started on its own, ``python -m ase_bodyorder.ipi.client --unix --address NAME
--template init.extxyz ...`` (:func:`main`; the options of ``ase-bodyorder driver``) is
how the MD runner starts its drivers.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from dataclasses import dataclass

import numpy as np

from .._errors import run_reporting_errors
from ..models import DEFAULT_MD_MODEL
from ..settings import ExpansionSettings

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SOCKETS_PREFIX",
    "DEFAULT_TIMEOUT_S",
    "ProtocolError",
    "ServerGoneError",
    "add_arguments",
    "connect",
    "expansion_from_arguments",
    "main",
    "run_driver",
    "run_from_arguments",
    "serve",
]

HEADER_LENGTH = 12
DEFAULT_PORT = 31415
DEFAULT_SOCKETS_PREFIX = "/tmp/ipi_"
#: seconds without any byte from the server before the client gives up
DEFAULT_TIMEOUT_S = 600.0


class ServerGoneError(ConnectionError):
    """The i-PI server closed or reset the connection, or stopped talking."""


class ProtocolError(RuntimeError):
    """The server sent something the i-PI protocol does not allow here."""


def _header(text: str) -> bytes:
    return text.upper().ljust(HEADER_LENGTH).encode()


_STATUS, _INIT, _POSDATA, _GETFORCE, _EXIT = (
    _header(name) for name in ("STATUS", "INIT", "POSDATA", "GETFORCE", "EXIT")
)
_NEEDINIT, _READY, _HAVEDATA, _FORCEREADY = (
    _header(name) for name in ("NEEDINIT", "READY", "HAVEDATA", "FORCEREADY")
)


class _Connection:
    """A socket whose every failure becomes a :class:`ServerGoneError`."""

    def __init__(self, sock: socket.socket, timeout_s: float, where: str):
        self.sock = sock
        self.timeout_s = timeout_s
        self.where = where
        sock.settimeout(timeout_s)

    def recv(self, n_bytes: int) -> bytes:
        buffer = bytearray(n_bytes)
        view = memoryview(buffer)
        received = 0
        while received < n_bytes:
            try:
                count = self.sock.recv_into(view[received:], n_bytes - received)
            except TimeoutError:
                raise ServerGoneError(
                    f"no message from i-PI at {self.where} for {self.timeout_s:g} s"
                ) from None
            except OSError as error:
                raise ServerGoneError(f"connection to i-PI at {self.where} lost: {error}") from None
            if count == 0:
                raise ServerGoneError(f"i-PI at {self.where} closed the connection")
            received += count
        return bytes(buffer)

    def recv_array(self, dtype, count: int) -> np.ndarray:
        dtype = np.dtype(dtype)
        return np.frombuffer(self.recv(dtype.itemsize * count), dtype=dtype).copy()

    def recv_int(self) -> int:
        return int(self.recv_array(np.int32, 1)[0])

    def send(self, *parts) -> None:
        data = b"".join(
            p if isinstance(p, bytes) else np.ascontiguousarray(p).tobytes() for p in parts
        )
        try:
            self.sock.sendall(data)
        except OSError as error:
            raise ServerGoneError(f"connection to i-PI at {self.where} lost: {error}") from None


@dataclass
class _State:
    initialized: bool = False
    batch_size: int = 1
    n_atoms: int = 0
    results: list | None = None
    steps: int = 0


def _batch_size(init_string: str) -> int:
    """The ``batch_size:N`` token i-PI appends to INIT when batching (1 if absent)."""
    for token in init_string.split(","):
        key, sep, value = token.partition(":")
        if sep and key.strip() == "batch_size":
            return int(value)
    return 1


def _on_status(conn: _Connection, state: _State) -> None:
    if not state.initialized:
        conn.send(_NEEDINIT)
    elif state.results is not None:
        conn.send(_HAVEDATA)
    else:
        conn.send(_READY)


def _on_init(conn: _Connection, state: _State) -> None:
    conn.recv_int()  # replica index: unused
    length = conn.recv_int()
    state.batch_size = _batch_size(conn.recv(length).decode("utf-8", errors="replace"))
    state.initialized = True


def _on_posdata(conn: _Connection, state: _State, driver) -> None:
    if state.batch_size == 1:
        cell = conn.recv_array(np.float64, 9).reshape(3, 3)
        conn.recv_array(np.float64, 9)  # inverse cell: unused
        n_atoms = conn.recv_int()
        positions = conn.recv_array(np.float64, 3 * n_atoms).reshape(n_atoms, 3)
        state.results = [driver(cell, positions)]
    else:
        batch = state.batch_size
        n_atoms = conn.recv_int()
        cells = conn.recv_array(np.float64, 18 * batch).reshape(batch, 2, 3, 3)[:, 0]
        positions = conn.recv_array(np.float64, 3 * n_atoms * batch).reshape(batch, n_atoms, 3)
        state.results = list(driver(list(cells), list(positions)))
    state.n_atoms = n_atoms
    state.steps += 1


def _on_getforce(conn: _Connection, state: _State) -> None:
    if state.results is None:
        raise ProtocolError("i-PI asked for forces before sending positions")
    n = state.n_atoms
    pots, forces, virials, extras = [], [], [], []
    for pot, force, virial, extra in state.results:
        pots.append(float(pot))
        forces.append(np.asarray(force, dtype=np.float64).reshape(3 * n))
        virials.append(np.asarray(virial, dtype=np.float64).reshape(9))
        extras.append((extra or "").encode("utf-8"))
    tail = [part for e in extras for part in (np.int32(len(e)), e)]
    conn.send(
        _FORCEREADY,
        np.array(pots, dtype=np.float64),
        np.int32(n),
        np.concatenate(forces),
        np.concatenate(virials),
        *tail,
    )
    state.results = None


def serve(driver, conn: _Connection) -> int:
    """Answer i-PI on ``conn`` with ``driver(cell, pos)`` until EXIT; return the steps served.

    ``driver`` is any i-PI driver object (``Dummy_driver`` subclass): called with one
    structure, or with lists in batched mode. Raises :class:`ServerGoneError` when the
    server goes away, :class:`ProtocolError` on an unexpected message.
    """
    state = _State()
    while True:
        header = conn.recv(HEADER_LENGTH)
        if header == _STATUS:
            _on_status(conn, state)
        elif header == _INIT:
            _on_init(conn, state)
        elif header == _POSDATA:
            _on_posdata(conn, state, driver)
        elif header == _GETFORCE:
            _on_getforce(conn, state)
        elif header == _EXIT:
            return state.steps
        else:
            raise ProtocolError(f"unexpected message {header!r} from i-PI at {conn.where}")


def connect(
    address: str,
    *,
    unix: bool = True,
    port: int = DEFAULT_PORT,
    sockets_prefix: str = DEFAULT_SOCKETS_PREFIX,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> _Connection:
    """Connect to i-PI, retrying for up to ``timeout_s`` seconds while it starts."""
    where = f"{sockets_prefix}{address}" if unix else f"{address}:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        family = socket.AF_UNIX if unix else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(min(timeout_s, 10.0))
        try:
            sock.connect(where if unix else (address, port))
        except OSError as error:
            sock.close()
            if time.monotonic() >= deadline:
                raise ServerGoneError(
                    f"could not connect to i-PI at {where} within {timeout_s:g} s: {error}"
                ) from None
            time.sleep(0.1)
            continue
        if not unix:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(sock, timeout_s, where)


def run_driver(
    address: str,
    *,
    unix: bool = True,
    port: int = DEFAULT_PORT,
    sockets_prefix: str = DEFAULT_SOCKETS_PREFIX,
    model: str,
    order: int = 3,
    stride: int = 1,
    r_mbe: float | None = None,
    template,
    threads: int = 1,
    first_call: int = 0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    log=None,
    sample_atoms: int | None = None,
    sample_seed: int | None = None,
    settings: ExpansionSettings | None = None,
) -> int:
    """Serve i-PI with a :class:`~ase_bodyorder.ipi.driver.BodyOrderDriver`; return steps.

    ``address``: the UNIX socket name (the path is ``sockets_prefix + address``) or the
    host name with ``unix=False`` and ``port``. ``model``, ``order``, ``stride``,
    ``r_mbe`` (Angstrom), ``template``, ``threads``, ``first_call``, ``sample_atoms``,
    ``sample_seed``: the driver's parameters; ``settings``: the expansion as one
    :class:`~ase_bodyorder.ExpansionSettings`, which replaces ``order`` .. ``sample_seed``
    (:class:`~ase_bodyorder.ipi.driver.BodyOrderDriver`). Waits up to ``timeout_s`` seconds for the
    server to accept the connection. Returns normally when i-PI sends EXIT; raises
    :class:`ServerGoneError` when the server goes away: at once on end of file, reset or
    broken pipe, and after ``timeout_s`` seconds without a byte from it. ``log``: a text
    stream for a line at start and at the end (None: silent).
    """
    from .driver import BodyOrderDriver  # i-PI: the driver's base class

    driver = BodyOrderDriver(
        template,
        model=model,
        order=order,
        stride=stride,
        r_mbe=r_mbe,
        threads=threads,
        first_call=first_call,
        sample_atoms=sample_atoms,
        sample_seed=sample_seed,
        settings=settings,
    )
    conn = connect(
        address,
        unix=unix,
        port=port,
        sockets_prefix=sockets_prefix,
        timeout_s=timeout_s,
    )
    expansion = driver.settings
    _say(
        log,
        f"connected to i-PI at {conn.where}: model {model}, order {expansion.order}, "
        f"stride {expansion.stride}",
    )
    try:
        steps = serve(driver, conn)
    finally:
        conn.sock.close()
    _say(log, f"i-PI sent EXIT after {steps} steps")
    return steps


def _say(stream, text: str) -> None:
    if stream is not None:
        print(f"ase-bodyorder driver: {text}", file=stream, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The driver's options (those of ``ase-bodyorder driver``) on ``parser``; the torch
    threads are an option of the caller's (``--threads``). The expansion's options are
    those of ``md``; ``--settings`` gives it as one JSON object
    (:class:`~ase_bodyorder.ExpansionSettings`, as the MD runner passes it), whose fields
    the other options replace where given."""
    default_model = DEFAULT_MD_MODEL
    parser.add_argument("--address", required=True, help="UNIX socket name, or host name")
    parser.add_argument("--unix", action="store_true", help="UNIX socket (default: TCP)")
    parser.add_argument("--port", type=int, default=None, help="TCP port")
    parser.add_argument("--sockets-prefix", default=None, help="UNIX socket path prefix")
    parser.add_argument(
        "--model",
        default=default_model,
        help=f"model: a registered name, a plug-in or a .model/.pt file (default {default_model})",
    )
    parser.add_argument(
        "--settings",
        default=None,
        help="the expansion as JSON of ExpansionSettings (order, stride, r_mbe, ...)",
    )
    parser.add_argument("--order", type=int, default=None, help="truncation order K (default 3)")
    parser.add_argument(
        "--stride", type=int, default=None, help="expand every S-th step (default 1)"
    )
    parser.add_argument("--r-mbe", type=float, default=None, help="expansion radius, Angstrom")
    parser.add_argument("--template", required=True, help="structure file giving the species")
    parser.add_argument("--first-call", type=int, default=0, help="first value of the step counter")
    parser.add_argument(
        "--sample-atoms", type=int, default=None, help="expand M random atoms per structure"
    )
    parser.add_argument(
        "--seed",
        "--sample-seed",  # its name before every command called it --seed
        dest="seed",
        type=int,
        default=None,
        help="seed of the atom sampling",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up after this many silent seconds (default: the client's 600 s)",
    )


def expansion_from_arguments(args: argparse.Namespace) -> ExpansionSettings:
    """The expansion of the options of :func:`add_arguments`: ``--settings`` (default:
    order 3, stride 1), with ``--order``, ``--stride``, ``--r-mbe``, ``--sample-atoms`` and
    ``--seed`` in place of its fields where given."""
    if args.settings is None:
        base = ExpansionSettings(order=3)
    else:
        base = ExpansionSettings.from_dict(json.loads(args.settings))
    given = {
        "order": args.order,
        "stride": args.stride,
        "r_mbe": args.r_mbe,
        "sample_atoms": args.sample_atoms,
        "seed": args.seed,
    }
    return base.replace(**{k: v for k, v in given.items() if v is not None})


def run_from_arguments(args: argparse.Namespace, log=None) -> int:
    """:func:`run_driver` with the options of :func:`add_arguments` and ``args.threads``;
    return the number of steps served."""
    options = {}
    if args.port is not None:
        options["port"] = args.port
    if args.sockets_prefix is not None:
        options["sockets_prefix"] = args.sockets_prefix
    if args.timeout is not None:
        options["timeout_s"] = args.timeout
    return run_driver(
        args.address,
        unix=args.unix,
        model=args.model,
        template=args.template,
        threads=args.threads,
        first_call=args.first_call,
        settings=expansion_from_arguments(args),
        log=log,
        **options,
    )


def main(argv=None) -> int:
    """``python -m ase_bodyorder.ipi.client``: serve i-PI until it sends EXIT (status 0);
    errors, a server that went away included, are one line on stderr (status 2)."""
    parser = argparse.ArgumentParser(
        prog="python -m ase_bodyorder.ipi.client",
        description="i-PI driver with body-order extras (socket client)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_reporting_errors(
        lambda: run_from_arguments(args, log=sys.stderr), lambda: (ProtocolError,)
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
