# SPDX-License-Identifier: Apache-2.0
"""Detection speed: MB/s of the whole catalogue, and payloads/s through the runtime.

    python benchmarks/detection_speed.py [--megabytes 2] [--payloads 2000]

Everything is measured in this one process, single-threaded, as CPU time (best of several
rounds), and printed next to baselines measured in the same run, so that the ratios mean
something on any machine:

* text: a generated corpus of English-like prose with numbers (prices, dates, times, years)
  and of code/log lines, scanned by ``DetectionEngine(default_rules())``; baselines are one
  ``json.loads`` pass over the same text as JSON strings and one pass of a single regex
  (every leaf is longer than the short quiet leaves the engine remembers, so each round
  scans the whole corpus from scratch);
* payloads: 1 KiB chat-completion requests (one in ten carries an email, a phone number or a
  card) through ``runtime.protect_sync`` in enforce mode, with key, audit and vault files in
  a temporary directory (the audit file as configured by default: each record is written
  before its call returns and the file is fsynced within 200 ms), and again with the
  in-memory audit store; the baseline is ``json.loads`` + ``json.dumps`` of each payload.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from haechi.detect import DetectionEngine, default_rules
from haechi.models import Entry

SEED = 1234
ROUNDS = 3

_VOCABULARY = (  # noqa: SIM905 - a word list reads best as text
    """the of and to a in is it you that he was for on are with as his they be at one have this
