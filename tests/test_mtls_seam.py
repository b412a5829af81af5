"""The Flower (and uvicorn) internals fl.launch.mtls relies on. If one of these fails,
Flower changed under us: read fl/launch/mtls.py before bumping Flower.

Every assertion names what we use and why, so the failure says what to fix.
"""

from __future__ import annotations

import importlib
import inspect
from importlib import metadata
from pathlib import Path

import pytest

pytest.importorskip("flwr")

SEAM = "fl/launch/mtls.py relies on this"


def _module(name: str) -> object:
    return importlib.import_module(name)


def test_superlink_http_api_starter_is_replaceable() -> None:
    cli = _module("flwr.superlink.cli.flower_superlink")
    starter = getattr(cli, "_run_superlink_http_api", None)
    assert callable(starter), f"flower_superlink._run_superlink_http_api is gone; {SEAM}"
    assert list(inspect.signature(starter).parameters) == ["lifespan_config"], SEAM
    # flower_superlink() must look the starter up as a module global at call time
    source = inspect.getsource(cli.flower_superlink)  # type: ignore[attr-defined]
    assert "_run_superlink_http_api(lifespan_config=" in source, SEAM
    assert inspect.isclass(getattr(cli, "SuperLinkLifespan", None)), SEAM


def test_superlink_app_factory_and_config_fields() -> None:
    main = _module("flwr.superlink.main")
    create_app = main.create_app  # type: ignore[attr-defined]
    params = list(inspect.signature(create_app).parameters)
    assert params[:2] == ["config", "superlink_lifespan_class"], SEAM
    config_cls = _module("flwr.superlink.config_loader").SuperLinkLifespanConfig  # type: ignore[attr-defined]
    fields = set(inspect.signature(config_cls).parameters)
    assert {"host", "port", "ssl_certfile", "ssl_keyfile", "ssl_ca_certfile"} <= fields, SEAM
    logging_mod = _module("flwr.supercore.http_logging")
    assert list(inspect.signature(logging_mod.get_uvicorn_log_config).parameters) == [  # type: ignore[attr-defined]
        "log_level"
    ], SEAM
    assert hasattr(_module("flwr.supercore.logger"), "console_handler"), SEAM


def test_superlink_accepts_the_flags_we_pass() -> None:
    from fl.launch.mtls import superlink_argv

    cli = _module("flwr.superlink.cli.flower_superlink")
    argv = superlink_argv(Path("/t"), Path("/s"), port=1234, host="127.0.0.1")
    args = cli._parse_args_run_superlink().parse_args(argv[1:])  # type: ignore[attr-defined]
    assert (args.host, args.port, args.ssl_certfile) == ("127.0.0.1", 1234, "/t/tls.crt")
    assert args.database == "/s/superlink.db"
    assert args.runtime_dependency_install is False
    assert args.isolation == "subprocess"


def test_supernode_accepts_the_flags_we_pass() -> None:
    from fl.launch.mtls import supernode_argv

    cli = _module("flwr.supernode.cli.flower_supernode")
    argv = supernode_argv(
        Path("/t"), "10.0.0.1:8080", {"partition-id": 2, "name": "x"},
        runtime_port=4321, runtime_host="127.0.0.1", isolation="subprocess",
        max_retries=3, max_wait_time=5.0,
    )  # fmt: skip
    args = cli._parse_args_run_supernode().parse_args(argv[1:])  # type: ignore[attr-defined]
    assert (args.superlink, args.root_certificates, args.port) == (
        "10.0.0.1:8080", "/t/ca.crt", 4321
    )  # fmt: skip
    config = _module("flwr.common.config").parse_config_args([args.node_config])  # type: ignore[attr-defined]
    assert config == {"partition-id": 2, "name": "x"}
    assert hasattr(cli, "flower_supernode"), SEAM


