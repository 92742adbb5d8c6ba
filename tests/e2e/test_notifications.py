"""Notifications end to end: the official client's notifications.create() against the real daemon, delivered
to the fake APNs (production and sandbox), FCM (with its OAuth2 token endpoint) and SMS gateway of
notifyd_fake_peers, with delivery callbacks to its receiver.

Covers: exact recipient sets (Identity, Tag AND, implicit `all` and type tags, Identity + Tag, ToBinding SMS);
payload per channel and protocol version (APNs "3" and "4", FCM data message, SMS); a binding's own
CredentialSid reaching the sandbox fake with that certificate and topic; APNs 410 and FCM UNREGISTERED
removing the binding (and a 410 older than the binding keeping it); 503 retried with the same apns-id;
429 + Retry-After honoured; the 201 body; validation errors; signed delivery callbacks.

Each notification carries a unique nonce in its Body so a test only looks at its own deliveries.
"""

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import unittest

from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from fake_peers import FakePeers
from harness import DaemonTestCase, apn_token, sid_re, DATE_RE

DELIVERY_TIMEOUT_S = 20.0
SETTLE_S = 1.0  # after the expected deliveries arrived: extra ones would show up within this
RETRY_TIMEOUT_S = 30.0
TOPIC = "com.example.app"  # fixtures/make_credentials.sh
OTHER_TOPIC = "com.example.other"

NOTIFICATION_FIELDS = {
    "sid", "account_sid", "service_sid", "date_created", "identities", "tags", "segments", "priority",
    "ttl", "title", "body", "sound", "action", "data", "apn", "gcm", "fcm", "sms", "facebook_messenger",
    "alexa"}  # notify.v1.service.notification in twilio_notify_v1.json


def make_apn_cert(directory, topic):
    """An APNs-style certificate (subject UID = topic) and its key, with the openssl CLI."""
    cert = os.path.join(directory, topic + ".cert.pem")
    key = os.path.join(directory, topic + ".key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
                    "-subj", "/UID=%s/CN=Apple Push Services: %s" % (topic, topic),
                    "-keyout", key, "-out", cert],
                   check=True, timeout=60, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(cert) as c, open(key) as k:
        return c.read(), k.read()


def nonce():
    return "n" + secrets.token_hex(6)


