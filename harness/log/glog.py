"""Streaming parser for Caffe's glog output: a line classifier, then a fold that assembles records.

`classify(line)` turns one physical line into typed events `(kind, fields, prefix)`: `kind` names the
message (KINDS lists them), `fields` is the match of that kind's pattern (its groups), `prefix` the match
of the glog prefix or None. Lines joined by copy-paste are cut apart first: at glog prefixes, at
`[Forward]` / `[Backward]` markers, and at the start of solver lines (for pastes without prefixes).

`LogFolder` folds those events into `harness.core.records` objects in log order. Caffe prints a train iteration's
debug lines before the line that names the iteration (`Iteration N (...)`), so they wait in a buffer
holding at most one iteration; test-net lines follow `Iteration N, Testing net (#k)` and carry no marker.
`parse_lines` and `parse_file` drive a LogFolder over an iterable / a file in constant memory.
"""
from __future__ import annotations

import codecs
import datetime
import gzip
import io
import itertools
import re
from typing import IO, Iterable, Iterator, Optional, Sequence

from ..core.records import (BACKWARD, FORWARD, TRAIN, BlobStat, Event, IterationEnd, ParamNorms, Record, TestResult,
                            Update, test_net_name)

# glog: "I1109 12:34:56.789012  1234 net.cpp:593] " (newer glog prints the year: "I20261109 ..."). Pastes
# drop parts, so everything is optional here; `_is_prefix` decides what is enough to count as a prefix.
_PREFIX = re.compile(r"(?P<sev>[IWEF])?(?P<date>\d{8}|\d{4})?\s?(?P<clock>\d\d:\d\d:\d\d(?:\.\d+)?)?"
                     r"(?:\s+(?:0x[0-9a-fA-F]+|\d+))?\s*(?P<src>[\w.\-/\\]+:\d+)?\]")
_SPACE = re.compile(r"\s*")
# A whole glog prefix, the common case, and the blanks after it: _PREFIX without the options, possessive,
# and with ASCII digits and word characters, which are cheaper to test. Where it matches it is _PREFIX's first
# try (a digit or letter past an ASCII run would meet a literal or a blank here, and fail), so _PREFIX would
# give the same groups; it costs half as much.
_FULL_PREFIX = re.compile(r"(?P<sev>[IWEF])(?P<date>(?>[0-9]{8}|[0-9]{4}))\s"
                          r"(?P<clock>[0-9][0-9]:[0-9][0-9]:[0-9][0-9](?:\.[0-9]++)?+)\s++(?>0x[0-9a-fA-F]++|[0-9]++)"
                          r"\s*+(?P<src>[A-Za-z0-9_.\-/\\]++:[0-9]++)\]\s*+")

# A custom glog sink seen in user logs: "1508138445  INFO: src/caffe/solver.cpp : line 218 : <message>" (Unix
# time, the level spelt out). Its groups stand in for _PREFIX's: sev is the level's initial, epoch the clock.
_SINK_PREFIX = re.compile(r"(?P<epoch>\d{9,11})[ \t]+(?P<sev>[IWEF])(?:NFO|ARNING|RROR|ATAL):[ \t]+"
                          r"(?P<src>\S+ : line \d+) :[ \t]*")
# What a paste wraps log lines in: Markdown block quotes and e-mail quoting ("> ", "> > ", ">> "), a list
# bullet, inline code (`...`). Skipped before the prefix; a line of a code fence (``` or ~~~) is markup only.
_QUOTE = re.compile(r"(?:(?:[ \t]*>)+ ?)?(?:[ \t]*[-*+][ \t]+(?=\S))?(?:[ \t]*`(?!``))?")
_FENCE = re.compile(r"(?:[ \t]*>)*[ \t]*(?:```|~~~)")

# The bulk of a debug log, prefix and message in one pattern. Its prefix part is loose because that is
# cheap: from the severity to the line's first "]" (the full prefix pattern costs as much again as the
# rest). Groups: marker, layer, kind, name, value. Layer names hold no brackets and blob names no blanks,
# so a match never spans lines joined by a paste.
_DEBUG = re.compile(r"(?:[IWEF]\d[^\]]*+\])?\s*+\[(Forward|Backward)\] Layer ([^\[\]]+?), "
                    r"(top|bottom|param) blob (\S++) (?:data|diff): (\S++)\s*$")

# A debug line's shape: its message up to the value (the head), and the value. The prefix part is _DEBUG's,
# and the value is the last blank-free run after a blank, as in _DEBUG: so every line _DEBUG matches has a
# shape, and _DEBUG gives every line with the same head the same groups but the value (the groups are fixed
# by the head: the value is what follows it). LogFolder runs _DEBUG once per head and then looks the groups up,
# which costs a third as much per line. re.S: _DEBUG's layer and blanks can span a "\n" too.
_SHAPE = re.compile(r"(?:[IWEF]\d[^\]]*+\])?(\s*+\[.*) (\S++)\s*$", re.S)
_SHAPES_CAP = 1 << 14   # heads a LogFolder remembers before it starts over: a net has a few per blob
_HEAD_CAP = 256         # longer heads are not remembered (no Caffe debug line is that long)

# Where a pasted line holds the next log line: a full glog prefix, a debug marker, or (for pastes with the
# prefixes stripped) the start of a solver line.
_JOINT = re.compile(r"[IWEF](?:\d{8}|\d{4})\s\d\d:\d\d:\d\d(?:\.\d+)?(?:\s+\d+)?\s+[^\s\]]+:\d+\]"
                    r"|\[(?:Forward|Backward|Update)\] |(?<![\w#])Iteration \d+[ ,]|(?:Train|Test) net output ?#")

