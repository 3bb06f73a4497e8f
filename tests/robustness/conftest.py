"""Counts what the robustness suite tried (:mod:`tally`) and prints it after the run.

Fuzz examples and command lines are counted where they run; every other passing
test of the suite is one case of its file's kind (a crafted hostile file, a bad
value, a data-loss scenario)."""
import tally

KINDS = {"test_hostile_files": "crafted hostile file", "test_bad_values": "bad value",
         "test_data_loss": "data-loss scenario", "test_bad_cli_inputs": "command line"}
_before: dict[str, int] = {}


def pytest_runtest_setup(item):
    _before[item.nodeid] = sum(tally.COUNTS.values())


def pytest_runtest_logreport(report):
    if report.when != "call" or not report.passed or report.nodeid not in _before:
        return
    if sum(tally.COUNTS.values()) == _before.pop(report.nodeid):     # counted nothing itself
        module = report.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        kind = KINDS.get(module, "other case")
        tally.count(kind, "held" if kind == "data-loss scenario" else "refused")


def pytest_terminal_summary(terminalreporter):
    if not tally.COUNTS:
        return
    failed = [r for r in terminalreporter.stats.get("failed", []) if "robustness" in r.nodeid]
    zeros = ("data loss 0, hangs 0, silently wrong 0, tracebacks 0" if not failed
             else f"{len(failed)} robustness tests FAILED")
    terminalreporter.write_line(f"robustness: {tally.summary()}; {zeros}")
