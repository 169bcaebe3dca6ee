#!/usr/bin/env python
"""Mutation testing of the core modules with mutmut 3 (run it through ``tools/mutation.sh``).

    bash tools/mutation.sh                    # every module below, one after the other
    bash tools/mutation.sh loss framing       # some of them
    bash tools/mutation.sh --list             # the modules, their functions and their tests

For each module a copy of the checkout (tracked and untracked, not ignored files) is made in
``mutants/<module>/`` with a ``[tool.mutmut]`` section for that module alone: the source file(s), and a
fast test selection (the unit tests that exercise the module; no training runs, no subprocess-heavy CLI
tests). mutmut copies that tree once more into its own ``mutants/`` there, changes one thing at a time in
the module's functions (a number, an operator, a comparison, a constant, an argument dropped, ...) and
runs the tests that reach the changed function; a mutant is *killed* when one of them fails (or it times
out), and *survives* otherwise. A module may be a few functions of a larger file (the pairing and split of
datasets/prepare.py): only mutants of those functions are run and counted.

Prints, per module, the mutants tried, the equivalent ones, killed, survived, accepted and 'no tests' (no
selected test reached the function), and the score = killed / (mutants − equivalent); then every survivor
as its one-line change. tools/mutation_equivalents.txt holds the rules (module, function, pattern of the
change, reason) that mark a survivor *equivalent* (no behaviour tells it apart: left out of the score) or
*accepted* (judged not worth a test: still counted as a survivor); ``--report`` prints the table again
from ``mutants/summary.json`` with the current rules, without running anything.

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


SUBPROCESS_TESTS = "not cli_help and not imports_neither and not killed_conversion and not bad_src"
IDPHOTO_SLOW = "not best_checkpoint and not pymatting"      # a training run; pymatting's solver (pipeline only)
# compose_id_photo on small synthetic or given mattes: the rest of test_maker.py runs the shipped model on 3000 px
# photos, too slow for every mutant
COMPOSE_TESTS = [f"tests/test_maker.py::{name}" for name in (
    "test_make_id_photo_without_face", "test_make_id_photo_without_person_is_an_error",
    "test_make_id_photo_refuses_to_frame_on_a_false_face", "test_a_real_close_up_is_not_framed_on_a_cheek",
    "test_haar_fallback_still_frames_by_the_head_rule", "test_a_portrait_rotated_7_degrees_is_levelled",
    "test_real_portraits_meet_the_rules_of_several_specs")]
MODULES: dict[str, Module] = {
    "trimap": Module(["core/trimaps.py"], ["tests/test_utils.py", "-k", "not write and not cli"],
                     about="core/trimaps.py: erode_dilate, make_trimap, trimap_to_image/classes"),
    "transforms": Module(["datasets/transforms.py"], ["tests/test_transforms.py"],
                         about="datasets/transforms.py"),
    "loss": Module(["tnet/losses.py"], ["tests/test_loss.py"], about="tnet/losses.py"),
    "metrics": Module(["core/metrics.py"],
                      ["tests/test_evaluate.py", "tests/test_utils.py", "tests/test_metrics.py",
                       "-k", f"{SUBPROCESS_TESTS} and not write and not cli"],
                      about="core/metrics.py: ConfusionMatrix, AverageMeter, the matting errors"),
    # pymatting's methods are tested in the suite, not here: its numba kernels hang in mutmut's forked test processes
    "pipeline": Module(["idphoto/pipeline.py"],
                       ["tests/test_pipeline.py", "tests/test_matting.py", "-k",
                        SUBPROCESS_TESTS + " and not pymatting"],
                       about="idphoto/pipeline.py"),
    # the 50-spec portrait tests of test_specs.py only for specs: framing has faster ones for each rule
    "framing": Module(["idphoto/framing.py"],
                      ["tests/test_framing.py", "tests/test_subject.py", "tests/test_compliance.py", *COMPOSE_TESTS,
                       "-k", IDPHOTO_SLOW],
                      about="idphoto/framing.py"),
    # infer.py's --spec-file test alone: the rest of test_infer.py trains checkpoints and runs whole batches
    "specs": Module(["idphoto/specs.py"],
                    ["tests/test_specs.py", "tests/test_spec_table.py", "tests/test_framing.py", "tests/test_subject.py",
                     "tests/test_compliance.py", *COMPOSE_TESTS, "tests/test_infer.py::test_cli_spec_file_and_list_specs",
                     "-k", IDPHOTO_SLOW],
                    about="idphoto/specs.py"),
    "output": Module(["idphoto/output.py"],
                     ["tests/test_output.py", "tests/test_colour.py", "tests/test_compliance.py", "tests/test_framing.py", *COMPOSE_TESTS,
                      "-k", IDPHOTO_SLOW],
                     about="idphoto/output.py"),
    # the pairing and the split (the conversion, its journal and workers are tested end to end, and slowly)
    "prepare": Module(["datasets/prepare.py"], ["tests/test_prepare.py", "-k", SUBPROCESS_TESTS],
                      ["datasets.prepare.x_find_samples*", "datasets.prepare.x_sample_paths*",
                       "datasets.prepare.x_split_by_group*", "datasets.prepare.x_write_lists*"],
                      "datasets/prepare.py: find_samples (pairing), sample_paths, split_by_group, write_lists"),
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


def cpu_seconds() -> float:
    """User + system CPU time of the finished child processes (mutmut and the test processes it forked)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_module(name: str, module: Module, children: int) -> dict:
    ws = make_workspace(name, module)
    start, cpu_start = time.monotonic(), cpu_seconds()
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *module.only]
    log = ws / "mutmut.log"
    with open(log, "w", encoding="utf-8") as f:
        rc = subprocess.run(cmd, cwd=ws, stdout=f, stderr=subprocess.STDOUT).returncode
    seconds, cpu = time.monotonic() - start, cpu_seconds() - cpu_start
    codes = mutant_results(ws, module)
    if rc != 0 or not codes:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        print(f"{name}: mutmut exited {rc} with {len(codes)} mutants (log: {log})\n{tail}", file=sys.stderr)
    not_killed = sorted(k for k, v in codes.items() if v not in KILLED)
    return {"module": name, "about": module.about, "seconds": round(seconds), "cpu_seconds": round(cpu),
            "mutmut_exit": rc, "codes": codes, "diffs": one_line_diffs(ws, not_killed)}


