"""The model catalog: the shipped one is valid; a broken one is refused with a clear error."""

import pytest

from backend.services.catalog import CatalogError, load_catalog

REQUIRED_WORDS = ["Instant", "Thinking", "Search", "Research", "Laboratory", "Standard"]


def test_shipped_catalog_offers_eight_models_of_three_providers():
    catalog = load_catalog()
    assert {p.label for p in catalog.providers.values()} == {"ChatGPT", "Perplexity", "DeepSeek"}
    assert len(catalog.models) == 8
    labels = " ".join(m.label for m in catalog.models)
    assert all(word in labels for word in REQUIRED_WORDS)
    assert catalog.default.provider == "chatgpt"


PROVIDER = "[providers.a]\nlabel='A'\napi_style='chat_completions'\ncredentials='deepseek'\n"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("default_model = 'x'\n" + PROVIDER, "models"),
        (
            "default_model = 'm'\n"
            + PROVIDER
            + "[[models]]\nkey='m'\nprovider='b'\nlabel='M'\napi_model='x'\n",
            "unknown provider",
        ),
        (
            "default_model = 'zzz'\n"
            + PROVIDER
            + "[[models]]\nkey='m'\nprovider='a'\nlabel='M'\napi_model='x'\n",
            "default_model",
        ),
        (
            "default_model = 'm'\n[providers.a]\nlabel='A'\napi_style='soap'\n"
            "credentials='deepseek'\n"
            "[[models]]\nkey='m'\nprovider='a'\nlabel='M'\napi_model='x'\n",
            "api_style",
        ),
        (
            "default_model = 'm'\n"
            + PROVIDER
            + "[[models]]\nkey='m'\nprovider='a'\nlabel='M'\napi_model='x'\n"
            + "price_input_per_1m=-1\n",
            "price_input_per_1m",
        ),
        ("this is = = not toml", "model catalog"),
    ],
)
def test_broken_catalog_is_refused(tmp_path, text, complaint):
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=complaint):
        load_catalog(path)


def test_missing_catalog_file_is_refused(tmp_path):
    with pytest.raises(CatalogError, match=r"missing\.toml"):
        load_catalog(tmp_path / "missing.toml")
