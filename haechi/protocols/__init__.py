# SPDX-License-Identifier: Apache-2.0
"""Protocol adapters: route classification and streaming descriptors per upstream API."""

from haechi.protocols.adapters import (
    ADAPTERS,
    ProtocolAdapter,
    RouteSpec,
    adapter_for,
    asks_several_choices,
    is_streaming_request,
    known_adapters,
    manages_models,
    normalized_path,
    plain_stream_flag,
    request_models,
)
from haechi.protocols.types import BlockKinds, FinalText, FragmentSpec, Route, StreamDescriptor

__all__ = [
    "ADAPTERS",
    "BlockKinds",
    "FinalText",
    "FragmentSpec",
    "ProtocolAdapter",
    "Route",
    "RouteSpec",
    "StreamDescriptor",
    "adapter_for",
    "asks_several_choices",
    "is_streaming_request",
    "known_adapters",
    "manages_models",
    "normalized_path",
    "plain_stream_flag",
    "request_models",
]
