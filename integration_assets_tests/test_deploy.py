"""The files of `deploy/`, checked as far as a machine without a container runtime or Helm allows, offline.

- every YAML file parses (no duplicate key) and the Dagster ones pass Dagster's own schemas;
- `compose.yaml` passes the Compose Specification's schema, names only services, volumes and files that exist
  and variables `.env.example` sets, gives each service a healthcheck, and has the services the issue names:
  one Celery worker per queue of the production profile (`core/queues.py`: one per vendor, and Dagster's
  default), each started on the profile's app `integration_assets.core.celery_app`;
- the workers' app, imported with the compose environment, takes the broker and backend compose builds and
  acknowledges a step when it ends;
- every command the files give a Dagster, Celery or dagster-celery program is parsed by that program's own
  command-line parser (options and arguments checked, nothing run);
- the Dockerfile installs the project from its pyproject.toml with the `production` extra and nothing else;
- the Helm values use only keys of the chart's values schema (a copy in `deploy_data/`, see its ORIGIN.md).

Each checker is shown to refuse a broken copy, so a check that passes is a check that could fail.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import referencing
import yaml
from celery.app.utils import find_app
from celery.bin.base import CLIContext

from integration_assets.core.celery_app import BACKEND_ENV, BROKER_ENV
from integration_assets.core.config import ConfigError, compose_yaml
from integration_assets.core.dagster_adapter import dagster_instance_config, ensure_workspace_config
from integration_assets.core.executor import EXECUTOR_ENV
from integration_assets.core.queues import DEFAULT_QUEUE, queues
from integration_assets.systems import CATALOG
from integration_assets_tests.testing import PROJECT

DEPLOY = PROJECT / "deploy"
SCHEMAS = Path(__file__).parent / "deploy_data"
PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
CODE_LOCATION_MODULE = PYPROJECT["tool"]["dagster"]["module_name"]

# The services the issue names, by the role each plays in compose.yaml.
INFRASTRUCTURE = ("postgres", "rabbitmq", "redis")
DAGSTER_SERVICES = ("webserver", "daemon", "code-location")
WORKER_APP = "integration_assets.core.celery_app"  # the production profile's app, built from the environment
# The profile's queues (one per vendor, the steps' dagster-celery/queue tag, then the default one) without a
# prefix: compose.yaml sets no INTEGRATION_CELERY_QUEUE_PREFIX.
QUEUES = queues([system.vendor for system in CATALOG.systems], {})

# The click command behind each program the deployment starts (their console scripts wrap these).
CLI_OBJECTS = {
    "dagster": "dagster._cli:cli",
    "dagster-webserver": "dagster_webserver.cli:cli",
    "dagster-daemon": "dagster._daemon.cli:cli",
    "dagster-celery": "dagster_celery.cli:main",
    "celery": "celery.bin.celery:celery",
}
VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<default>:?-[^}]*)?\}|(?P<plain>[A-Za-z_]\w*))")


def read_yaml(path: Path) -> Any:
    """Parsed by the project's own loader, which refuses a duplicate key (YAML would keep the last silently)."""
    _, document = compose_yaml(path.read_text(encoding="utf-8"), str(path.relative_to(PROJECT)))
    return document


