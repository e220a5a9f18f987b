"""Reading documents people send: the text of a PDF (pypdf), a text file or source code."""

import io
import logging
from dataclasses import dataclass
from pathlib import PurePath

from pypdf import PdfReader

from backend.utils.exceptions import DocumentUnreadable, UnsupportedDocument

PDF = "pdf"
TEXT_EXTENSIONS = frozenset(
    {
        "txt", "md", "markdown", "rst", "csv", "tsv", "json", "jsonl", "xml", "yaml", "yml",
        "toml", "ini", "cfg", "conf", "log", "html", "htm", "css", "scss", "tex", "sql",
        "py", "ipynb", "js", "mjs", "ts", "tsx", "jsx", "vue", "java", "kt", "kts", "scala",
        "c", "h", "cpp", "cc", "hpp", "cs", "go", "rs", "rb", "php", "swift", "m", "dart",
        "lua", "pl", "r", "sh", "bash", "zsh", "ps1", "bat", "dockerfile", "makefile",
    }
)  # fmt: skip
DOCUMENT_TYPES = (PDF, *sorted(TEXT_EXTENSIONS))
# Text files without a telling extension are recognised by their media type.
TEXT_MEDIA_TYPES = frozenset({"application/json", "application/xml", "application/x-sh"})

# pypdf reports recoverable oddities of real-world PDFs as warnings; they are not ours to log.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class Document:
    """The readable text of a document and how much of it was read."""

    name: str
    text: str
    pages_read: int | None = None  # PDFs only
    pages_total: int | None = None

    @property
    def pages_cut(self) -> bool:
        return self.pages_total is not None and self.pages_read != self.pages_total


def document_type(filename: str | None, media_type: str) -> str | None:
    """ "pdf", a text extension, or None when the file is not something we read."""
    name = PurePath(filename or "").name.lower()
    suffix = name.rsplit(".", 1)[-1] if "." in name else name
    if suffix == PDF or media_type == "application/pdf":
        return PDF
    if suffix in TEXT_EXTENSIONS:
        return suffix
    if media_type.startswith("text/") or media_type in TEXT_MEDIA_TYPES:
        return "txt"
    return None


def read_document(data: bytes, filename: str | None, media_type: str, max_pages: int) -> Document:
    """The text of the document (CPU-bound: run it in a thread); refuses what it cannot read."""
    kind = document_type(filename, media_type)
    name = PurePath(filename or "document").name
    if kind is None:
        raise UnsupportedDocument(
            f"{name} is not a document that can be read.", supported=list(DOCUMENT_TYPES)
        )
    if kind == PDF:
        return _read_pdf(data, name, max_pages)
    return Document(name=name, text=_decode_text(data, name))


def _read_pdf(data: bytes, name: str, max_pages: int) -> Document:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentUnreadable(f"{name} is protected with a password.", reason="encrypted")
        total = len(reader.pages)
        pages = [reader.pages[i].extract_text() or "" for i in range(min(total, max_pages))]
    except DocumentUnreadable:
        raise
    except Exception as exc:
        raise DocumentUnreadable(f"{name} could not be read as a PDF.", reason="invalid") from exc
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise DocumentUnreadable(
            f"{name} has no text layer (a scan or pictures only).", reason="no_text"
        )
    return Document(name=name, text=text, pages_read=len(pages), pages_total=total)


def _decode_text(data: bytes, name: str) -> str:
    if b"\x00" in data:
        raise DocumentUnreadable(f"{name} is not a text file.", reason="binary")
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - cp1251 decodes all but five byte values
        raise DocumentUnreadable(f"{name} is not in a known text encoding.", reason="encoding")
    if not text.strip():
        raise DocumentUnreadable(f"{name} is empty.", reason="empty")
    return text
