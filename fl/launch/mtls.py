"""Mutual TLS for Flower 1.42 — the ONLY module that reaches into Flower's internals.

Flower 1.42 serves the Fleet, Control and Runtime APIs of a SuperLink on one HTTP port
(uvicorn) with server-side TLS only, and its HTTP clients (SuperNode, SuperExec, ServerApp
process, ``flwr`` CLI) only verify the server. This module adds the other direction:

* server: ``run_superlink`` runs Flower's own ``flower-superlink`` command (argument parsing,
  checks, state, lifespan) but replaces the one function that starts uvicorn,
  ``flower_superlink._run_superlink_http_api``, with ``fl.launch.mtls_server.serve_mtls``:
  the TLS handshake REQUIRES a client certificate signed by the stack CA and not on
  ``ca.crl``; every refused handshake is logged (peer address + reason); the material is
  checked at start-up and reloaded when the files change.
* roles: a node certificate reaches only the Fleet API (``/v1/fleet/``) and ``/health``;
  the Control and Runtime APIs answer 403 unless the certificate's CN is an operator
  (``operator`` by default) — a node cannot start or stop runs or pose as the ServerApp.
* clients: ``install_client_identity`` wraps ``ProtobufClient.__init__`` (the base of
  Flower's Fleet, Runtime and Control HTTP clients) so an ``https://`` client presents our
  certificate and key. The SuperLink starts ``flower-superexec``, which starts
  ``flwr-serverapp``; both talk to the SuperLink's port, so ``run_superlink`` puts shims for
  these two commands first on ``PATH`` (in ``<state_dir>/mtls-bin``): each runs
  ``python -m fl.launch.mtls_cli exec-flower <command>``, which installs the operator
  identity (``SM_MTLS_CLIENT_TLS_DIR``) and then runs Flower's console-script entry point.

What ``tests/test_mtls_seam.py`` pins (it fails loudly when Flower changes them):
``flwr.superlink.cli.flower_superlink.{flower_superlink, _run_superlink_http_api,
SuperLinkLifespan}``, ``flwr.superlink.main.create_app``, the config fields ``host``,
``port``, ``ssl_*file``, ``flwr.supercore.protobuf.client.ProtobufClient.__init__(base_url,
*, verify=...)``, the console scripts ``flower-superexec``/``flwr-serverapp``/``flwr``, and
the ``flower-superlink``/``flower-supernode`` flags used below.

Entry points (blocking; ``TLSMaterialError`` on unusable material, ``ValueError`` on bad
arguments — both with a message meant for the user):

``run_superlink(tls_dir, state_dir, *, port=AGGREGATOR_PORT, host="0.0.0.0",
client_tls_dir=None, operators=("operator",), runtime_dependency_install=False,
extra_args=())``
    ``tls_dir``: the aggregator bundle (``ca.crt tls.crt tls.key ca.crl``);
    ``client_tls_dir``: the operator bundle presented by the SuperExec and ServerApp
    processes (default: ``$SM_OPERATOR_TLS_DIR``, else ``tls_dir/../operator``);
    ``state_dir``: holds ``superlink.db``, ``mtls-bin/`` and (unless ``FLWR_HOME`` is set)
    ``flwr-home/``, where ServerApp processes unpack apps; ``operators``: certificate CNs
    allowed on the Control and Runtime APIs; ``runtime_dependency_install``: let Flower
    ``uv sync`` app dependencies (needs network; off by default).
``run_supernode(tls_dir, superlink, node_config, *, runtime_port=None,
runtime_host="127.0.0.1", isolation="subprocess", max_retries=None, max_wait_time=None)``
    ``tls_dir``: the node bundle; ``superlink``: ``host:port``; ``node_config``: Flower node
    config (e.g. ``{"partition-id": 0, "num-partitions": 5}``); ``runtime_port``: the
    SuperNode's own Runtime API port (plain HTTP on ``runtime_host``) used by its
    SuperExec and ClientApp processes; None picks a free port.
``run_flwr(tls_dir, args)``: the ``flwr`` CLI presenting the operator certificate;
``write_flwr_config(flwr_home, address, ca_file)`` writes the connection it uses
(``FLWR_HOME=flwr_home``), e.g. ``run_flwr(op, ["run", app_dir, "--stream"])``.
``install_client_identity(identity)``: patch this process's Flower clients.

Subprocess forms: ``python -m fl.launch.mtls_cli {superlink,supernode,flwr} --help``
(``superlink_command()``/``supernode_command()`` build the argv).

Ports: a SuperLink opens ONE port (``--port``); Flower's legacy gRPC Fleet/Control servers
(env ``FLWR_INTERNAL_GRPC_FLEET_API``/``…_CONTROL_API``) would bypass mutual TLS and are
removed from the environment; no health server is started. Its SuperExec and ServerApp
processes open none. A SuperNode opens its Runtime API port (``runtime_port``, default a
free one — Flower's default 9094 would collide between nodes on one host); its SuperExec
and ClientApp processes open none. Telemetry and the update check are switched off.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509
from cryptography.x509.oid import NameOID

from certs.layout import OPERATOR
from fl.contract import (
    AGGREGATOR_PORT,
    ENV_OPERATOR_TLS_DIR,
    SUPERLINK_DB_FILE,
    TLS_CA_FILE,
    TLS_CERT_FILE,
    TLS_KEY_FILE,
)
from fl.launch.proc import (
    check_port,
    configure_logging,
    free_port,
    local_address,
    prepend_path,
    python_bin,
    pythonpath_with_our_packages,
    swapped_argv,
    write_python_shims,
)
from fl.launch.tls_material import ClientIdentity, ServerTLS, TLSMaterialError

if TYPE_CHECKING:
    from fl.launch.mtls_server import Policy

__all__ = [
    "ENV_CLIENT_TLS_DIR",
    "ClientIdentity",
    "TLSMaterialError",
    "exec_flower_command",
    "format_node_config",
    "free_port",
    "install_client_identity",
    "role_policy",
    "run_flwr",
    "run_superlink",
    "run_supernode",
    "superlink_command",
    "supernode_command",
    "write_flwr_config",
]

log = logging.getLogger("sovereign_map.mtls")

Isolation = Literal["subprocess", "process"]
NodeConfig = Mapping[str, str | int | float | bool]

# The client bundle that shimmed Flower processes present (set for the SuperLink's children).
ENV_CLIENT_TLS_DIR = "SM_MTLS_CLIENT_TLS_DIR"
# Flower commands the SuperLink's process tree runs that connect to the SuperLink's port.
SHIMMED_COMMANDS = ("flower-superexec", "flwr-serverapp")
# Flower's switches for its legacy gRPC servers: they would serve without client auth.
LEGACY_GRPC_ENV = ("FLWR_INTERNAL_GRPC_CONTROL_API", "FLWR_INTERNAL_GRPC_FLEET_API")
# What a node (any client certificate that is not an operator's) may reach on a SuperLink.
NODE_PATHS = ("/v1/fleet/", "/health")
FLWR_CONNECTION = "sovereign-map"  # name of the SuperLink connection in flwr's config
QUIET_FLOWER_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
_PATCH_MARK = "_sovereign_map_mtls"
_identity: ClientIdentity | None = None


# ------------------------------------------------------------------------- clients


def install_client_identity(identity: ClientIdentity) -> None:
    """Make every Flower HTTPS client in this process present ``identity``.

    Idempotent; a later call replaces the identity. ``http://`` (insecure) clients, such as
    a ClientApp talking to its SuperNode's local Runtime API, are left alone.
    """
    global _identity
    from flwr.supercore.protobuf.client import ProtobufClient

    _identity = identity
    original = ProtobufClient.__init__
    if getattr(original, _PATCH_MARK, False):
        return

    @functools.wraps(original)
    def __init__(  # noqa: N807
        self: ProtobufClient, base_url: str, *args: Any, verify: Any = True, **kwargs: Any
    ) -> None:
        if _identity is not None and base_url.startswith("https://") and verify is not False:
            verify = _identity.ssl_context(verify)
        original(self, base_url, *args, verify=verify, **kwargs)

    setattr(__init__, _PATCH_MARK, True)
    ProtobufClient.__init__ = __init__  # type: ignore[method-assign]


def exec_flower_command(command: str, args: Sequence[str]) -> int:
    """Run Flower's console script ``command`` in this process with our client identity.

    The identity comes from ``$SM_MTLS_CLIENT_TLS_DIR`` (set by ``run_superlink``).
    """
    _quiet_flower()
    tls_dir = os.environ.get(ENV_CLIENT_TLS_DIR)
    if not tls_dir:
        raise TLSMaterialError(f"{ENV_CLIENT_TLS_DIR} is not set; cannot present a certificate")
    install_client_identity(ClientIdentity.from_dir(Path(tls_dir)))
    entry = _console_script(command)
    with swapped_argv([command, *args]):
        result = entry()
    return result if isinstance(result, int) else 0


def write_flwr_config(
    flwr_home: Path, address: str, ca_file: Path, *, name: str = FLWR_CONNECTION
) -> Path:
    """Write ``flwr_home/config.toml`` naming the SuperLink ``address`` (the default one).

    Run ``flwr`` with ``FLWR_HOME=flwr_home`` (e.g. through ``run_flwr``) to use it.
    """
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"invalid connection name {name!r}")
    flwr_home.mkdir(parents=True, exist_ok=True)
    path = flwr_home / "config.toml"
    path.write_text(
        f'[superlink]\ndefault = "{name}"\n\n[superlink.{name}]\n'
        f"address = {json.dumps(address)}\n"
        f"root-certificates = {json.dumps(str(ca_file.resolve()))}\n"
    )
    return path


def run_flwr(tls_dir: Path, args: Sequence[str]) -> int:
    """Run the ``flwr`` CLI presenting the client certificate in ``tls_dir``."""
    _quiet_flower()
    install_client_identity(ClientIdentity.from_dir(tls_dir))
    entry = _console_script("flwr")
    with swapped_argv(["flwr", *args]):
        try:
            result = entry()
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return result if isinstance(result, int) else 0


# ------------------------------------------------------------------------ SuperLink


def role_policy(operators: Collection[str] = (OPERATOR,)) -> Policy:
    """Operators (by certificate CN) may use every API; everyone else only the Fleet API."""
    allowed = frozenset(operators)

    def policy(cert: x509.Certificate, path: str) -> str | None:
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(names[0].value) if names else ""
        if name in allowed or path.startswith(NODE_PATHS[0]) or path == NODE_PATHS[1]:
            return None
        return f"{name or 'this certificate'} is not an operator; it may only use the Fleet API"

    return policy


def superlink_argv(
    tls_dir: Path,
    state_dir: Path,
    *,
    port: int,
    host: str,
    runtime_dependency_install: bool = False,
) -> list[str]:
    """The ``flower-superlink`` arguments ``run_superlink`` passes to Flower.

    Isolation is always ``subprocess``: the SuperLink starts the SuperExec, which starts the
    ServerApp processes, so that ``run_superlink`` can give them their client certificate.
    """
    install = "allow" if runtime_dependency_install else "disable"
    return [
        "flower-superlink",
        "--ssl-certfile", str(tls_dir / TLS_CERT_FILE),
        "--ssl-keyfile", str(tls_dir / TLS_KEY_FILE),
        "--ssl-ca-certfile", str(tls_dir / TLS_CA_FILE),
        "--host", host,
        "--port", str(port),
        "--database", str(state_dir / SUPERLINK_DB_FILE),
        "--isolation", "subprocess",
        f"--{install}-runtime-dependency-installation",
    ]  # fmt: skip


def run_superlink(
    tls_dir: Path,
    state_dir: Path,
    *,
    port: int = AGGREGATOR_PORT,
    host: str = "0.0.0.0",
    client_tls_dir: Path | None = None,
    operators: Collection[str] = (OPERATOR,),
    runtime_dependency_install: bool = False,
    extra_args: Sequence[str] = (),
) -> None:
    """Run a SuperLink whose port requires a client certificate (blocking; see module doc).

    ``runtime_dependency_install``: let Flower ``uv sync`` each app's dependencies into a
    fresh environment (needs network); off, ServerApps run in this interpreter's env.
    """
    _quiet_flower()
    configure_logging()
    check_port(port)
    material = ServerTLS(tls_dir)
    local_host = local_address(host)
    material.check(name=local_host)
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in LEGACY_GRPC_ENV:
        if os.environ.pop(name, None) is not None:
            log.warning("ignoring %s: Flower's gRPC servers would bypass mutual TLS", name)
    client_dir = _operator_dir(tls_dir, client_tls_dir)
    identity = ClientIdentity.from_dir(client_dir)
    shims = write_python_shims(
        state_dir / "mtls-bin", SHIMMED_COMMANDS, "fl.launch.mtls_cli", "exec-flower"
    )
    os.environ[ENV_CLIENT_TLS_DIR] = str(client_dir.resolve())
    os.environ.setdefault("FLWR_HOME", str((state_dir / "flwr-home").resolve()))
    prepend_path(str(shims), python_bin())
    os.environ["PYTHONPATH"] = pythonpath_with_our_packages(os.environ.get("PYTHONPATH"))
    log.info("SuperExec and ServerApp processes present %s", identity.subject)

    # (the package re-exports a function of the same name, so import the module by path)
    cli = importlib.import_module("flwr.superlink.cli.flower_superlink")

    def serve(lifespan_config: Any) -> None:
        from flwr.supercore.http_logging import get_uvicorn_log_config
        from flwr.supercore.logger import console_handler
        from flwr.superlink.main import create_app

        from fl.launch.mtls_server import serve_mtls

        serve_mtls(
            create_app(lifespan_config, cli.SuperLinkLifespan),
            host=lifespan_config.host,
            port=lifespan_config.port,
            material=material,
            log_config=get_uvicorn_log_config(console_handler.level),
            what="SuperLink (Fleet, Control and Runtime APIs)",
            policy=role_policy(operators),
        )

    argv = superlink_argv(
        tls_dir,
        state_dir,
        port=port,
        host=host,
        runtime_dependency_install=runtime_dependency_install,
    )
    with swapped_argv([*argv, *extra_args]), _replaced(cli, "_run_superlink_http_api", serve):
        cli.flower_superlink()


# ------------------------------------------------------------------------ SuperNode


def format_node_config(node_config: NodeConfig) -> str:
    """Flower's ``--node-config`` string (``key=value`` pairs; strings double-quoted)."""
    parts = []
    for key, value in node_config.items():
        if not key or not all(c.isalnum() or c in "-_." for c in key):
            raise ValueError(f"invalid node-config key {key!r} (letters, digits, - _ .)")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value)
        elif isinstance(value, str):
            if any(c in value for c in "\"\\\n'"):
                raise ValueError(f"node-config value of {key!r} may not contain quotes: {value!r}")
            text = f'"{value}"'
        else:
            raise ValueError(f"node-config value of {key!r} must be str, int, float or bool")
        parts.append(f"{key}={text}")
    return " ".join(parts)


