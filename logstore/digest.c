/* The log store's SHA-256 work in C: the same functions, formulas and bytes as logstore/digest.py.
 *
 * hashlib costs ~0.3 us of object overhead per hash on top of the hashing itself; the store hashes a
 * few times per record (body, leaf, chain link, Merkle node). Here each hash is OpenSSL's EVP with the
 * SHA-256 implementation fetched once and one digest context reused (SHA-NI where the CPU has it), and
 * a whole run of records is chained in one call.
 *
 * Safety (this is the tamper-evidence path): every argument is checked before anything is written
 * (type, length, each line offset within `lines`); buffers are released on every path; the GIL is held
 * throughout and no Python code runs while a buffer is held, so nothing can resize or free one
 * underneath. The reference for every byte is logstore/digest.py, and tests/logstore/test_digest.py
 * compares the two (and both with the formulas of logstore/record.py) on random input.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#define DIGEST 32 /* SHA-256 */
#define HEX (2 * DIGEST)

typedef struct {
    EVP_MD *md;       /* SHA-256, fetched once: an implicit fetch per hash costs more than the hash */
    EVP_MD_CTX *ctx;  /* reused for every hash (the GIL serialises the calls) */
} digest_state;

static digest_state *state_of(PyObject *module) { return (digest_state *)PyModule_GetState(module); }

static const char HEXDIGITS[] = "0123456789abcdef";

static void to_hex(const unsigned char *digest, char *out) {
    for (int i = 0; i < DIGEST; i++) {
        out[2 * i] = HEXDIGITS[digest[i] >> 4];
        out[2 * i + 1] = HEXDIGITS[digest[i] & 15];
    }
}

/* b"\x00[%d" % seq into `out` (at least 22 bytes); its length. */
static size_t format_head(long long seq, char *out) {
    char digits[20];
    int k = 0;
    unsigned long long magnitude = seq < 0 ? 0ULL - (unsigned long long)seq : (unsigned long long)seq;
    do {
        digits[k++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    size_t n = 0;
    out[n++] = 0;
    out[n++] = '[';
    if (seq < 0) out[n++] = '-';
    while (k) out[n++] = digits[--k];
    return n;
}

/* SHA-256 of the concatenation of `n` pieces; 0 with a Python exception set on an OpenSSL failure. */
static int sha256(digest_state *st, const void *const *data, const size_t *len, int n, unsigned char *out) {
    if (EVP_DigestInit_ex2(st->ctx, st->md, NULL) != 1) goto fail;
    for (int i = 0; i < n; i++) {
        if (len[i] && EVP_DigestUpdate(st->ctx, data[i], len[i]) != 1) goto fail;
    }
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(st->ctx, out, &size) != 1 || size != DIGEST) goto fail;
    return 1;
fail:
    PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
    return 0;
}

/* The contiguous buffer of a bytes-like argument (`flags`: PyBUF_SIMPLE, or PyBUF_WRITABLE for one written
   to); TypeError for anything else: str, a read-only object to write to, a non-contiguous view. */
static int get_buffer(PyObject *obj, Py_buffer *view, int flags, const char *what) {
    if (PyObject_CheckBuffer(obj) && PyObject_GetBuffer(obj, view, flags) == 0) return 1;
    if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_BufferError)) return 0;  /* e.g. MemoryError */
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, "%s must be a %scontiguous bytes-like object, not %.100s", what,
                 flags & PyBUF_WRITABLE ? "writable " : "", Py_TYPE(obj)->tp_name);
    return 0;
}

/* An int argument as an offset, clamped to [-1, PY_SSIZE_T_MAX] (the callers reject both ends as out of
   range, so a huge int is a ValueError like any other bad offset). Runs no Python code:
   PyLong_AsLongLongAndOverflow reads the int's digits, even of a subclass. */
static int as_offset(PyObject *obj, Py_ssize_t *out) {
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (value == -1 && !overflow && PyErr_Occurred()) return 0;
    if (overflow > 0 || (!overflow && value > (long long)PY_SSIZE_T_MAX)) *out = PY_SSIZE_T_MAX;
    else if (overflow < 0 || value < 0) *out = -1;
    else *out = (Py_ssize_t)value;
    return 1;
}

static int get_bytes(PyObject *obj, Py_buffer *view, const char *what) {
    return get_buffer(obj, view, PyBUF_SIMPLE, what);
}

PyDoc_STRVAR(leaf_into_doc,
             "leaf_into(out, seq, tail, body)\n--\n\n"
             "Append the record's 32-byte leaf digest to the bytearray `out`: "
             "sha256(b'\\x00[%d' % seq + tail + sha256(body).hexdigest().encode()).");