def env_example() -> dict[str, str]:
    pairs = {}
    for number, line in enumerate((DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), f".env.example:{number}: not NAME=value: {line!r}"
            pairs[name] = value
    return pairs


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")


def compose_problems(compose: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """What `docker compose config` would refuse or leave dangling, each naming the service and the entry."""
    problems = [
        f"compose.yaml: {'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in compose_validator().iter_errors(compose)
    ]
    services = compose.get("services", {})
    volumes = compose.get("volumes") or {}
    for where, text in strings(compose):
        for match in VARIABLE.finditer(text.replace("$$", "")):
            name = match["braced"] or match["plain"]
            if name not in env and not (match["default"] or "").lstrip(":").startswith("-"):
                problems.append(f"compose.yaml: {where}: ${{{name}}} is set neither in .env.example nor by a default")
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for needed in depends if isinstance(depends, list) else depends.keys():
            if needed not in services:
                problems.append(f"compose.yaml: services.{name}.depends_on: no service {needed!r}")
        for mount in service.get("volumes", []):
            source = mount.split(":")[0] if isinstance(mount, str) else mount.get("source", "")
            if source.startswith((".", "/")):
                if not (DEPLOY / source).exists():
                    problems.append(f"compose.yaml: services.{name}.volumes: {source} does not exist in deploy/")
            elif source not in volumes:
                problems.append(f"compose.yaml: services.{name}.volumes: no volume {source!r} under volumes")
        env_files = service.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            if env_file != ".env":
                problems.append(f"compose.yaml: services.{name}.env_file: {env_file} is not .env (.env.example's copy)")
        if "healthcheck" not in service:
            problems.append(f"compose.yaml: services.{name}: no healthcheck")
    return problems


def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / "compose_spec.json").read_text(encoding="utf-8"))
    return jsonschema.Draft201909Validator(schema)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string: `${NAME}`, `${NAME:-default}`, `$$` for a literal dollar."""

    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        default = (match["default"] or "").lstrip(":")[1:]
        return env.get(name) or default

    return "$".join(VARIABLE.sub(value, part) for part in text.split("$$"))


def parse_command_line(argv: list[str]) -> click.Context:
    """The program's own parser on `argv`, down to the subcommand that would run; it raises on a wrong option.
    Celery's loads the app `-A` names, as Celery does before it parses a subcommand (nothing connects)."""
    program, *arguments = argv
    module_name, _, attribute = CLI_OBJECTS[program].partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    context = command.make_context(program, list(arguments))
    if program == "celery":  # its subcommands' options read the app, which the group loads before them
        context.obj = CLIContext(app=find_app(context.params["app"]), no_color=True, workdir=None)
    while isinstance(command, click.Group):
        name, *arguments = [*context._protected_args, *context.args]
        subcommand = command.get_command(context, name)
        assert subcommand is not None, f"{shlex.join(argv)}: {program} has no command {name!r}"
        context = subcommand.make_context(name, arguments, parent=context)
        command = subcommand
    return context


def container_commands(compose: Mapping[str, Any], env: Mapping[str, str]) -> Iterator[tuple[str, list[str]]]:
    """Every command and healthcheck of compose.yaml that starts a Dagster or Celery program, interpolated."""
    for name, service in compose["services"].items():
        command = service.get("command")
        argv = command if isinstance(command, list) else shlex.split(command or "")
        if argv and argv[0] in CLI_OBJECTS:
            yield f"services.{name}.command", [interpolate(str(word), env) for word in argv]
        test = service.get("healthcheck", {}).get("test", [])
        kind, *words = test
        argv = shlex.split(words[0]) if kind == "CMD-SHELL" else words
        argv = [interpolate(word, env) for word in argv]
        if argv and argv[0] in CLI_OBJECTS:
            yield f"services.{name}.healthcheck", argv


class AnySchema(dict):
    """An external schema not at hand: every JSON pointer into it finds the empty schema, which admits anything."""

    def __missing__(self, key: str) -> AnySchema:
        return AnySchema()


def undeclared_keys(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], path: str) -> Iterator[str]:
    """The keys of `value` its schema does not declare. Stricter than the schema itself, which lets some objects
    (a user deployment) take any key: a key the chart does not read is a mistake here all the same."""
    alternatives = list(schema_alternatives(schema, root))
    if isinstance(value, list):
        for alternative in alternatives:
            if isinstance(alternative.get("items"), Mapping):
                for index, item in enumerate(value):
                    yield from undeclared_keys(item, alternative["items"], root, f"{path}[{index}]")
                return
    if not isinstance(value, Mapping):
        return
    objects = [alternative for alternative in alternatives if "properties" in alternative or "$ref" in alternative]
    if not objects or any(alternative.get("$ref", "#").startswith("http") for alternative in objects):
        return  # a free-form object (env, configSource) or a Kubernetes shape (the external schema's business)
    for key, item in value.items():
        declared = [
            alternative["properties"][key] for alternative in objects if key in alternative.get("properties", {})
        ]
        if not declared:
            yield f"{path}.{key}" if path else key
        for item_schema in declared:
            yield from undeclared_keys(item, item_schema, root, f"{path}.{key}" if path else key)


