"""Queue-cookie codec, compiled, mirroring ``lbkit._pure._cookiecodec`` function for function:
unpadded base64url (canonical when decoding), the 21-byte payload of a version 1 token, and a
whole round trip around the cipher call (``open_token``, ``seal_milliseconds``).

Each function is one C loop over at most 71 characters or 21 bytes, in place of the handful of
Python-level calls (``binascii``, ``bytes.translate``, ``struct``, slices, shifts) the
reference makes; that is the whole gain, and why the codec is compiled at all: the cipher
calls cost a few microseconds, and at ~50-100 ns per Python-level call the calls around them
were a third of a cookie round trip. ``open_token`` and ``seal_milliseconds`` go further and
make the cipher call from here, so a room's request crosses from Python to C once each way.
Times are ``(double)milliseconds / 1000.0``: every integer is below 2**53, so this is the
same correctly rounded quotient as the reference's int true division.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Copy, PyDict_SetItem
from libc.string cimport memcpy
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_1BYTE_DATA, PyUnicode_GET_LENGTH, PyUnicode_New
from libc.stdint cimport int64_t, uint8_t, uint64_t

from cryptography.exceptions import InvalidTag


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object text)
    int PyObject_GenericSetDict(object target, object value, void* context) except -1
    object PyType_GenericNew(PyObject* cookie_type, PyObject* args, PyObject* kwds)
    long long PyLong_AsLongLongAndOverflow(object value, int* overflow) except? -1


#: Bytes in a version 1 payload.
PAYLOAD_SIZE = 21
#: Bytes in a version 1 token before base64url: header 4, nonce 12, ciphertext and tag 37.
BLOB_SIZE = 53
#: Characters in a version 1 token: 53 bytes of unpadded base64url.
TOKEN_LENGTH = 71
#: What :func:`open_token` returns instead of fields: the token is not the canonical unpadded
#: base64url of a 53-byte blob.
NOT_CANONICAL = 1
#: ... no cipher is registered for the token's 4-byte header (version, key id, room tag).
NO_CIPHER = 2
#: ... the cipher refused the token (InvalidTag): altered, or sealed with another key.
NOT_AUTHENTIC = 3

cdef enum:
    _BLOB_SIZE = 53
    _TOKEN_LENGTH = 71
    _PAYLOAD_SIZE = 21
    _BUCKET_MS = 60000
cdef uint64_t _QUEUED = 0xFFFFFFFFFF  # 2**40 - 1: accepted_at while queued
cdef int64_t _C_MAX_U24 = 0xFFFFFF
cdef int64_t _C_MAX_U32 = 0xFFFFFFFF
cdef int64_t _C_MAX_U40 = 0xFFFFFFFFFF
# The widths' largest values, as Python ints: pack_payload compares its arguments with them.
_MAX_U24 = 2**24 - 1
_MAX_U32 = 2**32 - 1
_MAX_U40 = 2**40 - 1

cdef const char* _ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The 6-bit value of each base64url character, -1 for every other byte.
cdef signed char _VALUE[256]


cdef void _fill_values() noexcept:
    cdef int index
    for index in range(256):
        _VALUE[index] = -1
    for index in range(64):
        _VALUE[<uint8_t>_ALPHABET[index]] = <signed char>index


_fill_values()


def encode_token(bytes blob not None):
    """The unpadded base64url text of ``blob`` (any length): 71 characters for a 53-byte blob."""
    return _encode(blob)


cdef str _encode(bytes blob):
    return _encode_raw(<const uint8_t*>PyBytes_AS_STRING(blob), PyBytes_GET_SIZE(blob))


cdef str _encode_raw(const uint8_t* data, Py_ssize_t size):
    text = PyUnicode_New((size * 4 + 2) // 3, 127)
    cdef uint8_t* out = <uint8_t*>PyUnicode_1BYTE_DATA(text)
    cdef Py_ssize_t index = 0
    cdef Py_ssize_t written = 0
    cdef unsigned int group
    while index + 3 <= size:
        group = data[index] << 16 | data[index + 1] << 8 | data[index + 2]
        out[written] = _ALPHABET[group >> 18]
        out[written + 1] = _ALPHABET[group >> 12 & 63]
        out[written + 2] = _ALPHABET[group >> 6 & 63]
        out[written + 3] = _ALPHABET[group & 63]
        index += 3
        written += 4
    if size - index == 2:
        group = data[index] << 16 | data[index + 1] << 8
        out[written] = _ALPHABET[group >> 18]
        out[written + 1] = _ALPHABET[group >> 12 & 63]
        out[written + 2] = _ALPHABET[group >> 6 & 63]
    elif size - index == 1:
        group = data[index] << 16
        out[written] = _ALPHABET[group >> 18]
        out[written + 1] = _ALPHABET[group >> 12 & 63]
    return text


def decode_token(object token):
    """The blob a token encodes, split into header (4 bytes), nonce (12) and sealed payload
    (37): ``None`` unless ``token`` is the canonical unpadded base64url of 53 bytes.

    Canonical: 71 characters of the base64url alphabet, the last one's two unused bits zero,
    so that :func:`encode_token` of the blob gives ``token`` back and changing any character
    of a token changes its blob or makes it undecodable.
    """
    # object, not str: a str argument would refuse the str subclasses that open() accepts.
    if not isinstance(token, str):
        raise TypeError(f"token is {type(token).__name__}; it must be a str")
    cdef uint8_t blob[_BLOB_SIZE]
    if not _decode(token, blob):
        return None
    cdef const char* raw = <const char*>blob
    return (
        PyBytes_FromStringAndSize(raw, 4),
        PyBytes_FromStringAndSize(raw + 4, 12),
        PyBytes_FromStringAndSize(raw + 16, _BLOB_SIZE - 16),
    )


cdef bint _decode(object token, uint8_t* blob) except -1:
    """Decode a str ``token`` into the 53 bytes at ``blob``: False unless it is canonical."""
    if PyUnicode_GET_LENGTH(token) != _TOKEN_LENGTH or not PyUnicode_IS_ASCII(token):
        return False
    cdef const uint8_t* text = PyUnicode_1BYTE_DATA(token)
    cdef Py_ssize_t index
    cdef Py_ssize_t written = 0
    cdef int first, second, third, fourth
    # 17 groups of 4 characters give 51 bytes; the last 3 characters give 2 bytes and 2 bits
    # that must be zero. The values are read with the characters as indexes: text is ASCII, so
    # each is < 128, and _VALUE has 256 entries.
    for index in range(0, _TOKEN_LENGTH - 3, 4):
        first = _VALUE[text[index]]
        second = _VALUE[text[index + 1]]
        third = _VALUE[text[index + 2]]
        fourth = _VALUE[text[index + 3]]
        if first < 0 or second < 0 or third < 0 or fourth < 0:
            return False
        blob[written] = <uint8_t>(first << 2 | second >> 4)
        blob[written + 1] = <uint8_t>((second & 15) << 4 | third >> 2)
        blob[written + 2] = <uint8_t>((third & 3) << 6 | fourth)
        written += 3
    first = _VALUE[text[_TOKEN_LENGTH - 3]]
    second = _VALUE[text[_TOKEN_LENGTH - 2]]
    third = _VALUE[text[_TOKEN_LENGTH - 1]]
    if first < 0 or second < 0 or third < 0 or third & 3:
        return False
    blob[written] = <uint8_t>(first << 2 | second >> 4)
    blob[written + 1] = <uint8_t>((second & 15) << 4 | third >> 2)
    return True


def pack_payload(
    object bucket_id,
    object last_check_in,
    object accepted_at,
    object expiry,
    object refresh_interval,
):
    """The 21-byte payload of a cookie: ``bucket_id`` (u32), ``last_check_in`` and
    ``accepted_at`` (u40, ms after the bucket's start, ``2**40 - 1`` while queued), ``expiry``
    (u32, ms after the last check-in) and ``refresh_interval`` (u24, ms), big-endian.

    Raises:
        ValueError: a field outside its width.
    """
    # Checked as Python ints, as the pure kernel does, so that no value (negative, or past
    # 64 bits) is truncated by a C conversion and both paths refuse the same inputs.
    for name, value, largest in (
        ("bucket_id", bucket_id, _MAX_U32),
        ("last_check_in", last_check_in, _MAX_U40),
        ("accepted_at", accepted_at, _MAX_U40),
        ("expiry", expiry, _MAX_U32),
        ("refresh_interval", refresh_interval, _MAX_U24),
    ):
        if not 0 <= value <= largest:
            raise ValueError(f"{name} is {value}; it must be in 0..{largest}")
    return _pack(bucket_id, last_check_in, accepted_at, expiry, refresh_interval)


cdef bytes _pack(
    uint64_t bucket, uint64_t check, uint64_t accepted, uint64_t delay, uint64_t refresh
):
    """The payload of fields already known to fit their widths."""
    cdef uint8_t payload[_PAYLOAD_SIZE]
    cdef int index
    for index in range(4):
        payload[3 - index] = <uint8_t>(bucket >> (8 * index))
    for index in range(5):
        payload[8 - index] = <uint8_t>(check >> (8 * index))
        payload[13 - index] = <uint8_t>(accepted >> (8 * index))
    for index in range(4):
        payload[17 - index] = <uint8_t>(delay >> (8 * index))
    for index in range(3):
        payload[20 - index] = <uint8_t>(refresh >> (8 * index))
    return PyBytes_FromStringAndSize(<const char*>payload, _PAYLOAD_SIZE)


cdef inline uint64_t _big_endian(const uint8_t* data, int start, int count) noexcept:
    cdef uint64_t value = 0
    cdef int index
    for index in range(start, start + count):
        value = value << 8 | data[index]
    return value


def cookie_fields(bytes payload not None):
    """The fields a 21-byte payload holds, as a ``QueueCookie``'s ``__dict__``: ``bucket_id``
    (int), ``last_check_in``, ``refresh_interval``, ``expires_at`` (seconds, float),
    ``accepted_at`` (seconds, or ``None`` while queued) and ``_payload`` (``payload`` itself).

    Raises:
        ValueError: ``payload`` is not 21 bytes.
    """
    if PyBytes_GET_SIZE(payload) != _PAYLOAD_SIZE:
        raise ValueError(
            f"payload is {PyBytes_GET_SIZE(payload)} bytes; a payload is {_PAYLOAD_SIZE}"
        )
    return _fields(payload)


cdef dict _fields(bytes payload):
    """The fields of a payload known to be 21 bytes."""
    cdef const uint8_t* data = <const uint8_t*>PyBytes_AS_STRING(payload)
    # Below 2**53 all: start < 2**32 * 60000 < 2**48, offsets < 2**40, expiry < 2**32.
    cdef uint64_t bucket_id = _big_endian(data, 0, 4)
    cdef uint64_t start = bucket_id * _BUCKET_MS
    cdef uint64_t last_check_in = start + _big_endian(data, 4, 5)
    cdef uint64_t accepted = _big_endian(data, 9, 5)
    cdef uint64_t expiry = _big_endian(data, 14, 4)
    cdef uint64_t refresh_interval = _big_endian(data, 18, 3)
    # A copy of a dict that has the keys already, its values then replaced: cheaper than
    # inserting six keys into a new dict (which also resizes it on the sixth).
    cdef dict fields = PyDict_Copy(_FIELDS)
    PyDict_SetItem(fields, "bucket_id", bucket_id)
    PyDict_SetItem(fields, "last_check_in", <double>last_check_in / 1000.0)
    PyDict_SetItem(fields, "refresh_interval", <double>refresh_interval / 1000.0)
    PyDict_SetItem(fields, "expires_at", <double>(last_check_in + expiry) / 1000.0)
    if accepted != _QUEUED:
        PyDict_SetItem(fields, "accepted_at", <double>(start + accepted) / 1000.0)
    PyDict_SetItem(fields, "_payload", payload)
    return fields


# The keys of a cookie's fields, in the reference's order; accepted_at None while queued.
cdef dict _FIELDS = {
    "bucket_id": None,
    "last_check_in": None,
    "refresh_interval": None,
    "expires_at": None,
    "accepted_at": None,
    "_payload": None,
}


cdef inline bint _milliseconds(object value, int64_t* out) except -1:
    """An exact int that fits 64 bits, stored at ``out``; False for anything else (a bool, a
    float, an int past 64 bits), never a truncated value."""
    if type(value) is not int:
        return False
    cdef int overflow = 0
    out[0] = PyLong_AsLongLongAndOverflow(value, &overflow)
    return overflow == 0


cdef object _pack_milliseconds(
    object bucket_id,
    object last_check_in,
    object refresh_interval,
    object expires_at,
    object accepted_at,
):
    cdef int64_t bucket, check, refresh, expires, accepted, start
    if not (
        _milliseconds(bucket_id, &bucket)
        and _milliseconds(last_check_in, &check)
        and _milliseconds(refresh_interval, &refresh)
        and _milliseconds(expires_at, &expires)
    ):
        return None
    if not 0 <= bucket <= _C_MAX_U32:
        return None
    start = bucket * _BUCKET_MS  # < 2**48
    # Each difference is taken only once its operands are ordered, so none overflows.
    if not (
        start <= check
        and check - start <= _C_MAX_U40
        and check <= expires
        and expires - check <= _C_MAX_U32
        and 1 <= refresh <= _C_MAX_U24
    ):
        return None
    cdef uint64_t offset = _QUEUED
    if accepted_at is not None:
        if not _milliseconds(accepted_at, &accepted):
            return None
        if not (start <= accepted and <uint64_t>(accepted - start) < _QUEUED):
            return None
        offset = <uint64_t>(accepted - start)
    return _pack(
        <uint64_t>bucket,
        <uint64_t>(check - start),
        offset,
        <uint64_t>(expires - check),
        <uint64_t>refresh,
    )


def pack_milliseconds(
    object bucket_id,
    object last_check_in,
    object refresh_interval,
    object expires_at,
    object accepted_at,
):
    """The payload of a cookie given in whole milliseconds since the epoch (``bucket_id`` a
    minute number, ``accepted_at`` ``None`` while queued), or ``None`` unless every value is
    an int (not a bool) that the format holds: ``bucket_id`` in 0..2**32 - 1,
    ``last_check_in`` from the bucket's start to 2**40 - 1 ms later, ``accepted_at`` from the
    bucket's start to 2**40 - 2 ms later (2**40 - 1 is the queued mark), ``expires_at`` from
    ``last_check_in`` to 2**32 - 1 ms later, ``refresh_interval`` in 1..2**24 - 1. ``None``
    lets the caller name the fault; a value is never truncated or clamped.
    """
    return _pack_milliseconds(bucket_id, last_check_in, refresh_interval, expires_at, accepted_at)


def seal_milliseconds(
    tuple sealing not None,
    object nonce,
    object cookie_type,
    object bucket_id,
    object last_check_in,
    object refresh_interval,
    object expires_at,
    object accepted_at,
):
    """A new cookie, sealed: ``(token, cookie)``, where ``cookie`` is a ``cookie_type`` made
    by :func:`new_cookie` from the payload's fields, or ``None`` when :func:`pack_milliseconds`
    refuses the values. ``sealing`` is ``(cipher, associated data, 4-byte header)``; the
    token is the unpadded base64url of ``header + nonce + cipher.encrypt(nonce, payload,
    associated data)``.

    Raises:
        TypeError, ValueError: what ``cipher.encrypt`` raises (a nonce of the wrong size).
    """
    return _seal_milliseconds(
        sealing, nonce, cookie_type, bucket_id, last_check_in, refresh_interval, expires_at,
        accepted_at,
    )


cdef object _seal_milliseconds(
    tuple sealing,
    object nonce,
    object cookie_type,
    object bucket_id,
    object last_check_in,
    object refresh_interval,
    object expires_at,
    object accepted_at,
):
    payload = _pack_milliseconds(
        bucket_id, last_check_in, refresh_interval, expires_at, accepted_at
    )
    if payload is None:
        return None
    cipher, associated, header = sealing
    sealed = cipher.encrypt(nonce, payload, associated)
    cdef uint8_t blob[_BLOB_SIZE]
    if (
        type(header) is bytes and PyBytes_GET_SIZE(header) == 4
        and type(nonce) is bytes and PyBytes_GET_SIZE(nonce) == 12
        and type(sealed) is bytes and PyBytes_GET_SIZE(sealed) == _BLOB_SIZE - 16
    ):
        # The token's 53 bytes assembled on the stack: no intermediate bytes objects.
        memcpy(blob, PyBytes_AS_STRING(header), 4)
        memcpy(blob + 4, PyBytes_AS_STRING(nonce), 12)
        memcpy(blob + 16, PyBytes_AS_STRING(sealed), _BLOB_SIZE - 16)
        token = _encode_raw(blob, _BLOB_SIZE)
    else:
        token = _encode(header + nonce + sealed)
    return token, _new_cookie(cookie_type, _fields(payload))


def reseal_milliseconds(
    tuple sealing not None,
    object nonce,
    object cookie_type,
    bytes payload not None,
    object last_check_in,
    object expires_at,
):
    """:func:`seal_milliseconds` for the cookie whose 21-byte ``payload`` is given, with a new
    ``last_check_in`` and ``expires_at`` (milliseconds since the epoch) and its bucket,
    refresh interval and admission as they are: what renewing a session changes. ``None``
    when :func:`pack_milliseconds` refuses the new times.

    Raises:
        ValueError: ``payload`` is not 21 bytes; what ``cipher.encrypt`` raises.
    """
    if PyBytes_GET_SIZE(payload) != _PAYLOAD_SIZE:
        raise ValueError(
            f"payload is {PyBytes_GET_SIZE(payload)} bytes; a payload is {_PAYLOAD_SIZE}"
        )
    cdef const uint8_t* data = <const uint8_t*>PyBytes_AS_STRING(payload)
    cdef uint64_t bucket_id = _big_endian(data, 0, 4)
    cdef uint64_t accepted = _big_endian(data, 9, 5)
    cdef uint64_t refresh = _big_endian(data, 18, 3)
    return _seal_milliseconds(
        sealing,
        nonce,
        cookie_type,
        bucket_id,
        last_check_in,
        refresh,
        expires_at,
        None if accepted == _QUEUED else bucket_id * _BUCKET_MS + accepted,
    )


def open_token(object token, dict ciphers not None, object cookie_type):
    """The cookie a token seals, a ``cookie_type`` made by :func:`new_cookie` from the
    payload's fields, or why not: :data:`NOT_CANONICAL`, :data:`NO_CIPHER` (``ciphers``, keyed
    by the token's 4-byte header, has no ``(cipher, associated data)`` for it) or
    :data:`NOT_AUTHENTIC` (the cipher raised ``InvalidTag``). Expiry is the caller's to check.

    Raises:
        TypeError: ``token`` is not a str.
    """
    if not isinstance(token, str):
        raise TypeError(f"token is {type(token).__name__}; it must be a str")
    cdef uint8_t blob[_BLOB_SIZE]
    if not _decode(token, blob):
        return NOT_CANONICAL
    cdef const char* raw = <const char*>blob
    entry = ciphers.get(PyBytes_FromStringAndSize(raw, 4))
    if entry is None:
        return NO_CIPHER
    cipher, associated = entry
    try:
        payload = cipher.decrypt(
            PyBytes_FromStringAndSize(raw + 4, 12),
            PyBytes_FromStringAndSize(raw + 16, _BLOB_SIZE - 16),
            associated,
        )
    except InvalidTag:
        return NOT_AUTHENTIC
    if type(payload) is bytes and PyBytes_GET_SIZE(payload) == _PAYLOAD_SIZE:
        return _new_cookie(cookie_type, _fields(payload))
    return _new_cookie(cookie_type, cookie_fields(payload))  # raises the reference's error


def new_cookie(object cookie_type, dict fields not None):
    """An instance of ``cookie_type`` whose ``__dict__`` is ``fields``, made without calling
    its ``__init__`` or its ``__setattr__`` (a frozen class refuses that one): what the fields
    of a checked payload become."""
    return _new_cookie(cookie_type, fields)


cdef object _new_cookie(object cookie_type, dict fields):
    # object.__new__(cookie_type) is cookie_type's tp_alloc, which PyType_GenericNew calls
    # without going through a Python-level call.
    cookie = PyType_GenericNew(<PyObject*>cookie_type, NULL, NULL)
    PyObject_GenericSetDict(cookie, fields, NULL)
    return cookie
