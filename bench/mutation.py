#!/usr/bin/env python
"""Mutation testing of the core modules with mutmut 3 (run it through ``bench/mutation.sh``).

    bash bench/mutation.sh                    # every module below, one after the other
    bash bench/mutation.sh loss framing       # some of them
    bash bench/mutation.sh --list             # the modules, their functions and their tests

For each module a copy of the checkout (tracked and untracked, not ignored files) is made in
``mutants/<module>/`` with a ``[tool.mutmut]`` section for that module alone: the source file(s), and a
fast test selection (the unit tests that exercise the module; no training runs, no subprocess-heavy CLI
tests). mutmut copies that tree once more into its own ``mutants/`` there, changes one thing at a time in
the module's functions (a number, an operator, a comparison, a constant, an argument dropped, ...) and
runs the tests that reach the changed function; a mutant is *killed* when one of them fails (or it times
out), and *survives* otherwise. A module may be a few functions of a larger file (the trimap utilities
and the metrics in utils.py): only mutants of those functions are run and counted.

Prints, per module, the mutants tried, killed, survived (plus 'no tests': no selected test reached the
function) and the score = killed / tried, then every survivor as its one-line change. Writes
``mutants/summary.json``. Survivors that can't be told apart by behaviour (equivalent mutants) or that
are not worth a test are listed, with the reason, in bench/RESULTS.md.

Environment: MUTMUT_CHILDREN (default 1) parallel test processes; the copies are kept for ``mutmut show``
/ ``mutmut results`` inside ``mutants/<module>/`` until the next run of that module.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "mutants"
MUTMUT_VERSION = "3."   # the [tool.mutmut] keys below are mutmut 3's (2.x took command-line flags)

# exit codes of mutmut 3's workers (mutmut.stats.status_by_exit_code)
KILLED = {1, 3, 36, -24, 24, 152, 255, -11, -9, 37}   # test failure, pytest error, timeout, crash, type check
SURVIVED = {0}
NO_TESTS = {5, 33}


@dataclass
class Module:
    sources: list[str]            # files handed to mutmut (source_paths)
    tests: list[str]              # pytest arguments: the fast selection
    only: list[str] = field(default_factory=list)   # mutant-name globs when only some functions count
    about: str = ""


SUBPROCESS_TESTS = "not cli_help and not imports_neither and not killed_conversion"
MODULES: dict[str, Module] = {
    "trimap": Module(["utils.py"], ["tests/test_utils.py", "tests/test_guards_core.py", "-k", "not write and not cli"],
                     ["utils.x_erode_dilate*", "utils.x_make_trimap*", "utils.x_trimap_to_*"],
                     "utils.py: erode_dilate, make_trimap, trimap_to_image/classes"),
    "transforms": Module(["datasets/transforms.py"], ["tests/test_transforms.py", "tests/test_guards_core.py"],
                         about="datasets/transforms.py"),
    "loss": Module(["loss.py"], ["tests/test_loss.py", "tests/test_guards_core.py"], about="loss.py"),
    "metrics": Module(["matting_metrics.py", "utils.py"],
                      ["tests/test_evaluate.py", "tests/test_utils.py", "tests/test_guards_core.py",
                       "-k", f"{SUBPROCESS_TESTS} and not write and not cli"],
                      ["matting_metrics.*", "utils.xǁConfusionMatrixǁ*", "utils.xǁAverageMeterǁ*"],
                      "matting_metrics.py; utils.ConfusionMatrix, AverageMeter"),
    "pipeline": Module(["idphoto/pipeline.py"],
                       ["tests/test_idphoto.py", "tests/test_matting.py", "tests/test_guards_idphoto.py", "-k", SUBPROCESS_TESTS],
                       about="idphoto/pipeline.py"),
    "framing": Module(["idphoto/framing.py"],
                      ["tests/test_rules.py", "tests/test_idphoto.py", "tests/test_guards_idphoto.py",
                       "tests/test_mutation_guards.py", "-k", "not best_checkpoint"],
                      about="idphoto/framing.py"),
    "specs": Module(["idphoto/specs.py"],
                    ["tests/test_rules.py", "tests/test_idphoto.py", "tests/test_guards_idphoto.py",
                     "tests/test_mutation_guards.py", "-k", "not best_checkpoint"],
                    about="idphoto/specs.py"),
    "output": Module(["idphoto/output.py"], ["tests/test_idphoto.py", "tests/test_rules.py", "tests/test_guards_idphoto.py"],
                     about="idphoto/output.py"),
    "prepare": Module(["prepare_aifenge.py"], ["tests/test_prepare.py", "tests/test_guards_core.py", "-k", SUBPROCESS_TESTS],
                      about="prepare_aifenge.py: pairing, split, lists, conversion"),
}


def toml_list(items) -> str:
    return "[" + ", ".join(json.dumps(str(i)) for i in items) + "]"


def checkout_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                         capture_output=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def make_workspace(name: str, module: Module) -> Path:
    """A fresh copy of the checkout in mutants/<name>/ whose pyproject.toml configures mutmut for ``module``."""
    ws = WORK / name
    if ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True)
    files = checkout_files()
    for f in files:
        target = ws / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, target)
    top = sorted({f.split("/")[0] for f in files} - {"tests", "pyproject.toml", "mutants"})
    # a test file named in the selection but not in this checkout (yet) is left out, not an error
    tests = [t for t in module.tests if not t.startswith("tests/") or (ws / t.split("::")[0]).is_file()]
    text = (ws / "pyproject.toml").read_text(encoding="utf-8")
    text = text.split("\n[tool.mutmut]")[0].rstrip() + "\n"
    text += ("\n[tool.mutmut]\n"
             f"source_paths = {toml_list(module.sources)}\n"
             f"also_copy = {toml_list(top)}\n"
             f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
             "timeout_multiplier = 5.0\n")
    (ws / "pyproject.toml").write_text(text, encoding="utf-8")
    return ws


def mutant_results(ws: Path, module: Module) -> dict[str, int | None]:
    """{mutant name: worker exit code} from mutmut's .meta files, limited to ``module.only`` when set."""
    import fnmatch

    codes: dict[str, int | None] = {}
    for src in module.sources:
        meta = ws / "mutants" / (src + ".meta")
        if meta.is_file():
            codes.update(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])
    if module.only:
        codes = {k: v for k, v in codes.items() if any(fnmatch.fnmatch(k, g) for g in module.only)}
    return codes