_JOINT_HINT = re.compile(r"\[(?:(?:For|Back)ward|Update)\] |Iteration |T(?:est|rain) net output ?#")

_OUTPUT = (r" net output # ?(?P<index>\d+): (?P<name>.+?) = (?P<value>\S+)"
           r"(?: \(\* (?P<weight>\S+) = (?P<weighted>\S+) loss\))?$")

# (kind, the message's first word or None, pattern matched at the start of the message).
_MESSAGES = (
    ("blob", "[Forward]", _DEBUG),
    ("blob", "[Backward]", _DEBUG),
    ("norms", "[Backward]", r"\[Backward\] All net params \(data, diff\): L1 norm = \((?P<l1_data>[^,]+), "
                            r"(?P<l1_diff>[^)]+)\); L2 norm = \((?P<l2_data>[^,]+), (?P<l2_diff>[^)]+)\)"),
    # X is Caffe's uninitialised throughput at iteration 0: anything at all.
    ("display", "Iteration", r"Iteration (?P<iteration>\d+) \(.*\), loss = (?P<loss>\S+)$"),
    # After max_iter (and the display line of Caffe before 2016).
    ("final_loss", "Iteration", r"Iteration (?P<iteration>\d+), loss = (?P<loss>\S+)$"),
    # NVCaffe goes on: "lr = 0.0001, m = 0.9, wd = 0.0004, gs = 1".
    ("lr", "Iteration", r"Iteration (?P<iteration>\d+), lr = (?P<lr>[^\s,]+)(?:, .*)?$"),
    # Caffe before 2015 printed no index when there was one test net (and in January 2014 no iteration).
    ("testing", "Iteration", r"Iteration (?P<iteration>\d+), Testing net(?: \(#(?P<index>\d+)\))?"),
    ("testing", "Testing", r"Testing net(?: \(#(?P<index>\d+)\))?$"),
    ("train_output", "Train", "Train" + _OUTPUT),
    ("test_output", "Test", "Test" + _OUTPUT),
    # Caffe before 2015: a test output by its index only (named by "This network produces output X").
    ("test_score", "Test", r"Test score # ?(?P<index>\d+): (?P<value>\S+)$"),
    ("produces_output", "This", r"This network produces output (?P<name>.+)$"),
    # Caffe before 2015, with debug_info, after the lr line: the weights and the step about to be applied
    # (a shared parameter prints its diff only).
    ("update", "[Update]", r"\[Update\] Layer (?P<layer>.+?), param (?:blob )?(?P<param>\S+)"
                           r"(?: \(owned by layer .*\))? (?:data: (?P<data>\S+); )?diff: (?P<diff>\S+)$"),
    ("snapshot", "Snapshotting", r"Snapshotting to (?:binary proto|HDF5) file (?P<path>.+)$"),
    ("solver_snapshot", "Snapshotting", r"Snapshotting solver state to (?:binary proto|HDF5) file (?P<path>.+)$"),
    ("check_failed", "Check", r"(?P<text>Check failed.*)$"),
    ("ignored_source_layer", "Ignoring", r"Ignoring source layer (?P<layer>.+)$"),
    ("creating_net", "Creating", r"Creating (?:(?P<train>training) net|test(?:ing)? net(?: \(#(?P<index>\d+)\))?)"),
    ("net_parameter", "Initializing", r"Initializing net from parameters:\s*(?P<text>.*)$"),
    ("solver_parameter", "Initializing", r"Initializing solver from parameters:\s*(?P<text>.*)$"),
    ("optimization_done", "Optimization", r"Optimization Done\.$"),
    ("no_backward", None, r"(?P<layer>.+) does not need backward computation\.$"),
    ("needs_backward", None, r"(?P<layer>.+) needs backward computation\.$"),
)
_BY_WORD: dict = {}
for _kind, _word, _src in _MESSAGES:
    _BY_WORD.setdefault(_word, []).append((_kind, re.compile(_src)))
_ANYWHERE = _BY_WORD.pop(None)
_BY_WORD = {word: tuple(patterns + _ANYWHERE) for word, patterns in _BY_WORD.items()}  # what to try, in order
_ANYWHERE = tuple(_ANYWHERE)
_ALL = re.compile(r"(?P<text>.*)$", re.S)
_DISPLAY_EVERY = re.compile(r"s/(\d+) iters?\), loss = ")   # "(0.5 iter/s, 39.7s/20 iters)": the solver's display
_SNAPSHOT_ITERATION = re.compile(r"_iter_(\d+)\.\w+$")  # Caffe names snapshots <prefix>_iter_<N>.<ext>

# Every kind classify() yields: the message kinds above ("blob" is a debug line), "fatal" (any F-level
# line), "unknown" (a glog line of no known kind) and "text" (a line without prefix of no known kind:
# echoed prototxt text, or noise).
KINDS = ("fatal", "unknown", "text") + tuple(dict.fromkeys(kind for kind, _, _ in _MESSAGES))

