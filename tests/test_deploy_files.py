"""deploy/ checked without a Docker daemon: the Compose services, the Dockerfiles, the instance
and workspace settings, the variables they pass and the secrets they must not hold. With a
Docker daemon and the compose plugin on the machine, `docker compose up` runs end to end too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
SERVICES = {"retail_sales_postgres", "retail_sales_migrate", "retail_sales_code", "retail_sales_webserver", "retail_sales_daemon"}
# What the desktop and the deployment must agree on (the deployment adds two run_queue keys).
SHARED_SECTIONS = ["concurrency", "run_monitoring", "run_retries", "retention", "telemetry"]
POSTGRES_ENV = {
    "DAGSTER_POSTGRES_HOST": "db", "DAGSTER_POSTGRES_PORT": "5432", "DAGSTER_POSTGRES_USER": "u",
    "DAGSTER_POSTGRES_PASSWORD": "p", "DAGSTER_POSTGRES_DB": "d",
}


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return _yaml(DEPLOY / "docker-compose.yml")


def _variables(path: Path) -> list[str]:
    """Variable names assigned in an .env-style file (commented-out lines excluded)."""
    return re.findall(r"^([A-Z][A-Z0-9_]*)=", path.read_text(encoding="utf-8"), flags=re.M)


def test_compose_has_the_services_of_the_official_shape_in_order(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    postgres = services["retail_sales_postgres"]
    assert postgres["healthcheck"]["test"][0] == "CMD-SHELL" and "pg_isready" in postgres["healthcheck"]["test"][1]
    assert "ports" not in postgres, "Postgres must not be published on the host"
    for name in ("retail_sales_webserver", "retail_sales_daemon"):
        needs = services[name]["depends_on"]
        assert needs["retail_sales_code"]["condition"] == "service_healthy"
        assert needs["retail_sales_migrate"]["condition"] == "service_completed_successfully"
    assert services["retail_sales_migrate"]["depends_on"]["retail_sales_postgres"]["condition"] == "service_healthy"
    assert "dagster instance migrate" in " ".join(services["retail_sales_migrate"]["command"])
    assert services["retail_sales_code"]["healthcheck"]["test"][1:4] == ["dagster", "api", "grpc-health-check"]
    assert services["retail_sales_code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == services["retail_sales_code"]["image"]
    assert services["retail_sales_daemon"]["entrypoint"][:2] == ["dagster-daemon", "run"]
    assert services["retail_sales_webserver"]["entrypoint"][0] == "dagster-webserver"


def test_only_the_webserver_is_published_and_only_on_loopback(compose):
    published = {name: s["ports"] for name, s in compose["services"].items() if "ports" in s}
    assert list(published) == ["retail_sales_webserver"]
    (mapping,) = published["retail_sales_webserver"]
    assert mapping.startswith("127.0.0.1:") and mapping.endswith(":3000")


def test_every_build_and_copied_file_exists_and_images_use_the_pinned_requirements(compose):
    pins = {}
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        for line in (REPO / requirements).read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                name, version = line.split("==")
                pins[name.strip().lower()] = version.strip()
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        context = (DEPLOY / service["build"]["context"]).resolve()
        dockerfile = context / service["build"]["dockerfile"]
        assert context == REPO and dockerfile.is_file(), name
        text = dockerfile.read_text()
        assert re.search(r"^FROM python:3\.11-slim$", text, flags=re.M), dockerfile.name
        for match in re.finditer(r"^COPY (.+)$", text, flags=re.M):
            *sources, _target = match.group(1).split()
            for source in sources:
                assert source == "." or (context / source).exists(), f"{dockerfile.name}: COPY {source} missing"
        for requirement in re.findall(r"-r (\S+)", text):
            local = requirement.lstrip("/").removeprefix("tmp/")
            assert (context / local).exists() or (DEPLOY / Path(local).name).exists(), requirement
    image_pins = [line for line in (DEPLOY / "requirements-dagster.txt").read_text().splitlines() if "==" in line]
    for line in image_pins:
        name, version = line.split("==")
        assert pins.get(name.lower()) == version, f"deploy/requirements-dagster.txt pins {line}, the repo {pins.get(name.lower())}"
    assert "-r requirements.txt" in (DEPLOY / "Dockerfile_code").read_text()


def test_secrets_and_local_state_stay_out_of_the_images():
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    for entry in (".env", "**/.env", ".venv", "data", "dagster_home", ".git"):
        assert entry in ignored, entry


def test_no_secret_is_written_in_any_deploy_file():
    assignment = re.compile(r"(PASSWORD|SECRET|TOKEN|CONNECTION_STRING|WEBHOOK[A-Z_]*)\s*[:=]\s*(.*)$", re.I)
    for path in DEPLOY.rglob("*"):
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = assignment.search(line.split("#")[0] if not line.lstrip().startswith("#") else "")
            if not match:
                continue
            value = match.group(2).strip().strip('"')
            allowed = value == "" or value.startswith("${") or value.startswith("{env:")
            assert allowed, f"{path.relative_to(REPO)}:{number}: a value is written in the file: {line.strip()}"


def test_instance_settings_match_the_desktop_and_validate(tmp_path, monkeypatch):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_docker import DockerRunLauncher

    desktop, deploy = _yaml(REPO / "dagster.yaml"), _yaml(DEPLOY / "dagster.yaml")
    for section in SHARED_SECTIONS:
        assert deploy[section] == desktop[section], section
    assert deploy["run_queue"]["dequeue_interval_seconds"] == desktop["run_queue"]["dequeue_interval_seconds"]
    connection = deploy["storage"]["postgres"]["postgres_db"]
    assert connection == {
        "hostname": {"env": "DAGSTER_POSTGRES_HOST"}, "port": {"env": "DAGSTER_POSTGRES_PORT"},
        "username": {"env": "DAGSTER_POSTGRES_USER"}, "password": {"env": "DAGSTER_POSTGRES_PASSWORD"},
        "db_name": {"env": "DAGSTER_POSTGRES_DB"}, "scheme": "postgresql+psycopg2",
    }

    for name, value in POSTGRES_ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    launcher = config["run_launcher"]
    assert launcher["class"] == "DockerRunLauncher"
    result = process_config(DockerRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors


def test_run_containers_get_every_pipeline_variable_and_the_shared_volumes(compose):
    launcher = _yaml(DEPLOY / "dagster.yaml")["run_launcher"]["config"]
    pipeline_env = compose["x-pipeline-env"]
    dagster_env = compose["x-dagster-env"]
    for variable in _variables(REPO / ".env.example"):
        if variable.startswith("DAGSTER_POSTGRES_"):
            assert variable in dagster_env and variable in launcher["env_vars"], variable
            continue
        assert variable in pipeline_env, f"docker-compose.yml x-pipeline-env lacks {variable} (listed in .env.example)"
        assert variable in launcher["env_vars"], f"deploy/dagster.yaml run_launcher.env_vars lacks {variable}"
    assert set(launcher["env_vars"]) <= set(pipeline_env) | {k for k in dagster_env if k.startswith("DAGSTER_POSTGRES_")}
    # The daemon (which launches runs) has every variable it hands on.
    daemon_env = compose["services"]["retail_sales_daemon"]["environment"]
    assert set(launcher["env_vars"]) <= set(daemon_env)
    volumes = {v["name"]: k for k, v in compose["volumes"].items()}
    code_mounts = compose["services"]["retail_sales_code"]["volumes"]
    for mount in launcher["container_kwargs"]["volumes"]:
        volume, target = mount.split(":")
        assert volume in volumes, f"{volume} is not a named volume of docker-compose.yml"
        assert f"{volumes[volume]}:{target}" in code_mounts, f"code server does not mount {mount}"
    assert launcher["network"] == compose["networks"]["retail_sales_network"]["name"]
    assert pipeline_env["DATA_DIR"] == "/data" and pipeline_env["DUCKDB_PATH"].startswith("/warehouse/")


def test_every_compose_variable_is_documented_in_the_env_example(compose):
    text = (DEPLOY / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))  # $${X} is for the container shell
    documented = set(_variables(DEPLOY / ".env.example"))
    assert used - documented == set(), f"not in deploy/.env.example: {sorted(used - documented)}"
    assert "DAGSTER_POSTGRES_PASSWORD:?" in text, "the Postgres password must be required, with no default"
    example = (DEPLOY / ".env.example").read_text()
    assert re.search(r"^DAGSTER_POSTGRES_PASSWORD=$", example, flags=re.M)


def test_workspace_points_at_the_code_server_under_the_desktops_location_name(monkeypatch):
    from dagster._core.workspace.config_schema import process_workspace_config

    monkeypatch.setenv("DAGSTER_CODE_SERVER_HOST", "retail_sales_code")
    monkeypatch.setenv("DAGSTER_CODE_SERVER_PORT", "4000")
    workspace = _yaml(DEPLOY / "workspace.yaml")
    assert process_workspace_config(workspace).success
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    assert server["host"] == {"env": "DAGSTER_CODE_SERVER_HOST"} and server["port"] == {"env": "DAGSTER_CODE_SERVER_PORT"}
    (desktop,) = _yaml(REPO / "workspace.yaml")["load_from"]
    name = desktop["python_module"]["location_name"]
    assert server["location_name"] == name
    code_cmd = (DEPLOY / "Dockerfile_code").read_text()
    assert f'"--location-name", "{name}"' in code_cmd and '"-p", "4000"' in code_cmd


def _docker_compose_available() -> str | None:
    """None when `docker compose` can run here, else the reason it cannot."""
    if shutil.which("docker") is None:
        return "no docker CLI on this machine"
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        return "the docker CLI has no compose plugin"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        return "no Docker daemon is running (and none can be started here)"
    return None


@pytest.mark.e2e
@pytest.mark.timeout(1800)
def test_docker_compose_up_serves_the_code_location(tmp_path):
    reason = _docker_compose_available()
    if reason:
        pytest.skip(f"docker compose up not run: {reason}")
    env_file = tmp_path / ".env"
    env_file.write_text("DAGSTER_POSTGRES_PASSWORD=compose-test-only\nDAGSTER_WEBSERVER_PORT=3999\n")
    base = ["docker", "compose", "-f", str(DEPLOY / "docker-compose.yml"), "--env-file", str(env_file)]
    try:
        subprocess.run([*base, "up", "-d", "--build"], check=True, timeout=1500)
        deadline = time.monotonic() + 300  # Postgres, the migrate step, the code server's healthcheck
        query = {"query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"}
        while True:
            try:
                nodes = requests.post("http://127.0.0.1:3999/graphql", json=query, timeout=10).json()["data"]["repositoriesOrError"]["nodes"]
                if nodes:
                    break
            except (requests.RequestException, KeyError, TypeError, ValueError):
                pass
            assert time.monotonic() < deadline, "the Compose webserver did not serve the code location"
            time.sleep(2)
    finally:
        subprocess.run([*base, "down", "-v"], timeout=300)


def test_each_image_is_built_by_exactly_one_service_and_named_for_a_registry(compose):
    """Two services building one tag are built twice at best, and recent Compose builders refuse
    with "image already exists"; a bare local tag only works on the Docker host that built it."""
    services = compose["services"]
    builders: dict[str, list[str]] = {}
    for name, service in services.items():
        if "build" in service:
            builders.setdefault(service["image"], []).append(name)
    assert all(len(names) == 1 for names in builders.values()), builders
    own_images = {service["image"] for service in services.values() if service["image"] in builders}
    for name, service in services.items():
        if "build" not in service and service["image"] not in own_images:
            assert service["image"].startswith("postgres:"), f"{name} uses an image nobody builds: {service['image']}"
    for image in builders:
        assert image.startswith("${DAGSTER_IMAGE_PREFIX:-}") and image.endswith(":${DAGSTER_IMAGE_TAG:-latest}"), image
    assert services["retail_sales_code"]["environment"]["DAGSTER_CURRENT_IMAGE"] in builders
    assert {"DAGSTER_IMAGE_PREFIX", "DAGSTER_IMAGE_TAG"} <= set(_variables(DEPLOY / ".env.example"))


def test_run_containers_are_removed_after_the_run_and_compose_v2_is_stated():
    launcher = _yaml(DEPLOY / "dagster.yaml")["run_launcher"]["config"]
    assert launcher["container_kwargs"]["auto_remove"] is True
    header = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8").split("\nname:")[0]
    assert "Compose v2" in header
    assert "Compose v2" in (REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
