/* The store writer's walk over a batch, straight from its msgpack bytes.
 *
 * writer.walk() needs the batch decoded: a list and a small container per
 * event, most of which are thrown away at once (the chunk keeps the bytes as
 * received).  This reads the bytes instead and builds Python objects only for
 * what the writer keeps: the call stacks at the end, the code ids, each
 * thread's counts, first and last sequence numbers and times, and the line of
 * its last event.  It checks what walk() and codec.decode_list() check, and
 * the whole payload as msgpack (every str valid UTF-8, lone surrogates
 * allowed, no trailing bytes, nesting no deeper than msgpack's 1024), so a
 * batch it accepts is one readers can decode.  It is stricter in two ways
 * that no tracer meets: an event's kind must be an integer (not true or 1.0),
 * and msgpack extension types are refused.
 *
 * tests/test_writer.py pins it to writer.walk() and to the one event at a
 * time rules.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { EV_CALL = 0, EV_LINE = 1, EV_RETURN = 2, EV_EXCEPTION = 3 };
enum { T_INT, T_NIL, T_BOOL, T_FLOAT, T_STR, T_BIN, T_ARRAY, T_MAP };

#define MAX_DEPTH 1024
#define BIGGEST INT64_MAX  /* what an SQLite integer holds */
#define CODE_BITS 65536    /* code ids below this are kept in a bitmap */

typedef struct {
    const unsigned char *p, *end;
} Reader;

typedef struct {
    int type;
    int in_range;      /* T_INT: fits in [-BIGGEST, BIGGEST] */
    int64_t value;     /* T_INT */
    uint64_t length;   /* T_STR, T_BIN: bytes; T_ARRAY, T_MAP: items */
} Item;

static int
malformed(const char *what)
{
    PyErr_SetString(PyExc_ValueError, what);
    return -1;
}

#define NEED(r, n) do { if ((uint64_t)((r)->end - (r)->p) < (uint64_t)(n)) \
        return malformed("truncated msgpack data"); } while (0)

static uint64_t
be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* UTF-8 as Python's "surrogatepass" decoder takes it. */
static int
utf8_ok(const unsigned char *s, uint64_t n)
{
    uint64_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            while (i + 8 <= n) {
                uint64_t word;
                memcpy(&word, s + i, 8);
                if (word & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80
                    || (c == 0xE0 && s[i + 1] < 0xA0))
                return 0;
            i += 3;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80
                    || (s[i + 3] & 0xC0) != 0x80 || (c == 0xF0 && s[i + 1] < 0x90)
                    || (c == 0xF4 && s[i + 1] > 0x8F))
                return 0;
            i += 4;
        }
        else
            return 0;
    }
    return 1;
}

