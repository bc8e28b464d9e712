"""Running `gaze serve` in the tests: a server on an ephemeral loopback port, started and stopped by
the test, with its access log collected; and a small HTTP client."""
import atexit
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time

from cli_helpers import GAZE


_running = []


@atexit.register
def _stop_leftovers():
    """A test that fails before stopping its server must not leave the process behind."""
    for proc in _running:
        if proc.poll() is None:
            proc.kill()


class Server:
    def __init__(self, models, *flags, threads=1):
        args = [str(GAZE), "serve", "--port", "0", "--threads", str(threads)]
        for name, path in models.items():
            args += ["--model", f"{name}={path}"]
        args += [str(f) for f in flags]
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        _running.append(self.proc)
        self.log = []
        self.port = None
        ready = threading.Event()

        def drain():
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                self.log.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()
        ready.wait(60)
        assert self.port, "the server did not start:\n" + "\n".join(self.log)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers dict with lower-case names, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def post(self, path, body, **kw):
        status, headers, data = self.request("POST", path, body, **kw)
        ctype = headers.get("content-type", "")
        return status, headers, (json.loads(data) if ctype.startswith("application/json") else data)

    def get(self, path):
        status, headers, data = self.request("GET", path)
        ctype = headers.get("content-type", "")
        return status, (json.loads(data) if ctype.startswith("application/json") else data.decode())

    def metric(self, line_prefix):
        """The value of the metrics line that starts with line_prefix (0 when absent)."""
        status, text = self.get("/metrics")
        assert status == 200, f"/metrics answered {status}: {text}"
        for line in text.splitlines():
            if line.startswith(line_prefix + " "):
                return float(line.split()[-1])
        return 0.0

    def wait_metric(self, line_prefix, value, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if self.metric(line_prefix) >= value:
                return
            time.sleep(0.02)
        raise AssertionError(f"{line_prefix} never reached {value}")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the server and returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.reader.join(10)
        return rc