_PHASES = {"Forward": FORWARD, "Backward": BACKWARD}
# Events that leave a display line's IterationEnd open (its outputs and lr follow it), and a test block open
# (its forward lines, then its outputs); "unknown" and "text" are noise from other threads as often as not.
# Each test starts by sharing the train net's weights, which logs `Ignoring source layer X` for every train
# layer the test net lacks (a loss layer, say): that belongs to the test block.
_CONTINUES_ITERATION = frozenset(("train_output", "lr", "unknown", "text"))
_CONTINUES_TEST = frozenset(("blob", "test_output", "test_score", "ignored_source_layer", "unknown", "text"))
_ECHO_CAP = 1 << 20     # characters kept of one echoed prototxt: the echo is bounded like everything else
_PENDING_CAP = 1 << 16  # buffered debug lines; beyond this no display line is coming (a bare pycaffe loop)
_SECONDS_PER_DAY = 86400
_SAMPLES = 5            # unrecognised lines quoted in the verdict
_SAMPLE_CHARS = 160
# A non-finite number as a word of its own in a line of no known kind: Caffe's own messages (gradient
# clipping's "L2 norm nan"), a custom layer's LOG(INFO). Not "info", "inference", "nan_layer" or "1e-5".
_NONFINITE_WORD = re.compile(r"(?<![\w.#-])[-+]?(?:nan|inf(?:inity)?)(?:\((?:ind|snan|qnan)\))?(?![\w#.])"
                             r"|[-+]?\d\.#(?:QNAN|SNAN|IND|INF)", re.I)
_DIGIT = re.compile(r"\d")
_BATCH = 512            # lines parse_lines feeds at a time: fewer calls, records still out promptly


def _number(text: str) -> float:
    """A number as Caffe prints it: also nan, -nan, inf, -inf, MSVC's 1.#INF / -1.#IND / 1.#QNAN (before
    Visual Studio 2015) and -nan(ind) / nan(snan) (since)."""
    try:
        return float(text)
    except ValueError:
        upper = text.upper()
        if "#IND" in upper or "#QNAN" in upper or "#SNAN" in upper or upper.lstrip("+-").startswith("NAN("):
            return float("nan")
        if "#INF" in upper:
            return float("-inf") if text.startswith("-") else float("inf")
        raise


_MARKDOWN_ESCAPE = re.compile(r"\\([*_#\[\]])")


def _is_prefix(m: re.Match) -> bool:
    return bool(m["src"] or (m["sev"] and (m["date"] or m["clock"])))


def _classify_message(message: str, prefix: Optional[re.Match], piece: str):
    if not message:
        return None
    if prefix is not None and prefix["sev"] == "F":
        return "fatal", _ALL.match(message), prefix
    for kind, pattern in _BY_WORD.get(message.partition(" ")[0], _ANYWHERE):
        m = pattern.match(message)
        if m is not None:
            return kind, m, prefix
    if "\\" in message:   # Markdown escapes, tried only where the message is of no known kind: "(\* 1 = 2 loss)"
        unescaped = _MARKDOWN_ESCAPE.sub(r"\1", message)
        if unescaped != message:
            return _classify_message(unescaped, prefix, _MARKDOWN_ESCAPE.sub(r"\1", piece))
    if prefix is not None:
        return "unknown", _ALL.match(message), prefix
    return "text", _ALL.match(piece.rstrip()), None


def classify(line: str) -> list:
    """The typed events of one physical line: [(kind, fields, prefix)]; [] for a blank line."""
    m = _DEBUG.match(line)
    return [("blob", m, None)] if m is not None else _classify_pieces(line)


def _next_joint(line: str, pos: int) -> int:
    """Where the next log line starts inside `line` from `pos` on (its length if none)."""
    # A joint from pos on is a glog prefix, its "]" 18 characters on or more, or holds one of _JOINT_HINT's
    # literals. Looking for those first is cheaper than the search, which a line's own "[Backward]" or
    # "Test net output #" would otherwise start.
    if line.find("]", pos + 18) < 0 and _JOINT_HINT.search(line, pos) is None:
        return len(line)
    joint = _JOINT.search(line, pos)
    return joint.start() if joint else len(line)


def _classify_pieces(line: str) -> list:
    """classify() for all but plain debug lines. A piece ends where a pasted line holds the next log line:
    at a glog prefix or a marker (_JOINT) past the start of the piece's message. Paste markup before the
    first piece is skipped; a code fence line yields nothing."""
    events, start, end = [], 0, len(line)
    prefix = _FULL_PREFIX.match(line)
    if prefix is None:   # not a plain glog line: paste markup may come first
        if _FENCE.match(line):
            return events
        start = _QUOTE.match(line).end()
        if line[start - 1:start] == "`":   # a line in Markdown's inline code: `I1007 ... diff: nan`
            line = line.rstrip().removesuffix("`")
            end = len(line)
        if start:
            prefix = _FULL_PREFIX.match(line, start)
    while start < end:
        if prefix is not None:
            body = prefix.end()
        else:
            prefix = _PREFIX.match(line, start)
            if prefix is None or not _is_prefix(prefix):
                prefix = _SINK_PREFIX.match(line, start)
            body = _SPACE.match(line, prefix.end() if prefix else start).end()
        stop = _next_joint(line, body + 1)
        event = _classify_message(line[body:stop].rstrip(), prefix, line[start:stop])
        if event is not None:
            events.append(event)
        start = stop
        prefix = _FULL_PREFIX.match(line, start) if start < end else None
    return events


def split_net(text: str) -> tuple:
    """(net, body) of a net-scoped Event's text: its first line is `# <net>` ("train", "test0", "unknown")."""
    head, _, body = text.partition("\n")
    return head[2:], body


_SET_ITERATION = object.__setattr__  # a buffered ParamNorms (frozen) learns its iteration before it is handed out
_NEW = object.__new__


def _blob_stat(iteration, net, pass_index, phase, layer, blob, kind, mean_abs):
    """BlobStat(iteration, ..., mean_abs) with the harness-only statistics unset, a fifth faster: the call
    does not go through type.__call__ and the generated __init__ (a test compares the two)."""
    r = _NEW(BlobStat)
    r.iteration = iteration
    r.net = net
    r.pass_index = pass_index
    r.phase = phase
    r.layer = layer
    r.blob = blob
    r.kind = kind
    r.mean_abs = mean_abs
    r.count = r.nonfinite = r.zero_fraction = r.max_abs = r.sumsq = None
    r.overflow = False
    r.printed = True
    r.record = "blob"
    return r


