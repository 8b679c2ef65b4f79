"""A checklist for the Dockerfile that hadolint cannot know: this project's ports, user, health check and stages.

hadolint (`make lint`) checks general Dockerfile practice; these tests check the image against the server:
- two stages from one pinned base image, `serving` before `train` (the legacy builder builds every stage up to
  its target, so `--target serving` must not reach train), and a last stage that is `serving` unchanged, so a
  build without --target is the service;
- the serving stage installs the base package only (no extras, no TensorFlow), with constraints.txt and
  --no-cache-dir, and never COPYs training/;
- it bakes in models/ and points the server at it;
- its final USER is a numeric non-root uid:gid (Kubernetes' runAsNonRoot can only verify a number), created
  with that group and a HOME that exists;
- EXPOSE is exactly the server's default gRPC and metrics ports (server/settings.py);
- HEALTHCHECK runs the grpc.health.v1 probe with no port or transport of its own: it reads the server's env;
- ENTRYPOINT is `python -m server` bound to all interfaces (the container's network namespace);
- no ADD (no URLs or archives fetched at build time) and .dockerignore keeps local state out of the context.
"""

from __future__ import annotations

import re

from server.settings import Settings
from tests.deploy.dockerfile import ROOT, copy_sources, env_values, stage, stages


def test_two_stages_from_one_pinned_base_serving_first() -> None:
    found = stages()
    assert [s.name for s in found[:2]] == ["serving", "train"]
    assert found[0].base == found[1].base
    # A full patch version and Debian release, never a floating tag such as latest or 3.11-slim.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", found[0].base), found[0].base


def test_the_default_target_is_the_serving_image() -> None:
    last = stages()[-1]
    assert last.base == "serving" and not last.instructions, "the last stage must be `FROM serving`, unchanged"


def test_train_stage_installs_the_train_extra_and_runs_train_export() -> None:
    train = stage("train")
    installs = [i.args for i in train.all("RUN") if "pip install" in i.args]
    assert any("-c constraints.txt" in r and ".[train]" in r for r in installs), installs
    assert train.one("CMD").exec_form() == ["make", "train-export"]
    copied = {s for ins in train.all("COPY") for s in copy_sources(ins)[0]}
    assert {"Makefile", "training/", "server/", "gen/python/"} <= copied


def test_serving_stage_installs_only_the_base_package() -> None:
    serving = stage("serving")
    installs = [i.args for i in serving.all("RUN") if "pip" in i.args]
    assert len(installs) == 1, installs
    assert re.search(r"python -m pip install --no-cache-dir -c constraints\.txt \.( |$)", installs[0]), installs[0]
    copied = {s.rstrip("/") for ins in serving.all("COPY") for s in copy_sources(ins)[0]}
    assert "training" not in copied and "." not in copied, copied
    assert not any("--from" in ins.args for ins in serving.all("COPY"))


def test_serving_stage_bakes_in_the_models_and_serves_them() -> None:
    serving = stage("serving")
    copies = [copy_sources(ins) for ins in serving.all("COPY")]
    assert (["models/"], "models/") in copies
    assert serving.one("WORKDIR").args == "/app"
    assert env_values(serving)["DWCP_INFERENCE_MODEL_DIR"] == "/app/models"


def test_runs_as_a_numeric_non_root_user_and_group_that_exist() -> None:
    serving = stage("serving")
    user = serving.all("USER")[-1].args
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, user
    # USER comes after every RUN, so nothing in the final image runs as root at build time afterwards either.
    keywords = [i.keyword for i in serving.instructions]
    assert "RUN" not in keywords[keywords.index("USER") :]
    (create,) = [i.args for i in serving.all("RUN") if "useradd " in i.args]
    # The gid must be a group's (useradd --user-group would pick a free system gid, not this one).
    assert re.search(rf"groupadd [^&]*--gid {gid}\b", create), create
    assert re.search(rf"useradd [^&]*--uid {uid}\b", create) and re.search(rf"useradd [^&]*--gid {gid}\b", create)
    assert "--user-group" not in create and "--no-create-home" not in create, create


def test_home_exists_for_the_user() -> None:
    serving = stage("serving")
    home = env_values(serving)["HOME"]
    (create,) = [i.args for i in serving.all("RUN") if "useradd " in i.args]
    assert f"--home-dir {home}" in create and "--create-home" in create, create


def test_expose_matches_the_server_defaults() -> None:
    exposed = stage("serving").one("EXPOSE").args.split()
    assert exposed == [str(Settings.grpc_port), str(Settings.metrics_port)]


def test_healthcheck_reads_the_servers_settings_from_the_environment() -> None:
    check = stage("serving").one("HEALTHCHECK")
    command = check.exec_form()
    # No port, host or TLS flag: those would disagree with a server configured by DWCP_INFERENCE_* variables.
    assert command == ["python", "-m", "server.healthcheck"]
    assert "--start-period=" in check.args and "--timeout=" in check.args


def test_healthcheck_module_does_not_import_training_code() -> None:
    source = (ROOT / "server" / "healthcheck.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+(training|tensorflow)", source, re.MULTILINE)


def test_entrypoint_serves_on_all_interfaces() -> None:
    assert stage("serving").one("ENTRYPOINT").exec_form() == ["python", "-m", "server", "--host", "0.0.0.0"]


def test_no_add_and_no_cache_everywhere() -> None:
    for s in stages():
        assert not s.all("ADD"), f"stage {s.name}: use COPY; ADD can fetch URLs and unpack archives"
        for ins in s.all("RUN"):
            if "pip install" in ins.args:
                assert "--no-cache-dir" in ins.args, ins.args
            if "apt-get install" in ins.args:
                assert "--no-install-recommends" in ins.args and "rm -rf /var/lib/apt/lists/*" in ins.args


def test_dockerignore_keeps_local_state_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".venv-serve", ".tools", "data"} <= ignored
    assert "models" not in ignored and "models/" not in ignored, "the serving stage COPYs models/"
    for s in stages():
        for ins in s.all("COPY"):
            for source in copy_sources(ins)[0]:
                assert source.rstrip("/") not in ignored, f"{source} is COPYed but excluded by .dockerignore"
