"""Every README snippet runs as written: each ```python block end to end, and each
command in a ```bash block (or the one an ``mpiexec`` line starts) is one the CLI
accepts (its options parse) or a file the repository ships.  Long runs (training
Fashion-MNIST for 10 epochs) are parsed, not run."""
from __future__ import annotations

import builtins
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```", README, flags=re.S | re.M)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
COMMANDS = [line.split(" #")[0].strip() for lang, code in BLOCKS if lang == "bash"
            for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
# commands quoted inline, as in the results tables (synopses with [OPTIONS] or A|B are not commands,
# nor a bare `cnnlab viz` named in a sentence)
COMMANDS += sorted({c for c in re.findall(r"`((?:python3 -m )?cnnlab (?:train|evaluate|summary|viz|report|"
                                          r"features|linear|models)[^`]*)`", README)
                    if not re.search(r"[\[|<]|\.\.\.|[A-Z]{3,}", c)
                    and (c.split()[-1] in ("train", "models")
                         or len(c.split()) > 2 + c.startswith("python3"))}
                   - set(COMMANDS))


def test_the_readme_has_snippets():
    assert len(PYTHON) >= 2 and len(COMMANDS) >= 15


@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{i}" for i in range(len(PYTHON))])
def test_python_snippet_runs(code, tmp_path):
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("line", COMMANDS)
def test_shell_command_is_accepted(line):
    for command in line.split("&&"):
        words = shlex.split(command)
        if words[0] == "mpiexec":      # mpiexec [its options] cnnlab ...: check the command it starts
            words = words[next(i for i, w in enumerate(words) if w in ("cnnlab", "python3")):]
        if words[:3] == ["python3", "-m", "pip"]:
            continue
        if words[:3] == ["python3", "-m", "cnnlab"] or words[0] == "cnnlab":
            args = words[3:] if words[0] == "python3" else words[1:]
            try:
                build_parser().parse_args(args)
            except SystemExit as e:    # argparse's way of refusing
                pytest.fail(f"the CLI refuses {command!r} (exit {e.code})")
        else:                          # bash scripts/x.sh, python examples/y.py ...
            script = next(w for w in words[1:] if not w.startswith("-"))
            assert (ROOT / script).is_file(), f"{command!r}: {script} is not in the repository"


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_paths_the_docs_name_exist(doc):
    text = doc.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:cnnlab|tests|benchmarks|examples|scripts|docs)/[\w./<>*-]*)`", text))
    missing = [p for p in named if "<" not in p and "*" not in p and not (ROOT / p).exists()]
    assert not missing, f"{doc.name} names paths the repository does not have: {missing}"


def test_names_the_architecture_map_gives_exist():
    """Every identifier docs/ARCHITECTURE.md quotes is defined somewhere in cnnlab/ or tests/."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    source = "\n".join(p.read_text(encoding="utf-8") for p in [*ROOT.glob("cnnlab/**/*.py"),
                                                               *ROOT.glob("tests/*.py")])
    quoted = {m.split("(")[0].split(".")[-1]
              for m in re.findall(r"`([A-Za-z_][\w.]*)(?:\([^`]*\))?`", text)}
    names = {q for q in quoted if ("_" in q or q[:1].isupper() and q[1:2].islower())
             and not re.search(r"(^|_)x(_|$)", q) and not hasattr(builtins, q)}   # x: a placeholder
    missing = sorted(n for n in names
                     if not re.search(rf"(def|class) {n}\b|^{n}\b *[:=]|\b{n}\b *= ", source, re.M))
    assert not missing, f"docs/ARCHITECTURE.md names what the code does not define: {missing}"