class _TestBlock:
    """`Iteration N, Testing net (#k)` up to its last `Test net output` line."""
    __slots__ = ("iteration", "net", "pass_index", "seen", "outputs", "loss_weights")

    def __init__(self, iteration: int, net: str):
        self.iteration, self.net, self.pass_index, self.seen, self.outputs = iteration, net, 0, set(), None
        self.loss_weights = {}


class _OpenIteration:
    """A display line whose Train net output and lr lines may still follow."""
    __slots__ = ("iteration", "smoothed_loss", "seconds", "passes", "outputs", "loss_terms", "loss_weights", "lr")

    def __init__(self, iteration: int, smoothed_loss: Optional[float], seconds: Optional[float], passes: int):
        self.iteration, self.smoothed_loss, self.seconds, self.passes = iteration, smoothed_loss, seconds, passes
        self.outputs, self.loss_terms, self.loss_weights, self.lr = {}, [], {}, None


class LogFolder:
    """Incremental fold: feed() glog lines as Caffe prints them, get the records that are complete.

    Iterations: train debug lines wait until `Iteration N (...)` (or `Iteration N, loss = L`, after the
    extra forward pass past max_iter) names their iteration; test-net lines take it from `Iteration N,
    Testing net (#k)`. Passes: a pass ends at the `All net params` line (one per forward/backward block:
    iter_size) or when a (phase, layer, blob, kind) repeats within it (test batches print no such line).
    Counters: `lines` (physical lines fed), `unknown_lines` (lines or pieces of no known kind, and known
    lines whose numbers do not parse), `blank_lines` (blank, or markup such as a code fence),
    `unrecognised_lines` (lines with nothing of Caffe's: no glog prefix, no known message, not part of an
    echoed prototxt); `unrecognised_with_numbers` of those hold a digit; `unreadable_numbers` (lines of a known
    kind whose number does not parse); the first few of both are `samples`;
    `other_lines` (a glog prefix over a message of no known kind: other programs print glog prefixes too;
    echoed prototxt); `caffe_lines` the rest, Caffe's messages; `joined_rows` (rows of a paste wrapped at
    `wrap_width` columns, joined to the line they continue). Counted per piece where a paste joined lines.
    """

    def __init__(self):
        self.lines = 0
        self.unknown_lines = 0
        self.blank_lines = 0
        self.other_lines = 0
        self._loose_texts = 0             # text pieces no echo took, so far
        self.unrecognised_lines = 0
        self.unrecognised_with_numbers = 0
        self.unreadable_numbers = 0
        self.samples: list = []
        self.first_lines: list = []          # the first few non-blank lines, printable (for "not a Caffe log")
        self.wrap_width = 0                  # set by parse_lines / parse_file: the terminal width rows were cut at
        self.joined_rows = 0
        self._out: list = []
        self._shapes: dict = {}           # head -> _learn()'s entry
        self._pending: list = []          # train records waiting for their iteration (set when it is known)
        self._pass = 0
        self._seen: set = set()
        self._next_iteration: Optional[int] = None   # best guess for the buffered lines; None before training
        self._display: Optional[int] = None         # solver's display interval, from its echo or two display lines
        self._iter_size = 1
        self._last_display: Optional[int] = None
        self._modern = False                         # seen a display line with its "(X iter/s, ...)" part
        self._open: Optional[_OpenIteration] = None
        self._test: Optional[_TestBlock] = None
        self._echo: Optional[list] = None            # [kind, text lines, characters]
        self._net_label = "unknown"
        self._produced: dict = {}                    # net label -> its outputs, as "This network produces output X"
        self._early_lr: Optional[tuple] = None       # (iteration, lr): Caffe before 2015 printed lr first
        self._t0: Optional[tuple] = None
        self._handlers: dict = {kind: getattr(self, "_on_" + kind) for kind in KINDS}

    # ---- public --------------------------------------------------------------------------------------
    def feed(self, line: str) -> list:
        """Records completed by this physical line (possibly several joined lines), in log order."""
        self._feed((line,))
        return self._take()

    def close(self) -> list:
        """End of input: whatever is still open, with the best iteration the log allows."""
        if self._echo is not None:
            self._finish_echo()
        self._close_iteration()
        self._flush_early_lr()
        self._close_test()
        if self._pending:
            self._flush_train(self._guess())
        return self._take()

    # ---- driving -------------------------------------------------------------------------------------
    def _take(self) -> list:
        out, self._out = self._out, []
        return out

    def _feed(self, lines: Sequence[str]) -> None:
        """classify() each line and dispatch its events. Records collect in self._out. Debug lines are most
        of a log: _fold_blobs takes each run of them in one call."""
        if len(self.first_lines) < _SAMPLES:
            wanted = _SAMPLES - len(self.first_lines)
            self.first_lines += [_printable(line) for line in lines[:64] if line.strip()][:wanted]
        i, n = 0, len(lines)
        while True:
            i = self._fold_blobs(lines, i)
            if i == n:
                break
            loose, events = self._loose_texts, _classify_pieces(lines[i])
            if not events:
                self.blank_lines += 1
            for kind, fields, prefix in events:
                self._dispatch(kind, fields, prefix)
            # Text before a known message (an unknown prefix, "... solver.cpp:106]") leaves the line Caffe's.
            if self._loose_texts != loose and self._loose_texts - loose == len(events):
                self._unrecognised(lines[i])
            i += 1
        self.lines += n

    @property
    def caffe_lines(self) -> int:
        return self.lines - self.joined_rows - self.blank_lines - self.unrecognised_lines - self.other_lines

    def _unreadable(self, text: str) -> None:
        """Count a line of a known kind whose number does not parse (cut off, mangled); quote the first few."""
        self.unknown_lines += 1
        self.unreadable_numbers += 1
        if len(self.samples) < _SAMPLES:
            self.samples.append(_printable(text))

    def _unrecognised(self, line: str) -> None:
        """Count a line with nothing of Caffe's in it; quote the first few that hold a number."""
        self.unrecognised_lines += 1
        if _DIGIT.search(line):
            self.unrecognised_with_numbers += 1
            if len(self.samples) < _SAMPLES:
                self.samples.append(_printable(line))

    def _dispatch(self, kind: str, fields: re.Match, prefix: Optional[re.Match]) -> None:
        self._end(kind, prefix)
        self._handlers[kind](fields, prefix)

    def _end(self, kind: str, prefix: Optional[re.Match]) -> None:
        """What an event of this kind ends: an echoed prototxt, a display line's outputs, a test block."""
        if self._echo is not None and kind != "text":
            self._finish_echo()
        if self._open is not None and kind not in _CONTINUES_ITERATION:
            self._close_iteration()
        if self._test is not None and kind not in _CONTINUES_TEST:
            self._close_test()
        if self._t0 is None and prefix is not None:
            self._t0 = _clock(prefix)

    def _guess(self) -> int:
        return self._next_iteration or 0

    def _seconds(self, prefix) -> Optional[float]:
        """Seconds since the first glog clock reading (None without a clock, or if it went backwards)."""
        clock = _clock(prefix)
        if clock is None or self._t0 is None:
            return None
        elapsed = (clock[0] - self._t0[0]) * _SECONDS_PER_DAY + clock[1] - self._t0[1]
        return round(elapsed, 6) if elapsed >= 0 else None

    # ---- train lines ---------------------------------------------------------------------------------
    def _new_pass(self) -> None:
        self._pass += 1
        self._seen = set()

    def _flush_train(self, iteration: int) -> None:
        for record in self._pending:
            if type(record) is BlobStat:
                record.iteration = iteration
            else:  # ParamNorms, frozen but not handed out yet
                _SET_ITERATION(record, "iteration", iteration)
        self._out.extend(self._pending)
        self._pending = []
        self._pass = 0
        self._seen = set()

    def _on_blob(self, m: re.Match, prefix) -> None:
        self._fold_blobs((m.string,), 0)  # a debug line in a pasted line: m matched its message

    def _learn(self, line: str, head: str) -> Optional[tuple]:
        """(key, phase, layer, blob, kind) of a line with this head, from _DEBUG (None: not a debug
        line), remembered for the next line with this head."""
        m = _DEBUG.match(line)
        if m is None:
            return None
        marker, layer, kind, name = key = m.group(1, 2, 3, 4)
        entry = key, _PHASES[marker], layer, "param blob " + name if kind == "param" else name, kind
        if len(head) <= _HEAD_CAP:
            if len(self._shapes) >= _SHAPES_CAP:
                self._shapes.clear()
            self._shapes[head] = entry
        return entry

    def _fold_blobs(self, lines: Sequence[str], i: int) -> int:
        """Fold lines[i], lines[i + 1], ... while they are debug lines; returns the index of the first other.
        Forward lines of an open test block are the test net's, any other closes it and is a train line.
        The bulk of a log goes through this loop: per line one match, one dict and one set operation."""
        shape, shapes, n = _SHAPE.match, self._shapes, len(lines)
        out, pending = self._out, self._pending
        ended = self._echo is None and self._open is None  # what a debug line ends; nothing here opens either
        for i in range(i, n):
            line = lines[i]
            s = shape(line)
            if s is None:
                return i
            head, number = s.groups()
            entry = shapes.get(head)
            if entry is None:
                entry = self._learn(line, head)
                if entry is None:
                    return i
            if not ended:
                self._end("blob", None)
                ended = True
            key, phase, layer, blob, kind = entry
            try:
                value = float(number)
            except ValueError:
                try:
                    value = _number(number)
                except ValueError:
                    self._unreadable(line)
                    continue
            test = self._test
            if test is not None:
                if test.outputs is None and phase == FORWARD:
                    seen = test.seen
                    size = len(seen)
                    seen.add(key)
                    if len(seen) == size:  # a repeat: the next test batch
                        test.pass_index += 1
                        test.seen = {key}
                    out.append(_blob_stat(test.iteration, test.net, test.pass_index, phase, layer, blob, kind,
                                          value))
                    continue
                self._close_test()
            seen = self._seen
            size = len(seen)
            seen.add(key)
            if len(seen) == size:  # a repeat: the next forward/backward block
                self._pass += 1
                self._seen = {key}
            pending.append(_blob_stat(None, TRAIN, self._pass, phase, layer, blob, kind, value))
            if len(pending) > _PENDING_CAP:
                self._flush_train(self._guess())
                pending = self._pending
        return n

    def _on_norms(self, m: re.Match, prefix) -> None:
        try:
            values = [_number(text.strip()) for text in m.group("l1_data", "l1_diff", "l2_data", "l2_diff")]
        except ValueError:
            self._unreadable(m.string)
            return
        self._pending.append(ParamNorms(None, TRAIN, self._pass, *values))
        self._new_pass()

    # ---- iterations ----------------------------------------------------------------------------------
    def _on_display(self, m: re.Match, prefix) -> None:
        self._modern = True
        every = _DISPLAY_EVERY.search(m.string) if self._display is None else None
        if every is not None and int(every[1]) > 0:
            self._display = int(every[1])
        self._iteration_line(m, prefix)

    def _on_final_loss(self, m: re.Match, prefix) -> None:
        # Caffe since 2016 prints this only after max_iter, for its extra forward pass: no gradients and no
        # update, so no IterationEnd (the live path has no such iteration). Older Caffe displayed with it.
        if not self._modern:
            self._iteration_line(m, prefix)
            return
        iteration = int(m["iteration"])
        self._flush_train(iteration)
        try:
            self._event("final_loss", repr(_number(m["loss"])), iteration)
        except ValueError:
            self._unreadable(m.string)

    def _iteration_line(self, m: re.Match, prefix) -> None:
        """`Iteration N ...loss = L`: the buffered train lines are iteration N's; its outputs and lr follow."""
        iteration = int(m["iteration"])
        passes = self._pass + (1 if self._seen else 0)
        self._flush_train(iteration)
        if self._last_display is not None and iteration > self._last_display and self._display is None:
            step = iteration - self._last_display
        else:
            step = self._display or 1
        self._last_display = iteration
        self._next_iteration = iteration + step
        try:
            smoothed = _number(m["loss"])
        except ValueError:
            self._unreadable(m.string)
            smoothed = None
        if self._early_lr is not None and self._early_lr[0] == iteration:
            lr, self._early_lr = self._early_lr[1], None
        else:
            lr = None
            self._flush_early_lr()
        self._open = _OpenIteration(iteration, smoothed, self._seconds(prefix), passes)
        self._open.lr = lr

    def _on_train_output(self, m: re.Match, prefix) -> None:
        it = self._open
        if it is None:   # an excerpt that starts below its display line: the lr line may still name it
            it = self._open = _OpenIteration(None, None, None, 0)
        try:
            value = _number(m["value"])
            if m["weighted"] is not None:
                it.loss_terms.append(_number(m["weighted"]))
                it.loss_weights[m["name"]] = _number(m["weight"])
        except ValueError:
            self._unreadable(m.string)
            return
        _add_output(it.outputs, m["name"], value)

    def _on_lr(self, m: re.Match, prefix) -> None:
        it, iteration = self._open, int(m["iteration"])
        try:
            lr = _number(m["lr"])
        except ValueError:
            self._unreadable(m.string)
            lr = None
        if it is not None and it.iteration in (iteration, None):
            it.iteration, it.lr = iteration, lr
        else:   # Caffe before 2015 printed `Iteration N, lr = X` before `Iteration N, loss = L`
            self._flush_early_lr()
            self._early_lr = (iteration, lr)
        self._close_iteration()

    def _flush_early_lr(self) -> None:
        """An lr line no display line claimed (an excerpt cut it off): still a displayed iteration."""
        if self._early_lr is not None:
            iteration, lr = self._early_lr
            self._early_lr = None
            self._out.append(IterationEnd(iteration=iteration, lr=lr, display=self._display))

    def _close_iteration(self) -> None:
        it = self._open
        if it is None:
            return
        self._open = None
        if it.iteration is None:   # outputs no line named the iteration of
            self.unknown_lines += len(it.outputs)
            return
        # Train net output shows the last forward/backward block only: it is the iteration's loss when
        # there was one block.
        single = it.passes <= 1 and self._iter_size == 1
        loss = sum(it.loss_terms) if it.loss_terms and single else None
        self._out.append(IterationEnd(iteration=it.iteration, loss=loss, smoothed_loss=it.smoothed_loss,
                                      outputs=it.outputs, lr=it.lr, seconds=it.seconds,
                                      loss_weights=it.loss_weights, display=self._display))

    # ---- test nets -----------------------------------------------------------------------------------
    def _on_testing(self, m: re.Match, prefix) -> None:
        if "iteration" in m.re.groupindex:
            iteration = int(m["iteration"])
        else:   # it followed the display line of its iteration
            iteration = self._last_display if self._last_display is not None else self._guess()
        if self._pending:  # debug lines no display line claimed: not Caffe's order, keep them anyway
            self._flush_train(self._guess())
        self._test = _TestBlock(iteration, test_net_name(int(m["index"] or 0)))
        # A test runs at the start of its iteration: the next train lines belong to it or a later one.
        self._next_iteration = max(self._next_iteration or 0, iteration)

    def _on_test_output(self, m: re.Match, prefix) -> None:
        if self._add_test_output(m["name"], m) and m["weight"] is not None:
            try:
                self._test.loss_weights[m["name"]] = _number(m["weight"])
            except ValueError:
                self._unreadable(m.string)

    def _on_test_score(self, m: re.Match, prefix) -> None:
        test, index = self._test, int(m["index"])
        produced = self._produced.get(test.net, ()) if test is not None else ()
        self._add_test_output(produced[index] if index < len(produced) else f"Test score #{index}", m)

    def _add_test_output(self, name: str, m: re.Match) -> bool:
        try:
            value = _number(m["value"])
        except ValueError:
            self._unreadable(m.string)
            return False
        test = self._test
        if test is None:   # a paste of the test outputs alone: the first test net, at the best guess
            test = self._test = _TestBlock(self._guess(), test_net_name(0))
        if test.outputs is None:
            test.outputs = {}
        _add_output(test.outputs, name, value)
        return True

    def _on_produces_output(self, m: re.Match, prefix) -> None:
        self._produced.setdefault(self._net_label, []).append(m["name"].strip())

    def _close_test(self) -> None:
        test = self._test
        if test is None:
            return
        self._test = None
        self._out.append(TestResult(iteration=test.iteration, net=test.net, outputs=test.outputs or {},
                                    loss_weights=test.loss_weights))

    # ---- events --------------------------------------------------------------------------------------
    def _event(self, kind: str, text: str, iteration: Optional[int] = None) -> None:
        self._out.append(Event(iteration=iteration, kind=kind, text=text))

    def _on_snapshot(self, m: re.Match, prefix) -> None:
        path = m["path"].strip()
        named = _SNAPSHOT_ITERATION.search(path)
        self._event("snapshot", path, int(named[1]) if named else self._next_iteration)

    _on_solver_snapshot = _on_snapshot

    def _on_fatal(self, m: re.Match, prefix) -> None:
        if self._pending:
            self._flush_train(self._guess())
        self._event("fatal", m["text"], self._next_iteration)

    _on_check_failed = _on_fatal

    def _on_ignored_source_layer(self, m: re.Match, prefix) -> None:
        # Inside a test block it is the test net sharing the train net's weights (routine: the train net's
        # loss layer, say); only outside one does it mean a weights file had layers the net lacks.
        if self._test is None:
            self._event("ignored_source_layer", m["layer"])

    def _on_no_backward(self, m: re.Match, prefix) -> None:
        self._event("no_backward", f"# {self._net_label}\n{m['layer']}")

    def _on_needs_backward(self, m: re.Match, prefix) -> None:
        self._event("needs_backward", f"# {self._net_label}\n{m['layer']}")

    def _on_creating_net(self, m: re.Match, prefix) -> None:
        self._net_label = TRAIN if m["train"] else test_net_name(int(m["index"] or 0))

    def _on_update(self, m: re.Match, prefix) -> None:
        # Printed after the display and lr lines of the iteration it updates.
        try:
            data = _number(m["data"]) if m["data"] is not None else None
            update = Update(m["layer"], f"param blob {m['param']}", data, _number(m["diff"]))
        except ValueError:
            self._unreadable(m.string)
            return
        self._out.append(update.event(self._last_display if self._last_display is not None else self._guess()))

    def _on_net_parameter(self, m: re.Match, prefix) -> None:
        first = m["text"]
        self._echo = ["net_parameter", [first] if first else [], len(first)]

    def _on_solver_parameter(self, m: re.Match, prefix) -> None:
        first = m["text"]
        self._echo = ["solver_parameter", [first] if first else [], len(first)]

    def _on_text(self, m: re.Match, prefix) -> None:
        echo = self._echo
        if echo is None or echo[2] > _ECHO_CAP:
            self.unknown_lines += 1
            self._loose_texts += 1
            return
        self.other_lines += 1
        echo[1].append(m["text"])
        echo[2] += len(m["text"])

    def _finish_echo(self) -> None:
        kind, lines, _ = self._echo
        self._echo = None
        text = "\n".join(lines) + "\n"
        if kind == "solver_parameter":
            self._learn_solver(text)
            self._event(kind, text)
        else:
            self._event(kind, f"# {self._net_label}\n{text}")

    def _learn_solver(self, text: str) -> None:
        display = re.search(r"^\s*display: (\d+)\s*$", text, re.M)
        iter_size = re.search(r"^\s*iter_size: (\d+)\s*$", text, re.M)
        if display and int(display[1]) > 0:
            self._display = int(display[1])
        self._iter_size = int(iter_size[1]) if iter_size else 1

    def _on_optimization_done(self, m: re.Match, prefix) -> None:
        self._event("optimization_done", "", self._last_display)

    def _on_unknown(self, m: re.Match, prefix) -> None:
        self.unknown_lines += 1
        self.other_lines += 1
        if _NONFINITE_WORD.search(m["text"]):   # a printed non-finite number is evidence, whatever the line
            self._event("nonfinite_text", m["text"].strip(), self._next_iteration)