static PyObject *leaf_into(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "leaf_into() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *out = args[0];
    if (!PyByteArray_Check(out)) {
        PyErr_Format(PyExc_TypeError, "out must be a bytearray, not %.100s", Py_TYPE(out)->tp_name);
        return NULL;
    }
    if (!PyLong_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "seq must be an int, not %.100s", Py_TYPE(args[1])->tp_name);
        return NULL;
    }
    int overflow = 0;
    long long seq = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (overflow) {
        PyErr_SetString(PyExc_ValueError, "seq out of the 64-bit range");
        return NULL;
    }
    if (seq == -1 && PyErr_Occurred()) return NULL;
    char head[24];  /* b"\x00[%d" % seq: 2 + a sign + at most 19 digits */
    size_t n = format_head(seq, head);
    digest_state *st = state_of(module);
    Py_buffer tail, body;
    if (!get_bytes(args[2], &tail, "tail")) return NULL;
    if (!get_bytes(args[3], &body, "body")) {
        PyBuffer_Release(&tail);
        return NULL;
    }
    unsigned char digest[DIGEST];
    char hex[HEX];
    const void *one[1] = {body.buf};
    size_t one_len[1] = {(size_t)body.len};
    int ok = sha256(st, one, one_len, 1, digest);
    if (ok) {
        to_hex(digest, hex);
        const void *parts[3] = {head, tail.buf, hex};
        size_t lens[3] = {n, (size_t)tail.len, HEX};
        ok = sha256(st, parts, lens, 3, digest);
    }
    PyBuffer_Release(&tail);
    PyBuffer_Release(&body);
    if (!ok) return NULL;
    /* Only now (no buffer of ours held): a bytearray with exports of its own raises BufferError here. */
    Py_ssize_t size = PyByteArray_GET_SIZE(out);
    if (size > PY_SSIZE_T_MAX - DIGEST) return PyErr_NoMemory();
    if (PyByteArray_Resize(out, size + DIGEST) != 0) return NULL;
    memcpy(PyByteArray_AS_STRING(out) + size, digest, DIGEST);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(chain_doc,
             "chain(prev, leaves, lines, starts, hash_at)\n--\n\n"
             "Chain a run: for each 32-byte leaf in `leaves`, prev = sha256(prev + leaf), its hex written "
             "into `lines` at starts[i] + hash_at. Return the last link (32 bytes).");

static PyObject *chain(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "chain() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *starts = args[3];
    if (!PyList_Check(starts)) {
        PyErr_Format(PyExc_TypeError, "starts must be a list, not %.100s", Py_TYPE(starts)->tp_name);
        return NULL;
    }
    if (!PyLong_Check(args[4])) {
        PyErr_Format(PyExc_TypeError, "hash_at must be an int, not %.100s", Py_TYPE(args[4])->tp_name);
        return NULL;
    }
    Py_ssize_t hash_at;
    if (!as_offset(args[4], &hash_at)) return NULL;
    if (hash_at < 0) {
        PyErr_SetString(PyExc_ValueError, "hash_at must not be negative");
        return NULL;
    }
    digest_state *st = state_of(module);
    Py_buffer prev, leaves, lines;
    if (!get_bytes(args[0], &prev, "prev")) return NULL;
    if (!get_bytes(args[1], &leaves, "leaves")) {
        PyBuffer_Release(&prev);
        return NULL;
    }
    if (!get_buffer(args[2], &lines, PyBUF_WRITABLE, "lines")) {
        PyBuffer_Release(&prev);
        PyBuffer_Release(&leaves);
        return NULL;
    }
    PyObject *result = NULL;
    /* Everything is checked before the first byte is written: an error leaves `lines` as it was. */
    Py_ssize_t count = PyList_GET_SIZE(starts);
    if (prev.len != DIGEST) {
        PyErr_Format(PyExc_ValueError, "prev must be %d bytes, not %zd", DIGEST, prev.len);
        goto done;
    }
    if (leaves.len % DIGEST || leaves.len / DIGEST != count) {
        PyErr_Format(PyExc_ValueError, "leaves must be %d bytes per start (%zd starts), not %zd", DIGEST,
                     count, leaves.len);
        goto done;
    }
    /* The last offset a 64-character hex may start at (no line: every start is out of range). */
    Py_ssize_t last = hash_at > lines.len - HEX ? -1 : lines.len - HEX - hash_at;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(starts, i);
        if (!PyLong_Check(item)) {
            PyErr_Format(PyExc_TypeError, "starts[%zd] must be an int, not %.100s", i, Py_TYPE(item)->tp_name);
            goto done;
        }
        Py_ssize_t start;
        if (!as_offset(item, &start)) goto done;
        if (start < 0 || start > last) {
            PyErr_Format(PyExc_ValueError, "starts[%zd] is out of range: the hash does not fit in lines (%zd bytes)",
                         i, lines.len);
            goto done;
        }
    }
    /* The list cannot have changed: no Python code ran since it was checked (each start is in range). */
    unsigned char link[2 * DIGEST];  /* prev || leaf */
    memcpy(link, prev.buf, DIGEST);
    const unsigned char *leaf = (const unsigned char *)leaves.buf;
    char *out = (char *)lines.buf;
    const void *parts[1] = {link};
    size_t lens[1] = {sizeof link};
    for (Py_ssize_t i = 0; i < count; i++) {
        memcpy(link + DIGEST, leaf + i * DIGEST, DIGEST);
        if (!sha256(st, parts, lens, 1, link)) goto done;
        to_hex(link, out + PyLong_AsSsize_t(PyList_GET_ITEM(starts, i)) + hash_at);
    }
    result = PyBytes_FromStringAndSize((const char *)link, DIGEST);
