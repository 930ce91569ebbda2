#!/usr/bin/env python3
"""Prints the module map of docs/architecture.md: per crate, one line per
source module with the first sentence of its `//!` doc (what it owns).
Regenerate after adding, moving or re-describing a module:
    python3 scripts/module-map.py > /tmp/map.md  (then replace the section)
"""
import glob
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def first_sentence(path):
    doc = []
    with open(path, encoding="utf-8") as source:
        for line in source:
            if line.startswith("//!"):
                doc.append(line[3:].strip())
            elif doc:
                break
    text = " ".join(d for d in doc if d)
    match = re.match(r"(.+?\.)(\s|$)", text)
    sentence = match.group(1) if match else text
    if len(sentence) > 180:
        sentence = sentence[:177].rsplit(" ", 1)[0] + "…"
    return sentence


def main():
    os.chdir(ROOT)
    out = []
    for src in sorted(glob.glob("services/*/src")) + ["proto/src"]:
        out.append(f"\n### `{os.path.dirname(src)}`\n")
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for name in sorted(files):
                rel = os.path.relpath(os.path.join(root, name), src)
                if not name.endswith(".rs") or name == "tests.rs" or "/tests/" in f"/{rel}":
                    continue
                sentence = first_sentence(os.path.join(root, name))
                out.append(f"- `{rel}`: {sentence}" if sentence else f"- `{rel}`")
    sys.stdout.write("\n".join(out).lstrip("\n") + "\n")


if __name__ == "__main__":
    main()
