#!/usr/bin/env python3
"""Writes the licences of the Rust crates the binary links statically.

The package ships one binary with every crate of its dependency graph
compiled in, so their copyright notices and licence texts must travel with
it. This reads `cargo metadata` (the versions Cargo.lock holds, for the
host's target), follows the normal dependencies from this package (not
dev- or build-dependencies: they are not in the binary), and prints each
crate's name, version, declared licence and the licence files it ships,
whole.

Usage: crate_licenses.py > third-party-licenses
A crate published without a licence file but under MIT gets the MIT text
with its authors. Exits 1, naming the crate, if a crate declares no
licence, or has no licence file and no MIT to fall back on, so a package
is never built without a notice it needs.
"""

import json
import os
import re
import subprocess
import sys

# The files crates ship their notices in (LICENSE-MIT, COPYING, NOTICE...).
LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|copyright|notice|unlicense)([-._].*)?$", re.I)


def host_triple():
    out = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("host: "):
            return line.split(" ", 1)[1]
    sys.exit("crate_licenses: `rustc -vV` names no host triple")


def linked_packages(meta):
    """The packages reachable from the root by normal dependencies."""
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]):
                todo.append(dep["pkg"])
    seen.discard(root)
    return [p for p in meta["packages"] if p["id"] in seen]


# The MIT licence's text, for the few crates published without a licence
# file (their manifest declares MIT, alone or as a choice): the licence
# asks that its notice travel with every copy.
MIT_TEXT = """Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE."""


def without_file(pkg):
    """The notice of a crate published without a licence file, or None."""
    declared = pkg.get("license") or ""
    if not re.search(r"\bMIT\b", declared):
        return None
    holders = ", ".join(pkg.get("authors") or []) or f"the authors of {pkg.get('repository') or pkg['name']}"
    return (f"--- (published without a licence file; under {declared}, taken here as MIT)\n\n"
            f"Copyright (c) {holders}\n\n{MIT_TEXT}\n")


def license_files(pkg):
    crate_dir = os.path.dirname(pkg["manifest_path"])
    names = sorted(f for f in os.listdir(crate_dir) if LICENSE_FILE.match(f))
    if pkg.get("license_file"):
        named = os.path.normpath(pkg["license_file"])
        if named not in names:
            names.append(named)
    paths = ((n, os.path.join(crate_dir, n)) for n in names)
    return [(n, path) for n, path in paths if os.path.isfile(path)]


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--locked", "--format-version", "1",
             "--filter-platform", host_triple()],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    packages = sorted(linked_packages(meta), key=lambda p: (p["name"], p["version"]))
    missing = []
    parts = [
        "Rust crates compiled into /usr/bin/piwigo-s3upload, as locked in its\n"
        "Cargo.lock, each with its declared licence and the licence files it\n"
        "ships, as published on crates.io.\n\n"
        + "".join(f"  {p['name']} {p['version']}: {p.get('license') or 'see its licence file'}\n"
                  for p in packages)
    ]
    for p in packages:
        files = license_files(p)
        if not p.get("license") and not p.get("license_file"):
            missing.append(f"{p['name']} {p['version']} declares no licence")
        head = f"{'=' * 72}\n{p['name']} {p['version']}: {p.get('license') or p.get('license_file')}\n"
        if not files:
            notice = without_file(p)
            if notice is None:
                missing.append(f"{p['name']} {p['version']} ships no licence file")
            else:
                parts.append(head + notice)
            continue
        for name, path in files:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read().strip("\n")
            parts.append(f"{head}--- {name}\n\n{text}\n")
            head = ""
    if missing:
        sys.exit("crate_licenses: " + "; ".join(missing)
                 + " (read the crate's repository for its notice and add it here before packaging)")
    sys.stdout.write("\n".join(parts))


if __name__ == "__main__":
    main()
