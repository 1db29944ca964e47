#!/usr/bin/python3
"""No include points up the module order of DESIGN.md (issue #12):

    cli -> app -> engine -> (opt, nn, data, io) -> (rng, linalg, core)

Every `#include "..."` of src/ and include/nograd/ is mapped to the module it belongs to (a public header
include/nograd/X.h to the module that implements it, by the table below) and must not be on a higher level
than the file that includes it. Lateral includes within a level are allowed. A public header missing from the
table is an error, so that a new header gets placed. Usage: test_layering.py SOURCE_ROOT"""
import os
import re
import sys

LEVEL = {"core": 0, "rng": 0, "linalg": 0, "opt": 1, "nn": 1, "data": 1, "io": 1, "engine": 2, "app": 3, "cli": 4}
# The module of each public header (include/nograd/NAME.h). objective.h is the interface below its providers.
HEADER = {
    "export": "core", "error": "core", "state": "core", "timer": "core", "objective": "core", "rng": "rng",
    "opt": "opt", "functions": "opt", "ckpt": "io", "inspect": "io", "data": "data", "synth": "data",
    "domains": "data", "nn": "nn", "loss": "nn", "nn_objective": "nn", "knobs": "nn", "metrics": "nn",
    "engine": "engine", "run": "engine", "app": "app", "glue": "app", "retrofit": "app", "train": "app",
    "demo": "app", "evaluator": "app", "plugin": "app", "verify": "app", "nograd": "cli",  # the umbrella includes everything
}

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
failures, files = [], 0


def module_of(path):
    rel = os.path.relpath(path, root).replace(os.sep, "/")
    if rel.startswith("include/nograd/"):
        return HEADER.get(os.path.basename(rel)[:-2])
    return rel.split("/")[1]


for top in ("src", "include"):
    for dirpath, _, names in os.walk(os.path.join(root, top)):
        for name in sorted(names):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            files += 1
            mine = module_of(path)
            if mine not in LEVEL:
                failures.append("%s: no module known for it (add it to HEADER)" % path)
                continue
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not m:
                        continue
                    inc = m.group(1)
                    target = HEADER.get(inc[7:-2]) if inc.startswith("nograd/") else inc.split("/")[0]
                    if target not in LEVEL:
                        failures.append("%s:%d: #include \"%s\": no module known for it" % (path, number, inc))
                    elif LEVEL[target] > LEVEL[mine]:
                        failures.append("%s:%d: #include \"%s\" points up: %s (level %d) -> %s (level %d)" %
                                        (path, number, inc, mine, LEVEL[mine], target, LEVEL[target]))

for f in failures:
    print("FAIL " + f)
print("%d files, %d upward or unknown includes" % (files, len(failures)))
sys.exit(1 if failures or files == 0 else 0)
