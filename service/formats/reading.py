"""Turning an uploaded or local byte stream into text: gzip unwrapped, encoding detected or named, bytes
read counted (for progress), and decoding or decompression failures reported as ``FormatError``."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from . import FormatError, RowError

csv.field_size_limit(16 * 1024 * 1024)

SAMPLE_BYTES = 1 << 16
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8-sig", "cp1252": "cp1252",
             "windows-1252": "cp1252"}


class TooLarge(FormatError):
    """The file unpacks to more than ``Bounds`` allow (a decompression bomb): refused whole (413)."""


@dataclass(frozen=True)
class Bounds:
    """How far a compressed upload may unpack: ``max_bytes`` in all (`IMPORT_MAX_UNPACKED_BYTES`), and at
    most ``max_ratio`` times the compressed bytes read so far (`IMPORT_MAX_RATIO`) once past ``floor``
    bytes (a small file may compress well). The real files unpack 3-8 times."""

    max_bytes: int = 1 << 30
    max_ratio: int = 100
    floor: int = 1 << 20

    def check(self, unpacked: int, packed: int, what: str = "The gzip file") -> None:
        if unpacked > self.max_bytes:
            raise TooLarge(f"{what} unpacks to more than {self.max_bytes:,} bytes "
                           f"(IMPORT_MAX_UNPACKED_BYTES); nothing was imported.")
        if unpacked > self.floor and unpacked > self.max_ratio * max(packed, 1):
            raise TooLarge(f"{what} unpacks to more than {self.max_ratio} times its compressed size "
                           f"(IMPORT_MAX_RATIO; a decompression bomb?); nothing was imported.")


DEFAULT_BOUNDS = Bounds()


class _Unpacked(io.RawIOBase):
    """The bytes of ``unpacked`` (a GzipFile over ``packed``), stopped with ``TooLarge`` past ``bounds``."""

    def __init__(self, unpacked: BinaryIO, packed: _Counted, bounds: Bounds):
        self._unpacked, self._packed, self._bounds = unpacked, packed, bounds
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._unpacked.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        self._bounds.check(self.bytes_read, self._packed.bytes_read)
        return n


class _Counted(io.RawIOBase):
    """A raw stream over ``prefix`` then ``stream``, counting the bytes handed on."""

    def __init__(self, prefix: bytes, stream: BinaryIO, on_read: Callable[[int], None] | None):
        self._prefix, self._stream, self._on_read = prefix, stream, on_read
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n], self._prefix = self._prefix[:n], self._prefix[n:]
        else:
            data = self._stream.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        self.bytes_read += n
        if self._on_read is not None and n:
            self._on_read(n)
        return n


def _read_sample(stream: BinaryIO) -> bytes:
    chunks, size = [], 0
    while size < SAMPLE_BYTES:
        chunk = stream.read(SAMPLE_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _detect(sample: bytes, named: str | None) -> str:
    """The Python codec for a file starting with ``sample``: the one named, else UTF-8 (with or without
    BOM) when the sample decodes as UTF-8, else Windows-1252."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in sample[:4096]:
        raise FormatError("The file is not text in UTF-8 or Windows-1252 (it looks like UTF-16 or "
                          "binary data); save it as UTF-8.")
    if named is not None:
        codec = ENCODINGS.get(named.strip().lower())
        if codec is None:
            raise FormatError(f"Encoding {named!r} is not supported; use one of "
                              f"{', '.join(sorted(set(ENCODINGS)))}.")
        if codec == "utf-8" and sample.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        return codec
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


@contextmanager
def open_text(stream: BinaryIO, *, encoding: str | None = None,
              on_read: Callable[[int], None] | None = None,
              bounds: Bounds | None = None) -> Iterator[tuple[io.TextIOWrapper, str]]:
    """A text stream over ``stream`` (gzip-compressed or not, unpacked within ``bounds``) and the encoding
    used; ``on_read`` is told how many (compressed) bytes were read, as they are read."""
    head = _read_sample(stream)
    counted = _Counted(head, stream, on_read)
    raw: BinaryIO = io.BufferedReader(counted, buffer_size=SAMPLE_BYTES)
    if head[:2] == b"\x1f\x8b":
        # The GzipFile reads the counted stream itself (8 KiB at a time, no read-ahead buffer between),
        # so the compressed bytes counted are those it has unpacked: the ratio is checked tightly.
        unpacked = io.BufferedReader(_Unpacked(gzip.GzipFile(fileobj=counted, mode="rb"), counted,
                                               bounds or DEFAULT_BOUNDS), buffer_size=SAMPLE_BYTES)
        try:
            sample = _read_sample(unpacked)
        except (OSError, EOFError, zlib.error) as error:
            raise FormatError(f"The gzip file cannot be read: {error}.") from None
        raw = io.BufferedReader(_Counted(sample, unpacked, None), buffer_size=SAMPLE_BYTES)
    else:
        sample = head
    if not sample.strip():
        raise FormatError("The file is empty.")
    codec = _detect(sample, encoding)
    text = io.TextIOWrapper(raw, encoding=codec, errors="strict", newline="")
    yield text, ("utf-8" if codec == "utf-8" else "utf-8 (with BOM)" if codec == "utf-8-sig"
                 else "windows-1252")


