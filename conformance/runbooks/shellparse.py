"""The commands of a runbook as a shell would run them: bash's grammar (bashlex, a port of
bash's own parser), every simple command with its words expanded where the runbook assigned
the variables, heredocs attached, commands inside $(...) and function bodies included.
Markdown is read block by block (fenced ```bash/```sh blocks and indented blocks)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

# A part of a word that only the running shell knows ($(...), $state, $1, an unset variable).
DYNAMIC = "\x00"


@dataclass
class Command:
    words: list[str]  # expanded; a word holding DYNAMIC is only partly known
    line: int  # in the document, 1-based
    block: int  # the code block (markdown) or step it belongs to
    section: str  # the markdown heading above it ("" in a script)
    heredoc: str | None = None
    stdin_file: str | None = None
    function: str | None = None  # the shell function whose body holds it

    @property
    def program(self) -> str:
        return self.words[0] if self.words else ""

    @property
    def text(self) -> str:
        return " ".join(w.replace(DYNAMIC, "…") for w in self.words)


@dataclass
class Block:
    text: str
    line: int  # where its first line is in the document
    section: str


@dataclass
class Script:
    commands: list[Command] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    functions: dict[str, list[Command]] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, why a block did not parse)


_FENCE = re.compile(r"^```(\w*)\s*$")
# A command written inline in prose (`kubectl apply -k manifests/`) is one too.
_INLINE = re.compile(r"`((?:kubectl|\.venv/bin/python -m conformance|python -m conformance) [^`]+)`")


def markdown_blocks(text: str, scope_level: int = 6) -> list[Block]:
    """The shell blocks of a markdown text: fenced bash/sh/shell (or untagged) blocks and
    blocks indented by four spaces, each with the heading it stands under (the last heading
    of level scope_level or above: one runbook's blocks share it)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    section, i = "", 0
    while i < len(lines):
        line = lines[i]
        heading = re.match(r"^(#+)\s", line)
        if heading and len(heading.group(1)) <= scope_level:
            section = line.lstrip("#").strip()
        for span in _INLINE.findall(line):
            blocks.append(Block(span, i + 1, section))
        fence = _FENCE.match(line)
        if fence:
            lang, body, start = fence.group(1), [], i + 2
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if lang in ("", "bash", "sh", "shell", "console"):
                blocks.append(Block("\n".join(body), start, section))
        elif line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            body, start = [], i + 1
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i][4:])
                i += 1
            text_block = "\n".join(body).rstrip()
            if text_block and not text_block.lstrip().startswith(("|", "-", "*")):
                blocks.append(Block(text_block, start, section))
            continue
        i += 1
    return blocks


def parse_blocks(blocks: list[Block], variables: dict[str, str] | None = None) -> Script:
    script = Script(variables=dict(variables or {}))
    for index, block in enumerate(blocks):
        _parse_into(script, block, index)
    return script


def parse_script(text: str, variables: dict[str, str] | None = None) -> Script:
    return parse_blocks([Block(text, 1, "")], variables)


def _parse_into(script: Script, block: Block, index: int) -> None:
    import bashlex

    source, joins = _prepare(block.text)
    try:
        trees = bashlex.parse(source)
    except Exception as exc:  # bashlex raises its own and NotImplementedError for the rare construct
        script.errors.append((block.line, f"{type(exc).__name__}: {exc}"))
        return
    walker = _Walker(script, source, block, index, joins)
    for tree in trees:
        walker.visit(tree, None)


def _prepare(text: str) -> tuple[str, list[int]]:
    """What bashlex cannot read, made readable without changing what the commands are:
    backslash-newline continuations joined (bashlex misplaces the words after one) and
    arithmetic $((...)) replaced by a number (no runbook check reads it). Returns the text and
    where each joined line break was, so that line numbers stay those of the document."""
    joins: list[int] = []
    out, i = [], 0
    while i < len(text):
        if text.startswith("\\\n", i):
            joins.append(sum(len(s) for s in out))
            out.append("  ")
            i += 2
            continue
        out.append(text[i])
        i += 1
    return re.sub(r"\$\(\(([^()]|\([^()]*\))*\)\)", "0", "".join(out)), joins


