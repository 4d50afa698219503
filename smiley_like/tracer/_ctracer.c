/* The compiled trace function of smiley-like: the hot path of recorder.py in C.
 *
 * One Tracer per thread is installed with PyEval_SetTrace, so CPython calls
 * it directly for every event, with no Python-level call and without the
 * f_locals dict that sys.settrace's trampoline rebuilds at every event.  (Or
 * it hears of events through sys.monitoring on 3.12+, or, for --calls-only
 * on 3.11, through the frame evaluation hook: see those sections.)  It
 * appends the very tuples the Python tracer appends (smiley_like/events.py)
 * to the publisher's buffer.  Decisions and text stay in Python, in one
 * place: which code is traced (Recorder._register_code, once per code object
 * and thread), the text of a value and whether a local changed
 * (Capture.update, Capture.deleted), exception messages.  What C does alone is
 * the common case: a local that is still the very object it was, of a type
 * whose text cannot change (Capture._stable), is skipped without a call.
 *
 * Fast locals are read straight from the interpreter frame, which needs
 * CPython's internal frame layout (3.11 to 3.13); frames that are not
 * optimized (module and class bodies) go through PyFrame_GetLocals and
 * Capture.changes, as in Python.
 *
 * Each traced frame gets a FrameTracer as its f_trace, holding the frame's
 * locals state; it is callable like recorder.py's trace_local, so that a
 * sys.settrace trampoline (after the program displaced us) still records
 * frames we started.  The Tracer is callable like trace_call, for threading's
 * start-up hook.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <math.h>
#include <time.h>
#if defined(__linux__) && defined(__GLIBC__)
#include <pthread.h>
#endif

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#error "smiley-like's C tracer supports CPython 3.11 to 3.13"
#endif

#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include "internal/pycore_frame.h"
#include "opcode.h"   /* RESUME, YIELD_VALUE */
#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_setobject.h"   /* _PySet_NextEntry */
#endif

/* Kinds of fast locals (Include/internal/pycore_code.h). */
#ifndef CO_FAST_HIDDEN
#define CO_FAST_HIDDEN 0x10
#endif
#ifndef CO_FAST_CELL
#define CO_FAST_CELL 0x40
#endif
#ifndef CO_FAST_FREE
#define CO_FAST_FREE 0x80
#endif

/* Event kinds and tuple layouts: smiley_like/events.py. */
enum { EV_CALL = 0, EV_LINE = 1, EV_RETURN = 2, EV_EXCEPTION = 3 };

/* Events written as msgpack, shared by the tracers of every thread (see
 * EventBuffer_take); writing an event runs no Python code, so an event is
 * written whole while the thread holds the GIL. */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Bytes;

typedef struct {
    PyObject_HEAD
    Bytes b;
    Py_ssize_t count;   /* events in it */
} EventBuffer;

typedef struct {
    PyObject *code;       /* strong: key */
    PyObject *code_id;    /* strong: int, or None for code not traced */
    PyObject *ignored;    /* strong or NULL: names never captured */
    int is_module;
    int resumable;
    int32_t *lines;       /* traced code: the line of each code unit (co_lines),
                           * LINE_UNKNOWN where it says nothing; NULL until needed */
    Py_ssize_t nlines;
} CodeInfo;

#define LINE_UNKNOWN INT32_MIN

typedef struct {
    PyObject_HEAD
    PyObject *thread_no;
    long long thread_no_c;
    EventBuffer *out;         /* shared by the tracers of every thread */
    Py_ssize_t event_start;   /* where the event being written starts in out */
    uint64_t stamp;           /* take_stamp() as the event being handled began */
    Py_ssize_t limit;
    PyObject *wait_for_room;
    PyObject *codes;          /* dict: code -> id or None (Recorder._codes) */
    PyObject *register_code;
    PyObject *update;         /* Capture.update */
    PyObject *deleted;        /* Capture.deleted */
    PyObject *changes;        /* Capture.changes, for frames that are not optimized */
    PyObject *text;
    PyObject *message;
    PyObject *stable;         /* set of types (Capture._stable) */
    int trace_locals;
    int calls_only;           /* no line events, no changed locals at return */
    PyObject *pending;        /* list (SignalGuard.pending) */
    PyObject *raise_pending;
    PyObject *interrupted;
    PyObject *internal_error;
    PyObject *module_codes;   /* set of code ids */
    PyObject *resumable;      /* set of code ids */
    PyObject *ignored;        /* dict: code id -> names */
    PyObject *ignored_marker; /* capture.IGNORED */
    Py_ssize_t max_repr;      /* Capture.max_repr */
    Py_ssize_t max_depth;     /* Capture.max_depth */
    Py_ssize_t mark_elements; /* Capture._mark_elements: max_repr // 3 + 2 */
    unsigned char normal_exit[256];
    Bytes scratch;            /* the changes of the event being made, packed */
    Bytes chars;              /* container_text's text, as it is written */
    Py_ssize_t nchanges;      /* and their number */
    uintptr_t *deep_words;    /* deep_walk's array, deep_cap long */
    Py_ssize_t deep_cap;
    CodeInfo *table;          /* open addressing, keyed by code object address */
    Py_ssize_t table_size;    /* a power of two */
    Py_ssize_t table_used;
} Tracer;

typedef struct {
    PyObject_HEAD
    Tracer *tracer;
    PyObject *code_id;
    int is_module;
    PyObject *objs, *texts, *marks;   /* the state Capture works on; NULL until needed */
    PyObject *deep;                   /* name -> deep_mark of its value, or NULL */
    PyObject *ignored;                /* names never captured, or NULL */
    int thrown_at;                    /* the yield (byte offset) of an 'exception' event
                                       * with no line at or before it since; -1 */
    /* --calls-only: the frame's last 'exception' event, held until the frame
     * ends, and written only if an exception ends it (type name, message,
     * line); NULL if none */
    PyObject *held_type, *held_message;
    int held_line;
    Py_ssize_t nseen;
    void *block;                      /* owns the three arrays below, room for block_size locals */
    Py_ssize_t block_size;
    PyObject **seen;                  /* per fast local: the object last seen, or IGNORED */
    PyObject **seen_text;             /* per fast local: its text as last recorded */
    PyTypeObject **seen_stable;       /* per fast local: its type, if that type is stable */
    uint64_t *seen_version;           /* per fast local: see dict_version; 0 if none */
} FrameTracer;

static int ensure_dicts(FrameTracer *ft);

static PyTypeObject TracerType;
static PyTypeObject FrameTracerType;
/* A thread-local variable read on the hot path: no __tls_get_addr call. */
#if defined(__GNUC__) || defined(__clang__)
#define FAST_TLS static _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define FAST_TLS static _Thread_local
#endif

/* Non-zero while this thread runs our event handling: a signal handler that
 * runs then is in our code, though the frame it is given is the program's. */
FAST_TLS int inside_tracer;
static PyObject *str_qualname;
static PyObject *str_dots;

#if PY_VERSION_HEX < 0x030D0000
#define PyObject_GetOptionalAttr _PyObject_LookupAttr
#endif

#define FrameTracer_Check(op) Py_IS_TYPE((op), &FrameTracerType)

/* -- the clock ---------------------------------------------------------------
 *
 * Every event carries CLOCK_MONOTONIC in ns (time.perf_counter_ns's clock),
 * and clock_gettime costs about 25 ns on these machines: a sixth of a traced
 * call.  Where the kernel itself keeps that clock with the TSC (its
 * clocksource is "tsc", which it only picks for an invariant TSC in step on
 * every CPU), an event's time is the TSC scaled by the rate measured between
 * two anchors (a TSC reading paired with clock_gettime), taken at most every
 * 10 ms from EventBuffer.take(), i.e. 20 times a second: it stays within a
 * microsecond or so of the kernel's clock, and it never goes back.  Before
 * the first rate is known, and anywhere else, it is clock_gettime. */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <x86intrin.h>
#define HAVE_TSC 1
#endif

static struct {
    int usable;          /* the kernel keeps CLOCK_MONOTONIC with the TSC */
    uint64_t tsc0;       /* the anchor: a TSC reading ... */
    long long ns0;       /* ... and the clock at that moment */
    uint64_t mult;       /* ns per tick, << 32; 0 until measured */
    long long last;      /* the latest time given out */
} tsc_clock;

static long long
monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The TSC now, or 0 where times come from clock_gettime.  Taken as an event
 * begins and turned into a time only when it is written, so that the
 * reading's latency (20 ns here) is spent while other work goes on. */
static inline uint64_t
take_stamp(void)
{
#ifdef HAVE_TSC
    if (tsc_clock.mult)
        return __rdtsc();
#endif
    return 0;
}

/* The time of an event whose stamp is *stamp*. */
static inline long long
event_ns(uint64_t stamp)
{
#ifdef HAVE_TSC
    if (stamp && tsc_clock.mult) {
        long long t = tsc_clock.ns0;
        if (stamp > tsc_clock.tsc0)  /* else anchored since (another thread, meanwhile) */
            t += (long long)(((unsigned __int128)(stamp - tsc_clock.tsc0) * tsc_clock.mult)
                             >> 32);
        if (t < tsc_clock.last)
            t = tsc_clock.last;  /* a new anchor a little behind the old rate */
        return tsc_clock.last = t;
    }
#endif
    return monotonic_ns();
}

/* Take a new anchor, and the TSC's rate since the last one (under the GIL). */
static void
tsc_anchor(void)
{
#ifdef HAVE_TSC
    uint64_t before, after, tsc;
    long long ns;
    if (!tsc_clock.usable)
        return;
    before = __rdtsc();
    ns = monotonic_ns();
    after = __rdtsc();
    if (after - before > 20000)
        return;  /* interrupted between the readings: a pair to skip */
    tsc = before + (after - before) / 2;
    if (tsc_clock.ns0 == 0 || tsc <= tsc_clock.tsc0) {
        tsc_clock.tsc0 = tsc;
        tsc_clock.ns0 = ns;
        return;
    }
    if (ns - tsc_clock.ns0 < 10000000)
        return;  /* too close to the last anchor for a good rate */
    tsc_clock.mult = (uint64_t)(((unsigned __int128)(ns - tsc_clock.ns0) << 32)
                                / (tsc - tsc_clock.tsc0));
    tsc_clock.tsc0 = tsc;
    tsc_clock.ns0 = ns;
#endif
}

static void
tsc_init(void)
{
#ifdef HAVE_TSC
    char name[16] = {0};
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f == NULL)
        return;
    tsc_clock.usable = fgets(name, sizeof(name), f) != NULL && strcmp(name, "tsc\n") == 0;
    fclose(f);
    tsc_anchor();
#endif
}

/* -- the event buffer: events as msgpack, as codec.pack would write them ---------- */

/* Room kept at the start of the buffer for the array header that take() writes. */
#define HEADER_ROOM 5

static PyTypeObject EventBufferType;

static int grow(Bytes *b, Py_ssize_t extra);

/* Make room for *extra* more bytes: inline, as it is asked for every value. */
static inline int
reserve(Bytes *b, Py_ssize_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    return grow(b, extra);
}

static int
grow(Bytes *b, Py_ssize_t extra)
{
    Py_ssize_t cap;
    char *data;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

#define PUT(b, byte) ((b)->data[(b)->len++] = (char)(byte))

/* The low *n* (1, 2, 4 or 8) bytes of v, big-endian, through a local
 * pointer: stores through char * could alias b->len, which would make the
 * compiler reload it after every byte. */
static inline void
put_be(Bytes *b, uint64_t v, int n)
{
    char *p = b->data + b->len;
    switch (n) {
    case 1: p[0] = (char)v; break;
    case 2: { uint16_t w = __builtin_bswap16((uint16_t)v); memcpy(p, &w, 2); break; }
    case 4: { uint32_t w = __builtin_bswap32((uint32_t)v); memcpy(p, &w, 4); break; }
    default: { uint64_t w = __builtin_bswap64(v); memcpy(p, &w, 8); break; }
    }
    b->len += n;
}

/* msgpack's integer encodings, chosen as msgpack-python's packer chooses
 * them; put_int needs 9 bytes of room. */
static inline void
put_int(Bytes *b, long long d)
{
    if (d < -(1LL << 5)) {
        if (d < -(1LL << 15)) {
            if (d < -(1LL << 31)) { PUT(b, 0xd3); put_be(b, (uint64_t)d, 8); }
            else { PUT(b, 0xd2); put_be(b, (uint64_t)d, 4); }
        }
        else if (d < -(1 << 7)) { PUT(b, 0xd1); put_be(b, (uint64_t)d, 2); }
        else { PUT(b, 0xd0); put_be(b, (uint64_t)d, 1); }
    }
    else if (d < (1 << 7))
        PUT(b, d);
    else if (d < (1LL << 16)) {
        if (d < (1 << 8)) { PUT(b, 0xcc); put_be(b, (uint64_t)d, 1); }
        else { PUT(b, 0xcd); put_be(b, (uint64_t)d, 2); }
    }
    else if (d < (1LL << 32)) { PUT(b, 0xce); put_be(b, (uint64_t)d, 4); }
    else { PUT(b, 0xcf); put_be(b, (uint64_t)d, 8); }
}

static int
pack_int(Bytes *b, long long d)
{
    if (reserve(b, 9) < 0)
        return -1;
    put_int(b, d);
    return 0;
}

static int
pack_header(Bytes *b, Py_ssize_t n, int fix, int fixmax, int c16, int c32)
{
    if (reserve(b, 5) < 0)
        return -1;
    if (n < fixmax)
        PUT(b, fix | n);
    else if (n < 0x10000) { PUT(b, c16); put_be(b, (uint64_t)n, 2); }
    else if ((uint64_t)n <= 0xFFFFFFFFULL) { PUT(b, c32); put_be(b, (uint64_t)n, 4); }
    else {
        PyErr_SetString(PyExc_ValueError, "too big to pack");
        return -1;
    }
    return 0;
}

#define pack_array_header(b, n) pack_header((b), (n), 0x90, 16, 0xdc, 0xdd)
#define pack_map_header(b, n) pack_header((b), (n), 0x80, 16, 0xde, 0xdf)

static int
pack_raw(Bytes *b, const char *s, Py_ssize_t n, int is_str)
{
    if (reserve(b, n + 5) < 0)
        return -1;
    if (is_str && n < 32)
        PUT(b, 0xa0 | n);
    else if (n < 0x100) { PUT(b, is_str ? 0xd9 : 0xc4); put_be(b, (uint64_t)n, 1); }
    else if (n < 0x10000) { PUT(b, is_str ? 0xda : 0xc5); put_be(b, (uint64_t)n, 2); }
    else if ((uint64_t)n <= 0xFFFFFFFFULL) { PUT(b, is_str ? 0xdb : 0xc6); put_be(b, (uint64_t)n, 4); }
    else {
        PyErr_SetString(PyExc_ValueError, "too big to pack");
        return -1;
    }
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static int
pack_str(Bytes *b, PyObject *text)
{
    Py_ssize_t n;
    const char *s;
    PyObject *encoded;
    int err;
    if (PyUnicode_IS_COMPACT_ASCII(text))  /* most text: its bytes are its UTF-8 */
        return pack_raw(b, (const char *)PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text), 1);
    s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s != NULL)
        return pack_raw(b, s, n, 1);
    /* lone surrogates: passed through, as codec.pack does ("surrogatepass") */
    PyErr_Clear();
    encoded = PyUnicode_AsEncodedString(text, "utf-8", "surrogatepass");
    if (encoded == NULL)
        return -1;
    err = pack_raw(b, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded), 1);
    Py_DECREF(encoded);
    return err;
}

static int pack_obj(Bytes *b, PyObject *o, int depth);

/* The value of an int of one internal digit (|v| < 2**30), read straight from
 * the object: most ints a program holds.  0 for any other int. */
static inline int
small_int(PyObject *o, long long *v)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (!_PyLong_IsCompact((PyLongObject *)o))
        return 0;
    *v = (long long)_PyLong_CompactValue((PyLongObject *)o);
#else
    Py_ssize_t size = Py_SIZE(o);
    if (size < -1 || size > 1)
        return 0;
    *v = size * (long long)((PyLongObject *)o)->ob_digit[0];
#endif
    return 1;
}

/* The value of an exact int that fits in a long long: 1, or 0 for a bigger
 * one (no exception either way). */
static inline int
long_long_value(PyObject *o, long long *v)
{
    int overflow;
    if (small_int(o, v))
        return 1;
    *v = PyLong_AsLongLongAndOverflow(o, &overflow);
    return !overflow;
}

/* n (< 32) bytes, a short str's characters or a few packed changes: two
 * overlapping fixed-size copies instead of a copy of variable length. */
static inline void
copy_short(char *to, const char *from, Py_ssize_t n)
{
    if (n >= 16) {
        memcpy(to, from, 16);
        memcpy(to + n - 16, from + n - 16, 16);
    }
    else if (n >= 8) {
        memcpy(to, from, 8);
        memcpy(to + n - 8, from + n - 8, 8);
    }
    else if (n >= 4) {
        memcpy(to, from, 4);
        memcpy(to + n - 4, from + n - 4, 4);
    }
    else if (n > 0) {
        to[0] = from[0];
        to[n / 2] = from[n / 2];
        to[n - 1] = from[n - 1];
    }
}

/* n (>= 32) bytes: 32 at a time, the last 32 overlapping. */
static inline void
copy_medium(char *to, const char *from, Py_ssize_t n)
{
    Py_ssize_t i;
    for (i = 0; i + 32 < n; i += 32)
        memcpy(to + i, from + i, 32);
    memcpy(to + n - 32, from + n - 32, 32);
}

/* pack_obj for what events hold most, None, ASCII text (names and texts)
 * and small ints (code ids), inline; the rest through pack_obj. */
