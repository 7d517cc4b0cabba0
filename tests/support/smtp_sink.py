#!/usr/bin/env python3
"""A real SMTP server for Kontor's black-box tests, built on aiosmtpd (not Kontor's code).

Usage: smtp_sink.py DIR [PORT]

Listens on 127.0.0.1:PORT (0 picks a free port) and prints "listening on PORT" once it
accepts connections. Each accepted message is written to DIR/<n>.eml (written under a
temporary name, then renamed, so readers never see half a message). Recipients are
answered by their local part:
  bounce*@...   550 5.1.1 (a permanent failure)
  tempfail*@... 451 4.3.0 (a temporary failure)
  spam*@...     554 5.7.1 (a permanent refusal that is not the address's fault)
Refused recipients are appended to DIR/refused.log, one address a line.
"""

import asyncio
import itertools
import os
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith(("bounce", "tempfail", "spam")):
            with open(os.path.join(self.directory, "refused.log"), "a") as log:
                log.write(address + "\n")
            if local.startswith("bounce"):
                return "550 5.1.1 <%s>: user unknown" % address
            if local.startswith("spam"):
                return "554 5.7.1 message rejected as spam"
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.counter)
        while os.path.exists(os.path.join(self.directory, "%d.eml" % number)):
            number = next(self.counter)
        final = os.path.join(self.directory, "%d.eml" % number)
        temporary = final + ".tmp"
        with open(temporary, "wb") as message:
            message.write(("X-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            message.write(envelope.original_content or envelope.content)
        os.rename(temporary, final)
        return "250 2.0.0 stored"


async def main():
    directory = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    os.makedirs(directory, exist_ok=True)
    handler = Sink(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", data_size_limit=0),
        host="127.0.0.1",
        port=port,
    )
    port = server.sockets[0].getsockname()[1]
    print("listening on %d" % port, flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
