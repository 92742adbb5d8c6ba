"""notifyd under systemd's notification protocol, with the test in systemd's place: the test binds the
NOTIFY_SOCKET datagram socket, sets WATCHDOG_USEC, starts the real daemon and reads what it says.

Covers: READY=1 (with STATUS= and the queue depth) before the first request, and the first request right
after it succeeds; WATCHDOG=1 pings at half the watchdog interval; SIGHUP gives RELOADING=1 then READY=1
and a changed configuration (a new account) takes effect, an invalid one is refused with a log line and the
old one keeps running; SIGTERM during a fan-out gives STOPPING=1 and exit code 0, and after the restart
every pending delivery is done, re-sent at most once per stream that was on the wire at the deadline. And
the log format under journald (JOURNAL_STREAM).
"""

import os
import signal
import socket
import sys
import tempfile
import shutil
import time
import unittest

from harness import Account, Daemon, apn_token, raw_request, READY_TIMEOUT_S
from test_notifications import NotificationTestBase, nonce

WATCHDOG_USEC = 1000000  # the pings must come every 500 ms; systemd would act after 1 s without one
BINDINGS = 200
RESPONSE_DELAY_MS = 300
MAX_STREAMS = 10
SHUTDOWN_TIMEOUT_S = 1  # [server] shutdown_timeout: the drain is cut short, the rest stays pending


