"""The proto contract: requests build from the generated code; buf's lint and breaking checks are wired up.

buf (buf.yaml, `make lint`) checks the STANDARD and COMMENTS rules and breaking changes against the
released API; the tests here show that the configuration catches what it is there for, and keep the one
project rule buf cannot know: units in numeric field names.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from dwcp.inference.v1 import inference_pb2 as pb
from dwcp.inference.v1 import inference_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto" / "dwcp" / "inference" / "v1" / "inference.proto"
BUF = ROOT / ".tools" / "bin" / "buf"
needs_buf = pytest.mark.skipif(not BUF.exists(), reason="buf is installed by `make tools` (or `make lint`)")
RPCS = ["PredictBandwidth", "SelectCompression", "DetectAnomaly", "DetectHighLatency", "GetModelInfo"]


def _sample() -> pb.LinkSample:
    return pb.LinkSample(
        rtt_ms=42.0,
        jitter_ms=1.5,
        throughput_mbps=900.0,
        packet_loss_ratio=0.001,
        link_type=pb.LINK_TYPE_WAN,
        network_tier=pb.NETWORK_TIER_TIER2,
        congestion_window_segments=3200,
    )


def test_a_request_for_each_rpc_round_trips() -> None:
    requests = [
        pb.PredictBandwidthRequest(links=[pb.LinkWindow(link_id="a-b", samples=[_sample()] * 10)]),
        pb.SelectCompressionRequest(
            items=[
                pb.CompressionFeatures(
                    link_id="a-b",
                    throughput_mbps=900,
                    rtt_ms=42,
                    link_type=pb.LINK_TYPE_WAN,
                    hde_compression_ratio=2.5,
                    hde_delta_hit_ratio=0.3,
                    amst_transfer_rate_mbps=850,
                )
            ]
        ),
        pb.DetectAnomalyRequest(
            nodes=[
                pb.NodeMetrics(
                    node_id="n1",
                    uptime_pct=99.9,
                    failure_ratio=0.001,
                    packet_loss_ratio=0.0005,
                    retransmits_count=3,
                    error_budget_burn_rate=0.4,
                    rtt_ms=42,
                )
            ]
        ),
        pb.DetectHighLatencyRequest(
            windows=[pb.LatencyWindow(cluster_id="c1", consensus_latencies_ms=[10.0 + i for i in range(20)])]
        ),
    ]
    for request in requests:
        decoded = type(request).FromString(request.SerializeToString())
        assert decoded == request
    assert len(requests[0].links[0].samples) == 10
    assert requests[3].windows[0].consensus_latencies_ms[19] == 29.0


def test_stub_exposes_every_rpc() -> None:
    service = pb.DESCRIPTOR.services_by_name["InferenceService"]
    assert [m.name for m in service.methods] == RPCS
    assert hasattr(pb_grpc, "InferenceServiceStub")
    assert hasattr(pb_grpc, "add_InferenceServiceServicer_to_server")


@pytest.fixture(scope="module")
def file_descriptor(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorProto:
    # protoc in a subprocess: grpc_tools' in-process compiler can crash once other protobuf users are loaded.
    out = tmp_path_factory.mktemp("desc") / "set.pb"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{ROOT / 'proto'}",
        "--include_source_info",
        f"--descriptor_set_out={out}",
        str(PROTO),
    ]
    subprocess.run(command, check=True)
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return fds.file[0]


def test_unit_bearing_field_names(file_descriptor: descriptor_pb2.FileDescriptorProto) -> None:
    """Numeric fields name their unit; only ids, enums, flags and documented dimensionless values are exempt."""
    unit_suffixes = ("_ms", "_mbps", "_ratio", "_pct", "_count", "_segments", "_rate", "_probabilities")
    dimensionless = {
        "level",
        "probability",
        "confidence",
        "interval_level",
        "anomaly_score",
        "threshold",
        "reconstruction_error",
        "max_value",
        "min_value",
        "max_batch_items",
    }
    double = descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE
    offenders = [
        f"{m.name}.{f.name}"
        for m in file_descriptor.message_type
        for f in m.field
        if f.type == double and not f.name.endswith(unit_suffixes) and f.name not in dimensionless
    ]
    assert not offenders, offenders


@pytest.mark.skipif(shutil.which("go") is None, reason="go is needed to build the Go plugins")
def test_check_generated_fails_after_a_hand_edit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for rel in ["Makefile", "pyproject.toml", "constraints.txt", "proto", "gen", "clients/go/gen", "scripts"]:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, repo / rel, copy_function=shutil.copy2)
        else:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], check=True)
    make = [
        "make",
        "-s",
        "-C",
        str(repo),
        f"VENV={ROOT / '.venv'}",
        f"TOOLS={ROOT / '.tools' / 'bin'}",
        "check-generated",
    ]
    clean = subprocess.run(make, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    stub = repo / "gen/python/dwcp/inference/v1/inference_pb2_grpc.py"
    stub.write_text(stub.read_text() + "\n# hand edit\n")
    subprocess.run([*git, "commit", "-qam", "hand edit"], check=True)
    edited = subprocess.run(make, capture_output=True, text=True)
    assert edited.returncode != 0
    assert "stale or hand-edited" in edited.stderr


def _release_image() -> Path:
    """The released API's image that the Makefile's `buf breaking` compares against."""
    make = subprocess.run(
        [
            "make",
            "-s",
            "--no-print-directory",
            "-C",
            str(ROOT),
            "--eval=print-image: ; @echo $(PROTO_RELEASE_IMAGE)",
            "print-image",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return ROOT / make.stdout.strip()


def _module_copy(tmp_path: Path, edit: tuple[str, str] | None = None) -> Path:
    """buf.yaml and proto/ copied into tmp_path, with one text replacement in the .proto applied."""
    shutil.copy2(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "proto", tmp_path / "proto", ignore=shutil.ignore_patterns("releases"))
    if edit is not None:
        proto = tmp_path / PROTO.relative_to(ROOT)
        text = proto.read_text()
        assert text.count(edit[0]) == 1, f"the edit must match exactly once: {edit[0]!r}"
        proto.write_text(text.replace(edit[0], edit[1]))
    return tmp_path


def _buf(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), *args], cwd=workspace, capture_output=True, text=True, timeout=120)


def test_release_image_holds_the_released_service() -> None:
    image = descriptor_pb2.FileDescriptorSet.FromString(_release_image().read_bytes())
    (released,) = [f for f in image.file if f.name == "dwcp/inference/v1/inference.proto"]
    assert released.package == "dwcp.inference.v1"
    assert [m.name for m in released.service[0].method] == RPCS


@needs_buf
def test_buf_lint_and_breaking_pass_on_the_committed_proto(tmp_path: Path) -> None:
    workspace = _module_copy(tmp_path)
    lint = _buf(workspace, "lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    breaking = _buf(workspace, "breaking", "--against", str(_release_image()))
    assert breaking.returncode == 0, breaking.stdout + breaking.stderr


# Each edit breaks one rule the hand-written tests used to check; buf must name it.
LINT_EDITS = {
    "ENUM_ZERO_VALUE_SUFFIX": ("LINK_TYPE_UNSPECIFIED = 0;", "LINK_TYPE_NONE = 0;"),
    "ENUM_VALUE_PREFIX": ("NETWORK_TIER_TIER1 = 1;", "TIER1 = 1;"),
    "PACKAGE_VERSION_SUFFIX": ("package dwcp.inference.v1;", "package dwcp.inference;"),
    "RPC_REQUEST_STANDARD_NAME": (
        "rpc GetModelInfo(GetModelInfoRequest)",
        "rpc GetModelInfo(PredictBandwidthRequest)",
    ),
    "COMMENT_FIELD": ("  // Current round-trip time in milliseconds. Range 0 < rtt_ms <= 10000.\n", ""),
    "COMMENT_RPC": (
        "  // DetectAnomaly scores each node's reliability metrics for anomaly (0 normal, 1 anomalous).\n",
        "",
    ),
}


@needs_buf
@pytest.mark.parametrize("rule", sorted(LINT_EDITS))
def test_buf_lint_catches_what_the_house_rules_forbid(tmp_path: Path, rule: str) -> None:
    lint = _buf(_module_copy(tmp_path, LINT_EDITS[rule]), "lint", "--error-format", "json")
    assert lint.returncode != 0, f"buf lint passed a proto that breaks {rule}"
    assert f'"type":"{rule}"' in lint.stdout, lint.stdout + lint.stderr


BREAKING_EDITS = {
    "a renamed field": (("double rtt_ms = 1;", "double round_trip_ms = 1;"), "FIELD_SAME_NAME"),
    "a renumbered field": (("double jitter_ms = 2;", "double jitter_ms = 99;"), "FIELD_NO_DELETE"),
    "a removed RPC": (
        ("  rpc DetectHighLatency(DetectHighLatencyRequest) returns (DetectHighLatencyResponse);\n", ""),
        "RPC_NO_DELETE",
    ),
}


@needs_buf
@pytest.mark.parametrize("change", sorted(BREAKING_EDITS))
def test_buf_breaking_catches_a_breaking_change_against_the_release(tmp_path: Path, change: str) -> None:
    edit, rule = BREAKING_EDITS[change]
    breaking = _buf(
        _module_copy(tmp_path, edit), "breaking", "--against", str(_release_image()), "--error-format", "json"
    )
    assert breaking.returncode != 0, f"buf breaking passed {change}"
    assert f'"type":"{rule}"' in breaking.stdout, breaking.stdout + breaking.stderr


@needs_buf
def test_buf_breaking_allows_an_added_field(tmp_path: Path) -> None:
    added = ("double rtt_ms = 1;", "double rtt_ms = 1;\n  // Added after the release.\n  double hop_count_ratio = 99;")
    breaking = _buf(_module_copy(tmp_path, added), "breaking", "--against", str(_release_image()))
    assert breaking.returncode == 0, breaking.stdout + breaking.stderr
