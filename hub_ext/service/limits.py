"""Input limits and the checks every API handler uses on what it is sent.

One place bounds what the service accepts, so no request can make it do
unbounded work or store something that breaks later (a command too long for
``execve``, a number JSON cannot write back, a NUL byte PostgreSQL refuses):

- bodies: at most ``max_body_bytes``, strict JSON (no ``NaN``/``Infinity``,
  no number beyond what a float holds), nested at most ``max_json_depth``
  deep, no NUL character in any string; every integer within +-2^53;
- the fields of a submission: command, arguments, environment, names
  (``check_command``, ``check_env``, ``check_text``);
- numbers: ``number(value, field, lo, hi, whole=...)`` with a message that
  says the range;
- query arguments: ``query_int`` (bounded, given at most once) and
  ``query_text``.

Handlers call these; the limits are traitlets on ``InputLimits``
(docs/service.md, "Limits").
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from traitlets import Integer
from traitlets.config import LoggingConfigurable

from .errors import ApiError, bad_request

#: The largest whole number any field or query argument may carry (JavaScript's safe integers).
MAX_INTEGER = 2**53
#: Workload ids, event ids: the database's 32-bit integer columns.
MAX_ID = 2**31 - 1


class InputLimits(LoggingConfigurable):
    """How much one request may send; larger requests are refused with a 4xx that says the limit."""

    max_body_bytes = Integer(
        1 << 20,
        help="""Largest request body in bytes (1 MiB). Larger bodies are refused with 413 before
        they are parsed.""",
    ).tag(config=True)

    max_json_depth = Integer(
        32,
        help="Deepest nesting of objects and lists a JSON body may have.",
    ).tag(config=True)

    max_command_bytes = Integer(
        64 * 1024,
        help="""Largest command of a job, in bytes of UTF-8 summed over its words (a command given
        as one string: its length). Linux refuses any single argument above 128 KiB and all
        arguments and environment together above about 2 MiB ("Argument list too long"), so the
        limit stays well below.""",
    ).tag(config=True)

    max_command_words = Integer(
        4096,
        help="Most words (program and arguments) a job's command may have.",
    ).tag(config=True)

    max_env_entries = Integer(
        256,
        help="Most environment variables a job may set.",
    ).tag(config=True)

    max_env_bytes = Integer(
        64 * 1024,
        help="Largest environment a job may set, in bytes of UTF-8 over all names and values.",
    ).tag(config=True)

    max_text_length = Integer(
        255,
        help="""Longest short text field (team, user, GPU model, node name, idempotency key), in
        characters. Workload names have their own limit (``WorkloadRules.max_name_length``).""",
    ).tag(config=True)

    max_path_length = Integer(
        4096,
        help="Longest working directory a job may name, in characters (Linux's PATH_MAX).",
    ).tag(config=True)

    # ------------------------------------------------------------ bodies

    def parse_body(self, raw: bytes) -> Any:
        """The JSON value of a request body, or an ApiError saying what is wrong with it."""
        if len(raw) > self.max_body_bytes:
            raise ApiError(413, f"the body is {len(raw):,} bytes; the limit is {self.max_body_bytes:,} bytes")
        try:
            value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
        except _NotStrict as e:
            raise bad_request(str(e)) from None
        except RecursionError:
            raise bad_request(f"the body is nested too deeply (at most {self.max_json_depth} levels)") from None
        except (ValueError, UnicodeDecodeError) as e:
            # ValueError includes integers with more digits than Python converts (4,300).
            raise bad_request(f"the body is not valid JSON: {e}") from None
        check_json_value(value, self.max_json_depth)
        return value

    # ------------------------------------------------------------ submission fields

    def check_command(self, command: Any) -> list[str] | None:
        """A job's command as a list of words (a string is split like a shell would), within the limits."""
        if command is None:
            return None
        if isinstance(command, str):
            if len(command) > self.max_command_bytes:
                raise bad_request(self._command_too_long(len(command.encode())))
            command = split_command(command)
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise bad_request("command must be a list of strings, e.g. [\"python\", \"train.py\"]")
        if len(command) > self.max_command_words:
            raise bad_request(f"command has {len(command):,} words; at most {self.max_command_words:,} are accepted")
        size = sum(len(c.encode()) + 1 for c in command)
        if size > self.max_command_bytes:
            raise bad_request(self._command_too_long(size))
        return command

    def _command_too_long(self, size: int) -> str:
        return (
            f"command is {size:,} bytes; at most {self.max_command_bytes:,} are accepted "
            "(put long inputs in a file and pass its path)"
        )

    def check_env(self, env: Any) -> dict[str, str] | None:
        if env is None:
            return None
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise bad_request("env must be an object of strings, e.g. {\"SEED\": \"1\"}")
        if len(env) > self.max_env_entries:
            raise bad_request(f"env has {len(env):,} variables; at most {self.max_env_entries:,} are accepted")
        for k in env:
            if not _ENV_NAME.match(k):
                raise bad_request(f"env: {k[:40]!r} is not a variable name (letters, digits and '_', not starting with a digit)")
        size = sum(len(k.encode()) + len(v.encode()) + 2 for k, v in env.items())
        if size > self.max_env_bytes:
            raise bad_request(f"env is {size:,} bytes; at most {self.max_env_bytes:,} are accepted")
        return env

    def check_text(self, value: Any, field: str, max_length: int | None = None, allow_empty: bool = False) -> str | None:
        """A short text field: a string of at most ``max_length`` (default ``max_text_length``) characters."""
        if value is None:
            return None
        limit = self.max_text_length if max_length is None else max_length
        if not isinstance(value, str) or (not value and not allow_empty) or len(value) > limit:
            raise bad_request(f"{field} must be {'' if allow_empty else 'non-empty '}text of at most {limit} characters")
        return value


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _NotStrict(ValueError):
    pass