class NotifySocket:
    """The receiving end of sd_notify: an AF_UNIX datagram socket in a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="notifyd-sd-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []  # (monotonic time, {key: value}) in arrival order

    def pump(self, seconds):
        """Reads every datagram that arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return
            fields = {}
            for line in data.decode("utf-8").splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, key, value, timeout, after=0, proc=None):
        """Waits (bounded) for a message with key=value at index >= after; returns its index."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(after, len(self.messages)):
                if self.messages[i][1].get(key) == value:
                    return i
            if proc is not None and proc.poll() is not None:
                raise AssertionError("notifyd exited with %s while waiting for %s=%s"
                                     % (proc.returncode, key, value))
            if time.monotonic() >= deadline:
                raise AssertionError("no %s=%s within %.1f s; got %r"
                                     % (key, value, timeout, [m for _, m in self.messages[after:]][-10:]))
            self.pump(0.05)

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SystemdNotifyTest(NotificationTestBase):
    """One daemon, driven in order: ready, watchdog, reload, stop during a fan-out, restart."""

    @classmethod
    def setUpClass(cls):
        cls.notify = NotifySocket()
        cls.addClassCleanup(cls.notify.close)
        cls.ready_checks = []  # per start: (index of READY=1, status of the first request after it)
        cls.daemon_env = dict(os.environ, NOTIFY_SOCKET=cls.notify.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
        cls.daemon_env.pop("WATCHDOG_PID", None)
        cls.daemon_env.pop("JOURNAL_STREAM", None)
        cls.daemon_ready_waiter = staticmethod(cls.wait_notify_ready)
        cls.daemon_server_config = ["shutdown_timeout = %d" % SHUTDOWN_TIMEOUT_S]
        super().setUpClass()

    @classmethod
    def wait_notify_ready(cls, daemon):
        """Instead of polling /healthz: waits for READY=1, then makes one request at once."""
        start = len(cls.notify.messages)
        i = cls.notify.wait_for("READY", "1", READY_TIMEOUT_S, after=start, proc=daemon.proc)
        status = raw_request(daemon.port, "GET", "/healthz").status
        cls.ready_checks.append((i - start, status, cls.notify.messages[i][1]))

    def messages_since(self, index):
        return [m for _, m in self.notify.messages[index:]]

    def test_1_ready_before_first_request(self):
        index, status, ready = self.ready_checks[0]
        self.assertEqual(index, 0, "READY=1 must be the first message (nothing before it)")
        self.assertEqual(status, 200, "the first request right after READY=1 must succeed")
        self.assertIn("queue depth 0", ready.get("STATUS", ""))

    def test_2_watchdog_pings(self):
        start = len(self.notify.messages)
        t0 = time.monotonic()
        self.notify.pump(3.0)
        pings = [t for t, m in self.notify.messages[start:] if m.get("WATCHDOG") == "1"]
        # every 500 ms: about 6 in 3 s (fewer allowed: a loaded test machine delays timers)
        self.assertGreaterEqual(len(pings), 4, "WATCHDOG=1 pings in 3 s")
        gaps = [b - a for a, b in zip([t0] + pings, pings)]
        self.assertLess(max(gaps), WATCHDOG_USEC / 1e6, "a gap between pings reached the watchdog interval")

    def test_3_reload_reloading_then_ready_and_config_takes_effect(self):
        fresh = Account(with_api_key=False)
        self.assertEqual(raw_request(self.daemon.port, "GET", "/v1/Services",
                                     auth=(fresh.sid, fresh.auth_token)).status, 401)
        self.daemon.accounts.append(fresh)
        self.daemon.write_config()
        start = len(self.notify.messages)
        self.daemon.proc.send_signal(signal.SIGHUP)
        i = self.notify.wait_for("RELOADING", "1", 10, after=start, proc=self.daemon.proc)
        self.assertIn("MONOTONIC_USEC", self.notify.messages[i][1])
        self.notify.wait_for("READY", "1", 10, after=i + 1, proc=self.daemon.proc)
        self.assertEqual(raw_request(self.daemon.port, "GET", "/v1/Services",
                                     auth=(fresh.sid, fresh.auth_token)).status, 200,
                         "the account added by the reload must authenticate")

        # An invalid file: RELOADING/READY again, a log line naming the problem, the old config stays.
        with open(self.daemon.config_path, "a") as f:
            f.write("[no_such_section]\nanswer = 42\n")
        start = len(self.notify.messages)
        self.daemon.proc.send_signal(signal.SIGHUP)
        i = self.notify.wait_for("RELOADING", "1", 10, after=start, proc=self.daemon.proc)
        self.notify.wait_for("READY", "1", 10, after=i + 1, proc=self.daemon.proc)
        deadline = time.monotonic() + 5
        while "reload refused" not in self.daemon.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = [l for l in self.daemon.log_text().splitlines() if "reload refused" in l]
        self.assertTrue(refused, "no 'reload refused' log line")
        self.assertIn("no_such_section", refused[-1])
        self.assertEqual(raw_request(self.daemon.port, "GET", "/v1/Services",
                                     auth=(fresh.sid, fresh.auth_token)).status, 200)
        self.daemon.write_config()  # valid again, for the restart below

    def test_4_sigterm_during_fanout_then_restart_delivers_the_rest(self):
        tokens = [apn_token() for _ in range(BINDINGS)]
        for i, t in enumerate(tokens):
            self.bind("sd%03d" % i, "apn", t, tag=["sd"])
        wanted = set(tokens)

        def mine(rs):
            return [r for r in rs if r.device_token in wanted]

        self.peers.delay("apns", RESPONSE_DELAY_MS)
        self.peers.max_streams("apns", MAX_STREAMS)
        tag = nonce()
        self.notifications_api.create(tag=["sd"], body="stop " + tag)
        self.peers.wait_for("apns", lambda rs: len(mine(rs)) >= 20, timeout=60, interval=0.02,
                            what="20 deliveries before SIGTERM")

        start = len(self.notify.messages)
        t_term = time.monotonic()
        rc = self.daemon.kill(signal.SIGTERM, timeout=30)
        stop_s = time.monotonic() - t_term
        self.notify.pump(0.2)
        self.assertEqual(rc, 0, "exit code after SIGTERM\n" + self.daemon.log_tail())
        # within the configured time (the HTTP drain, then the deliveries' drain), with slack for a busy host
        self.assertLess(stop_s, 2 * SHUTDOWN_TIMEOUT_S + 3, "SIGTERM to exit")
        stopping = [m for m in self.messages_since(start) if m.get("STOPPING") == "1"]
        self.assertTrue(stopping, "no STOPPING=1 after SIGTERM")
        before = {r.device_token for r in mine(self.peers.requests("apns"))}
        self.assertLess(len(before), BINDINGS, "the fan-out had finished before SIGTERM: nothing was pending")

        self.peers.delay("apns", 0)
        self.peers.max_streams("apns", 1000)
        self.daemon.start()
        index, status, _ = self.ready_checks[-1]
        self.assertEqual(index, 0)
        self.assertEqual(status, 200)
        self.peers.wait_for("apns", lambda rs: {r.device_token for r in mine(rs)} == wanted, timeout=90,
                            interval=0.2, what="all %d bindings delivered after the restart" % BINDINGS)
        time.sleep(1.0)  # late re-sends would show up here
        reqs = mine(self.peers.requests("apns"))
        for r in reqs:
            self.assertIn(tag, r["body"])
        # Only what was on the wire when the drain was cut short may be sent again (at most one per
        # stream), with its apns-id; everything answered before is recorded and not sent twice.
        duplicates = len(reqs) - BINDINGS
        sys.stderr.write("\nsystemd stop: %d of %d bindings reached before SIGTERM, exit 0 after %.2f s, "
                         "%d re-sent after the restart\n" % (len(before), BINDINGS, stop_s, duplicates))
        self.assertLessEqual(duplicates, MAX_STREAMS, "re-sent deliveries after a graceful stop")
        ids = {}
        for r in reqs:
            ids.setdefault(r.device_token, set()).add(r.header("apns-id"))
        self.assertEqual([t for t, s in ids.items() if len(s) != 1], [], "one apns-id per binding")


class JournalLogFormatTest(unittest.TestCase):
    """With stderr being the journal stream (JOURNAL_STREAM = its device:inode), lines carry a syslog
    priority prefix and no timestamp of their own."""

    def test_journal_stream_lines(self):
        daemon = Daemon([Account()], log_level="info")
        self.addCleanup(daemon.cleanup)
        open(daemon.log_path, "ab").close()
        st = os.stat(daemon.log_path)
        daemon.env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        daemon.env.pop("NOTIFY_SOCKET", None)
        daemon.start()
        daemon.stop()
        lines = [l for l in daemon.log_text().splitlines() if l and not l.startswith("=====")]
        self.assertTrue(lines)
        for l in lines:
            self.assertRegex(l, r"^<[0-7]>\[[a-z0-9_]+\] ", "not a journald line: %r" % l)
        self.assertTrue(any(l.startswith("<6>[main] listening on") for l in lines), lines)

    def test_inherited_journal_stream_is_ignored(self):
        """A JOURNAL_STREAM that does not name our stderr (inherited) keeps the timestamped format."""
        daemon = Daemon([Account()], log_level="info")
        self.addCleanup(daemon.cleanup)
        daemon.env = dict(os.environ, JOURNAL_STREAM="1:1")
        daemon.env.pop("NOTIFY_SOCKET", None)
        daemon.start()
        daemon.stop()
        listening = [l for l in daemon.log_text().splitlines() if "listening on" in l]
        self.assertTrue(listening)
        self.assertRegex(listening[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} ")


if __name__ == "__main__":
    unittest.main()