def supernode_argv(
    tls_dir: Path,
    superlink: str,
    node_config: NodeConfig,
    *,
    runtime_port: int,
    runtime_host: str,
    isolation: Isolation,
    max_retries: int | None,
    max_wait_time: float | None,
) -> list[str]:
    """The ``flower-supernode`` arguments ``run_supernode`` passes to Flower."""
    argv = [
        "flower-supernode",
        "--superlink", superlink,
        "--root-certificates", str(tls_dir / TLS_CA_FILE),
        "--host", runtime_host,
        "--port", str(runtime_port),
        "--isolation", isolation,
    ]  # fmt: skip
    if node_config:
        argv += ["--node-config", format_node_config(node_config)]
    if max_retries is not None:
        argv += ["--max-retries", str(max_retries)]
    if max_wait_time is not None:
        argv += ["--max-wait-time", str(max_wait_time)]
    return argv


def run_supernode(
    tls_dir: Path,
    superlink: str,
    node_config: NodeConfig,
    *,
    runtime_port: int | None = None,
    runtime_host: str = "127.0.0.1",
    isolation: Isolation = "subprocess",
    max_retries: int | None = None,
    max_wait_time: float | None = None,
) -> None:
    """Run a SuperNode that presents the client certificate in ``tls_dir`` (blocking)."""
    _quiet_flower()
    configure_logging()
    identity = ClientIdentity.from_dir(tls_dir)
    port = free_port(runtime_host) if runtime_port is None else runtime_port
    check_port(port)
    install_client_identity(identity)
    prepend_path(python_bin())
    log.info("SuperNode presents %s to %s", identity.subject, superlink)
    argv = supernode_argv(
        tls_dir,
        superlink,
        node_config,
        runtime_port=port,
        runtime_host=runtime_host,
        isolation=isolation,
        max_retries=max_retries,
        max_wait_time=max_wait_time,
    )
    from flwr.supernode.cli import flower_supernode

    with swapped_argv(argv):
        flower_supernode()