def _printable(line: str) -> str:
    """A line as a message may quote it: stripped, shortened, anything unprintable as "?"."""
    line = line.strip().replace("\t", " ")[:_SAMPLE_CHARS]
    if line.isprintable() and "\ufffd" not in line:
        return line
    return "".join(c if c.isprintable() and c != "\ufffd" else "?" for c in line)   # U+FFFD: bytes not UTF-8


def _clock(prefix) -> Optional[tuple]:
    """(day, seconds) of a glog prefix's date and time; day 0 when it has no date; None without a time."""
    if prefix is None:
        return None
    if prefix.re is _SINK_PREFIX:
        return 0, float(prefix["epoch"])
    if not prefix["clock"]:
        return None
    h, m, s = prefix["clock"].split(":")
    date, day = prefix["date"], 0
    if date:
        try:  # "mmdd" has no year: any leap year will do for day differences within one log
            day = datetime.date(int(date[:-4] or 2000), int(date[-4:-2]), int(date[-2:])).toordinal()
        except ValueError:
            return None
    return day, int(h) * 3600 + int(m) * 60 + float(s)


def _add_output(outputs: dict, name: str, value: float) -> None:
    """An output blob of several elements prints one line per element: keep them all, as a list."""
    if name not in outputs:
        outputs[name] = value
    elif isinstance(outputs[name], list):
        outputs[name].append(value)
    else:
        outputs[name] = [outputs[name], value]


