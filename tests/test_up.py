"""`sovereign-map up` / `down`: the Pulumi stack on Docker when pulumi and a Docker engine are
there, else the devnet — and it says which, and why. Fake `pulumi` and `docker` programs on
PATH stand in for the real ones (neither exists on the machines that run these tests)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from fl.cli import main
from fl.up import choose_target

REPO = Path(__file__).resolve().parents[1]


def _program(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only our fakes (and /bin for the shell they run in)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}/bin")
    monkeypatch.chdir(REPO)  # where Pulumi.yaml is
    return directory


def test_without_pulumi_the_devnet_is_chosen_and_the_reason_given(bin_dir: Path) -> None:
    choice = choose_target()
    assert choice.target == "devnet"
    assert "the pulumi CLI is not installed" in choice.reason


def test_without_a_docker_engine_the_devnet_is_chosen(bin_dir: Path) -> None:
    _program(bin_dir, "pulumi", "exit 0")
    _program(bin_dir, "docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1")
    choice = choose_target()
    assert choice.target == "devnet"
    assert "no reachable Docker engine" in choice.reason
    assert "Cannot connect to the Docker daemon" in choice.reason


def test_with_pulumi_and_docker_up_runs_the_local_stack(bin_dir: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    _program(bin_dir, "pulumi", f'echo "$@" >> {calls}')
    _program(bin_dir, "docker", "exit 0")
    result = CliRunner().invoke(main, ["up", "--yes"])
    assert result.exit_code == 0, result.output
    assert "deploying to docker" in result.output
    assert calls.read_text().split("\n")[0] == "up --stack local --yes"
    down = CliRunner().invoke(main, ["down", "--stack", "staging", "--state-dir",
                                     str(tmp_path / "no-devnet")])  # fmt: skip
    assert down.exit_code == 0, down.output
    assert calls.read_text().split("\n")[1] == "destroy --stack staging"


def test_devnet_options_do_not_go_to_the_pulumi_stack(bin_dir: Path) -> None:
    _program(bin_dir, "pulumi", "exit 0")
    _program(bin_dir, "docker", "exit 0")
    result = CliRunner().invoke(main, ["up", "--nodes", "3"])
    assert result.exit_code == 2
    assert "devnet options do not apply to the Pulumi stack" in result.output


def test_asking_for_docker_without_it_is_a_clear_error(bin_dir: Path) -> None:
    result = CliRunner().invoke(main, ["up", "--target", "docker"])
    assert result.exit_code == 1
    assert "cannot deploy the stack on Docker: the pulumi CLI is not installed" in result.output


def test_a_failing_pulumi_fails_up_with_its_exit_code(bin_dir: Path) -> None:
    _program(bin_dir, "pulumi", "exit 3")
    _program(bin_dir, "docker", "exit 0")
    assert CliRunner().invoke(main, ["up"]).exit_code == 3


def test_down_with_nothing_running_says_so(bin_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["down", "--state-dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "nothing to stop: no devnet in" in result.output
    assert "Traceback" not in result.output