# ----------------------------------------------------------------- subprocess forms


def superlink_command(
    tls_dir: Path,
    state_dir: Path,
    *,
    port: int = AGGREGATOR_PORT,
    host: str = "0.0.0.0",
    client_tls_dir: Path | None = None,
    operators: Collection[str] = (OPERATOR,),
) -> list[str]:
    """argv of ``run_superlink`` as a child process."""
    argv = [sys.executable, "-m", "fl.launch.mtls_cli", "superlink"]
    argv += ["--tls-dir", str(tls_dir), "--state-dir", str(state_dir)]
    argv += ["--host", host, "--port", str(port)]
    if client_tls_dir is not None:
        argv += ["--client-tls-dir", str(client_tls_dir)]
    for name in operators:
        argv += ["--operator", name]
    return argv


def supernode_command(
    tls_dir: Path,
    superlink: str,
    node_config: NodeConfig,
    *,
    runtime_port: int | None = None,
    max_retries: int | None = None,
    max_wait_time: float | None = None,
) -> list[str]:
    """argv of ``run_supernode`` as a child process."""
    argv = [sys.executable, "-m", "fl.launch.mtls_cli", "supernode"]
    argv += ["--tls-dir", str(tls_dir), "--superlink", superlink]
    if node_config:
        argv += ["--node-config", format_node_config(node_config)]
    if runtime_port is not None:
        argv += ["--runtime-port", str(runtime_port)]
    if max_retries is not None:
        argv += ["--max-retries", str(max_retries)]
    if max_wait_time is not None:
        argv += ["--max-wait-time", str(max_wait_time)]
    return argv


