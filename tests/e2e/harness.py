"""End-to-end harness: runs the real notifyd binary and points Debian's python3-twilio at it.

Daemon     one daemon process: temp dir, TOML config, stderr captured to a file, bounded waits.
DaemonTestCase
           unittest base class: one daemon per test class, official clients for two tenants, raw HTTP
           helpers, response-schema checks against the vendored OpenAPI schemas (fixtures/).
Every wait is bounded; tearDownClass stops the daemon (SIGTERM, exit code 0 asserted) and never leaves a
process behind. Use only /usr/bin/python3 (Debian) with python3-twilio 7.7.1 and the stdlib.
"""

import atexit
import base64
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
KILL_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 30.0

DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def sid_re(prefix):
    return re.compile(r"^%s[0-9a-f]{32}$" % prefix)


def new_sid(prefix):
    return prefix + secrets.token_hex(16)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_binary():
    path = os.environ.get("NOTIFYD_BIN")
    if not path and os.environ.get("NOTIFYD_BUILD_DIR"):
        path = os.path.join(os.environ["NOTIFYD_BUILD_DIR"], "notifyd")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("set NOTIFYD_BIN to the notifyd binary (got %r)" % (path,))
    return path


# --- credential fixtures -------------------------------------------------------------------------

_credentials_dir = None


