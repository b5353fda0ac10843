# SPDX-License-Identifier: Apache-2.0
"""Prompt-injection phrasing in responses: text a tool or model returns that tries to steer
the next model turn.

These rules run on the response direction only (a user asking about injection is not an
attack) and their default action is ``allow``: the finding is audited, and operators who
want more set ``actions.injection``. Confidences are modest on purpose; the phrases are
heuristics, not proof.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.rule import Rule

__all__ = ["INJECTION_RULES"]

_WS: Final = r"\s+"

INJECTION_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        id="injection-instruction-override",
        type="injection",
        pattern=(
            r"\b(?:ignore|disregard|forget)" + _WS + r"(?:(?:all|any|the|your|of)" + _WS + r"){0,2}"
            r"(?:previous|prior|earlier|above|system)"
            + _WS
            + r"(?:instructions?|rules?|prompts?|guidelines)\b"
        ),
        confidence=0.7,
        description="'Ignore all previous instructions' and its variants.",
        direction="response",
        ignore_case=True,
        prefilter=("ignore", "disregard", "forget"),
    ),
    Rule(
        id="injection-role-reassignment",
        type="injection",
        pattern=(
            r"\b(?:you"
            + _WS
            + r"are"
            + _WS
            + r"now|act"
            + _WS
            + r"as)"
            + _WS
            + r"(?:an?"
            + _WS
            + r")?(?:unrestricted|jailbroken|uncensored|developer"
            + _WS
            + r"mode|dan\b)"
            r"|\bnew" + _WS + r"(?:system" + _WS + r")?instructions\s*:"
        ),
        confidence=0.65,
        description="'You are now jailbroken', 'act as DAN', 'new system instructions:'.",
        direction="response",
        ignore_case=True,
        prefilter=("unrestricted", "jailbroken", "uncensored", "developer", "dan", "instructions"),
    ),
    Rule(
        id="injection-prompt-markers",
        type="injection",
        pattern=r"<\|(?:im_start|im_end|system|start_header_id)\|>|<<SYS>>|\[\[?system\]\]?:",
        confidence=0.7,
        description="Chat-template control markers (<|im_start|>, <<SYS>>, [system]:).",
        direction="response",
        ignore_case=True,
        prefilter=("<|", "<<sys>>", "system]"),
    ),
    Rule(
        id="injection-conceal-from-user",
        type="injection",
        pattern=(
            r"\b(?:do"
            + _WS
            + r"not|don'?t)"
            + _WS
            + r"(?:tell|inform|mention|reveal|show)"
            + _WS
            + r"(?:this"
            + _WS
            + r")?(?:to"
            + _WS
            + r")?the"
            + _WS
            + r"user\b"
        ),
        confidence=0.7,
        description="'Do not tell the user' style concealment.",
        direction="response",
        ignore_case=True,
        prefilter=("user",),
    ),
    Rule(
        id="injection-tool-induction",
        type="injection",
        pattern=(
            r"\b(?:silently|secretly|immediately)"
            + _WS
            + r"(?:call|invoke|run|execute)"
            + _WS
            + r"(?:the"
            + _WS
            + r")?[\w.-]+"
            + _WS
            + r"tool\b"
        ),
        confidence=0.6,
        description="'Silently call the <name> tool' style tool induction.",
        direction="response",
        ignore_case=True,
        prefilter=("tool",),
    ),
)