class _Walker:
    def __init__(self, script: Script, source: str, block: Block, index: int, joins: list[int] | None = None):
        self.script, self.source, self.block, self.index = script, source, block, index
        self.joins = joins or []

    def line(self, pos: int) -> int:
        return self.block.line + self.source.count("\n", 0, pos) + sum(1 for j in self.joins if j < pos)

    def value(self, part) -> str:
        if part.kind == "parameter":
            name = re.match(r"[A-Za-z_][A-Za-z0-9_]*|\d+|[@*#?$!-]", part.value)
            known = self.script.variables.get(name.group(0)) if name else None
            return known if known is not None else DYNAMIC
        return DYNAMIC  # command substitution, process substitution, arithmetic

    def expand(self, node) -> str:
        start, end = node.pos
        pieces, cursor = [], start
        for part in sorted(getattr(node, "parts", []) or [], key=lambda p: p.pos[0]):
            if part.kind not in ("parameter", "commandsubstitution", "processsubstitution"):
                continue
            pieces.append(self.source[cursor:part.pos[0]])
            pieces.append(self.value(part).replace("\\", "\\\\").replace('"', '\\"').replace("'", "\x01"))
            cursor = part.pos[1]
        pieces.append(self.source[cursor:end])
        raw = "".join(pieces)
        try:
            words = shlex.split(raw)
        except ValueError:
            words = [getattr(node, "word", raw)]
        return " ".join(words).replace("\x01", "'")

    def visit(self, node, function: str | None) -> None:
        kind = node.kind
        if kind == "function":
            name = node.parts[0].word
            body = Script(variables=self.script.variables)
            inner = _Walker(body, self.source, self.block, self.index, self.joins)
            for part in node.parts[1:]:
                inner.visit(part, name)
            for c in body.commands:
                c.function = name
            self.script.functions[name] = body.commands
            self.script.commands.extend(body.commands)
            return
        if kind == "command":
            self.command(node, function)
            return
        for child in _children(node):
            self.visit(child, function)

    def command(self, node, function: str | None) -> None:
        words, heredoc, stdin_file, assignments = [], None, None, []
        for part in node.parts:
            for sub in _substitutions(part):
                self.visit(sub, function)
            if part.kind == "word":
                words.append(self.expand(part))
            elif part.kind == "assignment":
                name, _, _ = part.word.partition("=")
                assignments.append((name, part))
            elif part.kind == "redirect":
                if getattr(part, "heredoc", None) is not None:
                    body = part.heredoc.value
                    heredoc = body[: body.rfind("\n") + 1] if "\n" in body else ""
                elif part.type == "<" and hasattr(part.output, "word"):
                    stdin_file = self.expand(part.output)
        if assignments and not words:
            for name, part in assignments:
                value = self.expand(part).partition("=")[2]
                self.script.variables[name] = value
            return
        if words and words[0] == "local":
            return
        self.script.commands.append(Command(words, self.line(node.pos[0]), self.index, self.block.section,
                                            heredoc, stdin_file, function))


def _children(node) -> list:
    out = []
    for attr in ("parts", "list"):
        out.extend(getattr(node, attr, None) or [])
    if getattr(node, "command", None) is not None and node.kind != "commandsubstitution":
        out.append(node.command)
    return [c for c in out if hasattr(c, "kind")]


def _substitutions(node) -> list:
    """The commands inside $(...) of a word or assignment, outermost first."""
    found = []
    for part in getattr(node, "parts", None) or []:
        if part.kind == "commandsubstitution":
            found.append(part.command)
        else:
            found.extend(_substitutions(part))
    return found
