"""Credentials (/v1/Credentials) through twilio-python: apn (certificate + key, and the token-auth
extension), fcm (service-account JSON in Secret), gcm (the same JSON in ApiKey); CRUD, list paging,
validation of secrets, and secrets never returned (raw JSON) nor logged."""

import json
import unittest

import harness
from harness import DaemonTestCase, create_apn_credential, create_fcm_credential, create_gcm_credential

CR = harness.sid_re("CR")


def secret_fragments(creds):
    """Distinctive pieces of every secret: the PEM bodies' base64 lines and the service-account key."""
    frags = []
    for name in ("apn_key.pem", "other_key.pem", "apn_p8.pem"):
        lines = [l for l in creds[name].splitlines() if l and not l.startswith("-----")]
        frags += lines[1:3]
    sa = json.loads(creds["service_account.json"])
    key_lines = [l for l in sa["private_key"].splitlines() if l and not l.startswith("-----")]
    frags += key_lines[1:3]
    frags.append(sa["private_key_id"])
    return frags


class CredentialsTest(DaemonTestCase):

    def assertNoSecrets(self, text):
        for frag in secret_fragments(self.creds):
            self.assertNotIn(frag, text, "secret material echoed")
        for word in ("PRIVATE KEY", "BEGIN CERTIFICATE", "private_key", "\"secret\"", "api_key", "certificate"):
            self.assertNotIn(word, text, "secret-bearing field echoed: %s" % word)

    def last_raw(self):
        resp = self.client.http_client.last_response
        self.assertNoSecrets(resp.text)
        return json.loads(resp.text)

    def test_apn_certificate_crud(self):
        cr = create_apn_credential(self.client, self.creds, sandbox=True, friendly_name="apn one")
        self.assertEqual(self.client.http_client.last_response.status_code, 201)
        raw = self.last_raw()
        self.assertSchema(raw, "notify.v1.credential")
        self.assertRegex(cr.sid, CR)
        self.assertEqual(raw["account_sid"], self.a.sid)
        self.assertEqual(raw["type"], "apn")
        self.assertEqual(raw["sandbox"], "true")  # a string, per the spec
        self.assertEqual(raw["friendly_name"], "apn one")
        self.assertEqual(raw["url"], "%s/v1/Credentials/%s" % (self.base, cr.sid))
        self.assertEqual(cr.type, "apn")

        fetched = self.client.notify.v1.credentials(cr.sid).fetch()
        self.assertEqual(self.client.http_client.last_response.status_code, 200)
        raw_f = self.last_raw()
        self.assertSchema(raw_f, "notify.v1.credential")
        self.assertEqual(raw_f, raw)
        self.assertEqual(fetched.sid, cr.sid)

        updated = self.client.notify.v1.credentials(cr.sid).update(friendly_name="renamed", sandbox=False)
        self.assertEqual(self.client.http_client.last_response.status_code, 200)
        raw_u = self.last_raw()
        self.assertSchema(raw_u, "notify.v1.credential")
        self.assertEqual(raw_u["friendly_name"], "renamed")
        self.assertEqual(raw_u["sandbox"], "false")
        self.assertEqual(raw_u["type"], "apn")
        self.assertEqual(raw_u["date_created"], raw["date_created"])
        self.assertGreaterEqual(raw_u["date_updated"], raw["date_updated"])
        self.assertEqual(updated.friendly_name, "renamed")

        # the secret itself can be rotated
        self.client.notify.v1.credentials(cr.sid).update(certificate=self.creds["apn_cert.pem"],
                                                         private_key=self.creds["apn_key.pem"])
        self.last_raw()
        self.assertEqual(self.client.notify.v1.credentials(cr.sid).fetch().friendly_name, "renamed")

        listed = {c.sid: c for c in self.client.notify.v1.credentials.list()}
        self.assertIn(cr.sid, listed)
        self.assertNoSecrets(self.client.http_client.last_response.text)
        self.assertEqual(listed[cr.sid].friendly_name, "renamed")

        self.assertTrue(self.client.notify.v1.credentials(cr.sid).delete())
        self.assertEqual(self.client.http_client.last_response.status_code, 204)
        self.assertEqual(self.client.http_client.last_response.text, "")
        self.assertTwilioError(lambda: self.client.notify.v1.credentials(cr.sid).fetch(), 404, 20404)
        self.assertTwilioError(lambda: self.client.notify.v1.credentials(cr.sid).delete(), 404, 20404)
        self.assertNotIn(cr.sid, [c.sid for c in self.client.notify.v1.credentials.list()])

    def test_apn_token_auth_extension(self):
        url = self.base + "/v1/Credentials"
        resp = self.client.request("POST", url, data={
            "Type": "apn", "FriendlyName": "apn p8", "PrivateKey": self.creds["apn_p8.pem"],
            "ApnKeyId": "ABC123DEFG", "ApnTeamId": "DEF123GHIJ", "ApnTopic": "com.example.app",
            "Sandbox": "true"})
        self.assertEqual(resp.status_code, 201, resp.text)
        self.assertNoSecrets(resp.text)
        raw = json.loads(resp.text)
        self.assertSchema(raw, "notify.v1.credential")
        self.assertEqual(raw["type"], "apn")
        self.assertEqual(raw["sandbox"], "true")
        # the lower-level API of the client does the same
        data = self.client.notify.v1.credentials._version.create(method="POST", uri="/Credentials", data={
            "Type": "apn", "PrivateKey": self.creds["apn_p8.pem"], "ApnKeyId": "ABC123DEFG",
            "ApnTeamId": "DEF123GHIJ", "ApnTopic": "com.example.app"})
        self.assertRegex(data["sid"], CR)
        self.assertNoSecrets(self.client.http_client.last_response.text)
        fetched = self.client.notify.v1.credentials(raw["sid"]).fetch()
        self.assertEqual(fetched.friendly_name, "apn p8")
        self.assertNoSecrets(self.client.http_client.last_response.text)
        # a token-auth key without its key id / team id is incomplete
        resp = self.client.request("POST", url, data={
            "Type": "apn", "PrivateKey": self.creds["apn_p8.pem"], "ApnTopic": "com.example.app"})
        self.assertEqual(resp.status_code, 400, resp.text)

    def test_fcm_secret(self):
        cr = create_fcm_credential(self.client, self.creds, friendly_name="fcm one")
        raw = self.last_raw()
        self.assertEqual(self.client.http_client.last_response.status_code, 201)
        self.assertSchema(raw, "notify.v1.credential")
        self.assertEqual(raw["type"], "fcm")
        self.assertNotIn("notifyd-test@", json.dumps(raw))  # nothing of the service account comes back
        self.assertEqual(self.client.notify.v1.credentials(cr.sid).fetch().type, "fcm")
        self.last_raw()
        self.client.notify.v1.credentials(cr.sid).update(secret=self.creds["service_account.json"],
                                                         friendly_name="fcm two")
        self.assertEqual(self.last_raw()["friendly_name"], "fcm two")
        self.assertTrue(self.client.notify.v1.credentials(cr.sid).delete())

    def test_gcm_api_key(self):
        cr = create_gcm_credential(self.client, self.creds, friendly_name="gcm one")
        raw = self.last_raw()
        self.assertSchema(raw, "notify.v1.credential")
        self.assertEqual(raw["type"], "gcm")
        self.assertEqual(self.client.notify.v1.credentials(cr.sid).fetch().friendly_name, "gcm one")
        self.last_raw()
        self.assertTrue(self.client.notify.v1.credentials(cr.sid).delete())

    def test_invalid_secrets_are_refused(self):
        creds = self.client.notify.v1.credentials
        before = len(creds.list())
        # broken PEM
        self.assertTwilioError(lambda: creds.create(type="apn", certificate="-----BEGIN CERTIFICATE-----\nxx\n",
                                                    private_key=self.creds["apn_key.pem"]), 400)
        # a key that is not the certificate's
        self.assertTwilioError(lambda: creds.create(type="apn", certificate=self.creds["apn_cert.pem"],
                                                    private_key=self.creds["other_key.pem"]), 400)
        # not JSON / JSON without the service-account fields
        self.assertTwilioError(lambda: creds.create(type="fcm", secret="not json"), 400)
        sa = json.loads(self.creds["service_account.json"])
        del sa["project_id"]
        self.assertTwilioError(lambda: creds.create(type="fcm", secret=json.dumps(sa)), 400)
        self.assertTwilioError(lambda: creds.create(type="gcm", api_key="AIzaSyLegacyServerKey"), 400)
        # unknown type, missing type
        self.assertTwilioError(lambda: creds.create(type="sms"), 400)
        r = self.raw("POST", "/v1/Credentials", body={"FriendlyName": "x"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(len(creds.list()), before, "a refused create changed something")

    def test_type_is_immutable_and_update_is_validated(self):
        cr = create_apn_credential(self.client, self.creds)
        r = self.raw("POST", "/v1/Credentials/%s" % cr.sid, body={"Type": "fcm"})
        self.assertRawError(r, 400, 20001)
        self.assertTwilioError(lambda: self.client.notify.v1.credentials(cr.sid).update(
            private_key=self.creds["other_key.pem"]), 400)
        self.assertEqual(self.client.notify.v1.credentials(cr.sid).fetch().type, "apn")

    def test_secrets_never_logged(self):
        create_apn_credential(self.client, self.creds)
        create_fcm_credential(self.client, self.creds)
        create_gcm_credential(self.client, self.creds)
        log = self.daemon.log_text()
        for frag in secret_fragments(self.creds):
            self.assertNotIn(frag, log)
        self.assertNotIn(self.a.auth_token, log)

    def test_list_paging(self):
        made = [create_gcm_credential(self.client, self.creds, friendly_name="page %d" % i).sid for i in range(5)]
        all_sids = [c.sid for c in self.client.notify.v1.credentials.list()]
        for sid in made:
            self.assertIn(sid, all_sids)
        self.assertEqual(len(all_sids), len(set(all_sids)))
        streamed = [c.sid for c in self.client.notify.v1.credentials.stream(page_size=2)]
        self.assertEqual(streamed, all_sids)
        limited = self.client.notify.v1.credentials.list(limit=3, page_size=2)
        self.assertEqual([c.sid for c in limited], all_sids[:3])

        page = self.client.notify.v1.credentials.page(page_size=2)
        raw = self.last_json()
        self.assertEqual(len(raw["credentials"]), 2)
        for item in raw["credentials"]:
            self.assertSchema(item, "notify.v1.credential")
        self.assertMeta(raw["meta"], "credentials", page_size=2, path="/v1/Credentials")
        self.assertEqual(raw["meta"]["page"], 0)
        self.assertIsNone(raw["meta"]["previous_page_url"])
        self.assertIn("PageToken=", raw["meta"]["next_page_url"])
        nxt = page.next_page()
        raw2 = self.last_json()
        self.assertEqual(raw2["meta"]["page"], 1)
        self.assertEqual([c.sid for c in nxt], all_sids[2:4])


if __name__ == "__main__":
    unittest.main()
