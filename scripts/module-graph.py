#!/usr/bin/env python3
"""FlowTap's module graph, read from the package itself.

  scripts/module-graph.py            # print the graph (Mermaid) that docs/architecture.md shows
  scripts/module-graph.py --check    # exit 1 unless every import is a declared dependency and the layers hold

Checks, for every source target:
  - each `import X` of a package module or product is one of the target's own dependencies
    (declared directly, not reached through another module);
  - nothing but the two executables depends on Engine, and nothing depends on an executable;
  - the CLI (flowtap) imports no module below FlowCore's users that it does not declare.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Modules that come with the toolchain or the system, not from the package.
SYSTEM = {"Glibc", "Foundation", "Synchronization", "Dispatch", "XCTest", "FoundationEssentials"}
# Product names of dependencies, as imported: product → module name.
PRODUCT_MODULES = {"ArgumentParser": "ArgumentParser", "Yams": "Yams", "Crypto": "Crypto", "_CryptoExtras": "_CryptoExtras"}


def package():
    out = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def dependencies(target):
    names = []
    for d in target.get("dependencies", []):
        kind = next(iter(d))
        names.append(d[kind][0])
    return names


def source_dir(target):
    if target.get("path"):
        return os.path.join(ROOT, target["path"])
    base = "Tests" if target["type"] == "test" else "Sources"
    return os.path.join(ROOT, base, target["name"])


def imports(directory):
    found = {}
    for folder, _, files in os.walk(directory):
        for name in files:
            if not name.endswith(".swift"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                for line in f:
                    m = re.match(r"^\s*(?:@testable\s+|@_exported\s+)?import\s+(?:struct\s+|enum\s+|class\s+|func\s+)?([A-Za-z_][A-Za-z0-9_]*)", line)
                    if m:
                        found.setdefault(m.group(1), path)
    return found


def main():
    pkg = package()
    targets = {t["name"]: t for t in pkg["targets"]}
    executables = {n for n, t in targets.items() if t["type"] == "executable"}
    problems = []
    for name, t in targets.items():
        if t["type"] == "system":
            continue
        declared = set(dependencies(t))
        for module, path in sorted(imports(source_dir(t)).items()):
            if module in SYSTEM or module == name:
                continue
            if module not in targets and module not in PRODUCT_MODULES:
                continue
            if module not in declared:
                problems.append(f"{os.path.relpath(path, ROOT)}: imports {module}, which {name} does not declare in Package.swift")
        for dep in declared:
            if dep in executables:
                problems.append(f"{name} depends on the executable {dep}")
            if dep == "Engine" and t["type"] != "test" and name not in executables:
                problems.append(f"{name} depends on Engine: only the commands (flowtap, flowtap-bench) sit above it")
    if "--check" in sys.argv:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"module-graph: {len([t for t in targets.values() if t['type'] != 'test'])} modules, {len(problems)} problems")
        sys.exit(1 if problems else 0)
    # The transitive reduction: an arrow a → b is left out when b is reached from a another way.
    graph = {n: [d for d in dependencies(t) if d in targets] for n, t in targets.items()
             if t["type"] not in ("test", "system") and n != "TestSupport"}

    def reaches(start, goal, skip):
        stack, seen = [d for d in graph.get(start, []) if d != skip], set()
        while stack:
            n = stack.pop()
            if n == goal:
                return True
            if n in seen:
                continue
            seen.add(n)
            stack.extend(graph.get(n, []))
        return False

    print("```mermaid")
    print("graph TD")
    for name, deps in graph.items():
        for dep in deps:
            if dep in graph and not reaches(name, dep, dep):
                print(f"  {name.replace('-', '_')} --> {dep}")
    print("```")


if __name__ == "__main__":
    main()
