"""Events as text, the way replay (and the live monitor) prints them.

One event, one line: sequence number, ``file:line`` indented by call depth, and
the source text of that line; changed locals follow on their own lines.
"""

import functools
import os

from smiley_like.events import CALL, EXCEPTION, LINE, RETURN

MAX_INDENT = 40  # levels; deeper recursion is shown with its depth number

DIM, BOLD, RED, GREEN, RESET = "\033[2m", "\033[1m", "\033[31m", "\033[32m", "\033[0m"


def source_text(files, file_no, line_no):
    """The stripped text of a source line; *files* maps file numbers to (path, lines)."""
    lines = files.get(file_no, (None, None))[1]
    if lines is None or not 0 < line_no <= len(lines):
        return ""
    return lines[line_no - 1].strip()


def relative_path(path, cwd):
    """*path* relative to *cwd* when it is inside it, else unchanged."""
    if cwd and path.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(path, cwd)
    return path


class ConsoleRenderer:
    """Writes events to *out*; ``files`` maps file numbers to (path, source lines)."""

    def __init__(self, out, files, *, cwd=None, show_locals=True, thread_names=None,
                 color=False):
        self.out = out
        self.files = files
        self.cwd = cwd
        self.show_locals = show_locals
        self.thread_names = thread_names  # {thread_no: name} when there are several
        self.color = color
        self._paths = {}

    def path(self, path):
        """*path* as shown: relative to the program's directory when inside it."""
        shown = self._paths.get(path)
        if shown is None:
            shown = self._paths[path] = relative_path(path, self.cwd)
        return shown

    def location(self, code, line_no):
        """``path:line`` of a place in *code*, the path relative to the run's directory."""
        return f"{self.path(code.path)}:{line_no}"

    def source_line(self, file_no, line_no):
        text = source_text(self.files, file_no, line_no)
        return self.highlight(text) if self.color and text else text

    def code_source(self, code, line_no):
        """The stripped text of a line of *code*'s file, uncoloured ("" if unknown)."""
        return source_text(self.files, code.file_no, line_no)

    @functools.lru_cache(maxsize=4096)
    def highlight(self, text):
        from pygments import highlight
        from pygments.formatters import TerminalFormatter
        from pygments.lexers import PythonLexer

        return highlight(text, PythonLexer(), TerminalFormatter()).rstrip("\n")

    def paint(self, style, text):
        return f"{style}{text}{RESET}" if self.color else text

    def format(self, event):
        """Return the text for one event (one or more lines, no final newline)."""
        depth = event.depth
        indent = "  " * min(depth, MAX_INDENT)
        if depth > MAX_INDENT:
            indent += f"[{depth}] "
        prefix = f"{event.seq:>8}  "
        if self.thread_names:
            prefix += f"[{self.thread_names.get(event.thread_no, event.thread_no)}] "
        line_no = event.line_no or event.code.first_line
        where = self.paint(DIM, f"{self.path(event.code.path)}:{line_no}")
        kind = event.kind
        value = event.value
        # Changes are detected when the frame's next line (or return) comes up:
        # print them first, so they read as the effect of the line above.
        changes = value if kind == LINE else event.changes if kind == RETURN else None
        before = ""
        if changes and self.show_locals:
            pad = " " * (len(prefix) + len(indent) + 4)
            before = "".join(f"{pad}{self._local(name, shown)}\n"
                             for name, shown in changes.items())
        if kind == LINE:
            return (f"{before}{prefix}{indent}{where}  "
                    f"{self.source_line(event.code.file_no, line_no)}")
        if kind == CALL:
            args = ", ".join(f"{name}={shown}" for name, shown in (value or {}).items()) \
                if self.show_locals and value else ""
            return f"{prefix}{indent}{where}  " + self.paint(
                BOLD, f"-> {event.code.name}({args})")
        if kind == RETURN:
            if event.raised:
                return f"{before}{prefix}{indent}{where}  " + self.paint(
                    RED, f"<- {event.code.name} raised {event.raised}")
            shown = f" {value}" if self.show_locals else ""
            return f"{before}{prefix}{indent}{where}  " + self.paint(
                GREEN, f"<- {event.code.name} returned{shown}")
        if kind == EXCEPTION:
            exc_type, message = value
            text = f"!! {exc_type}: {message}" if message else f"!! {exc_type}"
            return f"{prefix}{indent}{where}  " + self.paint(RED, text)
        return f"{prefix}{indent}{where}  ?"

    @staticmethod
    def _local(name, shown):
        return f"del {name}" if shown is None else f"{name} = {shown}"

    def write(self, event):
        self.out.write(self.format(event) + "\n")