def schema_alternatives(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    reference = schema.get("$ref", "")
    if reference.startswith("#/definitions/"):
        yield from schema_alternatives(root["definitions"][reference.removeprefix("#/definitions/")], root)
        return
    yield schema
    for alternative in schema.get("anyOf", []):
        yield from schema_alternatives(alternative, root)


def helm_problems(values: Mapping[str, Any]) -> list[str]:
    """The keys (and value types) the chart's schema does not have. Required keys are not asked for: the chart's
    own values.yaml supplies them, and this file only overrides."""
    schema = json.loads((SCHEMAS / "dagster_chart_values.schema.json").read_text(encoding="utf-8"))
    concurrency = json.loads((SCHEMAS / "dagster_chart_concurrency.schema.json").read_text(encoding="utf-8"))
    # Kubernetes object shapes are references to an external schema: accepted as they are, without the network.
    registry = referencing.Registry(retrieve=lambda uri: referencing.Resource.opaque(AnySchema()))
    overriding = jsonschema.validators.extend(jsonschema.Draft7Validator)
    del overriding.VALIDATORS["required"]  # the extended class's own copy: Draft7Validator keeps its keyword
    chart_values = {key: value for key, value in values.items() if key != "concurrency"}
    problems = [
        f"helm/values.yaml: {path}: not a key of the chart's values"
        for path in undeclared_keys(chart_values, schema, schema, "")
    ]
    problems += [
        f"helm/values.yaml: concurrency.{path}: not a key of the chart's values"
        for path in undeclared_keys(values.get("concurrency", {}), concurrency, concurrency, "")
    ]
    checks = [
        (overriding(schema, registry=registry), chart_values),
        (overriding(concurrency), values.get("concurrency", {})),
    ]
    for validator, document in checks:
        for error in validator.iter_errors(document):
            where = ".".join(map(str, error.absolute_path)) or "(top)"
            problems.append(f"helm/values.yaml: {where}: {error.message}")
    return problems


@pytest.fixture
def image_workdir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands run in the image's WORKDIR, which holds deploy/dagster/'s workspace (the Dockerfile copies it
    there): file arguments are checked to exist, as the programs check them."""
    assert re.search(r"^COPY deploy/dagster/workspace\.yaml \./$", dockerfile(), re.MULTILINE)
    monkeypatch.chdir(DEPLOY / "dagster")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return read_yaml(DEPLOY / "compose.yaml")


@pytest.fixture(scope="module")
def helm_values() -> dict[str, Any]:
    return read_yaml(DEPLOY / "helm" / "values.yaml")


def test_every_deployment_yaml_file_parses_without_a_duplicate_key():
    files = sorted({*DEPLOY.rglob("*.yaml"), PROJECT / "dagster.yaml"})
    assert {path.relative_to(DEPLOY).as_posix() for path in files if DEPLOY in path.parents} >= {
        "compose.yaml",
        "dagster/workspace.yaml",
        "helm/values.yaml",
        "helm/secrets.example.yaml",
    }
    for path in files:
        if path.name == "secrets.example.yaml":
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
            assert all(isinstance(document, dict) for document in documents), path
        else:
            assert isinstance(read_yaml(path), dict), path
    with pytest.raises(ConfigError, match=r"compose\.yaml:3: services\.redis: duplicate key 'redis'"):
        compose_yaml("services:\n  redis: {}\n  redis: {}\n", "compose.yaml")


def test_the_compose_file_passes_the_compose_schema_and_names_only_what_exists(compose):
    assert compose_problems(compose, env_example()) == []


def test_the_compose_checks_refuse_a_broken_file(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["webserver"]["depends_on"]["code-locaton"] = {"condition": "service_healthy"}
    broken["services"]["redis"]["helthcheck"] = broken["services"]["redis"].pop("healthcheck")
    broken["services"]["postgres"]["volumes"].append("pgdata:/var/lib/postgresql/data")
    broken["services"]["daemon"]["environment"] = {"DAGSTER_PG_PASSWORD": "${DAGSTER_PG_PASWORD}"}
    problems = "\n".join(compose_problems(broken, env_example()))
    assert "services.webserver.depends_on: no service 'code-locaton'" in problems
    assert "services.redis: no healthcheck" in problems
    assert "'helthcheck' does not match" in problems  # the schema's word on the unknown key
    assert "no volume 'pgdata' under volumes" in problems
    assert "${DAGSTER_PG_PASWORD} is set neither in .env.example" in problems


def worker_queues(compose: Mapping[str, Any]) -> dict[str, str]:
    """The queue of each Celery worker service (service name -> queue), read by Celery's own parser from the
    service's command, which must start the production profile's app on one queue and name its node after it.
    The node's name as the worker expands it (`%h`: the host's name) is the one its healthcheck pings (`$HOSTNAME`:
    the same name in a container)."""
    workers = {}
    for name, service in compose["services"].items():
        argv = [interpolate(str(word), env_example()) for word in service.get("command") or []]
        if argv[:1] == ["celery"]:
            context = parse_command_line(argv)
            assert context.info_name == "worker", f"services.{name}.command: {shlex.join(argv)} starts no worker"
            assert context.parent.params["app"] == WORKER_APP, f"services.{name}.command: not the profile's app"
            (queue,) = context.params["queues"]
            node = context.params["hostname"]
            assert node == f"{queue}@{socket.gethostname()}", f"services.{name}.command: node not named {queue}"
            healthcheck = interpolate(compose["services"][name]["healthcheck"]["test"][1], env_example())
            ping = parse_command_line(shlex.split(healthcheck))  # its shell expands $HOSTNAME, below
            assert (ping.info_name, ping.params["command"]) == ("inspect", "ping"), f"services.{name}.healthcheck"
            assert ping.parent.params["app"] == WORKER_APP, f"services.{name}.healthcheck: not the profile's app"
            (pinged,) = ping.params["destination"]
            assert pinged.replace("$HOSTNAME", socket.gethostname()) == node, f"services.{name}.healthcheck: not {node}"
            workers[name] = queue
    return workers


def test_the_compose_file_has_every_service_the_issue_names_and_one_worker_per_queue(compose, image_workdir):
    services = compose["services"]
    assert set(INFRASTRUCTURE + DAGSTER_SERVICES) <= set(services)
    workers = worker_queues(compose)
    assert sorted(workers.values()) == sorted(QUEUES) and DEFAULT_QUEUE in QUEUES
    assert all(name == f"worker-{queue}" for name, queue in workers.items())


def test_the_worker_check_refuses_a_worker_off_the_profiles_app_or_queues(compose, image_workdir):
    broken = copy.deepcopy(compose)
    broken["services"]["worker-hubspot"]["command"][2] = "dagster_celery.app"
    with pytest.raises(AssertionError, match=r"services\.worker-hubspot\.command: not the profile's app"):
        worker_queues(broken)
    broken = copy.deepcopy(compose)
    stripe_check = broken["services"]["worker-stripe"]["healthcheck"]["test"]
    stripe_check[1] = stripe_check[1].replace("stripe@", "billing@")  # pings a node no worker starts
    with pytest.raises(AssertionError, match=r"services\.worker-stripe\.healthcheck: not stripe@"):
        worker_queues(broken)
    broken = copy.deepcopy(compose)
    del broken["services"]["worker-zendesk"]
    support = broken["services"]["worker-support"] = copy.deepcopy(compose["services"]["worker-zendesk"])
    support["command"][5:8] = ["support", "-n", "support@%h"]  # the vendor's role, not the vendor
    support["healthcheck"]["test"][1] = support["healthcheck"]["test"][1].replace("zendesk@", "support@")
    assert set(QUEUES) - set(worker_queues(broken).values()) == {"zendesk"}, "a queue no worker reads"


def test_the_webserver_and_daemon_reach_the_code_location_the_workspace_names(compose, image_workdir):
    workspace = read_yaml(DEPLOY / "dagster" / "workspace.yaml")
    ensure_workspace_config(workspace, str(DEPLOY / "dagster" / "workspace.yaml"))  # Dagster's own schema
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    grpc = parse_command_line(compose["services"]["code-location"]["command"])
    assert grpc.info_name == "grpc"
    assert grpc.params["module_name"] == CODE_LOCATION_MODULE
    assert server["host"] in compose["services"] and server["host"] == "code-location"
    assert server["port"] == grpc.params["port"]
    assert server["location_name"] == grpc.params["location_name"] == PYPROJECT["tool"]["dagster"]["code_location_name"]
    for name in ("webserver", "daemon"):
        context = parse_command_line(compose["services"][name]["command"])
        assert context.params["workspace"] == ("workspace.yaml",), name
        assert compose["services"][name]["depends_on"]["code-location"] == {"condition": "service_healthy"}


def test_every_dagster_and_celery_command_parses_with_its_own_program(compose, image_workdir):
    env = env_example()
    commands = dict(container_commands(compose, env))
    assert {where.split(".")[1] for where in commands} >= {
        *DAGSTER_SERVICES,
        *(f"worker-{queue}" for queue in QUEUES),
    }
    for where, argv in commands.items():
        try:
            parse_command_line(argv)
        except click.ClickException as error:
            pytest.fail(f"compose.yaml: {where}: {shlex.join(argv)}: {error.format_message()}")
    dockerfile_cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile(), re.MULTILINE)[1])
    assert parse_command_line(dockerfile_cmd).params["module_name"] == CODE_LOCATION_MODULE
    with pytest.raises(click.UsageError, match="--location"):
        parse_command_line(["dagster", "api", "grpc", "-m", CODE_LOCATION_MODULE, "--location", "x"])


def test_compose_variables_come_from_the_example_env_which_holds_no_secret(compose):
    env = env_example()
    used = {
        match["braced"] or match["plain"]
        for _, text in strings(compose)
        for match in VARIABLE.finditer(text.replace("$$", ""))
    }
    assert used - set(env) <= {"INTEGRATION_IMAGE", "WEBSERVER_PORT", "CELERY_WORKER_CONCURRENCY"}
    secret_names = [name for name in env if re.search(r"PASSWORD|TOKEN|API_KEY|SECRET", name)]
    assert secret_names, "the vendors' credentials and the passwords are settings of .env.example"
    assert {env[name] for name in secret_names} == {"change-me"}


def service_environment(compose: Mapping[str, Any], service: str) -> dict[str, str]:
    """The environment compose gives `service` (its env_file aside), interpolated with .env.example's values."""
    environment = compose["services"][service]["environment"]
    return {name: interpolate(str(value), env_example()) for name, value in environment.items()}