/* Read one item's header; str and bin payloads are passed (and checked). */
static int
read_item(Reader *r, Item *it)
{
    unsigned char c;
    int n = 0;
    NEED(r, 1);
    c = *r->p++;
    it->in_range = 1;
    if (c <= 0x7F) { it->type = T_INT; it->value = c; return 0; }
    if (c >= 0xE0) { it->type = T_INT; it->value = (int8_t)c; return 0; }
    if ((c & 0xF0) == 0x80) { it->type = T_MAP; it->length = c & 0x0F; return 0; }
    if ((c & 0xF0) == 0x90) { it->type = T_ARRAY; it->length = c & 0x0F; return 0; }
    if ((c & 0xE0) == 0xA0) { it->type = T_STR; it->length = c & 0x1F; goto payload; }
    switch (c) {
    case 0xC0: it->type = T_NIL; return 0;
    case 0xC2: case 0xC3: it->type = T_BOOL; it->value = c == 0xC3; return 0;
    case 0xCA: NEED(r, 4); r->p += 4; it->type = T_FLOAT; return 0;
    case 0xCB: NEED(r, 8); r->p += 8; it->type = T_FLOAT; return 0;
    case 0xCC: case 0xCD: case 0xCE: case 0xCF: {
        uint64_t v;
        n = 1 << (c - 0xCC);
        NEED(r, n);
        v = be(r->p, n);
        r->p += n;
        it->type = T_INT;
        it->in_range = v <= (uint64_t)BIGGEST;
        it->value = (int64_t)(it->in_range ? v : 0);
        return 0;
    }
    case 0xD0: case 0xD1: case 0xD2: case 0xD3: {
        uint64_t v;
        n = 1 << (c - 0xD0);
        NEED(r, n);
        v = be(r->p, n);
        r->p += n;
        if (n < 8 && (v >> (8 * n - 1)) & 1)
            v |= ~(uint64_t)0 << (8 * n);  /* sign extension */
        it->type = T_INT;
        it->value = (int64_t)v;
        it->in_range = it->value != INT64_MIN;
        return 0;
    }
    case 0xD9: case 0xDA: case 0xDB:
        n = 1 << (c - 0xD9);
        NEED(r, n);
        it->type = T_STR;
        it->length = be(r->p, n);
        r->p += n;
        goto payload;
    case 0xC4: case 0xC5: case 0xC6:
        n = 1 << (c - 0xC4);
        NEED(r, n);
        it->type = T_BIN;
        it->length = be(r->p, n);
        r->p += n;
        goto payload;
    case 0xDC: case 0xDD:
        n = 2 << (c - 0xDC);
        NEED(r, n);
        it->type = T_ARRAY;
        it->length = be(r->p, n);
        r->p += n;
        return 0;
    case 0xDE: case 0xDF:
        n = 2 << (c - 0xDE);
        NEED(r, n);
        it->type = T_MAP;
        it->length = be(r->p, n);
        r->p += n;
        return 0;
    default:  /* 0xC1 (never used), extension types */
        return malformed("msgpack data the writer does not take");
    }
payload:
    NEED(r, it->length);
    if (it->type == T_STR && !utf8_ok(r->p, it->length))
        return malformed("invalid UTF-8 in msgpack str");
    r->p += it->length;
    return 0;
}

/* Skip the rest of a value whose header is *it*, at nesting *depth*. */
static int
skip_rest(Reader *r, const Item *it, int depth)
{
    uint64_t pending[MAX_DEPTH + 1];
    int top = 0;
    Item child;
    if (it->type != T_ARRAY && it->type != T_MAP)
        return 0;
    if (depth > MAX_DEPTH)
        return malformed("msgpack data nested too deeply");
    pending[0] = it->type == T_MAP ? it->length * 2 : it->length;
    while (1) {
        while (pending[top] == 0) {
            if (top == 0)
                return 0;
            top--;
        }
        pending[top]--;
        if (read_item(r, &child) < 0)
            return -1;
        if (child.type == T_ARRAY || child.type == T_MAP) {
            if (depth + top + 1 > MAX_DEPTH)
                return malformed("msgpack data nested too deeply");
            /* every item takes at least a byte: a bigger count is truncated data */
            if (child.length > (uint64_t)(r->end - r->p))
                return malformed("truncated msgpack data");
            pending[++top] = child.type == T_MAP ? child.length * 2 : child.length;
        }
    }
}

static int
skip_value(Reader *r, int depth)
{
    Item it;
    if (read_item(r, &it) < 0)
        return -1;
    return skip_rest(r, &it, depth);
}

/* read_item, with the encodings most events use inline: fixint, uint64 (times). */
static inline int
read_item_fast(Reader *r, Item *it)
{
    if (r->p < r->end) {
        unsigned char c = *r->p;
        if (c <= 0x7F) {
            r->p++;
            it->type = T_INT;
            it->value = c;
            it->in_range = 1;
            return 0;
        }
        if (c == 0xCF && r->end - r->p >= 9) {
            uint64_t v;
            memcpy(&v, r->p + 1, 8);
#if PY_LITTLE_ENDIAN
            v = __builtin_bswap64(v);
#endif
            r->p += 9;
            it->type = T_INT;
            it->in_range = v <= (uint64_t)BIGGEST;
            it->value = (int64_t)(it->in_range ? v : 0);
            return 0;
        }
        if ((c & 0xF0) == 0x90) {
            r->p++;
            it->type = T_ARRAY;
            it->length = c & 0x0F;
            return 0;
        }
    }
    return read_item(r, it);
}

/* skip_value, with nil and fixint inline. */
static inline int
skip_value_fast(Reader *r, int depth)
{
    if (r->p < r->end && (*r->p == 0xC0 || *r->p <= 0x7F)) {
        r->p++;
        return 0;
    }
    return skip_value(r, depth);
}

