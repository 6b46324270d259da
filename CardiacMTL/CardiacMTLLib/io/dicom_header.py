"""The few header elements a cine is assembled from, read from a DICOM file in one pass over its bytes.

A scanner's cine is hundreds of files; parsing each one's whole header with pydicom takes most of the
time spent reading a study. :func:`read_cine_fields` walks the top-level data elements of the common
file (Part 10, uncompressed little-endian transfer syntax, implicit or explicit VR) and decodes only the
elements listed in :data:`FIELDS`, as pydicom decodes them; nested sequences are stepped over. Anything
it does not handle exactly as pydicom does (another transfer syntax, a Modality LUT, text that is not
plain ASCII, a value that is not a well-formed number, a file that ends before its Pixel Data) gives
``None``, and the caller reads that file with pydicom.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

# keyword and value kind of each element read; the kinds decode as pydicom's values do:
# "uid"/"text": the string without trailing NULs and spaces; "ds": a float, a list of floats when
# several, None when empty; "is": an int, None when empty; "us": an unsigned 16-bit int
FIELDS = {
    0x00020010: ("TransferSyntaxUID", "uid"),
    0x00080016: ("SOPClassUID", "uid"),
    0x00080018: ("SOPInstanceUID", "uid"),
    0x0008103E: ("SeriesDescription", "text"),
    0x00100020: ("PatientID", "text"),
    0x00100040: ("PatientSex", "text"),
    0x00101020: ("PatientSize", "ds"),
    0x00101030: ("PatientWeight", "ds"),
    0x00180050: ("SliceThickness", "ds"),
    0x00181060: ("TriggerTime", "ds"),
    0x0020000D: ("StudyInstanceUID", "uid"),
    0x0020000E: ("SeriesInstanceUID", "uid"),
    0x00200011: ("SeriesNumber", "is"),
    0x00200013: ("InstanceNumber", "is"),
    0x00200032: ("ImagePositionPatient", "ds"),
    0x00200037: ("ImageOrientationPatient", "ds"),
    0x00280002: ("SamplesPerPixel", "us"),
    0x00280008: ("NumberOfFrames", "is"),
    0x00280010: ("Rows", "us"),
    0x00280011: ("Columns", "us"),
    0x00280030: ("PixelSpacing", "ds"),
    0x00280100: ("BitsAllocated", "us"),
    0x00280101: ("BitsStored", "us"),
    0x00280103: ("PixelRepresentation", "us"),
    0x00281052: ("RescaleIntercept", "ds"),
    0x00281053: ("RescaleSlope", "ds"),
}
# the VR each element must have in an explicit-VR file (another VR: pydicom's reading decides)
_VRS = {"uid": b"UI", "ds": b"DS", "is": b"IS", "us": b"US"}
_TEXT_VRS = {0x0008103E: b"LO", 0x00100020: b"LO", 0x00100040: b"CS"}
# uncompressed little-endian transfer syntaxes: implicit VR, explicit VR
IMPLICIT_VR_LE, EXPLICIT_VR_LE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
NATIVE_TRANSFER_SYNTAXES = (IMPLICIT_VR_LE, EXPLICIT_VR_LE)
PIXEL_DATA = 0x7FE00010
MODALITY_LUT_SEQUENCE = 0x00283000
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
# explicit VRs with a 4-byte length (after 2 reserved bytes); the others have a 2-byte length
_LONG_VRS = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
# the geometry an image needs, with its number of values: a file without it is left to pydicom, whose
# reading the caller's messages quote
GEOMETRY = (("ImageOrientationPatient", 6), ("ImagePositionPatient", 3), ("PixelSpacing", 2))
_ALL_VRS = _LONG_VRS | frozenset(
    vr.encode() for vr in "AE AS AT CS DA DS DT FD FL IS LO LT PN SH SL SS ST TM UI UL US".split()
)
# files larger than this (multi-frame, enhanced) are left to pydicom: a cine's image is a few hundred kB
MAX_BYTES = 4 << 20
# the header is read from the first bytes of a file (its pixels are read later, from the offset found),
# and from the whole file only when the header goes on beyond them (walked again from its start). A
# single-frame image is read whole: its pixels are a copy from the page cache, where walking a header
# twice is not (the biv-me study's headers are 120 kB of private elements: 0.15 s against 0.11 s)
HEAD_BYTES = 1 << 20
_DS = re.compile(rb"^ *[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)? *$")
_IS = re.compile(rb"^ *[+-]?\d+ *$")
_IMPLICIT = struct.Struct("<HHI")  # group, element, value length
_EXPLICIT = struct.Struct("<HH2sH")  # group, element, VR, value length (or reserved, for the long VRs)
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class _Declined(Exception):
    """This file is not one the fast reader handles exactly as pydicom does."""


class _Short(_Declined):
    """The header goes on beyond the bytes read."""


def read_cine_fields(path: str | Path) -> tuple[dict, int] | None:
    """The :data:`FIELDS` of a DICOM file present in it (keyword to value) and the byte offset of its
    Pixel Data element, or ``None`` when the file is to be read with pydicom (see the module docstring)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if not 144 <= size <= MAX_BYTES:
                return None
            data = f.read(HEAD_BYTES)
            try:
                found = _header_of(memoryview(data))
            except _Short:
                found = None if len(data) == size else _header_of(memoryview(data + f.read()))
    except (OSError, _Declined):
        return None
    if found is None:
        return None
    fields, pixel_offset = found
    for keyword, count in GEOMETRY:
        value = fields.get(keyword)
        if not (isinstance(value, list) and len(value) == count):  # pydicom says what is wrong
            return None
    if not ("Rows" in fields and "Columns" in fields):
        return None
    if any(not isinstance(fields.get(k, 0.0), float) for k in ("RescaleSlope", "RescaleIntercept")):
        return None  # several values or none: what pydicom's rescale makes of it
    return fields, pixel_offset