def load_json(text: str) -> Any:
    """``json.loads``, with Python's own limits reported as a ``RowError`` (the record is rejected, not the
    file): nesting deeper than the recursion limit, an integer of more than 4,300 digits."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise RowError("is nested too deeply to be read.") from None
    except ValueError as error:  # int_max_str_digits
        raise RowError(f"cannot be read: {str(error).split(';')[0]}.") from None


def describe_read_error(error: Exception, encoding: str, line: int) -> str:
    """The message refusing a file whose bytes could not be read after ``line``."""
    if isinstance(error, UnicodeDecodeError):
        hint = ("name its encoding (windows-1252)" if encoding.startswith("utf-8")
                else "it is not Windows-1252 either")
        where = f"after line {line}" if line else "in its first records"
        return f"The file is not valid {encoding} {where} (byte 0x{error.object[error.start]:02x}); {hint}."
    if isinstance(error, EOFError):
        return "The gzip file is truncated" + (f" (it ends after line {line})." if line else ".")
    return f"The file cannot be read after line {line}: {error}."


READ_ERRORS = (UnicodeDecodeError, EOFError, OSError, zlib.error)


ZIP_MAGIC = b"PK\x03\x04"
SPOOL_BYTES = 64 * 1024 * 1024


@contextmanager
def open_binary(stream: BinaryIO, *, encoding: str | None = None,
                on_read: Callable[[int], None] | None = None,
                bounds: Bounds | None = None) -> Iterator[tuple[BinaryIO, str]]:
    """A seekable copy of ``stream`` for the formats read as bytes (an xlsx workbook is a ZIP archive,
    read by seeking): copied to memory, or to a temporary file past ``SPOOL_BYTES``. ``on_read`` is told
    the bytes read, as they are read."""
    if encoding is not None:
        raise FormatError("An xlsx workbook has no text encoding; leave `encoding` out.")
    copy = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed below)
    try:
        while chunk := stream.read(SAMPLE_BYTES):
            copy.write(chunk)
            if on_read is not None:
                on_read(len(chunk))
        copy.seek(0)
        head = copy.read(4)
        copy.seek(0)
        if not head.strip():
            raise FormatError("The file is empty.")
        if head[:2] == b"\x1f\x8b":
            raise FormatError("The file is gzip-compressed: an xlsx workbook is compressed already; "
                              "send the .xlsx itself.")
        if head == b"\xd0\xcf\x11\xe0":
            raise FormatError("The file is an Excel 97-2003 workbook (.xls) or an encrypted one, not an "
                              ".xlsx; save it as .xlsx (Excel Workbook) without a password.")
        if head != ZIP_MAGIC:
            raise FormatError(f"The file is not an xlsx workbook (an .xlsx is a ZIP archive starting with "
                              f"`PK`; this one starts with {head!r}). A CSV export is imported with its "
                              f"own format (ictrp-csv).")
        if head == ZIP_MAGIC:
            check_zip(copy, bounds or DEFAULT_BOUNDS)
        yield copy, "binary"
    finally:
        copy.close()


def check_zip(stream: BinaryIO, bounds: Bounds) -> None:
    """Refuse a ZIP archive (an xlsx workbook) whose directory declares members unpacking past ``bounds``
    (in all, or one member more than the ratio), before any member is read: Python's zipfile never
    reads past a member's declared size, so the directory bounds what reading it can cost. A broken
    archive is left to the format's reader (which refuses it)."""
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return
    finally:
        stream.seek(0)
    total = packed = 0
    for member in members:
        total += member.file_size
        packed += member.compress_size
        bounds.check(member.file_size, member.compress_size, f"The workbook's part {member.filename[:100]!r}")
    bounds.check(total, packed, "The workbook")


def open_input(stream: BinaryIO, *, fmt: str, encoding: str | None = None,
               on_read: Callable[[int], None] | None = None, bounds: Bounds | None = None):
    """The stream a format's parser reads, and what was detected: text (``open_text``) for the text
    formats, a seekable byte stream (``open_binary``) for the binary ones (``BINARY_FORMATS``); both
    unpack within ``bounds``."""
    from . import BINARY_FORMATS

    opener = open_binary if fmt in BINARY_FORMATS else open_text
    return opener(stream, encoding=encoding, on_read=on_read, bounds=bounds)


# -- the row loop of the CSV formats -----------------------------------------------------------------------

def csv_rows(stream: io.TextIOBase, on_header: Callable[[list[str]], None]
             ) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """The records of a CSV text stream as ``(line, cells, None)``, or ``(line, None, reason)`` for a record
    whose width is not the header's; blank records are skipped. ``on_header`` is given the header first
    (it raises ``FormatError`` when the header is not the format's).

    A record shorter than the header is held until the next one: the last record of a file cut short is
    short, and the file is then refused (``FormatError``) instead of the record rejected. A file with no
    header, or one the csv module cannot read, is refused too."""
    last = {"text": ""}

    def lines():
        for line in stream:
            last["text"] = line
            yield line

    reader = csv.reader(lines(), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise FormatError("The file is empty.")
        on_header(header)
        width = len(header)
        start = reader.line_num + 1
        held: tuple[int, None, str] | None = None
        for row in reader:
            line, start = start, reader.line_num + 1
            if held is not None:
                yield held
                held = None
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != width:
                result = (line, None, f"has {len(row)} fields where the header has {width}.")
                if len(row) < width:
                    held = result
                    continue
                yield result
                continue
            yield line, row, None
        if held is not None:
            if not last["text"].endswith(("\n", "\r")):
                raise FormatError(f"The file ends in the middle of the record at line {held[0]} "
                                  f"(truncated?).")
            yield held
    except csv.Error as error:
        raise FormatError(f"The CSV cannot be read at line {reader.line_num}: {error} "
                          f"(truncated, or not CSV?).") from None
