"""shardlm for Python: a ctypes binding of libshardlm's C ABI (shardlm.h), standard library only.

    import shardlm
    with shardlm.Model("packs/qwen3-tp2") as model, shardlm.Session(model) as chat:
        print(chat.chat("Hello!", on_text=lambda t: print(t, end="")).text)

The library is found through $SHARDLM_LIBRARY (a path), else ctypes.util.find_library("shardlm"),
else "libshardlm.so.1" on the default search path. Every failing call raises ShardlmError with
the status name and shardlm_last_error()'s message. Thread safety is the C ABI's: a Model may be
shared by threads; a Session is used by one thread at a time (cancel() excepted).
This module mirrors the structs of shardlm.h ABI version 1 (a library of a later ABI serves it:
later versions only append fields and add calls); the library checks every struct_size.
"""

import ctypes
import ctypes.util
import json
import os

ABI_VERSION = 1
DEFAULT = -1  # sampling fields: the pack's generation_config.json default
SEED_RANDOM = 2**64 - 1

_STATUS_NAMES = {
    0: "ok", 1: "invalid_arg", 2: "io", 3: "format", 4: "oom", 5: "backend", 6: "comm",
    7: "kv_full", 8: "cancelled", 9: "unsupported", 10: "internal", 11: "buffer_too_small",
}
FINISH_REASONS = {
    0: "none", 1: "stop_token", 2: "stop_string", 3: "max_tokens", 4: "context_full",
    5: "callback", 6: "cancelled",
}


class ShardlmError(Exception):
    """A call returned a status other than SHARDLM_OK."""

    def __init__(self, status, message, result=None):
        super().__init__("%s: %s" % (_STATUS_NAMES.get(status, status), message))
        self.status = status
        self.status_name = _STATUS_NAMES.get(status, str(status))
        self.message = message
        self.result = result  # a Reply when a generation was cancelled


# ---- struct mirrors of shardlm.h ----

class _ModelParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("backend", ctypes.c_char_p),
                ("devices", ctypes.POINTER(ctypes.c_int32)), ("n_devices", ctypes.c_size_t),
                ("n_threads", ctypes.c_int32), ("tp", ctypes.c_int32),
                ("max_seq", ctypes.c_int64), ("max_batch_tokens", ctypes.c_int64),
                ("mem_fraction", ctypes.c_float)]


class _ModelInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("family", ctypes.c_char_p),
                ("architecture", ctypes.c_char_p), ("backend", ctypes.c_char_p),
                ("weight_dtype", ctypes.c_char_p), ("tp_size", ctypes.c_int32),
                ("n_threads_per_rank", ctypes.c_int32), ("n_vocab", ctypes.c_int32),
                ("n_layer", ctypes.c_int32), ("n_embd", ctypes.c_int32),
                ("n_head", ctypes.c_int32), ("n_head_kv", ctypes.c_int32),
                ("head_dim", ctypes.c_int32), ("n_ctx", ctypes.c_int64),
                ("n_ctx_train", ctypes.c_int64), ("has_tokenizer", ctypes.c_int32),
                ("has_chat_template", ctypes.c_int32), ("has_thinking_switch", ctypes.c_int32),
                ("end_of_turn_token", ctypes.c_int32), ("weight_bytes", ctypes.c_uint64),
                ("kv_bytes_per_session", ctypes.c_uint64)]


class _ChatMessage(ctypes.Structure):
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


class _GenerateParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("max_tokens", ctypes.c_int32),
                ("temperature", ctypes.c_float), ("top_k", ctypes.c_int32),
                ("top_p", ctypes.c_float), ("min_p", ctypes.c_float),
                ("repetition_penalty", ctypes.c_float), ("presence_penalty", ctypes.c_float),
                ("frequency_penalty", ctypes.c_float), ("penalty_last_n", ctypes.c_int32),
                ("seed", ctypes.c_uint64), ("ignore_eos", ctypes.c_int32),
                ("stop_ids", ctypes.POINTER(ctypes.c_int32)), ("n_stop_ids", ctypes.c_size_t),
                ("stop_strings", ctypes.POINTER(ctypes.c_char_p)),
                ("n_stop_strings", ctypes.c_size_t)]


class _GenerateResult(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("finish_reason", ctypes.c_int32),
                ("n_generated", ctypes.c_int32), ("n_prompt", ctypes.c_int64),
                ("n_reused", ctypes.c_int64), ("n_prefilled", ctypes.c_int64),
                ("n_decode_steps", ctypes.c_int64), ("n_ctx_used", ctypes.c_int64),
                ("prefill_seconds", ctypes.c_double), ("ttft_seconds", ctypes.c_double),
                ("decode_seconds", ctypes.c_double)]


