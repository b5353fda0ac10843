# SPDX-License-Identifier: Apache-2.0
"""The cross-frame window of a streamed response.

A model streams its answer as many small deltas; an e-mail address or a key can arrive one
character per frame. :class:`TextStreamProtector` holds back the last ``streaming.maxMatchBytes``
characters (default 256; counted in characters) of the delta text, plus any finding that
reaches into them, and releases text only once no value can still be completing across it.
Released text has been detected with enough context on both sides, so the concatenated
output equals protecting the whole text at once for every value shorter than the window.

Details that matter:

- Detection sees the last window of already released text as left context, so a value
  whose key (``api_key=``) was released in an earlier frame is still recognised, and a cut
  never creates a finding that the whole text would not have.
- The precision dials (allowlist, minConfidence) apply exactly as in :mod:`haechi.pipeline`.
- A value still growing after ``16 x maxMatchBytes`` characters cannot be held whole, and its
  pieces could no longer be recognised once cut: in enforce mode, unless its action is
  ``allow`` or the dials remove it, the stream blocks after the text before it (fail closed).
  Memory stays bounded either way.
- A block in enforce mode releases nothing more: the blocked value never leaves the buffer,
  :attr:`TextStreamProtector.blocked` becomes true and every later call returns nothing.
- Besides the answer, a stream can carry other texts streamed the same way (each tool
  call's arguments, the model's reasoning, the answers of other choices): every such
  *channel* has a window of its own, and all share the tally, the tokens and the blocked
  state. A stream may open at most 64 channels. A text whose pieces clients read in the
  frame they came in (a chat tool call's id or name) is pushed without holding: its window
  only lends the text released before as left context.
- Token log-probabilities (``logprobs`` and the like, see :mod:`haechi.pieces`) repeat
  the answer as vocabulary pieces. The pieces of a frame cannot follow the text this window
  holds back, so in enforce mode :meth:`TextStreamProtector.protect_frame` empties them; in
  the other modes a frame's pieces are scanned joined, within the frame.
- A caller can push text on behalf of an *owner* (a frame whose boundaries must be kept, such
  as a plain-text frame): :meth:`TextStreamProtector.push_runs` then returns the released
  text in runs cut wherever the owner changes, and says when an owner's text is all out. A
  value replaced across two owners is replaced whole in the run where it starts, and the
  later runs lose the rest of it. A window holds at most ``36 x maxMatchBytes`` owned pieces
  (more than its characters allow, unless they are empty); one more fails closed.
- No audit event is written here: the gateway writes one per stream from :meth:`summary`.
- Any internal error fails closed: the stream counts as blocked and
  :class:`~haechi.errors.ProviderError` is raised.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Awaitable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, NoReturn, TypeVar

from haechi.actions import Item
from haechi.errors import LimitError, ProviderError
from haechi.models import Detection
from haechi.payload import PathTexts
from haechi.pieces import drop_piece_runs
from haechi.pipeline import CallContext, Inspection, Protector, Tally, inspect
from haechi.policy import Policy

__all__ = ["DEFAULT_MAX_MATCH", "Run", "TextStreamProtector"]

#: Default window size (``streaming.maxMatchBytes``), in characters.
DEFAULT_MAX_MATCH: Final = 256
_T = TypeVar("_T")
#: A value may hold the window open for this many window sizes before it is cut.
_HOLD_FACTOR: Final = 16
#: Texts one stream may window at once (its answer and the arguments of its tool calls).
_MAX_CHANNELS: Final = 64
#: Owned pieces a window may hold, per character of its size. A window keeps at most
#: ``_HOLD_FACTOR + 1`` sizes of text; every owned piece but an empty one holds at least one
#: of those characters, and an unowned run can sit between two of them.
_SHARES_PER_CHAR: Final = 2 * (_HOLD_FACTOR + 2)
#: Actions that leave the text as it is (``block`` stops the stream instead).
_UNCHANGED: Final = frozenset({"allow", "block"})


@dataclass(frozen=True, slots=True)
class Run:
    """Released text that all belongs to one owner.

    ``owner`` is what the text was pushed with (``None`` for text pushed without one),
    ``text`` its protected form, and ``whole`` says that the owner's text is now all out.
    """

    owner: object | None
    text: str
    whole: bool


@dataclass(slots=True)
class _Share:
    """How many of a window's held characters one owner pushed (unowned pushes in a row
    share one entry)."""

    owner: object | None
    size: int


@dataclass(slots=True)
class _Window:
    """One channel's text: held back (``pending``), who pushed it (``shares``, in order,
    their sizes adding up to ``pending``'s length) and the last released window (``left``)."""

    pending: str = ""
    left: str = ""
    shares: deque[_Share] = field(default_factory=deque)


