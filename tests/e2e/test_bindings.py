"""Bindings (/v1/Services/{IS}/Bindings) through twilio-python: create (tags, identity, credential,
endpoint, protocol version defaulting from the Service), same-Address replacement, the 20-per-identity
eviction, tag limits, list filters (Identity, Tag incl. implicit tags, StartDate/EndDate), paging with
list/stream/page across several pages, fetch, delete."""

import datetime
import unittest
import urllib.parse

import harness
from harness import DaemonTestCase, apn_token, create_apn_credential, create_fcm_credential

BS = harness.sid_re("BS")


class BindingsTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.apn = create_apn_credential(cls.client, cls.creds)
        cls.fcm = create_fcm_credential(cls.client, cls.creds)

    def new_service(self, **kw):
        return self.client.notify.v1.services.create(friendly_name=self.id(), **kw)

    def bindings(self, svc_sid):
        return self.client.notify.v1.services(svc_sid).bindings

    def test_create_fetch_delete(self):
        svc = self.new_service(default_apn_notification_protocol_version="4")
        b = self.bindings(svc.sid).create(identity="alice", binding_type="apn", address=apn_token(),
                                          tag=["vip", "beta"], credential_sid=self.apn.sid,
                                          endpoint="alice-iphone")
        self.assertEqual(self.client.http_client.last_response.status_code, 201)
        raw = self.last_json()
        self.assertSchema(raw, "notify.v1.service.binding")
        self.assertRegex(b.sid, BS)
        self.assertEqual(raw["account_sid"], self.a.sid)
        self.assertEqual(raw["service_sid"], svc.sid)
        self.assertEqual(raw["identity"], "alice")
        self.assertEqual(raw["binding_type"], "apn")
        self.assertEqual(sorted(raw["tags"]), ["beta", "vip"])
        self.assertEqual(raw["credential_sid"], self.apn.sid)
        self.assertEqual(raw["endpoint"], "alice-iphone")
        self.assertEqual(raw["notification_protocol_version"], "4")  # from the service
        self.assertEqual(raw["url"], "%s/v1/Services/%s/Bindings/%s" % (self.base, svc.sid, b.sid))
        for link in raw["links"].values():
            self.assertTrue(link.startswith(self.base + "/"), link)

        fetched = self.bindings(svc.sid)(b.sid).fetch()
        self.assertEqual(self.client.http_client.last_response.status_code, 200)
        self.assertEqual(self.last_json(), raw)
        self.assertEqual(fetched.identity, "alice")
        self.assertEqual(fetched.tags, raw["tags"])

        self.assertTrue(self.bindings(svc.sid)(b.sid).delete())
        self.assertEqual(self.client.http_client.last_response.status_code, 204)
        self.assertTwilioError(lambda: self.bindings(svc.sid)(b.sid).fetch(), 404, 20404)
        self.assertTwilioError(lambda: self.bindings(svc.sid)(b.sid).delete(), 404, 20404)

    def test_protocol_version_defaults_and_override(self):
        svc = self.new_service(default_apn_notification_protocol_version="4",
                               default_fcm_notification_protocol_version="3")
        self.assertEqual(self.bindings(svc.sid).create(identity="u", binding_type="apn",
                                                       address=apn_token()).notification_protocol_version, "4")
        self.assertEqual(self.bindings(svc.sid).create(identity="u", binding_type="fcm",
                                                       address="fcm-token-1").notification_protocol_version, "3")
        self.assertEqual(self.bindings(svc.sid).create(identity="u", binding_type="apn", address=apn_token(),
                                                       notification_protocol_version="3")
                         .notification_protocol_version, "3")
        plain = self.new_service()
        self.assertEqual(self.bindings(plain.sid).create(identity="u", binding_type="gcm", address="gcm-1")
                         .notification_protocol_version, "3")

    def test_every_binding_type(self):
        svc = self.new_service()
        for t, addr in (("apn", apn_token()), ("gcm", "gcm-tok"), ("fcm", "fcm-tok"), ("sms", "+15005550006"),
                        ("facebook-messenger", "1234567890"), ("alexa", "amzn1.ask.account.x")):
            b = self.bindings(svc.sid).create(identity="every", binding_type=t, address=addr)
            raw = self.last_json()
            self.assertSchema(raw, "notify.v1.service.binding")
            self.assertEqual(raw["binding_type"], t)
            self.assertEqual(raw["address"], addr)
            self.assertEqual(raw["tags"], [])
            self.assertEqual(b.binding_type, t)

    def test_same_address_replaces_with_new_sid(self):
        svc = self.new_service()
        other = self.new_service()
        token = apn_token()
        first = self.bindings(svc.sid).create(identity="bob", binding_type="apn", address=token, tag=["a"])
        kept = self.bindings(other.sid).create(identity="bob", binding_type="apn", address=token)
        second = self.bindings(svc.sid).create(identity="carol", binding_type="apn", address=token, tag=["b"])
        self.assertNotEqual(first.sid, second.sid)
        self.assertTwilioError(lambda: self.bindings(svc.sid)(first.sid).fetch(), 404, 20404)
        now = self.bindings(svc.sid)(second.sid).fetch()
        self.assertEqual((now.identity, now.tags), ("carol", ["b"]))
        self.assertEqual([b.sid for b in self.bindings(svc.sid).list()], [second.sid])
        # the other service is untouched
        self.assertEqual(self.bindings(other.sid)(kept.sid).fetch().identity, "bob")

    def test_21st_binding_of_an_identity_evicts_the_oldest(self):
        svc = self.new_service()
        sids = [self.bindings(svc.sid).create(identity="many", binding_type="fcm", address="tok-%02d" % i).sid
                for i in range(20)]
        self.assertEqual(len(self.bindings(svc.sid).list(identity=["many"])), 20)
        newest = self.bindings(svc.sid).create(identity="many", binding_type="fcm", address="tok-20")
        self.assertEqual(self.client.http_client.last_response.status_code, 201)
        self.assertTwilioError(lambda: self.bindings(svc.sid)(sids[0]).fetch(), 404, 20404)
        remaining = sorted(b.sid for b in self.bindings(svc.sid).list(identity=["many"]))
        self.assertEqual(remaining, sorted(sids[1:] + [newest.sid]))
        self.assertEqual(len(remaining), 20)

    def test_tag_limit(self):
        svc = self.new_service()
        tags20 = ["t%02d" % i for i in range(20)]
        b = self.bindings(svc.sid).create(identity="tags", binding_type="apn", address=apn_token(), tag=tags20)
        self.assertEqual(sorted(b.tags), tags20)
        self.assertTwilioError(lambda: self.bindings(svc.sid).create(
            identity="tags", binding_type="apn", address=apn_token(), tag=tags20 + ["t20"]), 400, 20001)
        self.assertEqual(len(self.bindings(svc.sid).list()), 1)

    def test_filters(self):
        svc = self.new_service()
        bs = self.bindings(svc.sid)
        x1 = bs.create(identity="x", binding_type="apn", address=apn_token(), tag=["red", "big"]).sid
        x2 = bs.create(identity="x", binding_type="sms", address="+15005550001", tag=["red"]).sid
        y1 = bs.create(identity="y", binding_type="fcm", address="fcm-y", tag=["big"]).sid
        z1 = bs.create(identity="z", binding_type="apn", address=apn_token(), tag=["red", "big"]).sid

        def sids(**kw):
            return sorted(b.sid for b in bs.list(**kw))

        self.assertEqual(sids(), sorted([x1, x2, y1, z1]))
        self.assertEqual(sids(identity=["x"]), sorted([x1, x2]))
        self.assertEqual(sids(identity=["x", "y"]), sorted([x1, x2, y1]))
        self.assertEqual(sids(identity=["nobody"]), [])
        self.assertEqual(sids(tag=["red"]), sorted([x1, x2, z1]))
        self.assertEqual(sids(tag=["red", "big"]), sorted([x1, z1]))  # AND
        self.assertEqual(sids(tag=["all"]), sorted([x1, x2, y1, z1]))
        self.assertEqual(sids(tag=["apn"]), sorted([x1, z1]))
        self.assertEqual(sids(tag=["sms"]), [x2])
        self.assertEqual(sids(tag=["apn", "red", "all"]), sorted([x1, z1]))
        self.assertEqual(sids(identity=["x", "y"], tag=["big"]), sorted([x1, y1]))

        # meta URLs carry the filters
        bs.page(identity=["x", "y"], tag=["big", "all"], page_size=1)  # x1, y1
        raw = self.last_json()
        self.assertMeta(raw["meta"], "bindings", page_size=1, path="/v1/Services/%s/Bindings" % svc.sid,
                        filters=[("Identity", "x"), ("Identity", "y"), ("Tag", "big"), ("Tag", "all")])
        self.assertIsNotNone(raw["meta"]["next_page_url"])
        first = [b["sid"] for b in raw["bindings"]]
        bs.page(identity=["x", "y"], tag=["big", "all"], page_size=1).next_page()
        raw2 = self.last_json()
        self.assertMeta(raw2["meta"], "bindings", page_size=1, path="/v1/Services/%s/Bindings" % svc.sid,
                        filters=[("Identity", "x"), ("Identity", "y"), ("Tag", "big"), ("Tag", "all")])
        self.assertEqual(sorted(first + [b["sid"] for b in raw2["bindings"]]), sorted([x1, y1]))

        created = datetime.date.fromisoformat(bs(x1).fetch().date_created.strftime("%Y-%m-%d"))
        day = datetime.timedelta(days=1)
        self.assertEqual(sids(start_date=created), sorted([x1, x2, y1, z1]))
        self.assertEqual(sids(end_date=created), sorted([x1, x2, y1, z1]))
        self.assertEqual(sids(start_date=created, end_date=created), sorted([x1, x2, y1, z1]))
        self.assertEqual(sids(start_date=created - day, end_date=created + day), sorted([x1, x2, y1, z1]))
        self.assertEqual(sids(start_date=created + day), [])
        self.assertEqual(sids(end_date=created - day), [])
        self.assertEqual(sids(start_date=created, identity=["z"]), [z1])
        bs.page(start_date=created, end_date=created + day)
        self.assertMeta(self.last_json()["meta"], "bindings", filters=[
            ("StartDate", created.isoformat()), ("EndDate", (created + day).isoformat())])

    def test_paging_across_pages(self):
        svc = self.new_service()
        bs = self.bindings(svc.sid)
        made = [bs.create(identity="p%03d" % i, binding_type="apn", address=apn_token(i), tag=["paged"]).sid
                for i in range(120)]
        one_page = [b.sid for b in bs.list(page_size=1000)]
        self.assertEqual(sorted(one_page), sorted(made))
        self.assertEqual(len(one_page), 120)

        streamed = [b.sid for b in bs.stream(page_size=50)]
        self.assertEqual(streamed, one_page, "stream over pages of 50 differs from one page of 1000")
        listed = [b.sid for b in bs.list(tag=["paged"], page_size=50)]
        self.assertEqual(listed, one_page)
        limited = [b.sid for b in bs.list(limit=70, page_size=50)]
        self.assertEqual(limited, one_page[:70])
        self.assertEqual([b.sid for b in bs.list(limit=30)], one_page[:30])

        # walk the pages by hand: 50, 50, 20; meta on each
        page = bs.page(page_size=50)
        seen, pages = [], 0
        while page is not None and pages < 10:
            raw = self.last_json()
            self.assertMeta(raw["meta"], "bindings", page_size=50, path="/v1/Services/%s/Bindings" % svc.sid)
            self.assertEqual(raw["meta"]["page"], pages)
            for item in raw["bindings"]:
                self.assertSchema(item, "notify.v1.service.binding")
            seen += [b.sid for b in page]
            pages += 1
            nxt = raw["meta"]["next_page_url"]
            if nxt is not None:
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(nxt).query))
                self.assertIn("PageToken", q)
                self.assertEqual(q.get("PageSize"), "50")
            page = page.next_page()
        self.assertEqual(pages, 3)
        self.assertEqual(seen, one_page)

        # deleting during a walk: keyset paging neither skips nor repeats the survivors
        page = bs.page(page_size=50)
        first = [b.sid for b in page]
        for sid in first[:10]:
            self.assertTrue(bs(sid).delete())
        rest = []
        page = page.next_page()
        while page is not None and len(rest) < 200:
            rest += [b.sid for b in page]
            page = page.next_page()
        self.assertEqual(rest, one_page[50:])

    def test_empty_list(self):
        svc = self.new_service()
        self.assertEqual(self.bindings(svc.sid).list(), [])
        raw = self.last_json()
        self.assertEqual(raw["bindings"], [])
        self.assertMeta(raw["meta"], "bindings", page_size=50, path="/v1/Services/%s/Bindings" % svc.sid)
        self.assertIsNone(raw["meta"]["next_page_url"])


if __name__ == "__main__":
    unittest.main()
