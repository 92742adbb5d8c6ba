#include "daemon/model/strand.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace notifyd {

boost::asio::any_io_executor make_strand_executor(const boost::asio::any_io_executor& executor) {
  namespace asio = boost::asio;
  if (const auto* io = executor.target<asio::io_context::executor_type>()) return asio::make_strand(*io);
  return asio::make_strand(executor);
}

}  // namespace notifyd