def test_every_flower_http_client_is_built_by_protobuf_client_init() -> None:
    from flwr.supercore.protobuf.client import ProtobufClient

    params = inspect.signature(ProtobufClient.__init__).parameters
    assert list(params)[:2] == ["self", "base_url"], SEAM
    assert params["verify"].kind is inspect.Parameter.KEYWORD_ONLY, SEAM
    clients = [
        ("flwr.supernode.fleet_http_client", "FleetHttpClient"),
        ("flwr.supercore.runtime.runtime_http_client", "RuntimeHttpClient"),
        ("flwr.supercore.control.control_http_client", "ControlHttpClient"),
    ]
    for module, name in clients:
        cls = getattr(_module(module), name)
        assert issubclass(cls, ProtobufClient), f"{name} no longer a ProtobufClient; {SEAM}"
        assert "__init__" not in cls.__dict__, f"{name} overrides __init__; {SEAM}"
    # the single place where Flower builds its HTTP clients from an address
    source = inspect.getsource(ProtobufClient.from_server_address)
    assert "verify=verify" in source, SEAM


def test_the_commands_we_shim_are_the_ones_flower_spawns() -> None:
    from flwr.supercore.constant import TASK_TYPE_TO_COMMAND, TaskType

    from fl.launch.mtls import SHIMMED_COMMANDS

    assert TASK_TYPE_TO_COMMAND[TaskType.SERVER_APP] in SHIMMED_COMMANDS, SEAM
    cli = _module("flwr.superlink.cli.flower_superlink")
    command = cli._get_superexec_command(  # type: ignore[attr-defined]
        runtime_address="127.0.0.1:1", runtime_certificates=(b"", b"", b""),
        runtime_root_certificates_path="/ca.crt", parent_pid=1, runtime_dependency_install=False,
    )  # fmt: skip
    assert command[0] in SHIMMED_COMMANDS, SEAM
    scripts = {ep.name for ep in metadata.entry_points(group="console_scripts")}
    assert {*SHIMMED_COMMANDS, "flwr", "flower-superlink", "flower-supernode"} <= scripts, SEAM


def test_legacy_grpc_switches_still_have_the_names_we_clear() -> None:
    from flwr.common import constant

    from fl.launch.mtls import LEGACY_GRPC_ENV

    assert {constant.FLWR_INTERNAL_GRPC_CONTROL_API, constant.FLWR_INTERNAL_GRPC_FLEET_API} == set(
        LEGACY_GRPC_ENV
    ), SEAM


def test_uvicorn_accepts_our_protocol_class() -> None:
    import asyncio

    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class Probe(asyncio.Protocol):
        pass

    config = uvicorn.Config(app=lambda *a: None, http=Probe)
    config.load()
    assert config.http_protocol_class is Probe, "fl/launch/mtls_server.py relies on this"
    params = list(inspect.signature(AutoHTTPProtocol.__init__).parameters)
    assert params[:5] == ["self", "config", "server_state", "app_state", "_loop"]
    server_source = inspect.getsource(uvicorn.Server.startup)
    assert "config.http_protocol_class(" in server_source


def test_the_paths_nodes_may_use_are_where_flower_serves_them() -> None:
    import re

    from fl.launch.mtls import NODE_PATHS

    fleet_prefix, health = NODE_PATHS
    routers = {
        "flwr.superlink.routers.fleet.router": fleet_prefix.rstrip("/"),
        "flwr.superlink.routers.control.router": "/v1/control",
        "flwr.supercore.routers.runtime.router": "/v1/runtime",
    }
    for module, prefix in routers.items():
        router = _module(module).router  # type: ignore[attr-defined]
        assert router.prefix == prefix, f"{module} moved to {router.prefix}; {SEAM}"
    health_router = _module("flwr.supercore.routers.health.router").router  # type: ignore[attr-defined]
    assert {route.path for route in health_router.routes} == {health}, SEAM
    # every call a SuperNode makes must stay inside what nodes are allowed
    fleet_client = inspect.getsource(_module("flwr.supernode.fleet_http_client"))
    paths = re.findall(r'path="([^"]+)"', fleet_client)
    assert paths and all(p.startswith(fleet_prefix) for p in paths), (paths, SEAM)


def test_flwr_reads_the_connection_we_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flwr.cli.flower_config import read_superlink_connection

    from fl.launch.mtls import write_flwr_config

    home = tmp_path / "flwr-home"
    write_flwr_config(home, "10.0.0.1:8080", Path("/pki/operator/ca.crt"))
    monkeypatch.setenv("FLWR_HOME", str(home))
    connection = read_superlink_connection()
    assert connection.address == "10.0.0.1:8080", SEAM
    assert connection.root_certificates == "/pki/operator/ca.crt", SEAM
    assert connection.insecure is False, SEAM