def parse_lines(lines: Iterable[str], folder: Optional[LogFolder] = None) -> Iterator[Record]:
    """Records from glog lines, streaming. Pass a LogFolder to read its counters afterwards."""
    # Records come out of a chain over lists: no generator to resume per record (a log holds millions).
    return itertools.chain.from_iterable(_record_lists(lines, LogFolder() if folder is None else folder))


def _record_lists(lines: Iterable[str], folder: LogFolder) -> Iterator[list]:
    lines = iter(lines)
    for batch in _unwrapped(iter(lambda: list(itertools.islice(lines, _BATCH)), []), folder):
        folder._feed(batch)
        yield folder._take()
    yield folder.close()


# ---- pastes wrapped at a terminal's width ------------------------------------------------------------------
# A console copy breaks every line longer than the terminal's width into rows of exactly that width (some
# consoles pad the last row with blanks), tokens cut anywhere. A log is taken as wrapped when log lines of
# its longest length are followed by shorter rows that start no log line, twice or more in its first lines:
# then each row of that width and the rows that continue it are one line again.
_MIN_WRAP_WIDTH = 40
_MIN_WRAPS = 2
_WRAP_SAMPLE = 2000     # lines the width is judged on
_LINE_START = re.compile(r"(?:(?:[ \t]*>)+ ?)?(?:[ \t]*[-*+][ \t]+)?[ \t]*(?:[IWEF]?\d{4}(?:\d{4})?[ \t]+\d\d:\d\d"
                         r"|[IWEF]\d\d:\d\d:\d\d|\d{9,11}[ \t]+[A-Z]+:|\[(?:Forward|Backward|Update)\]|Iteration \d"
                         r"|(?:Train|Test) net output|Test score|```|~~~)")
