"""A model's answer becomes Telegram messages that fit, keep every word and valid entities."""

import telegramify_markdown as tm
from aiogram.types import MessageEntity

from bot.utils.render import Chunk, draft_text, render_answer, render_plain, utf16_len


def entity_text(text: str, entity: MessageEntity) -> str:
    """What an entity covers, sliced the way Telegram does: in UTF-16 code units."""
    units = text.encode("utf-16-le")
    return units[entity.offset * 2 : (entity.offset + entity.length) * 2].decode("utf-16-le")


def assert_entities_inside(chunk: Chunk) -> None:
    size = utf16_len(chunk.text)
    for entity in chunk.entities:
        assert isinstance(entity, MessageEntity)
        assert entity.length > 0
        assert entity.offset >= 0
        assert entity.offset + entity.length <= size


def long_answer() -> str:
    paragraph = (
        "Это **важный** абзац с *курсивом*, `кодом` и [ссылкой](https://example.com). "
        "It keeps going so that the answer grows well past one Telegram message.\n\n"
    )
    items = "".join(f"- item number {n} with some words\n" for n in range(40)) + "\n"
    numbered = "".join(f"{n}. step {n} of the plan\n" for n in range(1, 30)) + "\n"
    code = "```python\n" + "".join(f"value_{n} = compute({n})\n" for n in range(120)) + "```\n\n"
    answer = paragraph * 20 + items + code + numbered + paragraph * 20
    assert len(answer) >= 9000
    return answer


def test_long_answer_is_split_into_chunks_that_fit():
    chunks = render_answer(long_answer())

    assert len(chunks) >= 3
    assert all(utf16_len(chunk.text) <= 4096 for chunk in chunks)


def test_long_answer_chunks_lose_no_text():
    answer = long_answer()

    chunks = render_answer(answer)

    plain, _ = tm.convert(answer)
    assert "".join(chunk.text for chunk in chunks) == plain


def test_every_entity_stays_inside_its_chunk():
    for chunk in render_answer(long_answer()):
        assert_entities_inside(chunk)


def test_code_block_split_across_chunks_is_code_in_both_parts():
    code = "".join(f"line_{n:04d} = {n}\n" for n in range(400))
    answer = "Intro paragraph.\n\n```python\n" + code + "```\n\nOutro paragraph."

    chunks = render_answer(answer)

    holding_code = [chunk for chunk in chunks if "line_" in chunk.text]
    assert len(holding_code) >= 2
    for chunk in holding_code:
        pre = [e for e in chunk.entities if e.type == "pre"]
        assert pre, chunk.text[:40]
        covered = "".join(entity_text(chunk.text, e) for e in pre)
        assert all(line in covered for line in chunk.text.splitlines() if line.startswith("line_"))


def test_entity_offsets_count_emoji_as_two_utf16_units():
    [chunk] = render_answer("😀𝔘 before **bold 🎉 text** after 👍")

    [bold] = [e for e in chunk.entities if e.type == "bold"]
    assert bold.offset == len("😀𝔘 before ") + 2
    assert entity_text(chunk.text, bold) == "bold 🎉 text"


def test_entity_offsets_stay_correct_in_later_chunks_with_emoji():
    line = "😀 emoji line with **bold 𝔘 part** end\n"

    chunks = render_answer(line * 300, limit=500)

    assert len(chunks) > 1
    for chunk in chunks:
        assert utf16_len(chunk.text) <= 500
        assert_entities_inside(chunk)
        assert {entity_text(chunk.text, e) for e in chunk.entities if e.type == "bold"} == {
            "bold 𝔘 part"
        }


def test_reasoning_is_an_expandable_quote_before_the_answer():
    [chunk] = render_answer(
        "The **answer**.", reasoning="First I thought about it.", reasoning_title="Ход мысли"
    )

    assert chunk.text.startswith("Ход мысли\nFirst I thought about it.")
    [title] = [e for e in chunk.entities if e.type == "bold" and e.offset == 0]
    assert entity_text(chunk.text, title) == "Ход мысли"
    [quote] = [e for e in chunk.entities if e.type == "expandable_blockquote"]
    assert entity_text(chunk.text, quote) == "First I thought about it."
    assert chunk.text.index("The answer.") > quote.offset + quote.length


def test_reasoning_is_plain_text_not_markdown():
    [chunk] = render_answer("Answer.", reasoning="keep **these stars** and `ticks`")

    [quote] = [e for e in chunk.entities if e.type == "expandable_blockquote"]
    assert entity_text(chunk.text, quote) == "keep **these stars** and `ticks`"


def test_long_reasoning_is_shortened_and_leaves_room_for_the_answer():
    chunks = render_answer("The final answer.", reasoning="thinking hard " * 2000)

    first = chunks[0]
    [quote] = [e for e in first.entities if e.type == "expandable_blockquote"]
    assert quote.length <= 3000
    assert entity_text(first.text, quote).endswith("…")
    assert "The final answer." in first.text


def test_blank_reasoning_adds_nothing():
    assert render_answer("Answer.", reasoning="  \n ") == render_answer("Answer.")


def test_sources_become_a_numbered_list_of_links():
    [chunk] = render_answer(
        "Answer.",
        sources=[("Python docs", "https://docs.python.org"), ("", "https://example.org/x")],
        sources_title="Источники",
    )

    assert chunk.text.endswith("Answer.\n\nИсточники\n1. Python docs\n2. https://example.org/x")
    links = [e for e in chunk.entities if e.type == "text_link"]
    assert [(entity_text(chunk.text, e), e.url) for e in links] == [
        ("Python docs", "https://docs.python.org"),
        ("https://example.org/x", "https://example.org/x"),
    ]
    [title] = [e for e in chunk.entities if e.type == "bold"]
    assert entity_text(chunk.text, title) == "Источники"


def test_blank_answer_gives_no_chunks():
    assert render_answer("  \n\n\t \n") == []


def test_blank_answer_parts_never_make_empty_chunks():
    answer = "\n\n\n".join(["x" * 90] * 30) + "\n" * 500 + "tail"

    chunks = render_answer(answer, limit=100)

    assert chunks
    assert all(chunk.text.strip() for chunk in chunks)


def test_render_plain_keeps_every_character_under_the_limit():
    text = "\n".join(["short line 😀", "y" * 250, "𝔘" * 120, "last line"] * 10)

    parts = render_plain(text, limit=100)

    assert "".join(parts) == text
    assert all(0 < utf16_len(part) <= 100 for part in parts)


def test_render_plain_splits_at_newlines_when_lines_fit():
    text = "\n".join(f"line {n}" for n in range(100))

    parts = render_plain(text, limit=50)

    assert all(part.endswith("\n") for part in parts[:-1])


def test_draft_text_strips_markdown_markup():
    assert draft_text("Some **bold** and `code`") == "Some bold and code"


def test_draft_text_shows_the_newest_text_when_too_long():
    partial = "".join(f"sentence {n}. " for n in range(2000))

    draft = draft_text(partial, limit=200)

    assert draft.startswith("…")
    assert draft.endswith("sentence 1999.")
    assert utf16_len(draft) <= 200


def test_draft_text_counts_the_limit_in_utf16_units():
    draft = draft_text("😀" * 500, limit=101)

    assert draft == "…" + "😀" * 50


def test_draft_text_of_unfinished_markdown_is_readable():
    assert draft_text("Here is ```python\nprint(") == "Here is ```python\nprint("
    assert draft_text("Some **unfinished") == "Some **unfinished"
