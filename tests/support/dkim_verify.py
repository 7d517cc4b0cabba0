#!/usr/bin/env python3
"""Verifies the DKIM signature of one message with dkimpy, an implementation that is
not Kontor's. The DNS is this script's second argument: the TXT record that
`kontor dkim generate` printed is the answer to every lookup, through dkimpy's
dnsfunc hook, so no resolver is needed.

usage: dkim_verify.py MESSAGE_FILE TXT_RECORD   (exit 0 verified, 1 not)
"""
import logging
import sys

import dkim


def main() -> int:
    path, record = sys.argv[1], sys.argv[2]
    with open(path, "rb") as handle:
        message = handle.read()
    asked = []

    def dnsfunc(name, timeout=5):
        asked.append(name)
        return record.encode()

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    verifier = dkim.DKIM(message, logger=logging.getLogger("dkim"))
    ok = verifier.verify(dnsfunc=dnsfunc)
    print(f"verified={ok} asked={asked}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