static inline __attribute__((always_inline)) int
pack_value(Bytes *b, PyObject *o)
{
    if (o == Py_None) {
        if (reserve(b, 1) < 0)
            return -1;
        PUT(b, 0xc0);
        return 0;
    }
    if (PyUnicode_CheckExact(o) && PyUnicode_IS_COMPACT_ASCII(o)
            && PyUnicode_GET_LENGTH(o) < 256) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(o);
        /* compact ASCII: the characters follow the object's header */
        const char *s = (const char *)((PyASCIIObject *)o + 1);
        char *p;
        if (n < 32) {
            if (reserve(b, 32) < 0)
                return -1;
            p = b->data + b->len;
            *p = (char)(0xa0 | n);
            copy_short(p + 1, s, n);
            b->len += n + 1;
            return 0;
        }
        /* ("<mod.Name object at 0x...>" and the like) */
        if (reserve(b, n + 2) < 0)
            return -1;
        p = b->data + b->len;
        p[0] = (char)0xd9;
        p[1] = (char)n;
        copy_medium(p + 2, s, n);
        b->len += n + 2;
        return 0;
    }
    if (PyLong_CheckExact(o)) {
        long long d;
        if (small_int(o, &d)) {
            if (reserve(b, 9) < 0)
                return -1;
            if (d >= -32 && d < 128)
                PUT(b, d);  /* a fixint, as put_int writes it */
            else
                put_int(b, d);
            return 0;
        }
    }
    return pack_obj(b, o, 0);
}

/* What codec.pack writes for the values events hold (None, bools, ints, floats,
 * str, bytes, lists, tuples, dicts).  No Python code runs here, so an event is
 * written whole while this thread holds the GIL. */
static int
pack_obj(Bytes *b, PyObject *o, int depth)
{
    if (depth > 512) {
        PyErr_SetString(PyExc_ValueError, "nested too deeply to pack");
        return -1;
    }
    if (o == Py_None || o == Py_True || o == Py_False) {
        if (reserve(b, 1) < 0)
            return -1;
        PUT(b, o == Py_None ? 0xc0 : o == Py_True ? 0xc3 : 0xc2);
        return 0;
    }
    if (PyUnicode_Check(o))
        return pack_str(b, o);
    if (PyLong_Check(o)) {
        int overflow;
        long long d;
        if (small_int(o, &d))
            return pack_int(b, d);
        d = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (d == -1 && PyErr_Occurred())
            return -1;
        if (overflow > 0) {
            unsigned long long u = PyLong_AsUnsignedLongLong(o);
            if (u == (unsigned long long)-1 && PyErr_Occurred())
                return -1;
            if (reserve(b, 9) < 0)
                return -1;
            PUT(b, 0xcf);
            put_be(b, u, 8);
            return 0;
        }
        if (overflow < 0) {
            PyErr_SetString(PyExc_OverflowError, "Integer value out of range");
            return -1;
        }
        return pack_int(b, d);
    }
    if (PyFloat_Check(o)) {
        double d = PyFloat_AS_DOUBLE(o);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        if (reserve(b, 9) < 0)
            return -1;
        PUT(b, 0xcb);
        put_be(b, bits, 8);
        return 0;
    }
    if (PyBytes_Check(o))
        return pack_raw(b, PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o), 0);
    if (PyDict_CheckExact(o)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        if (pack_map_header(b, PyDict_GET_SIZE(o)) < 0)
            return -1;
        while (PyDict_Next(o, &pos, &key, &value))
            if (pack_obj(b, key, depth + 1) < 0 || pack_obj(b, value, depth + 1) < 0)
                return -1;
        return 0;
    }
    if (PyList_Check(o) || PyTuple_Check(o)) {
        Py_ssize_t i, n = PySequence_Fast_GET_SIZE(o);
        PyObject **items = PySequence_Fast_ITEMS(o);
        if (pack_array_header(b, n) < 0)
            return -1;
        for (i = 0; i < n; i++)
            if (pack_obj(b, items[i], depth + 1) < 0)
                return -1;
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "cannot pack %.100s", Py_TYPE(o)->tp_name);
    return -1;
}