_BLOCKQUOTE = re.compile(r"(?:[ \t]*>)+ ?")


def _continues(row: str, following: str) -> bool:
    """Whether `following` (a row, line end stripped) continues `row`, a row of the wrap width: it starts
    no log line, and `row` does not end in padding (two blanks or more; one blank before an indented row)."""
    if not following.strip() or _LINE_START.match(following) or row[-2:].isspace():
        return False
    return not (row[-1:].isspace() and following[:1].isspace())


def _wrap_width(lines: list) -> int:
    rows = [line.rstrip("\r\n") for line in lines[:_WRAP_SAMPLE]]
    width = max(map(len, rows), default=0)
    if width < _MIN_WRAP_WIDTH:
        return 0
    # A wrap: a row of that width that starts a log line, continued by a shorter row (its tail; a log whose
    # lines all have one length, other programs' progress lines say, is not wrapped).
    wraps = sum(1 for row, following in zip(rows, rows[1:])
                if len(row) == width and len(following.rstrip()) < width and _LINE_START.match(row)
                and _continues(row, following))
    return width if wraps >= _MIN_WRAPS else 0


def _unwrapped(line_lists: Iterator[list], folder: LogFolder) -> Iterator[list]:
    """The lists of lines with wrapped rows joined again (the width is judged on the first list); lists
    pass unchanged when the log is not wrapped. The folder counts the rows joined (`joined_rows`, also in
    `lines`) and learns the `wrap_width`."""
    width, held, tail = None, None, ""
    for lines in line_lists:
        if width is None:
            width = folder.wrap_width = _wrap_width(lines)
        if not width:
            yield lines
            continue
        out = []
        for line in lines:
            row = line.rstrip("\r\n")
            if held is not None:
                if _continues(tail, row):
                    quote = _BLOCKQUOTE.match(held)
                    if quote is not None and row.startswith(quote.group()):   # e-mail quoting on every row
                        row = row[quote.end():]
                    held, tail = held + row, row
                    folder.joined_rows += 1
                    folder.lines += 1
                    if len(tail) < width:
                        out.append(held)
                        held = None
                    continue
                out.append(held)
                held = None
            if len(row) == width:
                held, tail = row, row
            else:
                out.append(line)
        yield out
    if held is not None:
        yield [held]


