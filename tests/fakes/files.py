"""Sample files for tests, built by hand: a real PDF, PNG and an Ogg-looking voice note.

    pdf_bytes(["Page one", "Page two"])  # pypdf extracts each page's text
    encrypted_pdf_bytes()                # pypdf reports it encrypted; PDF_PASSWORD opens it
    png_bytes(2, 2)                      # a valid PNG of one colour
    ogg_bytes(2048)                      # starts with the "OggS" capture pattern

No dependency: the formats are written out with struct, zlib and hashlib.
"""

import hashlib
import struct
import zlib

# --- PDF ------------------------------------------------------------------------------------

_PAGE_WIDTH, _PAGE_HEIGHT = 612, 792  # US Letter, in points
_FONT_SIZE, _LEADING = 12, 14
PDF_PASSWORD = "secret"  # opens encrypted_pdf_bytes()
PDF_OWNER_PASSWORD = "owner"
_FIRST_FREE_CODE = 0x80  # codes from here on stand for the non-ASCII characters used
_ID = bytes.fromhex("5f0b9a3c8e2d4f6a1b7c9d0e2f4a6b8c")  # the file identifier, fixed on purpose
# Algorithm 2 of the PDF standard security handler pads passwords with these 32 bytes.
_PASSWORD_PAD = bytes.fromhex("28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a")


def _code_table(pages: list[str]) -> dict[str, int]:
    """A one-byte code for each character: ASCII as itself, the rest from 0x80 on."""
    table = {chr(code): code for code in range(0x20, 0x7F)}
    extra = sorted({ch for page in pages for ch in page if ch not in table and ch != "\n"})
    if len(extra) > 0x100 - _FIRST_FREE_CODE:
        raise ValueError(f"at most {0x100 - _FIRST_FREE_CODE} distinct non-ASCII characters")
    table.update({ch: _FIRST_FREE_CODE + i for i, ch in enumerate(extra)})
    return table


def _pdf_string(line: str, codes: dict[str, int]) -> bytes:
    """A PDF literal string of `line` in the font's codes, with (, ) and \\ escaped."""
    out = bytearray(b"(")
    for ch in line:
        if ch not in codes:
            raise ValueError(f"character {ch!r} cannot be written to the PDF")
        code = codes[ch]
        if ch in "()\\":
            out += b"\\" + ch.encode()
        elif code >= _FIRST_FREE_CODE:
            out += b"\\%03o" % code
        else:
            out.append(code)
    return bytes(out + b")")


def _content_stream(text: str, codes: dict[str, int]) -> bytes:
    top = _PAGE_HEIGHT - 72
    ops = [b"BT", b"/F1 %d Tf" % _FONT_SIZE, b"%d TL" % _LEADING, b"72 %d Td" % top]
    for number, line in enumerate(text.split("\n")):
        if number:
            ops.append(b"T*")
        ops.append(_pdf_string(line, codes) + b" Tj")
    ops.append(b"ET")
    return b"\n".join(ops) + b"\n"


def _to_unicode_cmap(codes: dict[str, int]) -> bytes:
    """A ToUnicode CMap, so text extraction maps every code back to its character."""
    entries = sorted((code, ch) for ch, code in codes.items())
    lines = [
        b"/CIDInit /ProcSet findresource begin",
        b"12 dict begin",
        b"begincmap",
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        b"/CMapName /Pomogator-UCS def",
        b"/CMapType 2 def",
        b"1 begincodespacerange",
        b"<00> <FF>",
        b"endcodespacerange",
    ]
    for start in range(0, len(entries), 100):  # at most 100 entries per block
        block = entries[start : start + 100]
        lines.append(b"%d beginbfchar" % len(block))
        for code, ch in block:
            lines.append(b"<%02X> <%s>" % (code, ch.encode("utf-16-be").hex().upper().encode()))
        lines.append(b"endbfchar")
    lines += [b"endcmap", b"CMapName currentdict /CMap defineresource pop", b"end", b"end"]
    return b"\n".join(lines) + b"\n"


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


