"""Every README snippet runs as written: each ```python block end to end, and each
command in a ```bash block is one the CLI accepts (its options parse) or a file the
repository ships.  Long runs (training Fashion-MNIST for 10 epochs) are parsed, not run."""
from __future__ import annotations

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