def _line_lists(stream: IO[bytes], chunk: int) -> Iterator[list]:
    """Lines of a byte stream, decoded in large chunks (fast), a chunk's worth at a time, none longer than
    `chunk` characters (a multi-GB file without newlines must not become one string)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    carry = ""
    while True:
        raw = stream.read(chunk)
        lines = (carry + decoder.decode(raw, final=not raw)).split("\n")
        carry = lines.pop()
        yield lines
        if not raw:
            break
        if len(carry) > chunk:
            yield [carry]
            carry = ""
    if carry:
        yield [carry]


def parse_file(path, folder: Optional[LogFolder] = None) -> Iterator[Record]:
    """Records from a log file (gzip or not), read as bytes: any byte sequence parses."""
    return itertools.chain.from_iterable(_file_record_lists(path, LogFolder() if folder is None else folder))


def parse_stream(stream: IO[bytes], folder: Optional[LogFolder] = None) -> Iterator[Record]:
    """Records from an open byte stream (standard input, say), gzip or not; the caller closes it."""
    return itertools.chain.from_iterable(_stream_record_lists(stream, LogFolder() if folder is None else folder))


def _file_record_lists(path, folder: LogFolder) -> Iterator[list]:
    with open(path, "rb") as stream:
        yield from _stream_record_lists(stream, folder)


_GZIP_MAGIC = b"\x1f\x8b"


def _stream_record_lists(stream: IO[bytes], folder: LogFolder) -> Iterator[list]:
    stream = stream if hasattr(stream, "peek") else io.BufferedReader(stream)
    if stream.peek(len(_GZIP_MAGIC))[:len(_GZIP_MAGIC)] == _GZIP_MAGIC:   # by content: a name may not say
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    # Slices of the decoded chunks: 4% faster than feeding the lines one by one through parse_lines
    # (and a whole chunk at a time is slower still: more records live at once).
    for lines in _unwrapped(_line_lists(stream, 1 << 20), folder):
        for start in range(0, len(lines), _BATCH):
            folder._feed(lines[start:start + _BATCH])
            yield folder._take()
    yield folder.close()
