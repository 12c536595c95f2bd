# The bytes of a hash key (bytes, or str as UTF-8), shared by the compiled kernels.
#
# The error paths import lbkit.errors lazily: they are cold, and a .pxd cannot import at module
# level. The messages come from the helpers the pure kernels use, so both paths say the same.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize


cdef inline const char* key_data(object key, Py_ssize_t position, Py_ssize_t* size) except NULL:
    """Point at the bytes to hash; position is -1 for a single key, else its batch index."""
    if isinstance(key, bytes):
        size[0] = PyBytes_GET_SIZE(key)
        return PyBytes_AS_STRING(key)
    if isinstance(key, str):
        try:
            # The UTF-8 form is cached on the str object, so hashing a str twice encodes once.
            return PyUnicode_AsUTF8AndSize(key, size)
        except UnicodeEncodeError as error:
            from lbkit.errors import unencodable_key_error
            raise unencodable_key_error(error, position) from error
    from lbkit.errors import key_type_error
    raise key_type_error(key, position)
