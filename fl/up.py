"""``sovereign-map up`` / ``down``: the first command — the Docker stack when it can, else
the local process devnet. Each says which it chose and why.

* Pulumi on Docker (``pulumi up --stack local``) when the ``pulumi`` CLI is installed, the
  project's ``Pulumi.yaml`` is found (in the current directory or beside this package) and
  ``docker info`` reaches a Docker engine;
* otherwise ``sovereign-map devnet up`` (arguments not known to ``up`` are passed on to it,
  e.g. ``sovereign-map up --nodes 3 --detach``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click

__all__ = ["Choice", "choose_target", "down", "find_project", "up"]

DOCKER_INFO_TIMEOUT_S = 20.0
TARGETS = ("auto", "docker", "devnet")


@dataclass(frozen=True)
class Choice:
    target: str  # "docker" (Pulumi stack on Docker) or "devnet"
    reason: str
    pulumi: str | None = None  # the pulumi executable, for "docker"
    project: Path | None = None  # the directory holding Pulumi.yaml, for "docker"


def find_project(start: Path | None = None) -> Path | None:
    """The Pulumi project: ``Pulumi.yaml`` in ``start`` (cwd) or beside this package."""
    import fl

    for directory in (start or Path.cwd(), Path(fl.__file__).resolve().parent.parent):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    return None


def _docker_problem() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "the docker CLI is not installed"
    try:
        done = subprocess.run(
            [docker, "info"],
            capture_output=True,
            text=True,
            timeout=DOCKER_INFO_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`docker info` did not answer within {DOCKER_INFO_TIMEOUT_S:.0f} s"
    if done.returncode != 0:
        detail = next((line for line in done.stderr.splitlines() if line.strip()), "")
        return "no reachable Docker engine (`docker info` failed" + (
            f": {detail.strip()})" if detail else ")"
        )
    return None


def _stack_problem(start: Path | None) -> tuple[str | None, str | None, Path | None]:
    """(why the Docker stack cannot be deployed or None, pulumi executable, project dir)."""
    pulumi = shutil.which("pulumi")
    project = find_project(start)
    if pulumi is None:
        return "the pulumi CLI is not installed", None, project
    if project is None:
        return "no Pulumi.yaml here or beside the package", pulumi, None
    return _docker_problem(), pulumi, project


def choose_target(requested: str = "auto", start: Path | None = None) -> Choice:
    """Where ``up`` deploys, and why (see the module docstring)."""
    if requested == "devnet":
        return Choice("devnet", "asked for with --target devnet")
    problem, pulumi, project = _stack_problem(start)
    if problem is None:
        return Choice("docker", "the pulumi CLI and a Docker engine are available", pulumi, project)
    if requested == "docker":
        raise click.ClickException(f"cannot deploy the stack on Docker: {problem}")
    return Choice("devnet", f"{problem}, so the local process devnet instead")


_target = click.option(
    "--target",
    type=click.Choice(TARGETS),
    default="auto",
    show_default=True,
    help="docker: the Pulumi stack on Docker; devnet: local processes; auto: docker when "
    "pulumi and a Docker engine are available.",
)
_stack = click.option(
    "--stack", default="local", show_default=True, help="Pulumi stack (docker target)."
)
_yes = click.option("--yes", is_flag=True, help="Pulumi: skip the confirmation prompt.")


def _pulumi(choice: Choice, *args: str) -> None:
    assert choice.pulumi is not None and choice.project is not None
    argv = [choice.pulumi, *args]
    click.echo(f"running: {' '.join(argv)} (in {choice.project})")
    code = subprocess.run(argv, cwd=choice.project, check=False).returncode
    if code:
        raise SystemExit(code)


@click.command(
    name="up", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True}
)
@_target
@_stack
@_yes
@click.argument("devnet_args", nargs=-1, type=click.UNPROCESSED)
def up(target: str, stack: str, yes: bool, devnet_args: tuple[str, ...]) -> None:
    """Bring up a testnet: `pulumi up --stack local` on Docker when the pulumi CLI and a
    Docker engine are available, else the local process devnet (`devnet up`).

    Other arguments go to `devnet up`, e.g. `sovereign-map up --nodes 3 --detach`.
    """
    choice = choose_target(target)
    click.echo(f"deploying to {choice.target}: {choice.reason}")
    if choice.target == "docker":
        if devnet_args:
            raise click.UsageError(
                f"{' '.join(devnet_args)}: devnet options do not apply to the Pulumi stack "
                f"(set them in Pulumi.{stack}.yaml, or use --target devnet)"
            )
        _pulumi(choice, "up", "--stack", stack, *(["--yes"] if yes else []))
        return
    from fl.devnet.cli import devnet

    devnet.main(["up", *devnet_args], prog_name="sovereign-map devnet", standalone_mode=False)


@click.command(name="down")
@_target
@_stack
@_yes
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".devnet"),
    show_default=True,
    help="The devnet's state directory.",
)
def down(target: str, stack: str, yes: bool, state_dir: Path) -> None:
    """Stop what `up` started: the devnet in STATE_DIR if it runs, else the Pulumi stack
    (`pulumi destroy --stack local`; its volumes go with it)."""
    from fl.devnet.layout import DevnetRecord, Layout, RecordError
    from fl.devnet.processes import alive

    try:
        record: DevnetRecord | None = DevnetRecord.load(Layout(state_dir))
    except RecordError:
        record = None
    running = record is not None and any(alive(p) for p in record.processes)
    if target == "devnet" or (target == "auto" and running):
        click.echo(f"stopping the devnet in {state_dir}")
        from fl.devnet.cli import devnet

        devnet.main(["down", "--state-dir", str(state_dir)], standalone_mode=False)
        return
    problem, pulumi, project = _stack_problem(None)
    if problem is None:
        click.echo(f"destroying the Pulumi stack {stack}: no devnet runs in {state_dir}")
        choice = Choice("docker", "", pulumi, project)
        _pulumi(choice, "destroy", "--stack", stack, *(["--yes"] if yes else []))
        return
    if target == "docker":
        raise click.ClickException(f"cannot destroy the stack on Docker: {problem}")
    if record is not None:
        click.echo(f"nothing runs in {state_dir}")
        return
    raise click.ClickException(
        f"nothing to stop: no devnet in {state_dir}, and no Pulumi stack ({problem})"
    )