/* The Python object for the value at *p* (ints, nil and str here; the rest by unpack). */
static PyObject *
decode_at(const unsigned char *p, const unsigned char *end, int depth, PyObject *unpack)
{
    Reader r = {p, end};
    Item it;
    PyObject *data, *result;
    if (read_item(&r, &it) < 0)
        return NULL;
    if (it.type == T_INT && it.in_range)
        return PyLong_FromLongLong(it.value);
    if (it.type == T_NIL)
        Py_RETURN_NONE;
    if (it.type == T_STR)
        return PyUnicode_DecodeUTF8((const char *)r.p - it.length, (Py_ssize_t)it.length,
                                    "surrogatepass");
    if (skip_rest(&r, &it, depth) < 0)
        return NULL;
    data = PyBytes_FromStringAndSize((const char *)p, r.p - p);
    if (data == NULL)
        return NULL;
    result = PyObject_CallOneArg(unpack, data);
    Py_DECREF(data);
    return result;
}

/* -- per-thread state --------------------------------------------------------- */

typedef struct {
    int64_t call_id, code_id;
    PyObject *entry;  /* the list from the stacks given, or NULL for a call of this batch */
    PyObject *exc;    /* type name of the last exception in the frame, or NULL */
} Frame;

typedef struct {
    int64_t thread_no;
    PyObject *key;                 /* thread_no as an int */
    Py_ssize_t count, first, last; /* events; indexes of the first and last */
    int64_t first_ns, last_ns;
    int first_ok, last_ok;         /* those times are storable integers */
    const unsigned char *last_line;
    int loaded;                    /* its stack was taken from the stacks given */
    Frame *frames;
    Py_ssize_t depth, capacity;
    Py_ssize_t returned_at;        /* index of its last return that popped a frame */
    int64_t returned_code;
    PyObject *returned_obj;        /* that frame's code id if it came from the stacks given */
} Thread;

typedef struct {
    Thread *threads;
    Py_ssize_t n, capacity;
    Py_ssize_t last_hit;
} Threads;

static void
frame_clear(Frame *f)
{
    Py_CLEAR(f->entry);
    Py_CLEAR(f->exc);
}

static void
threads_free(Threads *ts)
{
    Py_ssize_t i, j;
    for (i = 0; i < ts->n; i++) {
        Thread *t = &ts->threads[i];
        for (j = 0; j < t->depth; j++)
            frame_clear(&t->frames[j]);
        PyMem_Free(t->frames);
        Py_XDECREF(t->key);
        Py_XDECREF(t->returned_obj);
    }
    PyMem_Free(ts->threads);
}