def test_the_celery_workers_run_the_production_profile_and_acknowledge_a_step_when_it_ends(compose):
    """The workers' app as a worker imports it, in a fresh interpreter with the environment compose gives the
    workers: the broker and backend compose builds, and the delivery rules of the profile."""
    env = env_example()
    worker_env = service_environment(compose, "worker-hubspot")
    assert worker_env == service_environment(compose, "code-location"), "the runs and the workers agree"
    assert worker_env[EXECUTOR_ENV] == "celery"
    broker = f"amqp://{env['RABBITMQ_USER']}:{env['RABBITMQ_PASSWORD']}@rabbitmq:5672//"
    assert worker_env[BROKER_ENV] == broker
    assert worker_env[BACKEND_ENV].startswith("redis://redis:6379/")
    assert {"rabbitmq", "redis"} <= set(compose["services"]["worker-hubspot"]["depends_on"])
    report = (
        f"import json; from {WORKER_APP} import app; conf = app.conf; task = app.tasks['execute_plan']; "
        "print(json.dumps([conf.broker_url, conf.result_backend, conf.task_acks_late, "
        "conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier, task.acks_late, "
        "task.reject_on_worker_lost, conf.task_default_queue]))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", report],
        env={**os.environ, **worker_env},
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout.splitlines()[-1]) == [
        broker,
        worker_env[BACKEND_ENV],
        True,
        True,
        1,
        True,
        True,
        DEFAULT_QUEUE,
    ]


