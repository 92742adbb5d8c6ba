#include "daemon/model/strand.hpp"

#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace notifyd {

bool runs_on_one_thread(boost::asio::io_context& io) {
  // Asio keeps the hint in its scheduler only; it reads it there itself (e.g. to skip locks).
  return boost::asio::use_service<boost::asio::detail::scheduler>(io).concurrency_hint() == 1;
}

boost::asio::any_io_executor make_strand_executor(const boost::asio::any_io_executor& executor) {
  namespace asio = boost::asio;
  if (const auto* io = executor.target<asio::io_context::executor_type>()) {
    if (runs_on_one_thread(io->context())) return *io;
    return asio::make_strand(*io);
  }
  return asio::make_strand(executor);
}

}  // namespace notifyd
