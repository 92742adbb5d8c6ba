"""Services (/v1/Services) through twilio-python: every create/update parameter of the spec,
defaults, credential references (52002 unknown, 52003 wrong type), list with FriendlyName filter and
paging, fetch, delete."""

import unittest

import harness
from harness import DaemonTestCase, create_apn_credential, create_fcm_credential, create_gcm_credential

IS = harness.sid_re("IS")


class ServicesTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.apn = create_apn_credential(cls.client, cls.creds)
        cls.fcm = create_fcm_credential(cls.client, cls.creds)
        cls.gcm = create_gcm_credential(cls.client, cls.creds)

    def test_create_with_every_parameter(self):
        mg = harness.new_sid("MG")
        svc = self.client.notify.v1.services.create(
            friendly_name="every param",
            apn_credential_sid=self.apn.sid,
            gcm_credential_sid=self.gcm.sid,
            fcm_credential_sid=self.fcm.sid,
            messaging_service_sid=mg,
            facebook_messenger_page_id="1234567890",
            default_apn_notification_protocol_version="4",
            default_gcm_notification_protocol_version="4",
            default_fcm_notification_protocol_version="4",
            log_enabled=False,
            alexa_skill_id="amzn1.ask.skill.1234",
            default_alexa_notification_protocol_version="3",
            delivery_callback_url="https://example.com/callback?x=1",
            delivery_callback_enabled=True)
        self.assertEqual(self.client.http_client.last_response.status_code, 201)
        raw = self.last_json()
        self.assertSchema(raw, "notify.v1.service")
        expected = {
            "friendly_name": "every param",
            "account_sid": self.a.sid,
            "apn_credential_sid": self.apn.sid,
            "gcm_credential_sid": self.gcm.sid,
            "fcm_credential_sid": self.fcm.sid,
            "messaging_service_sid": mg,
            "facebook_messenger_page_id": "1234567890",
            "default_apn_notification_protocol_version": "4",
            "default_gcm_notification_protocol_version": "4",
            "default_fcm_notification_protocol_version": "4",
            "log_enabled": False,
            "alexa_skill_id": "amzn1.ask.skill.1234",
            "default_alexa_notification_protocol_version": "3",
            "delivery_callback_url": "https://example.com/callback?x=1",
            "delivery_callback_enabled": True,
            "url": "%s/v1/Services/%s" % (self.base, svc.sid),
        }
        for k, v in expected.items():
            self.assertEqual(raw[k], v, k)
        self.assertRegex(svc.sid, IS)
        self.assertEqual(raw["links"]["bindings"], "%s/v1/Services/%s/Bindings" % (self.base, svc.sid))
        self.assertEqual(raw["links"]["notifications"], "%s/v1/Services/%s/Notifications" % (self.base, svc.sid))
        for link in raw["links"].values():
            self.assertTrue(link.startswith(self.base + "/v1/Services/" + svc.sid), link)
        self.assertEqual(svc.apn_credential_sid, self.apn.sid)
        self.assertIs(svc.log_enabled, False)

        fetched = self.client.notify.v1.services(svc.sid).fetch()
        self.assertEqual(self.last_json(), raw)
        self.assertEqual(fetched.friendly_name, "every param")

    def test_defaults(self):
        svc = self.client.notify.v1.services.create()
        raw = self.last_json()
        self.assertSchema(raw, "notify.v1.service")
        for t in ("apn", "gcm", "fcm"):
            self.assertEqual(raw["default_%s_notification_protocol_version" % t], "3")
        for k in ("apn_credential_sid", "gcm_credential_sid", "fcm_credential_sid", "messaging_service_sid",
                  "facebook_messenger_page_id", "alexa_skill_id", "delivery_callback_url"):
            self.assertIsNone(raw[k], k)
        self.assertIsInstance(raw["log_enabled"], bool)
        self.assertIsInstance(raw["delivery_callback_enabled"], bool)
        self.assertTrue(self.client.notify.v1.services(svc.sid).delete())

    def test_update_every_parameter(self):
        svc = self.client.notify.v1.services.create(friendly_name="before")
        created = self.last_json()
        mg = harness.new_sid("MG")
        updated = self.client.notify.v1.services(svc.sid).update(
            friendly_name="after",
            apn_credential_sid=self.apn.sid,
            gcm_credential_sid=self.gcm.sid,
            fcm_credential_sid=self.fcm.sid,
            messaging_service_sid=mg,
            facebook_messenger_page_id="42",
            default_apn_notification_protocol_version="4",
            default_gcm_notification_protocol_version="4",
            default_fcm_notification_protocol_version="4",
            log_enabled=True,
            alexa_skill_id="amzn1.ask.skill.9",
            default_alexa_notification_protocol_version="3",
            delivery_callback_url="https://example.com/cb2",
            delivery_callback_enabled=True)
        self.assertEqual(self.client.http_client.last_response.status_code, 200)
        raw = self.last_json()
        self.assertSchema(raw, "notify.v1.service")
        self.assertEqual(raw["friendly_name"], "after")
        self.assertEqual(raw["apn_credential_sid"], self.apn.sid)
        self.assertEqual(raw["gcm_credential_sid"], self.gcm.sid)
        self.assertEqual(raw["fcm_credential_sid"], self.fcm.sid)
        self.assertEqual(raw["messaging_service_sid"], mg)
        self.assertEqual(raw["facebook_messenger_page_id"], "42")
        self.assertEqual(raw["default_apn_notification_protocol_version"], "4")
        self.assertEqual(raw["default_gcm_notification_protocol_version"], "4")
        self.assertEqual(raw["default_fcm_notification_protocol_version"], "4")
        self.assertIs(raw["log_enabled"], True)
        self.assertEqual(raw["alexa_skill_id"], "amzn1.ask.skill.9")
        self.assertEqual(raw["delivery_callback_url"], "https://example.com/cb2")
        self.assertIs(raw["delivery_callback_enabled"], True)
        self.assertEqual(raw["date_created"], created["date_created"])
        self.assertGreaterEqual(raw["date_updated"], created["date_updated"])
        self.assertEqual(updated.friendly_name, "after")

        # a partial update leaves the rest alone
        self.client.notify.v1.services(svc.sid).update(friendly_name="partial")
        raw2 = self.last_json()
        for k in raw:
            if k not in ("friendly_name", "date_updated"):
                self.assertEqual(raw2[k], raw[k], k)
        self.assertEqual(raw2["friendly_name"], "partial")
        self.assertEqual(self.client.notify.v1.services(svc.sid).fetch().friendly_name, "partial")

    def test_credential_references(self):
        services = self.client.notify.v1.services
        unknown = harness.new_sid("CR")
        before = len(services.list())
        self.assertTwilioError(lambda: services.create(apn_credential_sid=unknown), 400, 52002)
        self.assertTwilioError(lambda: services.create(fcm_credential_sid=unknown), 400, 52002)
        self.assertTwilioError(lambda: services.create(apn_credential_sid=self.fcm.sid), 400, 52003)
        self.assertTwilioError(lambda: services.create(fcm_credential_sid=self.apn.sid), 400, 52003)
        self.assertTwilioError(lambda: services.create(gcm_credential_sid=self.apn.sid), 400, 52003)
        self.assertEqual(len(services.list()), before, "a refused create left a service behind")
        # another account's credential is unknown here
        other = create_apn_credential(self.client_b, self.creds)
        self.assertTwilioError(lambda: services.create(apn_credential_sid=other.sid), 400, 52002)

        svc = services.create(friendly_name="refs")
        self.assertTwilioError(lambda: services(svc.sid).update(apn_credential_sid=unknown), 400, 52002)
        self.assertTwilioError(lambda: services(svc.sid).update(gcm_credential_sid=self.fcm.sid), 400, 52003)
        raw = self.raw_json("GET", "/v1/Services/%s" % svc.sid)
        self.assertIsNone(raw["apn_credential_sid"])
        self.assertIsNone(raw["gcm_credential_sid"])

    def test_list_filter_paging_and_delete(self):
        made = [self.client.notify.v1.services.create(friendly_name="listme").sid for _ in range(5)]
        self.client.notify.v1.services.create(friendly_name="other")
        listed = [s.sid for s in self.client.notify.v1.services.list(friendly_name="listme")]
        self.assertEqual(sorted(listed), sorted(made))
        streamed = [s.sid for s in self.client.notify.v1.services.stream(friendly_name="listme", page_size=2)]
        self.assertEqual(streamed, listed)
        self.assertEqual([s.sid for s in self.client.notify.v1.services.list(friendly_name="listme", limit=3,
                                                                              page_size=2)], listed[:3])

        page = self.client.notify.v1.services.page(friendly_name="listme", page_size=2)
        raw = self.last_json()
        for item in raw["services"]:
            self.assertSchema(item, "notify.v1.service")
        self.assertMeta(raw["meta"], "services", page_size=2, path="/v1/Services",
                        filters=[("FriendlyName", "listme")])
        self.assertIsNotNone(raw["meta"]["next_page_url"])
        page.next_page()
        self.assertMeta(self.last_json()["meta"], "services", page_size=2, path="/v1/Services",
                        filters=[("FriendlyName", "listme")])

        for sid in made:
            self.assertTrue(self.client.notify.v1.services(sid).delete())
            self.assertEqual(self.client.http_client.last_response.status_code, 204)
        self.assertEqual(self.client.notify.v1.services.list(friendly_name="listme"), [])
        self.assertTwilioError(lambda: self.client.notify.v1.services(made[0]).fetch(), 404, 20404)
        self.assertTwilioError(lambda: self.client.notify.v1.services(made[0]).update(friendly_name="x"),
                               404, 20404)
        self.assertTwilioError(lambda: self.client.notify.v1.services(made[0]).delete(), 404, 20404)

    def test_delete_service_removes_its_bindings(self):
        svc = self.client.notify.v1.services.create(friendly_name="gone")
        b = self.client.notify.v1.services(svc.sid).bindings.create(
            identity="u", binding_type="apn", address=harness.apn_token())
        self.assertTrue(self.client.notify.v1.services(svc.sid).delete())
        r = self.raw("GET", "/v1/Services/%s/Bindings/%s" % (svc.sid, b.sid))
        self.assertRawError(r, 404, 20404)


if __name__ == "__main__":
    unittest.main()
