"""The fake APNs (production and sandbox), FCM, OAuth2 token endpoint, SMS gateway and delivery-callback
receiver as one process (tests/tools/fake_peers.cpp, binary in $NOTIFYD_FAKE_PEERS, or
$NOTIFYD_BUILD_DIR/tests/notifyd_fake_peers), driven over its plain-HTTP control API.

    peers = FakePeers()              # started; peers.info holds every URL, port and the ca_file path
    daemon = Daemon(..., extra_config=peers.config_lines())
    peers.script("apns", [{"status": 503, "match": token}])
    reqs = peers.wait_for("apns", lambda rs: len(rs) >= 2, timeout=10)
    peers.stop()

Every wait is bounded; stop() closes stdin (the tool exits on EOF), then SIGTERM, then SIGKILL.
"""

import http.client
import json
import os
import select
import signal
import subprocess
import tempfile
import time
import urllib.parse

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

PEERS = ("apns", "apns_sandbox", "fcm", "sms", "oauth", "callbacks")


def fake_peers_binary():
    path = os.environ.get("NOTIFYD_FAKE_PEERS")
    if not path and os.environ.get("NOTIFYD_BUILD_DIR"):
        path = os.path.join(os.environ["NOTIFYD_BUILD_DIR"], "tests", "notifyd_fake_peers")
    if not path and os.environ.get("NOTIFYD_BIN"):
        path = os.path.join(os.path.dirname(os.environ["NOTIFYD_BIN"]), "tests", "notifyd_fake_peers")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("set NOTIFYD_FAKE_PEERS to the notifyd_fake_peers binary (got %r)" % (path,))
    return path


class Request(dict):
    """One request a fake received (a dict from the control API) with helpers."""

    def header(self, name):
        name = name.lower()
        for k, v in self["headers"]:
            if k.lower() == name:
                return v
        return None

    def json(self):
        return json.loads(self["body"])

    def form_dict(self):
        """Form fields as {key: value} (the last value of a repeated key)."""
        return {k: v for k, v in self["form"]}

    def form_values(self, key):
        return [v for k, v in self["form"] if k == key]

    @property
    def device_token(self):
        """APNs: the token from /3/device/<token>."""
        p = self["path"]
        return p.rsplit("/", 1)[-1] if p.startswith("/3/device/") else None


class FakePeers:
    def __init__(self, binary=None):
        self.binary = binary or fake_peers_binary()
        self.log = tempfile.NamedTemporaryFile(prefix="notifyd-fake-peers-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([self.binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log)
        try:
            line = self._read_line(START_TIMEOUT_S)
            self.info = json.loads(line)
        except Exception:
            self.stop()
            raise
        self.control_port = self.info["control_port"]

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("notifyd_fake_peers printed no JSON line within %.0f s" % timeout)
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("notifyd_fake_peers exited (%s) before printing its JSON line: %s"
                                   % (self.proc.poll(), self.log_text()))
            buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    # --- daemon configuration ---

    def config_lines(self, sms=True):
        """[apns], [fcm] and [sms] sections of notifyd.toml pointing at the fakes."""
        i = self.info
        lines = [
            "[apns]",
            'production_url = "%s"' % i["apns_url"],
            'sandbox_url = "%s"' % i["apns_sandbox_url"],
            'ca_file = "%s"' % i["ca_file"],
            "[fcm]",
            'url = "%s"' % i["fcm_url"],
            'ca_file = "%s"' % i["ca_file"],
        ]
        if sms:
            lines += [
                "[sms]",
                'url = "%s"' % i["sms_url"],
                'account_sid = "%s"' % i["sms_account_sid"],
                'auth_token = "%s"' % i["sms_auth_token"],
            ]
        return lines

    def now(self):
        """The current time on the scale of the requests' "t" (both are CLOCK_MONOTONIC)."""
        return time.monotonic() - self.info["clock_origin"]

    @property
    def token_uri(self):
        return self.info["token_uri"]

    @property
    def callbacks_url(self):
        return self.info["callbacks_url"]

    # --- control API ---

    def _call(self, method, path, params=None, body=None):
        target = path + ("?" + urllib.parse.urlencode(params) if params else "")
        conn = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=30)
        try:
            conn.request(method, target, body=body,
                         headers={"Content-Type": "application/json"} if body is not None else {})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError("fake peers control %s %s -> %d %r" % (method, target, resp.status, data))
        return json.loads(data) if data else None

    def requests(self, peer):
        return [Request(r) for r in self._call("GET", "/requests", {"peer": peer})]

    def count(self, peer):
        return self._call("GET", "/count", {"peer": peer})["count"]

    def script(self, peer, responses):
        """responses: list of {"status", "headers", "body", "delay_ms", "count", "match"}."""
        return self._call("POST", "/script", {"peer": peer}, json.dumps(responses))

    def delay(self, peer, ms):
        self._call("POST", "/delay", {"peer": peer, "ms": int(ms)})

    def max_streams(self, peer, n):
        self._call("POST", "/max_streams", {"peer": peer, "n": int(n)})

    def reset(self):
        self._call("POST", "/reset")

    def wait_for(self, peer, predicate, timeout=15.0, interval=0.1, what="condition"):
        """Polls requests(peer) until predicate(list) is true; returns the list; raises AssertionError
        with the last list after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            reqs = self.requests(peer)
            if predicate(reqs):
                return reqs
            if time.monotonic() >= deadline:
                raise AssertionError("fake %s: %s not reached within %.1f s; %d requests: %s"
                                     % (peer, what, timeout, len(reqs),
                                        [(r["path"], r["body"][:200]) for r in reqs[-10:]]))
            time.sleep(interval)

    # --- lifecycle ---

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT_S / 2)
                except subprocess.TimeoutExpired:
                    self.proc.send_signal(signal.SIGTERM)
                    try:
                        self.proc.wait(timeout=STOP_TIMEOUT_S / 2)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                        self.proc.wait(timeout=STOP_TIMEOUT_S)
        finally:
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    if f:
                        f.close()
                except OSError:
                    pass
            self.log.close()
            self.proc = None

    def log_text(self):
        try:
            with open(self.log.name, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass
