#!/usr/bin/env python3
"""Regenerates common-passwords.txt from the zxcvbn crate's frequency list.

Usage (from any directory):

    mkdir -p /tmp/zx && cd /tmp/zx && cargo init -q --name zx \
        && cargo add -q zxcvbn@3.1.1 && cargo fetch -q
    python3 generate-common-passwords.py \
        ~/.cargo/registry/src/*/zxcvbn-3.1.1/src/frequency_lists.rs > common-passwords.txt

The list is zxcvbn's `PASSWORDS` constant (30,000 entries, most common first),
lower-cased and de-duplicated, order kept.
"""

import re
import sys

HEADER = """\
# Common passwords refused by rampart_crypto::password::check_new_password.
#
# Source: the `PASSWORDS` frequency list of the zxcvbn crate, version 3.1.1
# (https://crates.io/crates/zxcvbn, src/frequency_lists.rs), a port of Dropbox's
# zxcvbn, whose list was compiled from public leaked-password corpora.
# License: MIT. Copyright (c) 2016 Joshua Holmer (Rust port); Copyright (c)
# 2012-2016 Dan Wheeler and Dropbox, Inc. (original zxcvbn and its lists).
#
# {count} entries, most common first, lower-cased (the check is case-insensitive).
# Regenerate with data/generate-common-passwords.py; do not edit by hand.
# Lines starting with '#' are comments.
"""


def main() -> None:
    source = open(sys.argv[1], encoding="utf-8").read()
    match = re.search(r'const PASSWORDS: &str = "(.*?)";', source, re.S)
    if match is None:
        sys.exit("PASSWORDS constant not found")
    # The Rust literal escapes a quote in one entry (pic\'s).
    entries = match.group(1).replace("\\'", "'").split(",")
    seen = set()
    ordered = []
    for entry in entries:
        word = entry.strip().lower()
        if word and not word.startswith("#") and word not in seen:
            seen.add(word)
            ordered.append(word)
    sys.stdout.write(HEADER.format(count=len(ordered)))
    for word in ordered:
        sys.stdout.write(word + "\n")


if __name__ == "__main__":
    main()
