"""Steering kernel, compiled, mirroring ``lbkit._pure._steering`` class for class: the SplitMix64
generator, the alias table, the linear weighted draw, power of two choices, the EDF scheduler
and weighted rendezvous hashing.

Every draw, every floating-point expression and every tie-break is the reference's, in the same
order, so a seeded run makes the same picks on either path. The generator's state is a
``uint64_t`` (wrapping arithmetic is the reference's ``& MASK64``), and the pickers call it
through inline C functions on that state: a pick touches no Python object until it returns its
index. The EDF scheduler keeps a binary min-heap over C arrays, one entry per eligible index,
ordered by ``(deadline, index)``; the reference keeps a ``heapq`` with lazily deleted stale
entries, and both pick the same entry because that order is total over the live entries.

None of the expressions below has the shape ``a * b + c``, so a compiler that contracts
multiply-adds into FMA instructions (GCC does by default where the target has them) cannot
change a bit.
"""

from cpython.long cimport PyLong_AsUnsignedLongLongMask
from libc.math cimport log
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc

cimport cython

MASK64 = 0xFFFFFFFFFFFFFFFF
MASK32 = 0xFFFFFFFF
#: The SplitMix64 increment: 2**64 divided by the golden ratio, rounded to odd.
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


# --- the generator, as inline C on a uint64_t state ---------------------------------------------

cdef inline uint64_t _u64(object value) except? 0xFFFFFFFFFFFFFFFF:
    # value & MASK64 for any int (negative ones too), without building the intermediate int.
    return <uint64_t>PyLong_AsUnsignedLongLongMask(value)