def test_the_instance_of_the_image_is_the_projects_production_dagster_yaml():
    config, _ = dagster_instance_config(str(PROJECT), "dagster.yaml")  # Dagster's own schema
    assert "postgres" in config["storage"]
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert re.search(r"^COPY dagster\.yaml \$\{DAGSTER_HOME\}/dagster\.yaml$", dockerfile(), re.MULTILINE)


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text(encoding="utf-8")


def test_the_image_installs_the_project_from_its_pyproject_and_nothing_else():
    text = dockerfile()
    installs = re.findall(r"pip install ([^\n\\&]+)", text)
    assert installs == ['".[${EXTRAS}]" '], "one pip install: the project itself, with its extras"
    assert re.search(r"^ARG EXTRAS=production$", text, re.MULTILINE)
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(req.startswith("dagster-celery[redis]") for req in extras["production"])
    assert any(re.match(r"redis\b", req) for req in extras["production"])
    # The Helm chart's instance names dagster-k8s's run launcher: the image its instructions build has it.
    assert any(req.startswith("dagster-k8s") for req in extras["kubernetes"])
    for path in (DEPLOY / "README.md", DEPLOY / "helm" / "values.yaml"):
        assert "--build-arg EXTRAS=production,kubernetes" in path.read_text(encoding="utf-8"), path
    dependencies = " ".join(PYPROJECT["project"]["dependencies"])
    assert "dagster-postgres" in dependencies and "dagster-webserver" in dependencies
    python = re.search(r"^FROM python:(\d+\.\d+)", text, re.MULTILINE)[1]
    assert python == re.search(r">=(\d+\.\d+)", PYPROJECT["project"]["requires-python"])[1]
    # What the Dockerfile copies exists, and the build context's ignore file lets it through.
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    admitted = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    sources = [
        source
        for line in re.findall(r"^COPY (.+)$", text, re.MULTILINE)
        for source in line.split()[:-1]
        if not source.startswith("--")
    ]
    assert "pyproject.toml" in sources and "integration_assets" in sources
    for source in sources:
        assert (PROJECT / source).exists(), source
        assert any(source == kept or source.startswith(kept + "/") for kept in admitted), source