class TextStreamProtector:
    """Protects one streamed response: delta text through the window, other parts per frame.

    Every method is a coroutine (tokenizing talks to the vault). ``push`` and ``flush``
    return the text that may be sent now (possibly empty); ``protect_frame`` and
    ``protect_text`` return the protected frame or text, or ``None`` when it blocks.
    """

    def __init__(
        self,
        *,
        protector: Protector,
        policy: Policy,
        context: CallContext,
        max_match: int = DEFAULT_MAX_MATCH,
    ) -> None:
        if max_match < 1:
            raise ValueError("max_match must be at least 1")
        self._protector = protector
        self._policy = policy
        self._context = context
        self._window = max_match
        self._max_shares = _SHARES_PER_CHAR * max_match
        self._transformer = protector.transformer(context)
        self._tally = Tally()
        self._windows: dict[Hashable, _Window] = {}
        self.blocked = False

    @property
    def issued_tokens(self) -> tuple[str, ...]:
        """Vault tokens issued anywhere in this stream, for de-tokenizing its output."""
        return self._transformer.issued_tokens

    def summary(self) -> dict[str, Any]:
        """Counts over everything released or blocked so far (no values)."""
        return self._tally.summary()

    def holding(self) -> list[Hashable]:
        """The channels that hold text, in the order they were opened."""
        return [channel for channel, window in self._windows.items() if window.pending]

    async def push(self, text: str, channel: Hashable = None) -> str:
        """Add text to ``channel`` (``None``: the answer); return what can be released now."""
        return _joined(await self.push_runs(text, channel))

    async def flush(self, channel: Hashable = None) -> str:
        """Release everything ``channel`` still holds (at the end of its text)."""
        return _joined(await self.flush_runs(channel))

    async def push_runs(
        self,
        text: str,
        channel: Hashable = None,
        *,
        owner: object | None = None,
        hold: bool = True,
    ) -> list[Run]:
        """Add text to ``channel`` on behalf of ``owner``; return what can be released now,
        in runs of one owner each.

        An owner is a frame that must leave with its own boundaries (a plain-text frame):
        its caller sends it once a run says its text is ``whole``. Text pushed without an
        owner is released in runs of ``None``. An empty owned push with nothing held before
        it is released (whole) at once. Without ``hold`` all the channel holds is released,
        inspected after the text it released before: for a text whose pieces clients read
        in the frame they came in.
        """
        if self.blocked:
            return []
        window = self._windows.get(channel)
        if window is None:
            if len(self._windows) >= _MAX_CHANNELS:
                return await self._guard(
                    _refuse(f"the stream opened more than {_MAX_CHANNELS} text channels")
                )
            window = self._windows[channel] = _Window()
        if owner is not None and not text and not window.pending:
            return [Run(owner, "", True)]
        if owner is not None or text:
            if len(window.shares) >= self._max_shares:
                return await self._guard(_refuse("a stream window held too many owned pieces"))
            _share(window.shares, owner, len(text))
        window.pending += text
        if not window.pending or (hold and len(window.pending) <= self._window):
            return []
        return await self._guard(self._release(window, final=not hold))

    async def flush_runs(self, channel: Hashable = None) -> list[Run]:
        """Release everything ``channel`` still holds (at the end of its text), in runs of
        one owner each; every owner's text is then whole."""
        window = self._windows.get(channel)
        if self.blocked or window is None or not window.pending:
            return []
        return await self._guard(self._release(window, final=True))

    async def protect_text(self, text: str) -> str | None:
        """Protect one self-contained piece of text (a non-JSON frame); the window is not
        involved. Return ``None`` when it blocks."""
        if self.blocked:
            return None
        return await self._guard(self._protect_text(text))

    async def protect_frame(self, frame: Any) -> Any:
        """Protect every leaf and key of one JSON frame (the delta field emptied by the
        caller beforehand). Return ``None`` when it blocks."""
        if self.blocked:
            return None
        return await self._guard(self._protect_frame(frame))

    async def _guard(self, work: Awaitable[_T]) -> _T:
        try:
            return await work
        except LimitError:
            self.blocked = True
            raise
        except Exception as exc:
            self.blocked = True
            raise ProviderError(
                f"stream protection failed closed: {type(exc).__name__} while inspecting"
            ) from None

    async def _protect_frame(self, frame: Any) -> Any:
        if self._context.enforced:
            frame = drop_piece_runs(frame)
        evaluation = await self._protector.evaluate(
            frame, context=self._context, policy=self._policy, transformer=self._transformer
        )
        self._tally.add(evaluation.inspection)
        if evaluation.blocked:
            self.blocked = True
        return evaluation.output

    async def _protect_text(self, text: str) -> str | None:
        detections = self._protector.scan_text(text, direction=self._context.direction)
        parts = await self._emit(text, detections, (len(text),))
        return None if parts is None else parts[0]

    async def _release(self, window: _Window, *, final: bool) -> list[Run]:
        pending = window.pending
        offset = len(window.left)
        scanned = self._protector.scan_text(
            window.left + pending, direction=self._context.direction
        )
        detections = [_rebase(d, offset, pending) for d in scanned if d.end > offset]
        commit = len(pending)
        overflow: Inspection | None = None
        if not final:
            natural = len(pending) - self._window
            commit = _pull_back(natural, detections)
            if natural - commit > _HOLD_FACTOR * self._window:
                commit, overflow = self._overflow(commit, natural, detections)
        runs: list[Run] = []
        if commit > 0:
            head = [_clip(d, commit, pending) for d in detections if d.start < commit]
            released = pending[:commit]
            window.pending = pending[commit:]
            window.left = (window.left + released)[-self._window :]
            taken = _take(window.shares, commit)
            parts = await self._emit(released, head, [size for _owner, size, _whole in taken])
            if parts is not None:
                runs = [
                    Run(owner, part, whole)
                    for (owner, _size, whole), part in zip(taken, parts, strict=True)
                ]
        if overflow is not None and not self.blocked:
            self._tally.add(overflow)
            self.blocked = True
        return runs

    def _overflow(
        self, commit: int, natural: int, detections: Sequence[Detection]
    ) -> tuple[int, Inspection | None]:
        """A value is still growing past the hold limit. It cannot be held whole, and its
        pieces could no longer be recognised, so when it would be changed (enforce mode, an
        action other than allow, not removed by the dials) the stream blocks after the text
        before it; otherwise the cut is made at the window as usual."""
        crossing = [d for d in detections if d.start < natural < d.end]
        inspection = inspect(
            crossing, policy=self._policy, dials=self._protector.dials, path_texts=PathTexts()
        )
        acted = [item for item in inspection.items if item.action != "allow"]
        if not self._context.enforced or not acted:
            return natural, None
        blocked = tuple(replace(item, action="block") for item in acted)
        return commit, Inspection(blocked, inspection.suppressed, inspection.dropped)

    async def _emit(
        self, text: str, detections: Sequence[Detection], sizes: Sequence[int]
    ) -> list[str] | None:
        """Protect ``text`` and cut the result into one part per piece of ``sizes`` (their
        owners' shares of it). A replaced value belongs whole to the part where it starts:
        the cut it spans moves past its end, so the parts concatenated equal protecting the
        text at once. Return ``None`` when it blocks."""
        inspection: Inspection = inspect(
            detections,
            policy=self._policy,
            dials=self._protector.dials,
            path_texts=PathTexts(),
        )
        self._tally.add(inspection)
        bounds = list(itertools.accumulate(sizes, initial=0))
        if not self._context.enforced:
            return [text[start:end] for start, end in itertools.pairwise(bounds)]
        if inspection.blocks():
            self.blocked = True
            return None
        self._transformer.reserve(inspection.items)
        if len(sizes) == 1:
            return [await self._transformer.transform_text(text, inspection.items)]
        changing = [
            item
            for item in inspection.items
            if item.action not in _UNCHANGED and item.detection.end > item.detection.start
        ]
        return [
            await self._transformer.transform_text(text[start:end], _within(changing, start, end))
            for start, end in itertools.pairwise(_past_values(bounds, changing))
        ]


