"""The framing of a Redis command (RESP), compiled, mirroring ``lbkit._pure._resp``.

The command is written into one growing C buffer and copied into a bytes object once: ints in
the C range are formatted by ``snprintf``, floats by the interpreter's own ``repr`` routine
(``PyOS_double_to_string`` with the ``'r'`` code, exactly what ``repr(float)`` calls), str
values as their cached UTF-8. No Python object is made per value but the rare int beyond 64
bits.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdio cimport snprintf
from libc.string cimport memcpy, strlen

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL
    char* PyOS_double_to_string(
        double value, char format_code, int precision, int flags, int* kind
    ) except NULL
    int Py_DTSF_ADD_DOT_0

__all__ = ["frame_command"]


cdef struct _Buffer:
    char* data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int _put(_Buffer* buffer, const char* source, Py_ssize_t length) except -1:
    cdef Py_ssize_t needed = buffer.size + length
    cdef Py_ssize_t capacity
    cdef char* grown
    if needed > buffer.capacity:
        capacity = max(2 * buffer.capacity, needed)
        grown = <char*>PyMem_Realloc(buffer.data, capacity)
        if grown == NULL:
            raise MemoryError()
        buffer.data = grown
        buffer.capacity = capacity
    memcpy(buffer.data + buffer.size, source, length)
    buffer.size = needed
    return 0


cdef int _put_bulk(_Buffer* buffer, const char* data, Py_ssize_t length) except -1:
    cdef char header[32]
    cdef int written = snprintf(header, 32, "$%zd\r\n", length)
    _put(buffer, header, written)
    _put(buffer, data, length)
    _put(buffer, "\r\n", 2)
    return 0


def frame_command(head, head_count, values):
    """The command ``head`` (``head_count`` arguments already framed) followed by ``values``,
    each as a bulk string: ``None`` as the empty string, a ``str`` as UTF-8, an ``int`` in
    decimal, a ``float`` as ``repr`` writes it (the shortest text that reads back the same).

    As ``lbkit._pure._resp.frame_command``, which documents the errors.
    """
    if head.__class__ is not bytes:
        raise TypeError(f"head is {type(head).__name__}; it must be bytes")
    if values.__class__ is not tuple:
        raise TypeError(f"values is {type(values).__name__}; it must be a tuple")
    if head_count.__class__ is not int:
        raise TypeError(f"head_count is {type(head_count).__name__}; it must be an int")
    if head_count < 0:
        raise ValueError(f"head_count is {head_count}; it must be >= 0")
    cdef Py_ssize_t count = head_count
    cdef tuple items = <tuple>values
    cdef bytes start = <bytes>head
    cdef Py_ssize_t index, length
    cdef object value
    cdef type kind
    cdef const char* text
    cdef char* digits
    cdef char number[32]
    cdef long long integer
    cdef int overflow, written
    cdef bytes spelled
    cdef _Buffer buffer
    buffer.size = 0
    buffer.capacity = len(head) + 32 + 24 * len(items)
    buffer.data = <char*>PyMem_Malloc(buffer.capacity)
    if buffer.data == NULL:
        raise MemoryError()
    try:
        written = snprintf(number, 32, "*%zd\r\n", count + len(items))
        _put(&buffer, number, written)
        _put(&buffer, start, len(start))
        for index in range(len(items)):
            value = items[index]
            kind = type(value)
            if value is None:
                _put_bulk(&buffer, "", 0)
            elif kind is str:
                text = PyUnicode_AsUTF8AndSize(value, &length)
                _put_bulk(&buffer, text, length)
            elif kind is int:
                integer = PyLong_AsLongLongAndOverflow(value, &overflow)
                if overflow == 0:
                    written = snprintf(number, 32, "%lld", integer)
                    _put_bulk(&buffer, number, written)
                else:
                    spelled = str(value).encode()
                    _put_bulk(&buffer, spelled, len(spelled))
            elif kind is float:
                digits = PyOS_double_to_string(
                    PyFloat_AS_DOUBLE(value), b'r', 0, Py_DTSF_ADD_DOT_0, NULL
                )
                try:
                    _put_bulk(&buffer, digits, <Py_ssize_t>strlen(digits))
                finally:
                    PyMem_Free(digits)
            else:
                raise TypeError(
                    f"values[{index}] is {type(value).__name__}; it must be None, str, int or "
                    "float"
                )
        return PyBytes_FromStringAndSize(buffer.data, buffer.size)
    finally:
        PyMem_Free(buffer.data)