class NotificationTestBase(DaemonTestCase):
    """Starts notifyd_fake_peers before the daemon and points [apns], [fcm] and [sms] at it; creates an apn
    credential (production, topic com.example.app), a second one (sandbox, topic com.example.other), an fcm
    credential whose token_uri is the fake OAuth endpoint, and a Service using the first apn, the fcm
    credential and a MessagingServiceSid."""

    @classmethod
    def setUpClass(cls):
        cls.peers = FakePeers()
        cls.addClassCleanup(cls.peers.cleanup)
        cls.daemon_extra_config = cls.peers.config_lines()
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="notifyd-e2e-nt-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        c = cls.client
        cls.cr_apn = c.notify.v1.credentials.create(
            type="apn", friendly_name="prod", certificate=cls.creds["apn_cert.pem"],
            private_key=cls.creds["apn_key.pem"], sandbox=False)
        other_cert, other_key = make_apn_cert(cls.tmp, OTHER_TOPIC)
        cls.cr_apn_other = c.notify.v1.credentials.create(
            type="apn", friendly_name="other", certificate=other_cert, private_key=other_key, sandbox=True)
        sa = json.loads(cls.creds["service_account.json"])
        sa["token_uri"] = cls.peers.token_uri
        cls.project_id = sa["project_id"]
        cls.cr_fcm = c.notify.v1.credentials.create(type="fcm", friendly_name="fcm", secret=json.dumps(sa))
        cls.mg = "MG" + secrets.token_hex(16)
        cls.svc = c.notify.v1.services.create(
            friendly_name="notifications", apn_credential_sid=cls.cr_apn.sid,
            fcm_credential_sid=cls.cr_fcm.sid, messaging_service_sid=cls.mg)
        cls.bindings_api = c.notify.v1.services(cls.svc.sid).bindings
        cls.notifications_api = c.notify.v1.services(cls.svc.sid).notifications

    # --- helpers ---

    def bind(self, identity, binding_type, address, **kw):
        return self.bindings_api.create(identity=identity, binding_type=binding_type, address=address, **kw)

    def deliveries(self, tag):
        """{(channel, address): [requests]} of every fake request whose payload contains tag."""
        out = {}
        for peer, channel in (("apns", "apn"), ("apns_sandbox", "apn_sandbox")):
            for r in self.peers.requests(peer):
                if tag in r["body"]:
                    out.setdefault((channel, r.device_token), []).append(r)
        for r in self.peers.requests("fcm"):
            if tag in r["body"]:
                out.setdefault(("fcm", r.json()["message"].get("token")), []).append(r)
        for r in self.peers.requests("sms"):
            if tag in r.form_dict().get("Body", ""):
                out.setdefault(("sms", r.form_dict().get("To")), []).append(r)
        return out

    def wait_deliveries(self, tag, expected, timeout=DELIVERY_TIMEOUT_S, settle=SETTLE_S):
        """Waits (bounded) until every expected (channel, address) got the notification, then `settle`
        seconds more; asserts the recipients are exactly `expected`, each reached once."""
        expected = set(expected)
        deadline = time.monotonic() + timeout
        got = {}
        while time.monotonic() < deadline:
            got = self.deliveries(tag)
            if expected <= set(got):
                break
            time.sleep(0.1)
        self.assertTrue(expected <= set(got), "missing recipients %s; got %s"
                        % (sorted(expected - set(got)), sorted(got)))
        time.sleep(settle)
        got = self.deliveries(tag)
        self.assertEqual(set(got), expected, "recipient set is not exact")
        for key, reqs in got.items():
            self.assertEqual(len(reqs), 1, "%s reached %d times" % (key, len(reqs)))
        return {k: v[0] for k, v in got.items()}

    def wait_requests_matching(self, peer, needle, n, timeout=RETRY_TIMEOUT_S):
        return self.peers.wait_for(peer, lambda rs: len([r for r in rs if needle in r["path"] + r["body"]]) >= n,
                                   timeout=timeout, what="%d requests with %s" % (n, needle))

    def wait_binding_gone(self, sid, timeout=DELIVERY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.bindings_api(sid).fetch()
            except TwilioRestException as e:
                self.assertEqual(e.status, 404, e.msg)
                return
            if time.monotonic() >= deadline:
                self.fail("binding %s still present %.0f s after the invalid-token answer" % (sid, timeout))
            time.sleep(0.2)

    def assertBindingPresent(self, sid):
        self.assertEqual(self.bindings_api(sid).fetch().sid, sid)


class NotificationsTest(NotificationTestBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The audience of the recipient and payload tests.
        cls.A1, cls.B1, cls.D1 = apn_token(), apn_token(), apn_token()
        cls.F1 = "fcm-" + secrets.token_hex(20)
        cls.SMS_CAROL = "+15555550101"
        b = lambda *a, **kw: cls.bindings_api.create(identity=a[0], binding_type=a[1], address=a[2], **kw)
        cls.alice_apn = b("alice", "apn", cls.A1, tag=["vip", "eu"])
        cls.alice_fcm = b("alice", "fcm", cls.F1, tag=["vip"])
        cls.bob_apn = b("bob", "apn", cls.B1, tag=["vip"], notification_protocol_version="4")
        cls.carol_sms = b("carol", "sms", cls.SMS_CAROL, tag=["eu"])
        cls.dave_apn = b("dave", "apn", cls.D1, tag=["other"], credential_sid=cls.cr_apn_other.sid)
        cls.everyone = {("apn", cls.A1), ("fcm", cls.F1), ("apn", cls.B1), ("sms", cls.SMS_CAROL),
                        ("apn_sandbox", cls.D1)}

    def notify(self, **kw):
        tag = nonce()
        kw.setdefault("body", "hello " + tag)
        return tag, self.notifications_api.create(**kw)

    # --- recipients ---

    def test_identity(self):
        tag, _ = self.notify(identity=["alice"])
        self.wait_deliveries(tag, {("apn", self.A1), ("fcm", self.F1)})

    def test_two_identities(self):
        tag, _ = self.notify(identity=["alice", "bob", "nobody"])
        self.wait_deliveries(tag, {("apn", self.A1), ("fcm", self.F1), ("apn", self.B1)})

    def test_tags_all_must_match(self):
        tag, _ = self.notify(tag=["vip", "eu"])
        self.wait_deliveries(tag, {("apn", self.A1)})

    def test_identity_and_tag(self):
        tag, _ = self.notify(identity=["alice", "carol"], tag=["eu"])
        self.wait_deliveries(tag, {("apn", self.A1), ("sms", self.SMS_CAROL)})

    def test_tag_all(self):
        tag, _ = self.notify(tag=["all"])
        self.wait_deliveries(tag, self.everyone)

    def test_implicit_type_tag(self):
        tag, _ = self.notify(tag=["apn"])
        self.wait_deliveries(tag, {("apn", self.A1), ("apn", self.B1), ("apn_sandbox", self.D1)})
        tag, _ = self.notify(tag=["sms"])
        self.wait_deliveries(tag, {("sms", self.SMS_CAROL)})

    def test_to_binding_sms(self):
        tag, _ = self.notify(to_binding=[json.dumps({"binding_type": "sms", "address": "+15555550199"}),
                                         json.dumps({"binding_type": "sms", "address": "+15555550198"})])
        got = self.wait_deliveries(tag, {("sms", "+15555550199"), ("sms", "+15555550198")})
        for r in got.values():
            f = r.form_dict()
            self.assertEqual(f.get("MessagingServiceSid"), self.mg, f)
            self.assertEqual(f.get("Body"), "hello " + tag, f)

    # --- payloads ---

    def test_apns_protocol_3_payload(self):
        tag, _ = self.notify(identity=["alice"], title="The title", sound="ding", action="OPEN",
                             data={"k": "v", "n": "1"}, priority="low", ttl=3600)
        sent_at = time.time()
        r = self.wait_deliveries(tag, {("apn", self.A1), ("fcm", self.F1)})[("apn", self.A1)]
        self.assertEqual(r["method"], "POST")
        self.assertEqual(r["path"], "/3/device/" + self.A1)
        self.assertEqual(r["client_uid"], TOPIC, "client certificate of the Service's apn credential")
        self.assertEqual(r.header("apns-topic"), TOPIC)
        self.assertEqual(r.header("apns-priority"), "5")
        self.assertEqual(r.header("apns-push-type"), "alert")
        self.assertRegex(r.header("apns-id") or "", r"^[0-9a-fA-F-]{36}$")
        exp = int(r.header("apns-expiration") or "0")
        self.assertLess(abs(exp - (sent_at + 3600)), 120, "apns-expiration %s for Ttl 3600" % exp)
        p = r.json()
        self.assertEqual(p["aps"]["alert"], "hello " + tag, "protocol 3: aps.alert is the Body string: %s" % p)
        self.assertEqual(p["aps"].get("sound"), "ding", p)
        self.assertEqual(p["aps"].get("category"), "OPEN", p)
        self.assertEqual((p.get("k"), p.get("n")), ("v", "1"), "Data keys at the root: %s" % p)
        self.assertNotIn("The title", r["body"], "protocol 3 sends no Title")

    def test_apns_protocol_4_payload(self):
        tag, _ = self.notify(identity=["bob"], title="The title", priority="high")
        r = self.wait_deliveries(tag, {("apn", self.B1)})[("apn", self.B1)]
        p = r.json()
        self.assertEqual(p["aps"]["alert"], {"title": "The title", "body": "hello " + tag},
                         "protocol 4: aps.alert = {title, body}: %s" % p)
        self.assertEqual(r.header("apns-priority"), "10")
        self.assertEqual(r["client_uid"], TOPIC)

    def test_fcm_payload(self):
        tag, _ = self.notify(identity=["alice"], title="The title", sound="ding", action="OPEN",
                             data={"k": "v"}, priority="low", ttl=3600)
        r = self.wait_deliveries(tag, {("apn", self.A1), ("fcm", self.F1)})[("fcm", self.F1)]
        self.assertEqual(r["method"], "POST")
        self.assertEqual(r["path"], "/v1/projects/%s/messages:send" % self.project_id)
        self.assertEqual(r.header("authorization"), "Bearer ya29.fake-access-token")
        m = r.json()["message"]
        self.assertEqual(m["token"], self.F1)
        self.assertNotIn("notification", m, "a data message: %s" % m)
        d = m["data"]
        self.assertEqual(d.get("twi_body"), "hello " + tag, m)
        self.assertEqual(d.get("twi_title"), "The title", m)
        self.assertEqual(d.get("twi_sound"), "ding", m)
        self.assertEqual(d.get("twi_action"), "OPEN", m)
        self.assertEqual(d.get("k"), "v", m)
        self.assertTrue(all(isinstance(v, str) for v in d.values()), "data values are strings: %s" % d)
        self.assertEqual(m.get("android", {}).get("priority"), "normal", m)
        # The time left of the Ttl when sent: 3600 s, or 3599 s when a second boundary passed since the POST.
        self.assertIn(m.get("android", {}).get("ttl"), ("3600s", "3599s"), m)
        tokens = [t for t in self.peers.requests("oauth")
                  if t.form_dict().get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer"]
        self.assertTrue(tokens, "the daemon fetched its access token from the service account's token_uri")

    def test_sms_payload(self):
        tag, _ = self.notify(identity=["carol"], title="ignored")
        r = self.wait_deliveries(tag, {("sms", self.SMS_CAROL)})[("sms", self.SMS_CAROL)]
        f = r.form_dict()
        self.assertEqual(r["method"], "POST")
        self.assertEqual(r["path"], "/2010-04-01/Accounts/%s/Messages.json" % self.peers.info["sms_account_sid"])
        self.assertEqual(r["basic_auth"], [self.peers.info["sms_account_sid"], self.peers.info["sms_auth_token"]])
        self.assertEqual(f.get("To"), self.SMS_CAROL)
        self.assertEqual(f.get("Body"), "hello " + tag)
        self.assertEqual(f.get("MessagingServiceSid"), self.mg)

    # --- per-binding credential ---

    def test_binding_credential_override_reaches_sandbox(self):
        tag, _ = self.notify(identity=["dave", "bob"])
        got = self.wait_deliveries(tag, {("apn_sandbox", self.D1), ("apn", self.B1)})
        r = got[("apn_sandbox", self.D1)]
        self.assertEqual(r["client_uid"], OTHER_TOPIC, "the binding's own credential's certificate")
        self.assertEqual(r.header("apns-topic"), OTHER_TOPIC)
        self.assertEqual(got[("apn", self.B1)]["client_uid"], TOPIC)

    # --- the 201 body ---

    def test_created_body_echoes_request(self):
        tag = nonce()
        n = self.notifications_api.create(
            identity=["alice", "bob"], tag=["vip"], body="hello " + tag, title="T", sound="ding",
            action="A", data={"k": "v", "n": "1"}, priority="low", ttl=60)
        raw = self.last_json()
        self.assertEqual(set(raw), NOTIFICATION_FIELDS, "fields: extra %s, missing %s"
                         % (set(raw) - NOTIFICATION_FIELDS, NOTIFICATION_FIELDS - set(raw)))
        self.assertRegex(raw["sid"], sid_re("NT"))
        self.assertEqual(raw["account_sid"], self.a.sid)
        self.assertEqual(raw["service_sid"], self.svc.sid)
        self.assertRegex(raw["date_created"], DATE_RE)
        self.assertEqual(raw["identities"], ["alice", "bob"])
        self.assertEqual(raw["tags"], ["vip"])
        self.assertEqual(raw["segments"], [])
        self.assertEqual(raw["priority"], "low")
        self.assertEqual(raw["ttl"], 60)
        self.assertEqual((raw["body"], raw["title"], raw["sound"], raw["action"]),
                         ("hello " + tag, "T", "ding", "A"))
        self.assertEqual(raw["data"], {"k": "v", "n": "1"})
        for k in ("apn", "gcm", "fcm", "sms", "facebook_messenger", "alexa"):
            self.assertIsNone(raw[k], k)
        self.assertEqual((n.sid, n.priority, n.ttl, n.identities), (raw["sid"], "low", 60, ["alice", "bob"]))
        self.wait_deliveries(tag, {("apn", self.A1), ("fcm", self.F1), ("apn", self.B1)})

    def test_created_body_defaults(self):
        tag, n = self.notify(to_binding=[json.dumps({"binding_type": "sms", "address": "+15555550197"})])
        raw = self.last_json()
        self.assertEqual(set(raw), NOTIFICATION_FIELDS)
        self.assertEqual(raw["priority"], "high")
        self.assertEqual(raw["ttl"], 2419200)
        self.assertEqual((raw["identities"], raw["tags"]), ([], []))
        self.assertNotIn("to_binding", raw)
        self.assertNotIn("delivery_callback_url", raw)
        self.wait_deliveries(tag, {("sms", "+15555550197")})

    # --- validation ---

    def test_validation_errors(self):
        tag = nonce()
        body = "hello " + tag
        api = self.notifications_api
        sms = json.dumps({"binding_type": "sms", "address": "+15555550196"})
        cases = {
            "Identity x21": dict(identity=["u%d" % i for i in range(21)]),
            "Tag x6": dict(tag=["t%d" % i for i in range(6)]),
            "Ttl -1": dict(identity=["alice"], ttl=-1),
            "Ttl 2419201": dict(identity=["alice"], ttl=2419201),
            "Priority bogus": dict(identity=["alice"], priority="bogus"),
            "Data twi_ key": dict(identity=["alice"], data={"twi_x": "1"}),
            "Data not an object": dict(identity=["alice"], data="[1, 2]"),
            "Data not JSON": dict(identity=["alice"], data="not json"),
            "Apn not an object": dict(identity=["alice"], apn="\"x\""),
            "ToBinding with Identity": dict(identity=["alice"], to_binding=[sms]),
            "ToBinding with Tag": dict(tag=["vip"], to_binding=[sms]),
            "no recipients": dict(),
        }
        for name, kw in cases.items():
            with self.subTest(name):
                e = self.assertTwilioError(lambda: api.create(body=body, **kw), 400)
                self.assertIsInstance(e.code, int, "%s: a Twilio error code" % name)
        # Accepted edges: 20 identities, 5 tags, Ttl 0 and 2419200.
        self.notifications_api.create(body="edge " + tag, identity=["u%d" % i for i in range(20)])
        self.notifications_api.create(body="edge " + tag, tag=["t%d" % i for i in range(5)])
        self.notifications_api.create(body="edge " + tag, identity=["nobody"], ttl=0)
        self.notifications_api.create(body="edge " + tag, identity=["nobody"], ttl=2419200)
        time.sleep(SETTLE_S)
        self.assertEqual(self.deliveries(tag), {}, "a refused notification sent something")

    # Issue 5 point 1: the body limit allows 1 MB on this path (64 kB elsewhere).
    def test_to_binding_body_up_to_1mb(self):
        tag = nonce()
        items = [json.dumps({"binding_type": "sms", "address": "+1555%07d" % i}) for i in range(10001)]
        # ~0.9 MB form body: over the 64 kB default, under the 1 MB this path allows; 10,001 > 10,000 → 400
        e = self.assertTwilioError(lambda: self.notifications_api.create(body="hello " + tag, to_binding=items),
                                   400)
        self.assertEqual(e.code, 20001, e.msg)

    # --- delivery callbacks ---

    def test_delivery_callback_signed(self):
        tag = nonce()
        url = self.peers.callbacks_url + "/cb/" + tag
        n = self.notifications_api.create(identity=["alice"], body="hello " + tag, delivery_callback_url=url)
        self.wait_deliveries(tag, {("apn", self.A1), ("fcm", self.F1)})
        mine = lambda rs: [r for r in rs if r["path"] == "/cb/" + tag]
        self.peers.wait_for("callbacks", lambda rs: len(mine(rs)) >= 2, timeout=DELIVERY_TIMEOUT_S,
                            what="2 callbacks")
        time.sleep(SETTLE_S)
        posts = mine(self.peers.requests("callbacks"))
        self.assertEqual(len(posts), 2, "one callback per binding: %s" % [p["body"] for p in posts])
        validator = RequestValidator(self.a.auth_token)
        by_binding = {}
        for p in posts:
            self.assertEqual(p["method"], "POST")
            f = p.form_dict()
            self.assertEqual(f.get("NotificationSid"), n.sid, f)
            self.assertEqual(f.get("Status"), "delivered", f)
            self.assertEqual(f.get("Identity"), "alice", f)
            sig = p.header("x-twilio-signature")
            self.assertTrue(sig, "X-Twilio-Signature missing")
            self.assertTrue(validator.validate(url, f, sig),
                            "RequestValidator refuses the signature %s of %s" % (sig, p["body"]))
            by_binding[f.get("BindingSid")] = f.get("BindingType")
        self.assertEqual(by_binding, {self.alice_apn.sid: "apn", self.alice_fcm.sid: "fcm"})


class DeliveryOutcomesTest(NotificationTestBase):
    """Provider answers scripted per device token (script "match"), each test on its own bindings."""

    def fresh_apn(self, **kw):
        token = apn_token()
        return token, self.bind("id-" + secrets.token_hex(4), "apn", token, **kw)

    def notify_binding(self, binding, **kw):
        tag = nonce()
        self.notifications_api.create(identity=[binding.identity], body="hello " + tag, **kw)
        return tag

    def test_apns_410_removes_binding(self):
        token, b = self.fresh_apn()
        time.sleep(1.1)  # the 410 timestamp below is then after the binding's date_updated
        self.peers.script("apns", [{"status": 410, "match": token,
                                    "body": {"reason": "Unregistered", "timestamp": int(time.time() * 1000)}}])
        self.notify_binding(b)
        self.wait_requests_matching("apns", token, 1)
        self.wait_binding_gone(b.sid)
        self.assertNotIn(token, self.daemon.log_text(), "the device token must never be logged")

    def test_apns_410_older_than_binding_keeps_it(self):
        token, b = self.fresh_apn()
        self.peers.script("apns", [{"status": 410, "match": token,
                                    "body": {"reason": "Unregistered",
                                             "timestamp": int((time.time() - 86400) * 1000)}}])
        self.notify_binding(b)
        self.wait_requests_matching("apns", token, 1)
        time.sleep(2.0)
        self.assertBindingPresent(b.sid)

    def test_apns_bad_device_token_removes_binding(self):
        token, b = self.fresh_apn()
        self.peers.script("apns", [{"status": 400, "match": token, "body": {"reason": "BadDeviceToken"}}])
        self.notify_binding(b)
        self.wait_requests_matching("apns", token, 1)
        self.wait_binding_gone(b.sid)

    def test_fcm_unregistered_removes_binding(self):
        token = "fcm-" + secrets.token_hex(20)
        b = self.bind("id-" + secrets.token_hex(4), "fcm", token)
        self.peers.script("fcm", [{"status": 404, "match": token, "body": {"error": {
            "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                         "errorCode": "UNREGISTERED"}]}}}])
        self.notify_binding(b)
        self.wait_requests_matching("fcm", token, 1)
        self.wait_binding_gone(b.sid)

    def test_503_is_retried_and_delivered(self):
        token, b = self.fresh_apn()
        self.peers.script("apns", [{"status": 503, "match": token, "body": {"reason": "ServiceUnavailable"}}])
        tag = self.notify_binding(b)
        reqs = [r for r in self.wait_requests_matching("apns", token, 2) if token in r["path"]]
        time.sleep(SETTLE_S)
        reqs = [r for r in self.peers.requests("apns") if token in r["path"]]
        self.assertEqual(len(reqs), 2, "503 then 200: exactly two attempts")
        self.assertEqual(reqs[0].header("apns-id"), reqs[1].header("apns-id"), "a retry keeps its apns-id")
        self.assertIn(tag, reqs[1]["body"])
        self.assertBindingPresent(b.sid)  # a transient error never removes a binding

    def test_429_waits_for_retry_after(self):
        token, b = self.fresh_apn()
        self.peers.script("apns", [{"status": 429, "match": token, "headers": {"retry-after": "2"},
                                    "body": {"reason": "TooManyRequests"}}])
        self.notify_binding(b)
        self.wait_requests_matching("apns", token, 2)
        reqs = [r for r in self.peers.requests("apns") if token in r["path"]]
        gap = reqs[1]["t"] - reqs[0]["t"]
        self.assertGreaterEqual(gap, 1.99, "retried %.3f s after a 429 with Retry-After: 2" % gap)
        self.assertEqual(reqs[0].header("apns-id"), reqs[1].header("apns-id"))
        self.assertBindingPresent(b.sid)

    def test_ttl_0_is_one_attempt(self):
        token, b = self.fresh_apn()
        self.peers.script("apns", [{"status": 503, "match": token, "body": {"reason": "ServiceUnavailable"}}])
        self.notify_binding(b, ttl=0)
        self.wait_requests_matching("apns", token, 1)
        time.sleep(3.0)
        self.assertEqual(len([r for r in self.peers.requests("apns") if token in r["path"]]), 1,
                         "Ttl 0: one attempt, no retry")
        self.assertBindingPresent(b.sid)

    def test_fcm_503_is_retried(self):
        token = "fcm-" + secrets.token_hex(20)
        b = self.bind("id-" + secrets.token_hex(4), "fcm", token)
        self.peers.script("fcm", [{"status": 503, "match": token,
                                   "body": {"error": {"code": 503, "status": "UNAVAILABLE"}}}])
        self.notify_binding(b)
        self.wait_requests_matching("fcm", token, 2)
        time.sleep(SETTLE_S)
        self.assertEqual(len([r for r in self.peers.requests("fcm") if token in r["body"]]), 2)
        self.assertBindingPresent(b.sid)

    def test_failed_delivery_callback(self):
        token, b = self.fresh_apn()
        time.sleep(1.1)
        self.peers.script("apns", [{"status": 410, "match": token,
                                    "body": {"reason": "Unregistered", "timestamp": int(time.time() * 1000)}}])
        tag = nonce()
        url = self.peers.callbacks_url + "/cb/" + tag
        self.notifications_api.create(identity=[b.identity], body="hello " + tag, delivery_callback_url=url)
        posts = self.peers.wait_for("callbacks", lambda rs: any(r["path"] == "/cb/" + tag for r in rs),
                                    timeout=DELIVERY_TIMEOUT_S, what="the callback")
        f = [p for p in posts if p["path"] == "/cb/" + tag][0].form_dict()
        self.assertEqual(f.get("BindingSid"), b.sid, f)
        self.assertEqual(f.get("Status"), "failed", f)


class DeliveryThreadsTest(NotificationTestBase):
    """[server] delivery_threads: deliveries run on threads of their own (notifyd-send), as many as configured,
    beside the I/O threads, and every channel and its callback goes out through them."""

    daemon_server_config = ("threads = 1", "delivery_threads = 2")

    def thread_names(self):
        task = "/proc/%d/task" % self.daemon.proc.pid
        names = []
        for tid in os.listdir(task):
            try:
                with open(os.path.join(task, tid, "comm")) as f:
                    names.append(f.read().strip())
            except FileNotFoundError:  # a thread that ended meanwhile
                pass
        return names

    def test_every_channel_is_sent_from_the_delivery_threads(self):
        names = self.thread_names()
        self.assertEqual(names.count("notifyd-send"), 2, names)
        self.assertEqual(names.count("notifyd-io"), 0, names)  # threads = 1: the main thread only
        identity = "threads-" + secrets.token_hex(4)
        apn, fcm, sms = apn_token(), "fcm-" + secrets.token_hex(20), "+15555550199"
        for binding_type, address in (("apn", apn), ("fcm", fcm), ("sms", sms)):
            self.bind(identity, binding_type, address)
        tag = nonce()
        url = self.peers.callbacks_url + "/cb/" + tag
        self.notifications_api.create(identity=[identity], body="hello " + tag, delivery_callback_url=url)
        self.wait_deliveries(tag, {("apn", apn), ("fcm", fcm), ("sms", sms)})
        posts = self.peers.wait_for("callbacks", lambda rs: len([r for r in rs if r["path"] == "/cb/" + tag]) >= 3,
                                    timeout=DELIVERY_TIMEOUT_S, what="three callbacks")
        statuses = [p.form_dict().get("Status") for p in posts if p["path"] == "/cb/" + tag]
        self.assertEqual(statuses, ["delivered"] * 3)


if __name__ == "__main__":
    unittest.main()
