#!/usr/bin/python3
"""libnograd.so exports the API and nothing else (issue #12): every dynamic symbol it defines is a function
declared in include/nograd/ (with NG_EXPORT), and every NG_EXPORT declaration is exported; the umbrella header
nograd/nograd.h includes every public header. Usage: test_exports.py LIBNOGRAD.so SOURCE_ROOT"""
import glob
import os
import re
import subprocess
import sys

lib, root = sys.argv[1], sys.argv[2]
include = os.path.join(root, "include", "nograd")
failures = []

declared = set()
for path in glob.glob(os.path.join(include, "*.h")):
    with open(path, encoding="utf-8") as f:
        for m in re.finditer(r"^NG_EXPORT\b[^(;]*?\b(ng_[a-z0-9_]+)\(", f.read(), re.M):
            declared.add(m.group(1))

out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True).stdout
exported = set()
for line in out.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "TtDdBbRrVvWwiu":
        exported.add(parts[2].split("@")[0])
exported -= {"_init", "_fini", "__bss_start", "_edata", "_end"}  # the linker's own

for name in sorted(exported - declared):
    failures.append("exported but not declared with NG_EXPORT in include/nograd/: %s" % name)
for name in sorted(declared - exported):
    failures.append("declared with NG_EXPORT but not exported (not defined?): %s" % name)
if len(declared) < 100:
    failures.append("only %d NG_EXPORT declarations found: the header scan is broken" % len(declared))

with open(os.path.join(include, "nograd.h"), encoding="utf-8") as f:
    umbrella = set(re.findall(r'#include "nograd/([a-z_0-9]+\.h)"', f.read()))
for path in sorted(glob.glob(os.path.join(include, "*.h"))):
    name = os.path.basename(path)
    if name != "nograd.h" and name not in umbrella:
        failures.append("nograd/nograd.h does not include nograd/%s" % name)

for f in failures:
    print("FAIL " + f)
print("%d exported, %d declared, %d failures" % (len(exported), len(declared), len(failures)))
sys.exit(1 if failures else 0)