async def _refuse(reason: str) -> NoReturn:
    raise RuntimeError(reason)


def _joined(runs: Sequence[Run]) -> str:
    return "".join(run.text for run in runs)


def _share(shares: deque[_Share], owner: object | None, size: int) -> None:
    """Record that ``owner`` pushed ``size`` more characters; unowned pushes in a row join."""
    if owner is None and shares and shares[-1].owner is None:
        shares[-1].size += size
    else:
        shares.append(_Share(owner, size))


def _take(shares: deque[_Share], commit: int) -> list[tuple[object | None, int, bool]]:
    """Take the first ``commit`` held characters out of ``shares``: each owner's part of them
    and whether that owner is now done (an empty share right at the cut is done too)."""
    taken: list[tuple[object | None, int, bool]] = []
    left = commit
    while shares:
        share = shares[0]
        if share.size > left:
            if left:
                share.size -= left
                taken.append((share.owner, left, False))
            break
        left -= share.size
        shares.popleft()
        taken.append((share.owner, share.size, True))
    return taken


def _past_values(bounds: Sequence[int], items: Sequence[Item]) -> list[int]:
    """Move every inner cut of ``bounds`` forward past each replaced value it falls inside
    (overlapping values are replaced as one), keeping the cuts in order."""
    moved = [bounds[0]]
    for bound in bounds[1:]:
        cut = max(bound, moved[-1])
        shifted = True
        while shifted:
            shifted = False
            for item in items:
                if item.detection.start < cut < item.detection.end:
                    cut = item.detection.end
                    shifted = True
        moved.append(cut)
    return moved