cdef inline uint64_t _mix(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline uint64_t _next(uint64_t* state) noexcept nogil:
    state[0] += <uint64_t>0x9E3779B97F4A7C15
    return _mix(state[0])


cdef inline double _random(uint64_t* state) noexcept nogil:
    # 2**-53 is a power of two: the constant division is exact, folded by the C compiler.
    return <double>(_next(state) >> 11) * (1.0 / 9007199254740992.0)


@cython.cdivision(True)  # the modulo runs only when low < bound, so bound >= 1 there
cdef inline uint64_t _below(uint64_t* state, uint64_t bound) noexcept nogil:
    # bound <= 2**32 and the draw's top half is < 2**32, so the product fits in 64 bits.
    cdef uint64_t product = (_next(state) >> 32) * bound
    cdef uint64_t low = product & <uint64_t>0xFFFFFFFF
    cdef uint64_t threshold
    if low < bound:
        # Reject the few products that would favour small results (Lemire's method).
        threshold = ((<uint64_t>0x100000000) - bound) % bound
        while low < threshold:
            product = (_next(state) >> 32) * bound
            low = product & <uint64_t>0xFFFFFFFF
    return product >> 32


cdef void* _allocate(Py_ssize_t count, size_t size) except NULL:
    # One element at least, so an empty table still owns a valid pointer.
    cdef void* memory = malloc((count if count > 0 else 1) * size)
    if memory == NULL:
        raise MemoryError()
    return memory


cdef inline Py_ssize_t _checked(Py_ssize_t index, Py_ssize_t count, str message) except -1:
    # The reference indexes Python lists: negative indices count from the end, and anything
    # outside raises the list's IndexError. Here it also keeps every access inside its array.
    if index < 0:
        index += count
    if index < 0 or index >= count:
        raise IndexError(message)
    return index


_READ = "list index out of range"
_WRITE = "list assignment index out of range"


def splitmix64(value):
    """The SplitMix64 finaliser: a bijective mix of a 64-bit integer (also used to hash)."""
    return _mix(_u64(value))


cdef class Rng:
    """SplitMix64: a seeded 64-bit generator, identical on both paths.

    The state advances by :data:`GOLDEN_GAMMA` per draw and the output is :func:`splitmix64` of
    the new state, so ``Rng(seed)`` draws ``splitmix64(seed + k * GOLDEN_GAMMA)`` for k = 1, 2...
    """

    cdef uint64_t _state

    def __init__(self, seed):
        self._state = _u64(seed)

    def next_u64(self):
        """The next 64-bit draw."""
        return _next(&self._state)

    def random(self):
        """A double in [0, 1): the top 53 bits of the next draw, times 2**-53."""
        return _random(&self._state)

    def below(self, uint64_t bound):
        """An unbiased integer in [0, bound), for 1 <= bound <= 2**32."""
        return _below(&self._state, bound)

    def getstate(self):
        """The 64-bit state, for :meth:`setstate`."""
        return self._state

    def setstate(self, state):
        """Restore a state returned by :meth:`getstate`."""
        self._state = _u64(state)


@cython.final  # no subclasses: cdef methods are called directly, not through a vtable
cdef class AliasTable:
    """Walker/Vose alias table over ``weights``: each :meth:`pick` costs two draws.

    Entries of weight 0 are left out of the table, so they are never picked. At least one weight
    must be positive. The build is deterministic: worklists are stacks filled in index order.
    """

    cdef Rng _rng
    cdef Py_ssize_t _count
    cdef Py_ssize_t* _columns
    cdef double* _prob
    cdef Py_ssize_t* _alias

    def __init__(self, weights, Rng rng not None):
        cdef Py_ssize_t size = len(weights)
        cdef Py_ssize_t count = 0, index, column, less, more, small_top = 0, large_top = 0
        cdef double total = 0.0
        cdef double* values = NULL
        cdef double* scaled = NULL
        cdef Py_ssize_t* small = NULL
        cdef Py_ssize_t* large = NULL
        self._release()
        self._rng = rng
        try:
            values = <double*>_allocate(size, sizeof(double))
            for index in range(size):
                values[index] = weights[index]
            self._columns = <Py_ssize_t*>_allocate(size, sizeof(Py_ssize_t))
            for index in range(size):
                if values[index] > 0.0:
                    self._columns[count] = index
                    count += 1
            self._count = count
            self._prob = <double*>_allocate(count, sizeof(double))
            self._alias = <Py_ssize_t*>_allocate(count, sizeof(Py_ssize_t))
            scaled = <double*>_allocate(count, sizeof(double))
            small = <Py_ssize_t*>_allocate(count, sizeof(Py_ssize_t))
            large = <Py_ssize_t*>_allocate(count, sizeof(Py_ssize_t))
            for column in range(count):
                total += values[self._columns[column]]
            for column in range(count):
                scaled[column] = values[self._columns[column]] * <double>count / total
                self._prob[column] = 1.0
                self._alias[column] = column
            # Each column sits on at most one stack at a time, so count slots each suffice.
            for column in range(count):
                if scaled[column] < 1.0:
                    small[small_top] = column
                    small_top += 1
                else:
                    large[large_top] = column
                    large_top += 1
            while small_top and large_top:
                small_top -= 1
                less = small[small_top]
                large_top -= 1
                more = large[large_top]
                self._prob[less] = scaled[less]
                self._alias[less] = more
                scaled[more] = (scaled[more] + scaled[less]) - 1.0
                if scaled[more] < 1.0:
                    small[small_top] = more
                    small_top += 1
                else:
                    large[large_top] = more
                    large_top += 1
            # Whatever is left (rounding residue on either list) keeps its own column: prob 1.0.
        except BaseException:
            self._release()
            raise
        finally:
            free(values)
            free(scaled)
            free(small)
            free(large)

    cdef void _release(self) noexcept:
        free(self._columns)
        free(self._prob)
        free(self._alias)
        self._columns = NULL
        self._prob = NULL
        self._alias = NULL
        self._count = 0

    def __dealloc__(self):
        self._release()

    # A builtin method without arguments (METH_NOARGS) is the cheapest call CPython has.
    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def pick(self):
        """The index (into the weights given) of one weighted draw."""
        cdef Py_ssize_t column
        cdef uint64_t* state
        if self._count == 0:
            # The reference draws twice, then fails to index its empty table. (Without
            # __init__, there is no generator to draw from: count is 0 and _rng is None.)
            if self._rng is not None:
                _below(&self._rng._state, 0)
                _random(&self._rng._state)
            raise IndexError(_READ)
        # count > 0 only after __init__, which set a generator (typed not None).
        state = &self._rng._state
        # column < count (below's contract) and every alias is a column: no index leaves the
        # arrays of count entries.
        column = <Py_ssize_t>_below(state, <uint64_t>self._count)
        if _random(state) >= self._prob[column]:
            column = self._alias[column]
        return self._columns[column]

    def size(self):
        """How many entries have a positive weight."""
        return self._count


def weighted_choice(Rng rng not None, weights):
    """One weighted draw by a linear scan: the index whose cumulative weight first exceeds
    ``random() * total``. Weight 0 is never picked; at least one weight must be positive."""
    cdef Py_ssize_t count = len(weights), index, last = -1
    cdef double total = 0.0, target, cumulative = 0.0, weight
    for index in range(count):
        total += <double>weights[index]
    target = _random(&rng._state) * total
    for index in range(count):
        weight = weights[index]
        if weight > 0.0:
            cumulative += weight
            last = index
            if target < cumulative:
                return index
    # Rounding can leave target == cumulative at the very end: the last positive entry wins.
    return last


@cython.final  # no subclasses: cdef methods are called directly, not through a vtable
cdef class P2C:
    """Power of two choices over entries with a positive weight.

    :meth:`pick` draws two **distinct** eligible entries and returns the one with the lower
    cost (the first draw on a tie). The cost is ``outstanding / weight``, or with
    ``latency_weighted`` ``latency * (outstanding + 1) / weight``. With one eligible entry it
    returns that one without drawing; with none it returns -1.
    """

    cdef Rng _rng
    cdef Py_ssize_t _size
    cdef double* _weights
    cdef int64_t* _outstanding
    cdef double* _latency
    cdef bint _latency_weighted
    cdef Py_ssize_t* _eligible
    cdef Py_ssize_t _eligible_count

    def __init__(self, weights, Rng rng not None, bint latency_weighted):
        cdef Py_ssize_t size = len(weights), index
        self._release()
        self._rng = rng
        self._latency_weighted = latency_weighted
        try:
            self._weights = <double*>_allocate(size, sizeof(double))
            self._outstanding = <int64_t*>_allocate(size, sizeof(int64_t))
            self._latency = <double*>_allocate(size, sizeof(double))
            self._eligible = <Py_ssize_t*>_allocate(size, sizeof(Py_ssize_t))
            for index in range(size):
                self._weights[index] = weights[index]
                self._outstanding[index] = 0
                self._latency[index] = 0.0
        except BaseException:
            self._release()
            raise
        self._size = size
        self._collect_eligible()

    cdef void _release(self) noexcept:
        free(self._weights)
        free(self._outstanding)
        free(self._latency)
        free(self._eligible)
        self._weights = NULL
        self._outstanding = NULL
        self._latency = NULL
        self._eligible = NULL
        self._size = 0
        self._eligible_count = 0

    def __dealloc__(self):
        self._release()

    cdef void _collect_eligible(self) noexcept:
        # In index order, like the reference's list comprehension: draws index into this list.
        cdef Py_ssize_t index, count = 0
        for index in range(self._size):
            if self._weights[index] > 0.0:
                self._eligible[count] = index
                count += 1
        self._eligible_count = count

    @cython.cdivision(True)  # only eligible entries are costed, and their weight is > 0
    cdef inline double _cost(self, Py_ssize_t index) noexcept:
        if self._latency_weighted:
            return (
                self._latency[index] * <double>(self._outstanding[index] + 1) / self._weights[index]
            )
        return <double>self._outstanding[index] / self._weights[index]

    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def pick(self):
        """The cheaper of two distinct random eligible entries (-1 when none is eligible)."""
        cdef Py_ssize_t count = self._eligible_count, first, second
        cdef uint64_t* state
        if count < 2:
            return self._eligible[0] if count else -1
        state = &self._rng._state
        # first < count and second < count - 1, shifted past first: two distinct positions
        # inside the eligible array.
        first = <Py_ssize_t>_below(state, <uint64_t>count)
        second = <Py_ssize_t>_below(state, <uint64_t>(count - 1))
        if second >= first:
            second += 1
        first = self._eligible[first]
        second = self._eligible[second]
        if self._cost(second) < self._cost(first):
            return second
        return first

    def begin(self, Py_ssize_t index):
        """One more outstanding request on ``index``."""
        index = _checked(index, self._size, _READ)
        self._outstanding[index] += 1

    def end(self, Py_ssize_t index):
        """One outstanding request fewer on ``index`` (never below zero)."""
        index = _checked(index, self._size, _READ)
        if self._outstanding[index] > 0:
            self._outstanding[index] -= 1

    def outstanding(self, Py_ssize_t index):
        """The outstanding requests on ``index``."""
        return self._outstanding[_checked(index, self._size, _READ)]

    def set_weight(self, Py_ssize_t index, weight):
        """Change one weight; 0 makes the entry ineligible."""
        cdef double value = float(weight)
        self._weights[_checked(index, self._size, _WRITE)] = value
        self._collect_eligible()

    def set_latency(self, Py_ssize_t index, latency):
        """Set the latency estimate used by the latency-weighted cost."""
        cdef double value = float(latency)
        self._latency[_checked(index, self._size, _WRITE)] = value

    def latency(self, Py_ssize_t index):
        """The latency estimate of ``index``."""
        return self._latency[_checked(index, self._size, _READ)]


@cython.final  # no subclasses: cdef methods are called directly, not through a vtable
cdef class EdfScheduler:
    """Earliest-deadline-first weighted round robin over entries with a positive weight.

    Entry i's next deadline is ``base[i] + (picks[i] + 1) / weight[i]``, where ``picks[i]``
    counts its picks since its weight was last set; :meth:`next` returns the entry with the
    smallest ``(deadline, index)`` and moves the scheduler's clock to that deadline. Computing
    each deadline from the pick count (rather than adding ``1 / weight`` repeatedly) keeps the
    schedule exact: with integer weights every run of ``sum(weights)`` picks from the start
    serves each entry exactly its weight. :meth:`set_weight` restarts an entry at the current
    clock, as Envoy's scheduler does when a host's weight changes.
    """

    cdef Py_ssize_t _size
    cdef double* _weights
    cdef double* _base
    cdef int64_t* _picks
    # The deadline of each entry in the heap (meaningless for the others).
    cdef double* _deadlines
    # A binary min-heap of entry indices by (deadline, index): _heap[0 .. _heap_size - 1].
    cdef Py_ssize_t* _heap
    cdef Py_ssize_t _heap_size
    # Where each entry sits in _heap, or -1: the entries with a positive weight, exactly once.
    cdef Py_ssize_t* _slot
    cdef double _clock

    def __init__(self, weights):
        cdef Py_ssize_t size = len(weights), index, position
        self._release()
        try:
            self._weights = <double*>_allocate(size, sizeof(double))
            self._base = <double*>_allocate(size, sizeof(double))
            self._picks = <int64_t*>_allocate(size, sizeof(int64_t))
            self._deadlines = <double*>_allocate(size, sizeof(double))
            self._heap = <Py_ssize_t*>_allocate(size, sizeof(Py_ssize_t))
            self._slot = <Py_ssize_t*>_allocate(size, sizeof(Py_ssize_t))
            for index in range(size):
                self._weights[index] = float(weights[index])
        except BaseException:
            self._release()
            raise
        self._size = size
        self._clock = 0.0
        for index in range(size):
            self._base[index] = 0.0
            self._picks[index] = 0
            self._slot[index] = -1
            if self._weights[index] > 0.0:
                self._deadlines[index] = self._deadline(index)
                self._slot[index] = self._heap_size
                self._heap[self._heap_size] = index
                self._heap_size += 1
        # Bottom-up heapify: sift down every parent, the last one first.
        position = self._heap_size // 2 - 1
        while position >= 0:
            self._sift_down(position)
            position -= 1

    cdef void _release(self) noexcept:
        free(self._weights)
        free(self._base)
        free(self._picks)
        free(self._deadlines)
        free(self._heap)
        free(self._slot)
        self._weights = NULL
        self._base = NULL
        self._picks = NULL
        self._deadlines = NULL
        self._heap = NULL
        self._slot = NULL
        self._size = 0
        self._heap_size = 0

    def __dealloc__(self):
        self._release()

    @cython.cdivision(True)  # called only for entries whose weight is > 0
    cdef inline double _deadline(self, Py_ssize_t index) noexcept:
        return self._base[index] + <double>(self._picks[index] + 1) / self._weights[index]

    cdef inline bint _before(self, Py_ssize_t a, Py_ssize_t b) noexcept:
        # The reference's tuple order on (deadline, index); versions never tie live entries.
        cdef double deadline_a = self._deadlines[a], deadline_b = self._deadlines[b]
        return deadline_a < deadline_b or (deadline_a == deadline_b and a < b)

    cdef inline void _place(self, Py_ssize_t position, Py_ssize_t index) noexcept:
        self._heap[position] = index
        self._slot[index] = position

    # Positions stay below _heap_size <= _size, the length of every array here.
    cdef void _sift_up(self, Py_ssize_t position) noexcept:
        cdef Py_ssize_t index = self._heap[position], parent
        while position > 0:
            parent = (position - 1) >> 1
            if not self._before(index, self._heap[parent]):
                break
            self._place(position, self._heap[parent])
            position = parent
        self._place(position, index)

    cdef void _sift_down(self, Py_ssize_t position) noexcept:
        cdef Py_ssize_t index = self._heap[position], child
        cdef Py_ssize_t size = self._heap_size
        while True:
            child = 2 * position + 1
            if child >= size:
                break
            if child + 1 < size and self._before(self._heap[child + 1], self._heap[child]):
                child += 1
            if not self._before(self._heap[child], index):
                break
            self._place(position, self._heap[child])
            position = child
        self._place(position, index)

    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def next(self):
        """The entry with the earliest deadline (-1 when no weight is positive)."""
        cdef Py_ssize_t index
        if self._heap_size == 0:
            return -1
        index = self._heap[0]
        self._clock = self._deadlines[index]
        self._picks[index] += 1
        self._deadlines[index] = self._deadline(index)
        self._sift_down(0)
        return index

    def set_weight(self, Py_ssize_t index, weight):
        """Give ``index`` a new weight, starting from the current clock; 0 removes it."""
        cdef Py_ssize_t position, last
        index = _checked(index, self._size, _READ)
        self._weights[index] = float(weight)
        self._base[index] = self._clock
        self._picks[index] = 0
        position = self._slot[index]
        if self._weights[index] > 0.0:
            self._deadlines[index] = self._deadline(index)
            if position < 0:
                position = self._heap_size
                self._heap_size += 1
                self._place(position, index)
            self._sift_up(position)
            self._sift_down(self._slot[index])
        elif position >= 0:
            self._slot[index] = -1
            self._heap_size -= 1
            last = self._heap[self._heap_size]
            if last != index:
                self._place(position, last)
                self._sift_up(position)
                self._sift_down(self._slot[last])

    def clock(self):
        """The deadline of the latest pick (0.0 before the first)."""
        return self._clock


def rendezvous_pick(key_hash, id_hashes, weights):
    """Weighted rendezvous hashing: the index with the highest score for ``key_hash``.

    Each entry's draw is ``h = splitmix64(key_hash ^ id_hashes[i])``. When every positive weight
    is equal the highest ``h`` wins (integer comparison, exact on every platform); otherwise
    the score is ``weight / -log(u)`` with ``u = ((h >> 11) + 0.5) * 2**-53`` in (0, 1), which
    picks each entry with probability proportional to its weight. Ties go to the lower index.
    Removing an entry (weight 0) moves only the keys it held. Returns -1 when no weight is
    positive.
    """
    cdef Py_ssize_t count = len(weights), index, best = -1
    cdef uint64_t key = _u64(key_hash), draw, best_draw = 0
    cdef bint uniform = True
    cdef double first_weight = 0.0, weight, score, best_score = 0.0
    for index in range(count):
        weight = weights[index]
        if weight > 0.0:
            if first_weight == 0.0:
                first_weight = weight
            elif weight != first_weight:
                uniform = False
                break
    for index in range(count):
        weight = weights[index]
        if weight <= 0.0:
            continue
        draw = _mix(key ^ _u64(id_hashes[index]))
        if uniform:
            if best < 0 or draw > best_draw:
                best = index
                best_draw = draw
        else:
            score = weight / -log((<double>(draw >> 11) + 0.5) * (1.0 / 9007199254740992.0))
            if best < 0 or score > best_score:
                best = index
                best_score = score
    return best
