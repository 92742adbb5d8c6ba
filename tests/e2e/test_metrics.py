"""GET /metrics end to end: the real daemon with notifyd_fake_peers, scraped over HTTP.

Covers: the [metrics] bearer token read from bearer_token_file (401 without it, 200 with it, the content
type of exposition format 0.0.4); request counters by route template after calls of the official client;
deliveries by channel and outcome, bindings removed, notifications accepted and token refreshes (an APNs
token-auth credential mints a provider token, an FCM credential fetches an access token from the fake OAuth
endpoint) after a notification reaches the fake APNs and FCM; a SIGHUP that adds a token to a running
daemon. Counters are compared as differences between two scrapes, so tests do not depend on each other.
"""

import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import time
import unittest

from fake_peers import FakePeers
from harness import DaemonTestCase, apn_token, raw_request

METRICS_TIMEOUT_S = 20.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$")


def parse_metrics(text):
    """{series: value} of every sample line ('name{labels}' exactly as rendered)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        out[m.group(1)] = float(m.group(2))
    return out


def delta(before, after, series):
    return after.get(series, 0.0) - before.get(series, 0.0)


class MetricsTest(DaemonTestCase):
    """One daemon with a metrics bearer token from a file, pointed at the fake peers."""

    @classmethod
    def setUpClass(cls):
        cls.peers = FakePeers()
        cls.addClassCleanup(cls.peers.cleanup)
        cls.metrics_token = "m-" + secrets.token_hex(16)
        token_dir = tempfile.mkdtemp(prefix="notifyd-e2e-metrics-")
        cls.addClassCleanup(shutil.rmtree, token_dir, True)
        token_file = os.path.join(token_dir, "metrics-token")
        with open(token_file, "w") as f:
            f.write(cls.metrics_token + "\n")
        cls.daemon_extra_config = cls.peers.config_lines() + [
            "[metrics]", 'bearer_token_file = "%s"' % token_file]
        super().setUpClass()
        c = cls.client
        r = raw_request(cls.daemon.port, "POST", "/v1/Credentials", body={
            "Type": "apn", "FriendlyName": "apn p8", "PrivateKey": cls.creds["apn_p8.pem"],
            "ApnKeyId": "ABC123DEFG", "ApnTeamId": "DEF123GHIJ", "ApnTopic": "com.example.app"},
            auth=(cls.a.sid, cls.a.auth_token))
        assert r.status == 201, r
        cls.cr_apn = r.json()["sid"]
        sa = json.loads(cls.creds["service_account.json"])
        sa["token_uri"] = cls.peers.token_uri
        cls.cr_fcm = c.notify.v1.credentials.create(type="fcm", friendly_name="fcm", secret=json.dumps(sa)).sid
        cls.svc = c.notify.v1.services.create(friendly_name="metrics", apn_credential_sid=cls.cr_apn,
                                              fcm_credential_sid=cls.cr_fcm)
        cls.bindings_api = c.notify.v1.services(cls.svc.sid).bindings
        cls.notifications_api = c.notify.v1.services(cls.svc.sid).notifications

    def scrape(self, token=None):
        headers = {"Authorization": "Bearer " + (token or self.metrics_token)}
        r = raw_request(self.daemon.port, "GET", "/metrics", headers=headers)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Content-Type"), CONTENT_TYPE)
        return parse_metrics(r.body.decode("utf-8"))

    def wait_metrics(self, before, expected, timeout=METRICS_TIMEOUT_S):
        """Scrapes until every series in `expected` grew by exactly its value since `before`."""
        self.maxDiff = None  # a failure shows every series
        deadline = time.monotonic() + timeout
        while True:
            now = self.scrape()
            got = {s: delta(before, now, s) for s in expected}
            if got == expected:
                return now
            if time.monotonic() >= deadline:
                self.assertEqual(got, expected, "metrics did not reach the expected differences")
            time.sleep(0.1)

    def test_scrape_needs_the_bearer_token(self):
        r = raw_request(self.daemon.port, "GET", "/metrics")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.headers.get("WWW-Authenticate"), 'Bearer realm="notifyd metrics"')
        self.assertNotIn(b"notifyd_", r.body)
        r = raw_request(self.daemon.port, "GET", "/metrics", headers={"Authorization": "Bearer wrong"})
        self.assertEqual(r.status, 401, r)
        r = raw_request(self.daemon.port, "GET", "/metrics", auth=(self.a.sid, self.a.auth_token))
        self.assertEqual(r.status, 401, r)
        m = self.scrape()
        self.assertIn('notifyd_http_requests_total{route="/metrics",method="GET",status="401"}', m)
        self.assertNotIn(self.metrics_token, self.daemon.log_text())

    def test_requests_by_route_template(self):
        before = self.scrape()
        self.bindings_api.list(limit=5)
        self.client.notify.v1.services(self.svc.sid).fetch()
        with self.assertRaises(Exception):
            self.client.notify.v1.services("IS" + "0" * 32).fetch()
        after = self.scrape()
        route = 'notifyd_http_requests_total{route="%s",method="%s",status="%s"}'
        self.assertEqual(delta(before, after, route % ("/v1/Services/{IS}/Bindings", "GET", "200")), 1)
        self.assertEqual(delta(before, after, route % ("/v1/Services/{IS}", "GET", "200")), 1)
        self.assertEqual(delta(before, after, route % ("/v1/Services/{IS}", "GET", "404")), 1)
        self.assertEqual(delta(before, after, 'notifyd_http_request_duration_seconds_count{route="/v1/Services/{IS}"}'), 2)
        self.assertFalse([s for s in after if self.svc.sid in s], "a SID became a label")

    def test_deliveries_and_token_refreshes(self):
        before = self.scrape()
        identity = "id-" + secrets.token_hex(4)
        apn = apn_token()
        fcm = "fcm-" + secrets.token_hex(20)
        self.bindings_api.create(identity=identity, binding_type="apn", address=apn)
        self.bindings_api.create(identity=identity, binding_type="fcm", address=fcm)
        self.notifications_api.create(identity=[identity], body="hello metrics")
        self.peers.wait_for("apns", lambda rs: any(apn in r["path"] for r in rs), what="the apn delivery")
        self.peers.wait_for("fcm", lambda rs: any(fcm in r["body"] for r in rs), what="the fcm delivery")
        after = self.wait_metrics(before, {
            'notifyd_deliveries_total{channel="apn",outcome="delivered"}': 1,
            'notifyd_deliveries_total{channel="fcm",outcome="delivered"}': 1,
            'notifyd_delivery_attempts_total{channel="apn",result="delivered"}': 1,
            'notifyd_delivery_attempts_total{channel="fcm",result="delivered"}': 1,
            'notifyd_notifications_accepted_total': 1,
            'notifyd_http_requests_total{route="/v1/Services/{IS}/Notifications",method="POST",status="201"}': 1,
            'notifyd_http_requests_total{route="/v1/Services/{IS}/Bindings",method="POST",status="201"}': 2,
        })
        # The class's one APNs token credential minted one provider token, reused since (50 minutes); the
        # FCM credential fetched at least one access token from the fake OAuth endpoint.
        self.assertEqual(after['notifyd_token_refreshes_total{transport="apns"}'], 1)
        self.assertGreaterEqual(after['notifyd_token_refreshes_total{transport="fcm"}'], 1)
        self.assertEqual(after['notifyd_transport_pools{transport="apns"}'], 1)
        self.assertEqual(after['notifyd_transport_pools{transport="fcm"}'], 1)
        self.assertGreaterEqual(after['notifyd_transport_connections_opened_total{transport="apns"}'], 1)
        self.assertIn("notifyd_delivery_queue_depth", after)
        self.assertIn("notifyd_deliveries_in_flight", after)

    def test_invalid_address_counts_a_failed_delivery_and_a_removed_binding(self):
        before = self.scrape()
        token = apn_token()
        b = self.bindings_api.create(identity="id-" + secrets.token_hex(4), binding_type="apn", address=token)
        self.peers.script("apns", [{"status": 400, "match": token, "body": {"reason": "BadDeviceToken"}}])
        self.notifications_api.create(identity=[b.identity], body="hello gone")
        self.wait_metrics(before, {
            'notifyd_deliveries_total{channel="apn",outcome="failed"}': 1,
            'notifyd_delivery_attempts_total{channel="apn",result="invalid_address"}': 1,
            'notifyd_bindings_removed_total{channel="apn"}': 1,
            'notifyd_deliveries_failed_by_reason_total{reason="BadDeviceToken"}': 1,
        })


class MetricsReloadTest(DaemonTestCase):
    """A daemon started without [metrics]: /metrics is open until a SIGHUP brings a token."""

    def test_sighup_adds_a_bearer_token(self):
        r = raw_request(self.daemon.port, "GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"# TYPE notifyd_http_requests_total counter", r.body)
        token = "r-" + secrets.token_hex(12)
        self.daemon.extra_config = ["[metrics]", 'bearer_token = "%s"' % token]
        self.daemon.write_config()
        self.daemon.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + METRICS_TIMEOUT_S
        while True:
            r = raw_request(self.daemon.port, "GET", "/metrics")
            if r.status == 401:
                break
            self.assertLess(time.monotonic(), deadline, "the reloaded token was not required in time")
            time.sleep(0.05)
        r = raw_request(self.daemon.port, "GET", "/metrics", headers={"Authorization": "Bearer " + token})
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(token, self.daemon.log_text())


if __name__ == "__main__":
    unittest.main()
