#pragma once
// Strands, type-erased. Everything that runs "on a strand" here holds it as an any_io_executor, and Asio
// copies that executor on every async operation, co_spawn and post (and derives new ones from it with
// prefer/require). A strand over an io_context's own executor fits any_io_executor's small-object buffer, so
// those copies do not allocate; a strand over an any_io_executor does not fit, and cost several heap
// allocations per HTTP/2 request at fan-out rates.
#include <boost/asio/any_io_executor.hpp>

namespace notifyd {

// A new strand over `executor` (over the io_context executor inside it, when it holds one).
boost::asio::any_io_executor make_strand_executor(const boost::asio::any_io_executor& executor);

}  // namespace notifyd