def one_line_diffs(ws: Path, names: list[str]) -> dict[str, str]:
    """Each mutant's change as '- old line  →  + new line' (read in the workspace by mutmut itself)."""
    if not names:
        return {}
    code = ("import json, sys\n"
            "from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant\n"
            "out = {}\n"
            "for n in json.loads(sys.stdin.read()):\n"
            "    try:\n"
            "        d = get_diff_for_mutant(n, path=find_mutant(n).path)\n"
            "    except Exception as exc:\n"
            "        d = f'- ?\\n+ ({type(exc).__name__})'\n"
            "    lines = [l for l in d.splitlines() if l[:1] in '+-' and l[:3] not in ('---', '+++')]\n"
            "    out[n] = '  →  '.join(' '.join(l.split()) for l in lines)\n"
            "print(json.dumps(out))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ws, input=json.dumps(names), capture_output=True, text=True)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {n: "(diff unavailable: " + r.stderr.strip()[-200:] + ")" for n in names}


def run_module(name: str, module: Module, children: int) -> dict:
    ws = make_workspace(name, module)
    start = time.monotonic()
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *module.only]
    log = ws / "mutmut.log"
    with open(log, "w", encoding="utf-8") as f:
        rc = subprocess.run(cmd, cwd=ws, stdout=f, stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - start
    codes = mutant_results(ws, module)
    killed = sorted(k for k, v in codes.items() if v in KILLED)
    survived = sorted(k for k, v in codes.items() if v in SURVIVED)
    no_tests = sorted(k for k, v in codes.items() if v in NO_TESTS)
    other = sorted(k for k, v in codes.items() if k not in set(killed) | set(survived) | set(no_tests))
    tried = len(killed) + len(survived) + len(no_tests) + len(other)
    if rc != 0 or tried == 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        print(f"{name}: mutmut exited {rc} with {tried} mutants (log: {log})\n{tail}", file=sys.stderr)
    return {"module": name, "about": module.about, "seconds": round(seconds), "mutmut_exit": rc, "tried": tried,
            "killed": len(killed), "survived": survived, "no_tests": no_tests, "other": other,
            "score": round(100 * len(killed) / tried, 1) if tried else None,
            "diffs": one_line_diffs(ws, survived + no_tests + other)}


def print_table(results: list[dict]) -> None:
    print(f"\n{'module':<11} {'mutants':>7} {'killed':>6} {'survived':>8} {'no tests':>8} {'other':>5} {'score':>6} {'time':>6}")
    for r in results:
        score = "–" if r["score"] is None else f"{r['score']:.1f}%"
        print(f"{r['module']:<11} {r['tried']:>7} {r['killed']:>6} {len(r['survived']):>8} {len(r['no_tests']):>8} "
              f"{len(r['other']):>5} {score:>6} {r['seconds']:>5}s")
    tried = sum(r["tried"] for r in results)
    killed = sum(r["killed"] for r in results)
    if len(results) > 1 and tried:
        print(f"{'all':<11} {tried:>7} {killed:>6} {sum(len(r['survived']) for r in results):>8} "
              f"{sum(len(r['no_tests']) for r in results):>8} {sum(len(r['other']) for r in results):>5} "
              f"{100 * killed / tried:>5.1f}% {sum(r['seconds'] for r in results):>5}s")
    for r in results:
        for kind in ("survived", "no_tests", "other"):
            for n in r[kind]:
                print(f"{kind.replace('_', ' ')}: {n}: {r['diffs'].get(n, '')}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", help=f"modules to test (default: all): {', '.join(MODULES)}")
    p.add_argument("--list", action="store_true", help="list the modules, their sources and test selections")
    args = p.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        p.error(f"unknown module {unknown[0]!r}; choose from {', '.join(MODULES)}")
    if args.list:
        for n, m in MODULES.items():
            print(f"{n}: {m.about}\n    mutate: {' '.join(m.sources)}{'  only ' + ' '.join(m.only) if m.only else ''}"
                  f"\n    tests:  {' '.join(m.tests)}")
        return 0
    try:
        from importlib.metadata import version
        found = version("mutmut")
    except Exception:
        found = None
    if not (found or "").startswith(MUTMUT_VERSION):
        print(f"mutmut {MUTMUT_VERSION}x is needed (found: {found or 'none'}): "
              "pip install -r bench/requirements-mutation.txt", file=sys.stderr)
        return 2
    children = int(os.environ.get("MUTMUT_CHILDREN", "1"))
    results = []
    for name in args.modules or list(MODULES):
        print(f"{name}: mutating {' '.join(MODULES[name].sources)} ...", file=sys.stderr, flush=True)
        results.append(run_module(name, MODULES[name], children))
        r = results[-1]
        print(f"{name}: {r['killed']}/{r['tried']} killed in {r['seconds']} s", file=sys.stderr, flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    print(f"mutmut {found}, commit {commit or '?'}{' (with uncommitted changes)' if dirty() else ''}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {children} test process(es)")
    print_table(results)
    WORK.mkdir(exist_ok=True)
    summary = WORK / "summary.json"
    old = json.loads(summary.read_text()) if summary.is_file() else {}
    old.update({r["module"]: r for r in results})
    summary.write_text(json.dumps(old, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0 if all(r["mutmut_exit"] == 0 and r["tried"] for r in results) else 1


def dirty() -> bool:
    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True)
    return bool(r.stdout.strip())


if __name__ == "__main__":
    sys.exit(main())
