"""Pure rules of an answer: which history fits the budget, and what an answer cost."""

from decimal import Decimal

from backend.services.ai_service import compute_cost, estimate_tokens, fit_history
from backend.services.catalog import load_catalog
from backend.services.providers.base import Turn, Usage


def test_whole_short_history_is_sent_oldest_first():
    pairs = [("q3", "a3"), ("q2", "a2"), ("q1", "a1")]  # newest first, as stored
    turns, trimmed = fit_history(pairs, "q4", budget=1000, more_exist=False)
    assert turns == [
        Turn("user", "q1"),
        Turn("assistant", "a1"),
        Turn("user", "q2"),
        Turn("assistant", "a2"),
        Turn("user", "q3"),
        Turn("assistant", "a3"),
        Turn("user", "q4"),
    ]
    assert trimmed is False


def test_oldest_turns_are_dropped_at_the_budget():
    long = "x" * 300  # about 104 tokens each
    pairs = [("new", long), ("middle", long), ("old", long)]
    budget = (
        estimate_tokens("q")
        + estimate_tokens("new")
        + estimate_tokens("middle")
        + 2 * estimate_tokens(long)
    )
    turns, trimmed = fit_history(pairs, "q", budget=budget, more_exist=False)
    assert [t.content for t in turns if t.role == "user"] == ["middle", "new", "q"]
    assert trimmed is True


def test_new_message_is_sent_even_when_nothing_else_fits():
    turns, trimmed = fit_history([("old", "answer")], "q" * 100, budget=0, more_exist=False)
    assert turns == [Turn("user", "q" * 100)]
    assert trimmed is True


def test_history_beyond_what_was_read_counts_as_trimmed():
    _, trimmed = fit_history([("q", "a")], "new", budget=10_000, more_exist=True)
    assert trimmed is True


def test_cost_from_catalog_prices_counts_cached_tokens_at_their_price():
    entry = load_catalog().get("chatgpt-instant")
    assert entry is not None
    usage = Usage(input_tokens=1_000_000, output_tokens=200_000, cached_input_tokens=400_000)
    # 600k * $1 + 400k * $0.05 + 200k * $5, per million
    assert compute_cost(entry, usage) == Decimal("1.620000")


def test_provider_reported_cost_wins():
    entry = load_catalog().get("perplexity-search")
    assert entry is not None
    usage = Usage(input_tokens=10, output_tokens=10, cost_usd=Decimal("0.0054"))
    assert compute_cost(entry, usage) == Decimal("0.005400")


def test_cost_is_unknown_without_prices_or_usage():
    entry = load_catalog().get("perplexity-search")
    assert entry is not None
    assert compute_cost(entry, Usage(input_tokens=1, output_tokens=1)) is None
    assert compute_cost(entry, None) is None
