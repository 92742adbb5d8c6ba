"""The Conversations view of bindings (/conversations/v1/Services/{IS}/Bindings) through twilio-python:
only apn/gcm/fcm bindings appear, BindingType and Identity filters, PageSize clamped to 100, paging,
fetch, delete (which removes the binding from the Notify view as well)."""

import unittest

import harness
from harness import DaemonTestCase, apn_token

MESSAGE_TYPES = ["new_message", "added_to_conversation", "removed_from_conversation"]


class ConversationsTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.svc = cls.client.notify.v1.services.create(friendly_name="conv")
        nb = cls.client.notify.v1.services(cls.svc.sid).bindings
        cls.apn1 = nb.create(identity="ann", binding_type="apn", address=apn_token(), endpoint="ep-1").sid
        cls.fcm1 = nb.create(identity="ann", binding_type="fcm", address="fcm-ann").sid
        cls.gcm1 = nb.create(identity="ben", binding_type="gcm", address="gcm-ben").sid
        cls.sms1 = nb.create(identity="ann", binding_type="sms", address="+15005550002").sid
        cls.fbm1 = nb.create(identity="ben", binding_type="facebook-messenger", address="998877").sid
        cls.alexa1 = nb.create(identity="ben", binding_type="alexa", address="amzn1.ask.account.y").sid
        cls.push = sorted([cls.apn1, cls.fcm1, cls.gcm1])

    def conv(self, svc_sid=None):
        return self.client.conversations.v1.services(svc_sid or self.svc.sid).bindings

    def test_list_shows_only_push_bindings(self):
        items = self.conv().list()
        self.assertEqual(sorted(b.sid for b in items), self.push)
        raw = self.last_json()
        for item in raw["bindings"]:
            self.assertSchema(item, "conversations.v1.service.service_binding")
            self.assertEqual(item["chat_service_sid"], self.svc.sid)
            self.assertEqual(item["account_sid"], self.a.sid)
            self.assertEqual(item["message_types"], MESSAGE_TYPES)
            self.assertEqual(item["url"], "%s/conversations/v1/Services/%s/Bindings/%s"
                             % (self.base, self.svc.sid, item["sid"]))
        self.assertMeta(raw["meta"], "bindings", page_size=50,
                        path="/conversations/v1/Services/%s/Bindings" % self.svc.sid)

    def test_filters(self):
        def sids(**kw):
            return sorted(b.sid for b in self.conv().list(**kw))
        self.assertEqual(sids(binding_type=["apn"]), [self.apn1])
        self.assertEqual(sids(binding_type=["apn", "gcm"]), sorted([self.apn1, self.gcm1]))
        self.assertEqual(sids(binding_type=["fcm"]), [self.fcm1])
        self.assertEqual(sids(identity=["ann"]), sorted([self.apn1, self.fcm1]))
        self.assertEqual(sids(identity=["ben"]), [self.gcm1])
        self.assertEqual(sids(identity=["ann"], binding_type=["fcm", "gcm"]), [self.fcm1])
        self.assertEqual(sids(identity=["nobody"]), [])
        self.conv().page(binding_type=["apn", "fcm"], identity=["ann"], page_size=1)
        raw = self.last_json()
        self.assertMeta(raw["meta"], "bindings", page_size=1,
                        path="/conversations/v1/Services/%s/Bindings" % self.svc.sid,
                        filters=[("BindingType", "apn"), ("BindingType", "fcm"), ("Identity", "ann")])
        self.assertIsNotNone(raw["meta"]["next_page_url"])

    def test_page_size_clamped_to_100(self):
        raw = self.raw_json("GET", "/conversations/v1/Services/%s/Bindings?PageSize=500" % self.svc.sid)
        self.assertEqual(raw["meta"]["page_size"], 100)
        self.assertEqual(sorted(b["sid"] for b in raw["bindings"]), self.push)
        self.assertMeta(raw["meta"], "bindings", page_size=100)
        # the client sends PageSize=limit
        self.assertEqual(len(self.conv().list(limit=500)), 3)
        self.assertEqual(self.last_json()["meta"]["page_size"], 100)

    def test_paging_over_many(self):
        svc = self.client.notify.v1.services.create(friendly_name="conv paging")
        nb = self.client.notify.v1.services(svc.sid).bindings
        made = [nb.create(identity="c%03d" % i, binding_type="fcm", address="fcm-%03d" % i).sid for i in range(120)]
        nb.create(identity="c-sms", binding_type="sms", address="+15005550003")
        streamed = [b.sid for b in self.conv(svc.sid).stream(page_size=50)]
        self.assertEqual(len(streamed), 120)
        self.assertEqual(sorted(streamed), sorted(made))
        clamped = [b.sid for b in self.conv(svc.sid).list(page_size=500)]
        self.assertEqual(clamped, streamed)
        self.assertEqual([b.sid for b in self.conv(svc.sid).list(limit=60, page_size=25)], streamed[:60])

    def test_fetch(self):
        b = self.conv()(self.apn1).fetch()
        raw = self.last_json()
        self.assertSchema(raw, "conversations.v1.service.service_binding")
        self.assertEqual(raw["binding_type"], "apn")
        self.assertEqual(raw["identity"], "ann")
        self.assertEqual(raw["endpoint"], "ep-1")
        self.assertEqual(raw["message_types"], MESSAGE_TYPES)
        self.assertEqual(b.chat_service_sid, self.svc.sid)
        # the same binding in both views
        notify = self.raw_json("GET", "/v1/Services/%s/Bindings/%s" % (self.svc.sid, self.apn1))
        for k in ("sid", "account_sid", "credential_sid", "date_created", "date_updated", "endpoint", "identity",
                  "binding_type"):
            self.assertEqual(raw[k], notify[k], k)
        # non-push bindings do not exist in this view
        for sid in (self.sms1, self.fbm1, self.alexa1):
            self.assertTwilioError(lambda: self.conv()(sid).fetch(), 404, 20404)
        self.assertTwilioError(lambda: self.conv()(harness.new_sid("BS")).fetch(), 404, 20404)
        self.assertListError(lambda: self.conv(harness.new_sid("IS")).list(), 404, 20404)

    def test_delete_removes_from_both_views(self):
        nb = self.client.notify.v1.services(self.svc.sid).bindings
        sid = nb.create(identity="del", binding_type="gcm", address="gcm-del").sid
        self.assertTrue(self.conv()(sid).delete())
        self.assertEqual(self.client.http_client.last_response.status_code, 204)
        self.assertEqual(self.client.http_client.last_response.text, "")
        self.assertTwilioError(lambda: nb(sid).fetch(), 404, 20404)
        self.assertTwilioError(lambda: self.conv()(sid).fetch(), 404, 20404)
        self.assertTwilioError(lambda: self.conv()(sid).delete(), 404, 20404)
        # an sms binding cannot be deleted through this view
        self.assertTwilioError(lambda: self.conv()(self.sms1).delete(), 404, 20404)
        self.assertEqual(nb(self.sms1).fetch().binding_type, "sms")

    def test_other_account(self):
        other = self.client_b.conversations.v1.services(self.svc.sid).bindings
        self.assertListError(lambda: other.list(), 404, 20404)
        self.assertTwilioError(lambda: other(self.apn1).fetch(), 404, 20404)
        self.assertTwilioError(lambda: other(self.apn1).delete(), 404, 20404)
        self.assertEqual(self.conv()(self.apn1).fetch().sid, self.apn1)


if __name__ == "__main__":
    unittest.main()
