"""A small Dockerfile reader for the tests: instructions with continuations joined, grouped into stages."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword in upper case and the rest of the line (continuations joined)."""

    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The arguments of a JSON-array (exec form) instruction such as ENTRYPOINT or HEALTHCHECK ... CMD."""
        text = self.args.split(" CMD ", 1)[1] if self.keyword == "HEALTHCHECK" else self.args
        value = json.loads(text.strip())
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.args}"
        return [str(v) for v in value]


@dataclass
class Stage:
    """A build stage: its base image (global ARGs substituted), its name and its instructions after FROM."""

    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """The stage's instructions with this keyword, in order."""
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        """The stage's only instruction with this keyword (fails when there are none or several)."""
        found = self.all(keyword)
        assert len(found) == 1, f"stage {self.name!r} has {len(found)} {keyword} instructions, expected 1"
        return found[0]


def instructions(text: str) -> list[Instruction]:
    """Every instruction of a Dockerfile, comments dropped and backslash continuations joined."""
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line, pending = (pending + line).strip(), ""
        keyword, _, args = line.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip()))
    return result


def _substitute(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text)


def stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The build stages in order; global ARG defaults are substituted into FROM lines."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    for ins in instructions(path.read_text()):
        if ins.keyword == "FROM":
            words = ins.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(result))
            result.append(Stage(_substitute(words[0], global_args), name))
        elif not result and ins.keyword == "ARG":
            key, _, default = ins.args.partition("=")
            global_args[key] = default
        elif result:
            result[-1].instructions.append(ins)
    return result


def stage(name: str, path: Path = DOCKERFILE) -> Stage:
    """The stage with this name."""
    by_name = {s.name: s for s in stages(path)}
    assert name in by_name, f"no stage {name!r} in {path}: {sorted(by_name)}"
    return by_name[name]


def copy_sources(ins: Instruction) -> tuple[list[str], str]:
    """(sources, destination) of a COPY, flags such as --chown dropped."""
    words = [w for w in shlex.split(ins.args) if not w.startswith("--")]
    return words[:-1], words[-1]


def env_values(stage: Stage) -> dict[str, str]:
    """The stage's ENV key=value pairs."""
    values: dict[str, str] = {}
    for ins in stage.all("ENV"):
        for word in shlex.split(ins.args):
            key, _, value = word.partition("=")
            values[key] = value
    return values