static PyObject *
EventBuffer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    EventBuffer *self = (EventBuffer *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (reserve(&self->b, HEADER_ROOM) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->b.len = HEADER_ROOM;
    return (PyObject *)self;
}

static void
EventBuffer_dealloc(EventBuffer *self)
{
    PyMem_Free(self->b.data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
EventBuffer_length(EventBuffer *self)
{
    return self->count;
}

/* take(): (count, msgpack array of the events), and the buffer is empty again. */
static PyObject *
EventBuffer_take(EventBuffer *self, PyObject *unused)
{
    Bytes header = {0};
    char room[HEADER_ROOM];
    PyObject *data, *result;
    Py_ssize_t count = self->count;
    tsc_anchor();
    header.data = room;
    header.cap = HEADER_ROOM;
    if (pack_array_header(&header, count) < 0)
        return NULL;
    memcpy(self->b.data + HEADER_ROOM - header.len, room, (size_t)header.len);
    data = PyBytes_FromStringAndSize(self->b.data + HEADER_ROOM - header.len,
                                     self->b.len - HEADER_ROOM + header.len);
    if (data == NULL)
        return NULL;
    self->b.len = HEADER_ROOM;
    self->count = 0;
    if (self->b.cap > (1 << 24)) {  /* a burst made it big: do not keep that */
        char *smaller = PyMem_Realloc(self->b.data, 4096);
        if (smaller != NULL) {
            self->b.data = smaller;
            self->b.cap = 4096;
        }
    }
    result = Py_BuildValue("(nN)", count, data);
    return result;
}

static PyObject *
EventBuffer_clear(EventBuffer *self, PyObject *unused)
{
    self->b.len = HEADER_ROOM;
    self->count = 0;
    Py_RETURN_NONE;
}

static PyMethodDef EventBuffer_methods[] = {
    {"take", (PyCFunction)EventBuffer_take, METH_NOARGS,
     "take() -> (count, data): the events as one msgpack array; the buffer is emptied."},
    {"clear", (PyCFunction)EventBuffer_clear, METH_NOARGS, "Drop every event."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods EventBuffer_as_sequence = {
    .sq_length = (lenfunc)EventBuffer_length,
};

static PyTypeObject EventBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "smiley_like.tracer._ctracer.EventBuffer",
    .tp_doc = "Events packed with msgpack by the C tracers of every thread; len() counts them.",
    .tp_basicsize = sizeof(EventBuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = EventBuffer_new,
    .tp_dealloc = (destructor)EventBuffer_dealloc,
    .tp_methods = EventBuffer_methods,
    .tp_as_sequence = &EventBuffer_as_sequence,
};

static CodeInfo *table_slot(CodeInfo *table, Py_ssize_t size, PyObject *code);
static inline PyCodeObject *frame_code(PyFrameObject *frame);

/* The line of each code unit of *slot*'s code, from co_lines(): what
 * PyCode_Addr2Line answers, without its walk of the line table from the
 * start at every call.  0, or -1 with an exception. */
static __attribute__((noinline)) int
build_lines(CodeInfo *slot)
{
    PyObject *ranges, *range;
    Py_ssize_t n = Py_SIZE(slot->code), i;
    int32_t *lines = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (lines == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < n; i++)
        lines[i] = LINE_UNKNOWN;
    if ((ranges = PyObject_CallMethod(slot->code, "co_lines", NULL)) == NULL) {
        PyMem_Free(lines);
        return -1;
    }
    while ((range = PyIter_Next(ranges)) != NULL) {
        Py_ssize_t start, end;
        int32_t line = -1;
        if (!PyTuple_Check(range) || PyTuple_GET_SIZE(range) != 3)
            goto bad;
        start = PyLong_AsSsize_t(PyTuple_GET_ITEM(range, 0)) / (Py_ssize_t)sizeof(_Py_CODEUNIT);
        end = PyLong_AsSsize_t(PyTuple_GET_ITEM(range, 1)) / (Py_ssize_t)sizeof(_Py_CODEUNIT);
        if (PyTuple_GET_ITEM(range, 2) != Py_None)
            line = (int32_t)PyLong_AsLong(PyTuple_GET_ITEM(range, 2));
        if (PyErr_Occurred())
            goto bad;
        for (i = start < 0 ? 0 : start; i < end && i < n; i++)
            lines[i] = line;
        Py_DECREF(range);
    }
    Py_DECREF(ranges);
    if (PyErr_Occurred()) {
        PyMem_Free(lines);
        return -1;
    }
    slot->lines = lines;
    slot->nlines = n;
    return 0;
bad:
    Py_DECREF(range);
    Py_DECREF(ranges);
    PyMem_Free(lines);
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "co_lines() gave something else than 3-tuples");
    return -1;
}

/* The line of code unit *index* (>= 0) of traced *code*, as PyCode_Addr2Line
 * answers: from the code's line array, built at the first need. */
static inline int
code_line(Tracer *t, PyCodeObject *code, int index)
{
    CodeInfo *slot;
    if (t->table_size) {
        slot = table_slot(t->table, t->table_size, (PyObject *)code);
        if (slot->code != NULL && slot->code_id != Py_None) {
            if (slot->lines == NULL && build_lines(slot) < 0)
                PyErr_Clear();   /* the slow way below */
            if (slot->lines != NULL && index < slot->nlines && slot->lines[index] != LINE_UNKNOWN)
                return slot->lines[index];
        }
    }
    return PyCode_Addr2Line(code, index * (int)sizeof(_Py_CODEUNIT));
}

/* The frame's current line, as PyFrame_GetLineNumber returns it.  f_lineno
 * is set while a trace function runs (3.11 to 3.13); the other hooks look
 * the last instruction up in the code's line array. */
static inline int
frame_line(Tracer *t, PyFrameObject *frame)
{
    int lasti;
    if (frame->f_lineno > 0)
        return frame->f_lineno;
    lasti = _PyInterpreterFrame_LASTI(frame->f_frame);
    return lasti >= 0 ? code_line(t, frame_code(frame), lasti) : PyFrame_GetLineNumber(frame);
}

/* Start an event of *fields* items: [kind, thread_no, t_ns, line_no, ...].
 * Inline in emit(): it is half of what an event costs. */
static inline __attribute__((always_inline)) int
begin_event(Tracer *t, int kind, int fields, PyFrameObject *frame)
{
    Bytes *b = &t->out->b;
    int line = frame_line(t, frame);
    long long now;
    char *p;
    t->event_start = b->len;
    if (reserve(b, 2 + 3 * 9) < 0)  /* room for all of it, checked once */
        return -1;
    now = event_ns(t->stamp);
    /* written through p: a store through b->data could alias b->len */
    p = b->data + b->len;
    *p++ = (char)(0x90 | fields);
    *p++ = (char)kind;
    if (t->thread_no_c >= 0 && t->thread_no_c < 128)
        *p++ = (char)t->thread_no_c;
    else {
        b->len = p - b->data;
        put_int(b, t->thread_no_c);
        p = b->data + b->len;
    }
    if (now >= (1LL << 32)) {  /* the clock, after the first 4.3 s of uptime */
        uint64_t w = __builtin_bswap64((uint64_t)now);
        *p++ = (char)0xcf;
        memcpy(p, &w, 8);
        p += 8;
    }
    else {
        b->len = p - b->data;
        put_int(b, now);
        p = b->data + b->len;
    }
    if (line < 0)
        *p++ = (char)0xc0;  /* frame.f_lineno is None there too */
    else if (line < 128)
        *p++ = (char)line;
    else if (line < 256) {
        *p++ = (char)0xcc;
        *p++ = (char)line;
    }
    else if (line < 65536) {
        *p++ = (char)0xcd;
        *p++ = (char)(line >> 8);
        *p++ = (char)line;
    }
    else {
        b->len = p - b->data;
        put_int(b, line);
        return 0;
    }
    b->len = p - b->data;
    return 0;
}

/* The event is complete: count it; wait for room if the buffer is full. */
static inline int
end_event(Tracer *t)
{
    PyObject *r;
    t->out->count++;
    if (t->out->count > t->limit) {
        r = PyObject_CallNoArgs(t->wait_for_room);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* In emit()'s values: the changes in t->scratch, as a map. */
static char changes_marker;
#define CHANGES ((PyObject *)&changes_marker)

/* Write one event: kind, thread, time and line, then the *n* values *rest*
 * (borrowed, or CHANGES).  Everything it holds must be computed first: nothing here
 * runs Python code until the event is whole.  Inline: each caller's kind and
 * values are known there. */
static inline __attribute__((always_inline)) int
emit(Tracer *t, PyFrameObject *frame, int kind, PyObject **rest, int n)
{
    int i;
    if (begin_event(t, kind, 4 + n, frame) < 0)
        goto fail;
    for (i = 0; i < n; i++) {
        if (rest[i] == CHANGES) {
            /* the map of changes frame_changes wrote to the scratch buffer */
            Bytes *b = &t->out->b;
            if (reserve(b, t->scratch.len + 5) < 0)
                goto fail;
            if (t->nchanges < 16)
                PUT(b, 0x80 | t->nchanges);  /* a fixmap: almost always */
            else if (pack_map_header(b, t->nchanges) < 0)
                goto fail;
            if (t->scratch.len < 32)
                copy_short(b->data + b->len, t->scratch.data, t->scratch.len);
            else
                memcpy(b->data + b->len, t->scratch.data, (size_t)t->scratch.len);
            b->len += t->scratch.len;
        }
        else if (pack_value(&t->out->b, rest[i]) < 0)
            goto fail;
    }
    return end_event(t);
fail:
    t->out->b.len = t->event_start;  /* no half events */
    return -1;
}

/* An exception came out of our own work.  A KeyboardInterrupt goes on into
 * the program (after Recorder._interrupted); anything else is reported by
 * Recorder._internal_error and cleared.  Returns -1 if the exception is to
 * propagate, else 0. */
static int
our_error(Tracer *t, PyFrameObject *frame)
{
    PyObject *type, *value, *tb, *r;
    if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        PyErr_Fetch(&type, &value, &tb);
        r = PyObject_CallOneArg(t->interrupted, (PyObject *)frame);
        if (r == NULL)
            PyErr_Clear();
        Py_XDECREF(r);
        PyErr_Restore(type, value, tb);
        return -1;
    }
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    r = PyObject_CallOneArg(t->internal_error, value ? value : Py_None);
    if (r == NULL)
        PyErr_Clear();
    Py_XDECREF(r);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return 0;
}

/* Raise what a signal handler left pending, into the program's frame. */
static int
check_pending(Tracer *t, PyFrameObject *frame)
{
    PyObject *r;
    if (PyList_GET_SIZE(t->pending) == 0)
        return 0;
    r = PyObject_CallOneArg(t->raise_pending, (PyObject *)frame);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* -- code objects: traced or not, once per thread ------------------------- */

static CodeInfo *
table_slot(CodeInfo *table, Py_ssize_t size, PyObject *code)
{
    size_t mask = (size_t)size - 1;
    size_t i = ((size_t)code >> 4) & mask;
    while (table[i].code != NULL && table[i].code != code)
        i = (i + 1) & mask;
    return &table[i];
}

static int
table_grow(Tracer *t)
{
    Py_ssize_t size = t->table_size ? t->table_size * 2 : 64, i;
    CodeInfo *table = PyMem_Calloc((size_t)size, sizeof(CodeInfo));
    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < t->table_size; i++)
        if (t->table[i].code != NULL)
            *table_slot(table, size, t->table[i].code) = t->table[i];
    PyMem_Free(t->table);
    t->table = table;
    t->table_size = size;
    return 0;
}

/* The CodeInfo of *code*, registering it with the Recorder on a miss. */
static CodeInfo *
code_info(Tracer *t, PyObject *code)
{
    CodeInfo *slot;
    PyObject *code_id;
    int found;
    if (t->table_size) {
        slot = table_slot(t->table, t->table_size, code);
        if (slot->code != NULL)
            return slot;
    }
    code_id = PyDict_GetItemWithError(t->codes, code);
    if (code_id != NULL)
        Py_INCREF(code_id);
    else if (PyErr_Occurred())
        return NULL;
    else if ((code_id = PyObject_CallOneArg(t->register_code, code)) == NULL)
        return NULL;
    if ((t->table_used + 1) * 2 > t->table_size && table_grow(t) < 0) {
        Py_DECREF(code_id);
        return NULL;
    }
    slot = table_slot(t->table, t->table_size, code);
    slot->code_id = code_id;
    slot->ignored = NULL;
    slot->is_module = slot->resumable = 0;
    slot->lines = NULL;
    slot->nlines = 0;
    if (code_id != Py_None) {
        if ((found = PySet_Contains(t->module_codes, code_id)) < 0)
            goto fail;
        slot->is_module = found;
        if ((found = PySet_Contains(t->resumable, code_id)) < 0)
            goto fail;
        slot->resumable = found;
        slot->ignored = PyDict_GetItemWithError(t->ignored, code_id);
        if (slot->ignored == NULL && PyErr_Occurred())
            goto fail;
        Py_XINCREF(slot->ignored);
    }
    Py_INCREF(code);
    slot->code = code;
    t->table_used++;
    return slot;
fail:
    Py_DECREF(code_id);
    slot->code_id = NULL;
    return NULL;
}

/* -- locals --------------------------------------------------------------- */

/* FrameTracers whose frames are over, kept (with their arrays) for the next
 * calls: code made of small calls would otherwise allocate, track and free
 * one per call. */
#define SPARE_FRAME_TRACERS 256
static FrameTracer *spare_frame_tracers[SPARE_FRAME_TRACERS];
static int spare_count;

static FrameTracer *
frame_tracer_new(Tracer *t, CodeInfo *info, PyCodeObject *code)
{
    FrameTracer *ft;
    Py_ssize_t n, m, j;
    if (spare_count > 0) {
        ft = spare_frame_tracers[--spare_count];
        _Py_NewReference((PyObject *)ft);
    }
    else {
        ft = PyObject_GC_New(FrameTracer, &FrameTracerType);
        if (ft == NULL)
            return NULL;
        ft->block = NULL;
        ft->block_size = 0;
    }
    Py_INCREF(t);
    ft->tracer = t;
    Py_INCREF(info->code_id);
    ft->code_id = info->code_id;
    ft->is_module = info->is_module;
    ft->objs = ft->texts = ft->marks = ft->deep = NULL;
    ft->ignored = Py_XNewRef(info->ignored);
    ft->thrown_at = -1;
    ft->held_type = ft->held_message = NULL;
    ft->nseen = 0;
    ft->seen = ft->seen_text = NULL;
    ft->seen_stable = NULL;
    ft->seen_version = NULL;
    PyObject_GC_Track(ft);
    if (!t->trace_locals)
        return ft;
    if (!(code->co_flags & CO_OPTIMIZED)) {
        /* Capture.changes works on f_locals and the dicts */
        if (ensure_dicts(ft) < 0)
            goto fail;
        return ft;
    }
    n = code->co_nlocalsplus;
    m = n ? n : 1;
    /* one block: seen_version, seen, seen_text, seen_stable */
    if (ft->block_size < m) {
        PyMem_Free(ft->block);
        ft->block_size = 0;
        if ((ft->block = PyMem_Calloc((size_t)m, sizeof(uint64_t) + 3 * sizeof(PyObject *)))
                == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        ft->block_size = m;
    }
    else
        memset(ft->block, 0, (size_t)m * (sizeof(uint64_t) + 3 * sizeof(PyObject *)));
    ft->seen_version = ft->block;
    ft->seen = (PyObject **)(ft->seen_version + m);
    ft->seen_text = ft->seen + m;
    ft->seen_stable = (PyTypeObject **)(ft->seen_text + m);
    ft->nseen = n;
    if (info->ignored != NULL) {
        /* the names never captured are marked in seen */
        PyObject *names = PySequence_Fast(info->ignored, "ignored names");
        Py_ssize_t i;
        if (names == NULL)
            goto fail;
        for (i = 0; i < PySequence_Fast_GET_SIZE(names); i++) {
            PyObject *name = PySequence_Fast_GET_ITEM(names, i);
            for (j = 0; j < ft->nseen; j++) {
                if (PyTuple_GET_ITEM(code->co_localsplusnames, j) == name
                        || PyUnicode_Compare(PyTuple_GET_ITEM(code->co_localsplusnames, j),
                                             name) == 0) {
                    Py_INCREF(t->ignored_marker);
                    Py_XSETREF(ft->seen[j], t->ignored_marker);
                }
            }
        }
        Py_DECREF(names);
    }
    return ft;
fail:
    Py_DECREF(ft);
    return NULL;
}

/* The dicts Capture works on (objs, texts, marks), made when Python is first
 * asked about this frame: objs starts as dict.fromkeys(ignored, IGNORED). */
static int
ensure_dicts(FrameTracer *ft)
{
    if (ft->objs != NULL)
        return 0;
    ft->objs = PyDict_New();
    ft->texts = PyDict_New();
    ft->marks = PyDict_New();
    if (ft->objs == NULL || ft->texts == NULL || ft->marks == NULL)
        return -1;
    if (ft->ignored != NULL) {
        PyObject *names = PySequence_Fast(ft->ignored, "ignored names");
        Py_ssize_t i;
        if (names == NULL)
            return -1;
        for (i = 0; i < PySequence_Fast_GET_SIZE(names); i++)
            if (PyDict_SetItem(ft->objs, PySequence_Fast_GET_ITEM(names, i),
                               ft->tracer->ignored_marker) < 0) {
                Py_DECREF(names);
                return -1;
            }
        Py_DECREF(names);
    }
    return 0;
}


/* True for an object whose class keeps object.__repr__: Capture.text gives it
 * plain repr() ("<mod.Name object at 0x...>"), which runs no code of the
 * program, and Capture.is_stable counts its type as stable. */
static int
has_default_repr(PyObject *value)
{
    return Py_TYPE(value)->tp_repr == PyBaseObject_Type.tp_repr;
}

/* -- repr() of floats, faster ---------------------------------------------
 *
 * repr(float) is the shortest decimal that reads back as the same double
 * (David Gay's dtoa, mode 0): 250-500 ns, most of the C tracer's time on
 * numeric code.  For the common case, a non-integer in [1e-3, 1e14) (which
 * repr writes in fixed notation), this finds the same digits with 128-bit
 * integers: the correctly rounded 15-, 16- and 17-digit decimals of the
 * value, the first that reads back as the value.  That is the shortest one
 * (any decimal of at most 15 digits that reads back is within 0.12 units
 * of the 15th digit of the value, so it is the rounded one padded with
 * zeros; and of 16 digits, the nearest reads back if any does) and the
 * nearest of that length, as dtoa gives.  What this cannot be sure of (a
 * power of two, whose interval is lopsided; a value exactly halfway at a
 * rounding) goes to float.__repr__.  tests/test_ctracer.py compares the two
 * on a few million values. */

typedef unsigned __int128 u128;

static const uint64_t pow10_table[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
    100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
    10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
    100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL};

/* repr(x) into out (at least 32 bytes); its length, or -1: ask float.__repr__. */
static int
fast_float_repr(double x, char *out)
{
    double ax = x < 0 ? -x : x, fraction;
    uint64_t m, digits = 0;
    int exponent, shift, e10, p, s = 0, length = 0, k, i;
    char buffer[24];

    if (!(ax >= 1e-3 && ax < 1e14) || ax == floor(ax))
        return -1;
    fraction = frexp(ax, &exponent);  /* ax = fraction * 2**exponent, fraction in [0.5, 1) */
    m = (uint64_t)ldexp(fraction, 53);
    shift = 53 - exponent;            /* ax = m / 2**shift, 0 < shift <= 63 here */
    if (m == (1ULL << 52) || shift <= 0 || shift > 63)
        return -1;
    /* e10 = floor(log10(ax)), made exact: 10**e10 <= ax < 10**(e10 + 1) */
    e10 = (int)floor(log10(ax));
    for (i = 0; i < 3; i++) {
        int low, high;
        if (e10 < -3 || e10 > 13)
            return -1;
        if (e10 >= 0) {
            low = (u128)m >= ((u128)pow10_table[e10] << shift);
            high = e10 + 1 > 13 || (u128)m < ((u128)pow10_table[e10 + 1] << shift);
        }
        else {
            low = (u128)m * pow10_table[-e10] >= ((u128)1 << shift);
            high = e10 + 1 > 0 ? (u128)m < ((u128)1 << shift) * pow10_table[e10 + 1]
                               : (u128)m * pow10_table[-e10 - 1] < ((u128)1 << shift);
        }
        if (!low)
            e10--;
        else if (!high)
            e10++;
        else
            break;
    }
    if (i == 3)
        return -1;
    for (p = 15; p <= 17; p++) {
        u128 scaled, rest, half, a, b, diff;
        uint64_t d;
        s = p - 1 - e10;                        /* 1 <= s <= 19 */
        scaled = (u128)m * pow10_table[s];      /* ax * 10**s * 2**shift, exactly */
        d = (uint64_t)(scaled >> shift);
        rest = scaled - ((u128)d << shift);
        half = (u128)1 << (shift - 1);
        if (rest == half)
            return -1;                          /* a tie: leave it to dtoa */
        if (rest > half)
            d++;                                /* may reach 10**p: still right below */
        /* reads back as ax: |d / 10**s - ax| < half an ulp (= 2**-shift / 2),
         * or equal to it with m even (round half to even) */
        a = (u128)d << (shift + 1);
        b = scaled << 1;
        diff = a > b ? a - b : b - a;
        if (diff < pow10_table[s] || (diff == pow10_table[s] && !(m & 1))) {
            digits = d;
            break;
        }
    }
    if (digits == 0)
        return -1;                              /* 17 digits always read back; be safe */
    while (digits % 10 == 0 && s > 0) {
        digits /= 10;
        s--;
    }
    if (s <= 0)
        return -1;                              /* an integer: not this path */
    for (k = 0; digits; k++) {
        buffer[k] = (char)('0' + digits % 10);  /* last digit first */
        digits /= 10;
    }
    if (x < 0)
        out[length++] = '-';
    if (k > s) {
        for (i = k - 1; i >= s; i--)
            out[length++] = buffer[i];
        out[length++] = '.';
        for (i = s - 1; i >= 0; i--)
            out[length++] = buffer[i];
    }
    else {
        out[length++] = '0';
        out[length++] = '.';
        for (i = 0; i < s - k; i++)
            out[length++] = '0';
        for (i = k - 1; i >= 0; i--)
            out[length++] = buffer[i];
    }
    return length;
}

static PyObject *
float_text(PyObject *module, PyObject *value)
{
    char out[32];
    int n;
    if (!PyFloat_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "float_text() takes a float");
        return NULL;
    }
    n = fast_float_repr(PyFloat_AS_DOUBLE(value), out);
    if (n < 0)
        Py_RETURN_NONE;
    return PyUnicode_FromStringAndSize(out, n);
}

/* -- the text of ints, without long_to_decimal_string ---------------------- */

/* Texts of recent ints, direct-mapped by value: programs print the same
 * counters, sizes and results again and again, and a shared text also makes
 * frame_changes' comparison with the last text a pointer check. */
#define INT_TEXTS 1024
static struct { long long value; PyObject *text; } int_texts[INT_TEXTS];

/* repr(v), written backwards to end (at most 20 characters); where it starts. */
static inline char *
put_digits(long long v, char *end)
{
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *p = end;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return p;
}

/* v's place in int_texts. */
static inline size_t
int_text_slot(long long v)
{
    return (size_t)(((unsigned long long)v * 0x9E3779B97F4A7C15ULL) >> 54);
}

/* repr() of an int that fits in a long long: digits written here, or taken
 * from the cache. */
static PyObject *
int_text(long long v)
{
    char digits[24], *end = digits + sizeof(digits), *p;
    size_t slot = int_text_slot(v);
    PyObject *text = int_texts[slot].text;
    if (text != NULL && int_texts[slot].value == v)
        return Py_NewRef(text);
    p = put_digits(v, end);
    text = PyUnicode_New(end - p, 127);
    if (text == NULL)
        return NULL;
    memcpy(PyUnicode_DATA(text), p, (size_t)(end - p));
    Py_XSETREF(int_texts[slot].text, Py_NewRef(text));
    int_texts[slot].value = v;
    return text;
}

/* -- the text of objects with object.__repr__ ------------------------------ */

/* "<module.Name object at 0x...>" depends only on the type's names and the
 * address, and formatting it (PyUnicode_FromFormat) was a quarter of the
 * tracer's time on object-heavy code, where self and loop variables take
 * the same objects again and again.  Texts are kept by address and type,
 * with the type's version tag (set anew when __module__ changes) and
 * qualname object: the type and the qualname are held, so neither address
 * can be reused while an entry names it; an object that died and was
 * replaced at the same address by one of the same type has the same text. */
#define OBJECT_TEXTS 1024
static struct {
    PyObject *address;        /* not held: only compared */
    PyTypeObject *type;       /* held */
    unsigned int version;
    PyObject *qualname;       /* held, or NULL for a static type */
    PyObject *text;           /* held */
} object_texts[OBJECT_TEXTS];

static PyObject *
default_repr_text(PyObject *value)
{
    PyTypeObject *type = Py_TYPE(value);
    PyObject *qualname = type->tp_flags & Py_TPFLAGS_HEAPTYPE
        ? ((PyHeapTypeObject *)type)->ht_qualname : NULL;
    size_t slot = (size_t)(((uintptr_t)value >> 4) * 0x9E3779B97F4A7C15ULL >> 54);
    PyObject *text;
    if (object_texts[slot].address == value && object_texts[slot].type == type
            && object_texts[slot].version == type->tp_version_tag
            && object_texts[slot].qualname == qualname && type->tp_version_tag != 0)
        return Py_NewRef(object_texts[slot].text);
    text = type->tp_repr(value);
    if (text == NULL || type->tp_version_tag == 0)
        return text;
    object_texts[slot].address = value;
    Py_XSETREF(object_texts[slot].type, (PyTypeObject *)Py_NewRef(type));
    object_texts[slot].version = type->tp_version_tag;
    Py_XSETREF(object_texts[slot].qualname, Py_XNewRef(qualname));
    Py_XSETREF(object_texts[slot].text, Py_NewRef(text));
    return text;
}

/* The ASCII characters that repr() of a str escapes, or that make it choose
 * other quotes. */
static const unsigned char not_plain[128] = {
    [0 ... 0x1f] = 1, ['\''] = 1, ['\\'] = 1, [0x7f] = 1,
};

/* repr(s) of a compact ASCII str written to out (room for its length + 2),
 * if it is s in single quotes; its length, or -1. */
static inline Py_ssize_t
plain_str_repr(PyObject *s, char *out)
{
    const unsigned char *p = (const unsigned char *)PyUnicode_DATA(s);
    Py_ssize_t i, n = PyUnicode_GET_LENGTH(s);
    out[0] = '\'';
    for (i = 0; i < n; i++) {
        if (not_plain[p[i]])
            return -1;
        out[i + 1] = (char)p[i];
    }
    out[n + 1] = '\'';
    return n + 2;
}

/* atomic_text of a value whose repr() is *text* (NULL: it failed). */
static inline PyObject *
repr_text(Tracer *t, PyObject *text)
{
    if (text == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError))
            PyErr_Clear();  /* an int too long to print: Capture.text has words for it */
        return NULL;
    }
    if (PyUnicode_GET_LENGTH(text) > t->max_repr) {
        Py_DECREF(text);
        return NULL;
    }
    return text;
}

/* Capture.text of a value whose text is plain repr() there (an exact int,
 * float, bool, None, a str of at most max_repr characters, an object with
 * object.__repr__) and fits in max_repr; NULL, with no exception, for
 * anything else: Capture.text decides. */
static PyObject *
atomic_text_slow(Tracer *t, PyObject *value)
{
    PyObject *text;
    if (!(PyLong_CheckExact(value) || PyFloat_CheckExact(value) || PyBool_Check(value)
          || value == Py_None
          || (PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) <= t->max_repr)
          || has_default_repr(value)))
        return NULL;
    if (PyLong_CheckExact(value)) {
        long long v;
        if (long_long_value(value, &v)) {
            text = int_text(v);
            if (text != NULL && PyUnicode_GET_LENGTH(text) > t->max_repr)
                Py_CLEAR(text);  /* a tiny --max-repr: Capture.text cuts it */
            return text;
        }
        /* a bigger int: int.__repr__ below */
    }
    if (PyFloat_CheckExact(value)) {
        char out[32];
        int n = fast_float_repr(PyFloat_AS_DOUBLE(value), out);
        if (n > t->max_repr)
            return NULL;  /* a short --max-repr: Capture.text cuts it */
        if (n >= 0)
            return PyUnicode_FromStringAndSize(out, n);
    }
    if (PyUnicode_CheckExact(value) && PyUnicode_IS_COMPACT_ASCII(value)) {
        /* most str: their repr made here, without unicode_repr's two passes */
        text = PyUnicode_New(PyUnicode_GET_LENGTH(value) + 2, 127);
        if (text == NULL)
            return NULL;
        if (plain_str_repr(value, PyUnicode_DATA(text)) < 0)
            Py_CLEAR(text);
    }
    else
        text = NULL;
    /* tp_repr itself: PyObject_Repr would run pending signal handlers here */
    if (text == NULL)
        text = has_default_repr(value) ? default_repr_text(value)
            : Py_TYPE(value)->tp_repr(value);
    return repr_text(t, text);
}

/* The texts of None, False and True, once made: repr(None) makes a new str
 * each time (3.11), and a shared text is equal to the last one at a glance. */
static PyObject *constant_texts[3];

/* atomic_text_slow's answer, with the commonest cases inline: a small int
 * whose text int_texts holds (the text int_text gives), the constants, and
 * objects with object.__repr__ (no exact int, float or str has that). */
static inline __attribute__((always_inline)) PyObject *
atomic_text(Tracer *t, PyObject *value)
{
    PyObject *text;
    long long v;
    if (PyLong_CheckExact(value) && small_int(value, &v)) {
        size_t slot = int_text_slot(v);
        text = int_texts[slot].text;
        if (text != NULL && int_texts[slot].value == v
                && PyUnicode_GET_LENGTH(text) <= t->max_repr)
            return Py_NewRef(text);
    }
    else if (value == Py_None || value == Py_False || value == Py_True) {
        int k = value == Py_None ? 0 : value == Py_False ? 1 : 2;
        text = constant_texts[k];
        if (text != NULL && PyUnicode_GET_LENGTH(text) <= t->max_repr)
            return Py_NewRef(text);
        text = atomic_text_slow(t, value);
        if (text != NULL && constant_texts[k] == NULL)
            constant_texts[k] = Py_NewRef(text);
        return text;
    }
    else if (has_default_repr(value))
        return repr_text(t, default_repr_text(value));
    return atomic_text_slow(t, value);
}

/* The version tag of an exact dict with a combined table, which CPython
 * changes at every change of the dict (3.11 to 3.13: deprecated since 3.12,
 * but still kept); 0 for anything else.  While a dict local keeps the tag
 * its text and mark were last checked with, it has not changed.  A split
 * table (an object's __dict__) is left out: 3.13 stores attributes into it
 * without a new tag. */
static inline uint64_t
dict_version(PyObject *value)
{
    if (!PyDict_CheckExact(value) || ((PyDictObject *)value)->ma_values != NULL)
        return 0;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return ((PyDictObject *)value)->ma_version_tag;
#pragma GCC diagnostic pop
}

/* True if the list or dict *value* still has the length and the very same
 * leading elements as its *mark* (capture._same_mark); false means "ask
 * Capture.update", which decides for every other case. */
static int
same_mark(PyObject *value, PyObject *mark)
{
    PyObject *keys, *values, *key, *item;
    Py_ssize_t count, n, i, pos = 0;
    if (mark == NULL || !PyTuple_CheckExact(mark) || PyTuple_GET_SIZE(mark) != 3)
        return 0;
    count = PyLong_AsSsize_t(PyTuple_GET_ITEM(mark, 0));
    if (count == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    keys = PyTuple_GET_ITEM(mark, 1);
    values = PyTuple_GET_ITEM(mark, 2);
    if (!PyList_CheckExact(keys))
        return 0;
    n = PyList_GET_SIZE(keys);
    if (PyList_CheckExact(value)) {
        if (PyList_GET_SIZE(value) != count || n > count)
            return 0;
        for (i = 0; i < n; i++)
            if (PyList_GET_ITEM(value, i) != PyList_GET_ITEM(keys, i))
                return 0;
        return 1;
    }
    if (!PyDict_CheckExact(value) || PyDict_GET_SIZE(value) != count || n > count
            || !PyList_CheckExact(values) || PyList_GET_SIZE(values) != n)
        return 0;
    for (i = 0; i < n && PyDict_Next(value, &pos, &key, &item); i++)
        if (key != PyList_GET_ITEM(keys, i) || item != PyList_GET_ITEM(values, i))
            return 0;
    return i == n;
}

/* An element type Capture._atomic_head takes (capture._ATOMIC: exact types). */
static int
is_atomic(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    return tp == &PyLong_Type || tp == &PyUnicode_Type || tp == &PyFloat_Type
        || tp == &PyBool_Type || o == Py_None || tp == &PyBytes_Type || tp == &PyComplex_Type;
}

/* __sizeof__ of the atomic types, called without making a bound method:
 * sys.getsizeof of an object the collector does not track (these) is its
 * __sizeof__(). */
static PyCFunction atomic_sizeof[7];
static PyTypeObject *atomic_types[7];

static int
init_sizeof(void)
{
    int i;
    atomic_types[0] = &PyLong_Type; atomic_types[1] = &PyUnicode_Type;
    atomic_types[2] = &PyFloat_Type; atomic_types[3] = &PyBool_Type;
    atomic_types[4] = Py_TYPE(Py_None); atomic_types[5] = &PyBytes_Type;
    atomic_types[6] = &PyComplex_Type;
    for (i = 0; i < 7; i++) {
        PyObject *descr = PyObject_GetAttrString((PyObject *)atomic_types[i], "__sizeof__");
        if (descr == NULL)
            return -1;
        if (Py_IS_TYPE(descr, &PyMethodDescr_Type)
                && ((PyMethodDescrObject *)descr)->d_method->ml_flags == METH_NOARGS)
            atomic_sizeof[i] = ((PyMethodDescrObject *)descr)->d_method->ml_meth;
        Py_DECREF(descr);
    }
    return 0;
}

/* sys.getsizeof(o) for an atomic value (none is tracked by the collector, so
 * it is o.__sizeof__()); (size_t)-1 on error. */
static size_t
sizeof_atomic(PyObject *o)
{
    PyObject *r = NULL;
    Py_ssize_t size;
    int i;
    for (i = 0; i < 7; i++)
        if (Py_TYPE(o) == atomic_types[i] && atomic_sizeof[i] != NULL) {
            r = atomic_sizeof[i](o, NULL);
            break;
        }
    if (i == 7)
        r = PyObject_CallMethod(o, "__sizeof__", NULL);
    if (r == NULL)
        return (size_t)-1;
    size = PyLong_AsSsize_t(r);
    Py_DECREF(r);
    return (size_t)size;
}

/* The first *take* items of a list, tuple or dict (a new list, tuple or dict). */
static PyObject *
head_of(PyObject *value, Py_ssize_t take)
{
    PyObject *head, *key, *item;
    Py_ssize_t pos = 0, i = 0;
    if (PyList_CheckExact(value))
        return PyList_GetSlice(value, 0, take);
    if (PyTuple_CheckExact(value))
        return PyTuple_GetSlice(value, 0, take);
    if ((head = PyDict_New()) == NULL)
        return NULL;
    while (i++ < take && PyDict_Next(value, &pos, &key, &item))
        if (PyDict_SetItem(head, key, item) < 0) {
            Py_DECREF(head);
            return NULL;
        }
    return head;
}

/* container_text by Capture._atomic_head's own steps: a head object, its
 * repr(), then text()'s cut at max_repr. */
static PyObject *
head_repr_text(Tracer *t, PyObject *value, int is_dict, Py_ssize_t count, Py_ssize_t *shown)
{
    Py_ssize_t take = 16, n = 0, len = 0, i, pos;
    PyObject *head = NULL, *text = NULL, *key, *item, *marker, *cut;
    while (1) {
        size_t size = 0;
        head = count <= take ? Py_NewRef(value) : head_of(value, take);
        if (head == NULL)
            goto fail;
        if (is_dict) {
            n = PyDict_GET_SIZE(head);
            pos = 0;
            while (PyDict_Next(head, &pos, &key, &item)) {
                if (!is_atomic(key) || !is_atomic(item))
                    goto not_ours;
                size += sizeof_atomic(key) + sizeof_atomic(item);
            }
        }
        else {
            n = Py_SIZE(head);
            for (i = 0; i < n; i++) {
                item = PySequence_Fast_ITEMS(head)[i];
                if (!is_atomic(item))
                    goto not_ours;
                size += sizeof_atomic(item);
            }
        }
        if (PyErr_Occurred())
            goto fail;
        if (size > (size_t)(128 * n + 4 * t->max_repr))  /* a huge string or int inside */
            goto not_ours;
        Py_XSETREF(text, Py_TYPE(head)->tp_repr(head));
        if (text == NULL) {
            if (PyErr_ExceptionMatches(PyExc_ValueError))
                goto not_ours;  /* an int with more digits than Python will print */
            goto fail;
        }
        len = PyUnicode_GET_LENGTH(text);
        if (len >= t->max_repr || count <= take || take > 16)
            break;
        take = (Py_ssize_t)((double)(t->max_repr * take) / (double)(len > 1 ? len : 1)) + 2;
        Py_CLEAR(head);
    }
    Py_DECREF(head);
    *shown = n;
    if (count > n || len > t->max_repr) {
        Py_UCS4 last = PyUnicode_READ_CHAR(text, len - 1);
        Py_ssize_t keep;
        marker = PyUnicode_FromFormat("... (%zd items)%c", count, (int)last);
        if (marker == NULL)
            goto fail_text;
        keep = t->max_repr - PyUnicode_GET_LENGTH(marker);
        cut = PyUnicode_Substring(text, 0, keep > 1 ? keep : 1);
        Py_SETREF(text, cut);
        if (text != NULL)
            Py_SETREF(text, PyUnicode_Concat(text, marker));
        Py_DECREF(marker);
        if (text == NULL)
            return NULL;
    }
    if (PyUnicode_GET_LENGTH(text) > t->max_repr) {
        cut = PyUnicode_Substring(text, 0, t->max_repr - 3);
        Py_SETREF(text, cut);
        if (text != NULL)
            Py_SETREF(text, PyUnicode_Concat(text, str_dots));
    }
    return text;
not_ours:
    PyErr_Clear();
    Py_XDECREF(head);
    Py_XDECREF(text);
    return NULL;
fail:
    Py_XDECREF(head);
fail_text:
    Py_XDECREF(text);
    return NULL;
}

/* -- the same text, written in C ------------------------------------------
 *
 * A head object and its repr() cost tens of thousands of instructions per
 * text, on programs whose locals are growing lists and dicts.  The head's
 * elements are written here straight into a char buffer instead, without the
 * head, and writing stops once the text is past max_repr: from then on only
 * the element count and the closing bracket show. */

/* The head's text as it is written: its first cap characters are kept, len
 * counts them all. */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
} HeadText;

/* (The first branch's memcpy is a plain store where n is a constant.) */
static inline void
head_put(HeadText *h, const char *s, Py_ssize_t n)
{
    if (h->len + n <= h->cap)
        memcpy(h->data + h->len, s, (size_t)n);
    else if (h->len < h->cap)
        memcpy(h->data + h->len, s, (size_t)(h->cap - h->len));
    h->len += n;
}

/* One element (a key or a value) of the head: is_atomic's check, its size
 * added to *size, its repr appended to h unless h is past its cap already
 * (but a big int's repr is still made: it may refuse, as the head's would).
 * The common values are sized without calling __sizeof__, ints and floats
 * and constants by an upper bound (40): only a sum over the limit needs the
 * real sizes (written_text).  0; 1 if the head is not ours (not atomic, an
 * int too long to print); 2 if the repr is not ASCII; -1 with an exception. */
static int
put_element(HeadText *h, PyObject *o, size_t *size)
{
    PyTypeObject *tp = Py_TYPE(o);
    char digits[32];
    size_t bytes;
    PyObject *r;
    Py_ssize_t n;
    if (tp == &PyUnicode_Type) {
        if (!PyUnicode_IS_COMPACT_ASCII(o)
#if PY_VERSION_HEX < 0x030C0000
                || ((PyASCIIObject *)o)->wstr != NULL  /* its wchar_t copy counts too */
#endif
                )
            goto sized;
        n = PyUnicode_GET_LENGTH(o);
        *size += sizeof(PyASCIIObject) + (size_t)n + 1;  /* exact */
        if (h->len >= h->cap)
            return 0;
        if (h->len + n + 2 <= h->cap) {  /* written in place */
            if ((n = plain_str_repr(o, h->data + h->len)) < 0)
                goto repr;
            h->len += n;
            return 0;
        }
        goto repr;
    }
    if (tp == &PyLong_Type) {
        long long v;
        if (!long_long_value(o, &v))
            goto sized;
        *size += 40;  /* at most three 30-bit digits: 36 bytes */
        if (h->len < h->cap) {
            char *p = put_digits(v, digits + sizeof(digits));
            head_put(h, p, digits + sizeof(digits) - p);
        }
        return 0;
    }
    if (tp == &PyFloat_Type) {
        *size += 40;  /* 24 */
        if (h->len >= h->cap)
            return 0;
        if ((n = fast_float_repr(PyFloat_AS_DOUBLE(o), digits)) < 0)
            goto repr;
        head_put(h, digits, n);
        return 0;
    }
    if (o == Py_None || o == Py_True || o == Py_False) {
        *size += 40;  /* 16, 28 */
        if (o == Py_None)
            head_put(h, "None", 4);
        else
            head_put(h, o == Py_True ? "True" : "False", o == Py_True ? 4 : 5);
        return 0;
    }
    if (!is_atomic(o))
        return 1;
sized:
    if ((bytes = sizeof_atomic(o)) == (size_t)-1 && PyErr_Occurred())
        return -1;
    *size += bytes;
    if (tp != &PyLong_Type && h->len >= h->cap)
        return 0;
repr:
    if ((r = tp->tp_repr(o)) == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return -1;
        PyErr_Clear();  /* an int with more digits than Python will print */
        return 1;
    }
    if (!PyUnicode_IS_ASCII(r)) {
        Py_DECREF(r);
        return 2;
    }
    if (h->len < h->cap)
        head_put(h, (const char *)PyUnicode_DATA(r), PyUnicode_GET_LENGTH(r));
    Py_DECREF(r);
    return 0;
}

/* sys.getsizeof summed over the first n elements (keys and values) of value. */
static size_t
head_size(PyObject *value, int is_dict, Py_ssize_t n)
{
    PyObject *key, *item;
    Py_ssize_t i, pos = 0;
    size_t size = 0;
    for (i = 0; i < n; i++) {
        if (is_dict) {
            if (!PyDict_Next(value, &pos, &key, &item))
                break;
            size += sizeof_atomic(key) + sizeof_atomic(item);
        }
        else
            size += sizeof_atomic(PySequence_Fast_ITEMS(value)[i]);
    }
    return size;
}

/* head_repr_text's text, written here: 1 with *text set; 0 if the head is
 * not ours; 2 if an element's repr is not ASCII (head_repr_text makes that
 * text); -1 with an exception. */
static int
written_text(Tracer *t, PyObject *value, int is_dict, Py_ssize_t count, Py_ssize_t *shown,
             PyObject **text)
{
    int is_tuple = PyTuple_CheckExact(value), r;
    char opening = is_dict ? '{' : is_tuple ? '(' : '[';
    char closing = is_dict ? '}' : is_tuple ? ')' : ']';
    Py_ssize_t max_repr = t->max_repr, take = 16, n = 0, pos = 0, len, end;
    size_t size = 0;
    HeadText h;
    if (reserve(&t->chars, max_repr + 64) < 0)  /* the text, then room for the marker */
        return -1;
    h.data = t->chars.data;
    h.cap = max_repr + 1;
    h.len = 0;
    head_put(&h, &opening, 1);
    while (1) {
        /* the head grows from n to end elements; its text goes on */
        for (end = count < take ? count : take; n < end; n++) {
            if (n)
                head_put(&h, ", ", 2);
            if (is_dict) {
                PyObject *key, *item;
                if (!PyDict_Next(value, &pos, &key, &item))
                    return 0;  /* cannot happen: no code of the program runs here */
                r = put_element(&h, key, &size);
                if (r == 0) {
                    head_put(&h, ": ", 2);
                    r = put_element(&h, item, &size);
                }
            }
            else
                r = put_element(&h, PySequence_Fast_ITEMS(value)[n], &size);
            if (r == 1)
                return 0;
            if (r != 0)
                return r;
        }
        if (size > (size_t)(128 * n + 4 * max_repr)) {
            size = head_size(value, is_dict, n);
            if (PyErr_Occurred())
                return -1;
            if (size > (size_t)(128 * n + 4 * max_repr))  /* a huge string or int inside */
                return 0;
        }
        len = h.len + 1 + (is_tuple && n == 1);  /* with the closing bracket */
        if (len >= max_repr || count <= take || take > 16)
            break;
        take = (Py_ssize_t)((double)(max_repr * take) / (double)(len > 1 ? len : 1)) + 2;
    }
    if (is_tuple && n == 1)
        head_put(&h, ",", 1);
    head_put(&h, &closing, 1);
    *shown = n;
    len = h.len;
    if (count > n || len > max_repr) {
        /* the first keep characters, then "... (N items)" and the closing bracket */
        char marker[48], *start = put_digits(count, marker + 24) - 5;
        Py_ssize_t keep, m;
        memcpy(start, "... (", 5);
        memcpy(marker + 24, " items)", 7);
        marker[31] = closing;
        m = marker + 32 - start;
        keep = max_repr - m > 1 ? max_repr - m : 1;
        len = keep < len ? keep : len;
        memcpy(h.data + len, start, (size_t)m);
        len += m;
        if (len > max_repr) {
            memcpy(h.data + max_repr - 3, "...", 3);
            len = max_repr;
        }
    }
    if ((*text = PyUnicode_New(len, 127)) == NULL)
        return -1;
    memcpy(PyUnicode_DATA(*text), h.data, (size_t)len);
    return 1;
}

/* Capture.text of an exact list, tuple or dict whose head is atomic values:
 * Capture._atomic_head, then text()'s cut at max_repr.  Sets *shown* to the
 * elements the text shows.  NULL with no exception for anything else:
 * Capture.text decides. */
static PyObject *
container_text(Tracer *t, PyObject *value, Py_ssize_t *shown)
{
    int is_dict = PyDict_CheckExact(value);
    Py_ssize_t count;
    PyObject *text = NULL;
    if (!(is_dict || PyList_CheckExact(value) || PyTuple_CheckExact(value)))
        return NULL;
    count = is_dict ? PyDict_GET_SIZE(value) : Py_SIZE(value);
    if (t->max_repr < 8)  /* below the --max-repr floor: the marker may not fit */
        return head_repr_text(t, value, is_dict, count, shown);
    switch (written_text(t, value, is_dict, count, shown, &text)) {
    case 2:
        return head_repr_text(t, value, is_dict, count, shown);
    case 1:
        return text;
    default:
        return NULL;
    }
}

/* capture._mark: (length, leading keys or elements, leading values) of a list
 * or dict of atomic values, or None. */
static PyObject *
make_mark(PyObject *value, Py_ssize_t elements)
{
    PyObject *keys, *values = NULL, *key, *item;
    Py_ssize_t i, pos = 0;
    if (PyList_CheckExact(value)) {
        if ((keys = PyList_GetSlice(value, 0, elements)) == NULL)
            return NULL;
        for (i = 0; i < PyList_GET_SIZE(keys); i++)
            if (!is_atomic(PyList_GET_ITEM(keys, i))) {
                Py_DECREF(keys);
                Py_RETURN_NONE;
            }
        return Py_BuildValue("(nNO)", PyList_GET_SIZE(value), keys, Py_None);
    }
    keys = PyList_New(0);
    values = PyList_New(0);
    if (keys == NULL || values == NULL)
        goto fail;
    for (i = 0; i < elements && PyDict_Next(value, &pos, &key, &item); i++) {
        if (!is_atomic(key) || !is_atomic(item)) {
            Py_DECREF(keys);
            Py_DECREF(values);
            Py_RETURN_NONE;
        }
        if (PyList_Append(keys, key) < 0 || PyList_Append(values, item) < 0)
            goto fail;
    }
    return Py_BuildValue("(nNN)", PyDict_GET_SIZE(value), keys, values);
fail:
    Py_XDECREF(keys);
    Py_XDECREF(values);
    return NULL;
}

/* Set or remove d[key]: value NULL removes (a missing key is fine). */
static int
dict_put(PyObject *d, PyObject *key, PyObject *value)
{
    if (value != NULL)
        return PyDict_SetItem(d, key, value);
    if (PyDict_DelItem(d, key) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError))
            return -1;
        PyErr_Clear();
    }
    return 0;
}