# ------------------------------------------------------------------------------------- equivalent mutants
EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.txt")


def load_rules(path: Path = EQUIVALENTS) -> list[tuple]:
    """Lines ``kind | module | function glob | regular expression on the change | reason``; kind is
    ``equivalent`` (no behaviour can tell it apart: left out of the score) or ``accepted`` (a real change
    judged not worth a test: it stays in the score as a survivor, with the reason printed)."""
    import re

    rules = []
    if not path.is_file():
        return rules
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) != 5 or parts[0] not in ("equivalent", "accepted"):
            raise SystemExit(f"{path.name}:{n}: expected 'kind | module | function glob | regex | reason'")
        rules.append((parts[0], parts[1], parts[2], re.compile(parts[3]), parts[4], n))
    return rules


def function_of(mutant: str) -> str:
    """'idphoto.framing.x_render__mutmut_3' → 'render'; methods as 'Class.method'."""
    tail = mutant.rsplit(".", 1)[-1].split("__mutmut_")[0]
    tail = tail[2:] if tail.startswith(("x_", "xǁ")) else tail
    return tail.replace("ǁ", ".").strip(".")


def classify(result: dict, rules: list[tuple]) -> dict:
    import fnmatch

    codes, diffs = result["codes"], result["diffs"]
    out = {"killed": [], "survived": [], "no_tests": [], "other": [], "equivalent": [], "accepted": []}
    for name, code in sorted(codes.items()):
        if code in KILLED:
            out["killed"].append(name)
            continue
        rule = next((r for r in rules if r[1] in ("*", result["module"]) and fnmatch.fnmatch(function_of(name), r[2])
                     and r[3].search(diffs.get(name, ""))), None)
        if rule is not None:
            out[rule[0]].append((name, rule[5]))
        else:
            out["survived" if code in SURVIVED else "no_tests" if code in NO_TESTS else "other"].append(name)
    tried = len(codes)
    counted = tried - len(out["equivalent"])
    out["tried"], out["counted"] = tried, counted
    out["score"] = round(100 * len(out["killed"]) / counted, 1) if counted else None
    return out


