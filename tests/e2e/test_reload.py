"""SIGHUP end to end: the real daemon re-reads its file while it runs.

Two notifyd_fake_peers processes, P1 and P2, each with its own test CA. The daemon starts pointed at P1;
the config file is rewritten to point [apns], [fcm] and [sms] at P2 (URLs and CA file) and the daemon gets
SIGHUP: a notification sent then reaches P2, one in flight at P1 at the moment of the reload is still
delivered there (and not sent again), and the process never restarts. Invalid files (unknown key, missing
ca_file, a ca_file that holds no certificate) are refused with a log line naming the problem and deliveries
keep going to P2. An account added by a reload can authenticate at once.

Each notification carries a unique nonce in its Body so a check only looks at its own deliveries.
"""

import os
import re
import secrets
import signal
import time

from fake_peers import FakePeers
from harness import Account, DaemonTestCase, apn_token, make_client, close_client

DELIVERY_TIMEOUT_S = 20.0
RELOAD_TIMEOUT_S = 10.0
IN_FLIGHT_DELAY_MS = 3000  # P1 answers this late: long enough to reload while the answer is pending
SETTLE_S = 2.0

RELOADED = "configuration reloaded from"
REFUSED = "reload refused, keeping the running configuration:"


def nonce():
    return "n" + secrets.token_hex(6)


class ReloadTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.p1 = FakePeers()
        cls.addClassCleanup(cls.p1.cleanup)
        cls.p2 = FakePeers()
        cls.addClassCleanup(cls.p2.cleanup)
        assert cls.p1.info["ca_file"] != cls.p2.info["ca_file"]
        cls.daemon_extra_config = cls.p1.config_lines()
        super().setUpClass()
        c = cls.client
        cls.cr_apn = c.notify.v1.credentials.create(
            type="apn", friendly_name="prod", certificate=cls.creds["apn_cert.pem"],
            private_key=cls.creds["apn_key.pem"], sandbox=False)
        cls.svc = c.notify.v1.services.create(friendly_name="reload", apn_credential_sid=cls.cr_apn.sid)
        cls.token = apn_token()
        c.notify.v1.services(cls.svc.sid).bindings.create(identity="alice", binding_type="apn",
                                                          address=cls.token)
        cls.notifications_api = c.notify.v1.services(cls.svc.sid).notifications
        cls.pid = cls.daemon.proc.pid

    # --- helpers ---

    def log_count(self, text):
        return self.daemon.log_text().count(text)

    def sighup(self, extra_config=None, accounts=None, expect=RELOADED):
        """Rewrites the config file (same [server] and [store]), sends SIGHUP and waits (bounded) for the
        daemon's log line saying the reload was applied or refused; returns the new log text."""
        if extra_config is not None:
            self.daemon.extra_config = list(extra_config)
        if accounts is not None:
            self.daemon.accounts = list(accounts)
        before = self.daemon.log_text()
        self.daemon.write_config()
        self.daemon.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.daemon.log_text()
            if text.count(expect) > before.count(expect):
                return text[len(before):]
            self.assertTrue(self.daemon.running(), "notifyd exited on SIGHUP\n%s" % self.daemon.log_tail())
            time.sleep(0.05)
        self.fail("no %r log line within %.0f s of SIGHUP\n%s" % (expect, RELOAD_TIMEOUT_S, self.daemon.log_tail()))

    def notify(self, tag, **kw):
        return self.notifications_api.create(identity=["alice"], body="hello " + tag, **kw)

    def apns_requests(self, peers, tag):
        return [r for r in peers.requests("apns") if tag in r["body"]]

    def wait_apns(self, peers, tag, timeout=DELIVERY_TIMEOUT_S):
        return peers.wait_for("apns", lambda rs: any(tag in r["body"] for r in rs), timeout=timeout,
                              what="the notification " + tag)

    def assertSameProcess(self):
        self.assertTrue(self.daemon.running(), self.daemon.log_tail())
        self.assertEqual(self.daemon.proc.pid, self.pid)
        self.assertEqual(self.log_count("listening on"), 1, "the daemon restarted\n" + self.daemon.log_tail())

    def p2_config_with(self, **replace):
        """P2's config lines with some `key = ...` lines replaced (key -> new full line, or None to
        drop), or extra lines appended under "append"."""
        lines = []
        for line in self.p2.config_lines():
            key = line.split("=", 1)[0].strip()
            if key in replace and replace[key] != "keep":
                if replace[key] is not None:
                    lines.append(replace[key])
                replace[key] = "keep"  # only the first occurrence ([apns])
            else:
                lines.append(line)
        return lines + list(replace.get("append", ()))

    # --- tests (one flow: each step depends on the one before) ---

    def test_transport_endpoints_move_on_sighup_and_bad_files_are_refused(self):
        # Delivered at P1.
        first = nonce()
        self.notify(first)
        self.wait_apns(self.p1, first)

        # A push in flight at P1 during the reload: still delivered there, exactly once, never resent.
        self.p1.delay("apns", IN_FLIGHT_DELAY_MS)
        in_flight = nonce()
        callback = self.p1.callbacks_url + "/cb/" + in_flight
        self.notify(in_flight, delivery_callback_url=callback)
        self.wait_apns(self.p1, in_flight)

        lines = self.sighup(self.p2.config_lines())
        self.assertNotIn(REFUSED, lines)

        moved = nonce()
        self.notify(moved)
        self.wait_apns(self.p2, moved)
        self.assertEqual(self.apns_requests(self.p1, moved), [], "sent to P1 after the reload")

        posts = self.p1.wait_for("callbacks", lambda rs: any(r["path"] == "/cb/" + in_flight for r in rs),
                                 timeout=DELIVERY_TIMEOUT_S, what="the in-flight push's callback")
        post = [p for p in posts if p["path"] == "/cb/" + in_flight][0]
        self.assertEqual(post.form_dict().get("Status"), "delivered", post["body"])
        time.sleep(SETTLE_S)
        self.assertEqual(len(self.apns_requests(self.p1, in_flight)), 1)
        self.assertEqual(self.apns_requests(self.p2, in_flight), [], "the in-flight push was sent again")
        self.assertSameProcess()

        # Invalid files: refused, the problem named, P2 still in use.
        missing = os.path.join(self.daemon.dir, "no-such-ca.pem")
        not_a_ca = os.path.join(self.daemon.dir, "not-a-ca.pem")
        with open(not_a_ca, "w") as f:
            f.write("this is not a certificate\n")
        bad_files = [
            ("an unknown key", self.p2_config_with(append=["colour = \"blue\""]), r"colour"),
            ("a missing ca_file", self.p2_config_with(ca_file='ca_file = "%s"' % missing), re.escape(missing)),
            ("a ca_file without a certificate", self.p2_config_with(ca_file='ca_file = "%s"' % not_a_ca),
             r"\[apns\] ca_file: .*" + re.escape(not_a_ca)),
        ]
        for what, config, problem in bad_files:
            with self.subTest(what):
                lines = self.sighup(config, expect=REFUSED)
                refused = [l for l in lines.splitlines() if REFUSED in l]
                self.assertTrue(any(re.search(problem, l) for l in refused), "%s: %s" % (what, refused))
                self.assertNotIn(RELOADED, lines)
                still = nonce()
                self.notify(still)
                self.wait_apns(self.p2, still)
                self.assertEqual(self.apns_requests(self.p1, still), [])
        self.assertSameProcess()

    def test_an_account_added_by_a_reload_can_authenticate(self):
        newcomer = Account()
        as_account = (newcomer.sid, newcomer.auth_token)
        as_key = (newcomer.api_key_sid, newcomer.api_key_secret)
        self.assertEqual(self.raw("GET", "/v1/Services", auth=as_account).status, 401)

        self.sighup(accounts=self.daemon.accounts + [newcomer])
        client = make_client(self.daemon.base_url, newcomer.sid, newcomer.auth_token)
        self.addCleanup(close_client, client)
        self.assertEqual(client.notify.v1.services.list(limit=1), [])  # its own (empty) tenant
        self.assertEqual(self.raw("GET", "/v1/Services", auth=as_key).status, 200)
        self.assertSameProcess()


if __name__ == "__main__":
    import unittest
    unittest.main()