/* Add name: text (text NULL: nil, a deleted name) to the changes in t->scratch. */
static int
add_change(Tracer *t, PyObject *name, PyObject *text, Py_ssize_t *count)
{
    (*count)++;
    if (pack_value(&t->scratch, name) < 0)
        return -1;
    if (text != NULL)
        return pack_value(&t->scratch, text);
    if (reserve(&t->scratch, 1) < 0)
        return -1;
    PUT(&t->scratch, 0xc0);
    return 0;
}

/* -- deep marks: nested containers whose text cannot have changed -----------
 *
 * Capture.text of a list of lists (or any nesting of lists, tuples, dicts,
 * sets) comes from Python, and so would every line's check that a local
 * still bound to it kept its text: a loop over a matrix in the frame that
 * holds it would pay that at every line.  A deep mark is what that text was
 * made of: the objects Capture._walk visits, in its order, as far as any text
 * of max_repr characters reaches (each element shown takes at least one of
 * its characters) and no deeper than max_depth; for each, its address and
 * what its text depends on: a container's type and length (its elements
 * follow), an int's, float's, str's or bytes' hash, the class of an object
 * with object.__repr__ (whose text is its class and address).  The same
 * walk meeting the same means the same text.  Anything else (an object with
 * a repr of its own) makes the value unmarkable.  A mark holds no reference:
 * the program's objects die when it lets go of them, as without us. */

