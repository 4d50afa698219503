"""One settings object: defaults < [smiley_like] in setup.cfg/tox.ini < SMILEY_LIKE_* environment.

The command line has the last word: commands use these settings as their
argparse defaults.
"""

import configparser
import dataclasses
import os

from smiley_like.errors import UsageError

DEFAULT_DATABASE = ".smiley_like.db"
DEFAULT_SOCKET = "tcp://127.0.0.1:5556"
ENV_PREFIX = "SMILEY_LIKE_"
CONFIG_FILES = ("setup.cfg", "tox.ini")
SECTION = "smiley_like"


@dataclasses.dataclass
class Settings:
    """Everything a user can set once instead of on every command line."""

    database: str = DEFAULT_DATABASE
    socket: str = DEFAULT_SOCKET
    max_repr: int = 200
    max_depth: int = 4
    repr_timeout: float = 2.0
    flush_timeout: float = 5.0
    busy_timeout: float = 10.0  # seconds to wait for a locked database
    tracer: str = "auto"  # "c", "python", or "auto": c when it is built
    # the C tracer's: "settrace", "monitoring", "frame-eval" or "auto": monitoring
    # on 3.12+, frame-eval for --calls-only on 3.11
    hook: str = "auto"


def _coerce(field, text, where):
    if not isinstance(field.type, type):
        return text
    try:
        return field.type(text)
    except ValueError:
        kind = {int: "a whole number", float: "a number"}.get(field.type, field.type.__name__)
        raise UsageError(f"{where}: {field.name} must be {kind}, not {text!r}") from None


def load(directory="."):
    """Return the settings for a command run in *directory*."""
    settings = Settings()
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for name in CONFIG_FILES:
        parser = configparser.ConfigParser()
        path = os.path.join(directory, name)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as error:
            if parser.has_section(SECTION) or f"[{SECTION}]" in _head(path):
                raise UsageError(f"cannot read {path}: {error}") from None
            continue  # somebody else's broken file, without our section
        if parser.has_section(SECTION):
            for key, text in parser.items(SECTION):
                key = key.replace("-", "_")
                if key in fields:
                    setattr(settings, key, _coerce(fields[key], text, f"[{SECTION}] in {name}"))
            break
    for key, field in fields.items():
        text = os.environ.get(ENV_PREFIX + key.upper())
        if text:
            setattr(settings, key, _coerce(field, text, ENV_PREFIX + key.upper()))
    return settings


def _head(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