def credential_files():
    """Runs fixtures/make_credentials.sh once per process; returns {name: text}."""
    global _credentials_dir
    if _credentials_dir is None:
        d = tempfile.mkdtemp(prefix="notifyd-e2e-creds-")
        atexit.register(shutil.rmtree, d, True)
        subprocess.run(["bash", os.path.join(FIXTURES, "make_credentials.sh"), d],
                       check=True, timeout=120, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _credentials_dir = d
    out = {}
    for name in ("apn_cert.pem", "apn_key.pem", "other_key.pem", "apn_p8.pem", "service_account.json"):
        with open(os.path.join(_credentials_dir, name)) as f:
            out[name] = f.read()
    return out


# --- the daemon ----------------------------------------------------------------------------------

class Account:
    def __init__(self, with_api_key=True):
        self.sid = new_sid("AC")
        self.auth_token = secrets.token_hex(16)
        self.api_key_sid = new_sid("SK") if with_api_key else None
        self.api_key_secret = secrets.token_hex(16) if with_api_key else None


class Daemon:
    """One notifyd process on 127.0.0.1 with a SQLite store in its own temp dir."""

    def __init__(self, accounts=None, log_level="info", extra_config=None, env=None):
        self.binary = daemon_binary()
        self.env = env  # the process environment (None: inherit ours)
        # called instead of wait_ready() after each start, e.g. to wait for systemd's READY=1
        self.ready_waiter = None
        self.extra_config = list(extra_config or [])  # more TOML lines (e.g. FakePeers.config_lines())
        self.server_config = []  # more TOML lines inside [server] (e.g. 'shutdown_timeout = 2')
        self.dir = tempfile.mkdtemp(prefix="notifyd-e2e-")
        self.accounts = accounts or [Account(), Account(with_api_key=False)]
        self.log_level = log_level
        self.db_path = os.path.join(self.dir, "notifyd.db")
        self.config_path = os.path.join(self.dir, "notifyd.toml")
        self.log_path = os.path.join(self.dir, "notifyd.log")
        self.port = free_port()
        self.proc = None
        self._log_file = None
        self.starts = 0

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    def write_config(self):
        lines = [
            "[server]",
            'listen = "127.0.0.1:%d"' % self.port,
            'public_url = "%s"' % self.base_url,
        ] + self.server_config + [
            "[store]",
            'backend = "sqlite"',
            'path = "%s"' % self.db_path,
            "[log]",
            'level = "%s"' % self.log_level,
        ]
        for a in self.accounts:
            lines += ["[[accounts]]", 'sid = "%s"' % a.sid, 'auth_token = "%s"' % a.auth_token]
            if a.api_key_sid:
                lines += ["[[accounts.api_keys]]", 'sid = "%s"' % a.api_key_sid,
                          'secret = "%s"' % a.api_key_secret]
        lines += self.extra_config
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        self.write_config()
        self.starts += 1
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(b"\n===== start #%d =====\n" % self.starts)
        self._log_file.flush()
        self.proc = subprocess.Popen([self.binary, "--config", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=self._log_file, cwd=self.dir, env=self.env)
        if self.ready_waiter is not None:
            self.ready_waiter(self)
        else:
            self.wait_ready()

    def wait_ready(self, timeout=READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("notifyd exited with %s before it was ready\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
                try:
                    conn.request("GET", "/healthz")
                    status = conn.getresponse().status
                finally:
                    conn.close()
                if status == 200:
                    return
                last = "status %d" % status
            except OSError as e:
                last = repr(e)
            time.sleep(0.05)
        self._force_kill()
        raise AssertionError("notifyd not ready within %.0f s (last: %s)\n%s"
                             % (timeout, last, self.log_tail()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL, timeout=KILL_TIMEOUT_S):
        """Sends sig and waits (bounded) for the process to end; returns its exit status."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._force_kill()
            raise AssertionError("notifyd did not end within %.0f s of signal %d\n%s"
                                 % (timeout, sig, self.log_tail()))
        finally:
            self._close_log()

    def stop(self):
        """SIGTERM; asserts a clean exit (code 0) within 15 s."""
        if not self.running():
            rc = self.proc.returncode if self.proc else 0
            self._close_log()
            if rc not in (0, -signal.SIGKILL):
                raise AssertionError("notifyd had already exited with %s\n%s" % (rc, self.log_tail()))
            return
        rc = self.kill(signal.SIGTERM, timeout=STOP_TIMEOUT_S)
        if rc != 0:
            raise AssertionError("notifyd exited with %s after SIGTERM (expected 0)\n%s"
                                 % (rc, self.log_tail()))

    def restart(self, sig=signal.SIGTERM):
        """Ends the process (SIGTERM by default, or sig) and starts it again on the same db and port."""
        if self.running():
            if sig == signal.SIGTERM:
                self.stop()
            else:
                self.kill(sig)
        self.start()

    def _force_kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=KILL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        self._close_log()

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def cleanup(self):
        self._force_kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        text = self.log_text().splitlines()[-lines:]
        return "--- notifyd log (last %d lines) ---\n%s\n---" % (len(text), "\n".join(text))


# --- raw HTTP ------------------------------------------------------------------------------------

class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive get)
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<RawResponse %d %r>" % (self.status, self.body[:300])


def basic_auth(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def raw_request(port, method, target, body=None, headers=None, auth=None, conn=None):
    """One request with http.client (no proxies, no normalisation of target). body: bytes, str or
    a dict/list of pairs (form-encoded, doseq). auth: (user, password) or None."""
    hdrs = {"Accept": "application/json"}
    if isinstance(body, (dict, list)):
        body = urllib.parse.urlencode(body, doseq=True)
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body is not None:
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    if auth is not None:
        hdrs["Authorization"] = basic_auth(*auth)
    hdrs.update(headers or {})
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_S)
    try:
        conn.request(method, target, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, resp.headers, data)
    finally:
        if own:
            conn.close()


# --- clients -------------------------------------------------------------------------------------

def make_client(base_url, username, password, account_sid=None):
    """The official client, pointed at notifyd.

    twilio-python 7.7.1 creates client.notify / client.conversations lazily (first attribute access
    builds the Domain, which sets its default base_url in __init__); Version.absolute_url reads
    domain.base_url on every request, so assigning base_url on the created domain sticks."""
    client = Client(username, password, account_sid,
                    http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT_S))
    client.notify.base_url = base_url
    client.conversations.base_url = base_url + "/conversations"
    return client


def close_client(client):
    session = getattr(client.http_client, "session", None)
    if session is not None:
        session.close()


# --- schema checks -------------------------------------------------------------------------------

_schemas = None


def schemas():
    """Response schemas vendored from the official OpenAPI files (fixtures/response_schemas.json:
    notify.v1.credential, notify.v1.service, notify.v1.service.binding,
    conversations.v1.service.service_binding, list_meta; $refs resolved)."""
    global _schemas
    if _schemas is None:
        with open(os.path.join(FIXTURES, "response_schemas.json")) as f:
            _schemas = json.load(f)
    return _schemas


_JSON_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list}


def schema_problems(obj, schema_name):
    """Returns a list of problems of obj against the named schema: every property present,
    right JSON type (null only where nullable), enums, patterns, date-times."""
    schema = schemas()[schema_name]
    problems = []
    if not isinstance(obj, dict):
        return ["%s: not an object: %r" % (schema_name, obj)]
    for name, prop in schema["properties"].items():
        if name not in obj:
            problems.append("missing property %r" % name)
            continue
        value = obj[name]
        if value is None:
            if not prop.get("nullable"):
                problems.append("%r is null but not nullable" % name)
            continue
        t = prop.get("type")
        if t == "integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif t in _JSON_TYPES:
            ok = isinstance(value, _JSON_TYPES[t])
        else:
            ok = True
        if not ok:
            problems.append("%r has JSON type %s, spec says %s: %r" % (name, type(value).__name__, t, value))
            continue
        if "enum" in prop and value not in prop["enum"]:
            problems.append("%r = %r not in %r" % (name, value, prop["enum"]))
        if t == "string" and "pattern" in prop and not re.search(prop["pattern"], value):
            problems.append("%r = %r does not match %s" % (name, value, prop["pattern"]))
        elif t == "string" and name.endswith("sid") and re.match(r"^\^[A-Z]{2}\[0-9a-fA-F\]\{32\}\$$",
                                                                 prop.get("pattern", "")):
            if not sid_re(prop["pattern"][1:3]).match(value):  # notifyd's SIDs: lowercase hex
                problems.append("%r = %r is not prefix + 32 lowercase hex" % (name, value))
        if t == "string" and prop.get("format") == "date-time" and not DATE_RE.match(value):
            problems.append("%r = %r is not YYYY-MM-DDTHH:MM:SSZ" % (name, value))
        if t == "array" and prop.get("items", {}).get("type") == "string":
            if not all(isinstance(x, str) for x in value):
                problems.append("%r items are not all strings: %r" % (name, value))
    extra = set(obj) - set(schema["properties"])
    if extra:
        problems.append("properties not in the spec: %s" % sorted(extra))
    return problems


# --- the base test case --------------------------------------------------------------------------

class DaemonTestCase(unittest.TestCase):
    """Starts one daemon per test class. cls.a / cls.b: two tenants; cls.client / cls.client_b: their
    official clients (account SID + auth token)."""

    daemon_log_level = "info"
    daemon_extra_config = ()  # more TOML lines for the daemon's config (e.g. FakePeers.config_lines())
    daemon_env = None  # the daemon's environment (None: inherit)
    daemon_server_config = ()  # more TOML lines inside [server]
    daemon_ready_waiter = None  # replaces Daemon.wait_ready (a function taking the Daemon)

    @classmethod
    def setUpClass(cls):
        cls.creds = credential_files()
        cls.a = Account()
        cls.b = Account(with_api_key=False)
        cls.daemon = Daemon([cls.a, cls.b], log_level=cls.daemon_log_level,
                            extra_config=cls.daemon_extra_config, env=cls.daemon_env)
        cls.daemon.ready_waiter = cls.daemon_ready_waiter
        cls.daemon.server_config = list(cls.daemon_server_config)
        # runs even when a subclass's setUpClass fails after this (tearDownClass would not): no process left
        cls.addClassCleanup(cls.daemon.cleanup)
        cls.daemon.start()
        cls.make_clients()

    @classmethod
    def make_clients(cls):
        cls.base = cls.daemon.base_url
        cls.client = make_client(cls.base, cls.a.sid, cls.a.auth_token)
        cls.client_b = make_client(cls.base, cls.b.sid, cls.b.auth_token)

    def new_client(self, username, password, account_sid=None):
        """A further official client for this test; its connections are closed after the test."""
        c = make_client(self.base, username, password, account_sid)
        self.addCleanup(close_client, c)
        return c

    @classmethod
    def tearDownClass(cls):
        for c in (getattr(cls, "client", None), getattr(cls, "client_b", None)):
            if c is not None:
                close_client(c)
        try:
            cls.daemon.stop()
        finally:
            cls.daemon.cleanup()

    def run(self, result=None):
        # Print the daemon's log tail when this test fails or errors.
        before = (len(result.failures) + len(result.errors)) if result is not None else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            sys.stderr.write("\n%s: %s\n" % (self.id(), self.daemon.log_tail()))
        return out

    def setUp(self):
        if not self.daemon.running():
            self.fail("notifyd is not running (exit %s)\n%s"
                      % (self.daemon.proc.returncode, self.daemon.log_tail()))

    # raw HTTP as account A unless auth is given; auth=False sends none
    def raw(self, method, target, body=None, headers=None, auth=None):
        if auth is None:
            auth = (self.a.sid, self.a.auth_token)
        elif auth is False:
            auth = None
        return raw_request(self.daemon.port, method, target, body=body, headers=headers, auth=auth)

    def raw_json(self, method, target, body=None, expect=200, auth=None):
        r = self.raw(method, target, body=body, auth=auth)
        self.assertEqual(r.status, expect, "%s %s -> %r" % (method, target, r))
        return r.json()

    def last_json(self, client=None):
        """The raw JSON of the client's last response."""
        resp = (client or self.client).http_client.last_response
        return json.loads(resp.text)

    def assertSchema(self, obj, schema_name):
        problems = schema_problems(obj, schema_name)
        self.assertEqual(problems, [], "%s against %s: %s" % (json.dumps(obj)[:800], schema_name, problems))

    def assertTwilioError(self, fn, status, code=None):
        """Calls fn(), expects TwilioRestException with that status (and code); returns it."""
        with self.assertRaises(TwilioRestException) as cm:
            fn()
        e = cm.exception
        self.assertEqual(e.status, status, "status: %s (code %s, msg %s)" % (e.status, e.code, e.msg))
        if code is not None:
            self.assertEqual(e.code, code, "code: %s (status %s, msg %s)" % (e.code, e.status, e.msg))
        return e

    def assertListError(self, fn, status, code):
        """twilio-python 7.7.1 turns a failed list/page load into a plain TwilioException('Unable to
        fetch page', response), not TwilioRestException; check the response it carries."""
        with self.assertRaises(TwilioException) as cm:
            fn()
        e = cm.exception
        if isinstance(e, TwilioRestException):
            self.assertEqual((e.status, e.code), (status, code), e.msg)
            return
        resp = e.args[1]
        self.assertEqual(resp.status_code, status, resp.text)
        self.assertEqual(json.loads(resp.text).get("code"), code, resp.text)

    def assertRawError(self, r, status, code):
        self.assertEqual(r.status, status, repr(r))
        body = r.json()
        self.assertEqual(body.get("code"), code, body)
        self.assertEqual(body.get("status"), status, body)
        self.assertEqual(body.get("more_info"), "https://www.twilio.com/docs/errors/%d" % code, body)
        self.assertIsInstance(body.get("message"), str, body)
        self.assertFalse("type" in body and "title" in body, body)
        return body

    def assertMeta(self, meta, key, page_size=None, path=None, filters=()):
        """meta of a list page: every field, URLs absolute on public_url, carrying the filters."""
        self.assertSchema(meta, "list_meta")
        self.assertEqual(meta["key"], key)
        if page_size is not None:
            self.assertEqual(meta["page_size"], page_size)
        for name in ("first_page_url", "url", "next_page_url", "previous_page_url"):
            url = meta[name]
            if url is None:
                continue
            self.assertTrue(url.startswith(self.base + "/"), "%s not on public_url: %s" % (name, url))
            parsed = urllib.parse.urlsplit(url)
            if path is not None:
                self.assertEqual(parsed.path, path, "%s: %s" % (name, url))
            query = urllib.parse.parse_qsl(parsed.query)
            for f in filters:
                self.assertIn(f, query, "%s does not carry filter %s: %s" % (name, f, url))


# --- shared helpers for resource creation --------------------------------------------------------

def create_apn_credential(client, creds, sandbox=True, friendly_name="apn cert"):
    return client.notify.v1.credentials.create(
        type="apn", friendly_name=friendly_name, certificate=creds["apn_cert.pem"],
        private_key=creds["apn_key.pem"], sandbox=sandbox)


def create_fcm_credential(client, creds, friendly_name="fcm"):
    return client.notify.v1.credentials.create(
        type="fcm", friendly_name=friendly_name, secret=creds["service_account.json"])


def create_gcm_credential(client, creds, friendly_name="gcm"):
    return client.notify.v1.credentials.create(
        type="gcm", friendly_name=friendly_name, api_key=creds["service_account.json"])


def apn_token(i=None):
    """A plausible APNs device token (64 hex digits)."""
    return secrets.token_hex(32) if i is None else "%064x" % i