typedef struct {
    uintptr_t *words;        /* per visited object: address, then what its text depends on */
    Py_ssize_t nwords, cap, budget;
    PyObject *active[16];    /* the containers being walked: Capture's cycle check */
    int nactive;
} DeepWalk;

static int
deep_put(DeepWalk *w, PyObject *value, uintptr_t what)
{
    if (w->nwords + 2 > w->cap)
        return 0;
    w->words[w->nwords++] = (uintptr_t)value;
    w->words[w->nwords++] = what;
    return 1;
}

static int
deep_visit(DeepWalk *w, PyObject *value, Py_ssize_t depth)
{
    PyTypeObject *tp = Py_TYPE(value);
    Py_ssize_t n, i, pos = 0;
    PyObject *key, *item;
    Py_hash_t hash;
    int k, result = 1;
    if (w->budget-- <= 0)
        return 1;  /* beyond what the text can show */
    if (tp == &PyLong_Type || tp == &PyFloat_Type || tp == &PyUnicode_Type
            || tp == &PyBytes_Type) {
        hash = PyObject_Hash(value);  /* cached, or computed without running code */
        return hash == -1 ? (PyErr_Clear(), 0) : deep_put(w, value, (uintptr_t)hash);
    }
    if (tp == &PyBool_Type || value == Py_None || has_default_repr(value))
        return deep_put(w, value, (uintptr_t)tp);
    if (tp == &PyDict_Type)
        n = PyDict_GET_SIZE(value);
    else if (tp == &PySet_Type || tp == &PyFrozenSet_Type)
        n = PySet_GET_SIZE(value);
    else if (tp == &PyList_Type || tp == &PyTuple_Type)
        n = Py_SIZE(value);
    else
        return 0;
    if (!deep_put(w, value, (uintptr_t)n))
        return 0;
    if (n == 0 || depth <= 0)
        return 1;  /* "[]", or "[...]" at the depth limit */
    for (k = 0; k < w->nactive; k++)
        if (w->active[k] == value)
            return 1;  /* "[...]": itself, inside itself */
    if (w->nactive == (int)(sizeof(w->active) / sizeof(w->active[0])))
        return 0;
    w->active[w->nactive++] = value;
    if (tp == &PyList_Type || tp == &PyTuple_Type) {
        PyObject **items = tp == &PyList_Type ? ((PyListObject *)value)->ob_item
                                              : ((PyTupleObject *)value)->ob_item;
        for (i = 0; i < n && w->budget > 0 && result == 1; i++)
            result = deep_visit(w, items[i], depth - 1);
    }
    else if (tp == &PyDict_Type) {
        while (w->budget > 0 && result == 1 && PyDict_Next(value, &pos, &key, &item)) {
            result = deep_visit(w, key, depth - 1);
            if (result == 1)
                result = deep_visit(w, item, depth - 1);
        }
    }
    else {
        while (w->budget > 0 && result == 1 && _PySet_NextEntry(value, &pos, &key, &hash))
            result = deep_visit(w, key, depth - 1);
    }
    w->nactive--;
    return result;
}

/* Walk *value* into t->deep_words: 1, 0 if it cannot be marked, -1 if
 * out of memory. */
static int
deep_walk(Tracer *t, PyObject *value, DeepWalk *w)
{
    Py_ssize_t cap = 2 * (t->max_repr + 8);
    if (t->deep_cap < cap) {
        uintptr_t *words = PyMem_Realloc(t->deep_words, cap * sizeof(uintptr_t));
        if (words == NULL)
            return -1;
        t->deep_words = words;
        t->deep_cap = cap;
    }
    w->words = t->deep_words;
    w->nwords = 0;
    w->cap = cap;
    w->budget = t->max_repr + 4;  /* every element shown costs the text one character */
    w->nactive = 0;
    return deep_visit(w, value, t->max_depth);
}

/* The deep mark of *value* (bytes), or None if it cannot be marked. */
static PyObject *
deep_mark(Tracer *t, PyObject *value)
{
    DeepWalk w;
    int ok = deep_walk(t, value, &w);
    if (ok < 0)
        return PyErr_NoMemory();
    if (!ok)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)w.words,
                                     w.nwords * (Py_ssize_t)sizeof(uintptr_t));
}

/* 1 if *value* still matches its deep *mark*, 0 if not, -1 on error. */
static int
deep_same(Tracer *t, PyObject *value, PyObject *mark)
{
    DeepWalk w;
    int ok;
    if (!PyBytes_CheckExact(mark))
        return 0;
    ok = deep_walk(t, value, &w);
    if (ok <= 0)
        return ok < 0 ? (PyErr_NoMemory(), -1) : 0;
    return PyBytes_GET_SIZE(mark) == w.nwords * (Py_ssize_t)sizeof(uintptr_t)
        && memcmp(PyBytes_AS_STRING(mark), w.words, PyBytes_GET_SIZE(mark)) == 0;
}

/* Write the locals that changed since the frame's last event to t->scratch,
 * as msgpack name/text pairs, and their number to *count; -1 on error.  The
 * same changes as Capture.changes(frame.f_locals, ...), without building
 * f_locals.
 *
 * Each fast local's state is kept here (the object and the text last seen)
 * while its values get their text in C; Capture.update is asked about the
 * others, with the local's state copied into the dicts it works on first,
 * and its answer copied back. */
static int
frame_changes(FrameTracer *ft, PyFrameObject *frame, PyCodeObject *code, Py_ssize_t *count)
{
    Tracer *t = ft->tracer;
    _PyInterpreterFrame *iframe;
    const char *kinds;
    PyObject *r;
    Py_ssize_t i, n;

    t->scratch.len = 0;
    *count = 0;
    if (!(code->co_flags & CO_OPTIMIZED) || ft->seen == NULL) {
        PyObject *locals, *key, *value;
        Py_ssize_t pos = 0;
        if (ensure_dicts(ft) < 0 || (locals = PyFrame_GetLocals(frame)) == NULL)
            return -1;
        r = PyObject_CallFunctionObjArgs(t->changes, locals, ft->objs, ft->texts, ft->marks,
                                         NULL);
        Py_DECREF(locals);
        if (r == NULL)
            return -1;
        if (PyDict_Check(r)) {
            while (PyDict_Next(r, &pos, &key, &value)) {
                if (add_change(t, key, value == Py_None ? NULL : value, count) < 0) {
                    Py_DECREF(r);
                    return -1;
                }
            }
        }
        Py_DECREF(r);
        return 0;
    }
    iframe = frame->f_frame;
    kinds = PyBytes_AS_STRING(code->co_localspluskinds);
    n = code->co_nlocalsplus < ft->nseen ? code->co_nlocalsplus : ft->nseen;
    for (i = 0; i < n; i++) {
        int kind = (unsigned char)kinds[i];
        PyObject *value, *old, *name, *text;
        Py_ssize_t shown;
        uint64_t version;
        int stable, atomic;
        if (kind & CO_FAST_HIDDEN)
            continue;
        value = iframe->localsplus[i];
#if PY_VERSION_HEX < 0x030C0000
        /* a frame that has not started (the frame evaluation hook's 'call'):
         * its free variables are still in the function's closure */
        if (value == NULL && (kind & CO_FAST_FREE) && iframe->f_func != NULL
                && iframe->f_func->func_closure != NULL) {
            Py_ssize_t j = i - (code->co_nlocalsplus - code->co_nfreevars);
            if (j >= 0 && j < PyTuple_GET_SIZE(iframe->f_func->func_closure))
                value = PyTuple_GET_ITEM(iframe->f_func->func_closure, j);
        }
#endif
        if (value != NULL && (kind & (CO_FAST_FREE | CO_FAST_CELL)) && PyCell_Check(value))
            value = PyCell_GET(value);
        old = ft->seen[i];
        if (value == NULL) {
            if (old != NULL && old != t->ignored_marker) {
                /* deleted (Capture.deleted) */
                name = PyTuple_GET_ITEM(code->co_localsplusnames, i);
                Py_CLEAR(ft->seen[i]);
                Py_CLEAR(ft->seen_text[i]);
                ft->seen_stable[i] = NULL;
                ft->seen_version[i] = 0;
                if (ft->objs != NULL && (dict_put(ft->objs, name, NULL) < 0
                                         || dict_put(ft->texts, name, NULL) < 0
                                         || dict_put(ft->marks, name, NULL) < 0))
                    return -1;
                if (add_change(t, name, NULL, count) < 0)
                    return -1;
            }
            continue;
        }
        if (old == t->ignored_marker)
            continue;
        if (old == value && Py_TYPE(value) == ft->seen_stable[i])
            continue;
        if (old == value && ft->seen_version[i] != 0
                && ft->seen_version[i] == dict_version(value))
            continue;
        name = PyTuple_GET_ITEM(code->co_localsplusnames, i);
        if (old == value && ft->marks != NULL
                && (PyList_CheckExact(value) || PyDict_CheckExact(value))) {
            PyObject *mark = PyDict_GetItemWithError(ft->marks, name);
            if (mark == NULL && PyErr_Occurred())
                return -1;
            if (same_mark(value, mark)) {
                ft->seen_version[i] = dict_version(value);  /* same mark until it changes */
                continue;
            }
        }
        if (old == value && ft->deep != NULL) {
            PyObject *mark = PyDict_GetItemWithError(ft->deep, name);
            int same = mark != NULL ? deep_same(t, value, mark) : PyErr_Occurred() ? -1 : 0;
            if (same < 0)
                return -1;
            if (same)
                continue;
        }
        /* from here, Capture.update may make the text and the mark */
        ft->seen_version[i] = version = 0;
        Py_INCREF(value);  /* the update may run code that rebinds the local */
        text = old != value ? atomic_text(t, value) : NULL;
        atomic = text != NULL;
        shown = -1;
        if (text == NULL && !PyErr_Occurred()
                && (text = container_text(t, value, &shown)) != NULL
                && !PyTuple_CheckExact(value)) {
            /* Capture.update's change mark for a list or dict */
            PyObject *mark;
            if (ensure_dicts(ft) < 0
                    || (mark = make_mark(value, shown ? shown : t->mark_elements)) == NULL)
                Py_CLEAR(text);
            else {
                if (PyDict_SetItem(ft->marks, name, mark) < 0)
                    Py_CLEAR(text);
                Py_DECREF(mark);
                version = dict_version(value);
            }
        }
        if (text != NULL) {
            /* the same text as last time: not a change (Capture.update) */
            PyObject *last = ft->seen_text[i];
            int differ = 1;
            if (last == text)
                differ = 0;  /* a shared text (int_texts, constants): no comparison */
            else if (last == NULL)
                ;
            else if (PyUnicode_CheckExact(last) && PyUnicode_IS_COMPACT_ASCII(last)
                     && PyUnicode_CheckExact(text) && PyUnicode_IS_COMPACT_ASCII(text))
                /* most texts: equal if they have the same characters */
                differ = PyUnicode_GET_LENGTH(last) != PyUnicode_GET_LENGTH(text)
                    || memcmp(PyUnicode_DATA(last), PyUnicode_DATA(text),
                              (size_t)PyUnicode_GET_LENGTH(text)) != 0;
            else if ((differ = PyUnicode_Compare(last, text)) == -1 && PyErr_Occurred())
                Py_CLEAR(text);
            if (text == NULL)
                ;
            else if (!differ)
                Py_SETREF(text, Py_NewRef(Py_None));
            else
                Py_XSETREF(ft->seen_text[i], Py_NewRef(text));
        }
        else if (PyErr_Occurred())
            text = NULL;
        else if (ensure_dicts(ft) < 0)
            text = NULL;
        else {
            PyObject *args[5] = {name, value, ft->objs, ft->texts, ft->marks};
            if (dict_put(ft->objs, name, old) < 0 || dict_put(ft->texts, name, ft->seen_text[i]) < 0)
                text = NULL;
            else
                text = PyObject_Vectorcall(t->update, args, 5, NULL);
            if (text != NULL) {
                PyObject *now = PyDict_GetItemWithError(ft->texts, name);
                if (now == NULL && PyErr_Occurred())
                    Py_CLEAR(text);
                else
                    Py_XSETREF(ft->seen_text[i], Py_XNewRef(now));
            }
            /* seen[i] holds the value from here; objs, filled again before
             * the next update, must not keep it alive once the local lets go */
            if (text != NULL && dict_put(ft->objs, name, NULL) < 0)
                Py_CLEAR(text);
            if (text != NULL && (PyList_CheckExact(value) || PyTuple_CheckExact(value)
                                 || PyDict_CheckExact(value) || PySet_CheckExact(value)
                                 || PyFrozenSet_CheckExact(value))) {
                /* a nested container, whose text Python made: its deep mark
                 * spares the next lines that call */
                PyObject *mark = deep_mark(t, value);
                if (mark == NULL || (ft->deep == NULL && (ft->deep = PyDict_New()) == NULL)
                        || dict_put(ft->deep, name, mark == Py_None ? NULL : mark) < 0)
                    Py_CLEAR(text);
                Py_XDECREF(mark);
            }
        }
        if (text == NULL) {
            Py_DECREF(value);
            return -1;
        }
        /* What atomic_text takes is stable; a tuple of atomic values (its
         * text came from container_text) cannot change its text either. */
        stable = atomic || PyLong_CheckExact(value) || PyUnicode_CheckExact(value)
            || PyFloat_CheckExact(value) || value == Py_None || PyBool_Check(value)
            || has_default_repr(value) || (shown >= 0 && PyTuple_CheckExact(value)) ? 1
            : PySet_Contains(t->stable, (PyObject *)Py_TYPE(value));
        if (stable < 0) {
            Py_DECREF(value);
            Py_DECREF(text);
            return -1;
        }
        ft->seen_stable[i] = stable ? Py_TYPE(value) : NULL;
        ft->seen_version[i] = version;
        Py_XSETREF(ft->seen[i], value);
        if (text != Py_None) {
            /* add_change(t, name, text, count), inline */
            (*count)++;
            if (pack_value(&t->scratch, name) < 0 || pack_value(&t->scratch, text) < 0) {
                Py_DECREF(text);
                return -1;
            }
        }
        Py_DECREF(text);
    }
    return 0;
}

/* True if every fast local is still the object it was, of a type whose text
 * cannot change: most line events, checked without frame_changes' setup.
 * Anything else (a cell, an ignored name, a list or dict) is for
 * frame_changes to look at. */
static inline int
unchanged(FrameTracer *ft, PyFrameObject *frame, PyCodeObject *code)
{
    PyObject **locals = frame->f_frame->localsplus;
    Py_ssize_t i, n;
    if (!(code->co_flags & CO_OPTIMIZED) || ft->seen == NULL
            || code->co_nlocalsplus != ft->nseen)
        return 0;  /* module and class bodies: frame_changes knows them */
    n = ft->nseen;
    for (i = 0; i < n; i++) {
        PyObject *value = locals[i];
        if (value != ft->seen[i] || (value != NULL && Py_TYPE(value) != ft->seen_stable[i]))
            return 0;
    }
    return 1;
}

/* -- events ---------------------------------------------------------------- */

/* The code object of a frame, borrowed: the frame holds it while it runs. */
static inline PyCodeObject *
frame_code(PyFrameObject *frame)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _PyFrame_GetCode(frame->f_frame);
#else
    return frame->f_frame->f_code;
#endif
}

/* A 'call' event.  Returns a new FrameTracer for the frame, or NULL: with an
 * exception set if one must go into the program, else the frame is not traced. */
static FrameTracer *handle_call_inner(Tracer *t, PyFrameObject *frame);

static FrameTracer *
handle_call(Tracer *t, PyFrameObject *frame)
{
    FrameTracer *ft;
    inside_tracer++;
    t->stamp = take_stamp();
    ft = handle_call_inner(t, frame);
    inside_tracer--;
    return ft;
}

static FrameTracer *
handle_call_inner(Tracer *t, PyFrameObject *frame)
{
    PyCodeObject *code = frame_code(frame);
    CodeInfo *info;
    FrameTracer *ft = NULL;
    PyObject *args, *items[2];
    int resumed = 0, err;

    info = code_info(t, (PyObject *)code);
    if (info == NULL)
        goto error;
    if (info->code_id == Py_None) {
        check_pending(t, frame);
        return NULL;
    }
    if (info->resumable && frame->f_trace != NULL && FrameTracer_Check(frame->f_trace)) {
        /* a generator or coroutine resumed: go on from its last state */
        ft = (FrameTracer *)frame->f_trace;
        Py_INCREF(ft);
        if (ft->tracer != t) {
            Py_INCREF(t);
            Py_SETREF(ft->tracer, t);
        }
        resumed = 1;
    }
    else if ((ft = frame_tracer_new(t, info, code)) == NULL)
        goto error;
    args = Py_None;
    /* --calls-only records arguments, not changed locals: a resumed
     * generator's call has none */
    if (t->trace_locals && !(resumed && t->calls_only)) {
        if (frame_changes(ft, frame, code, &t->nchanges) < 0)
            goto error;
        if (t->nchanges || !resumed)
            args = CHANGES;  /* a new frame's arguments: {} if none */
    }
    if (ft->is_module)
        args = Py_None;
    items[0] = args;
    items[1] = ft->code_id;
    err = emit(t, frame, EV_CALL, items, 2);
    if (err < 0)
        goto error;
    if (t->calls_only)
        frame->f_trace_lines = 0;
    if (check_pending(t, frame) < 0) {
        Py_DECREF(ft);
        return NULL;
    }
    return ft;
error:
    Py_XDECREF(ft);
    our_error(t, frame);
    return NULL;
}

