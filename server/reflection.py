"""Server reflection whose symbol lookup also resolves method names (ghz asks for `Service.Method`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import reflection


class MethodAwarePool:
    """The default descriptor pool, except that a method's full name resolves to its service's file.

    The upb-based protobuf runtime does not index method symbols, so `grpcurl describe Svc.Method` and ghz
    (which resolves the method before calling) would get NOT_FOUND from the stock reflection service.
    """

    def __init__(self, pool: Any = None) -> None:
        self._pool = pool if pool is not None else descriptor_pool.Default()

    def FindFileContainingSymbol(self, name: str) -> Any:  # noqa: N802 (DescriptorPool's method name)
        """The file defining `name`; for `pkg.Service.Method`, the file of `pkg.Service`."""
        try:
            return self._pool.FindFileContainingSymbol(name)
        except KeyError:
            service_name, _, method = name.rpartition(".")
            try:
                service = self._pool.FindServiceByName(service_name)
            except KeyError:
                service = None
            if service is None or method not in service.methods_by_name:
                raise
            return service.file

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._pool, attribute)


def enable_reflection(service_names: Iterable[str], server: Any) -> None:
    """Register the reflection service listing `service_names` on a gRPC server."""
    names = (*service_names, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server, pool=MethodAwarePool())
