# SPDX-License-Identifier: Apache-2.0
"""Detection: the rule catalogue, validators and the engine.

``DetectionEngine(default_rules())`` is what the protect pipeline runs; ``BuiltinDetector``
registers the same catalogue through the ``haechi_register_detectors`` hook.
"""

from haechi.detect.catalog import BuiltinDetector, default_rules
from haechi.detect.custom import compile_custom_rules
from haechi.detect.engine import KEY_NAME_RULE_ID, DetectionEngine
from haechi.detect.rule import HARD_BLOCK_TYPES, Rule, Validator

__all__ = [
    "HARD_BLOCK_TYPES",
    "KEY_NAME_RULE_ID",
    "BuiltinDetector",
    "DetectionEngine",
    "Rule",
    "Validator",
    "compile_custom_rules",
    "default_rules",
]
