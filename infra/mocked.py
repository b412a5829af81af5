"""Run the Pulumi program against Pulumi's mocks: no engine, no Docker, no cluster.

Every resource the program registers is recorded with its inputs (secrets unwrapped, their
paths remembered), and the stack outputs are resolved. The PKI's dynamic resource is
answered by the real :class:`PkiProvider`, so certificates, keys and everything derived
from them are real. The unit tests use this; so can anyone who wants to see what a stack
would create (``kubernetes_manifests`` turns the recorded objects into manifests).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
import yaml
from pulumi.runtime.mocks import MockMonitor

from infra.components.pki_provider import PkiProvider
from infra.program import build
from infra.stacks import secrets_from_pulumi, settings_from_pulumi
from infra.stacks.defaults import deep_merge
from infra.stacks.keys import NAMESPACE, SECRET_KEYS

PROJECT_ROOT = Path(__file__).resolve().parents[1]

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"
PKI_TYPE = "pulumi-python:dynamic/pki:Pki"


@dataclass
class Registered:
    """One resource as the program registered it."""

    type: str
    name: str
    inputs: dict[str, Any]
    secret_paths: set[str] = field(default_factory=set)  # dotted paths of secret inputs
    dependencies: list[str] = field(default_factory=list)  # URNs it waits for


@dataclass
class ProgramRun:
    stack: str
    resources: list[Registered]
    outputs: dict[str, Any]
    secret_outputs: set[str]

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def named(self, type_: str, name: str) -> Registered:
        found = [r for r in self.of_type(type_) if r.name == name]
        if len(found) != 1:
            known = sorted(r.name for r in self.of_type(type_))
            raise KeyError(f"{len(found)} {type_} named {name!r} (have: {known})")
        return found[0]


def unwrap(value: Any, path: str = "", secrets: set[str] | None = None) -> Any:
    """Remove Pulumi's secret wrappers, noting where they were."""
    if isinstance(value, Mapping):
        if value.get(SIG_KEY) == SECRET_SIG:
            if secrets is not None:
                secrets.add(path)
            return unwrap(value.get("value"), path, secrets)
        return {k: unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, pki_provider: PkiProvider | None = None) -> None:
        self.resources: list[Registered] = []
        self.pki = pki_provider or PkiProvider()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        secrets: set[str] = set()
        inputs = unwrap(args.inputs, secrets=secrets)
        self.resources.append(Registered(args.typ, args.name, inputs, secrets))
        digest = "sha256:" + hashlib.sha256(f"{args.typ}/{args.name}".encode()).hexdigest()
        outputs = dict(args.inputs)
        if args.typ == PKI_TYPE:
            created = self.pki.create(inputs)
            return created.id, created.outs or {}
        if args.typ == "docker:index/image:Image":
            outputs["repoDigest"] = digest
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = digest
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(MockMonitor):
    """Pulumi's mock monitor, also noting each registration's explicit dependencies."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.dependencies: dict[tuple[str, str], list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        self.dependencies[(request.type, request.name)] = list(request.dependencies)
        return super().RegisterResource(request)


def config_map(raw: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, str]:
    """Stack YAML values (``sovereign-map:`` keys) as the Pulumi CLI hands them over."""
    config: dict[str, str] = {}
    for key, value in {**raw, **secrets}.items():
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        config[full] = value if isinstance(value, str) else json.dumps(value)
    return config


def run_program(
    stack: str,
    config: Mapping[str, Any],
    secrets: Mapping[str, str],
    pki_provider: PkiProvider | None = None,
) -> ProgramRun:
    """Run the program for ``stack`` with ``config`` (keys without the namespace)."""
    mocks = RecordingMocks(pki_provider)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=NAMESPACE, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(
        config_map(config, secrets),
        [f"{NAMESPACE}:{key}" for key in secrets if key in SECRET_KEYS],
    )
    result: dict[str, Any] = {}

    async def resolve(outputs: Mapping[str, pulumi.Input[object]]) -> None:
        values: dict[str, Any] = {}
        secret: set[str] = set()
        for key, value in outputs.items():
            out = pulumi.Output.from_input(value)
            values[key] = await out.future()
            if await out.is_secret():
                secret.add(key)
        result["outputs"], result["secret"] = values, secret

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        settings = settings_from_pulumi()
        outputs = build(stack, settings, secrets_from_pulumi(settings))
        return pulumi.Output.from_input(asyncio.ensure_future(resolve(outputs)))

    program()
    for resource in mocks.resources:
        resource.dependencies = monitor.dependencies.get((resource.type, resource.name), [])
    return ProgramRun(stack, mocks.resources, result["outputs"], result["secret"])


def stack_file_config(stack: str, root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The ``sovereign-map:`` keys of ``Pulumi.<stack>.yaml`` (namespace removed)."""
    document = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")) or {}
    prefix = f"{NAMESPACE}:"
    return {
        key.removeprefix(prefix): value
        for key, value in (document.get("config") or {}).items()
        if key.startswith(prefix)
    }


def run_stack(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    pki_provider: PkiProvider | None = None,
) -> ProgramRun:
    """Run the program with ``Pulumi.<stack>.yaml`` (plus ``overrides``, e.g.
    ``{"target": "kubernetes"}``) and the given secret config."""
    config = deep_merge(stack_file_config(stack), overrides or {})
    return run_program(stack, config, secrets or {}, pki_provider)