def _within(items: Sequence[Item], start: int, end: int) -> list[Item]:
    """The items that start in ``text[start:end]``, moved onto that slice."""
    return [
        Item(
            replace(
                item.detection,
                start=item.detection.start - start,
                end=item.detection.end - start,
            ),
            item.action,
        )
        for item in items
        if start <= item.detection.start < end
    ]


def _rebase(detection: Detection, offset: int, pending: str) -> Detection:
    """Move a detection of ``left + pending`` onto ``pending``. One that began in text
    already released is clipped to its remaining part, which is still protected."""
    start = detection.start - offset
    end = detection.end - offset
    if start >= 0:
        return replace(detection, start=start, end=end)
    return replace(detection, start=0, end=end, value=pending[:end])


def _pull_back(natural: int, detections: Sequence[Detection]) -> int:
    """Move a cut at ``natural`` back before every detection that reaches across it."""
    commit = natural
    moved = True
    while moved:
        moved = False
        for detection in detections:
            if detection.start < commit < detection.end:
                commit = detection.start
                moved = True
    return commit


def _clip(detection: Detection, commit: int, pending: str) -> Detection:
    """Limit a detection to the released head (only a cut past an over-long value that is
    left unchanged makes one cross it)."""
    if detection.end <= commit:
        return detection
    return replace(detection, end=commit, value=pending[detection.start : commit])
