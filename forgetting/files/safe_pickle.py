"""Load a stats or sorting pickle without letting the file run code.

``pickle.load`` calls whatever callables a file names, so a crafted ``__stats_dict.pkl``
or sorting file could run ``os.system``. ``load`` uses a ``pickle.Unpickler`` whose
``find_class`` hands out only what the files we read need (docs/deviations.md, item 6):

* plain containers, numbers and strings need no global at all, except under protocols
  0-2 (and 3-4 for a few types), which spell ``set``, ``frozenset``, ``complex``,
  ``bytes`` and ``bytearray`` as calls; those five are allowed, ``bytes``/``bytearray``
  only in the forms pickle writes (no ``bytes(10**12)``);
* ``_codecs.encode(text, 'latin1')``, the protocol 0-2 spelling of a ``bytes`` value;
* numpy arrays, scalars and dtypes, as numpy 1.x (``numpy.core...``) and 2.x
  (``numpy._core...``) write them: ``multiarray._reconstruct`` + ``numpy.ndarray`` +
  ``numpy.dtype`` with a BUILD state (protocols 0-4, or any array that is not
  contiguous), ``numeric._frombuffer`` (protocol 5), ``multiarray.scalar`` (scalars,
  e.g. the ``numpy.int64`` example ids the original scripts used as dict keys).

Why the numpy names are wrapped instead of handed out as they are: a name-level
allow-list is not enough for numpy. ``numpy.ndarray`` called directly builds an object
array over raw bytes, and ``dtype.__setstate__`` accepts a forged ``flags`` field that
makes numpy treat raw bytes as object pointers; both crash the interpreter (tested on
numpy 2.4) and are the kind of memory corruption that can be turned into code
execution. So here:

* ``numpy.ndarray`` is an inert marker, only meaningful as ``_reconstruct``'s first
  argument, never callable;
* ``numpy.dtype`` gives a ``_DtypeSpec`` placeholder; its BUILD state is checked and
  turned into a canonical dtype made by numpy's own constructor (simple kinds only:
  bool, integers, floats, complex, str, bytes, object; no structured or datetime
  dtypes, no forged flags);
* the array and scalar builders take only placeholders and pass numpy the canonical
  dtype. Arrays rebuilt through ``_reconstruct`` are a private ``ndarray`` subclass
  while their BUILD runs; ``load`` then swaps them for plain ``ndarray`` views inside
  dicts, lists and tuples (a walk that only happens when the file held such arrays and
  stops when all are found). One nested deeper than 100 containers keeps the subclass,
  which behaves as an ndarray and pickles again as a plain one.

Every failure is a ``UsageError`` with one line naming the path: missing, unreadable,
not a regular file (a FIFO would block the read: ``regular.open_regular``), truncated or
corrupted (any exception from unpickling), naming a forbidden global, or expanding, through
shared references, beyond ``pickle_bound.budget`` of its size (a "billion laughs"), or
containing itself. A forbidden global is refused before anything is imported or called;
an expanding file before anything walks what it loaded (forgetting/files/pickle_bound.py).
"""
import gc
import os
import pickle

import numpy as np

from forgetting.errors import UsageError
from forgetting.files import pickle_bound, regular

ALLOWED_CONTENT = (
    "only plain containers, numbers, strings and numpy arrays are allowed in a stats or sorting file"
)

_NUMPY2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
if _NUMPY2:
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
else:  # numpy 1.x: numpy.core is the real package there
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

# Kinds a canonical dtype may have: bool, signed/unsigned int, float, complex,
# unicode str, bytes, object.
_SIMPLE_KINDS = "biufcUSO"


class _Refused(pickle.UnpicklingError):
    """A global outside the allow-list; carries the dotted name for the message."""

    def __init__(self, dotted):
        super().__init__(dotted)
        self.dotted = dotted


class _Unsupported(pickle.UnpicklingError):
    """Well-formed numpy content that no stats or sorting file holds (e.g. a structured dtype)."""


class _Marker:
    """Stands for ``numpy.ndarray`` inside a pickle: an argument, never a callable."""

    __slots__ = ()

    def __repr__(self):
        return "<numpy.ndarray marker from safe_pickle>"


_NDARRAY = _Marker()