/* Whether the instruction at byte offset *lasti* is a yield. */
static int
at_yield(const unsigned char *ops, Py_ssize_t size, int lasti)
{
    if (lasti < 0 || lasti >= size)
        return 0;
#if PY_VERSION_HEX >= 0x030D0000
    /* 3.13 reports a yield at the RESUME just after its YIELD_VALUE */
    if (lasti >= 2 && ops[lasti] == RESUME && ops[lasti - 2] == YIELD_VALUE)
        return 1;
#endif
    return ops[lasti] == YIELD_VALUE;
}

/* Where a frame is: its last instruction as a byte offset (-1, no
 * instruction run yet, reads the last byte, as Python's code[f_lasti] does),
 * that opcode, and whether it is a yield.  0, or -1 with an exception. */
static int
frame_at(PyCodeObject *code, PyFrameObject *frame, int *lasti, int *op, int *yield)
{
    PyObject *co_code = PyCode_GetCode(code);
    const unsigned char *ops;
    Py_ssize_t size;
    if (co_code == NULL)
        return -1;
    size = PyBytes_GET_SIZE(co_code);
    ops = (const unsigned char *)PyBytes_AS_STRING(co_code);
    *lasti = _PyInterpreterFrame_LASTI(frame->f_frame);
    *lasti = *lasti < 0 ? (int)size - 1 : *lasti * (int)sizeof(_Py_CODEUNIT);
    *op = *lasti >= 0 && *lasti < size ? ops[*lasti] : -1;
    *yield = at_yield(ops, size, *lasti);
    Py_DECREF(co_code);
    return 0;
}

/* How a frame at its 'return' event is left, from its last instruction: 1
 * returns, 2 yields, 0 an exception leaves it; -1 on error.  (A generator
 * left by an exception thrown in at its yield is still at the yield: see
 * handle_local_inner.) */
static int
left_normally(Tracer *t, FrameTracer *ft, PyCodeObject *code, PyFrameObject *frame)
{
    int lasti, op, yield;
    if (frame_at(code, frame, &lasti, &op, &yield) < 0)
        return -1;
    if (yield)
        /* thrown in at this yield and not caught: a with block's cleanup
         * re-raises with the instruction put back */
        return lasti == ft->thrown_at ? 0 : 2;
    return op >= 0 && t->normal_exit[op];
}

/* An 'exception' event: [type name, message], written as the list it is in
 * Python, at *line* (0: the frame's).  0 or -1. */
static int
write_exception(Tracer *t, PyFrameObject *frame, int line, PyObject *qualname,
                PyObject *message)
{
    int err, lineno = frame->f_lineno;
    if (line > 0)
        frame->f_lineno = line;
    if (begin_event(t, EV_EXCEPTION, 5, frame) < 0 || reserve(&t->out->b, 1) < 0)
        err = -1;
    else {
        PUT(&t->out->b, 0x92);
        err = pack_obj(&t->out->b, qualname, 0) < 0 || pack_obj(&t->out->b, message, 0) < 0
            ? -1 : 0;
    }
    frame->f_lineno = lineno;
    if (err < 0) {
        t->out->b.len = t->event_start;
        return -1;
    }
    return end_event(t);
}

/* A 'line', 'return' or 'exception' event of a traced frame.  0 or -1.
 * *exact*: a 'return' event's arg is NULL if and only if an exception leaves
 * the frame (sys.monitoring, the frame evaluation hook, PyEval_SetTrace on
 * 3.11); a trampoline's is None then too. */
static int handle_local_inner(FrameTracer *ft, PyFrameObject *frame, int what,
                              PyObject *arg, int exact);

static int
handle_local(FrameTracer *ft, PyFrameObject *frame, int what, PyObject *arg, int exact)
{
    int result;
    inside_tracer++;
    ft->tracer->stamp = take_stamp();
    result = handle_local_inner(ft, frame, what, arg, exact);
    inside_tracer--;
    return result;
}

static int
handle_local_inner(FrameTracer *ft, PyFrameObject *frame, int what, PyObject *arg, int exact)
{
    Tracer *t = ft->tracer;
    PyCodeObject *code;
    PyObject *items[3], *changed;
    int result = 0, err;

    Py_INCREF(ft);
    Py_INCREF(t);
    code = frame_code(frame);
    if (what == PyTrace_LINE) {
        if (ft->thrown_at >= 0) {
            /* exception handlers lie after the yield: a line at or before
             * it is the frame running on */
            int lasti, op, yield;
            if (frame_at(code, frame, &lasti, &op, &yield) < 0)
                goto error;
            if (lasti <= ft->thrown_at)
                ft->thrown_at = -1;
        }
        if (t->calls_only) {   /* lines are on only to see this (below) */
            if (ft->thrown_at < 0)
                frame->f_trace_lines = 0;
            goto done;
        }
    }
    if (what == PyTrace_LINE || what == PyTrace_RETURN) {
        changed = Py_None;
        t->nchanges = 0;
        if (t->trace_locals && !(what == PyTrace_RETURN && t->calls_only)
                && !unchanged(ft, frame, code)) {
            if (frame_changes(ft, frame, code, &t->nchanges) < 0)
                goto error;
            if (t->nchanges)
                changed = CHANGES;
        }
        if (what == PyTrace_LINE) {
            /* one inline emit per value: with a single one for both, gcc's
             * -Warray-bounds follows None down pack_value's str path */
            if (changed == CHANGES) {
                items[0] = CHANGES;
                err = emit(t, frame, EV_LINE, items, 1);
            }
            else {
                items[0] = Py_None;
                err = emit(t, frame, EV_LINE, items, 1);
            }
        }
        else {
            /* A frame left by an exception: the C hooks say so; through a
             * trampoline, its last instruction is not one it leaves by
             * normally, or it is the yield an exception was thrown in at
             * (thrown_at) and did not get past (recorder._how_left). */
            int normal = exact ? arg != NULL : left_normally(t, ft, code, frame);
            if (normal < 0)
                goto error;
            ft->thrown_at = -1;
            if (!normal && ft->held_type != NULL
                    && write_exception(t, frame, ft->held_line, ft->held_type,
                                       ft->held_message) < 0)
                goto error;
            Py_CLEAR(ft->held_type);
            Py_CLEAR(ft->held_message);
            if (normal) {
                PyObject *value = arg ? arg : Py_None, *text = atomic_text(t, value);
                Py_ssize_t shown;
                if (text == NULL && !PyErr_Occurred())
                    text = container_text(t, value, &shown);
                if (text == NULL && !PyErr_Occurred())
                    text = PyObject_CallOneArg(t->text, value);
                if (text == NULL)
                    goto error;
                items[0] = text;
                items[1] = changed;
                err = emit(t, frame, EV_RETURN, items, 2);
                Py_DECREF(text);
            }
            else {
                items[0] = Py_None;
                items[1] = changed;
                items[2] = Py_True;
                err = emit(t, frame, EV_RETURN, items, 3);
            }
        }
        if (err < 0)
            goto error;
    }
    else if (what == PyTrace_EXCEPTION) {
        PyObject *qualname, *message;
        if (arg == NULL || !PyTuple_Check(arg) || PyTuple_GET_SIZE(arg) < 2) {
            PyErr_SetString(PyExc_TypeError, "unexpected exception event argument");
            goto error;
        }
        if (PyObject_GetOptionalAttr(PyTuple_GET_ITEM(arg, 0), str_qualname, &qualname) < 0)
            goto error;
        if (qualname == NULL)
            qualname = PyUnicode_FromString("?");
        message = PyObject_CallOneArg(t->message, PyTuple_GET_ITEM(arg, 1));
        if (qualname == NULL || message == NULL) {
            Py_XDECREF(qualname);
            Py_XDECREF(message);
            goto error;
        }
        {
            int lasti, op, yield;
            if (frame_at(code, frame, &lasti, &op, &yield) < 0) {
                Py_DECREF(qualname);
                Py_DECREF(message);
                goto error;
            }
            if (yield) {
                ft->thrown_at = lasti;
                /* where the 'return' event cannot tell (below), a line
                 * before the frame ends tells a yield that caught a
                 * thrown exception from one it left */
                if (t->calls_only && !exact)
                    frame->f_trace_lines = 1;
            }
            /* the StopIteration a for loop, yield from or await swallows */
            int consuming = op == FOR_ITER || op == SEND
#if PY_VERSION_HEX >= 0x030C0000
                || op == END_SEND || op == END_FOR
#endif
                ;
            if (t->calls_only && consuming
                    && PyTuple_GET_ITEM(arg, 0) == PyExc_StopIteration) {
                /* a for loop's, yield from's or await's end: never leaves */
                Py_DECREF(qualname);
                Py_DECREF(message);
                goto done;
            }
        }
        if (t->calls_only) {
            /* held: written at the frame's end if an exception ends it */
            Py_XSETREF(ft->held_type, qualname);
            Py_XSETREF(ft->held_message, message);
            ft->held_line = frame_line(t, frame);
        }
        else {
            err = write_exception(t, frame, 0, qualname, message);
            Py_DECREF(qualname);
            Py_DECREF(message);
            if (err < 0)
                goto error;
        }
    }
    goto done;
error:
    result = our_error(t, frame);
done:
    if (result == 0)
        result = check_pending(t, frame);
    Py_DECREF(t);
    Py_DECREF(ft);
    return result;
}

/* A frame's f_trace that is not ours: call it the way sys.settrace's
 * trampoline would. */
static int
call_foreign(PyObject *callback, PyFrameObject *frame, int what, PyObject *arg)
{
    static const char *names[] = {"call", "exception", "line", "return"};
    PyObject *event, *result, *args[3];
    if (what < 0 || what > PyTrace_RETURN)
        return 0;
    event = PyUnicode_InternFromString(names[what]);
    if (event == NULL)
        return -1;
    Py_INCREF(callback);
    args[0] = (PyObject *)frame;
    args[1] = event;
    args[2] = arg ? arg : Py_None;
    result = PyObject_Vectorcall(callback, args, 3, NULL);
    Py_DECREF(callback);
    Py_DECREF(event);
    if (result == NULL) {
        PyEval_SetTrace(NULL, NULL);
        Py_CLEAR(frame->f_trace);
        return -1;
    }
    if (result != Py_None)
        Py_XSETREF(frame->f_trace, result);
    else
        Py_DECREF(result);
    return 0;
}

/* Whether a trace function's 'return' event has arg NULL exactly when an
 * exception leaves the frame: on 3.11; from 3.12 sys.settrace's shim passes
 * None then too. */
#define TRACE_EXACT (PY_VERSION_HEX < 0x030C0000)

/* The function CPython calls for every event of this thread. */
static int
trace_func(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    PyObject *local;
    if (what == PyTrace_CALL) {
        FrameTracer *ft = handle_call((Tracer *)obj, frame);
        if (ft == NULL)
            return PyErr_Occurred() ? -1 : 0;
        Py_XSETREF(frame->f_trace, (PyObject *)ft);
        return 0;
    }
    local = frame->f_trace;
    if (local == NULL)
        return 0;
    if (FrameTracer_Check(local))
        return handle_local((FrameTracer *)local, frame, what, arg, TRACE_EXACT);
    return call_foreign(local, frame, what, arg);
}

static int
event_code(PyObject *event)
{
    if (PyUnicode_CompareWithASCIIString(event, "line") == 0)
        return PyTrace_LINE;
    if (PyUnicode_CompareWithASCIIString(event, "call") == 0)
        return PyTrace_CALL;
    if (PyUnicode_CompareWithASCIIString(event, "return") == 0)
        return PyTrace_RETURN;
    if (PyUnicode_CompareWithASCIIString(event, "exception") == 0)
        return PyTrace_EXCEPTION;
    return -1;
}

/* -- Tracer ------------------------------------------------------------------ */

static int
Tracer_init(Tracer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {
        "thread_no", "buffer", "limit", "wait_for_room", "codes", "register_code",
        "update", "deleted", "changes", "text", "message", "stable", "trace_locals",
        "calls_only", "pending", "raise_pending", "interrupted", "internal_error", "module_codes",
        "resumable", "ignored", "ignored_marker", "normal_exits", "max_repr", "max_depth",
        NULL};
    PyObject *thread_no, *buffer, *wait_for_room, *codes, *register_code, *update,
        *deleted, *changes, *text, *message, *stable, *pending, *raise_pending,
        *interrupted, *internal_error, *module_codes, *resumable, *ignored,
        *ignored_marker, *normal_exits, *iter, *item;
    Py_ssize_t limit, max_repr, max_depth = 4;
    int trace_locals, calls_only;

    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "OO!nOO!OOOOOOO!ppO!OOOO!O!O!OOn|n:Tracer", kwlist,
            &thread_no, &EventBufferType, &buffer, &limit, &wait_for_room, &PyDict_Type, &codes,
            &register_code, &update, &deleted, &changes, &text, &message, &PySet_Type,
            &stable, &trace_locals, &calls_only, &PyList_Type, &pending, &raise_pending, &interrupted,
            &internal_error, &PySet_Type, &module_codes, &PySet_Type, &resumable,
            &PyDict_Type, &ignored, &ignored_marker, &normal_exits, &max_repr, &max_depth))
        return -1;
#define KEEP(field) Py_INCREF(field); Py_XSETREF(self->field, field)
    KEEP(thread_no); KEEP(wait_for_room); KEEP(codes); KEEP(register_code);
    KEEP(update); KEEP(deleted); KEEP(changes); KEEP(text); KEEP(message); KEEP(stable);
    KEEP(pending); KEEP(raise_pending); KEEP(interrupted); KEEP(internal_error);
    KEEP(module_codes); KEEP(resumable); KEEP(ignored); KEEP(ignored_marker);
#undef KEEP
    self->thread_no_c = PyLong_AsLongLong(thread_no);
    if (self->thread_no_c == -1 && PyErr_Occurred())
        return -1;
    Py_INCREF(buffer);
    Py_XSETREF(self->out, (EventBuffer *)buffer);
    self->limit = limit;
    self->max_repr = max_repr;
    self->max_depth = max_depth;
    self->mark_elements = max_repr / 3 + 2;
    self->trace_locals = trace_locals;
    self->calls_only = calls_only;
    memset(self->normal_exit, 0, sizeof(self->normal_exit));
    iter = PyObject_GetIter(normal_exits);
    if (iter == NULL)
        return -1;
    while ((item = PyIter_Next(iter)) != NULL) {
        long op = PyLong_AsLong(item);
        Py_DECREF(item);
        if (op >= 0 && op < 256)
            self->normal_exit[op] = 1;
        else if (PyErr_Occurred())
            break;
    }
    Py_DECREF(iter);
    return PyErr_Occurred() ? -1 : 0;
}

static void
table_clear(Tracer *self)
{
    Py_ssize_t i;
    for (i = 0; i < self->table_size; i++) {
        Py_CLEAR(self->table[i].code);
        Py_CLEAR(self->table[i].code_id);
        Py_CLEAR(self->table[i].ignored);
        PyMem_Free(self->table[i].lines);
    }
    PyMem_Free(self->table);
    self->table = NULL;
    self->table_size = self->table_used = 0;
}

static int
Tracer_traverse(Tracer *self, visitproc visit, void *arg)
{
    Py_ssize_t i;
    Py_VISIT(self->thread_no); Py_VISIT(self->out); Py_VISIT(self->wait_for_room);
    Py_VISIT(self->codes); Py_VISIT(self->register_code); Py_VISIT(self->update);
    Py_VISIT(self->deleted); Py_VISIT(self->changes); Py_VISIT(self->text);
    Py_VISIT(self->message); Py_VISIT(self->stable); Py_VISIT(self->pending);
    Py_VISIT(self->raise_pending); Py_VISIT(self->interrupted);
    Py_VISIT(self->internal_error); Py_VISIT(self->module_codes); Py_VISIT(self->resumable);
    Py_VISIT(self->ignored); Py_VISIT(self->ignored_marker);
    for (i = 0; i < self->table_size; i++) {
        Py_VISIT(self->table[i].code);
        Py_VISIT(self->table[i].code_id);
        Py_VISIT(self->table[i].ignored);
    }
    return 0;
}

static int
Tracer_clear(Tracer *self)
{
    Py_CLEAR(self->thread_no); Py_CLEAR(self->out); Py_CLEAR(self->wait_for_room);
    Py_CLEAR(self->codes); Py_CLEAR(self->register_code); Py_CLEAR(self->update);
    Py_CLEAR(self->deleted); Py_CLEAR(self->changes); Py_CLEAR(self->text);
    Py_CLEAR(self->message); Py_CLEAR(self->stable); Py_CLEAR(self->pending);
    Py_CLEAR(self->raise_pending); Py_CLEAR(self->interrupted);
    Py_CLEAR(self->internal_error); Py_CLEAR(self->module_codes); Py_CLEAR(self->resumable);
    Py_CLEAR(self->ignored); Py_CLEAR(self->ignored_marker);
    table_clear(self);
    return 0;
}

