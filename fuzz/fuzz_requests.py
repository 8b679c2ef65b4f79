"""Atheris fuzz harness: bytes -> each request type -> the server's decode, validation and encode path.

The first byte picks the RPC, the rest is the request as it arrives on the wire. Only outcomes the server
turns into a clean status are allowed: an Undecodable request or a ValidationError, each an INVALID_ARGUMENT
whose BadRequest detail names a field. Any other exception is a finding, and atheris stops with the input
that caused it.

    python fuzz/fuzz_requests.py -max_total_time=60        # what `make fuzz` runs (FUZZ_SECONDS)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris
import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gen" / "python")]

with atheris.instrument_imports(include=["server", "dwcp"]):
    from dwcp.inference.v1 import inference_pb2 as pb
    from server.app import InferenceApp  # noqa: F401 - instrument the modules the server runs
    from server.codec import encode_request
    from server.errors import FieldViolation, rich_status
    from server.runtime import LoadedModel, load_version
    from server.validation import ValidationError
    from server.wire import Undecodable, parser

from bench.tiny_models import write_model_set  # noqa: E402 - after the path set-up
from bench.tiny_requests import build_request, random_inputs  # noqa: E402

MAX_BATCH_ITEMS = 1024
RPCS = ("PredictBandwidth", "SelectCompression", "DetectAnomaly", "DetectHighLatency", "GetModelInfo")
REQUEST_TYPES = {
    method.name: getattr(pb, method.input_type.name)
    for method in pb.DESCRIPTOR.services_by_name["InferenceService"].methods
}
PARSERS = {rpc: parser(kind) for rpc, kind in REQUEST_TYPES.items()}


def _load_models() -> dict[str, LoadedModel]:
    """The tiny test models of all four kinds, loaded the way the server loads them."""
    directory = Path(tempfile.mkdtemp(prefix="fuzz-models-"))
    write_model_set(directory)
    models = {}
    for model_dir in sorted(directory.iterdir()):
        (version_dir,) = sorted(model_dir.iterdir())
        model = load_version(version_dir, 1, MAX_BATCH_ITEMS)
        models[model.manifest.rpc] = model
    return models


MODELS = _load_models()


def test_one_input(data: bytes) -> None:
    """Decode, validate, and for a valid request run the model and build the response."""
    if not data:
        return
    rpc = RPCS[data[0] % len(RPCS)]
    request = PARSERS[rpc](data[1:])
    if isinstance(request, Undecodable):
        _refuse(request.error())
        return
    if rpc == "GetModelInfo":
        return
    model = MODELS[rpc]
    try:
        ids, inputs = encode_request(
            model.spec, request, model.manifest, model.range_check, MAX_BATCH_ITEMS, model.layout
        )
    except ValidationError as exc:
        _refuse(exc)
        return
    model.spec.build_response(ids, model.run(inputs), model.manifest).SerializeToString()


def _refuse(error: ValidationError) -> None:
    """Build the INVALID_ARGUMENT status the caller would get; a refusal must name a field."""
    if not error.field:
        raise AssertionError(f"a refusal without a field path: {error}")
    rich_status(grpc.StatusCode.INVALID_ARGUMENT, str(error), [FieldViolation(error.field, error.reason)])


def _seed_corpus() -> str:
    """A corpus directory seeded with valid requests of each RPC (1 and 3 items), so mutations reach deep."""
    directory = Path(tempfile.mkdtemp(prefix="fuzz-corpus-"))
    for index, rpc in enumerate(RPCS[:4]):
        for items in (1, 3):
            request = build_request(rpc, random_inputs(rpc, items, seed=items))
            (directory / f"{rpc}-{items}").write_bytes(bytes([index]) + request.SerializeToString())
    (directory / "GetModelInfo").write_bytes(bytes([4]) + pb.GetModelInfoRequest(model_name="x").SerializeToString())
    return str(directory)


def main() -> None:
    """Fuzz until libFuzzer's limits (e.g. -max_total_time=N) stop it; without a corpus argument, seed one."""
    argv = list(sys.argv)
    if not any(not arg.startswith("-") for arg in argv[1:]):
        argv.append(_seed_corpus())
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
