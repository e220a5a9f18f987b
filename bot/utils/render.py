"""Turn a model's Markdown answer into Telegram messages: plain text plus entities."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import telegramify_markdown as tm
from aiogram.types import MessageEntity

TELEGRAM_TEXT_LIMIT = 4096
REASONING_LIMIT = 3000
ELLIPSIS = "…"

_LINKABLE_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Chunk:
    """One Telegram message: text and its entities, offsets in UTF-16 code units."""

    text: str
    entities: list[MessageEntity]


def utf16_len(text: str) -> int:
    """Length of text in UTF-16 code units, the unit Telegram counts in."""
    return tm.utf16_len(text)


def render_answer(
    answer_md: str,
    *,
    reasoning: str | None = None,
    reasoning_title: str = "Reasoning",
    sources: Sequence[tuple[str, str]] = (),
    sources_title: str = "Sources",
    limit: int = TELEGRAM_TEXT_LIMIT,
    reasoning_limit: int = REASONING_LIMIT,
) -> list[Chunk]:
    """Render reasoning, the Markdown answer and sources into chunks of at most limit units."""
    doc = _Document()
    if reasoning is not None and reasoning.strip():
        doc.append(reasoning_title, "bold")
        doc.append("\n")
        doc.append(_head(reasoning.strip(), reasoning_limit), "expandable_blockquote")

    answer_text, answer_entities = tm.convert(answer_md)
    if answer_text.strip():
        doc.paragraph_break()
        doc.extend(answer_text, answer_entities)

    if sources:
        doc.paragraph_break()
        doc.append(sources_title, "bold")
        # Numbering follows the caller's order even for skipped links, so "[2]" in
        # the answer still points at the second source.
        for number, (title, raw_url) in enumerate(sources, start=1):
            url = raw_url.strip()
            label = title.strip() or url
            if not label:
                continue
            doc.append(f"\n{number}. ")
            if url.startswith(_LINKABLE_SCHEMES):
                doc.append(label, "text_link", url=url)
            else:
                # A text_link Telegram cannot open risks the whole message being rejected.
                doc.append(label)

    # Chunks keep the newline they were split after, so joining them gives back the
    # whole text (the fallback relies on that); Telegram drops trailing whitespace.
    return [
        Chunk(text=text, entities=[_to_aiogram(e) for e in entities])
        for text, entities in tm.split_entities(doc.text, doc.entities, limit)
    ]


def render_quote(title: str, body: str, limit: int = REASONING_LIMIT) -> Chunk:
    """A title line over a collapsed quote (e.g. a voice note's transcript)."""
    doc = _Document()
    doc.append(title)
    doc.append("\n")
    doc.append(_head(body.strip(), limit) or ELLIPSIS, "expandable_blockquote")
    return Chunk(text=doc.text, entities=[_to_aiogram(e) for e in doc.entities])


def render_plain(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split plain text into messages of at most limit units, at newlines where possible."""
    return [part for part, _ in tm.split_entities(text, [], limit)]


def draft_text(partial_md: str, limit: int = TELEGRAM_TEXT_LIMIT) -> str:
    """Plain text of a partial answer for a streaming draft, keeping the newest limit units."""
    try:
        text, _ = tm.convert(partial_md)
    except Exception:
        # An unfinished fragment is expected input here; a draft is ephemeral, so
        # raw Markdown beats showing nothing.
        text = partial_md
    text = text.strip()
    if utf16_len(text) <= limit:
        return text
    return ELLIPSIS + _tail(text, limit - utf16_len(ELLIPSIS)).lstrip()


class _Document:
    """Plain text being assembled together with library entities at UTF-16 offsets."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.entities: list[tm.MessageEntity] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def append(self, text: str, entity_type: str | None = None, *, url: str | None = None) -> None:
        length = utf16_len(text)
        if entity_type is not None and length:
            self.entities.append(
                tm.MessageEntity(type=entity_type, offset=self._length, length=length, url=url)
            )
        self._parts.append(text)
        self._length += length

    def extend(self, text: str, entities: Iterable[tm.MessageEntity]) -> None:
        self.entities.extend(e.copy_with(offset=e.offset + self._length) for e in entities)
        self._parts.append(text)
        self._length += utf16_len(text)

    def paragraph_break(self) -> None:
        if self._length:
            self.append("\n\n")


def shorten(text: str, limit: int) -> str:
    """Text cut to at most limit UTF-16 units, with an ellipsis when cut (e.g. a caption)."""
    return _head(text.strip(), limit)


def _head(text: str, limit: int) -> str:
    """Text shortened to at most limit UTF-16 units, ending with an ellipsis when cut."""
    if utf16_len(text) <= limit:
        return text
    return _prefix(text, limit - utf16_len(ELLIPSIS)).rstrip() + ELLIPSIS


def _prefix(text: str, limit: int) -> str:
    """The longest prefix of text of at most limit UTF-16 units."""
    used = 0
    for index, char in enumerate(text):
        used += utf16_len(char)
        if used > limit:
            return text[:index]
    return text


def _tail(text: str, limit: int) -> str:
    """The longest suffix of text of at most limit UTF-16 units."""
    used = 0
    for index in range(len(text) - 1, -1, -1):
        used += utf16_len(text[index])
        if used > limit:
            return text[index + 1 :]
    return text


def _to_aiogram(entity: tm.MessageEntity) -> MessageEntity:
    """The library's entity as aiogram's type; the library's dict user validates into User."""
    return MessageEntity.model_validate(entity.to_dict())
