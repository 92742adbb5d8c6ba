"""Durable outbox: 300 apn bindings, a notification to their tag, the fake APNs answering slowly (few
streams, a delay per response), SIGKILL of the daemon in the middle of the fan-out, restart: every binding
is delivered, each with one apns-id for all its attempts; re-sends happen only for deliveries in flight at
the kill (recognisable by their apns-id), never for ones the provider had answered well before it."""

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


class NotificationDurabilityTest(NotificationTestBase):

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
        time.sleep(2.0)  # late re-sends would show up here
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