def _refuse_constant(name: str):
    raise _NotStrict(f"the body contains {name}, which is not a number JSON allows; send a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotStrict(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is too large")
    return value


def check_json_value(value: Any, max_depth: int) -> None:
    """Refuse nesting beyond ``max_depth``, integers beyond +-2^53 and NUL characters (iterative: any size)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            if depth > max_depth:
                raise bad_request(f"the body is nested too deeply (at most {max_depth} levels)")
            for k, item in v.items():
                if "\x00" in k:
                    raise bad_request("the body contains a NUL character, which no field accepts")
                stack.append((item, depth + 1))
        elif isinstance(v, list):
            if depth > max_depth:
                raise bad_request(f"the body is nested too deeply (at most {max_depth} levels)")
            stack.extend((item, depth + 1) for item in v)
        elif isinstance(v, str):
            if "\x00" in v:
                raise bad_request("the body contains a NUL character, which no field accepts")
        elif isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INTEGER:
            raise bad_request(f"the number {str(v)[:20]}... is too large (whole numbers up to 2^53 are accepted)")


# ------------------------------------------------------------ numbers


def is_number(v: Any) -> bool:
    """A JSON number that is finite (bools are not numbers; huge integers are compared, never converted)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return abs(v) <= MAX_INTEGER
    return isinstance(v, float) and math.isfinite(v)


def number(v: Any, field: str, lo: float, hi: float, *, whole: bool = False, nullable: bool = False, hint: str = "") -> Any:
    """``v`` if it is a number in [lo, hi] (a whole one with ``whole``); else a 400 that says the range."""
    if v is None and nullable:
        return None
    ok = is_number(v) and lo <= v <= hi and (not whole or float(v).is_integer())
    if not ok:
        what = "a whole number" if whole else "a number"
        tail = ", or null" if nullable else ""
        raise bad_request(f"{field} must be {what} between {lo:g} and {hi:g}{tail}{hint}, not {_show(v)}")
    return int(v) if whole else v


def _show(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, float) or math.isfinite(v) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------ query arguments


def query_text(handler, name: str, default: str | None = None) -> str | None:
    """A query argument given at most once (a repeated one is refused, not silently reduced to one)."""
    values = handler.get_query_arguments(name)
    if len(values) > 1:
        raise bad_request(f"{name} may be given once, not {len(values)} times")
    # An empty value is a value ("?state=" is not a state), not an absent argument.
    return values[0] if values else default


def query_int(handler, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = query_text(handler, name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,20}", raw.strip()):
        raise bad_request(f"{name} must be a whole number between {lo} and {hi}, not {raw[:40]!r}")
    value = int(raw)
    if not lo <= value <= hi:
        raise bad_request(f"{name} must be a whole number between {lo} and {hi}, not {value}")
    return value


# ------------------------------------------------------------ splitting a command string


_WORD_PARTS = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
    | '(?P<single>[^']*)'
    | "(?P<double>(?:[^"\\]|\\.)*)"
    | \\(?P<escaped>.)
    | (?P<plain>[^ \t\r\n'"\\]+)
    | (?P<bad>['"\\])
    """,
    re.VERBOSE | re.DOTALL,
)
_DOUBLE_ESCAPES = re.compile(r'\\([\\"])')


def split_command(text: str) -> list[str]:
    """Split like ``shlex.split`` (POSIX rules, no comments), in time linear in the text's length.

    ``shlex`` builds each word one character at a time and is quadratic in the
    length of a word: 800,000 characters took seconds on the event loop.
    """
    words: list[str] = []
    current: list[str] = []
    in_word = False
    for m in _WORD_PARTS.finditer(text):
        kind = m.lastgroup
        if kind == "space":
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
            continue
        in_word = True
        if kind == "single":
            current.append(m.group("single"))
        elif kind == "double":
            current.append(_DOUBLE_ESCAPES.sub(r"\1", m.group("double")))
        elif kind == "escaped":
            current.append(m.group("escaped"))
        elif kind == "plain":
            current.append(m.group("plain"))
        else:
            what = "an escaped character after the final backslash" if m.group("bad") == "\\" else "a closing quotation"
            raise bad_request(f"command could not be split into words: no {what}")
    if in_word:
        words.append("".join(current))
    return words