from or had by not word but what some we can out other were all there when up use your how
said an each she which do their time if will way about many then them write would like so
these her long make thing see him two has look more day could go come did number no most
people my over know water than call first who may down side been now find any new work
part take get place made live where after back little only round man year came show every
good me give our under name very through just form sentence great think say help low line
turn cause much mean before move right boy old too same tell does set three want air well
also play small end put home read hand port large spell add even land here must big high
such follow act why ask men change went light kind off need house picture try us again
animal point mother world near build self earth father head stand own page should country
found answer school grow study still learn plant cover food sun four between state keep
eye never last let thought city tree cross farm hard start might story saw far sea draw
left late run while press close night real life few north open seem together next white
children begin got walk example ease paper group always music those both mark often letter
until mile river car feet care second book carry took science eat room friend began idea
fish mountain stop once base hear horse cut sure watch color face wood main enough plain
girl usual young ready above ever red list though feel talk bird soon body dog family
direct leave song measure door product black short class wind question happen complete
ship area half rock order fire south problem piece told knew pass since top whole king
space heard best hour better true during hundred five remember step early hold west ground
interest reach fast user customer account meeting report project team email send review
update please thanks deadline budget invoice contract model prompt answer system tool"""
).split()

_CODE = (
    "def handler(event, context):",
    "    return {'statusCode': 200, 'body': json.dumps(result)}",
    "for i in range(10): total += items[i].price * 1.07",
    "const url = `https://api.example.com/v2/users/${id}?limit=50`;",
    "SELECT id, name FROM users WHERE created_at > '2024-05-01 12:30:45' LIMIT 100;",
    "if (x != null && x.length > 3) { return x.slice(0, 3); }",
    'log.info("request took %d ms", elapsed)',
    'version = "1.4.2"  # bump on release',
    "2024-05-01T12:30:45.123Z INFO worker-3 processed batch 8812 in 431ms",
    "    self.cache[key] = (time.monotonic(), value)",
)


def _number(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return str(rng.randint(1990, 2030))
    if roll < 0.5:
        return str(rng.randint(1, 100))
    if roll < 0.6:
        return f"${rng.randint(1, 9999):,}.{rng.randint(0, 99):02d}"
    if roll < 0.7:
        return f"{rng.randint(1, 99)}%"
    if roll < 0.8:
        return f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d}"
    if roll < 0.9:
        return f"May {rng.randint(1, 28)}, {rng.randint(2000, 2030)}"
    return f"{rng.randint(1, 999)}.{rng.randint(0, 9)}"


def _prose(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(2, 10)):
        words = [
            _number(rng) if rng.random() < 0.035 else rng.choice(_VOCABULARY)
            for _ in range(rng.randint(6, 24))
        ]
        sentence = " ".join(words)
        sentences.append(sentence[0].upper() + sentence[1:] + rng.choice("......?!"))
    return " ".join(sentences)


def _code(rng: random.Random) -> str:
    return "\n".join(rng.choice(_CODE) for _ in range(rng.randint(5, 30)))


def _corpus(rng: random.Random, make: Callable[[random.Random], str], size: int) -> list[str]:
    leaves: list[str] = []
    total = 0
    while total < size:
        leaf = make(rng)
        leaves.append(leaf)
        total += len(leaf.encode())
    return leaves


def _cpu_seconds(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def _text_bench(megabytes: float) -> None:
    rng = random.Random(SEED)
    size = int(megabytes * 1_000_000)
    corpora = {
        "prose": _corpus(rng, _prose, size),
        "code": _corpus(rng, _code, size // 2),
    }
    mixed = corpora["prose"][: len(corpora["prose"]) * 7 // 10] + corpora["code"]
    rng.shuffle(mixed)
    corpora["mixed"] = mixed
    engine = DetectionEngine(default_rules())
    single = re.compile(r"[0-9](?<![0-9][0-9])[0-9]{12,18}(?![0-9])")
    print(f"catalogue: {len(engine.rules)} rules")
    print(f"{'corpus':<8} {'MB':>6} {'engine MB/s':>12} {'json.loads':>11} {'1 regex':>9}"
          f" {'vs json':>8} {'vs regex':>9}")  # fmt: skip
    for name, leaves in corpora.items():
        megs = sum(len(leaf.encode()) for leaf in leaves) / 1_000_000
        entries = [Entry(("messages", i, "content"), leaf) for i, leaf in enumerate(leaves)]
        encoded = [json.dumps(leaf) for leaf in leaves]
        engine_s = _cpu_seconds(lambda e=entries: engine.detect(e, direction="request"))
        json_s = _cpu_seconds(lambda d=encoded: [json.loads(x) for x in d])
        regex_s = _cpu_seconds(lambda t=leaves: [single.findall(x) for x in t])
        print(
            f"{name:<8} {megs:>6.2f} {megs / engine_s:>12.1f} {megs / json_s:>11.1f}"
            f" {megs / regex_s:>9.1f} {json_s / engine_s:>8.3f} {regex_s / engine_s:>9.3f}"
        )


#: Characters of user text per chat request: with the rest of the request, about 1 KiB.
_USER_CHARS = 860


def _payload(rng: random.Random, index: int) -> dict[str, Any]:
    user = _prose(rng)
    while len(user) < _USER_CHARS:
        user = f"{user} {_prose(rng)}"
    user = user[:_USER_CHARS]
    if index % 10 == 0:
        leak = rng.choice(["minji.kim@example.com", "010-1234-5678", "4111 1111 1111 1111"])
        user = f"{user} Contact: {leak}."
    return {
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant for the support team."},
            {"role": "user", "content": user},
        ],
    }


def _payload_bench(count: int) -> None:
    try:
        from haechi.crypto import init_key_file
        from haechi.runtime import create_runtime
    except ImportError:
        print("payloads: haechi.runtime is not available, skipped")
        return
    rng = random.Random(SEED)
    payloads = [_payload(rng, index) for index in range(count)]
    size = sum(len(json.dumps(p)) for p in payloads) / count
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        init_key_file(root / "keys.json")
        config: dict[str, Any] = {
            "configVersion": 1,
            "policy": {"mode": "enforce"},
            "keys": {"keyFile": str(root / "keys.json")},
            "audit": {"path": str(root / "audit.jsonl")},
            "tokenVault": {"path": str(root / "vault.json")},
        }
        runtime = create_runtime(config)
        blocked = sum(runtime.protect_sync(p).blocked for p in payloads[:50])
        runtime_s = _cpu_seconds(lambda: [runtime.protect_sync(p) for p in payloads])
        runtime.close()
        in_memory = create_runtime({**config, "audit": {"sink": "memory"}})
        memory_s = _cpu_seconds(lambda: [in_memory.protect_sync(p) for p in payloads])
        in_memory.close()
        engine = DetectionEngine(default_rules())
        detect_s = _cpu_seconds(
            lambda: [
                engine.detect(
                    [Entry(("messages", 1, "content"), p["messages"][1]["content"])],
                    direction="request",
                )
                for p in payloads
            ]
        )
    texts = [json.dumps(p) for p in payloads]
    json_s = _cpu_seconds(lambda: [json.dumps(json.loads(t)) for t in texts])
    print(f"payloads: {count} chat requests of {size:.0f} bytes on average ({blocked} of the "
          "first 50 blocked)")  # fmt: skip
    print(f"  runtime.protect_sync (enforce): {count / runtime_s:>9.0f} payloads/s")
    print(f"    with the in-memory audit:     {count / memory_s:>9.0f} payloads/s")
    print(f"  detection only:                 {count / detect_s:>9.0f} payloads/s")
    print(f"  json.loads + json.dumps:        {count / json_s:>9.0f} payloads/s")
    print(f"  runtime vs json round trip:     {json_s / runtime_s:>9.4f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=2.0, help="prose corpus size")
    parser.add_argument("--payloads", type=int, default=2000, help="payloads to protect")
    args = parser.parse_args(argv)
    _text_bench(args.megabytes)
    _payload_bench(args.payloads)


if __name__ == "__main__":
    main()