static void
Tracer_dealloc(Tracer *self)
{
    PyObject_GC_UnTrack(self);
    Tracer_clear(self);
    PyMem_Free(self->scratch.data);
    PyMem_Free(self->deep_words);
    PyMem_Free(self->chars.data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
tracer_ready(Tracer *self)
{
    if (self->out == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Tracer is not initialised");
        return 0;
    }
    return 1;
}

/* Whether *tracer*, given to *function*, is a Tracer ready to install. */
static int
tracer_argument(PyObject *tracer, const char *function)
{
    if (!PyObject_TypeCheck(tracer, &TracerType)) {
        PyErr_Format(PyExc_TypeError, "%s() takes a Tracer or None", function);
        return 0;
    }
    return tracer_ready((Tracer *)tracer);
}

/* tracer(frame, event, arg): recorder.py's trace_call, for a trampoline. */
static PyObject *
Tracer_call(Tracer *self, PyObject *args, PyObject *kwds)
{
    PyObject *frame, *event, *arg;
    int what;
    FrameTracer *ft;
    if (!PyArg_ParseTuple(args, "O!UO:Tracer", &PyFrame_Type, &frame, &event, &arg))
        return NULL;
    if (!tracer_ready(self))
        return NULL;
    what = event_code(event);
    if (what != PyTrace_CALL) {
        /* not a frame we were asked about: the frame's own f_trace decides */
        PyObject *local = ((PyFrameObject *)frame)->f_trace;
        if (local != NULL && FrameTracer_Check(local)) {
            if (handle_local((FrameTracer *)local, (PyFrameObject *)frame, what, arg, 0) < 0)
                return NULL;
            return Py_NewRef(local);
        }
        Py_RETURN_NONE;
    }
    ft = handle_call(self, (PyFrameObject *)frame);
    if (ft == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    return (PyObject *)ft;
}

static PyTypeObject TracerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "smiley_like.tracer._ctracer.Tracer",
    .tp_doc = "One thread's trace function (recorder.py's trace_call, compiled).",
    .tp_basicsize = sizeof(Tracer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Tracer_init,
    .tp_dealloc = (destructor)Tracer_dealloc,
    .tp_traverse = (traverseproc)Tracer_traverse,
    .tp_clear = (inquiry)Tracer_clear,
    .tp_call = (ternaryfunc)Tracer_call,
};

/* -- FrameTracer ------------------------------------------------------------- */

static int
FrameTracer_traverse(FrameTracer *self, visitproc visit, void *arg)
{
    Py_ssize_t i;
    Py_VISIT(self->tracer); Py_VISIT(self->code_id);
    Py_VISIT(self->objs); Py_VISIT(self->texts); Py_VISIT(self->marks);
    Py_VISIT(self->deep); Py_VISIT(self->ignored);
    Py_VISIT(self->held_type); Py_VISIT(self->held_message);
    for (i = 0; i < self->nseen; i++) {
        Py_VISIT(self->seen[i]);
        Py_VISIT(self->seen_text[i]);
    }
    return 0;
}

static int
FrameTracer_clear(FrameTracer *self)
{
    Py_ssize_t i;
    Py_CLEAR(self->tracer); Py_CLEAR(self->code_id);
    Py_CLEAR(self->objs); Py_CLEAR(self->texts); Py_CLEAR(self->marks);
    Py_CLEAR(self->deep); Py_CLEAR(self->ignored);
    Py_CLEAR(self->held_type); Py_CLEAR(self->held_message);
    for (i = 0; i < self->nseen; i++) {
        Py_CLEAR(self->seen[i]);
        Py_CLEAR(self->seen_text[i]);
    }
    self->nseen = 0;
    return 0;
}

static void
FrameTracer_dealloc(FrameTracer *self)
{
    PyObject_GC_UnTrack(self);
    FrameTracer_clear(self);
    if (spare_count < SPARE_FRAME_TRACERS) {
        spare_frame_tracers[spare_count++] = self;
        return;
    }
    PyMem_Free(self->block);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static inline int monitoring_here(void);

/* frame_tracer(frame, event, arg): recorder.py's trace_local, for a trampoline. */
static PyObject *
FrameTracer_call(FrameTracer *self, PyObject *args, PyObject *kwds)
{
    PyObject *frame, *event, *arg;
    int what;
    if (!PyArg_ParseTuple(args, "O!UO:FrameTracer", &PyFrame_Type, &frame, &event, &arg))
        return NULL;
    if (self->tracer == NULL)
        Py_RETURN_NONE;
    if (monitoring_here())  /* recorded through sys.monitoring already */
        return Py_NewRef(self);
    what = event_code(event);
    if (what >= 0 && what != PyTrace_CALL
            && handle_local(self, (PyFrameObject *)frame, what, arg, 0) < 0)
        return NULL;
    return Py_NewRef(self);
}

static PyTypeObject FrameTracerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "smiley_like.tracer._ctracer.FrameTracer",
    .tp_doc = "One traced frame's trace function and locals state.",
    .tp_basicsize = sizeof(FrameTracer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)FrameTracer_dealloc,
    .tp_traverse = (traverseproc)FrameTracer_traverse,
    .tp_clear = (inquiry)FrameTracer_clear,
    .tp_call = (ternaryfunc)FrameTracer_call,
};

/* -- sys.monitoring (Python 3.12 and later) -----------------------------------
 *
 * From 3.12, sys.settrace is itself a shim over sys.monitoring (PEP 669): it
 * asks for every event of every code object, lines included, and turns each
 * into a trace function call.  With the C tracer, the recorder registers the
 * callbacks below instead (see monitoring.py), which map events the way the
 * shim does, so that the recording is the one the Python tracer makes under
 * sys.settrace:
 *
 *   PY_START, PY_RESUME, PY_THROW     'call'
 *   PY_RETURN, PY_YIELD               'return', with the value
 *   PY_UNWIND                         'return' as an exception leaves
 *   RAISE, STOP_ITERATION             'exception', with (type, value, traceback)
 *   LINE, a JUMP back within a line   'line'
 *
 * What that saves: code that is not traced (the standard library,
 * site-packages, ours) answers DISABLE the first time each place reports,
 * and is not heard of again; LINE and JUMP are asked for only in traced code
 * objects (Recorder._register_code turns them on), and not at all with
 * --calls-only.
 *
 * Events are the interpreter's, not one thread's: a thread being recorded
 * has its Tracer in mon_tracer (borrowed; Recorder._tracers holds it), which
 * counts only while mon_tracer_session is mon_session: every start and stop
 * moves mon_session on, so no thread acts on a Tracer of an earlier run. */

FAST_TLS Tracer *mon_tracer;
FAST_TLS uint64_t mon_tracer_session;
static uint64_t mon_session = 1;   /* odd: no session running */

/* This thread's Tracer, if it was given one in the running session (a
 * stopped session's number is odd, and no thread was given that one). */
static inline Tracer *
mon_current(void)
{
    return mon_tracer_session == mon_session ? mon_tracer : NULL;
}

static void
session_begin(void)
{
    mon_session += (mon_session & 1) ? 1 : 2;   /* even: running */
}

static void
session_end(void)
{
    if ((mon_session & 1) == 0)
        mon_session++;
}

#if PY_VERSION_HEX >= 0x030C0000

static PyObject *mon_disable;      /* sys.monitoring.DISABLE */
static Tracer *mon_any;            /* strong: a Tracer of the session, to tell
                                    * traced code in threads that have none */

/* Whether the code is traced at all: 1, 0 (not: DISABLE may answer), or -1
 * with an exception. */
static int
mon_traced(Tracer *t, PyObject *code)
{
    CodeInfo *info;
    inside_tracer++;
    info = code_info(t, code);
    inside_tracer--;
    if (info == NULL)
        return -1;
    return info->code_id != Py_None;
}

/* The answer to an event of a thread not being recorded (the publisher's,
 * one started before the recording): DISABLE for code that is traced
 * nowhere, so that it stops reporting in every thread. */
static PyObject *
mon_elsewhere(PyObject *code, int disable)
{
    int traced;
    if (!disable || mon_any == NULL || inside_tracer)  /* mon_any: NULL once stopped */
        Py_RETURN_NONE;
    if ((traced = mon_traced(mon_any, code)) < 0)
        PyErr_Clear();  /* the program's thread goes on: it is not ours to stop */
    return Py_NewRef(traced == 0 ? mon_disable : Py_None);
}

/* Our error inside a callback: the program goes on unless it must see it. */
static PyObject *
mon_error(Tracer *t)
{
    PyFrameObject *frame = PyEval_GetFrame();
    if (frame == NULL || our_error(t, frame) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
mon_call(PyObject *code, int disable)
{
    Tracer *t = mon_current();
    PyFrameObject *frame;
    FrameTracer *ft;
    int traced;
    if (t == NULL)
        return mon_elsewhere(code, disable);
    if (inside_tracer || (frame = PyEval_GetFrame()) == NULL)
        Py_RETURN_NONE;
    ft = handle_call(t, frame);
    if (ft != NULL) {
        Py_XSETREF(frame->f_trace, (PyObject *)ft);
        Py_RETURN_NONE;
    }
    if (PyErr_Occurred())
        return NULL;
    /* not traced (handle_call has raised what a signal left pending), or
     * our error, reported: only the first is for DISABLE */
    if (!disable)
        Py_RETURN_NONE;
    if ((traced = mon_traced(t, code)) < 0)
        return mon_error(t);
    return Py_NewRef(traced ? Py_None : mon_disable);
}

/* An event of a frame already running (the one running, if frame is NULL):
 * handled if it is ours. */
static PyObject *
mon_local(PyObject *code, PyFrameObject *frame, int what, PyObject *arg, int disable)
{
    Tracer *t = mon_current();
    PyObject *local;
    int traced;
    if (t == NULL)
        return mon_elsewhere(code, disable);
    if (inside_tracer || (frame == NULL && (frame = PyEval_GetFrame()) == NULL))
        Py_RETURN_NONE;
    local = frame->f_trace;
    if (local != NULL && FrameTracer_Check(local)) {
        if (what == PyTrace_LINE && !frame->f_trace_lines)
            Py_RETURN_NONE;
        if (handle_local((FrameTracer *)local, frame, what, arg, 1) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (!disable)
        Py_RETURN_NONE;
    /* a frame of traced code that we did not see start (begun before the
     * recording) goes on reporting; other code need not */
    if ((traced = mon_traced(t, code)) < 0)
        return mon_error(t);
    if (!traced && check_pending(t, frame) < 0)
        return NULL;
    return Py_NewRef(traced ? Py_None : mon_disable);
}

static PyObject *
mon_py_start(PyObject *unused, PyObject *const *args, Py_ssize_t nargs)
{
    return mon_call(args[0], 1);   /* PY_START, PY_RESUME: (code, offset) */
}

static PyObject *
mon_py_throw(PyObject *unused, PyObject *const *args, Py_ssize_t nargs)
{
    return mon_call(args[0], 0);   /* (code, offset, exception) */
}

static PyObject *
mon_py_return(PyObject *unused, PyObject *const *args, Py_ssize_t nargs)
{
    return mon_local(args[0], NULL, PyTrace_RETURN, args[2], 1);  /* (code, offset, value) */
}

static PyObject *
mon_py_unwind(PyObject *unused, PyObject *const *args, Py_ssize_t nargs)
{
    return mon_local(args[0], NULL, PyTrace_RETURN, NULL, 0);  /* (code, offset, exception) */
}

/* RAISE (not disabled) and STOP_ITERATION (may be): (code, offset, exception) */
static PyObject *
mon_exception(PyObject *code, PyObject *exc, int disable)
{
    PyObject *tb, *info, *result;
    if (mon_current() == NULL || inside_tracer)
        Py_RETURN_NONE;
    tb = PyException_GetTraceback(exc);
    info = PyTuple_Pack(3, (PyObject *)Py_TYPE(exc), exc, tb ? tb : Py_None);
    Py_XDECREF(tb);
    if (info == NULL)
        return mon_error(mon_current());
    result = mon_local(code, NULL, PyTrace_EXCEPTION, info, disable);
    Py_DECREF(info);
    return result;
}

static PyObject *
mon_raise(PyObject *unused, PyObject *const *args, Py_ssize_t nargs)
{
    return mon_exception(args[0], args[2], 0);
}

static PyObject *
mon_stop_iteration(PyObject *unused, PyObject *const *args, Py_ssize_t nargs)
{
    return mon_exception(args[0], args[2], 1);
}

/* LINE: (code, line number).  The frame reports that line meanwhile, as
 * under sys.settrace. */
static PyObject *
mon_line_at(PyObject *code, int line)
{
    PyFrameObject *frame;
    PyObject *result;
    if (mon_current() == NULL || inside_tracer || line < 0)
        Py_RETURN_NONE;
    frame = PyEval_GetFrame();
    if (frame == NULL)
        Py_RETURN_NONE;
    frame->f_lineno = line;
    result = mon_local(code, frame, PyTrace_LINE, Py_None, 0);
    frame->f_lineno = 0;
    return result;
}

static PyObject *
mon_line(PyObject *unused, PyObject *const *args, Py_ssize_t nargs)
{
    long line = PyLong_AsLong(args[1]);
    if (line == -1 && PyErr_Occurred())
        return NULL;
    return mon_line_at(args[0], (int)line);
}

/* JUMP: (code, from, to), byte offsets.  sys.settrace reports a line at
 * every backward jump, a loop within one line included; a jump to another
 * line is LINE's to report, and a forward one is nobody's. */
static PyObject *
mon_jump(PyObject *unused, PyObject *const *args, Py_ssize_t nargs)
{
    PyCodeObject *code = (PyCodeObject *)args[0];
    long from = PyLong_AsLong(args[1]), to = PyLong_AsLong(args[2]);
    int line;
    if ((from == -1 || to == -1) && PyErr_Occurred())
        return NULL;
    if (to > from)
        return Py_NewRef(mon_disable);
    line = PyCode_Addr2Line(code, (int)to);
    if (line != PyCode_Addr2Line(code, (int)from))
        return Py_NewRef(mon_disable);
    return mon_line_at(args[0], line);
}

static PyMethodDef mon_callbacks[] = {
    {"PY_START", (PyCFunction)(void (*)(void))mon_py_start, METH_FASTCALL, NULL},
    {"PY_RESUME", (PyCFunction)(void (*)(void))mon_py_start, METH_FASTCALL, NULL},
    {"PY_THROW", (PyCFunction)(void (*)(void))mon_py_throw, METH_FASTCALL, NULL},
    {"PY_RETURN", (PyCFunction)(void (*)(void))mon_py_return, METH_FASTCALL, NULL},
    {"PY_YIELD", (PyCFunction)(void (*)(void))mon_py_return, METH_FASTCALL, NULL},
    {"PY_UNWIND", (PyCFunction)(void (*)(void))mon_py_unwind, METH_FASTCALL, NULL},
    {"RAISE", (PyCFunction)(void (*)(void))mon_raise, METH_FASTCALL, NULL},
    {"STOP_ITERATION", (PyCFunction)(void (*)(void))mon_stop_iteration, METH_FASTCALL, NULL},
    {"LINE", (PyCFunction)(void (*)(void))mon_line, METH_FASTCALL, NULL},
    {"JUMP", (PyCFunction)(void (*)(void))mon_jump, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

/* monitoring_start(DISABLE): {event name: callback}; starts a session
 * in which monitor_thread() tells each thread's Tracer. */
static PyObject *
monitoring_start(PyObject *module, PyObject *disable)
{
    PyObject *callbacks = PyDict_New(), *callback;
    PyMethodDef *def;
    if (callbacks == NULL)
        return NULL;
    for (def = mon_callbacks; def->ml_name != NULL; def++) {
        callback = PyCFunction_New(def, NULL);
        if (callback == NULL || PyDict_SetItemString(callbacks, def->ml_name, callback) < 0) {
            Py_XDECREF(callback);
            Py_DECREF(callbacks);
            return NULL;
        }
        Py_DECREF(callback);
    }
    Py_XSETREF(mon_disable, Py_NewRef(disable));
    Py_CLEAR(mon_any);
    session_begin();
    return callbacks;
}

static PyObject *
monitoring_stop(PyObject *module, PyObject *unused)
{
    session_end();
    Py_CLEAR(mon_any);
    Py_RETURN_NONE;
}

#define HOOK_METHODS \
    {"monitoring_start", monitoring_start, METH_O, \
     "monitoring_start(DISABLE): the sys.monitoring callbacks, by event name, for a new " \
     "session (3.12+)."}, \
    {"monitoring_stop", monitoring_stop, METH_NOARGS, \
     "monitoring_stop(): end the session; the callbacks do nothing from now on."},

#else   /* Python 3.11 */

/* -- the frame evaluation hook (Python 3.11, --calls-only) ----------------------
 *
 * On 3.11, while any trace or profile function is set, CPython runs every
 * instruction of every frame through its slower tracing dispatch: --calls-only
 * cost 2.7x before recording anything.  PEP 523 lets a tool evaluate frames
 * itself instead: fe_eval() is called for every Python frame that starts or
 * resumes (a generator), in every thread, and hands the frame on to CPython's
 * own evaluation, which then runs at full speed, specialized instructions and
 * all.  What it costs: calls are no longer inlined in the interpreter loop.
 *
 * It sees what --calls-only records:
 *
 *   the frame starts or resumes        'call', with the arguments
 *   it returns or yields a value       'return', with the value
 *   an exception leaves it             'exception' (type, value), then
 *                                      'return' as the exception leaves
 *
 * (--calls-only records only the exceptions that end calls, whatever the
 * hook: see FrameTracer.held_type.)
 *
 * Each thread's Tracer is found as sys.monitoring's callbacks find theirs
 * (mon_current); threads without one cost a thread-local read per call. */

static _PyFrameEvalFunction fe_previous;   /* another tool's, or NULL: CPython's */
static int fe_installed;
static PyObject *fe_too_deep;   /* Recorder._frame_eval_too_deep, called once */

/* Under the hook CPython no longer inlines calls: every Python call nests a
 * C call of the interpreter loop, as before 3.11, so a program that raises
 * the recursion limit and recurses deep, as 3.11 lets it, would run out of C
 * stack (about 20,000 deep in an 8 MB main thread; far less in a thread made
 * with a small threading.stack_size()).  Before a thread's stack is within
 * a margin of its end, the recording goes on through sys.settrace, in every
 * thread (fe_too_deep), and calls are inlined again.  The stack's bounds come
 * from pthread_getattr_np where there is one; elsewhere the nesting of
 * fe_eval is counted instead. */
#define FE_STACK_MARGIN (1024 * 1024)
#define FE_MAX_DEPTH 2000
FAST_TLS char *fe_stack_low;
FAST_TLS int fe_depth;

/* The lowest address this thread's calls may reach under the hook, or NULL
 * where the stack's bounds are not known (then fe_depth counts). */
static char *
fe_stack_limit(void)
{
#if defined(__linux__) && defined(__GLIBC__)
    pthread_attr_t attr;
    void *low;
    size_t size, margin;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return NULL;
    if (pthread_attr_getstack(&attr, &low, &size) != 0) {
        pthread_attr_destroy(&attr);
        return NULL;
    }
    pthread_attr_destroy(&attr);
    margin = size / 2 < FE_STACK_MARGIN ? size / 2 : FE_STACK_MARGIN;
    return (char *)low + margin;
#else
    return NULL;
#endif
}

/* Whether this thread's C stack is too deep for the hook to go on. */
static inline int
fe_deep(void)
{
    char here;
    if (fe_stack_low == NULL) {
        fe_stack_low = fe_stack_limit();
        if (fe_stack_low == NULL)
            fe_stack_low = (char *)1;   /* not known: counted */
    }
    if (fe_stack_low == (char *)1)
        return fe_depth > FE_MAX_DEPTH;
    return &here < fe_stack_low;
}

static PyObject *fe_eval(PyThreadState *tstate, _PyInterpreterFrame *iframe, int throwflag);

static void
fe_uninstall(void)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    if (!fe_installed)
        return;
    if (_PyInterpreterState_GetEvalFrameFunc(interp) == fe_eval)
        _PyInterpreterState_SetEvalFrameFunc(
            interp, fe_previous != NULL ? fe_previous : _PyEval_EvalFrameDefault);
    fe_installed = 0;
}

/* Hand recording over to sys.settrace (Recorder._frame_eval_too_deep), once. */
static void
fe_give_up(void)
{
    PyObject *callback = fe_too_deep, *r, *type, *value, *tb;
    if (callback == NULL)
        return;
    fe_too_deep = NULL;
    PyErr_Fetch(&type, &value, &tb);
    inside_tracer++;
    r = PyObject_CallNoArgs(callback);
    inside_tracer--;
    if (r == NULL) {
        /* the hook must go all the same, or the next calls crash */
        PyErr_WriteUnraisable(callback);
        session_end();
        fe_uninstall();
    }
    Py_XDECREF(r);
    Py_DECREF(callback);
    PyErr_Restore(type, value, tb);
}

static inline PyObject *
fe_run(PyThreadState *tstate, _PyInterpreterFrame *iframe, int throwflag)
{
    PyObject *result;
    fe_depth++;
    result = fe_previous != NULL ? fe_previous(tstate, iframe, throwflag)
                                 : _PyEval_EvalFrameDefault(tstate, iframe, throwflag);
    fe_depth--;
    return result;
}

/* Whether *code* is known not to be traced (a lookup that registers nothing). */
static inline int
fe_skipped(Tracer *t, PyObject *code)
{
    CodeInfo *slot;
    if (!t->table_size)
        return 0;
    slot = table_slot(t->table, t->table_size, code);
    return slot->code != NULL && slot->code_id == Py_None;
}

/* The frame object of a frame about to run (borrowed, or NULL).  CPython's
 * function for it is not exported, so the frame is made the running one for
 * a moment and PyEval_GetFrame() makes it.  A new frame must look past its
 * set-up instructions for that (PyEval_GetFrame() passes over a frame that
 * has not run them): the caller does it, and puts prev_instr back.  The
 * frame's link to its caller is set as _PyEval_EvalFrameDefault sets it
 * first thing. */
static PyFrameObject *
fe_frame_object(PyThreadState *tstate, _PyInterpreterFrame *iframe)
{
    _PyInterpreterFrame *running = tstate->cframe->current_frame;
    PyFrameObject *frame;
    int gc_was_on;
    if (iframe->frame_obj != NULL)
        return iframe->frame_obj;
    iframe->previous = running;
    tstate->cframe->current_frame = iframe;
    /* no collection while a frame that has not started is the running one:
     * a finalizer reading f_locals up the stack would read its free
     * variables, not set yet */
    gc_was_on = PyGC_Disable();
    frame = PyEval_GetFrame();
    if (gc_was_on)
        PyGC_Enable();
    tstate->cframe->current_frame = running;
    return frame != NULL && frame->f_frame == iframe ? frame : NULL;
}

/* The 'return' (and 'exception') events of a frame that was evaluated:
 * *result* is what it returned or yielded, or NULL with its exception set. */
static PyObject *
fe_leave(Tracer *t, PyFrameObject *frame, PyObject *result)
{
    FrameTracer *ft = (FrameTracer *)frame->f_trace;
    int err;
    if (ft == NULL || !FrameTracer_Check(ft))
        return result;
    Py_INCREF(ft);
    if (result != NULL) {
        err = handle_local(ft, frame, PyTrace_RETURN, result, 1);
        if (err < 0)   /* what a signal handler raised in our code: the program's now */
            Py_CLEAR(result);
    }
    else {
        PyObject *type, *value, *tb, *info;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        info = PyTuple_Pack(3, type ? type : Py_None, value ? value : Py_None,
                            tb ? tb : Py_None);
        if (info == NULL)
            err = our_error(t, frame);
        else {
            /* at the line where the exception reached the frame, as under
             * sys.settrace, not where it left (a finally block re-raising):
             * the traceback's entry for the frame has it */
            int lineno = frame->f_lineno;
            if (tb != NULL && PyTraceBack_Check(tb)
                    && ((PyTracebackObject *)tb)->tb_frame == frame) {
                int line = code_line(t, frame_code(frame),
                                     ((PyTracebackObject *)tb)->tb_lasti
                                     / (int)sizeof(_Py_CODEUNIT));
                if (line > 0)
                    frame->f_lineno = line;
            }
            err = handle_local(ft, frame, PyTrace_EXCEPTION, info, 1);
            frame->f_lineno = lineno;
            Py_DECREF(info);
            if (err == 0)
                err = handle_local(ft, frame, PyTrace_RETURN, NULL, 1);
        }
        if (err < 0) {   /* the new exception goes on in place of the frame's */
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
        }
        else
            PyErr_Restore(type, value, tb);
    }
    Py_DECREF(ft);
    return result;
}

static PyObject *
fe_eval(PyThreadState *tstate, _PyInterpreterFrame *iframe, int throwflag)
{
    Tracer *t = mon_current();
    PyCodeObject *code = iframe->f_code;
    _Py_CODEUNIT *prev_instr = iframe->prev_instr;
    PyFrameObject *frame;
    FrameTracer *ft;
    PyObject *result, *type = NULL, *value = NULL, *tb = NULL;
    int fresh;

    if (inside_tracer)
        return fe_run(tstate, iframe, throwflag);
    if (fe_deep()) {   /* in every frame: untraced code nests C calls too */
        fe_give_up();
        return fe_run(tstate, iframe, throwflag);
    }
    if (t == NULL) {
        /* A thread gets its Tracer from threading's settrace hook, at the
         * 'call' of Thread.run(), which that records: the return is ours. */
        PyFrameObject *late;
        result = fe_run(tstate, iframe, throwflag);
        if ((t = mon_current()) == NULL || inside_tracer
                || (late = iframe->frame_obj) == NULL || late->f_trace == NULL
                || !FrameTracer_Check(late->f_trace)
                || ((FrameTracer *)late->f_trace)->tracer != t)
            return result;
        Py_INCREF(late);
        Py_INCREF(t);
        result = fe_leave(t, late, result);
        Py_DECREF(t);
        Py_DECREF(late);
        return result;
    }
    if (fe_skipped(t, (PyObject *)code))
        return fe_run(tstate, iframe, throwflag);
    fresh = _PyInterpreterFrame_LASTI(iframe) < 0;
    /* A generator, coroutine or async generator being made runs only
     * RETURN_GENERATOR: no event, as under sys.settrace. */
    if (fresh && (code->co_flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)))
        return fe_run(tstate, iframe, throwflag);
    /* A new frame is at its RESUME for the 'call' event, as under
     * sys.settrace (the line of the event is that instruction's). */
    if (fresh)
        iframe->prev_instr = _PyCode_CODE(code) + code->_co_firsttraceable;
    /* throw() and close(): the exception to raise in the frame is set; our
     * work must neither see nor clear it (settrace's 'call' saves it too) */
    if (throwflag)
        PyErr_Fetch(&type, &value, &tb);
    frame = fe_frame_object(tstate, iframe);
    if (frame == NULL) {
        iframe->prev_instr = prev_instr;
        if (throwflag)
            PyErr_Restore(type, value, tb);
        return fe_run(tstate, iframe, throwflag);
    }
    Py_INCREF(frame);
    Py_INCREF(t);
    ft = handle_call(t, frame);
    iframe->prev_instr = prev_instr;
    if (throwflag) {
        if (PyErr_Occurred()) {   /* a signal handler's exception goes in instead */
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
        }
        else
            PyErr_Restore(type, value, tb);
    }
    if (ft != NULL) {
        Py_XSETREF(frame->f_trace, (PyObject *)ft);
        result = fe_run(tstate, iframe, throwflag);
        if (mon_current() == t && !inside_tracer)
            result = fe_leave(t, frame, result);
    }
    else {
        /* not traced; or what a signal handler raised in our code, which the
         * frame raises as it starts, as a generator's throw() does */
        result = fe_run(tstate, iframe, throwflag || PyErr_Occurred() != NULL);
    }
    Py_DECREF(t);
    Py_DECREF(frame);
    return result;
}

/* frame_eval_start(too_deep): a new session, with fe_eval as the
 * interpreter's frame evaluation function; too_deep() is called (once) if a
 * thread's C stack gets too deep for it. */
static PyObject *
frame_eval_start(PyObject *module, PyObject *too_deep)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    Py_XSETREF(fe_too_deep, Py_NewRef(too_deep));
    if (!fe_installed) {
        _PyFrameEvalFunction current = _PyInterpreterState_GetEvalFrameFunc(interp);
        fe_previous = current == _PyEval_EvalFrameDefault ? NULL : current;
        _PyInterpreterState_SetEvalFrameFunc(interp, fe_eval);
        fe_installed = 1;
    }
    session_begin();
    Py_RETURN_NONE;
}

/* frame_eval_stop(): end the session and give the interpreter its frame
 * evaluation back (unless a tool set its own since). */
static PyObject *
frame_eval_stop(PyObject *module, PyObject *unused)
{
    session_end();
    Py_CLEAR(fe_too_deep);
    fe_uninstall();
    Py_RETURN_NONE;
}

/* A frame evaluation function that records nothing, for benchmarks/: what the
 * hook costs by itself (calls no longer inlined). */
static PyObject *
fe_null(PyThreadState *tstate, _PyInterpreterFrame *iframe, int throwflag)
{
    return _PyEval_EvalFrameDefault(tstate, iframe, throwflag);
}

static PyObject *
install_null_frame_eval(PyObject *module, PyObject *on)
{
    int flag = PyObject_IsTrue(on);
    if (flag < 0)
        return NULL;
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(),
                                         flag ? fe_null : _PyEval_EvalFrameDefault);
    Py_RETURN_NONE;
}

/* install_in_thread(ident, tracer): PyEval_SetTrace for another thread. */
static PyObject *
install_in_thread(PyObject *module, PyObject *args)
{
    unsigned long ident;
    PyObject *tracer;
    PyThreadState *ts;
    if (!PyArg_ParseTuple(args, "kO:install_in_thread", &ident, &tracer)
            || !tracer_argument(tracer, "install_in_thread"))
        return NULL;
    for (ts = PyInterpreterState_ThreadHead(PyInterpreterState_Get()); ts != NULL;
            ts = PyThreadState_Next(ts)) {
        if (ts->thread_id == ident) {
            if (_PyEval_SetTrace(ts, trace_func, tracer) < 0)
                return NULL;
            Py_RETURN_TRUE;
        }
    }
    Py_RETURN_FALSE;
}

#define HOOK_METHODS \
    {"install_null_frame_eval", install_null_frame_eval, METH_O, \
     "install_null_frame_eval(on): a frame evaluation function that records nothing " \
     "(3.11), or CPython's own back."}, \
    {"frame_eval_start", frame_eval_start, METH_O, \
     "frame_eval_start(too_deep): record through the frame evaluation hook (PEP 523, " \
     "3.11), in a new session; too_deep() is called once if a thread's C stack gets too " \
     "deep for it."}, \
    {"install_in_thread", install_in_thread, METH_VARARGS, \
     "install_in_thread(ident, tracer): make tracer the trace function of the thread " \
     "with that ident; False if there is none (3.11)."}, \
    {"frame_eval_stop", frame_eval_stop, METH_NOARGS, \
     "frame_eval_stop(): end the session and take the hook away."},

#endif

/* monitor_thread(tracer): this thread's events (from sys.monitoring or the
 * frame evaluation hook) go to *tracer* (None: nowhere). */
static PyObject *
monitor_thread(PyObject *module, PyObject *tracer)
{
    if (tracer == Py_None) {
        mon_tracer = NULL;
        Py_RETURN_NONE;
    }
    if (!tracer_argument(tracer, "monitor_thread"))
        return NULL;
    if (mon_session & 1) {
        PyErr_SetString(PyExc_RuntimeError, "no session: call monitoring_start() or "
                        "frame_eval_start()");
        return NULL;
    }
    mon_tracer = (Tracer *)tracer;
    mon_tracer_session = mon_session;
#if PY_VERSION_HEX >= 0x030C0000
    if (mon_any == NULL)
        mon_any = (Tracer *)Py_NewRef(tracer);
#endif
    Py_RETURN_NONE;
}

/* Whether this thread records through sys.monitoring or the frame evaluation
 * hook now: a sys.settrace trampoline calling our FrameTracer (the program set
 * a trace function of its own) must not record the event a second time. */
static inline int
monitoring_here(void)
{
    return mon_current() != NULL;
}

/* -- module ------------------------------------------------------------------- */

static PyObject *
install(PyObject *module, PyObject *tracer)
{
    if (tracer == Py_None) {
        PyEval_SetTrace(NULL, NULL);
        Py_RETURN_NONE;
    }
    if (!tracer_argument(tracer, "install"))
        return NULL;
    PyEval_SetTrace(trace_func, tracer);
    Py_RETURN_NONE;
}

static PyObject *
in_tracer(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(inside_tracer > 0);
}

/* -- a trace function that records nothing ------------------------------------
 *
 * What CPython's tracing costs by itself, for benchmarks/: every event
 * reaches this and it returns at once.  With lines false, frames get
 * f_trace_lines = 0 at their call, as the tracer does for --calls-only. */
static int
null_trace(PyObject *lines, PyFrameObject *frame, int what, PyObject *arg)
{
    if (what == PyTrace_CALL && lines == Py_False)
        frame->f_trace_lines = 0;
    return 0;
}

static PyObject *
install_null(PyObject *module, PyObject *lines)
{
    int flag = PyObject_IsTrue(lines);
    if (flag < 0)
        return NULL;
    PyEval_SetTrace(null_trace, flag ? Py_True : Py_False);
    Py_RETURN_NONE;
}

/* tsc_clock(on): use the TSC for event times if the kernel does (on, the
 * default) or clock_gettime only; returns whether the TSC is in use.  For
 * tests and benchmarks. */
static PyObject *
tsc_clock_switch(PyObject *module, PyObject *on)
{
    int flag = PyObject_IsTrue(on);
    if (flag < 0)
        return NULL;
    if (!flag) {
        tsc_clock.usable = 0;
        tsc_clock.mult = 0;
    }
    else if (!tsc_clock.usable)
        tsc_init();
    return PyBool_FromLong(tsc_clock.usable);
}

static PyMethodDef module_methods[] = {
    {"install_null", install_null, METH_O,
     "install_null(lines): a C trace function that records nothing, for this thread "
     "(with no line events if lines is false): what tracing itself costs."},
    {"tsc_clock", tsc_clock_switch, METH_O,
     "tsc_clock(on): event times from the TSC where the kernel's clock is (on), or from "
     "clock_gettime only; returns whether the TSC is in use."},
    {"float_text", float_text, METH_O,
     "float_text(x): repr(x) by the tracer's fast path, or None where it defers to repr."},
    {"in_tracer", in_tracer, METH_NOARGS,
     "in_tracer(): True while this thread is inside the C tracer's event handling."},
    {"install", install, METH_O,
     "install(tracer): make *tracer* this thread's trace function (None removes it)."},
    HOOK_METHODS
    {"monitor_thread", monitor_thread, METH_O,
     "monitor_thread(tracer): this thread's events from sys.monitoring or the frame "
     "evaluation hook go to tracer (None: nowhere)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "smiley_like.tracer._ctracer",
    .m_doc = "smiley-like's compiled trace function.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__ctracer(void)
{
    PyObject *module;
    if (PyType_Ready(&TracerType) < 0 || PyType_Ready(&FrameTracerType) < 0
            || PyType_Ready(&EventBufferType) < 0)
        return NULL;
    str_qualname = PyUnicode_InternFromString("__qualname__");
    str_dots = PyUnicode_InternFromString("...");
    if (init_sizeof() < 0)
        return NULL;
    tsc_init();
    if (str_qualname == NULL || str_dots == NULL)
        return NULL;
    module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Tracer", (PyObject *)&TracerType) < 0
            || PyModule_AddObjectRef(module, "FrameTracer", (PyObject *)&FrameTracerType) < 0
            || PyModule_AddObjectRef(module, "EventBuffer", (PyObject *)&EventBufferType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
