# SPDX-License-Identifier: Apache-2.0
"""Route tables of the upstream APIs haechi sits in front of.

An adapter never picks JSON paths to inspect: request and response protection always walk
the whole body. What an adapter decides is only *which route* a request is (its id and
operation name, for audit and metrics), whether that route streams by default, and how its
stream is framed (:class:`~haechi.protocols.types.StreamDescriptor`). Unknown paths are
still protected in both directions, under the route id ``unknown``.

Matching is on the path without its query: an exact path first, then — for Gemini, whose
model lives in the path — a ``:<method>`` suffix of the last path segment. The path matched
is the one a lenient upstream serves (:func:`normalized_path`: empty and dot segments
resolved, and a trailing slash dropped when the path names no route with it), so
``/v1//completions`` and ``/v1/completions/`` get the checks of ``/v1/completions``, which
nginx and other servers that merge slashes, or routers that ignore a trailing slash, answer
for them; the request still goes upstream as sent.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from haechi.errors import ConfigError
from haechi.protocols.member_names import members_named
from haechi.protocols.token_ids import NO_TOKEN_IDS, TokenIdFields
from haechi.protocols.types import (
    EACH,
    EVERY,
    BlockKinds,
    FinalText,
    FragmentSpec,
    Route,
    StreamDescriptor,
)

__all__ = [
    "ADAPTERS",
    "ProtocolAdapter",
    "RouteSpec",
    "adapter_for",
    "asks_several_choices",
    "is_streaming_request",
    "known_adapters",
    "manages_models",
    "normalized_path",
    "plain_stream_flag",
    "request_models",
]

#: The top-level request fields that may carry token ids on a path no adapter knows: those
#: of the known routes, and those servers read on paths the adapters leave out (vLLM's
#: ``/invocations``, ``/pooling`` and ``/classify``, llama.cpp's ``/rerank``, SGLang's
#: ``/generate`` and ``/v1/score``).
UNKNOWN_ROUTE_TOKEN_ID_INPUTS: Final = (
    "prompt",
    "input",
    "input_ids",
    "input_extra",
    "input_prefix",
    "input_suffix",
    "content",
    "context",
    "tokens",
    "token_ids",
    "query",
    "documents",
    "items",
)

#: The paths, on a server that serves them, that change which weights a model name serves:
#: Ollama's model management (a copy or a create from another model onto an allowed name, a
#: pull, a push, a delete), vLLM's runtime LoRA loading (``/v1/load_lora_adapter``: an
#: adapter loaded under an allowed name is served for it) and SGLang's LoRA loading and weight
#: updates. A request to one on a path no adapter knows, under any prefix (vLLM's ``/v1``,
#: LiteLLM's ``/vllm/…`` pass-through), is refused under a model allowlist, whatever model
#: its body names (those servers read none there), as it is on the Ollama adapter's own
#: routes.
UNKNOWN_ROUTE_MODEL_MANAGEMENT: Final = (
    "/api/create",
    "/api/copy",
    "/api/pull",
    "/api/push",
    "/api/delete",
    "/load_lora_adapter",
    "/unload_lora_adapter",
    "/update_weights_from_disk",
    "/update_weights_from_tensor",
    "/update_weights_from_distributed",
)

#: Paths on which a server streams its answer whatever the body says, under any prefix (a
#: pass-through's): Google's streaming methods (``…:streamGenerateContent``, Vertex AI's
#: ``…:streamRawPredict`` and ``…:serverStreamingPredict``), Bedrock's
#: ``/model/<model>/invoke-with-response-stream`` and ``…/converse-stream``, and TGI's
#: ``/generate_stream``. On a path no adapter knows, such a request is a streaming request
#: (refused unless ``streaming.requestMode`` is ``pass-through``): read as one answer, its
#: stream would be a body ``responseProtection.allowNonJson`` relays uninspected.
_STREAMING_METHODS: Final = frozenset(
    {"streamGenerateContent", "streamRawPredict", "serverStreamingPredict"}
)
_STREAMING_PATHS: Final = ("/invoke-with-response-stream", "/converse-stream", "/generate_stream")
#: Paths on which a server streams unless the body says ``"stream": false``: Ollama's chat
#: and generate, which a server fronted by another adapter serves too (Ollama beside its
#: OpenAI-compatible API).
_STREAMS_BY_DEFAULT: Final = ("/api/chat", "/api/generate")

#: The request members in which routers take other models than ``model`` to serve, read on
#: every route (LiteLLM serves each of these APIs through its router): OpenRouter's
#: ``models`` (tried after ``model`` when it fails) and LiteLLM's fallbacks (served when the
#: model fails, which ``mock_testing_fallbacks`` makes it do on request) and ``user_config``
#: (a router of the caller's own, whose models it serves).
_MODEL_LISTS: Final = (
    "models",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "context_window_fallback_dict",
    "user_config",
)

#: SGLang reads a prompt given as token ids from ``input_ids``, on its chat and
#: completions routes too (its chat template is then skipped).
_INPUT_IDS: Final = "input_ids"
#: The prompt as embeddings: vLLM's completions (``--enable-prompt-embeds``), SGLang's
#: ``input_embeds``.
_PROMPT_EMBEDS: Final = ("prompt_embeds", "input_embeds")

#: Classified routes an adapter remembers (method and path pairs of its exact routes).
_MAX_CACHED_ROUTES: Final = 256


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route of an upstream API."""

    route_id: str
    streaming: StreamDescriptor | None = None
    streaming_by_default: bool = False
    always_streaming: bool = False
    token_ids: TokenIdFields = NO_TOKEN_IDS
    token_id_inputs: tuple[str, ...] = ()
    embedding_inputs: tuple[str, ...] = ()
    manages_models: bool = False
    model_paths: tuple[tuple[str | int, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class ProtocolAdapter:
    """Classifies requests of one upstream API.

    Attributes:
        id: the adapter id (``target.type`` / ``target.adapter`` value).
        protocol: the protocol name written to audit events.
        exact: path -> route.
        suffixes: ``:<method>`` suffix -> route (Gemini-style model-in-path APIs).
        model_in_path: whether the model is named by the last path segment
            (``.../models/<model>:<method>``) rather than a ``model`` body field.
        deployment_paths: whether the API is also served under paths that name the model
            (``/openai/deployments/<model>/chat/completions``, ``/engines/<model>/…``), as
            Azure OpenAI and LiteLLM serve it; such a path gets the route of its operation.
        model_fields: the body members that name the model (Ollama reads ``name`` where a
            request has no ``model``).
    """

    id: str
    protocol: str
    exact: Mapping[str, RouteSpec]
    suffixes: Mapping[str, RouteSpec] = field(default_factory=dict)
    model_in_path: bool = False
    deployment_paths: bool = False
    model_fields: tuple[str, ...] = ("model",)
    # (method, path) -> Route, for the paths of ``exact`` only: a finite set that holds no
    # caller text beyond the method (bounded by _MAX_CACHED_ROUTES).
    _known: dict[tuple[str, str], Route] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def classify(self, method: str, path: str) -> Route:
        """Return the :class:`Route` of ``method path`` (``path`` without its query, decoded).

        The route is that of :func:`normalized_path` of ``path`` (or, when that ends with a
        slash and names no route, of the same path without it), while the returned
        ``Route.path`` stays ``path`` as given (its hash goes to the audit log, its last
        segment names a Gemini model).
        """
        key = (method, path)
        route = self._known.get(key)
        if route is not None:
            return route
        normal = normalized_path(path)
        spec = self._match(normal)
        if spec is None and len(normal) > 1 and normal.endswith("/"):
            # Lenient routers (Express's default, for one) serve "/v1/x/" as "/v1/x".
            spec = self._match(normal[:-1])
        if spec is None:
            # Unknown paths keep their method but not their text: a path can carry
            # identifiers, and the operation name lands in the audit log.
            return Route(
                self.id,
                self.protocol,
                "unknown",
                path,
                f"{method} unknown",
                token_ids=UNKNOWN_ROUTE_TOKEN_IDS,
                token_id_inputs=UNKNOWN_ROUTE_TOKEN_ID_INPUTS,
                embedding_inputs=_PROMPT_EMBEDS,
                manages_models=_manages_models(normal),
                always_streaming=_always_streams(normal),
                streaming_by_default=normal.removesuffix("/").endswith(_STREAMS_BY_DEFAULT),
                model_paths=UNKNOWN_ROUTE_MODEL_PATHS,
            )
        route = Route(
            adapter_id=self.id,
            protocol=self.protocol,
            route_id=spec.route_id,
            path=path,
            operation=f"{method} {spec.route_id}",
            streaming_by_default=spec.streaming_by_default,
            always_streaming=spec.always_streaming,
            streaming=spec.streaming,
            token_ids=spec.token_ids,
            token_id_inputs=spec.token_id_inputs,
            embedding_inputs=spec.embedding_inputs,
            manages_models=spec.manages_models,
            model_paths=spec.model_paths,
        )
        # Only a route's own path is remembered: its other spellings are caller text.
        if path in self.exact and len(self._known) < _MAX_CACHED_ROUTES:
            self._known[key] = route
        return route

    def _match(self, path: str) -> RouteSpec | None:
        spec = self.exact.get(path)
        if spec is not None:
            return spec
        if self.deployment_paths:
            deployment = _deployment(path)
            if deployment is not None and deployment[1]:
                return self.exact.get("/v1" + deployment[1])
        if not self.suffixes:
            return None
        last = path.rsplit("/", 1)[-1]
        name, sep, verb = last.rpartition(":")
        if not sep or not name:
            return None
        return self.suffixes.get(verb)

    def path_model(self, path: str) -> str | None:
        """The model named by the path (``models/<model>:<method>``, or a deployment's
        ``…/deployments/<model>/<operation>``), if this API does that; ``""`` for a
        deployment path whose operation is unknown, so that where its model ends is too. A
        model-in-path name of another collection than ``models`` keeps it
        (``tunedModels/<id>``).

        Read from the path as it is routed (see :meth:`classify`), so that the model checked
        is the one a lenient upstream serves: ``…/models/m:generateContent/`` names ``m``.
        """
        if not (self.model_in_path or self.deployment_paths):
            return None
        normal = _routed(path)
        if self.deployment_paths:
            deployment = _deployment(normal)
            return None if deployment is None else deployment[0]
        return _resource(normal)


def _manages_models(normal: str) -> bool:
    """Whether the normalised ``path`` ends with a model-management path of some server."""
    return normal.removesuffix("/").endswith(UNKNOWN_ROUTE_MODEL_MANAGEMENT)


def manages_models(path: str) -> bool:
    """Whether a server serving ``path`` (decoded) changes which weights a model name serves
    there, as :attr:`Route.manages_models` says of a route's own path.

    For the path an upstream serves, its URL's path followed by the client's: behind an
    upstream ending in ``/api``, the client's ``/create`` is Ollama's ``/api/create``, which
    no route of the client's path alone names."""
    return _manages_models(normalized_path(path))


def _always_streams(normal: str) -> bool:
    """Whether a server streams its answer to the normalised ``path`` whatever the body says
    (see ``_STREAMING_METHODS``)."""
    path = normal.removesuffix("/")
    name, sep, method = path.rpartition("/")[2].rpartition(":")
    return bool(sep and name and method in _STREAMING_METHODS) or path.endswith(_STREAMING_PATHS)


def _routed(path: str) -> str:
    """``path`` as it is routed (see :meth:`ProtocolAdapter.classify`), without a trailing
    slash."""
    normal = normalized_path(path)
    return normal.removesuffix("/") if len(normal) > 1 else normal


def _resource(path: str) -> str | None:
    """The model a routed ``path`` names as ``…/models/<model>:<method>``, or ``None``."""
    head, _slash, last = path.rpartition("/")
    name, sep, _verb = last.rpartition(":")
    if not (sep and name):
        return None
    # A model of another collection (Gemini's ``tunedModels/<id>``, Vertex AI's
    # ``endpoints/<id>``) is another model than the base model of that name: it keeps its
    # collection, so that only an entry naming it so allows it.
    collection = head.rpartition("/")[2]
    return name if collection == "models" else f"{collection}/{name}"


def _other_path_models(path: str) -> tuple[str | None, ...]:
    """The models ``path`` names to servers of other APIs than the adapter's: a deployment's,
    a Bedrock model's or a KServe model's, wherever the path has one (``None`` when its
    operation is unknown), and a model-in-path name; none for a path that names no model to
    any of them.

    A server often serves more than the API its adapter knows (LiteLLM serves Azure's
    deployment paths and passes ``/gemini/v1beta/models/<model>:generateContent``,
    ``/azure/openai/deployments/<model>/…`` and ``/bedrock/model/<model>/converse`` through,
    whatever the adapter in front of it), and it serves the path's model, not the body's.
    The prefixes and operations are found in any letter case, as a server routing paths
    whatever their case (ASP.NET Core's routing does by default) finds them."""
    normal = _routed(path)
    folded = normal.translate(_ASCII_LOWER)
    models: list[str | None] = []
    for prefix, operations in _PATH_MODEL_FORMS:
        at = folded.find(prefix)
        if at >= 0:
            start = at + len(prefix)
            models.append(_model_before(normal[start:], folded[start:], operations) or None)
    resource = _resource(normal)
    if resource is not None:
        models.append(resource)
    return tuple(models)


#: Prefixes of the paths that name the model as a deployment: Azure OpenAI's and LiteLLM's
#: ``/openai/deployments/<model>/…``, and OpenAI's older ``/engines/<model>/…`` (LiteLLM
#: serves it still).
_DEPLOYMENT_PREFIXES: Final = ("/openai/deployments/", "/deployments/", "/engines/", "/v1/engines/")
#: The operations served under a deployment, longest first: a model may hold slashes
#: (LiteLLM reads it as everything up to the operation), so ``/a/chat/completions`` is the
#: chat completions of ``a``, not the completions of ``a/chat``.
_DEPLOYMENT_OPERATIONS: Final = (
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/responses",
)


#: Lowers the ASCII letters of a text, leaving its length (``str.lower`` may not).
_ASCII_LOWER: Final = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
#: Bedrock's operations on a model, which its path names (``/model/<model>/converse``).
_BEDROCK_OPERATIONS: Final = (
    "/invoke",
    "/invoke-with-response-stream",
    "/converse",
    "/converse-stream",
    "/count-tokens",
)
#: The operations of the KServe v2 inference protocol (Triton, KServe) on a model, which
#: its path names (``/v2/models/<model>/infer``; a version in between is read as part of
#: the model).
_KSERVE_OPERATIONS: Final = ("/infer", "/generate", "/generate_stream")
#: Where a path names the model to a server of some API: what comes before the model, and
#: the operations that may follow it.
_PATH_MODEL_FORMS: Final = (
    *((prefix, _DEPLOYMENT_OPERATIONS) for prefix in _DEPLOYMENT_PREFIXES),
    ("/model/", _BEDROCK_OPERATIONS),
    ("/v2/models/", _KSERVE_OPERATIONS),
)


def _deployment(path: str) -> tuple[str, str] | None:
    """``(model, operation)`` of a path (normalised, without a trailing slash) that names
    its model as a deployment; the operation is ``""``, and the model too, when it is not
    one of ``_DEPLOYMENT_OPERATIONS``; ``None`` for any other path."""
    for prefix in _DEPLOYMENT_PREFIXES:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            for operation in _DEPLOYMENT_OPERATIONS:
                model = rest.removesuffix(operation)
                if model != rest and model:
                    return model, operation
            return "", ""
    return None


def _model_before(rest: str, folded: str, operations: tuple[str, ...]) -> str:
    """The model ``rest`` of a path names before one of ``operations`` (slashes included,
    as LiteLLM reads it), or ``""`` when it ends with none of them; ``folded`` is ``rest``
    with its ASCII letters in lower case, which the operations are looked for in."""
    for operation in operations:
        if folded.endswith(operation) and len(rest) > len(operation):
            return rest[: -len(operation)]
    return ""


def normalized_path(path: str) -> str:
    """``path`` as a lenient upstream routes it: runs of ``/`` collapsed to one, and ``.``
    and ``..`` segments resolved as RFC 3986 ``remove_dot_segments`` resolves them (a
    trailing one leaves its slash, ``/a/b/..`` is ``/a/``; ``..`` stops at the root).

    nginx merges slashes and resolves dot segments by default, and the path the gateway
    routes on is decoded, so ``/v1/%2fcompletions`` reaches it as ``/v1//completions``: left
    as written, such a path would be an unknown route, without the checks of the route the
    upstream serves for it (token-id inputs, stream descriptors). A path already in that
    form, as every usual request's is, comes back as it is without being split.
    """
    if "//" not in path and "/." not in path and not path.startswith("."):
        return path
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    last = path.rpartition("/")[2]
    trailing = "/" if kept and last in ("", ".", "..") else ""
    root = "/" if path.startswith("/") else ""
    return root + "/".join(kept) + trailing


def _sse(delta: tuple[str | int, ...] | None, **kwargs: Any) -> StreamDescriptor:
    return StreamDescriptor(format="sse", delta_path=delta, **kwargs)


#: vLLM's ``return_token_ids`` (SGLang's too): each choice's answer as token ids (the
#: prompt's ids, of the protected prompt, are harmless and kept); SGLang's ``output_ids`` in
#: ``sglext`` (asked with ``return_output_ids_in_sglext``, its ``x-sglext-return-output-ids``
#: header or a server option): the same ids; llama.cpp's ``__verbose`` (asked with the body's
#: ``verbose``): its native answer, whose ``tokens`` are the ids of the answer (of a whole one
#: asked with ``return_tokens``, of every streamed piece); vLLM's
#: ``return_tokens_as_token_ids``: the pieces of the answer's log-probabilities written as
#: ids.
_SERVER_TOKEN_IDS: Final = TokenIdFields(
    opaque=frozenset({"token_ids", "output_ids", "__verbose"}), spelled=frozenset({"logprobs"})
)
#: The roles a chat delta names (an empty one names none): words that no joining of them
#: turns into a value, so they stay in their frame.
_CHAT_ROLES: Final = frozenset({"", "assistant", "developer", "function", "system", "tool", "user"})
#: The lists of reasoning blocks of a chat delta, with the member holding a block's text:
#: OpenRouter's ``reasoning_details`` (a ``reasoning.text`` block's ``text``, a
#: ``reasoning.summary`` block's ``summary``) and LiteLLM's ``thinking_blocks``.
_REASONING_BLOCK_TEXTS: Final = (
    ("reasoning_details", "text"),
    ("reasoning_details", "summary"),
    ("thinking_blocks", "thinking"),
)
#: OpenAI's request field asking for several answers (choices).
_N: Final = (("n",),)
_CHAT = RouteSpec(
    "chat-completions",
    _sse(
        ("choices", 0, "delta", "content"),
        fragments=(
            FragmentSpec(
                ("choices", EACH, "delta", "tool_calls", EACH), (), ("function", "arguments")
            ),
            # The older ``functions`` API streams one call's arguments the same way.
            FragmentSpec(("choices", EACH), (), ("delta", "function_call", "arguments")),
            # Reasoning models on OpenAI-compatible servers (vLLM, llama.cpp, DeepSeek,
            # Ollama, OpenRouter) stream their reasoning beside the answer, in one of these;
            # a refusal, and the transcript of an audio answer, are streamed in pieces too.
            # The two names are one text to clients reading whichever is set.
            FragmentSpec(
                ("choices", EACH),
                (),
                ("delta", "reasoning_content"),
                also=(("delta", "reasoning"),),
            ),
            # The reasoning once more as blocks (``_REASONING_BLOCK_TEXTS``), a few characters
            # per frame too, which clients add up per block like tool calls.
            *(
                FragmentSpec(("choices", EACH, "delta", blocks, EACH), (), (text,))
                for blocks, text in _REASONING_BLOCK_TEXTS
            ),
            FragmentSpec(("choices", EACH), (), ("delta", "refusal")),
            FragmentSpec(("choices", EACH), (), ("delta", "audio", "transcript")),
            # Asked for several answers (n > 1), a server streams them interleaved: the
            # answer of every choice but the first has a window of its own.
            FragmentSpec(("choices", EACH), (), ("delta", "content"), frozenset({(0,)})),
            # The openai SDK adds the rest of a delta up too, joining every string (a tool
            # call's id and name, any member a server adds): each is a text of its own. Last,
            # so that it leaves the places above to the specs naming them.
            FragmentSpec(
                ("choices", EACH), (), ("delta",), members=True, words=(("role", _CHAT_ROLES),)
            ),
        ),
        finish_fields=("finish_reason",),
        choices="choices",
        choice_count=_N,
    ),
    token_ids=_SERVER_TOKEN_IDS,
    token_id_inputs=(_INPUT_IDS,),
    embedding_inputs=_PROMPT_EMBEDS,
)
_COMPLETIONS = RouteSpec(
    "completions",
    _sse(
        ("choices", 0, "text"),
        fragments=(FragmentSpec(("choices", EACH), (), ("text",), frozenset({(0,)})),),
        finish_fields=("finish_reason",),
        choices="choices",
        choice_count=_N,
    ),
    token_ids=_SERVER_TOKEN_IDS,
    token_id_inputs=("prompt", _INPUT_IDS),
    embedding_inputs=_PROMPT_EMBEDS,
)
#: Responses API events that close what ``*.delta`` events streamed (each carries the whole
#: text again), and those that end the stream.
_RESPONSES_END: Final = frozenset({"response.completed", "response.failed", "response.incomplete"})
_RESPONSES_DONE: Final = _RESPONSES_END | {
    f"response.{part}.done"
    for part in (
        "output_text",
        "refusal",
        "function_call_arguments",
        "content_part",
        "output_item",
        "reasoning_text",
        "reasoning_summary_text",
        "reasoning_summary_part",
        "audio.transcript",
        "custom_tool_call_input",
        "mcp_call_arguments",
        "code_interpreter_call_code",
    )
}
_OUTPUT_TEXT: Final = "response.output_text.delta"
_REFUSAL: Final = "response.refusal.delta"
_REASONING: Final = "response.reasoning_text.delta"
_SUMMARY: Final = "response.reasoning_summary_text.delta"
_PART: Final = ("output_index", "content_index")
_SUMMARY_PART: Final = ("output_index", "summary_index")
_ITEM: Final = ("output_index",)
#: Where the ``.done`` events repeat the whole text of a part streamed in deltas read across
#: parts: by the event of its kind, by ``content_part.done`` (or ``reasoning_summary_part``)
#: and by the ``output_item.done`` of its output, each content (or summary) part at its
#: position in the item's list, as the SDK indexes it with ``content_index``.
_RESPONSES_FINALS: Final = (
    FinalText("response.output_text.done", _OUTPUT_TEXT, _PART, ("text",)),
    FinalText("response.refusal.done", _REFUSAL, _PART, ("refusal",)),
    FinalText("response.reasoning_text.done", _REASONING, _PART, ("text",)),
    FinalText("response.reasoning_summary_text.done", _SUMMARY, _SUMMARY_PART, ("text",)),
    FinalText("response.content_part.done", _OUTPUT_TEXT, _PART, ("part", "text")),
    FinalText("response.content_part.done", _REFUSAL, _PART, ("part", "refusal")),
    FinalText("response.content_part.done", _REASONING, _PART, ("part", "text")),
    FinalText("response.reasoning_summary_part.done", _SUMMARY, _SUMMARY_PART, ("part", "text")),
    *(
        FinalText("response.output_item.done", kind, _ITEM, ("item", *path), closes=True)
        for kind, path in (
            (_OUTPUT_TEXT, ("content", EACH, "text")),
            (_REFUSAL, ("content", EACH, "refusal")),
            (_REASONING, ("content", EACH, "text")),
            (_SUMMARY, ("summary", EACH, "text")),
        )
    ),
)
#: The text a part of an output item may carry when an event opens it, by the index naming
#: the part (its list in the item) and the part's ``type``: the field holding the text and
#: the delta that continues it.
_RESPONSES_PART_TEXTS: Final[Mapping[str, Mapping[str, tuple[str, str]]]] = {
    "content_index": {
        "output_text": ("text", _OUTPUT_TEXT),
        "refusal": ("refusal", _REFUSAL),
        "reasoning_text": ("text", _REASONING),
    },
    "summary_index": {"summary_text": ("text", _SUMMARY)},
}
#: An output item's lists of parts, with the index that names a part in each.
_RESPONSES_PART_LISTS: Final = (("content", "content_index"), ("summary", "summary_index"))
#: The events that open one part, with the index naming it.
_RESPONSES_PART_ADDED: Final = {
    "response.content_part.added": "content_index",
    "response.reasoning_summary_part.added": "summary_index",
}
#: The input a tool-call item may carry when an event opens it, by the item's ``type``.
_RESPONSES_ITEM_TEXTS: Final = {
    "function_call": ("arguments", "response.function_call_arguments.delta"),
    "custom_tool_call": ("input", "response.custom_tool_call_input.delta"),
    "mcp_call": ("arguments", "response.mcp_call_arguments.delta"),
    "code_interpreter_call": ("code", "response.code_interpreter_call_code.delta"),
}


def _responses_opening(frame: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The text an opening event already carries, moved into the deltas that continue it:
    ``response.content_part.added`` (or ``reasoning_summary_part.added``) whose part has
    text, ``response.output_item.added`` whose item has parts with text or a tool call's
    input, and ``response.created`` whose response has such output items. The SDK's
    ``responses.stream()`` starts each part (and each call's ``arguments``) with that text
    and adds the deltas of its output and index to it, so the moved text joins those
    deltas in their window. A list of parts or items that is not a list stops the stream."""
    kind = frame.get("type")
    if kind == "response.output_item.added":
        return _item_texts(frame, frame.get("item"), frame.get("output_index"))
    if kind == "response.created":
        response = frame.get("response")
        output = response.get("output") if isinstance(response, dict) else None
        return tuple(
            continuation
            for at, item in enumerate(_part_list(output))
            for continuation in _item_texts(frame, item, at)
        )
    index = _RESPONSES_PART_ADDED.get(kind) if isinstance(kind, str) else None
    if index is None:
        return ()
    place = {name: frame[name] for name in ("item_id", "output_index", index) if name in frame}
    continuation = _part_text(frame, frame.get("part"), index, place)
    return () if continuation is None else (continuation,)


def _item_texts(opening: dict[str, Any], item: Any, output: Any) -> tuple[dict[str, Any], ...]:
    """The deltas carrying the text of ``item`` (at ``output``), which is emptied in place:
    its parts' texts, or a tool call's input."""
    if not isinstance(item, dict):
        return ()
    named = (("item_id", item.get("id")), ("output_index", output))
    place = {name: value for name, value in named if value is not None}
    kind = item.get("type")
    tool = _RESPONSES_ITEM_TEXTS.get(kind) if isinstance(kind, str) else None
    if tool is not None:
        moved = _moved_delta(opening, item, tool, place)
        return () if moved is None else (moved,)
    continuations = (
        _part_text(opening, part, index, {**place, index: at})
        for name, index in _RESPONSES_PART_LISTS
        for at, part in enumerate(_part_list(item.get(name)))
    )
    return tuple(continuation for continuation in continuations if continuation is not None)


def _part_text(
    opening: dict[str, Any], part: Any, index: str, place: dict[str, Any]
) -> dict[str, Any] | None:
    """The delta (at ``place``) carrying the text of ``part``, a part named by ``index``."""
    kind = part.get("type") if isinstance(part, dict) else None
    known = _RESPONSES_PART_TEXTS[index].get(kind) if isinstance(kind, str) else None
    return None if known is None else _moved_delta(opening, part, known, place)


def _moved_delta(
    opening: dict[str, Any], holder: dict[str, Any], known: tuple[str, str], place: dict[str, Any]
) -> dict[str, Any] | None:
    """The delta event (``known``: the text's field and the delta's type) carrying the text
    of ``holder``, which is emptied in place; ``None`` when it holds no text. The delta
    repeats the opening event's ``sequence_number`` and has the fields the SDK reads."""
    name, delta_type = known
    text = _opening_text(holder, name)
    if text is None:
        return None
    holder[name] = ""
    continuation: dict[str, Any] = {"type": delta_type, **place, "delta": text}
    if delta_type == _OUTPUT_TEXT:
        continuation["logprobs"] = []
    if "sequence_number" in opening:
        continuation["sequence_number"] = opening["sequence_number"]
    return continuation


def _opening_text(holder: Mapping[str, Any], name: str) -> str | None:
    """The text an opening event (a part or a content block as it starts) holds under
    ``name``; ``None`` when it holds none. A number, a boolean or a list there stops the
    stream: a JavaScript client adds the deltas that follow to it as what it spells
    (``41111111`` then ``"11111111"`` reads as a card number), which no window saw joined."""
    text = holder.get(name)
    if isinstance(text, int | float | list):  # bool is an int
        raise ValueError("an opening event's text is not a string")
    return text if isinstance(text, str) and text else None


def _part_list(parts: Any) -> list[Any]:
    """A list of parts or items (none for null). A JavaScript client reads ``list[0]`` of an
    object keyed "0" too, and adds the deltas that follow to its text, which no window
    would have seen joined: anything but a list stops the stream."""
    if parts is None:
        return []
    if not isinstance(parts, list):
        raise ValueError("a list of an output's parts or items is not a list")
    return parts


_RESPONSES = RouteSpec(
    "responses",
    _sse(
        None,
        flush_on_types=_RESPONSES_DONE,
        terminal_types=_RESPONSES_END,
        # Every ``response.*.delta`` event streams a piece of one text in ``delta``: of an
        # output text, a refusal, a function call's arguments, ... Pieces are named as the
        # openai SDK adds them up, not by ``item_id``, which an upstream may vary inside one
        # output to keep a value's halves apart. Output text, refusals and reasoning are
        # added up by output and content (or summary) index, and also printed delta after
        # delta whatever their indices, so each kind has one window across its parts
        # (which must come in order), whose ``.done`` events repeat the text the deltas
        # delivered. Every other kind (a tool call's input) is a document of its own,
        # added up by output alone (``arguments += delta``) whatever other index a delta
        # carries, so it is windowed per output: the second spec takes the deltas the
        # first, limited to its ``joined`` kinds, leaves.
        fragments=(
            FragmentSpec(
                None,
                ("output_index", "content_index", "summary_index", "type"),
                ("delta",),
                positions=frozenset({"output_index", "content_index", "summary_index"}),
                joined=frozenset({_OUTPUT_TEXT, _REFUSAL, _REASONING, _SUMMARY}),
                finals=_RESPONSES_FINALS,
            ),
            FragmentSpec(
                None, ("output_index", "type"), ("delta",), positions=frozenset({"output_index"})
            ),
            # A shell call's output streams as an object of two texts, added up per command.
            *(
                FragmentSpec(
                    None,
                    ("output_index", "command_index", "type"),
                    ("delta", channel),
                    positions=frozenset({"output_index", "command_index"}),
                )
                for channel in ("stdout", "stderr")
            ),
        ),
        # Text in the event that opens a part (or an item, or the response) goes out in a
        # delta of that part right after it, through the part's window.
        opening=_responses_opening,
    ),
    token_ids=TokenIdFields(spelled=frozenset({"logprobs"})),
)
_EMBEDDINGS = RouteSpec("embeddings", token_id_inputs=("input",))

_OPENAI_ROUTES: Final[Mapping[str, RouteSpec]] = {
    "/v1/chat/completions": _CHAT,
    "/v1/completions": _COMPLETIONS,
    "/v1/responses": _RESPONSES,
    "/v1/embeddings": _EMBEDDINGS,
}

# llama.cpp's native stream ends with a ``"stop": true`` frame. Its frames carry their piece
# of the answer as token ids too, in ``tokens`` (and a whole answer does when asked with
# ``return_tokens``).
_LLAMA_CPP_COMPLETION = RouteSpec(
    "legacy-completion",
    _sse(("content",), done_field="stop"),
    token_ids=TokenIdFields(opaque=frozenset({"tokens"})),
    token_id_inputs=("prompt",),
)
#: Every path llama.cpp's server answers with a model's work, its aliases included: a path
#: left out would be forwarded as an unknown route, whose token-id inputs nobody checks.
_LLAMA_CPP_ROUTES: Final[Mapping[str, RouteSpec]] = {
    "/v1/chat/completions": _CHAT,
    "/chat/completions": _CHAT,
    "/v1/completions": _COMPLETIONS,
    # llama.cpp's OpenAI-compatible embeddings read ``content`` when there is no ``input``.
    "/v1/embeddings": RouteSpec("embeddings", token_id_inputs=("input", "content")),
    "/completion": _LLAMA_CPP_COMPLETION,
    "/completions": _LLAMA_CPP_COMPLETION,
    "/infill": RouteSpec(
        "infill",
        _sse(("content",), done_field="stop"),
        token_ids=TokenIdFields(opaque=frozenset({"tokens"})),
        # llama.cpp tokenizes the code around the gap, ``input_prefix`` and
        # ``input_suffix``, as it does a prompt: strings, token ids, or both mixed.
        token_id_inputs=("prompt", "input_extra", "input_prefix", "input_suffix"),
    ),
    # The native embedding routes read ``content`` (text or token ids), or ``input``.
    "/embedding": RouteSpec("embedding", token_id_inputs=("content", "input")),
    "/embeddings": RouteSpec("embedding", token_id_inputs=("content", "input")),
    # Token ids in, their text out: the text was never inspected on the way in. Tokenizing
    # reads ids in ``content`` too, and answers each with its piece of text.
    "/detokenize": RouteSpec("detokenize", token_id_inputs=("tokens",)),
    "/tokenize": RouteSpec("tokenize", token_id_inputs=("content",)),
}

_OLLAMA_ROUTES: Final[Mapping[str, RouteSpec]] = {
    # A thinking model streams its reasoning in ``thinking`` beside the answer. Ollama's
    # client requires a message's role, so copies of a frame keep it. Ollama's Go client
    # binds members whatever the case of their names (``folded``).
    "/api/chat": RouteSpec(
        "chat",
        StreamDescriptor(
            "ndjson",
            ("message", "content"),
            done_field="done",
            fragments=(FragmentSpec(None, (), ("message", "thinking")),),
            kept_in_copies=frozenset({"index", "type", "role"}),
            folded=(
                ((), frozenset({"message", "done"})),
                (("message",), frozenset({"content", "thinking"})),
            ),
        ),
        streaming_by_default=True,
    ),
    "/api/generate": RouteSpec(
        "generate",
        StreamDescriptor(
            "ndjson",
            ("response",),
            done_field="done",
            fragments=(FragmentSpec(None, (), ("thinking",)),),
            folded=(((), frozenset({"response", "thinking", "done", "context"})),),
        ),
        streaming_by_default=True,
        # The conversation as the model's token ids, the answer's included: it would carry
        # a redacted value to any client holding the tokenizer.
        token_ids=TokenIdFields(opaque=frozenset({"context"})),
        token_id_inputs=("context",),
    ),
    "/api/embed": RouteSpec("embed"),
    "/api/embeddings": RouteSpec("embeddings"),
    # Model management changes which weights a model name serves (a copy or a create from
    # another model, a pull, a delete): refused under a model allowlist.
    **{
        path: RouteSpec(path.rsplit("/", 1)[1], manages_models=True)
        for path in ("/api/create", "/api/copy", "/api/pull", "/api/push", "/api/delete")
    },
}

_ANTHROPIC_STOP: Final = frozenset({"content_block_stop", "message_delta", "message_stop"})
#: The events of one content block, which names it by its ``index``.
_ANTHROPIC_BLOCK: Final = frozenset(
    {"content_block_start", "content_block_delta", "content_block_stop"}
)
#: The field of a content block's streamed text, and the type of the delta that continues it.
_ANTHROPIC_BLOCK_TEXTS: Final = {
    "text": ("text", "text_delta"),
    "thinking": ("thinking", "thinking_delta"),
}


#: The types of a ``content_block_delta``'s delta whose text clients read, and where: the
#: SDK reads a text, thinking or tool-input delta's own field, and no text elsewhere.
_ANTHROPIC_DELTA_TEXTS: Final = {
    **{kind: ("delta", name) for name, kind in _ANTHROPIC_BLOCK_TEXTS.values()},
    "input_json_delta": ("delta", "partial_json"),
}

#: The kinds of content block the API streams each kind of delta into: the SDK adds a delta
#: up only in a block of such a kind (a tool call's input only in the blocks whose input it
#: tracks), while its ``text_stream``, and a loop adding every delta up by ``index``, read
#: the delta whatever its block. A delta of a kind listed here in a block of any other kind
#: stops the stream (see ``haechi.streaming``); a kind not listed (one the API adds later)
#: belongs to any block.
_ANTHROPIC_DELTA_BLOCKS: Final[Mapping[str, frozenset[str]]] = {
    **{kind: frozenset({block}) for block, (_name, kind) in _ANTHROPIC_BLOCK_TEXTS.items()},
    "citations_delta": frozenset({"text"}),
    "signature_delta": frozenset({"thinking"}),
    "input_json_delta": frozenset({"tool_use", "server_tool_use", "mcp_tool_use"}),
    "compaction_delta": frozenset({"compaction"}),
}


def _anthropic_opened(frame: dict[str, Any]) -> tuple[str | None, ...] | None:
    """The kinds (``type``) of the content blocks ``frame`` opens, in the order clients add
    them to the message's content: a ``content_block_start``'s block, or a
    ``message_start``'s content blocks (the API sends none there); ``None`` for a frame of
    any other type. A block without a kind (a string) has ``None`` for it."""
    kind = frame.get("type")
    if kind == "content_block_start":
        return (_block_kind(frame.get("content_block")),)
    if kind != "message_start":
        return None
    message = frame.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return tuple(map(_block_kind, content)) if isinstance(content, list) else ()


def _block_kind(block: Any) -> str | None:
    kind = block.get("type") if isinstance(block, dict) else None
    return kind if isinstance(kind, str) else None


def _anthropic_reads(frame: dict[str, Any]) -> tuple[str, ...] | None:
    """Where clients read text in ``frame``: in the delta of a ``content_block_delta``, the
    field of its delta's type (``text_stream`` prints the ``text`` of a ``text_delta``,
    ``get_final_message`` adds up that, a ``thinking_delta``'s ``thinking`` and an
    ``input_json_delta``'s ``partial_json``); nowhere in any other frame."""
    delta = frame.get("delta")
    if frame.get("type") != "content_block_delta" or not isinstance(delta, dict):
        return None
    kind = delta.get("type")
    return _ANTHROPIC_DELTA_TEXTS.get(kind) if isinstance(kind, str) else None


def _anthropic_completion_reads(frame: dict[str, Any]) -> tuple[str, ...] | None:
    """Where clients read text in a frame of a Text Completions stream: the ``completion``
    of a ``completion`` event, and nowhere in any other (``ping``, ``error``)."""
    return ("completion",) if frame.get("type") == "completion" else None


def _anthropic_opening(frame: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The text an opening frame already carries, moved into ``content_block_delta`` frames
    that follow it: a ``content_block_start`` whose block has text (the API sends it empty),
    or a ``message_start`` whose message has content blocks with text. A client adds a
    delta to the block of its index, whether that block came with ``content_block_start``
    or in ``message_start``'s content, so the moved text joins the deltas that follow it
    in their window."""
    kind = frame.get("type")
    if kind == "content_block_start":
        continuation = _moved_text(frame.get("content_block"), frame.get("index"), "index" in frame)
        return () if continuation is None else (continuation,)
    message = frame.get("message")
    if kind != "message_start" or not isinstance(message, dict):
        return ()
    content = message.get("content")
    if content is None:
        return ()
    if not isinstance(content, list):
        # A JavaScript client reads ``content[0]`` of an object keyed "0" as block 0 and
        # adds the deltas that follow to its text, which no window would have seen joined.
        raise ValueError("a message's content blocks are not a list")
    moved = (_moved_text(block, index, True) for index, block in enumerate(content))
    return tuple(continuation for continuation in moved if continuation is not None)


def _moved_text(block: Any, index: Any, indexed: bool) -> dict[str, Any] | None:
    """The ``content_block_delta`` (of ``index`` when ``indexed``) carrying the text of
    ``block``, which is emptied in place; ``None`` when the block holds no text."""
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    known = _ANTHROPIC_BLOCK_TEXTS.get(kind) if isinstance(kind, str) else None
    if known is None:
        return None
    name, delta_type = known
    text = _opening_text(block, name)
    if text is None:
        return None
    block[name] = ""
    continuation: dict[str, Any] = {"type": "content_block_delta"}
    if indexed:
        continuation["index"] = index
    continuation["delta"] = {"type": delta_type, name: text}
    return continuation


_ANTHROPIC_ROUTES: Final[Mapping[str, RouteSpec]] = {
    # A batch names a model per request, in its ``params``: each is served.
    "/v1/messages/batches": RouteSpec(
        "message-batches", model_paths=(("requests", EACH, "params", "model"),)
    ),
    "/v1/messages": RouteSpec(
        "messages",
        _sse(
            ("delta", "text"),
            flush_on_types=_ANTHROPIC_STOP,
            terminal_types=frozenset({"message_stop"}),
            # The blocks come one after another (``block_types``), so every block's text is
            # a stretch of the text of its kind in arrival order. Answer text and thinking
            # have one window each, across blocks: the SDK's ``text_stream`` (and a loop
            # printing every thinking delta) joins the blocks' texts, and a value cut
            # between two blocks is one value to it. A tool call's input is a JSON document
            # of its own, windowed per block (named by the ``index`` every delta carries).
            fragments=(
                FragmentSpec(
                    None,
                    ("index",),
                    ("delta", "partial_json"),
                    positions=frozenset({"index"}),
                    required=frozenset({"index"}),
                ),
                FragmentSpec(None, (), ("delta", "thinking")),
            ),
            # A stream of content blocks is also read by event name (the SDK skips a frame
            # named ``ping`` or not at all): a data frame whose ``event:`` line does not name
            # its ``type`` stops it. So does text in a frame, or a delta, of a type whose
            # text clients do not read.
            block_types=_ANTHROPIC_BLOCK,
            opening=_anthropic_opening,
            reads=_anthropic_reads,
            block_kinds=BlockKinds(_ANTHROPIC_DELTA_BLOCKS, _anthropic_opened),
            named=True,
        ),
    ),
    "/v1/messages/count_tokens": RouteSpec("count-tokens"),
    # The legacy Text Completions stream is read by the same SDK stream class: by event
    # name, and text only from ``completion`` events (a ``ping`` is skipped whatever it holds).
    "/v1/complete": RouteSpec(
        "complete", _sse(("completion",), reads=_anthropic_completion_reads, named=True)
    ),
}

#: Gemini's request field asking for several answers (candidates). Its REST API reads JSON as
#: proto3 does, which takes a field by its JSON name or its proto name, level by level: a body
#: with ``generation_config.candidateCount`` asks for candidates too.
_CANDIDATE_COUNT: Final = tuple(
    itertools.product(
        ("generationConfig", "generation_config"), ("candidateCount", "candidate_count")
    )
)
#: Where a Gemini stream carries a function call's arguments in pieces (asked for with
#: ``functionCallingConfig.streamFunctionCallArguments``): each ``partialArgs`` element
#: holds a piece of the argument its ``jsonPath`` names, which clients join across chunks.
#: google-genai reads every field by its JSON name or its proto name, so both are listed.
_GEMINI_PARTIAL_ARGS: Final = tuple(
    ("candidates", EACH, "content", "parts", EACH, call, pieces)
    for call, pieces in itertools.product(
        ("functionCall", "function_call"), ("partialArgs", "partial_args")
    )
)
_GEMINI_SUFFIXES: Final[Mapping[str, RouteSpec]] = {
    "generateContent": RouteSpec("generate-content"),
    "streamGenerateContent": RouteSpec(
        "stream-generate-content",
        _sse(
            ("candidates", 0, "content", "parts", 0, "text"),
            # The text of other parts and candidates: a window per candidate, through which
            # its parts pass in order (clients join a candidate's parts, within a chunk and
            # across chunks: a value cut between two parts is one value); the first
            # candidate's parts join the answer's. A thinking model's thoughts (parts
            # flagged ``thought``) have their own, and copies of a frame keep the flag, so
            # held thought never comes back as answer.
            fragments=(
                FragmentSpec(
                    ("candidates", EACH, "content", "parts", EVERY),
                    ("thought",),
                    ("text",),
                    frozenset({(0, False)}),
                    flags=frozenset({"thought"}),
                ),
            ),
            kept_in_copies=frozenset({"index", "type", "thought"}),
            choices="candidates",
            # A candidate's finish, in either name: its held text goes out before or in it.
            finish_fields=("finishReason", "finish_reason"),
            choice_count=_CANDIDATE_COUNT,
            # google-genai parses every other line as JSON once its braces balance.
            data_only=True,
            # Streamed function-call arguments: no window follows them.
            unwindowed=_GEMINI_PARTIAL_ARGS,
        ),
        always_streaming=True,
    ),
    "countTokens": RouteSpec("count-tokens"),
    "embedContent": RouteSpec("embed"),
    "batchEmbedContents": RouteSpec("batch-embed"),
}

#: Every built-in adapter by id, in the order ``known_adapters()`` lists them.
ADAPTERS: Final[Mapping[str, ProtocolAdapter]] = {
    "openai-compatible": ProtocolAdapter(
        "openai-compatible", "llm-http", _OPENAI_ROUTES, deployment_paths=True
    ),
    "vllm-openai": ProtocolAdapter("vllm-openai", "vllm-openai", _OPENAI_ROUTES),
    "llama-cpp": ProtocolAdapter("llama-cpp", "llama-cpp", _LLAMA_CPP_ROUTES),
    "ollama": ProtocolAdapter("ollama", "ollama", _OLLAMA_ROUTES, model_fields=("model", "name")),
    "anthropic": ProtocolAdapter("anthropic", "anthropic", _ANTHROPIC_ROUTES),
    "gemini": ProtocolAdapter("gemini", "gemini", {}, _GEMINI_SUFFIXES, model_in_path=True),
}

#: SGLang's native ``/generate`` (a path no adapter knows): every answer carries its text as
#: ``output_ids``, and one asked for ``return_logprob`` its pieces in ``meta_info`` as
#: ``[logprob, id, text]`` (the text only with ``return_text_in_logprobs``), which no join of
#: token pieces reads.
_SGLANG_GENERATE_TOKEN_IDS: Final = TokenIdFields(
    opaque=frozenset(
        {"output_ids", "output_token_logprobs", "output_top_logprobs", "output_token_ids_logprobs"}
    )
)

#: The answer members that may restate text as token ids on a path no adapter knows: those of
#: every route of every adapter, as such a path may be served like any of them, and those of
#: the servers' own paths the adapters leave out.
UNKNOWN_ROUTE_TOKEN_IDS: Final = TokenIdFields.union(
    (
        *(
            spec.token_ids
            for adapter in ADAPTERS.values()
            for spec in (*adapter.exact.values(), *adapter.suffixes.values())
        ),
        _SGLANG_GENERATE_TOKEN_IDS,
    )
)


#: Where the body of a request on a path no adapter knows may name models: wherever a route
#: of any adapter does, as such a path may be served like any of them (LiteLLM passes
#: ``/anthropic/v1/messages/batches`` through to Anthropic).
UNKNOWN_ROUTE_MODEL_PATHS: Final = tuple(
    dict.fromkeys(
        path
        for adapter in ADAPTERS.values()
        for spec in (*adapter.exact.values(), *adapter.suffixes.values())
        for path in spec.model_paths
    )
)


def known_adapters() -> tuple[str, ...]:
    """Ids of the built-in HTTP protocol adapters."""
    return tuple(ADAPTERS)


def adapter_for(adapter_id: str) -> ProtocolAdapter:
    """The adapter with ``adapter_id`` (``llm-http`` is an alias of ``openai-compatible``)."""
    if adapter_id == "llm-http":
        adapter_id = "openai-compatible"
    try:
        return ADAPTERS[adapter_id]
    except KeyError:
        known = ", ".join(ADAPTERS)
        raise ConfigError(f"unknown protocol adapter {adapter_id!r}; known: {known}") from None


def is_streaming_request(route: Route, body: Any) -> bool:
    """Whether the request asks for a streamed answer.

    ``"stream": true`` always does, and so does every request to a route that always streams
    (Gemini ``:streamGenerateContent``, whose API has no ``stream`` field: the upstream
    streams whatever the body says). A route that streams by default (Ollama chat/generate)
    does unless the body says ``"stream": false``.
    """
    if route.always_streaming:
        return True
    stream = body.get("stream") if isinstance(body, dict) else None
    if stream is True:
        return True
    return route.streaming_by_default and stream is not False


def asks_several_choices(route: Route, body: Any) -> bool:
    """Whether the request asks for more than one answer: OpenAI's ``n``, or Gemini's
    ``generationConfig.candidateCount`` (or ``generation_config.candidate_count``, in any
    mix of the two spellings, as its REST API reads them), above 1.

    Read leniently towards "several", as servers validating with lax pydantic models (and
    proto3 JSON, which takes an integer written as a string) read it: ``2``, ``2.0`` and
    ``"2"`` are two answers, and so is any one of the spellings asking for two. A stream that
    truly has several answers is then windowed per answer, while any other value (missing,
    ``null``, ``1``) is one answer, whose stream stops at a frame naming another (see
    ``StreamDescriptor.choices``): clients read the first answer of every frame whatever
    its ``index`` (``choices[0]``, the google-genai SDK's ``chunk.text``).
    """
    descriptor = route.streaming
    if descriptor is None:
        return False
    return any(
        _above_one(value) for path in descriptor.choice_count for value in _values_at(body, path)
    )


def _above_one(count: Any) -> bool:
    """Whether a lax server reads ``count`` as a number above 1 (a string is read as the
    number it writes)."""
    if type(count) is str:
        try:
            count = float(count)
        except ValueError:
            return False
    return type(count) in (int, float) and bool(count > 1)


def request_models(
    adapter: ProtocolAdapter, route: Route, body: Any, *, upstream_prefix: str = ""
) -> tuple[str | None, ...]:
    """Every model a request may have the upstream serve; ``None`` for one it names in a
    form that cannot be read (not a string), and none at all when it names no model.

    Where the API names the model in the path, that one, whatever the body's ``model`` says
    (a deployment path whose operation is unknown names a model that cannot be told apart
    from it, ``None``). Otherwise every body member a server may read as the model
    (``model``, and the adapter's other ``model_fields``: Ollama reads ``name`` where there
    is no ``model``), in any spelling a case-insensitive decoder binds to it (Ollama's Go
    decoder takes the last ``"Model"`` or ``"MODEL"``), the models of the route's
    ``model_paths`` (each request of a batch), and the model the path names to a server of
    another API (a deployment path, ``…/models/<model>:<method>``; see
    :func:`_other_path_models`). In either case, the models a router may serve instead
    (``_MODEL_LISTS``: its fallbacks). Every one of them must pass a model allowlist, so that
    whichever a server picks is allowed.

    ``upstream_prefix`` is the path of the upstream URL (decoded), which the upstream gets in
    front of the client's path: with ``…/openai/deployments`` there, the client's path
    ``/<model>/chat/completions`` picks the deployment, so the models the whole served path
    names count too.
    """
    listed = _listed_models(body, _MODEL_LISTS)
    served = _other_path_models(upstream_prefix + route.path) if upstream_prefix else ()
    named = adapter.path_model(route.path)
    if named is not None:
        return (
            named or None,
            *(value if isinstance(value, str) else None for value in listed),
            *served,
        )
    values = [body[name] for field in adapter.model_fields for name in members_named(body, field)]
    values.extend(value for path in route.model_paths for value in _values_at(body, path))
    values.extend(listed)
    models = tuple(value if isinstance(value, str) else None for value in values)
    return models + _other_path_models(route.path) + served


def _listed_models(body: Any, fields: tuple[str, ...]) -> list[Any]:
    """Every string and key, at any depth, of the top-level members of ``body`` named
    ``fields`` (see ``_MODEL_LISTS``); a value that is neither (a number) as itself,
    so that it is refused. ``null`` names none."""
    if not isinstance(body, dict):
        return []
    found: list[Any] = []
    stack = [body[field] for field in fields if field in body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif node is not None:
            found.append(node)
    return found


def _values_at(document: Any, path: tuple[str | int, ...]) -> list[Any]:
    """The values at ``path`` in ``document``, ``EACH`` standing for every element of a
    list; none where a member is missing."""
    nodes = [document]
    for segment in path:
        reached: list[Any] = []
        for node in nodes:
            if segment == EACH:
                reached.extend(node if isinstance(node, list) else ())
            elif isinstance(node, dict) and segment in node:
                reached.append(node[segment])
        nodes = reached
    return nodes


def plain_stream_flag(body: Any) -> bool:
    """Whether every server reads the same stream flag from ``body``: ``stream``, if given,
    is ``true``, ``false`` or ``null``, and no other member is named like it.

    Servers that coerce ``"true"`` or ``1`` would stream an answer the gateway expects as one
    body, and so would a case-insensitive decoder given ``"Stream": true`` beside
    ``"stream": false``.
    """
    return all(
        name == "stream" and type(body[name]) in (bool, type(None))
        for name in members_named(body, "stream")
    )