class _SessionParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("system_prompt", ctypes.c_char_p),
                ("enable_thinking", ctypes.c_int32)]


class _SessionInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("n_ctx", ctypes.c_int64),
                ("n_ctx_used", ctypes.c_int64), ("n_kv", ctypes.c_int64),
                ("n_messages", ctypes.c_int32), ("n_turns", ctypes.c_int32),
                ("has_system", ctypes.c_int32), ("enable_thinking", ctypes.c_int32)]


_StreamCallback = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(ctypes.c_char),
                                   ctypes.c_size_t, ctypes.c_void_p)


def _load(path=None):
    candidates = [path, os.environ.get("SHARDLM_LIBRARY"), ctypes.util.find_library("shardlm"),
                  "libshardlm.so.%d" % ABI_VERSION]
    errors = []
    for c in candidates:
        if not c:
            continue
        try:
            return ctypes.CDLL(c)
        except OSError as e:
            errors.append(str(e))
    raise OSError("libshardlm not found (set SHARDLM_LIBRARY): " + "; ".join(errors))


def _declare(lib):
    P, S = ctypes.POINTER, ctypes.c_size_t
    vp, i32, cp = ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p
    sigs = {
        "shardlm_abi_version": (ctypes.c_uint32, []),
        "shardlm_version": (cp, []),
        "shardlm_last_error": (cp, []),
        "shardlm_status_name": (cp, [ctypes.c_int]),
        "shardlm_backends": (ctypes.c_int, [cp, S, P(S)]),
        "shardlm_model_default_params": (_ModelParams, []),
        "shardlm_model_open": (ctypes.c_int, [cp, P(_ModelParams), P(vp)]),
        "shardlm_model_close": (None, [vp]),
        "shardlm_model_get_info": (ctypes.c_int, [vp, P(_ModelInfo)]),
        "shardlm_model_memory_plan": (ctypes.c_int, [vp, i32, cp, S, P(S)]),
        "shardlm_model_stop_ids": (ctypes.c_int, [vp, P(i32), S, P(S)]),
        "shardlm_model_generation_defaults": (ctypes.c_int, [vp, P(_GenerateParams)]),
        "shardlm_tokenize": (ctypes.c_int, [vp, cp, S, i32, P(i32), S, P(S)]),
        "shardlm_detokenize": (ctypes.c_int, [vp, P(i32), S, i32, cp, S, P(S)]),
        "shardlm_apply_chat_template": (ctypes.c_int,
                                        [vp, P(_ChatMessage), S, i32, cp, cp, S, P(S)]),
        "shardlm_generate_default_params": (_GenerateParams, []),
        "shardlm_session_default_params": (_SessionParams, []),
        "shardlm_session_create": (ctypes.c_int, [vp, P(_SessionParams), P(vp)]),
        "shardlm_session_destroy": (None, [vp]),
        "shardlm_session_set_system": (ctypes.c_int, [vp, cp]),
        "shardlm_session_set_thinking": (ctypes.c_int, [vp, i32]),
        "shardlm_session_add_message": (ctypes.c_int, [vp, cp, cp]),
        "shardlm_session_reset": (ctypes.c_int, [vp]),
        "shardlm_session_truncate": (ctypes.c_int, [vp, i32, P(i32)]),
        "shardlm_session_chat": (ctypes.c_int, [vp, cp, P(_GenerateParams), _StreamCallback, vp,
                                                P(_GenerateResult)]),
        "shardlm_session_complete": (ctypes.c_int, [vp, cp, P(_GenerateParams), _StreamCallback,
                                                    vp, P(_GenerateResult)]),
        "shardlm_session_complete_tokens": (ctypes.c_int,
                                            [vp, P(i32), S, P(_GenerateParams), _StreamCallback,
                                             vp, P(_GenerateResult)]),
        "shardlm_session_cancel": (None, [vp]),
        "shardlm_session_get_info": (ctypes.c_int, [vp, P(_SessionInfo)]),
        "shardlm_session_last_reply": (ctypes.c_int, [vp, cp, S, P(S)]),
        "shardlm_session_tokens": (ctypes.c_int, [vp, P(i32), S, P(S)]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


_lib = None


def library(path=None):
    """The loaded libshardlm (loaded on first use; `path` overrides the search)."""
    global _lib
    if _lib is None or path:
        _lib = _declare(_load(path))
        if _lib.shardlm_abi_version() < ABI_VERSION:
            raise OSError("libshardlm has ABI %d, this module needs %d"
                          % (_lib.shardlm_abi_version(), ABI_VERSION))
    return _lib


def _check(status, result=None):
    if status != 0:
        raise ShardlmError(status, library().shardlm_last_error().decode("utf-8", "replace"),
                           result)


def _two_call_text(fn, *args):
    n = ctypes.c_size_t(0)
    _check(fn(*args, None, 0, ctypes.byref(n)))
    buf = ctypes.create_string_buffer(n.value + 1)
    _check(fn(*args, buf, n.value + 1, ctypes.byref(n)))
    return buf.raw[:n.value].decode("utf-8")


def _two_call_ids(fn, *args):
    n = ctypes.c_size_t(0)
    _check(fn(*args, None, 0, ctypes.byref(n)))
    arr = (ctypes.c_int32 * max(n.value, 1))()
    _check(fn(*args, arr, n.value, ctypes.byref(n)))
    return list(arr[:n.value])


def version():
    return library().shardlm_version().decode()


def backends():
    return _two_call_text(library().shardlm_backends).split(",")


class Reply:
    """What one generation returned: the text and the C result's fields."""

    def __init__(self, text, r):
        self.text = text
        self.finish_reason = FINISH_REASONS.get(r.finish_reason, str(r.finish_reason))
        for name, _ in _GenerateResult._fields_[2:]:
            setattr(self, name, getattr(r, name))

    def __repr__(self):
        return "Reply(%r, finish=%s, generated=%d)" % (self.text, self.finish_reason,
                                                       self.n_generated)


class Model:
    """A loaded pack (all tensor-parallel ranks in this process)."""

    _h = None  # set once the library answered: close() and __del__ are safe before that

    def __init__(self, pack_dir, backend="cpu", n_threads=0, tp=0, max_seq=0,
                 max_batch_tokens=0, mem_fraction=0.0, devices=None, lib=None):
        self._lib = library(lib)
        p = self._lib.shardlm_model_default_params()
        p.backend = backend.encode()
        p.n_threads, p.tp, p.max_seq = n_threads, tp, max_seq
        p.max_batch_tokens, p.mem_fraction = max_batch_tokens, mem_fraction
        if devices:
            self._devices = (ctypes.c_int32 * len(devices))(*devices)
            p.devices, p.n_devices = self._devices, len(devices)
        self._h = ctypes.c_void_p()
        _check(self._lib.shardlm_model_open(os.fsencode(pack_dir), ctypes.byref(p),
                                            ctypes.byref(self._h)))

    def close(self):
        if self._h:
            self._lib.shardlm_model_close(self._h)
            self._h = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def info(self):
        i = _ModelInfo()
        i.struct_size = ctypes.sizeof(i)
        _check(self._lib.shardlm_model_get_info(self._h, ctypes.byref(i)))
        out = {}
        for name, _ in _ModelInfo._fields_[1:]:
            v = getattr(i, name)
            out[name] = v.decode() if isinstance(v, bytes) else v
        return out

    def memory_plan(self, as_json=False):
        text = _two_call_text(self._lib.shardlm_model_memory_plan, self._h, 1 if as_json else 0)
        return json.loads(text) if as_json else text

    def stop_ids(self):
        return _two_call_ids(self._lib.shardlm_model_stop_ids, self._h)

    def generation_defaults(self):
        g = _GenerateParams()
        g.struct_size = ctypes.sizeof(g)
        _check(self._lib.shardlm_model_generation_defaults(self._h, ctypes.byref(g)))
        return {k: getattr(g, k) for k in ("temperature", "top_k", "top_p", "min_p",
                                           "repetition_penalty")}

    def tokenize(self, text, add_special=False):
        data = text.encode("utf-8")
        return _two_call_ids(self._lib.shardlm_tokenize, self._h, data, len(data),
                             1 if add_special else 0)

    def detokenize(self, ids, skip_special=False):
        arr = (ctypes.c_int32 * max(len(ids), 1))(*ids)
        return _two_call_text(self._lib.shardlm_detokenize, self._h, arr, len(ids),
                              1 if skip_special else 0)

    def apply_chat_template(self, messages, add_generation_prompt=True, **variables):
        keep = [(m["role"].encode(), m["content"].encode()) for m in messages]
        arr = (_ChatMessage * max(len(keep), 1))(*[_ChatMessage(r, c) for r, c in keep])
        extra = json.dumps(variables).encode() if variables else None
        return _two_call_text(self._lib.shardlm_apply_chat_template, self._h, arr, len(keep),
                              1 if add_generation_prompt else 0, extra)


class Session:
    """A conversation with its own KV cache; each turn reuses the unchanged prefix."""

    _h = None

    def __init__(self, model, system=None, thinking=None):
        self._lib = model._lib
        self._model = model  # keeps the Python object alive; the C side also holds the model
        p = self._lib.shardlm_session_default_params()
        p.system_prompt = system.encode() if system else None
        p.enable_thinking = -1 if thinking is None else (1 if thinking else 0)
        self._h = ctypes.c_void_p()
        _check(self._lib.shardlm_session_create(model._h, ctypes.byref(p), ctypes.byref(self._h)))

    def close(self):
        if self._h:
            self._lib.shardlm_session_destroy(self._h)
            self._h = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _params(self, max_tokens=256, temperature=DEFAULT, top_k=DEFAULT, top_p=DEFAULT,
                min_p=DEFAULT, repetition_penalty=DEFAULT, presence_penalty=0.0,
                frequency_penalty=0.0, penalty_last_n=-1, seed=SEED_RANDOM, ignore_eos=False,
                stop=(), stop_ids=()):
        g = self._lib.shardlm_generate_default_params()
        g.max_tokens, g.temperature, g.top_k, g.top_p = max_tokens, temperature, top_k, top_p
        g.min_p, g.repetition_penalty = min_p, repetition_penalty
        g.presence_penalty, g.frequency_penalty = presence_penalty, frequency_penalty
        g.penalty_last_n, g.seed, g.ignore_eos = penalty_last_n, seed, 1 if ignore_eos else 0
        keep = []
        if stop:
            strs = (ctypes.c_char_p * len(stop))(*[s.encode() for s in stop])
            keep.append(strs)
            g.stop_strings, g.n_stop_strings = strs, len(stop)
        if stop_ids:
            ids = (ctypes.c_int32 * len(stop_ids))(*stop_ids)
            keep.append(ids)
            g.stop_ids, g.n_stop_ids = ids, len(stop_ids)
        return g, keep

    def _generate(self, fn, first_args, on_text, params):
        g, keep = self._params(**params)
        pieces = []
        errors = []

        def cb(token, text, length, user):
            piece = ctypes.string_at(text, length).decode("utf-8")
            pieces.append(piece)
            if on_text and piece:
                try:
                    return 1 if on_text(piece) is False else 0
                except Exception as e:  # never let an exception unwind through C
                    errors.append(e)
                    return 1
            return 0

        callback = _StreamCallback(cb)
        r = _GenerateResult()
        r.struct_size = ctypes.sizeof(r)
        status = fn(self._h, *first_args, ctypes.byref(g), callback, None, ctypes.byref(r))
        del keep
        if errors:
            raise errors[0]
        reply = Reply("".join(pieces), r)
        _check(status, reply)
        return reply

    def chat(self, message, on_text=None, **params):
        """One turn: returns a Reply. on_text(piece) streams; returning False stops."""
        return self._generate(self._lib.shardlm_session_chat, [message.encode("utf-8")],
                              on_text, params)

    def complete(self, prompt, on_text=None, **params):
        return self._generate(self._lib.shardlm_session_complete, [prompt.encode("utf-8")],
                              on_text, params)

    def complete_tokens(self, ids, on_text=None, **params):
        arr = (ctypes.c_int32 * max(len(ids), 1))(*ids)
        return self._generate(self._lib.shardlm_session_complete_tokens, [arr, len(ids)],
                              on_text, params)

    def cancel(self):
        """Stops the running generation (any thread)."""
        self._lib.shardlm_session_cancel(self._h)

    def set_system(self, text):
        _check(self._lib.shardlm_session_set_system(self._h, text.encode() if text else None))

    def set_thinking(self, enable):
        _check(self._lib.shardlm_session_set_thinking(
            self._h, -1 if enable is None else (1 if enable else 0)))

    def add_message(self, role, content):
        _check(self._lib.shardlm_session_add_message(self._h, role.encode(), content.encode()))

    def reset(self):
        _check(self._lib.shardlm_session_reset(self._h))

    def truncate(self, n_turns):
        dropped = ctypes.c_int32(0)
        _check(self._lib.shardlm_session_truncate(self._h, n_turns, ctypes.byref(dropped)))
        return dropped.value

    def info(self):
        i = _SessionInfo()
        i.struct_size = ctypes.sizeof(i)
        _check(self._lib.shardlm_session_get_info(self._h, ctypes.byref(i)))
        return {name: getattr(i, name) for name, _ in _SessionInfo._fields_[1:]}

    def tokens(self):
        return _two_call_ids(self._lib.shardlm_session_tokens, self._h)

    def last_reply(self):
        return _two_call_text(self._lib.shardlm_session_last_reply, self._h)