class _DtypeSpec:
    """What ``numpy.dtype(spec, align, copy)`` gives inside a pickle.

    The BUILD state that follows (``(3 or 4, byteorder, subarray, names, fields, elsize,
    alignment, flags[, metadata])``) is checked here; ``dtype`` is then numpy's own
    canonical dtype for it. Flags and alignment are ignored, not trusted.
    """

    __slots__ = ("_base", "dtype")

    def __init__(self, spec, align=False, copy=False):
        if isinstance(spec, bytes):
            spec = spec.decode("latin1")
        if not isinstance(spec, str) or not isinstance(align, (bool, int)):
            raise pickle.UnpicklingError(f"unsupported numpy dtype spec {spec!r}")
        base = np.dtype(spec)
        if base.kind not in _SIMPLE_KINDS or base.fields is not None or base.subdtype is not None:
            raise _Unsupported(f"a numpy array of dtype {spec!r}")
        self._base = base
        self.dtype = base

    def __setstate__(self, state):
        if self._base is None:
            raise pickle.UnpicklingError("numpy dtype state given twice")
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise pickle.UnpicklingError("unsupported numpy dtype state")
        byteorder, subarray, names, fields, elsize = state[1:6]
        if subarray is not None or names is not None or fields is not None:
            raise _Unsupported("a numpy array of a structured dtype")
        if isinstance(byteorder, bytes):
            byteorder = byteorder.decode("latin1")
        if byteorder not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError(f"bad numpy dtype byte order {byteorder!r}")
        base = self._base
        if byteorder in "<>" and base.byteorder != "|":
            base = base.newbyteorder(byteorder)
        if base.kind in "US" and elsize != base.itemsize:
            raise pickle.UnpicklingError("inconsistent numpy dtype item size")
        self.dtype = np.dtype(base.str)  # numpy's canonical descriptor for it
        self._base = None


def _canonical_dtype(spec):
    if not isinstance(spec, _DtypeSpec):
        raise pickle.UnpicklingError("numpy data without a numpy dtype")
    return spec.dtype


def _raw_bytes(data):
    if isinstance(data, str):  # protocol 0-2 pickles from Python 2 (loaded as latin1)
        return data.encode("latin1")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    raise pickle.UnpicklingError("numpy raw data is not bytes")


class _LoadedArray(np.ndarray):
    """An array rebuilt by ``_reconstruct``; its BUILD state gets the canonical dtype."""

    def __setstate__(self, state):
        if getattr(self, "_safe_pickle_built", False):
            raise pickle.UnpicklingError("numpy array state given twice")
        self._safe_pickle_built = True
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("unsupported numpy array state")
        head = state[:1] if len(state) == 5 else ()
        shape, spec, is_fortran, data = state[-4:]
        dtype = _canonical_dtype(spec)
        if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
            raise pickle.UnpicklingError("bad numpy array shape")
        size = int(np.prod(shape, dtype=object))
        if dtype.hasobject:
            if not isinstance(data, list) or len(data) != size:
                raise pickle.UnpicklingError("numpy object array without a matching list of items")
        else:
            data = _raw_bytes(data)
            if len(data) != dtype.itemsize * size:
                raise pickle.UnpicklingError("numpy array data does not match its shape")
        np.ndarray.__setstate__(self, head + (shape, dtype, bool(is_fortran), data))

    def __reduce_ex__(self, protocol):
        # Pickle again as a plain ndarray, so no file ever names this module.
        return self.view(np.ndarray).__reduce_ex__(protocol)

    def __reduce__(self):
        return self.view(np.ndarray).__reduce__()


def _reconstruct(subtype, shape, dtype_code):
    """numpy's ``multiarray._reconstruct(ndarray, (0,), b'b')``: an empty array to BUILD."""
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("numpy _reconstruct of something other than numpy.ndarray")
    return np.ndarray.__new__(_LoadedArray, (0,), np.int8)


def _frombuffer(buf, spec, shape, order):
    """numpy's protocol-5 array builder, ``frombuffer(buf, dtype).reshape(shape, order)``."""
    dtype = _canonical_dtype(spec)
    if dtype.hasobject:
        raise pickle.UnpicklingError("numpy object array from raw bytes")
    if not isinstance(buf, (bytes, bytearray)):
        raise pickle.UnpicklingError("numpy array buffer is not bytes")
    if not isinstance(shape, tuple) or order not in ("C", "F", "A", "K"):
        raise pickle.UnpicklingError("bad numpy array shape or order")
    return _numeric._frombuffer(buf, dtype, shape, order)