static Thread *
thread_of(Threads *ts, int64_t thread_no)
{
    Py_ssize_t i;
    Thread *t;
    if (ts->n && ts->threads[ts->last_hit].thread_no == thread_no)
        return &ts->threads[ts->last_hit];
    for (i = 0; i < ts->n; i++)
        if (ts->threads[i].thread_no == thread_no) {
            ts->last_hit = i;
            return &ts->threads[i];
        }
    if (ts->n == ts->capacity) {
        Py_ssize_t capacity = ts->capacity ? ts->capacity * 2 : 8;
        Thread *grown = PyMem_Realloc(ts->threads, capacity * sizeof(Thread));
        if (grown == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        ts->threads = grown;
        ts->capacity = capacity;
    }
    t = &ts->threads[ts->n];
    memset(t, 0, sizeof(*t));
    t->thread_no = thread_no;
    t->returned_at = -1;
    if ((t->key = PyLong_FromLongLong(thread_no)) == NULL)
        return NULL;
    ts->last_hit = ts->n++;
    return t;
}

static int
push(Thread *t, int64_t call_id, int64_t code_id, PyObject *entry)
{
    Frame *f;
    if (t->depth == t->capacity) {
        Py_ssize_t capacity = t->capacity ? t->capacity * 2 : 16;
        Frame *grown = PyMem_Realloc(t->frames, capacity * sizeof(Frame));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->frames = grown;
        t->capacity = capacity;
    }
    f = &t->frames[t->depth++];
    f->call_id = call_id;
    f->code_id = code_id;
    f->entry = entry;  /* stolen */
    f->exc = NULL;
    return 0;
}

/* Take the thread's stack from the stacks given (a list of [call_id, code_id, ...]). */
static int
load(Thread *t, PyObject *stacks)
{
    PyObject *stack;
    Py_ssize_t i;
    t->loaded = 1;
    stack = PyDict_GetItemWithError(stacks, t->key);
    if (stack == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!PyList_Check(stack)) {
        PyErr_SetString(PyExc_TypeError, "a stack is not a list");
        return -1;
    }
    for (i = 0; i < PyList_GET_SIZE(stack); i++) {
        PyObject *entry = PyList_GET_ITEM(stack, i);
        if (!PyList_Check(entry) || PyList_GET_SIZE(entry) < 2) {
            PyErr_SetString(PyExc_TypeError, "a stack entry is not [call_id, code_id, ...]");
            return -1;
        }
        if (push(t, 0, 0, Py_NewRef(entry)) < 0) {
            Py_DECREF(entry);
            return -1;
        }
    }
    return 0;
}

/* The thread's stack as stacks holds it: entries from the stacks given, updated, and new ones. */
static PyObject *
stack_list(Thread *t)
{
    PyObject *list = PyList_New(t->depth);
    Py_ssize_t i;
    if (list == NULL)
        return NULL;
    for (i = 0; i < t->depth; i++) {
        Frame *f = &t->frames[i];
        PyObject *entry = f->entry;
        if (entry != NULL) {
            if (f->exc != NULL) {
                PyObject *tail = PyList_New(1);
                int err;
                if (tail == NULL)
                    goto fail;
                PyList_SET_ITEM(tail, 0, Py_NewRef(f->exc));
                err = PyList_SetSlice(entry, 2, PY_SSIZE_T_MAX, tail);
                Py_DECREF(tail);
                if (err < 0)
                    goto fail;
            }
            Py_INCREF(entry);
        }
        else {
            entry = PyList_New(f->exc ? 3 : 2);
            if (entry == NULL)
                goto fail;
            PyList_SET_ITEM(entry, 0, PyLong_FromLongLong(f->call_id));
            PyList_SET_ITEM(entry, 1, PyLong_FromLongLong(f->code_id));
            if (f->exc)
                PyList_SET_ITEM(entry, 2, Py_NewRef(f->exc));
            if (PyList_GET_ITEM(entry, 0) == NULL || PyList_GET_ITEM(entry, 1) == NULL) {
                Py_DECREF(entry);
                goto fail;
            }
        }
        PyList_SET_ITEM(list, i, entry);
    }
    return list;
fail:
    Py_DECREF(list);
    return NULL;
}

static PyObject *
top_code(Thread *t)
{
    Frame *f = &t->frames[t->depth - 1];
    if (f->entry != NULL)
        return Py_NewRef(PyList_GET_ITEM(f->entry, 1));
    return PyLong_FromLongLong(f->code_id);
}

/* -- the walk ------------------------------------------------------------------ */

PyDoc_STRVAR(walk_packed_doc,
"walk_packed(stacks, seq, data, unpack) -> (count, codes, stats, lines)\n\n"
"writer.walk() over the msgpack array of events *data*, without decoding it:\n"
"*stacks* is advanced in place; *codes* and *stats* are what walk() returns;\n"
"*lines* maps each thread to the line number of its last event.  *unpack*\n"
"decodes the rare values this does not (codec.unpack).  ValueError if the\n"
"events cannot be stored.");

static PyObject *
walk_packed(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *stacks, *unpack, *codes = NULL, *stats = NULL, *lines = NULL, *result = NULL;
    PyObject *key, *value;
    Py_buffer view;
    Reader r;
    Item it;
    Threads ts = {NULL, 0, 0, 0};
    unsigned char *seen_codes = NULL;
    int64_t seq, max_code = -1;
    uint64_t count, i;
    Py_ssize_t pos = 0, j;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "walk_packed() takes 4 arguments");
        return NULL;
    }
    stacks = args[0];
    unpack = args[3];
    if (!PyDict_Check(stacks)) {
        PyErr_SetString(PyExc_TypeError, "stacks must be a dict");
        return NULL;
    }
    seq = PyLong_AsLongLong(args[1]);
    if (seq == -1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[2], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    r.p = view.buf;
    r.end = r.p + view.len;

    if ((codes = PySet_New(NULL)) == NULL)
        goto done;
    while (PyDict_Next(stacks, &pos, &key, &value)) {
        if (!PyList_Check(value))
            continue;
        for (j = 0; j < PyList_GET_SIZE(value); j++) {
            PyObject *entry = PyList_GET_ITEM(value, j);
            if (PyList_Check(entry) && PyList_GET_SIZE(entry) >= 2
                    && PySet_Add(codes, PyList_GET_ITEM(entry, 1)) < 0)
                goto done;
        }
    }
    if ((seen_codes = PyMem_Calloc(CODE_BITS / 8, 1)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }

    if (read_item(&r, &it) < 0)
        goto done;
    if (it.type != T_ARRAY) {
        malformed("payload is not an array");
        goto done;
    }
    count = it.length;
    if (count > (uint64_t)(r.end - r.p)) {
        malformed("truncated msgpack data");
        goto done;
    }
    for (i = 0; i < count; i++) {
        Item ev, field;
        uint64_t fields;
        int64_t kind, t_ns = 0;
        int t_ok;
        const unsigned char *line_at;
        Thread *t;

        if (read_item_fast(&r, &ev) < 0)
            goto done;
        if (ev.type != T_ARRAY || ev.length < 5) {
            malformed("malformed events");
            goto done;
        }
        fields = ev.length;
        if (read_item_fast(&r, &field) < 0)
            goto done;
        if (field.type != T_INT || field.value < EV_CALL || field.value > EV_EXCEPTION) {
            malformed("malformed events");
            goto done;
        }
        kind = field.value;
        if (read_item_fast(&r, &field) < 0)
            goto done;
        if (field.type != T_INT || !field.in_range) {
            malformed("malformed thread numbers");
            goto done;
        }
        if ((t = thread_of(&ts, field.value)) == NULL)
            goto done;
        if (read_item_fast(&r, &field) < 0 || skip_rest(&r, &field, 3) < 0)
            goto done;
        t_ok = field.type == T_INT && field.in_range;
        if (t_ok)
            t_ns = field.value;
        line_at = r.p;
        if (skip_value_fast(&r, 3) < 0)
            goto done;
        fields -= 4;

        if (kind != EV_LINE && !t->loaded && load(t, stacks) < 0)
            goto done;
        if (kind == EV_CALL) {
            int64_t code_id;
            if (skip_value_fast(&r, 3) < 0)
                goto done;
            if (fields < 2) {
                malformed("call event without a code id");
                goto done;
            }
            if (read_item_fast(&r, &field) < 0 || skip_rest(&r, &field, 3) < 0)
                goto done;
            if (field.type != T_INT || !field.in_range) {
                PyErr_Format(PyExc_ValueError, "event %lld: code id is not a number",
                             (long long)(seq + (int64_t)i));
                goto done;
            }
            code_id = field.value;
            fields -= 2;
            if (push(t, seq + (int64_t)i, code_id, NULL) < 0)
                goto done;
            if (code_id >= 0 && code_id < CODE_BITS) {
                seen_codes[code_id >> 3] |= 1 << (code_id & 7);
                if (code_id > max_code)
                    max_code = code_id;
            }
            else {
                PyObject *number = PyLong_FromLongLong(code_id);
                if (number == NULL || PySet_Add(codes, number) < 0) {
                    Py_XDECREF(number);
                    goto done;
                }
                Py_DECREF(number);
            }
        }
        else if (kind == EV_EXCEPTION) {
            PyObject *name;
            const unsigned char *name_at;
            if (read_item(&r, &field) < 0)
                goto done;
            if (field.type != T_ARRAY || field.length != 2) {
                PyErr_Format(PyExc_ValueError, "event %lld: exception is not [type, message]",
                             (long long)(seq + (int64_t)i));
                goto done;
            }
            name_at = r.p;
            if (skip_value(&r, 4) < 0 || skip_value(&r, 4) < 0)
                goto done;
            fields -= 1;
            if (t->depth) {
                if ((name = decode_at(name_at, r.end, 4, unpack)) == NULL)
                    goto done;
                Py_XSETREF(t->frames[t->depth - 1].exc, name);
            }
        }
        else if (kind == EV_RETURN && t->depth) {
            Frame *f = &t->frames[--t->depth];
            t->returned_at = (Py_ssize_t)i;
            Py_CLEAR(t->returned_obj);
            if (f->entry != NULL)
                t->returned_obj = Py_NewRef(PyList_GET_ITEM(f->entry, 1));
            else
                t->returned_code = f->code_id;
            frame_clear(f);
        }
        for (; fields; fields--)
            if (skip_value_fast(&r, 3) < 0)
                goto done;

        if (t->count++ == 0) {
            t->first = (Py_ssize_t)i;
            t->first_ns = t_ns;
            t->first_ok = t_ok;
        }
        t->last = (Py_ssize_t)i;
        t->last_ns = t_ns;
        t->last_ok = t_ok;
        t->last_line = line_at;
    }
    if (r.p != r.end) {
        malformed("extra data after the events");
        goto done;
    }

    for (j = 0; j <= max_code; j++) {
        if (seen_codes[j >> 3] & (1 << (j & 7))) {
            PyObject *number = PyLong_FromSsize_t(j);
            if (number == NULL || PySet_Add(codes, number) < 0) {
                Py_XDECREF(number);
                goto done;
            }
            Py_DECREF(number);
        }
    }
    if ((stats = PyDict_New()) == NULL || (lines = PyDict_New()) == NULL)
        goto done;
    for (j = 0; j < ts.n; j++) {
        Thread *t = &ts.threads[j];
        PyObject *code_id, *entry, *line;
        if (t->loaded) {
            PyObject *stack = stack_list(t);
            if (stack == NULL || PyDict_SetItem(stacks, t->key, stack) < 0) {
                Py_XDECREF(stack);
                goto done;
            }
            Py_DECREF(stack);
        }
        if (!t->first_ok || !t->last_ok) {
            malformed("malformed event times");
            goto done;
        }
        if (t->returned_at >= 0 && t->returned_at == t->last)
            code_id = t->returned_obj ? Py_NewRef(t->returned_obj)
                                      : PyLong_FromLongLong(t->returned_code);
        else if (t->loaded)
            code_id = t->depth ? top_code(t) : PyLong_FromLong(0);
        else {
            /* only line events: the top of the stack given, untouched */
            PyObject *stack = PyDict_GetItemWithError(stacks, t->key);
            if (stack == NULL && PyErr_Occurred())
                goto done;
            if (stack != NULL && PyList_Check(stack) && PyList_GET_SIZE(stack)) {
                PyObject *top = PyList_GET_ITEM(stack, PyList_GET_SIZE(stack) - 1);
                if (!PyList_Check(top) || PyList_GET_SIZE(top) < 2) {
                    PyErr_SetString(PyExc_TypeError, "a stack entry is not [call_id, code_id, ...]");
                    goto done;
                }
                code_id = Py_NewRef(PyList_GET_ITEM(top, 1));
            }
            else
                code_id = PyLong_FromLong(0);
        }
        if (code_id == NULL)
            goto done;
        entry = Py_BuildValue("[nLLLLN]", t->count, (long long)(seq + t->first),
                              (long long)(seq + t->last), (long long)t->first_ns,
                              (long long)t->last_ns, code_id);
        if (entry == NULL || PyDict_SetItem(stats, t->key, entry) < 0) {
            Py_XDECREF(entry);
            goto done;
        }
        Py_DECREF(entry);
        line = decode_at(t->last_line, r.end, 3, unpack);
        if (line == NULL || PyDict_SetItem(lines, t->key, line) < 0) {
            Py_XDECREF(line);
            goto done;
        }
        Py_DECREF(line);
    }
    result = Py_BuildValue("(KOOO)", (unsigned long long)count, codes, stats, lines);
done:
    threads_free(&ts);
    PyMem_Free(seen_codes);
    Py_XDECREF(codes);
    Py_XDECREF(stats);
    Py_XDECREF(lines);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef module_methods[] = {
    {"walk_packed", (PyCFunction)(void (*)(void))walk_packed, METH_FASTCALL, walk_packed_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "smiley_like.store._scan",
    .m_doc = "The store writer's walk over a batch's msgpack bytes, compiled.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    return PyModule_Create(&module_def);
}