def _header_of(buf: memoryview) -> tuple[dict, int] | None:
    """The fields and the Pixel Data offset of the file whose first bytes are ``buf``; ``None`` for a
    transfer syntax left to pydicom. Raises :class:`_Short` when the header goes on beyond ``buf``."""
    if bytes(buf[128:132]) != b"DICM":
        return None
    fields: dict = {}
    try:
        pos = _walk(buf, 132, fields, implicit=False, meta=True)
        syntax = fields.get("TransferSyntaxUID")
        if syntax not in NATIVE_TRANSFER_SYNTAXES:
            return None
        implicit = syntax == IMPLICIT_VR_LE
        if implicit and bytes(buf[pos + 4 : pos + 6]) in _ALL_VRS:
            return None  # explicit VR under an implicit transfer syntax: pydicom detects and reads it
        return fields, _walk(buf, pos, fields, implicit=implicit, meta=False)
    except struct.error as e:  # an element header cut by the end of the bytes
        raise _Short from e


def _element(buf: memoryview, pos: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
    """Tag, VR (``None`` when implicit), value length and value offset of the element at ``pos``."""
    if implicit:
        group, number, length = _IMPLICIT.unpack_from(buf, pos)
        return (group << 16) | number, None, length, pos + 8
    group, number, vr, length = _EXPLICIT.unpack_from(buf, pos)  # one unpack: the header of most elements
    tag = (group << 16) | number
    if group == 0xFFFE:  # items and delimiters have no VR
        return tag, None, _U32.unpack_from(buf, pos + 4)[0], pos + 8
    if not (vr.isalpha() and vr.isupper()):
        raise _Declined
    if vr in _LONG_VRS:
        return tag, vr, _U32.unpack_from(buf, pos + 8)[0], pos + 12
    return tag, vr, length, pos + 8


def _walk(buf: memoryview, pos: int, fields: dict, implicit: bool, meta: bool) -> int:
    """Read the top-level elements from ``pos``: the file meta group (``meta``, up to the first element
    of another group) or the data set (up to its Pixel Data element, whose offset is returned)."""
    while True:
        if pos + 8 > len(buf):  # the bytes end (in the meta group, or before Pixel Data)
            raise _Short
        if meta and _U16.unpack_from(buf, pos)[0] != 0x0002:  # the data set, in its own encoding
            return pos
        tag, vr, length, start = _element(buf, pos, implicit)
        if not meta and tag == PIXEL_DATA:
            return pos
        if tag >> 16 == 0xFFFE or tag == MODALITY_LUT_SEQUENCE:
            raise _Declined
        if length == _UNDEFINED:
            if tag in FIELDS or not (implicit or vr in (b"SQ", b"UN")):
                raise _Declined
            pos = _skip_sequence(buf, start, implicit or vr == b"UN")
            continue
        end = start + length
        if end > len(buf):
            raise _Short
        if tag in FIELDS:
            keyword, kind = FIELDS[tag]
            expected = _TEXT_VRS.get(tag, _VRS.get(kind))
            if vr is not None and vr != expected:
                raise _Declined
            fields[keyword] = _value(bytes(buf[start:end]), kind)
        pos = end


def _skip_sequence(buf: memoryview, pos: int, implicit: bool) -> int:
    """The offset after a sequence of undefined length whose first item starts at ``pos`` (items of
    defined or undefined length, up to the sequence delimiter)."""
    while True:
        tag, _, length, start = _element(buf, pos, True)
        if tag == _SEQUENCE_END:
            return start
        if tag != _ITEM:
            raise _Declined
        if length != _UNDEFINED:
            pos = start + length
            continue
        pos = start
        while True:  # the item's elements, up to its delimiter
            if pos + 8 > len(buf):
                raise _Short
            tag, vr, length, start = _element(buf, pos, implicit)
            if tag == _ITEM_END:
                pos = start
                break
            if length == _UNDEFINED:
                pos = _skip_sequence(buf, start, implicit or vr == b"UN")
            else:
                pos = start + length
            if pos > len(buf):
                raise _Short


def _value(raw: bytes, kind: str):
    """An element's value as pydicom gives it, for the value kinds of :data:`FIELDS`."""
    if kind == "us":
        if len(raw) != 2:
            raise _Declined
        return _U16.unpack(raw)[0]
    if any(b >= 0x80 or b == 0x1B for b in raw):  # other character sets: pydicom decodes those
        raise _Declined
    if kind in ("uid", "text"):
        text = raw.decode("ascii").rstrip("\0 ")
        if "\\" in text:  # several values
            raise _Declined
        return text
    values = raw.rstrip(b"\0 ").split(b"\\")
    if values == [b""]:
        return None
    pattern = _DS if kind == "ds" else _IS
    if not all(pattern.match(v) for v in values):
        raise _Declined
    if kind == "is":
        if len(values) > 1:
            raise _Declined
        return int(values[0])
    numbers = [float(v) for v in values]
    return numbers[0] if len(numbers) == 1 else numbers
