"""A 2xx means durable: bindings created as fast as possible over one keep-alive connection, then
SIGKILL right after the last 201, restart on the same SQLite file: every binding is there with the SID
that was returned. Same for a credential and a service; and a clean SIGTERM restart keeps everything."""

import http.client
import json
import signal
import time
import unittest
import urllib.parse

import harness
from harness import DaemonTestCase, apn_token, basic_auth, close_client, create_apn_credential

N = 300


class DurabilityTest(DaemonTestCase):

    def restart_after(self, sig=signal.SIGTERM):
        """Restarts on the same db and port; if the daemon is still running it is ended with sig."""
        self.daemon.restart(sig)
        # the old pooled connections died with the process
        close_client(self.client)
        close_client(self.client_b)

    def test_bindings_survive_sigkill(self):
        svc = self.client.notify.v1.services.create(friendly_name="durable")
        path = "/v1/Services/%s/Bindings" % svc.sid
        headers = {"Authorization": basic_auth(self.a.sid, self.a.auth_token),
                   "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=harness.HTTP_TIMEOUT_S)
        created = {}
        deadline = time.monotonic() + 120
        try:
            for i in range(N):
                self.assertLess(time.monotonic(), deadline, "creating %d bindings took too long" % N)
                body = urllib.parse.urlencode([("Identity", "d%03d" % i), ("BindingType", "apn"),
                                               ("Address", apn_token(i + 1)), ("Tag", "durable"),
                                               ("Tag", "n%d" % i)])
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.assertEqual(resp.status, 201, data[:300])
                self.assertFalse(resp.will_close, "the server closed the keep-alive connection")
                created[json.loads(data)["sid"]] = "d%03d" % i
            # immediately after the last 201
            self.daemon.kill(signal.SIGKILL)
        finally:
            conn.close()
        self.assertEqual(len(created), N)

        self.restart_after()
        listed = {b.sid: b for b in self.client.notify.v1.services(svc.sid).bindings.list(page_size=1000)}
        missing = set(created) - set(listed)
        self.assertEqual(missing, set(), "%d of %d bindings lost after SIGKILL" % (len(missing), N))
        self.assertEqual(len(listed), N)
        for sid, identity in created.items():
            self.assertEqual(listed[sid].identity, identity)
            self.assertIn("durable", listed[sid].tags)
        # and through paging
        streamed = [b.sid for b in self.client.notify.v1.services(svc.sid).bindings.stream(page_size=50)]
        self.assertEqual(sorted(streamed), sorted(created))

    def test_credential_and_service_survive_sigkill(self):
        cr = create_apn_credential(self.client, self.creds, friendly_name="durable cred")
        svc = self.client.notify.v1.services.create(friendly_name="durable svc", apn_credential_sid=cr.sid,
                                                    default_apn_notification_protocol_version="4")
        svc_raw = self.last_json()
        b = self.client.notify.v1.services(svc.sid).bindings.create(identity="k", binding_type="apn",
                                                                     address=apn_token())
        self.client.notify.v1.services(svc.sid).update(friendly_name="durable svc 2")
        svc_raw = self.last_json()
        self.daemon.kill(signal.SIGKILL)

        self.restart_after()
        fetched_cr = self.client.notify.v1.credentials(cr.sid).fetch()
        self.assertEqual((fetched_cr.friendly_name, fetched_cr.type, fetched_cr.sandbox),
                         ("durable cred", "apn", "true"))
        self.client.notify.v1.services(svc.sid).fetch()
        self.assertEqual(self.last_json(), svc_raw)
        self.assertEqual(self.client.notify.v1.services(svc.sid).bindings(b.sid).fetch().identity, "k")
        # the credential is still usable (its secret was kept)
        other = self.client.notify.v1.services.create(apn_credential_sid=cr.sid)
        self.assertEqual(other.apn_credential_sid, cr.sid)

    def test_deletes_survive_sigkill(self):
        svc = self.client.notify.v1.services.create(friendly_name="deleted")
        b = self.client.notify.v1.services(svc.sid).bindings.create(identity="z", binding_type="fcm", address="f")
        keep = self.client.notify.v1.services(svc.sid).bindings.create(identity="z", binding_type="fcm",
                                                                        address="g")
        self.assertTrue(self.client.notify.v1.services(svc.sid).bindings(b.sid).delete())
        self.daemon.kill(signal.SIGKILL)
        self.restart_after()
        self.assertTwilioError(lambda: self.client.notify.v1.services(svc.sid).bindings(b.sid).fetch(), 404, 20404)
        self.assertEqual([x.sid for x in self.client.notify.v1.services(svc.sid).bindings.list()], [keep.sid])

    def test_clean_restart_keeps_everything(self):
        svc = self.client.notify.v1.services.create(friendly_name="sigterm")
        sids = [self.client.notify.v1.services(svc.sid).bindings.create(
            identity="t%d" % i, binding_type="gcm", address="gcm-%d" % i).sid for i in range(10)]
        self.restart_after(signal.SIGTERM)  # stop() asserts exit code 0
        self.assertEqual(sorted(x.sid for x in self.client.notify.v1.services(svc.sid).bindings.list()),
                         sorted(sids))
        self.assertIn("sigterm",
                      [s.friendly_name for s in self.client.notify.v1.services.list()])


if __name__ == "__main__":
    unittest.main()