def print_table(results: list[dict], rules: list[tuple]) -> None:
    print(f"\n{'module':<11} {'mutants':>7} {'equiv.':>6} {'killed':>6} {'survived':>8} {'accepted':>8} {'no tests':>8} "
          f"{'score':>6} {'wall':>6} {'cpu':>6}")
    totals = dict.fromkeys(("tried", "equivalent", "killed", "survived", "accepted", "no_tests", "counted", "seconds", "cpu"), 0)
    classified = []
    for r in results:
        c = classify(r, rules)
        classified.append((r, c))
        row = {"tried": c["tried"], "equivalent": len(c["equivalent"]), "killed": len(c["killed"]),
               "survived": len(c["survived"]) + len(c["other"]), "accepted": len(c["accepted"]),
               "no_tests": len(c["no_tests"]), "counted": c["counted"], "seconds": r.get("seconds", 0), "cpu": r.get("cpu_seconds", 0)}
        for k in totals:
            totals[k] += row[k]
        score = "–" if c["score"] is None else f"{c['score']:.1f}%"
        print(f"{r['module']:<11} {row['tried']:>7} {row['equivalent']:>6} {row['killed']:>6} {row['survived']:>8} "
              f"{row['accepted']:>8} {row['no_tests']:>8} {score:>6} {row['seconds']:>5}s {row['cpu']:>5}s")
    if len(results) > 1 and totals["counted"]:
        print(f"{'all':<11} {totals['tried']:>7} {totals['equivalent']:>6} {totals['killed']:>6} {totals['survived']:>8} "
              f"{totals['accepted']:>8} {totals['no_tests']:>8} {100 * totals['killed'] / totals['counted']:>5.1f}% "
              f"{totals['seconds']:>5}s {totals['cpu']:>5}s")
    print("score = killed / (mutants − equivalent); 'accepted' survivors (judged not worth a test) count as not killed")
    reasons = {r[5]: r[4] for r in rules}
    for r, c in classified:
        for kind in ("survived", "other", "no_tests"):
            for n in c[kind]:
                print(f"{kind.replace('_', ' ')}: {n}: {r['diffs'].get(n, '')}")
        for kind in ("accepted", "equivalent"):
            for n, line in c[kind]:
                print(f"{kind} (rule {line}: {reasons[line]}): {n}: {r['diffs'].get(n, '')}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", help=f"modules to test (default: all): {', '.join(MODULES)}")
    p.add_argument("--list", action="store_true", help="list the modules, their sources and test selections")
    p.add_argument("--report", action="store_true",
                   help="print the table again from mutants/summary.json (the last run of each module) with the "
                        "current tools/mutation_equivalents.txt, without running anything")
    args = p.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        p.error(f"unknown module {unknown[0]!r}; choose from {', '.join(MODULES)}")
    if args.list:
        for n, m in MODULES.items():
            print(f"{n}: {m.about}\n    mutate: {' '.join(m.sources)}{'  only ' + ' '.join(m.only) if m.only else ''}"
                  f"\n    tests:  {' '.join(m.tests)}")
        return 0
    rules = load_rules()
    summary = WORK / "summary.json"
    if args.report:
        saved = json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {}
        results = [saved[m] for m in (args.modules or list(MODULES)) if m in saved]
        for r in results:
            if "codes" not in r:   # written by an older version of this script: read mutmut's files again
                ws = WORK / r["module"]
                r["codes"] = mutant_results(ws, MODULES[r["module"]])
                r["diffs"] = one_line_diffs(ws, sorted(k for k, v in r["codes"].items() if v not in KILLED))
        if not results:
            print(f"no results in {summary}: run tools/mutation.sh first", file=sys.stderr)
            return 1
        print("from " + ", ".join(f"{r['module']} ({r.get('when', '?')})" for r in results))
        print_table(results, rules)
        return 0
    try:
        from importlib.metadata import version
        found = version("mutmut")
    except Exception:
        found = None
    if not (found or "").startswith(MUTMUT_VERSION):
        print(f"mutmut {MUTMUT_VERSION}x is needed (found: {found or 'none'}): "
              "pip install -r tools/requirements-mutation.txt", file=sys.stderr)
        return 2
    children = int(os.environ.get("MUTMUT_CHILDREN", "1"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    when = f"{time.strftime('%Y-%m-%d %H:%M')}, commit {commit or '?'}{'+changes' if dirty() else ''}"
    results = []
    for name in args.modules or list(MODULES):
        print(f"{name}: mutating {' '.join(MODULES[name].sources)} ...", file=sys.stderr, flush=True)
        r = run_module(name, MODULES[name], children)
        r["when"] = when
        results.append(r)
        c = classify(r, rules)
        print(f"{name}: {len(c['killed'])}/{c['tried']} killed in {r['seconds']} s", file=sys.stderr, flush=True)
        WORK.mkdir(exist_ok=True)
        saved = json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {}
        saved[name] = r
        summary.write_text(json.dumps(saved, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"mutmut {found}, {when}, {children} test process(es)")
    print_table(results, rules)
    return 0 if all(r["mutmut_exit"] == 0 and r["codes"] for r in results) else 1


def dirty() -> bool:
    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True)
    return bool(r.stdout.strip())


if __name__ == "__main__":
    sys.exit(main())
