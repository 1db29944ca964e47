#!/usr/bin/python3
"""Gathers the results of a sweep run by jobs/sweep.sbatch into one table.

    tools/gather_sweep.py results/sweep-1234                 # CSV on stdout, summary on stderr
    tools/gather_sweep.py results/sweep-1234 --out sweep.csv # CSV in a file, summary on stdout

Each task of the sweep writes task-ID.json: one JSON line with the task number, its seed and population
size, and nograd's result (evaluations, f_best, stop_reason, ...). The table has one row per task, sorted
by population size, then seed. The summary gives, per population size, the number of runs and the median
evaluations and f_best over the seeds, and names the tasks that have a checkpoint or a log but no result
yet (running, pending a requeue, or failed).

Exit status: 0 when at least one result was read, 1 when none was (or on a bad file), 2 on bad usage.
Python standard library only (Debian's /usr/bin/python3).
"""

import argparse
import csv
import io
import json
import math
import os
import re
import statistics
import sys

FIRST_COLUMNS = ["task", "seed", "popsize", "evaluations", "f_best", "stop_reason", "generations", "restarts",
                 "seconds"]
TASK_FILE = re.compile(r"^task-(\d+)\.(json|jsonl|h5|out\.part)$")


def read_result(path):
    """The last non-empty line of path, parsed as a JSON object."""
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty file")
    row = json.loads(lines[-1])
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    return row


def sort_key(row):
    def num(v):
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else math.inf
    return (num(row.get("popsize")), num(row.get("seed")), num(row.get("task")))


def fmt(v):
    if isinstance(v, float):
        return repr(v)  # shortest repr that round-trips: the same bits as nograd printed
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def short(v):
    return "%.6g" % v if isinstance(v, float) else str(v)


def summary(rows, unfinished, directory):
    out = io.StringIO()
    out.write("sweep %s: %d results" % (directory, len(rows)))
    if unfinished:
        out.write(", %d tasks without a result (running, requeued or failed): %s"
                  % (len(unfinished), " ".join(str(t) for t in unfinished)))
    out.write("\n")
    groups = {}
    for row in rows:
        groups.setdefault(row.get("popsize"), []).append(row)
    header = ("popsize", "runs", "median evals", "median f_best", "best f_best", "stop reasons")
    table = [header]
    for popsize in sorted(groups, key=lambda p: sort_key({"popsize": p})):
        g = groups[popsize]
        evals = [r["evaluations"] for r in g if isinstance(r.get("evaluations"), (int, float))]
        fbest = [r["f_best"] for r in g if isinstance(r.get("f_best"), (int, float))
                 and not math.isnan(r["f_best"])]
        reasons = {}
        for r in g:
            reasons[r.get("stop_reason", "?")] = reasons.get(r.get("stop_reason", "?"), 0) + 1
        table.append((
            str(popsize),
            str(len(g)),
            short(statistics.median(evals)) if evals else "-",
            short(statistics.median(fbest)) if fbest else "-",
            short(min(fbest)) if fbest else "-",
            ", ".join("%s %d" % (k, n) for k, n in sorted(reasons.items())),
        ))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        out.write("  ".join(c.rjust(w) if i < 5 else c for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        out.write("\n")
    return out.getvalue()


def main(argv):
    ap = argparse.ArgumentParser(description="Gather a sweep's per-task results (task-ID.json) into one table.")
    ap.add_argument("directory", help="the sweep's directory, e.g. results/sweep-1234")
    ap.add_argument("--out", metavar="FILE", help="write the CSV to FILE instead of stdout")
    ap.add_argument("--quiet", action="store_true", help="no summary")
    args = ap.parse_args(argv)

    if not os.path.isdir(args.directory):
        print("gather_sweep.py: %s: not a directory" % args.directory, file=sys.stderr)
        return 1
    results, seen = {}, set()
    for name in sorted(os.listdir(args.directory)):
        m = TASK_FILE.match(name)
        if not m:
            continue
        task = int(m.group(1))
        seen.add(task)
        if m.group(2) != "json":
            continue
        path = os.path.join(args.directory, name)
        try:
            row = read_result(path)
        except (OSError, ValueError) as e:
            print("gather_sweep.py: %s: %s" % (path, e), file=sys.stderr)
            return 1
        row.setdefault("task", task)
        results[task] = row
    unfinished = sorted(seen - set(results))
    rows = sorted(results.values(), key=sort_key)
    if not rows:
        print("gather_sweep.py: no task-ID.json results in %s%s" % (
            args.directory, " (%d tasks have not finished)" % len(unfinished) if unfinished else ""),
            file=sys.stderr)
        return 1

    columns = list(FIRST_COLUMNS)
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    columns = [c for c in columns if any(c in r for r in rows)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([fmt(row.get(c)) for c in columns])

    text = summary(rows, unfinished, args.directory)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(buf.getvalue())
        if not args.quiet:
            sys.stdout.write(text)
            print("table: %s (%d rows)" % (args.out, len(rows)))
    else:
        sys.stdout.write(buf.getvalue())
        sys.stdout.flush()
        if not args.quiet:
            sys.stderr.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
