"""Reading documents: real PDFs through pypdf, text files in the encodings people use."""

import pytest

from backend.services.documents import DOCUMENT_TYPES, document_type, read_document
from backend.utils.exceptions import DocumentUnreadable, UnsupportedDocument
from tests.fakes.files import encrypted_pdf_bytes, pdf_bytes, png_bytes


def test_pdf_text_is_read_page_by_page():
    data = pdf_bytes(["First page about apples.", "Вторая страница о грушах."])
    document = read_document(data, "fruit.pdf", "application/pdf", max_pages=10)
    assert "First page about apples." in document.text
    assert "Вторая страница о грушах." in document.text
    assert (document.pages_read, document.pages_total, document.pages_cut) == (2, 2, False)


def test_pdf_past_the_page_limit_is_cut_and_says_so():
    data = pdf_bytes([f"Page number {n}." for n in range(1, 6)])
    document = read_document(data, "long.pdf", "application/pdf", max_pages=2)
    assert "Page number 2." in document.text
    assert "Page number 3." not in document.text
    assert (document.pages_read, document.pages_total, document.pages_cut) == (2, 5, True)


def test_password_protected_pdf_is_refused_as_unreadable():
    with pytest.raises(DocumentUnreadable) as refused:
        read_document(encrypted_pdf_bytes(), "secret.pdf", "application/pdf", max_pages=10)
    assert refused.value.details["reason"] == "encrypted"


def test_garbage_named_pdf_is_refused_as_unreadable():
    with pytest.raises(DocumentUnreadable) as refused:
        read_document(b"%PDF-1.4 not really", "broken.pdf", "application/pdf", max_pages=10)
    assert refused.value.details["reason"] == "invalid"


def test_utf8_and_windows_1251_text_files_are_decoded():
    utf8 = read_document("Привет, мир".encode(), "note.txt", "text/plain", max_pages=1)
    cp1251 = read_document("Привет, мир".encode("cp1251"), "old.txt", "text/plain", max_pages=1)
    assert utf8.text == cp1251.text == "Привет, мир"


def test_source_code_is_read_by_its_extension():
    source = b"def add(a, b):\n    return a + b\n"
    document = read_document(source, "maths.py", "application/octet-stream", max_pages=1)
    assert document.text == source.decode()
    assert document.pages_total is None


def test_binary_file_with_a_text_name_is_refused():
    with pytest.raises(DocumentUnreadable):
        read_document(png_bytes(), "picture.txt", "text/plain", max_pages=1)


def test_unsupported_type_lists_what_works():
    with pytest.raises(UnsupportedDocument) as refused:
        read_document(b"PK\x03\x04", "sheet.xlsx", "application/vnd.ms-excel", max_pages=1)
    assert refused.value.details["supported"] == list(DOCUMENT_TYPES)
    assert "pdf" in refused.value.details["supported"]


@pytest.mark.parametrize(
    ("filename", "media_type", "expected"),
    [
        ("Report.PDF", "application/octet-stream", "pdf"),
        (None, "application/pdf", "pdf"),
        ("README.md", "text/markdown", "md"),
        ("notes", "text/plain", "txt"),
        ("Dockerfile", "application/octet-stream", "dockerfile"),
        ("archive.zip", "application/zip", None),
    ],
)
def test_document_type_from_name_or_media_type(filename, media_type, expected):
    assert document_type(filename, media_type) == expected