# ---------------------------------------------------------------------------- helpers


def _quiet_flower() -> None:
    """No telemetry and no update check (must run before flwr is imported)."""
    for name, value in QUIET_FLOWER_ENV.items():
        os.environ.setdefault(name, value)


def _console_script(name: str) -> Callable[[], Any]:
    found = metadata.entry_points(group="console_scripts", name=name)
    if not found:
        raise TLSMaterialError(f"Flower's console script {name!r} is not installed")
    entry: Callable[[], Any] = next(iter(found)).load()
    return entry


def _operator_dir(tls_dir: Path, client_tls_dir: Path | None) -> Path:
    if client_tls_dir is not None:
        return client_tls_dir
    if os.environ.get(ENV_OPERATOR_TLS_DIR):
        return Path(os.environ[ENV_OPERATOR_TLS_DIR])
    sibling = tls_dir.resolve().parent / "operator"
    if sibling.is_dir():
        return sibling
    raise TLSMaterialError(
        "the SuperLink's SuperExec and ServerApp processes need a client certificate: "
        f"pass client_tls_dir / --client-tls-dir or set {ENV_OPERATOR_TLS_DIR} "
        "(the `operator` bundle made by `certs init`)"
    )


@contextmanager
def _replaced(module: Any, name: str, value: object) -> Iterator[None]:
    if not hasattr(module, name):
        raise RuntimeError(f"Flower changed: {module.__name__}.{name} is gone (see mtls.py)")
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)
