#pragma once
// Strands, type-erased. Everything that runs "on a strand" here holds it as an any_io_executor, and Asio
// copies that executor on every async operation, co_spawn and post (and derives new ones from it with
// prefer/require). A strand over an io_context's own executor fits any_io_executor's small-object buffer, so
// those copies do not allocate; a strand over an any_io_executor does not fit, and cost several heap
// allocations per HTTP/2 request at fan-out rates.
#include <boost/asio/any_io_executor.hpp>

namespace boost::asio {
class io_context;
}

namespace notifyd {

// A new strand over `executor` (over the io_context executor inside it, when it holds one). An io_context
// made for one thread (concurrency hint 1, as the daemon's delivery io_context is by default) runs its
// handlers one at a time and in order: it is its own strand, and its executor is returned as it is. A strand
// there would only add a lock, a queue and a shared count per handler (2.4% of a delivery's instructions).
boost::asio::any_io_executor make_strand_executor(const boost::asio::any_io_executor& executor);

// True when `io` was made with concurrency hint 1 (it promises to run on one thread).
bool runs_on_one_thread(boost::asio::io_context& io);

}  // namespace notifyd
