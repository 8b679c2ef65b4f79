"""The proto contract: requests build from the generated code, and the .proto keeps buf-style hygiene."""

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


def test_package_is_versioned(file_descriptor: descriptor_pb2.FileDescriptorProto) -> None:
    assert file_descriptor.package == "dwcp.inference.v1"


def test_enums_start_with_prefixed_unspecified(file_descriptor: descriptor_pb2.FileDescriptorProto) -> None:
    assert file_descriptor.enum_type, "expected LinkType and NetworkTier"
    for enum in file_descriptor.enum_type:
        prefix = "".join("_" + c if c.isupper() else c.upper() for c in enum.name).lstrip("_")
        assert enum.value[0].number == 0
        assert enum.value[0].name == f"{prefix}_UNSPECIFIED"
        for value in enum.value:
            assert value.name.startswith(prefix + "_"), value.name


def test_each_rpc_has_its_own_request_and_response(file_descriptor: descriptor_pb2.FileDescriptorProto) -> None:
    seen: set[str] = set()
    for method in file_descriptor.service[0].method:
        assert method.input_type == f".dwcp.inference.v1.{method.name}Request"
        assert method.output_type == f".dwcp.inference.v1.{method.name}Response"
        assert method.input_type not in seen
        seen.add(method.input_type)


def test_every_element_has_a_comment(file_descriptor: descriptor_pb2.FileDescriptorProto) -> None:
    commented = {tuple(loc.path) for loc in file_descriptor.source_code_info.location if loc.leading_comments.strip()}
    missing: list[str] = []
    # Paths per descriptor.proto: 4 message_type, 2 field, 5 enum_type, 2 value, 6 service, 2 method.
    for i, message in enumerate(file_descriptor.message_type):
        if (4, i) not in commented:
            missing.append(message.name)
        missing += [f"{message.name}.{f.name}" for j, f in enumerate(message.field) if (4, i, 2, j) not in commented]
    for i, enum in enumerate(file_descriptor.enum_type):
        if (5, i) not in commented:
            missing.append(enum.name)
        missing += [f"{enum.name}.{v.name}" for j, v in enumerate(enum.value) if (5, i, 2, j) not in commented]
    for i, service in enumerate(file_descriptor.service):
        if (6, i) not in commented:
            missing.append(service.name)
        missing += [f"{service.name}.{m.name}" for j, m in enumerate(service.method) if (6, i, 2, j) not in commented]
    assert not missing, f"elements without a comment: {missing}"


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