def test_the_helm_values_use_only_keys_of_the_charts_values_schema(helm_values):
    assert helm_problems(helm_values) == []


def test_the_helm_check_refuses_a_key_the_chart_does_not_have(helm_values):
    broken = copy.deepcopy(helm_values)
    broken["dagster-user-deployments"]["deployments"][0]["dagsterApiGrpcArg"] = ["-m", "x"]
    broken["runLauncher"]["config"]["k8sRunLauncher"]["envSecret"] = []
    broken["concurrency"]["pools"]["default_limit"] = 1
    broken["userDeployments"] = {}
    problems = "\n".join(helm_problems(broken))
    assert "dagster-user-deployments.deployments[0].dagsterApiGrpcArg: not a key of the chart's values" in problems
    assert "runLauncher.config.k8sRunLauncher.envSecret: not a key" in problems
    assert "concurrency.pools.default_limit: not a key" in problems
    assert "'default_limit' was unexpected" in problems  # the schema's own word where it forbids unknown keys
    assert "userDeployments: not a key of the chart's values" in problems


def test_the_helm_user_deployment_serves_this_code_location_with_its_secrets(helm_values):
    (deployment,) = helm_values["dagster-user-deployments"]["deployments"]
    grpc = parse_command_line(["dagster", "api", "grpc", *deployment["dagsterApiGrpcArgs"]])
    assert grpc.params["module_name"] == CODE_LOCATION_MODULE
    secrets = {
        document["metadata"]["name"]: document["stringData"]
        for document in yaml.safe_load_all((DEPLOY / "helm" / "secrets.example.yaml").read_text(encoding="utf-8"))
    }
    assert {ref["name"] for ref in deployment["envSecrets"]} <= set(secrets)
    launched = helm_values["runLauncher"]["config"][
        {"K8sRunLauncher": "k8sRunLauncher", "CeleryK8sRunLauncher": "celeryK8sRunLauncher"}[
            helm_values["runLauncher"]["type"]
        ]
    ]
    assert {ref["name"] for ref in launched["envSecrets"]} <= set(secrets)
    assert "postgresql-password" in secrets[helm_values["global"]["postgresqlSecretName"]]
    environment = {key for ref in deployment["envSecrets"] for key in secrets[ref["name"]]}
    assert {"WAREHOUSE_URL", "HUBSPOT_ACCESS_TOKEN", "STRIPE_API_KEY", "ZENDESK_API_TOKEN"} <= environment
    placeholders = {
        value for data in secrets.values() for key, value in data.items() if re.search("TOKEN|KEY|password", key)
    }
    assert placeholders == {"change-me"}