def _scalar(spec, data=None):
    """numpy's ``multiarray.scalar(dtype, raw_bytes)`` (or ``(dtype('O'), obj)``)."""
    dtype = _canonical_dtype(spec)
    if dtype.hasobject:
        return data
    data = _raw_bytes(data)
    if len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("numpy scalar data does not match its dtype")
    return _multiarray.scalar(dtype, data)


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """``_codecs.encode(text, 'latin1')``: how protocols 0-2 spell a bytes value."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode other than text to latin1")
    return text.encode("latin1")


def _bytes(*args):
    """``bytes()``, ``bytes(b'...')`` or ``bytes('...', encoding)``: never ``bytes(n)``."""
    if args and isinstance(args[0], int):
        raise pickle.UnpicklingError("bytes(n) is not allowed")
    return bytes(*args)


def _bytearray(*args):
    if args and isinstance(args[0], int):
        raise pickle.UnpicklingError("bytearray(n) is not allowed")
    return bytearray(*args)


_BUILTINS = {"set": set, "frozenset": frozenset, "complex": complex, "bytes": _bytes, "bytearray": _bytearray}

_ALLOWED = {("_codecs", "encode"): _latin1_encode, ("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _DtypeSpec}
for _module in ("builtins", "__builtin__"):  # __builtin__: protocol 0-2 names, as Python 2 wrote them
    _ALLOWED.update({(_module, name): obj for name, obj in _BUILTINS.items()})
for _core in ("numpy.core", "numpy._core"):  # numpy 1.x and numpy 2.x module paths
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _reconstruct
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = _scalar
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _frombuffer


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file):
        # encoding='latin1' is numpy's advice for pickles written by Python 2.
        super().__init__(file, encoding="latin1")
        # Counts the arrays _reconstruct makes, for _unwrap, and keeps every array made, for
        # pickle_bound.has_shared. Closures over lists, not bound methods: a reference back
        # to self would be a cycle keeping the memo (the whole loaded file) alive until the
        # next garbage collection.
        count = self.loaded_arrays = [0]
        made = self.made_arrays = []

        def counting_reconstruct(*args):
            array = _reconstruct(*args)
            count[0] += 1
            made.append(array)
            return array

        def keeping_frombuffer(*args):
            array = _frombuffer(*args)
            made.append(array)
            return array

        wrapped = {_reconstruct: counting_reconstruct, _frombuffer: keeping_frombuffer}
        self._allowed = {key: wrapped.get(value, value) for key, value in _ALLOWED.items()}

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except (KeyError, TypeError):
            dotted = f"{module}.{name}"
            # A garbled file can name anything: keep the message one printable line.
            shown = repr(dotted[:200])[1:-1] + ("..." if len(dotted) > 200 else "")
            raise _Refused(shown) from None


def _one_line(err, limit=200):
    text = " ".join(str(err).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


_MAX_UNWRAP_DEPTH = 100


def _unwrap(obj, remaining):
    """Replace ``_LoadedArray`` objects in ``obj`` by plain ndarray views.

    ``remaining[0]`` counts the ones not found yet; the walk stops as soon as it is 0,
    so files without such arrays (stats files as the original scripts wrote them) are
    never walked. Returns the object to use in place of ``obj``. Containers deeper than
    ``_MAX_UNWRAP_DEPTH`` keep the subclass, which behaves and re-pickles as ndarray.
    """
    stack_depth = [0]
    seen = set()  # containers already walked: shared or self-referencing ones once only

    def fix(item):
        if remaining[0] == 0:
            return item
        if isinstance(item, _LoadedArray):
            remaining[0] -= 1
            return item.view(np.ndarray)
        if not isinstance(item, (dict, list, tuple)) or stack_depth[0] >= _MAX_UNWRAP_DEPTH:
            return item
        if id(item) in seen:
            return item
        seen.add(id(item))
        stack_depth[0] += 1
        try:
            if isinstance(item, dict):
                for key, value in item.items():
                    new = fix(value)
                    if new is not value:
                        item[key] = new
            elif isinstance(item, list):
                for index, value in enumerate(item):
                    new = fix(value)
                    if new is not value:
                        item[index] = new
            else:
                new_items = [fix(value) for value in item]
                if any(new is not old for new, old in zip(new_items, item)):
                    item = tuple(new_items)
        finally:
            stack_depth[0] -= 1
        return item

    return fix(obj)


def load(path):
    """Unpickle ``path`` (a stats or sorting file) with the restricted loader.

    Returns the unpickled object. Raises ``UsageError`` with a one-line message naming
    ``path`` when the file is missing, unreadable, not a regular file, not a complete
    pickle, names a global outside the allow-list (which is then never imported or called),
    or expands beyond ``pickle_bound.budget`` of its size.
    """
    try:
        handle = regular.open_regular(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot be read ({_one_line(err)})") from None
    # The cyclic GC would rescan the millions of new lists over and over while a large stats
    # file loads (2.7x slower measured on 50,000 x 200); nothing loaded needs it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    watch = pickle_bound.Watch()
    try:
        with handle:
            size = os.fstat(handle.fileno()).st_size
            holder, loaded_arrays, made_arrays = _unpickle(path, handle, watch)
        _check_expansion(path, holder, size, watch, made_arrays)
        del made_arrays
    finally:
        watch.finish()
        if gc_was_enabled:
            gc.enable()
    return _unwrap(holder.pop(), loaded_arrays)


def _unpickle(path, handle, watch):
    """``([loaded object], arrays _reconstruct made, every array made)``: the object in a
    one-item list, its only owner; the memo cleared, the unpickler gone.
    Every failure is a one-line UsageError."""
    try:
        watch.start()  # from here on, what the load makes can be told from older objects
        unpickler = _RestrictedUnpickler(handle)
        holder = [unpickler.load()]
    except _Refused as err:
        raise UsageError(f"{path}: refuses to load '{err.dotted}' ({ALLOWED_CONTENT})") from None
    except _Unsupported as err:
        raise UsageError(f"{path}: refuses to load {err} ({ALLOWED_CONTENT})") from None
    except MemoryError:
        raise UsageError(
            f"{path}: ran out of memory while unpickling it (corrupted, or too large for this machine)"
        ) from None
    except OSError as err:
        raise UsageError(f"{path}: cannot be read ({_one_line(err)})") from None
    except Exception as err:  # noqa: BLE001 - any failure of a damaged file is bad input
        raise UsageError(
            f"{path}: not a complete pickle (truncated or corrupted: {_one_line(err)}); re-create it"
        ) from None
    unpickler.memo.clear()  # drop the unpickler's references to everything it loaded
    return holder, unpickler.loaded_arrays, unpickler.made_arrays


def _check_expansion(path, holder, size, watch, arrays):
    """Refuse ``holder[0]`` (the loaded object) if it expands beyond
    ``pickle_bound.budget(size)`` elements (see forgetting/files/pickle_bound.py).
    ``arrays``: the arrays the unpickler made (the list holds the only reference besides
    their owners)."""
    if not pickle_bound.has_shared(watch, holder, arrays):
        return
    limit = pickle_bound.budget(size)
    try:
        elements = pickle_bound.expanded_size(holder[0], limit)
    except pickle_bound.SelfReferencing:
        raise UsageError(f"{path}: refuses to load it: it contains itself (no stats or sorting file "
                       "does); re-create it") from None
    if elements > limit:
        raise UsageError(f"{path}: refuses to load it: its shared references expand its {size} bytes "
                       f"to more than {limit} elements (a stats or sorting file holds about one per "
                       "byte); re-create it")


_NUMBERS = (bool, int, float, np.bool_, np.integer, np.floating)


def as_numbers(values):
    """A loaded list, tuple or array of numbers as a 1-D numpy array (bool, int or float), or
    ValueError. A list's items are checked before numpy converts it: from a long string that
    the file repeats (which the expansion check does not see), numpy would build a string
    array of every copy."""
    if isinstance(values, (list, tuple)) and not all(isinstance(v, _NUMBERS) for v in values):
        raise ValueError("not a flat list of numbers")
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "biuf"):
        raise ValueError("not a flat list of numbers")
    return array
