"""Errors and request hygiene: authentication (401/20003, WWW-Authenticate, API keys), tenant isolation
(another account's resource is a 404 exactly like a missing one), parameter validation (400/20001,
52002/52003), wrong methods (405/20004 + Allow), broken encodings, exact path matching, auth before 404,
oversized bodies. Client-visible errors are checked as twilio.base.exceptions.TwilioRestException."""

import json
import unittest

import harness
from harness import DaemonTestCase, apn_token, create_apn_credential, create_fcm_credential


class ErrorsTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.apn = create_apn_credential(cls.client, cls.creds)
        cls.fcm = create_fcm_credential(cls.client, cls.creds)
        cls.svc = cls.client.notify.v1.services.create(friendly_name="errors")
        cls.binding = cls.client.notify.v1.services(cls.svc.sid).bindings.create(
            identity="eve", binding_type="apn", address=apn_token())
        cls.bpath = "/v1/Services/%s/Bindings" % cls.svc.sid

    # --- authentication --------------------------------------------------------------------------

    def test_wrong_auth_token(self):
        bad = self.new_client(self.a.sid, "wrong-token")
        e = self.assertTwilioError(lambda: bad.notify.v1.services.create(friendly_name="x"), 401, 20003)
        self.assertEqual(bad.http_client.last_response.headers.get("WWW-Authenticate"), 'Basic realm="Twilio API"')
        self.assertTwilioError(lambda: bad.notify.v1.services(self.svc.sid).fetch(), 401, 20003)
        self.assertTwilioError(lambda: bad.notify.v1.credentials(self.apn.sid).delete(), 401, 20003)
        self.assertListError(lambda: bad.notify.v1.services.list(), 401, 20003)
        self.assertIsNotNone(e.msg)
        for auth in (False, (harness.new_sid("AC"), "x"), (self.a.sid, ""), (self.a.sid, self.b.auth_token),
                     (self.a.api_key_sid, "wrong-secret"), (self.a.api_key_sid, self.a.auth_token)):
            r = self.raw("GET", "/v1/Services", auth=auth)
            self.assertRawError(r, 401, 20003)
            self.assertEqual(r.headers.get("WWW-Authenticate"), 'Basic realm="Twilio API"', auth)
        for header in ("Bearer abc", "Basic !!!notbase64", "Basic " + "eA==", "Basic"):
            r = self.raw("GET", "/v1/Services", auth=False, headers={"Authorization": header})
            self.assertRawError(r, 401, 20003)

    def test_api_key_auth(self):
        keyed = self.new_client(self.a.api_key_sid, self.a.api_key_secret, self.a.sid)
        svc = keyed.notify.v1.services.create(friendly_name="via api key")
        self.assertEqual(self.last_json(keyed)["account_sid"], self.a.sid)
        self.assertIn(svc.sid, [s.sid for s in self.client.notify.v1.services.list()])
        b = keyed.notify.v1.services(svc.sid).bindings.create(identity="k", binding_type="fcm", address="f")
        self.assertEqual(keyed.notify.v1.services(svc.sid).bindings(b.sid).fetch().identity, "k")
        self.assertTrue(keyed.notify.v1.services(svc.sid).delete())
        wrong = self.new_client(self.a.api_key_sid, "nope", self.a.sid)
        self.assertTwilioError(lambda: wrong.notify.v1.services.create(), 401, 20003)

    def test_auth_before_404_and_healthz(self):
        for path in ("/nope", "/v1/Nope", "/v1/Services/%s" % harness.new_sid("IS"), "/v2/Services"):
            self.assertRawError(self.raw("GET", path, auth=False), 401, 20003)
            self.assertRawError(self.raw("POST", path, body={"A": "b"}, auth=False), 401, 20003)
        body = self.assertRawError(self.raw("GET", "/nope"), 404, 20404)
        self.assertEqual(body["message"], "The requested resource /nope was not found")
        self.assertEqual(self.raw("GET", "/healthz", auth=False).status, 200)

    # --- tenant isolation ------------------------------------------------------------------------

    def test_other_accounts_resources_are_404(self):
        b = self.client_b.notify.v1
        missing_is, missing_bs, missing_cr = harness.new_sid("IS"), harness.new_sid("BS"), harness.new_sid("CR")
        cases = [
            ("/v1/Services/%s" % self.svc.sid, "/v1/Services/%s" % missing_is),
            ("/v1/Credentials/%s" % self.apn.sid, "/v1/Credentials/%s" % missing_cr),
            ("%s/%s" % (self.bpath, self.binding.sid), "%s/%s" % (self.bpath, missing_bs)),
            (self.bpath, "/v1/Services/%s/Bindings" % missing_is),
            ("/conversations/v1/Services/%s/Bindings/%s" % (self.svc.sid, self.binding.sid),
             "/conversations/v1/Services/%s/Bindings/%s" % (self.svc.sid, missing_bs)),
        ]
        auth_b = (self.b.sid, self.b.auth_token)
        for theirs, missing in cases:
            got = self.raw("GET", theirs, auth=auth_b)
            ref = self.raw("GET", missing)
            body = self.assertRawError(got, 404, 20404)
            ref_body = self.assertRawError(ref, 404, 20404)
            self.assertEqual(body["message"], "The requested resource %s was not found" % theirs)
            self.assertEqual(ref_body["message"], "The requested resource %s was not found" % missing)
            self.assertEqual(dict(got.headers).keys(), dict(ref.headers).keys())

        self.assertTwilioError(lambda: b.services(self.svc.sid).fetch(), 404, 20404)
        self.assertTwilioError(lambda: b.services(self.svc.sid).update(friendly_name="hijack"), 404, 20404)
        self.assertTwilioError(lambda: b.services(self.svc.sid).delete(), 404, 20404)
        self.assertTwilioError(lambda: b.credentials(self.apn.sid).fetch(), 404, 20404)
        self.assertTwilioError(lambda: b.credentials(self.apn.sid).update(friendly_name="hijack"), 404, 20404)
        self.assertTwilioError(lambda: b.credentials(self.apn.sid).delete(), 404, 20404)
        self.assertTwilioError(lambda: b.services(self.svc.sid).bindings(self.binding.sid).fetch(), 404, 20404)
        self.assertTwilioError(lambda: b.services(self.svc.sid).bindings(self.binding.sid).delete(), 404, 20404)
        self.assertTwilioError(lambda: b.services(self.svc.sid).bindings.create(
            identity="x", binding_type="apn", address=apn_token()), 404, 20404)
        self.assertListError(lambda: b.services(self.svc.sid).bindings.list(), 404, 20404)
        self.assertNotIn(self.svc.sid, [s.sid for s in b.services.list()])
        self.assertNotIn(self.apn.sid, [c.sid for c in b.credentials.list()])
        # nothing changed for the owner
        self.assertEqual(self.client.notify.v1.services(self.svc.sid).fetch().friendly_name, "errors")
        self.assertEqual(self.client.notify.v1.services(self.svc.sid).bindings(self.binding.sid).fetch().identity,
                         "eve")

    # --- parameters ------------------------------------------------------------------------------

    def test_unknown_parameter(self):
        for path, body in (("/v1/Services", {"FriendlyName": "x", "Bogus": "1"}),
                           ("/v1/Services/%s" % self.svc.sid, {"friendlyname": "x"}),
                           ("/v1/Credentials", {"Type": "fcm", "Secret": self.creds["service_account.json"],
                                                "Foo": "bar"}),
                           ("/v1/Credentials/%s" % self.apn.sid, {"Type": "apn"}),
                           (self.bpath, {"Identity": "u", "BindingType": "apn", "Address": apn_token(),
                                         "Tags": "x"})):
            self.assertRawError(self.raw("POST", path, body=body), 400, 20001)
        resp = self.client.request("POST", self.base + "/v1/Services", data={"FriendlyName": "x", "Nope": "1"})
        self.assertEqual(resp.status_code, 400, resp.text)
        self.assertEqual(json.loads(resp.text)["code"], 20001)
        # unknown query parameters are ignored
        self.assertEqual(self.raw("GET", "/v1/Services?Whatever=1").status, 200)
        self.assertEqual(self.client.notify.v1.services(self.svc.sid).fetch().friendly_name, "errors")

    def test_missing_required(self):
        bs = self.client.notify.v1.services(self.svc.sid).bindings
        for body in ({"BindingType": "apn", "Address": apn_token()},
                     {"Identity": "u", "Address": apn_token()},
                     {"Identity": "u", "BindingType": "apn"},
                     {"Identity": "", "BindingType": "apn", "Address": apn_token()},
                     {}):
            r = self.raw("POST", self.bpath, body=body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.json()["status"], 400)
        self.assertTwilioError(lambda: bs.create(identity="u", binding_type="apn", address=""), 400)
        self.assertTwilioError(lambda: self.client.notify.v1.credentials._version.create(
            method="POST", uri="/Credentials", data={"FriendlyName": "no type"}), 400)
        self.assertEqual([b.sid for b in bs.list()], [self.binding.sid])

    def test_bad_values(self):
        bs = self.client.notify.v1.services(self.svc.sid).bindings
        self.assertTwilioError(lambda: bs.create(identity="u", binding_type="pigeon", address="a"), 400)
        self.assertTwilioError(lambda: bs.create(identity="u", binding_type="APN", address="a"), 400)
        for bad in ("CR123", "XX" + "0" * 32, "CR" + "g" * 32, "CR" + "0" * 33):
            self.assertTwilioError(lambda: bs.create(identity="u", binding_type="apn", address=apn_token(),
                                                     credential_sid=bad), 400)
        e = self.assertTwilioError(lambda: bs.create(identity="u", binding_type="apn", address=apn_token(),
                                                     credential_sid=harness.new_sid("CR")), 400)
        self.assertIn(e.code, (52002, 20001, 20404), e.msg)
        self.assertTwilioError(lambda: bs.create(identity="u", binding_type="apn", address=apn_token(),
                                                 credential_sid=self.fcm.sid), 400)
        creds = self.client.notify.v1.credentials
        for bad in ("maybe", "2", "yes!"):
            self.assertTwilioError(lambda: creds.create(type="apn", certificate=self.creds["apn_cert.pem"],
                                                        private_key=self.creds["apn_key.pem"], sandbox=bad), 400)
        self.assertTwilioError(lambda: creds(self.apn.sid).update(sandbox="maybe"), 400)
        self.assertTwilioError(lambda: self.client.notify.v1.services.create(log_enabled="perhaps"), 400)
        self.assertTwilioError(lambda: self.client.notify.v1.services.create(apn_credential_sid="CRnope"), 400)
        self.assertEqual([b.sid for b in bs.list()], [self.binding.sid])

    def test_bad_list_parameters(self):
        for q in ("StartDate=2020-13-01", "StartDate=yesterday", "EndDate=2020-02-30", "EndDate=2020-1-1",
                  "StartDate=2020-01-01T00:00:00Z", "PageSize=0", "PageSize=-1", "PageSize=abc",
                  "Tag=a&Tag=b&Tag=c&Tag=d&Tag=e&Tag=f"):
            self.assertRawError(self.raw("GET", "%s?%s" % (self.bpath, q)), 400, 20001)
        for path in ("/v1/Services?PageSize=0", "/v1/Credentials?PageSize=0",
                     "/conversations/v1/Services/%s/Bindings?PageSize=0" % self.svc.sid,
                     "/conversations/v1/Services/%s/Bindings?BindingType=sms" % self.svc.sid):
            self.assertRawError(self.raw("GET", path), 400, 20001)
        self.assertListError(lambda: self.client.notify.v1.services(self.svc.sid).bindings.list(
            start_date="2020-13-01"), 400, 20001)
        # a page larger than the maximum is clamped, not refused
        raw = self.raw_json("GET", "%s?PageSize=5000" % self.bpath)
        self.assertEqual(raw["meta"]["page_size"], 1000)

    def test_limits(self):
        self.assertTwilioError(lambda: self.client.notify.v1.services.create(friendly_name="x" * 70000), 413, 20413)

    # --- methods, encodings, paths ---------------------------------------------------------------

    def test_wrong_method(self):
        cases = [("DELETE", "/v1/Services"), ("PUT", "/v1/Services/%s" % self.svc.sid),
                 ("DELETE", "/v1/Credentials"), ("PATCH", "/v1/Credentials/%s" % self.apn.sid),
                 ("DELETE", self.bpath), ("POST", "%s/%s" % (self.bpath, self.binding.sid)),
                 ("POST", "/conversations/v1/Services/%s/Bindings" % self.svc.sid),
                 ("POST", "/conversations/v1/Services/%s/Bindings/%s" % (self.svc.sid, self.binding.sid))]
        for method, path in cases:
            r = self.raw(method, path, body={"FriendlyName": "x"} if method != "DELETE" else None)
            self.assertRawError(r, 405, 20004)
            allow = r.headers.get("Allow")
            self.assertTrue(allow, (method, path))
            allowed = {m.strip() for m in allow.split(",")}
            self.assertNotIn(method, allowed)
            self.assertIn("GET", allowed, (method, path, allow))
        self.assertEqual({m.strip() for m in self.raw("DELETE", "/v1/Services").headers["Allow"].split(",")},
                         {"GET", "POST"})
        self.assertEqual({m.strip() for m in self.raw(
            "POST", "%s/%s" % (self.bpath, self.binding.sid), body="").headers["Allow"].split(",")},
            {"GET", "DELETE"})
        self.assertEqual(self.client.notify.v1.services(self.svc.sid).bindings(self.binding.sid).fetch().sid,
                         self.binding.sid)

    def test_broken_encoding(self):
        for body in (b"FriendlyName=%FF%FE", b"FriendlyName=\xff\xfe", b"FriendlyName=%G1",
                     b"FriendlyName=abc%", b"FriendlyName=%E2%82", b"Friendly\xc3Name=x"):
            self.assertRawError(self.raw("POST", "/v1/Services", body=body), 400, 20001)
        for q in ("FriendlyName=%FF", "FriendlyName=%ZZ", "FriendlyName=%C3%28"):
            self.assertRawError(self.raw("GET", "/v1/Services?" + q), 400, 20001)
        self.assertRawError(self.raw("POST", "%s/%s" % ("/v1/Services", self.svc.sid), body=b"FriendlyName=%FF"),
                            400, 20001)
        self.assertEqual(self.client.notify.v1.services(self.svc.sid).fetch().friendly_name, "errors")
        # and valid UTF-8 round-trips
        svc = self.client.notify.v1.services.create(friendly_name="caf\u00e9 \u2603 +&=")
        self.assertEqual(self.last_json()["friendly_name"], "caf\u00e9 \u2603 +&=")
        self.client.notify.v1.services(svc.sid).delete()

    def test_exact_paths(self):
        sid = self.svc.sid
        for path in ("//v1/Services", "/v1//Services", "/v1/./Services", "/v1/Services/./%s" % sid,
                     "/v1/Services//%s" % sid, "/v1/Services/%s/../%s" % (sid, sid), "/v1/Services/%s//Bindings" % sid,
                     "/v1/Services/%s/./Bindings" % sid, "/v1/services", "/v1/Services/%s/bindings" % sid,
                     "/V1/Services", "/v1/Services/%s/" % sid):
            self.assertRawError(self.raw("GET", path), 404, 20404)
        self.assertEqual(self.raw("GET", "/v1/Services/%s" % sid).status, 200)


if __name__ == "__main__":
    unittest.main()
