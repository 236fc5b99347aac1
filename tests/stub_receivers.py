"""Local stub receivers for alert tests, on 127.0.0.1 only: an HTTP server that keeps every POST body, and
a minimal SMTP server (RFC 5321 commands HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that keeps every
message. Both run in a thread; ``with Receiver() as r: ... r.received``."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server:
    def __enter__(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self.server.server_address[1]


class WebhookStub(_Server):
    """``url``; ``received``: the JSON bodies posted, in order, and ``paths`` the path each was posted to, with
    ``times`` when. Answers ``status`` (default 200; set the attribute to change it between requests) with
    ``headers``, ``delay`` seconds after it has the body (a slow receiver); ``routes``: path -> (status, headers)
    answered on that path instead (e.g. a redirect)."""

    def __init__(self, status: int = 200, delay: float = 0.0, headers: dict | None = None,
                 routes: dict | None = None):
        self.received: list = []
        self.paths: list = []
        self.times: list = []
        self.status = status
        self.headers = dict(headers or {})
        self.routes = dict(routes or {})
        self.delay = delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server hook's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append(json.loads(body))
                outer.paths.append(self.path)
                outer.times.append(time.monotonic())
                time.sleep(outer.delay)
                status, headers = outer.routes.get(self.path, (outer.status, outer.headers))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"


class SMTPStub(_Server):
    """``received``: (sender, recipients, message text) of each message, in order. ``refuse_login``: it offers
    AUTH and refuses every login (535); ``logins``: the connections that tried one. ``refuse_to``: addresses it
    refuses as recipients (550)."""

    def __init__(self, refuse_login: bool = False, refuse_to: tuple = ()):
        self.received: list = []
        self.logins = 0
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str):
                self.wfile.write((line + "\r\n").encode())

            def handle(self):
                self.reply("220 stub ESMTP")
                sender, rcpts, tried = None, [], False
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    cmd = raw.decode().strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb == "EHLO" and refuse_login:
                        self.reply("250-stub")
                        self.reply("250 AUTH PLAIN LOGIN")
                    elif verb in ("HELO", "EHLO"):
                        self.reply("250 stub")
                    elif verb == "AUTH" and refuse_login:
                        # one login per connection, whatever mechanisms the client tries in it (PLAIN, LOGIN)
                        outer.logins += not tried
                        tried = True
                        self.reply("535 5.7.8 Authentication credentials invalid")
                    elif verb == "MAIL":
                        sender, rcpts = cmd.split(":", 1)[1].strip(), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        to = cmd.split(":", 1)[1].strip()
                        if to.strip("<>") in refuse_to:
                            self.reply("550 5.1.1 no such mailbox")
                            continue
                        rcpts.append(to)
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        lines = []
                        while True:
                            line = self.rfile.readline().decode()
                            if line in (".\r\n", ".\n", ""):
                                break
                            lines.append(line[1:] if line.startswith("..") else line)
                        outer.received.append((sender, rcpts, "".join(lines)))
                        self.reply("250 OK queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