class _Rc4Security:
    """The standard security handler, revision 2 (40-bit RC4), of PDF 1.4 section 3.5."""

    PERMISSIONS = -4  # everything allowed; only opening needs the password

    def __init__(self, user_password: str, owner_password: str) -> None:
        owner_key = hashlib.md5(self._pad(owner_password), usedforsecurity=False).digest()[:5]
        self.owner_entry = _rc4(owner_key, self._pad(user_password))
        seed = (
            self._pad(user_password) + self.owner_entry + struct.pack("<i", self.PERMISSIONS) + _ID
        )
        self.key = hashlib.md5(seed, usedforsecurity=False).digest()[:5]
        self.user_entry = _rc4(self.key, _PASSWORD_PAD)

    @staticmethod
    def _pad(password: str) -> bytes:
        return (password.encode("latin-1") + _PASSWORD_PAD)[:32]

    def encrypt(self, number: int, data: bytes) -> bytes:
        """`data` of object `number` (generation 0), encrypted with that object's key."""
        salt = struct.pack("<i", number)[:3] + b"\x00\x00"
        key = hashlib.md5(self.key + salt, usedforsecurity=False).digest()[:10]
        return _rc4(key, data)

    def dictionary(self) -> bytes:
        return b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>" % (
            self.owner_entry.hex().encode(),
            self.user_entry.hex().encode(),
            self.PERMISSIONS,
        )


def _pdf(pages: list[str], security: _Rc4Security | None = None) -> bytes:
    if not pages:
        raise ValueError("a PDF has at least one page")
    codes = _code_table(pages)
    font, cmap, first_page = 3, 4, 5
    objects: dict[int, bytes] = {}
    streams: dict[int, bytes] = {}
    kids = []
    for index, text in enumerate(pages):
        page, content = first_page + 2 * index, first_page + 2 * index + 1
        kids.append(b"%d 0 R" % page)
        objects[page] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
            % (_PAGE_WIDTH, _PAGE_HEIGHT, font, content)
        )
        streams[content] = _content_stream(text, codes)
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(pages))
    objects[font] = (
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding "
        b"/ToUnicode %d 0 R >>" % cmap
    )
    streams[cmap] = _to_unicode_cmap(codes)
    for number, data in streams.items():
        if security is not None:
            data = security.encrypt(number, data)
        objects[number] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data)
    encrypt_ref = b""
    if security is not None:
        encrypt = max(objects) + 1
        objects[encrypt] = security.dictionary()
        encrypt_ref = b" /Encrypt %d 0 R" % encrypt

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R /ID [<%s> <%s>]%s >>\n" % (
        size,
        _ID.hex().encode(),
        _ID.hex().encode(),
        encrypt_ref,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def pdf_bytes(pages: list[str]) -> bytes:
    """A real PDF with one page per string (newlines start new lines), text in Helvetica.

    Any characters work for extraction (a ToUnicode map covers up to 128 non-ASCII ones), so
    Russian text comes back from pypdf as written; viewers show only ASCII correctly.
    """
    return _pdf(pages)


def encrypted_pdf_bytes(
    pages: list[str] | None = None,
    *,
    user_password: str = PDF_PASSWORD,
    owner_password: str = PDF_OWNER_PASSWORD,
) -> bytes:
    """A PDF encrypted with 40-bit RC4: pypdf says is_encrypted; only the password opens it."""
    return _pdf(pages or ["Confidential"], _Rc4Security(user_password, owner_password))


# --- PNG ------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid PNG (8-bit RGB, not interlaced) of `width` x `height` pixels of one colour."""
    if not (1 <= width <= 10_000 and 1 <= height <= 10_000):
        raise ValueError("width and height must be 1-10000 pixels")
    row = b"\x00" + bytes(rgb) * width  # filter type 0 ("None") before every scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(row * height, 9))
        + _png_chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, read from its IHDR chunk."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- Ogg ------------------------------------------------------------------------------------


def ogg_bytes(size: int = 2048) -> bytes:
    """`size` bytes that start like an Ogg Opus voice note; not decodable audio."""
    header = (
        b"OggS"  # capture pattern
        + bytes([0, 0x02])  # version 0, beginning of stream
        + struct.pack("<qII", 0, 0x504F4D4F, 0)  # granule position, serial number, page 0
        + b"\x00\x00\x00\x00"  # checksum (not computed: nothing decodes this)
        + bytes([1, 19])  # one segment of 19 bytes: the OpusHead packet
        + b"OpusHead"
        + bytes([1, 1])  # version 1, mono
        + struct.pack("<HIhB", 312, 48_000, 0, 0)  # pre-skip, rate, gain, mapping family
    )
    if size < len(header):
        raise ValueError(f"an Ogg file here is at least {len(header)} bytes")
    return header + bytes(i % 251 for i in range(size - len(header)))
