"""Durable outbox, two SIGKILLs.

1. Deliveries pending: 200 apn bindings, every first attempt answered 429 with Retry-After, so all of them
   wait in the outbox, none on the wire; SIGKILL, restart: each binding is delivered exactly once (one
   request after the restart, none accepted before), with the apns-id of its first attempt.
2. Mid fan-out: 300 apn bindings, the fake APNs answering slowly (few streams, a delay per response),
   SIGKILL in the middle, restart: every binding is delivered, each with one apns-id for all its attempts;
   re-sends happen only for deliveries in flight at the kill (recognisable by their apns-id), never for ones
   the provider had answered well before it."""

import signal
import sys
import time
import unittest

from harness import apn_token
from test_notifications import NotificationTestBase, nonce

BINDINGS = 300
RESPONSE_DELAY_MS = 400
MAX_STREAMS = 10
KILL_AFTER = 100  # requests received by the fake APNs before SIGKILL
ANSWERED_MARGIN_S = 1.5  # a request answered this long before the kill must have been recorded
SETTLE_AFTER_S = 1.5  # after the last expected request: a duplicate would arrive within this


PENDING_BINDINGS = 200
RETRY_AFTER_S = 5  # long enough that the kill comes first, short for a test


class NotificationDurabilityTest(NotificationTestBase):

    def test_sigkill_with_deliveries_pending_then_each_delivered_once(self):
        tokens = [apn_token() for _ in range(PENDING_BINDINGS)]
        for i, t in enumerate(tokens):
            self.bind("wait%03d" % i, "apn", t, tag=["pending"])
        wanted = set(tokens)
        tag = nonce()
        self.peers.script("apns", [{"status": 429, "match": tag, "count": PENDING_BINDINGS,
                                    "headers": {"retry-after": str(RETRY_AFTER_S)},
                                    "body": {"reason": "TooManyRequests"}}])
        self.notifications_api.create(tag=["pending"], body="hello " + tag)

        def mine(rs):
            return [r for r in rs if r.device_token in wanted]

        # The first 429 paces the credential: what was not sent yet waits too, as a pending row. Once the
        # fake has seen no new request for a while, nothing is on the wire and every delivery is pending.
        first = self.peers.wait_for("apns", lambda rs: len(mine(rs)) >= 1, timeout=30, interval=0.02,
                                    what="the first attempt")
        first_t = mine(first)[0]["t"]
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < 0.5:
            n = len(mine(self.peers.requests("apns")))
            if n != seen:
                seen, quiet_since = n, time.monotonic()
            time.sleep(0.05)
        self.daemon.kill(signal.SIGKILL)
        kill_t = self.peers.now()
        self.assertLess(kill_t - first_t, RETRY_AFTER_S - 0.5, "the kill must come before the retries are due")
        before = mine(self.peers.requests("apns"))
        first_ids = {}
        for r in before:
            first_ids.setdefault(r.device_token, r.header("apns-id"))

        self.peers.reset()  # the unused 429s go; every answer from now on is 200
        self.daemon.start()
        self.peers.wait_for("apns", lambda rs: {r.device_token for r in mine(rs)} == wanted,
                            timeout=60, interval=0.2, what="all %d bindings delivered" % PENDING_BINDINGS)
        time.sleep(SETTLE_AFTER_S)
        after = mine(self.peers.requests("apns"))
        per_token = {}
        for r in after:
            self.assertIn(tag, r["body"])
            per_token.setdefault(r.device_token, []).append(r)
        sys.stderr.write("\npending: %d bindings, %d attempts answered 429 before SIGKILL, %d requests after "
                         "the restart\n" % (PENDING_BINDINGS, len(before), len(after)))
        self.assertEqual({t: len(rs) for t, rs in per_token.items() if len(rs) != 1}, {},
                         "each binding is delivered exactly once after the restart")
        for t, rs in per_token.items():
            if t in first_ids:
                self.assertEqual(rs[0].header("apns-id"), first_ids[t], "a retry keeps its apns-id")
            self.assertGreaterEqual(rs[0]["t"], first_t + RETRY_AFTER_S - 0.05, "sent before Retry-After")
        self.assertEqual(len({rs[0].header("apns-id") for rs in per_token.values()}), PENDING_BINDINGS)

    def test_sigkill_mid_fanout_then_all_delivered(self):
        tokens = [apn_token() for _ in range(BINDINGS)]
        for i, t in enumerate(tokens):
            self.bind("user%03d" % i, "apn", t, tag=["bulk"])
        wanted = set(tokens)
        self.peers.delay("apns", RESPONSE_DELAY_MS)
        self.peers.max_streams("apns", MAX_STREAMS)
        tag = nonce()
        self.notifications_api.create(tag=["bulk"], body="hello " + tag)

        def mine(rs):
            return [r for r in rs if r.device_token in wanted]

        self.peers.wait_for("apns", lambda rs: len(mine(rs)) >= KILL_AFTER, timeout=60,
                            interval=0.02, what="%d deliveries before the kill" % KILL_AFTER)
        self.daemon.kill(signal.SIGKILL)
        kill_t = self.peers.now()
        before = mine(self.peers.requests("apns"))
        self.assertLess(len({r.device_token for r in before}), BINDINGS,
                        "the fan-out had finished before the kill: nothing was pending")

        self.peers.delay("apns", 0)
        self.peers.max_streams("apns", 1000)
        self.daemon.start()
        reqs = self.peers.wait_for("apns", lambda rs: {r.device_token for r in mine(rs)} == wanted,
                                   timeout=90, interval=0.2, what="all %d bindings delivered" % BINDINGS)
        time.sleep(SETTLE_AFTER_S)  # late re-sends would show up here
        reqs = mine(self.peers.requests("apns"))

        ids_by_token = {}
        for r in reqs:
            self.assertIn(tag, r["body"])
            ids_by_token.setdefault(r.device_token, set()).add(r.header("apns-id"))
        multi = {t: ids for t, ids in ids_by_token.items() if len(ids) != 1}
        self.assertEqual(multi, {}, "a binding's attempts must share one apns-id")
        distinct = {next(iter(ids)) for ids in ids_by_token.values()}
        self.assertEqual(len(distinct), BINDINGS, "distinct apns-ids == bindings")

        first_seen = {}
        for r in reqs:
            first_seen.setdefault(r.device_token, r["t"])
        resent = [t for t in ids_by_token if sum(1 for r in reqs if r.device_token == t) > 1]
        duplicates = len(reqs) - BINDINGS
        received_before_kill = len({r.device_token for r in before})
        answered_long_before = [t for t in resent
                                if first_seen[t] + RESPONSE_DELAY_MS / 1000.0 + ANSWERED_MARGIN_S < kill_t]
        sys.stderr.write("\ndurability: %d bindings, %d received before SIGKILL, %d requests in all, "
                         "%d duplicates (re-sends) over %d bindings\n"
                         % (BINDINGS, received_before_kill, len(reqs), duplicates, len(resent)))
        self.assertEqual(answered_long_before, [],
                         "re-sent although answered > %.1f s before the kill" % ANSWERED_MARGIN_S)
        self.assertLessEqual(duplicates, received_before_kill)


if __name__ == "__main__":
    unittest.main()