done:
    PyBuffer_Release(&prev);
    PyBuffer_Release(&leaves);
    PyBuffer_Release(&lines);
    return result;
}

PyDoc_STRVAR(merkle_root_packed_doc,
             "merkle_root_packed(packed)\n--\n\n"
             "Hex Merkle root (RFC 6962 shape: sha256(b'\\x01' + left + right), an odd node promoted) of the "
             "32-byte leaf digests concatenated in `packed`; the empty tree's root is sha256(b'').");

static PyObject *merkle_root_packed(PyObject *module, PyObject *packed_arg) {
    digest_state *st = state_of(module);
    Py_buffer packed;
    if (!get_bytes(packed_arg, &packed, "packed")) return NULL;
    if (packed.len % DIGEST) {
        PyErr_Format(PyExc_ValueError, "packed must be a multiple of %d bytes, not %zd", DIGEST, packed.len);
        PyBuffer_Release(&packed);
        return NULL;
    }
    Py_ssize_t n = packed.len / DIGEST;
    unsigned char root[DIGEST];
    char hex[HEX];
    const unsigned char prefix[1] = {0x01};
    if (n == 0) {
        const void *parts[1] = {""};
        size_t lens[1] = {0};
        int ok = sha256(st, parts, lens, 1, root);
        PyBuffer_Release(&packed);
        if (!ok) return NULL;
    } else if (n == 1) {
        memcpy(root, packed.buf, DIGEST);
        PyBuffer_Release(&packed);
    } else {
        /* The first level straight from `packed` (a sibling pair is 64 contiguous bytes), then each
           level in place in one buffer: node j is written after nodes 2j and 2j + 1 were read. */
        Py_ssize_t width = (n + 1) / 2;
        unsigned char *level = PyMem_Malloc((size_t)width * DIGEST);
        if (level == NULL) {
            PyBuffer_Release(&packed);
            return PyErr_NoMemory();
        }
        const unsigned char *leaf = (const unsigned char *)packed.buf;
        const void *parts[2] = {prefix, NULL};
        size_t lens[2] = {1, 2 * DIGEST};
        int ok = 1;
        for (Py_ssize_t j = 0; ok && j < n / 2; j++) {
            parts[1] = leaf + 2 * j * DIGEST;
            ok = sha256(st, parts, lens, 2, level + j * DIGEST);
        }
        if (ok && n % 2) memcpy(level + (width - 1) * DIGEST, leaf + (n - 1) * DIGEST, DIGEST);
        PyBuffer_Release(&packed);
        n = width;
        unsigned char node[DIGEST];
        while (ok && n > 1) {
            width = (n + 1) / 2;
            for (Py_ssize_t j = 0; ok && j < n / 2; j++) {
                parts[1] = level + 2 * j * DIGEST;
                ok = sha256(st, parts, lens, 2, node);
                memcpy(level + j * DIGEST, node, DIGEST);
            }
            if (ok && n % 2) memmove(level + (width - 1) * DIGEST, level + (n - 1) * DIGEST, DIGEST);
            n = width;
        }
        if (ok) memcpy(root, level, DIGEST);
        PyMem_Free(level);
        if (!ok) return NULL;
    }
    to_hex(root, hex);
    return PyUnicode_FromStringAndSize(hex, HEX);
}

static PyMethodDef methods[] = {
    {"leaf_into", (PyCFunction)(void (*)(void))leaf_into, METH_FASTCALL, leaf_into_doc},
    {"chain", (PyCFunction)(void (*)(void))chain, METH_FASTCALL, chain_doc},
    {"merkle_root_packed", merkle_root_packed, METH_O, merkle_root_packed_doc},
    {NULL, NULL, 0, NULL},
};

static int exec_module(PyObject *module) {
    digest_state *st = state_of(module);
    st->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    st->ctx = EVP_MD_CTX_new();
    if (st->md == NULL || st->ctx == NULL) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL provides no SHA-256");
        return -1;
    }
    const char *version = OpenSSL_version(OPENSSL_VERSION);
    PyObject *what = PyUnicode_FromFormat("C, %s", version ? version : "OpenSSL");
    if (what == NULL || PyModule_AddObject(module, "IMPLEMENTATION", what) != 0) {
        Py_XDECREF(what);
        return -1;
    }
    return 0;
}

static void free_module(void *module) {
    digest_state *st = state_of((PyObject *)module);
    if (st == NULL) return;
    EVP_MD_CTX_free(st->ctx);
    EVP_MD_free(st->md);
    st->ctx = NULL;
    st->md = NULL;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "logstore.digest",
    .m_doc = "The log store's SHA-256 work (record leaves, the chain, the Merkle root) with OpenSSL; "
             "logstore/digest.py is the reference.",
    .m_size = sizeof(digest_state),
    .m_methods = methods,
    .m_slots = slots,
    .m_free = free_module,
};

PyMODINIT_FUNC PyInit_digest(void) { return PyModuleDef_Init(&module_def); }
